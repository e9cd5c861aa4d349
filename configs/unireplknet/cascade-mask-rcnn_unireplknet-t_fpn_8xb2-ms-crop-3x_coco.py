# UniRepLKNet-T (ImageNet-1K) + Cascade Mask R-CNN, 3x schedule, COCO: the official recipe.
# Paper results and weights: configs/metafile_unireplknet.yml (cascade-mask-rcnn_unireplknet-t_fpn_8xb2-ms-crop-3x_coco)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet detection/configs/coco/
# casc_mask_rcnn_unireplknet_t_in1k_fpn_3x_coco.py (mmdet 2.28): the 4conv1fc cascade heads
# with SyncBN and a GIoU loss (the same heads as RepLKNet's), FPN on the four stages, DETR-style
# multi-scale + crop augmentation, drop path 0.3, gradient checkpointing, layer-wise decay
# 0.8 over 12 layers. Global batch 16 (8 GPUs x 2 images), 36 epochs
# (./_base_/det_adamw_layer-decay_3x.py):
#   bash tools/dist_train.sh configs/unireplknet/cascade-mask-rcnn_unireplknet-t_fpn_8xb2-ms-crop-3x_coco.py 8  # noqa: E501
# With another global batch add `--auto-scale-lr`. The released detectors (official mmdet 2.x
# checkpoints) load unchanged: `bash tools/dist_test.sh CONFIG CHECKPOINT 8` (box and mask AP).
_base_ = [
    '../_base_/models/cascade_mask_rcnn_replknet_fpn.py',
    '../_base_/datasets/det_coco_instance_ms_crop.py',
    './_base_/det_adamw_layer-decay_3x.py',
    'mmdet::_base_/default_runtime.py',
]

custom_imports = dict(
    imports=['replk_mm', 'replk_mm.datasets.coco_checked', 'replk_mm.engine.optimizers'],
    allow_failed_imports=False)

# The official detection configs leave the backbone checkpoint empty ("ensure that the
# init_cfg.checkpoint in the config file refers to the downloaded pretrained weights"); this
# is the ImageNet-1K UniRepLKNet-T the segmentation configs start from (link in the metafile).
pretrained = 'checkpoints/unireplknet_t_in1k_224_acc83.21.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='UniRepLKNet',  # replk_mm's, registered in the mmdet scope
        arch='T',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        with_cp=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True),  # tools/train.py: BN on CPU
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[80, 160, 320, 640]))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8, num_layers=12))
train_dataloader = dict(batch_size=2)  # per GPU, x 8 GPUs = 16
# official: a checkpoint every epoch, 5 kept, the last one and the best (save_best='auto')
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=5, save_last=True,
                    save_best='auto'))
