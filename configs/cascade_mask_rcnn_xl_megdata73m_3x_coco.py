# RepLKNet-XL (MegData-73M pretrained) + Cascade Mask R-CNN, 3x schedule, COCO.
# Paper results and weights: configs/metafile_det.yml (cascade_mask_rcnn_xl_megdata73m_3x_coco)
# 4 images/GPU; global batch 32 assumed (8 GPUs): see configs/_base_/schedules/det_adamw_3x.py.
#
# XL differs from 31B/31L: kernels 27-27-27-13 without small kernels, dw_ratio 1.5, a BN on
# every output stage (norm_intermediate_features) and mean = std = 127.5 (its pretraining's
# normalisation; a different one ruins the pretrained features).
_base_ = './cascade_mask_rcnn_31b_3x_coco.py'

pretrained = 'checkpoints/RepLKNet-XL_MegData73M_pretrain.pth'  # link in the metafile

model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(
        arch='XL',
        drop_path_rate=0.5,
        norm_intermediate_features=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[256, 512, 1024, 2048]))

train_dataloader = dict(batch_size=4, num_workers=4)
