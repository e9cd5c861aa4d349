# UniRepLKNet-S (ImageNet-1K) + Cascade Mask R-CNN, 3x schedule, COCO: the official recipe.
# Paper results and weights: configs/metafile_unireplknet.yml (cascade-mask-rcnn_unireplknet-s_fpn_8xb2-ms-crop-3x_coco)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet detection/configs/coco/
# casc_mask_rcnn_unireplknet_s_in1k_fpn_3x_coco.py: the UniRepLKNet-T recipe with
# UniRepLKNet-S, drop path 0.5 (layer-wise decay 0.8 over 12 layers). Global batch 16.
_base_ = './cascade-mask-rcnn_unireplknet-t_fpn_8xb2-ms-crop-3x_coco.py'

pretrained = 'checkpoints/unireplknet_s_in1k_224_acc83.91.pth'  # link in the metafile

model = dict(
    backbone=dict(
        arch='S',
        drop_path_rate=0.5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
