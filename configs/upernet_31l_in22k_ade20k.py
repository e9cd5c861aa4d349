# RepLKNet-31L (ImageNet-22K) + UperNet, ADE20K, 640x640 crops.
#   paper (Table 8): mIoU 52.4 single-scale / 52.7 multi-scale, 207M params
#   released model:  RepLKNet-31L_ImageNet-22K_UperNet_ADE20K.pth
#     https://drive.google.com/file/d/1nrZ723LC3QYjcVHJm8jpOOcecfWMsjxL/view?usp=sharing
#   official config: RepLKNet-31L_22Kpretrain_upernet_160k_ade20k_640.py
# Global batch 64 (64 GPUs x 1 image) for 80k iterations, warm-up 800; on G GPUs x 1 image
# use max_iters = 80000 * 64 / G and warm-up 800 * 64 / G (docs/segmentation.md).
_base_ = './upernet_31b_in22k_ade20k.py'

# Pre-trained backbone (official release):
#   https://drive.google.com/file/d/16jcPsPwo5rko7ojWS9k_W-svHX-iFknY/view?usp=sharing
pretrained = 'checkpoints/RepLKNet-31L_ImageNet-22K.pth'
max_iters = 80000
warmup_iters = 800

model = dict(
    backbone=dict(arch='31L', drop_path_rate=0.3, init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))

train_dataloader = dict(batch_size=1)  # per GPU
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
auto_scale_lr = dict(base_batch_size=64)
