# RepLKNet-31L, ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 384x384: the official
# recipe.
# Paper results and weights: configs/metafile_imagenet.yml (replknet-31L_in21k-pre_32xb16_in1k-384px)  # noqa: E501
#
# Official command (README, "Finetune 22K-pretrained RepLKNet-31L on ImageNet-1K (384x384)"):
# the RepLKNet-31B 384x384 fine-tune with RepLKNet-31L (global batch 512, --drop_path 0.3,
# --min_lr 3e-4), starting from RepLKNet-31L_ImageNet-22K.pth.
_base_ = './replknet-31B_in21k-pre_32xb16_in1k-384px.py'

pretrained = 'checkpoints/RepLKNet-31L_ImageNet-22K_mmpretrain.pth'  # see docs/imagenet.md
model = dict(
    backbone=dict(arch='31L', drop_path_rate=0.3),
    head=dict(in_channels=1536),
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
