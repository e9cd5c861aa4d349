# The official fine-tuning recipe (DingXiaoH/RepLKNet-pytorch README, "Finetune ..."): 30
# epochs, AdamW lr 4e-4, weight decay 1e-8, warm-up 1 epoch, cosine to --min_lr (1e-6 by
# default), layer-wise lr decay 0.7 (--layer_decay), no mixup / cutmix (label smoothing 0.1,
# RandAugment and random erasing stay on), model EMA. Each config sets the drop path, the
# resolution, the global batch and the checkpoint it starts from.
#
# Layer-wise decay: RepLKNetLayerDecayOptimWrapperConstructor gives the stem, the block
# groups and the transitions the official layer ids (replk_mm/engine/optimizers): a layer's
# lr is lr x 0.7 ** (13 - id). The cosine floor is a ratio of each group's lr, as the official
# schedule multiplies its lr curve (min_lr included) by the layer's scale.
_base_ = './schedule_adamw_cosine_ema.py'

lr = 4e-4
min_lr = 1e-6
optim_wrapper = dict(
    optimizer=dict(lr=lr, weight_decay=1e-8),
    constructor='RepLKNetLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=min_lr / lr, by_epoch=True, begin=1,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=30)

# Each config also sets, in its model:
# * train_cfg=None: no mixup / cutmix (--mixup 0 --cutmix 0);
# * init_cfg=dict(type='Pretrained', checkpoint=...): the classifier fine-tuning starts from,
#   in the mmpretrain layout (docs/imagenet.md says where to get it). The whole classifier is
#   loaded; a head of another shape (ImageNet-22K's 21841 classes) is reported and left at
#   its initialisation, as the official code drops it.
