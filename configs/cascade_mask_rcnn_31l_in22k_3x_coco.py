# RepLKNet-31L (ImageNet-22K pretrained) + Cascade Mask R-CNN, 3x schedule, COCO.
# Paper / official release: box AP 53.9, mask AP 46.5, 229M params.
# Global batch 32 assumed (1 image/GPU): see configs/_base_/schedules/det_adamw_3x.py.
#
# Released detector (official mmdet 2.x checkpoint, loads unchanged):
#   RepLKNet-31L_ImageNet-22K_CascMaskRCNN_COCO.pth
#   https://drive.google.com/file/d/1qLQONhIjCEuykhdy-wHx1Ah9lT3v2OXh/view?usp=sharing
# ImageNet-22K backbone for training (official layout), expected under checkpoints/:
#   RepLKNet-31L_ImageNet-22K.pth
#   https://drive.google.com/file/d/16jcPsPwo5rko7ojWS9k_W-svHX-iFknY/view?usp=sharing
_base_ = './cascade_mask_rcnn_31b_3x_coco.py'

pretrained = 'checkpoints/RepLKNet-31L_ImageNet-22K.pth'
released_checkpoint = 'checkpoints/RepLKNet-31L_ImageNet-22K_CascMaskRCNN_COCO.pth'
paper_results = dict(box_ap=53.9, mask_ap=46.5, params_m=229)

model = dict(
    backbone=dict(
        arch='31L',
        drop_path_rate=0.7,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768, 1536]))
