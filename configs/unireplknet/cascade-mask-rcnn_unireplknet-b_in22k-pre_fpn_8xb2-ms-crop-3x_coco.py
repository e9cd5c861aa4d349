# UniRepLKNet-B (ImageNet-22K) + Cascade Mask R-CNN, 3x schedule, COCO: the official recipe.
# Paper results and weights: configs/metafile_unireplknet.yml (cascade-mask-rcnn_unireplknet-b_in22k-pre_fpn_8xb2-ms-crop-3x_coco)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet detection/configs/coco/
# casc_mask_rcnn_unireplknet_b_in22k_fpn_3x_coco.py: the ImageNet-22K UniRepLKNet-S recipe
# (EMA included) with UniRepLKNet-B, drop path 0.6 (layer-wise decay 0.8 over 12 layers).
_base_ = './cascade-mask-rcnn_unireplknet-s_in22k-pre_fpn_8xb2-ms-crop-3x_coco.py'

pretrained = 'checkpoints/unireplknet_b_in22k_to_in1k_384_acc87.40.pth'  # see the S config

model = dict(
    backbone=dict(
        arch='B',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
