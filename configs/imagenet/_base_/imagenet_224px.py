# ImageNet-1K at 224x224 with the official data pipeline (DingXiaoH/RepLKNet-pytorch
# datasets.py: timm's create_transform with the main.py defaults).
#
# Training: bicubic RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3), horizontal flip,
# RandAugment rand-m9-mstd0.5-inc1 (timm applies no colour jitter when RandAugment is on),
# random erasing p=0.25 in 'pixel' mode (per-pixel normal noise), ImageNet mean/std.
# Test: resize the short side to 224 / 0.875 = 256 (PIL bicubic), centre crop 224.
# mmpretrain's Swin/ConvNeXt ImageNet base is exactly this pipeline.
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py'

train_dataloader = dict(batch_size=64, num_workers=8)  # per GPU
val_dataloader = dict(batch_size=64, num_workers=8)
test_dataloader = val_dataloader
