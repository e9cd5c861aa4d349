# UniRepLKNet-XL (ImageNet-22K) + Cascade Mask R-CNN, 3x schedule, COCO: the official recipe.
# Paper results and weights: configs/metafile_unireplknet.yml (cascade-mask-rcnn_unireplknet-xl_in22k-pre_fpn_8xb2-ms-crop-3x_coco)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet detection/configs/coco/
# casc_mask_rcnn_unireplknet_xl_in22k_fpn_3x_coco.py: the UniRepLKNet-L recipe (drop path 0.7,
# layer-wise decay 0.7 over 12 layers, EMA) with UniRepLKNet-XL.
_base_ = './cascade-mask-rcnn_unireplknet-l_in22k-pre_fpn_8xb2-ms-crop-3x_coco.py'

pretrained = 'checkpoints/unireplknet_xl_in22k_to_in1k_384_acc87.96.pth'  # see the S config

model = dict(
    backbone=dict(arch='XL', init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
