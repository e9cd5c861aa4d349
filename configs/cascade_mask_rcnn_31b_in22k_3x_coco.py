# RepLKNet-31B (ImageNet-22K pretrained) + Cascade Mask R-CNN, 3x schedule, COCO.
# Paper / official release: box AP 53.0, mask AP 46.0, 137M params.
# Global batch 32 assumed (1 image/GPU): see configs/_base_/schedules/det_adamw_3x.py.
#
# Released detector (official mmdet 2.x checkpoint, loads unchanged):
#   RepLKNet-31B_ImageNet-22K_CascMaskRCNN_COCO.pth
#   https://drive.google.com/file/d/1faI-MiNuPidum6dC6dGADfYWe6J-bTAz/view?usp=sharing
# ImageNet-22K backbone for training (official layout), expected under checkpoints/:
#   RepLKNet-31B_ImageNet-22K_224.pth
#   https://drive.google.com/file/d/1PYJiMszZYNrkZOeYwjccvxX8UHMALB7z/view?usp=sharing
_base_ = './cascade_mask_rcnn_31b_3x_coco.py'

pretrained = 'checkpoints/RepLKNet-31B_ImageNet-22K_224.pth'
released_checkpoint = 'checkpoints/RepLKNet-31B_ImageNet-22K_CascMaskRCNN_COCO.pth'
paper_results = dict(box_ap=53.0, mask_ap=46.0, params_m=137)

model = dict(
    backbone=dict(
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
