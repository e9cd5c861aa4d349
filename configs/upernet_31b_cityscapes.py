# RepLKNet-31B (ImageNet-1K) + UperNet, Cityscapes, 769x769 crops.
# Paper results and weights: configs/metafile_seg.yml (upernet_31b_cityscapes)
#
# Global batch 64 (32 GPUs x 2 images) for 20k iterations, warm-up 400 (mmseg's 80k x 16 in
# fewer, larger steps); on G GPUs x 2 images multiply both by 32 / G (docs/segmentation.md),
# e.g. 8 GPUs: `--cfg-options train_cfg.max_iters=80000 param_scheduler.0.warmup_iters=1600`.
# As in the official config, heads use align_corners=True and testing runs on the whole
# 2049x1025 image; `--tta` is mmseg 0.x's `--aug-test` (see tta_pipeline below).
_base_ = [
    './_base_/models/upernet_replknet.py',
    'mmseg::_base_/datasets/cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/seg_adamw_poly_40k.py',
]

pretrained = 'checkpoints/RepLKNet-31B_ImageNet-1K_224.pth'  # link in the metafile
crop_size = (769, 769)
max_iters = 20000
warmup_iters = 400

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='31B',
        drop_path_rate=0.5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024], num_classes=19, align_corners=True),
    auxiliary_head=dict(in_channels=512, num_classes=19, align_corners=True),
    test_cfg=dict(mode='whole'))

# mmseg's CityscapesDataset, plus errors that name a file that fails to load
train_dataloader = dict(batch_size=2, dataset=dict(type='CheckedCityscapesDataset'))  # per-GPU
val_dataloader = dict(batch_size=1, dataset=dict(type='CheckedCityscapesDataset'))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='WarmupPolyLR', power=1.0, eta_min=0.0, warmup='linear',
         warmup_iters=warmup_iters, warmup_ratio=1e-6, by_epoch=False),
]
auto_scale_lr = dict(base_batch_size=64)

# `--tta`: mmseg 0.x's `tools/test.py --aug-test`: the test scale (2049, 1025) times
# 0.5 ... 1.75, each image also flipped, softmax scores averaged.
test_scale = (2049, 1025)
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(test_scale[0] * r), int(test_scale[1] * r)),
                  keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
