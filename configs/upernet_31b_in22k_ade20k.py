# RepLKNet-31B (ImageNet-22K) + UperNet, ADE20K, 640x640 crops.
# Paper results and weights: configs/metafile_seg.yml (upernet_31b_in22k_ade20k)
#
# Global batch 128 (64 GPUs x 2 images) for 40k iterations, warm-up 400; on G GPUs x 2 images
# multiply both by 64 / G (docs/segmentation.md), e.g. 8 GPUs: `--cfg-options
# train_cfg.max_iters=320000 param_scheduler.0.warmup_iters=3200`.
# As in the official run, images are rescaled around 2048x512 (not 2560x640) and the 640
# crops are taken from them; testing slides a 640 window with stride 426 over the image
# resized to short side 512.
_base_ = './upernet_31b_ade20k.py'

pretrained = 'checkpoints/RepLKNet-31B_ImageNet-22K_224.pth'  # link in the metafile
crop_size = (640, 640)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(drop_path_rate=0.3, init_cfg=dict(checkpoint=pretrained)),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(426, 426)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
