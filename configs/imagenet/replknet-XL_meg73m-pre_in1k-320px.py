# RepLKNet-XL, MegData-73M pre-trained, fine-tuned on ImageNet-1K at 320x320, and its test.
# Paper results and weights: configs/metafile_imagenet.yml (replknet-XL_meg73m-pre_in1k-320px)
#
# Fine-tune: RepLKNet arXiv 2203.06717v1, Appendix A ("RepLKNet-XL and Semi-supervised
# Pretraining"): "We finetune on ImageNet-1K with input resolution of 320x320 for 30 epochs
# following BeiT, except for a higher learning rate of 1e-4 and stage-wise learning rate decay
# of 0.4." The official code release has no command for it. Stated, and used here: 320x320,
# 30 epochs, lr 1e-4, a decay of 0.4 per stage. What the paper leaves to "following BeiT" is
# taken from the authors' own fine-tuning recipe (configs/imagenet/_base_/finetune_layer_decay.py:
# AdamW, weight decay 1e-8, 1 warm-up epoch, cosine to 1e-6, RandAugment and random erasing,
# no mixup / CutMix, EMA), with what is open there too:
# * stage-wise decay: one lr per stage, RepLKNetLayerDecayOptimWrapperConstructor with
#   blocks_per_layer=18 (every stage of [2, 2, 18, 2] is one layer id: stem 0, stages 1-4,
#   head 5; a stage's lr is 1e-4 x 0.4 ** (5 - id), the transitions with the stage before);
# * drop path 0.2, the pre-training's (Appendix A gives none for the fine-tune);
# * global batch 512 (32 GPUs x 16), the authors' batch for their 384x384 fine-tunes;
# * no re-parameterization branches (XL has none: "Structural Re-parameterization is omitted").
# XL was pre-trained and fine-tuned with mean = std = 0.5 (official README, "Evaluation"), i.e.
# 127.5 on 0-255 pixels. The pre-training (MegData-73M, not public) is in docs/imagenet.md.
#   bash tools/dist_train.sh configs/imagenet/replknet-XL_meg73m-pre_in1k-320px.py 8 \
#     --cfg-options optim_wrapper.accumulative_counts=4
# Test: resize the short side to 320 / 0.875 = 365 (PIL bicubic), centre-crop 320 (the
# official transform below 384). (mmpretrain's own replknet-XL config normalises with 122.5.)
#   bash tools/dist_test.sh configs/imagenet/replknet-XL_meg73m-pre_in1k-320px.py CKPT 8
_base_ = [
    './_base_/replknet_classifier.py',
    './_base_/imagenet_384px.py',
    './_base_/finetune_layer_decay.py',
]

# The MegData-73M pre-trained XL (official README, "MegData-73M Models"; link in the metafile),
# converted to the mmpretrain layout (docs/imagenet.md). Its head is not ImageNet-1K's and is
# reported and left at its initialisation.
pretrained = 'checkpoints/RepLKNet-XL_MegData73M_mmpretrain.pth'
model = dict(
    backbone=dict(arch='XL', drop_path_rate=0.2),
    head=dict(in_channels=2048),
    train_cfg=None,  # no mixup / CutMix
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
data_preprocessor = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5])

lr = 1e-4
min_lr = 1e-6
optim_wrapper = dict(
    optimizer=dict(lr=lr),
    paramwise_cfg=dict(layer_decay_rate=0.4, blocks_per_layer=18))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=min_lr / lr, by_epoch=True, begin=1,
         convert_to_iter_based=True),
]

bgr_mean, bgr_std = [127.5] * 3, [127.5] * 3
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=320, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[128, 128, 128], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=bgr_mean, fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=365, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=320),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))  # x 32 GPUs
val_dataloader = dict(batch_size=16, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=512)
