# RepLKNet-31B, ImageNet-1K, fine-tuned from the 224x224 model at 384x384: the official recipe.
# Paper results and weights: configs/metafile_imagenet.yml (replknet-31B_32xb32_in1k-384px)
#
# Official command (README, "Finetune the ImageNet-1K-pretrained (224x224) RepLKNet-31B with
# 384x384"): 4 nodes x 8 GPUs x 32 images = global batch 1024, --drop_path 0.8 --lr 4e-4
# --epochs 30 --weight_decay 1e-8 --cutmix 0 --mixup 0 --warmup_epochs 1 --layer_decay 0.7
# --model_ema true, starting from RepLKNet-31B_ImageNet-1K_224.pth.
_base_ = [
    './_base_/replknet_classifier.py',
    './_base_/imagenet_384px.py',
    './_base_/finetune_layer_decay.py',
]

# The ImageNet-1K 224x224 classifier in the mmpretrain layout: the released one (converted,
# link in the metafile) or your run of replknet-31B_32xb64_in1k.py.
pretrained = 'checkpoints/replknet-31B_3rdparty_in1k_20221118-fd08e268.pth'
model = dict(
    backbone=dict(arch='31B', drop_path_rate=0.8),
    head=dict(in_channels=1024),
    train_cfg=None,  # --mixup 0 --cutmix 0
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
train_dataloader = dict(batch_size=32)  # x 32 GPUs = 1024
val_dataloader = dict(batch_size=32)
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=1024)
