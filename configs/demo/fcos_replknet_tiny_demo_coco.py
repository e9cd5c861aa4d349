# CPU demo / test config: a narrow RepLKNet (31B kernels, channels 32-64-128-256, blocks
# 1-1-2-1) + FCOS trained from scratch on the synthetic shapes dataset (boxes only).
_base_ = [
    '../_base_/models/fcos_replknet_fpn.py',
    '../_base_/datasets/demo_coco_instance.py',
    '../_base_/schedules/demo_det_600it.py',
]

classes = ('circle', 'square', 'triangle')  # as in the dataset base
image_size = 160
channels = [32, 64, 128, 256]
fpn_channels = 64

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, large_kernel_sizes=[31, 29, 27, 13], layers=[1, 1, 2, 1],
                  channels=channels, small_kernel=5),
        drop_path_rate=0.,
        with_cp=False,
        norm_cfg=dict(type='BN', requires_grad=True)),
    neck=dict(in_channels=channels, out_channels=fpn_channels),
    bbox_head=dict(
        num_classes=len(classes), in_channels=fpn_channels, feat_channels=fpn_channels,
        stacked_convs=2),
    test_cfg=dict(nms_pre=500, max_per_img=20))


# Boxes only.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
