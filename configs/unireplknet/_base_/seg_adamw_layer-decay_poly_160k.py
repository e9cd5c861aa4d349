# The official UniRepLKNet ADE20K schedule (AILab-CVC/UniRepLKNet, segmentation/configs/ade20k):
# AdamW lr 1e-4, betas (0.9, 0.999), weight decay 0.05 except on 1-D parameters and biases,
# layer-wise lr decay, 160k iterations of a global batch of 16 (8 GPUs x 2 images: "By default,
# models are trained on 8 GPUs with 2 images per GPU"), mmcv 1.x poly (power 1, down to 0)
# with a 1500-iteration linear warm-up from 1e-6 x lr, evaluation and a checkpoint every 4000
# iterations (20 kept, best mIoU saved). No gradient clipping.
#
# `WarmupPolyLR` (replk_mm/engine/schedulers.py) is mmcv 1.x's `policy='poly'` +
# `warmup='linear'`, which the official runs used (see configs/_base_/schedules/
# seg_adamw_poly_40k.py). Its `end` is left out: the runner sets it to train_cfg.max_iters.
#
# Layer-wise lr decay, the official `UniRepLKNetLearningRateDecayOptimizerConstructor`
# (segmentation/mmcv_custom/, ConvNeXt's rule): with `num_layers` N, the stem is layer 0,
# stage 0 layer 1, stage 1 and the down-sampling before it layer 2, the blocks of stage 2
# three at a time layers 3, 4, ... (its down-sampling layer 3), stage 3 and its down-sampling
# layer N; everything else (the backbone's output norms, the heads) is layer N + 1. A
# parameter of layer i trains with lr x rate ** (N + 1 - i). No weight decay on parameters
# with one dimension or whose name ends in `.bias` (every module, heads included); GRN's
# (1, 1, 1, C) gamma and beta keep it. Each config sets `layer_decay_rate` and `num_layers`.
#
# Other global batches: `tools/train.py --auto-scale-lr` scales the lr linearly (off by
# default); keeping 160k iterations of 16 images is what the official recipe did.
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'

max_iters = 160000
warmup_iters = 1500
interval = 4000

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='RepLKNetLayerDecayOptimWrapperConstructor',
    # official: `decay_rate`, `num_layers`; mmengine's multipliers give its weight-decay rule
    paramwise_cfg=dict(layer_decay_rate=1.0, num_layers=9, norm_decay_mult=0.,
                       bias_decay_mult=0., flat_decay_mult=0.))
param_scheduler = [
    dict(type='WarmupPolyLR', power=1.0, eta_min=0.0, warmup='linear',
         warmup_iters=warmup_iters, warmup_ratio=1e-6, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=interval)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=interval,
                    max_keep_ckpts=20, save_best='mIoU'))
auto_scale_lr = dict(enable=False, base_batch_size=16)
