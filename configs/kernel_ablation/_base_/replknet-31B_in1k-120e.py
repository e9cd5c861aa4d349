# The kernel-size study's ImageNet-1K pre-training (docs/kernel_ablation.md): RepLKNet-31B's
# width and depth (channels 128-256-512-1024, blocks 2-2-18-2) with the official RepLKNet-31B
# recipe of configs/imagenet/replknet-31B_32xb64_in1k.py (global batch 2048, AdamW lr 4e-3,
# mixup/cutmix, RandAugment, random erasing, label smoothing, drop path 0.5, EMA), trained for
# 120 epochs instead of 300: the paper's short schedule for these models (the official
# README's RepLKNet-13 and RepLKNet-31 ERF models are "trained in 120 epochs"). Everything
# else is the 300-epoch recipe, warm-up (10 epochs) included: the study's other settings were
# not read in a citable source (docs/kernel_ablation.md).
#
# Each config sets the kernels; the UperNet configs next to them start from the checkpoint
# these runs write to work_dirs/<config name>/epoch_120.pth.
_base_ = '../../imagenet/replknet-31B_32xb64_in1k.py'

train_cfg = dict(max_epochs=120)
