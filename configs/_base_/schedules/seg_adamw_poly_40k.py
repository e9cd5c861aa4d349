# The official RepLKNet segmentation schedule (DingXiaoH/RepLKNet-pytorch, mmseg 0.x configs):
# AdamW lr 2e-4, betas (0.9, 0.999), weight decay 0.05 except on norm layers; poly decay
# (power 1.0) to 0 over the whole run, with a linear warm-up from 1e-6 x lr.
#
# `WarmupPolyLR` (replk_mm/engine/schedulers.py) is mmcv 1.x's `lr_config = dict(policy='poly',
# warmup='linear', ...)`, which the official runs used: the warm-up factor multiplies a poly
# curve that spans the whole run. (mmengine's LinearLR + PolyLR(begin=warmup) restarts the
# poly curve after the warm-up, and their step counts differ from mmcv's by one.) Its `end` is
# left out: the runner sets it to train_cfg.max_iters, so the decay follows the iterations.
#
# The iteration counts belong to a global batch: 40k iterations x 128 images (64 GPUs x 2)
# for RepLKNet-31B on ADE20K, i.e. mmseg 0.x's 160k x 32 images in fewer, larger steps.
# Each config sets `train_cfg.max_iters`, the warm-up (`param_scheduler.0.warmup_iters`), the
# per-GPU batch and `auto_scale_lr.base_batch_size` (= the global batch the schedule assumes).
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'

max_iters = 40000
warmup_iters = 400

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.))
param_scheduler = [
    dict(type='WarmupPolyLR', power=1.0, eta_min=0.0, warmup='linear',
         warmup_iters=warmup_iters, warmup_ratio=1e-6, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000, max_keep_ckpts=3,
                    save_best='mIoU'))
# Off by default (the recipe's lr is kept, as the authors did on 8 GPUs); `tools/train.py
# --auto-scale-lr` scales the lr linearly with the global batch.
auto_scale_lr = dict(enable=False, base_batch_size=128)
