# UniRepLKNet-S (ImageNet-22K) + Cascade Mask R-CNN, 3x schedule, COCO: the official recipe.
# Paper results and weights: configs/metafile_unireplknet.yml (cascade-mask-rcnn_unireplknet-s_in22k-pre_fpn_8xb2-ms-crop-3x_coco)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet detection/configs/coco/
# casc_mask_rcnn_unireplknet_s_in22k_fpn_3x_coco.py: the ImageNet-1K UniRepLKNet-S recipe
# plus an EMA of the weights (mmdet 2.x's ExpMomentumEMAHook, momentum 1e-4, warming up over
# 2000 iterations, buffers averaged too), which is what gets evaluated and saved.
_base_ = './cascade-mask-rcnn_unireplknet-s_fpn_8xb2-ms-crop-3x_coco.py'

# Not named by the official config (empty there); the ImageNet-22K -> 1K 384x384 UniRepLKNet-S
# that the official ImageNet-22K segmentation configs start from (link in the metafile).
pretrained = 'checkpoints/unireplknet_s_in22k_to_in1k_384_acc86.44.pth'

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)))

# mmdet 3.x's port of ExpMomentumEMAHook(momentum=0.0001, priority=49) (gamma = mmdet 2.x's
# total_iter, 2000 by default; skip_buffers=False there)
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001, gamma=2000,
         update_buffers=True, priority=49)]
