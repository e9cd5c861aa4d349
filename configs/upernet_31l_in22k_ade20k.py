# RepLKNet-31L (ImageNet-22K) + UperNet, ADE20K, 640x640 crops.
# Paper results and weights: configs/metafile_seg.yml (upernet_31l_in22k_ade20k)
#
# Global batch 64 (64 GPUs x 1 image) for 80k iterations, warm-up 800; on G GPUs x 1 image
# multiply both by 64 / G (docs/segmentation.md), e.g. 8 GPUs: `--cfg-options
# train_cfg.max_iters=640000 param_scheduler.0.warmup_iters=6400`.
_base_ = './upernet_31b_in22k_ade20k.py'

pretrained = 'checkpoints/RepLKNet-31L_ImageNet-22K.pth'  # link in the metafile
max_iters = 80000
warmup_iters = 800

model = dict(
    backbone=dict(arch='31L', drop_path_rate=0.3, init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))

train_dataloader = dict(batch_size=1)  # per GPU
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='WarmupPolyLR', power=1.0, eta_min=0.0, warmup='linear',
         warmup_iters=warmup_iters, warmup_ratio=1e-6, by_epoch=False),
]
auto_scale_lr = dict(base_batch_size=64)
