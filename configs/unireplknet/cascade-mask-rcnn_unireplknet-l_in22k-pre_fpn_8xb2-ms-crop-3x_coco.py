# UniRepLKNet-L (ImageNet-22K) + Cascade Mask R-CNN, 3x schedule, COCO: the official recipe.
# Paper results and weights: configs/metafile_unireplknet.yml (cascade-mask-rcnn_unireplknet-l_in22k-pre_fpn_8xb2-ms-crop-3x_coco)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet detection/configs/coco/
# casc_mask_rcnn_unireplknet_l_in22k_fpn_3x_coco.py: the ImageNet-22K UniRepLKNet-S recipe
# (EMA included) with UniRepLKNet-L, drop path 0.7, layer-wise decay 0.7 over 12 layers.
_base_ = './cascade-mask-rcnn_unireplknet-s_in22k-pre_fpn_8xb2-ms-crop-3x_coco.py'

pretrained = 'checkpoints/unireplknet_l_in22k_to_in1k_384_acc87.88.pth'  # see the S config

model = dict(
    backbone=dict(
        arch='L',
        drop_path_rate=0.7,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768, 1536]))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.7, num_layers=12))
