# MobileNet V2 (width 0.75x, 3x3 depth-wise kernels, identity shortcuts) on ImageNet-1K for 100
# epochs: the baseline of the RepLKNet paper's MobileNet V2 studies (guidelines 2, 3 and 5).
# Every other mbv2_*_in1k.py inherits this file and changes only the backbone, as the paper
# trains all variants "with identical training configurations for 100 epochs".
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (mbv2_k3_in1k)
#
# Width 0.75x: the paper's params / FLOPs for these models (2.64M, 214.5M at 224x224) are
# those of MobileNet V2 0.75x with its classifier; see docs/lk_mobilenet_v2.md. Use
# arch='1.0x' for the full width.
# Recipe: the official RepLKNet ImageNet-1K recipe (DingXiaoH/RepLKNet-pytorch main.py and its
# README training command): AdamW lr 4e-3 at a global batch of 2048, weight decay 0.05 (none on
# biases and norms), 10 warm-up epochs, cosine to 1e-6, RandAugment rand-m9-mstd0.5-inc1,
# random erasing 0.25, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, bicubic resizing; with the
# paper's 100 epochs, no drop path (it cannot act on the shortcut-free variants, and the
# variants must train alike) and no EMA.
# Global batch: 8 GPUs x 256 = 2048. On another GPU count add --auto-scale-lr (lr scales with
# the batch from the 2048 here).
#   bash tools/dist_train.sh configs/lk_mobilenet_v2/mbv2_k3_in1k.py 8
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/default_runtime.py',
]
default_scope = 'mmpretrain'
custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        # mmpretrain has its own MobileNetV2; replk_mm's backbone is reached by its scope.
        type='replk_mm.LKMobileNetV2',
        arch='0.75x',
        kernel_sizes=3,
        small_kernel=None,
        with_shortcut=True,
        out_indices=(7, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1280,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(batch_size=256, num_workers=8)
val_dataloader = dict(batch_size=256, num_workers=8)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))
max_epochs = 100
warmup_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=2048)
