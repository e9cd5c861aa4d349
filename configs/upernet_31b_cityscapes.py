# RepLKNet-31B (ImageNet-1K) + UperNet, Cityscapes, 769x769 crops.
#   paper (Table 8): mIoU 83.1 single-scale / 83.5 multi-scale, 110M params
#   released model:  RepLKNet-31B_ImageNet-1K_UperNet_Cityscapes.pth
#     https://drive.google.com/file/d/1j3YwToRqTHHi7ocln0iBz1tE6hItD_JO/view?usp=sharing
#   official config: RepLKNet-31B_1Kpretrain_upernet_80k_cityscapes_769.py
# Global batch 64 (32 GPUs x 2 images) for 20k iterations, warm-up 400 (mmseg's 80k x 16 in
# fewer, larger steps); on G GPUs x 2 images use max_iters = 20000 * 32 / G and warm-up
# 400 * 32 / G (docs/segmentation.md). As in the official config, heads use
# align_corners=True and testing runs on the whole 2049x1025 image.
_base_ = [
    './_base_/models/upernet_replknet.py',
    'mmseg::_base_/datasets/cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/seg_adamw_poly_40k.py',
]

# Pre-trained backbone (official release):
#   https://drive.google.com/file/d/1azQUiCxK9feYVkkrPqwVPBtNsTzDrX7S/view?usp=sharing
pretrained = 'checkpoints/RepLKNet-31B_ImageNet-1K_224.pth'
crop_size = (769, 769)
max_iters = 20000
warmup_iters = 400

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='31B',
        drop_path_rate=0.5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024], num_classes=19, align_corners=True),
    auxiliary_head=dict(in_channels=512, num_classes=19, align_corners=True),
    test_cfg=dict(mode='whole'))

# mmseg's CityscapesDataset, plus errors that name a file that fails to load
train_dataloader = dict(batch_size=2, dataset=dict(type='CheckedCityscapesDataset'))  # per-GPU
val_dataloader = dict(batch_size=1, dataset=dict(type='CheckedCityscapesDataset'))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
auto_scale_lr = dict(base_batch_size=64)
