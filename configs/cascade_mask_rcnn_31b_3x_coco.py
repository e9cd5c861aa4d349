# RepLKNet-31B (ImageNet-1K pretrained) + Cascade Mask R-CNN, 3x schedule, COCO.
# Paper / official release: box AP 52.2, mask AP 45.2, 137M params.
# Global batch 32 assumed (1 image/GPU): see configs/_base_/schedules/det_adamw_3x.py.
#
# Released detector (official mmdet 2.x checkpoint, loads unchanged):
#   RepLKNet-31B_ImageNet-1K_CascMaskRCNN_COCO.pth
#   https://drive.google.com/file/d/1XqWSkQZSLMIhyaQvaIhGbuFhdDoRJQ4Z/view?usp=sharing
#   bash tools/dist_test.sh CONFIG checkpoints/RepLKNet-31B_ImageNet-1K_CascMaskRCNN_COCO.pth 8
# ImageNet-1K backbone for training (official layout), expected under checkpoints/:
#   RepLKNet-31B_ImageNet-1K_224.pth
#   https://drive.google.com/file/d/1azQUiCxK9feYVkkrPqwVPBtNsTzDrX7S/view?usp=sharing
_base_ = [
    './_base_/models/cascade_mask_rcnn_replknet_fpn.py',
    './_base_/datasets/det_coco_instance_ms_crop.py',
    './_base_/schedules/det_adamw_3x.py',
    'mmdet::_base_/default_runtime.py',
]

pretrained = 'checkpoints/RepLKNet-31B_ImageNet-1K_224.pth'
released_checkpoint = 'checkpoints/RepLKNet-31B_ImageNet-1K_CascMaskRCNN_COCO.pth'
paper_results = dict(box_ap=52.2, mask_ap=45.2, params_m=137)

model = dict(
    backbone=dict(
        arch='31B',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
