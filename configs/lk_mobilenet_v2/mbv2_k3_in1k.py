# MobileNet V2 (width 1.0x, 3x3 depth-wise kernels, identity shortcuts) on ImageNet-1K for 100
# epochs: the baseline of the RepLKNet paper's MobileNet V2 studies (guidelines 2, 3 and 5;
# RepLKNet arXiv 2203.06717v1, Tables 2, 3, 4 and 11). Every other mbv2*_in1k.py inherits this
# file and changes only the backbone: the paper trains all variants "with the identical
# training configurations for 100 epochs" (Sec. 3, guideline 2).
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (mbv2_k3_in1k)
#
# Width 1.0x: v1's Table 11 counts 3.5M params / 300M FLOPs for this model and 4.0M / 4.6M
# for the dense 9x9 / 13x13 ones, which is MobileNet V2 at width 1.0 (3.50M / 4.02M / 4.65M
# here, classifier included). The journal version (arXiv 2410.08049, Table 2c) counts 2.64M for
# the same 3x3 model, which is width 0.75x: the mbv2-0.75x_*.py configs keep that variant.
# docs/lk_mobilenet_v2.md has both counts.
#
# Recipe: RepLKNet arXiv 2203.06717v1, Appendix A ("For training MobileNet V2 models"): 8 GPUs
# x 32 images (global batch 256), SGD momentum 0.9, weight decay 4e-5, lr 0.1 with a 5-epoch
# warm-up and cosine annealing, 100 epochs, 224x224, random cropping and left-right flipping
# only. What the paper leaves open, taken from the plainest reading: no label smoothing, no
# Nesterov, weight decay on every parameter, warm-up from ~0 (1e-6 x lr) and cosine down to 0,
# each per iteration; mmpretrain's standard ImageNet crop/flip pipeline (RandomResizedCrop
# scale 0.08-1, bilinear) and test transform (short side 256, centre crop 224).
#   bash tools/dist_train.sh configs/lk_mobilenet_v2/mbv2_k3_in1k.py 8
# On another GPU count add --auto-scale-lr (lr scales linearly from the global batch 256).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/default_runtime.py',
]
default_scope = 'mmpretrain'
custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        # mmpretrain has its own MobileNetV2; replk_mm's backbone is reached by its scope.
        type='replk_mm.LKMobileNetV2',
        arch='1.0x',
        kernel_sizes=3,
        small_kernel=None,
        with_shortcut=True,
        dilation=1,
        out_indices=(7, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1280,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

train_dataloader = dict(batch_size=32)  # x 8 GPUs = 256
val_dataloader = dict(batch_size=32)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=4e-5, nesterov=False))
max_epochs = 100
warmup_epochs = 5
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=256)
