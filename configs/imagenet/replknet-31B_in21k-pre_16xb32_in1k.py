# RepLKNet-31B, ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 224x224: the official
# recipe.
# Paper results and weights: configs/metafile_imagenet.yml (replknet-31B_in21k-pre_16xb32_in1k)
#
# Official command (README, "Finetune 22K-pretrained RepLKNet-31B on ImageNet-1K (224x224)"):
# 2 nodes x 8 GPUs x 32 images = global batch 512, --drop_path 0.2 --lr 4e-4 --epochs 30
# --weight_decay 1e-8 --cutmix 0 --mixup 0 --warmup_epochs 1 --layer_decay 0.7
# --model_ema true, starting from RepLKNet-31B_ImageNet-22K.pth (its 21841-class head is not
# loaded).
_base_ = [
    './_base_/replknet_classifier.py',
    './_base_/imagenet_224px.py',
    './_base_/finetune_layer_decay.py',
]

# The authors' ImageNet-22K RepLKNet-31B converted to the mmpretrain layout (docs/imagenet.md;
# link in the metafile).
pretrained = 'checkpoints/RepLKNet-31B_ImageNet-22K_mmpretrain.pth'
model = dict(
    backbone=dict(arch='31B', drop_path_rate=0.2),
    head=dict(in_channels=1024),
    train_cfg=None,  # --mixup 0 --cutmix 0
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
train_dataloader = dict(batch_size=32)  # x 16 GPUs = 512
auto_scale_lr = dict(base_batch_size=512)
