# RepLKNet-31B + UperNet with an FCN auxiliary head on stage 3: the official RepLKNet
# segmentation model (DingXiaoH/RepLKNet-pytorch, segmentation/configs/RepLKNet_upernet.py).
# Configs override the backbone arch, drop path, pretrained checkpoint and num_classes.
# replk_mm.datasets.seg_checked: mmseg's datasets with loading errors that name the file;
# replk_mm.engine.schedulers: WarmupPolyLR, mmcv 1.x's poly + warm-up schedule.
custom_imports = dict(
    imports=['replk_mm', 'replk_mm.datasets.seg_checked', 'replk_mm.engine.schedulers'],
    allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)  # tools/train.py makes it BN on CPU
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='RepLKNet',  # replk_mm's backbone, registered in the mmseg scope
        arch='31B',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.5,
        small_kernel_merged=False,  # True builds the re-parameterized (deploy) form
        with_cp=True,  # the official runs use gradient checkpointing
        norm_cfg=norm_cfg),  # configs add init_cfg=dict(type='Pretrained', checkpoint=...)
    decode_head=dict(
        type='UPerHead',
        in_channels=[128, 256, 512, 1024],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=512,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
