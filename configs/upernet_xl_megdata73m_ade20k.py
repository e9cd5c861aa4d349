# RepLKNet-XL (MegData-73M) + UperNet, ADE20K, 640x640 crops.
#   paper (Table 8): mIoU 55.2 single-scale / 56.0 multi-scale, 374M params
#   released model:  RepLKNet-XL_MegData73M_UperNet_ADE20K.pth
#     https://drive.google.com/file/d/14GbBI8tdeEl_ECytDCdrfAfNm1McqMv4/view?usp=sharing
#   official config: RepLKNet-XL_MegData73M_upernet_160k_ade20k_640.py
# XL was pre-trained with mean = std = 127.5 (timm's "inception" normalisation) and its
# downstream models normalise every stage output (norm_intermediate_features).
# Global batch 32 (16 GPUs x 2 images) for 160k iterations, warm-up 1.5k; on G GPUs x 2
# images use max_iters = 160000 * 16 / G and warm-up 1500 * 16 / G (docs/segmentation.md).
_base_ = './upernet_31b_in22k_ade20k.py'

# Pre-trained backbone (official release):
#   https://drive.google.com/file/d/1CBHAEUlCzoHfiAQmMIjZhDMAIyHUmAAj/view?usp=sharing
pretrained = 'checkpoints/RepLKNet-XL_MegData73M_pretrain.pth'
max_iters = 160000
warmup_iters = 1500

model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(
        arch='XL',
        drop_path_rate=0.5,
        norm_intermediate_features=True,
        init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]),
    auxiliary_head=dict(in_channels=1024))

train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
auto_scale_lr = dict(base_batch_size=32)
