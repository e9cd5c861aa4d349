# RepLKNet-31B + Cascade Mask R-CNN, the head design of the official RepLKNet detection
# models: FPN on all four stages, 4conv1fc cascade box heads with SyncBN and a GIoU loss
# (regression on decoded boxes), the standard FCN mask head. Configs override the backbone.
_base_ = 'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py'

custom_imports = dict(
    imports=['replk_mm', 'replk_mm.datasets.coco_checked'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)  # tools/train.py turns it into BN on CPU
num_classes = 80

# One 4conv1fc head per cascade stage; only the target stds of the box coder change.
cascade_bbox_heads = [
    dict(
        type='ConvFCBBoxHead',
        num_shared_convs=4,
        num_shared_fcs=1,
        in_channels=256,
        conv_out_channels=256,
        fc_out_channels=1024,
        roi_feat_size=7,
        num_classes=num_classes,
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
        reg_class_agnostic=False,
        reg_decoded_bbox=True,
        norm_cfg=norm_cfg,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
    for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='RepLKNet',  # replk_mm's (mmpretrain's own RepLKNet lives in its scope only)
        arch='31B',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.6,
        small_kernel_merged=False,
        with_cp=True,  # the official models train with gradient checkpointing
        norm_cfg=norm_cfg),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    roi_head=dict(
        bbox_head=cascade_bbox_heads,
        mask_head=dict(num_classes=num_classes)))
