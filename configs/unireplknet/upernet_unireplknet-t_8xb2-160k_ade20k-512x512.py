# UniRepLKNet-T (ImageNet-1K) + UperNet, ADE20K, 512x512 crops: the official recipe.
# Paper results and weights: configs/metafile_unireplknet.yml (upernet_unireplknet-t_8xb2-160k_ade20k-512x512)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet segmentation/configs/ade20k/
# upernet_unireplknet_t_512_160k_ade20k.py (mmseg 0.27): drop path 0.2, no gradient
# checkpointing, layer-wise decay rate 1.0 ("0.9 or 1.0 makes almost no difference") over 9
# layers. Global batch 16 (8 GPUs x 2 images) for 160k iterations, warm-up 1500 (see
# ./_base_/seg_adamw_layer-decay_poly_160k.py):
#   bash tools/dist_train.sh configs/unireplknet/upernet_unireplknet-t_8xb2-160k_ade20k-512x512.py 8
# On G GPUs x 2 images either multiply the iterations and the warm-up by 8 / G to see the same
# images at the same lr (as the official README says: "modify the batch size and number of
# iterations"), e.g. 4 GPUs: `--cfg-options train_cfg.max_iters=320000
# param_scheduler.0.warmup_iters=3000`, or keep 160k iterations and add `--auto-scale-lr`
# (lr x G / 8).
# Test: `bash tools/dist_test.sh CONFIG CKPT 8` (single scale: the short side resized to 512,
# then to a multiple of 32, whole image); add `--tta` for the multi-scale test
# (mmseg 0.x's `--aug-test`, see tta_pipeline below). The released UperNet files load
# unchanged (official mmseg 0.x layout).
_base_ = [
    './_base_/upernet_unireplknet.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/seg_adamw_layer-decay_poly_160k.py',
]

custom_imports = dict(
    imports=['replk_mm', 'replk_mm.datasets.seg_checked', 'replk_mm.engine.schedulers',
             'replk_mm.engine.optimizers'],
    allow_failed_imports=False)

# The authors' ImageNet-1K UniRepLKNet-T (224x224) classifier, official layout: download it into
# checkpoints/ (link in the metafile) or override model.backbone.init_cfg.checkpoint.
pretrained = 'checkpoints/unireplknet_t_in1k_224_acc83.21.pth'
crop_size = (512, 512)
test_scale = (2048, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='T',
        drop_path_rate=0.2,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[80, 160, 320, 640], num_classes=150),
    auxiliary_head=dict(in_channels=320, num_classes=150),
    test_cfg=dict(mode='whole'))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=1.0, num_layers=9))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=test_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
# official: MultiScaleFlipAug(img_scale=(2048, 512), flip=False) with Resize(keep_ratio=True)
# and ResizeToMultiple(size_divisor=32)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
# mmseg's ADE20KDataset, plus errors that name a file that fails to load
train_dataloader = dict(
    batch_size=2,  # per GPU, x 8 GPUs = 16
    dataset=dict(type='CheckedADE20KDataset', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, dataset=dict(type='CheckedADE20KDataset', pipeline=test_pipeline))
test_dataloader = val_dataloader

# `--tta`: mmseg 0.x's `tools/test.py --aug-test` on the official test pipeline: the test scale
# times 0.5 ... 1.75, each resized to a multiple of 32, each also flipped, scores averaged.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(test_scale[0] * r), int(test_scale[1] * r)),
                  keep_ratio=True) for r in img_ratios],
            [dict(type='ResizeToMultiple', size_divisor=32)],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ]),
]
