# RepLKNet-31B (ImageNet-22K pretrained) + Cascade Mask R-CNN, 3x schedule, COCO.
# Paper results and weights: configs/metafile_det.yml (cascade_mask_rcnn_31b_in22k_3x_coco)
# Global batch 32 assumed (1 image/GPU): see configs/_base_/schedules/det_adamw_3x.py.
_base_ = './cascade_mask_rcnn_31b_3x_coco.py'

pretrained = 'checkpoints/RepLKNet-31B_ImageNet-22K_224.pth'  # link in the metafile

model = dict(
    backbone=dict(
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
