# RepLKNet-XL (MegData-73M) + UperNet, ADE20K, 640x640 crops.
# Paper results and weights: configs/metafile_seg.yml (upernet_xl_megdata73m_ade20k)
#
# XL was pre-trained with mean = std = 127.5 (timm's "inception" normalisation) and its
# downstream models normalise every stage output (norm_intermediate_features).
# Global batch 32 (16 GPUs x 2 images) for 160k iterations, warm-up 1.5k; on G GPUs x 2
# images multiply both by 16 / G (docs/segmentation.md), e.g. 8 GPUs: `--cfg-options
# train_cfg.max_iters=320000 param_scheduler.0.warmup_iters=3000`.
#
# Departure from the official file (RepLKNet-XL_MegData73M_upernet_160k_ade20k_640.py): it sets
# `train=dict(pipeline=test_pipeline)`, i.e. trains on its test pipeline, which loads no
# annotations and cannot run. This config trains with the pipeline of the other 640 models
# (inherited from upernet_31b_in22k_ade20k.py: random resize around 2048x512, 640 crops, flip,
# photometric distortion), which the official file's own `train_pipeline` also spells out.
_base_ = './upernet_31b_in22k_ade20k.py'

pretrained = 'checkpoints/RepLKNet-XL_MegData73M_pretrain.pth'  # link in the metafile
max_iters = 160000
warmup_iters = 1500

model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(
        arch='XL',
        drop_path_rate=0.5,
        norm_intermediate_features=True,
        init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]),
    auxiliary_head=dict(in_channels=1024))

train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='WarmupPolyLR', power=1.0, eta_min=0.0, warmup='linear',
         warmup_iters=warmup_iters, warmup_ratio=1e-6, by_epoch=False),
]
auto_scale_lr = dict(base_batch_size=32)
