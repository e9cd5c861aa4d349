# RepLKNet-31B (ImageNet-1K) + UperNet, ADE20K, 512x512 crops.
#   paper (Table 8): mIoU 49.9 single-scale / 50.6 multi-scale, 112M params
#   released model:  RepLKNet-31B_ImageNet-1K_UperNet_ADE20K.pth
#     https://drive.google.com/file/d/1ZV1CP1KzeSdH6_wKw4ytVe9BlCGHf89s/view?usp=sharing
#   official config: RepLKNet-31B_1Kpretrain_upernet_160k_ade20k_512.py
# Global batch 128 (64 GPUs x 2 images) for 40k iterations. On 8 GPUs x 2 images (batch 16)
# the same number of images takes 320k iterations (warm-up 3.2k), see docs/segmentation.md:
#   bash tools/dist_train.sh configs/upernet_31b_ade20k.py 8 --cfg-options \
#     train_cfg.max_iters=320000 param_scheduler.0.end=3200 \
#     param_scheduler.1.begin=3200 param_scheduler.1.end=320000
# Test: `bash tools/dist_test.sh configs/upernet_31b_ade20k.py CKPT 8` (ss), add `--tta` (ms).
_base_ = [
    './_base_/models/upernet_replknet.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/seg_adamw_poly_40k.py',
]

# The authors' ImageNet-1K RepLKNet-31B (224x224) weights; download them into checkpoints/ or
# override with `--cfg-options model.backbone.init_cfg.checkpoint=PATH_OR_URL`.
# Pre-trained backbone (official release):
#   https://drive.google.com/file/d/1azQUiCxK9feYVkkrPqwVPBtNsTzDrX7S/view?usp=sharing
pretrained = 'checkpoints/RepLKNet-31B_ImageNet-1K_224.pth'
crop_size = (512, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='31B',
        drop_path_rate=0.5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024], num_classes=150),
    auxiliary_head=dict(in_channels=512, num_classes=150),
    test_cfg=dict(mode='whole'))  # whole image, short side resized to 512

# mmseg's ADE20KDataset, plus errors that name a file that fails to load
train_dataloader = dict(batch_size=2, dataset=dict(type='CheckedADE20KDataset'))  # per GPU
val_dataloader = dict(batch_size=1, dataset=dict(type='CheckedADE20KDataset'))
test_dataloader = val_dataloader

auto_scale_lr = dict(base_batch_size=128)
