# RepLKNet-31B, ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 384x384: the official
# recipe.
# Paper results and weights: configs/metafile_imagenet.yml (replknet-31B_in21k-pre_32xb16_in1k-384px)  # noqa: E501
#
# Official command (README, "Finetune 22K-pretrained RepLKNet-31B on ImageNet-1K (384x384)"):
# 4 nodes x 8 GPUs x 16 images = global batch 512, --drop_path 0.3 --lr 4e-4 --epochs 30
# --weight_decay 1e-8 --cutmix 0 --mixup 0 --warmup_epochs 1 --layer_decay 0.7
# --min_lr 3e-4 --model_ema true, starting from RepLKNet-31B_ImageNet-22K.pth.
_base_ = [
    './_base_/replknet_classifier.py',
    './_base_/imagenet_384px.py',
    './_base_/finetune_layer_decay.py',
]

pretrained = 'checkpoints/RepLKNet-31B_ImageNet-22K_mmpretrain.pth'  # see docs/imagenet.md
model = dict(
    backbone=dict(arch='31B', drop_path_rate=0.3),
    head=dict(in_channels=1024),
    train_cfg=None,  # --mixup 0 --cutmix 0
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
lr = 4e-4
min_lr = 3e-4
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=min_lr / lr, by_epoch=True, begin=1,
         convert_to_iter_based=True),
]
train_dataloader = dict(batch_size=16)  # x 32 GPUs = 512
auto_scale_lr = dict(base_batch_size=512)
