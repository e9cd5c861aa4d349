# RepLKNet-31B (ImageNet-1K pretrained) + Cascade Mask R-CNN, 3x schedule, COCO.
# Paper results and weights: configs/metafile_det.yml (cascade_mask_rcnn_31b_3x_coco)
#
# Global batch 32 assumed (1 image/GPU; the release does not record the GPU count): see
# configs/_base_/schedules/det_adamw_3x.py. With another global batch add `--auto-scale-lr`.
# The released detectors (official mmdet 2.x checkpoints) load unchanged:
#   bash tools/dist_test.sh CONFIG RELEASED_CHECKPOINT.pth 8
_base_ = [
    './_base_/models/cascade_mask_rcnn_replknet_fpn.py',
    './_base_/datasets/det_coco_instance_ms_crop.py',
    './_base_/schedules/det_adamw_3x.py',
    'mmdet::_base_/default_runtime.py',
]

# ImageNet-1K backbone (official layout) for training: download it into checkpoints/ (link in
# the metafile) or override model.backbone.init_cfg.checkpoint.
pretrained = 'checkpoints/RepLKNet-31B_ImageNet-1K_224.pth'

model = dict(
    backbone=dict(
        arch='31B',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
