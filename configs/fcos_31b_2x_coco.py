# RepLKNet-31B (ImageNet-1K pretrained) + FCOS, 2x schedule, COCO (boxes only).
# Paper results and weights: configs/metafile_det.yml (fcos_31b_2x_coco)
#
# Official recipe: 2 images/GPU, AdamW lr 2e-4 (weight decay 0.05, none on norms), gradient
# clipping at 35, constant 1/3 warm-up for 500 iterations, steps at epochs 16 and 22 of 24.
# The release does not record the GPU count; we assume 8 GPUs (global batch 16). With
# another batch, train with `--auto-scale-lr`.
_base_ = [
    './_base_/models/fcos_replknet_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_2x.py',
    'mmdet::_base_/default_runtime.py',
]

pretrained = 'checkpoints/RepLKNet-31B_ImageNet-1K_224.pth'  # link in the metafile

model = dict(
    backbone=dict(
        arch='31B',
        drop_path_rate=0.5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(1333, 640), (1333, 800)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# CheckedCocoDataset validates every annotation (COCO's few sub-pixel boxes are skipped with
# a warning, as mmdet's CocoDataset drops them silently).
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(
        type='CheckedCocoDataset', invalid_annotations='skip', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset', invalid_annotations='skip'))
test_dataloader = val_dataloader

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
# mmcv 1.x's `warmup='constant', warmup_iters=500, warmup_ratio=1/3`: lr / 3 for iterations
# 0-499. mmengine's ConstantLR restores the lr at step `end - 1`, hence end=501.
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=501),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[16, 22],
         gamma=0.1),
]
# Departure from the official file (RepLKNet-31B_1Kpretrain_fcos_2x_coco.py): its optimizer
# dict has no `_delete_=True`, so it merges into the SGD of its schedule_1x base and AdamW
# would get SGD's `momentum=0.9` (AdamW takes no such argument: the run fails). `_delete_`
# keeps exactly the AdamW settings it writes; the Cascade configs do the same.
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=16)
