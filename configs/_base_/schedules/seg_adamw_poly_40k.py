# The official RepLKNet segmentation schedule (DingXiaoH/RepLKNet-pytorch, mmseg 0.x configs):
# AdamW lr 2e-4, betas (0.9, 0.999), weight decay 0.05 except on norm layers; linear warm-up
# from 1e-6 x lr, then poly decay (power 1.0) to 0. Checkpoint and validation every 2k iters.
#
# The iteration counts belong to a global batch: 40k iterations x 128 images (64 GPUs x 2)
# for RepLKNet-31B on ADE20K, i.e. mmseg 0.x's 160k x 32 images in fewer, larger steps.
# Each config sets `max_iters`, `warmup_iters`, the per-GPU batch and
# `auto_scale_lr.base_batch_size` (= the global batch the schedule assumes); see
# docs/segmentation.md for scaling them to another number of GPUs.
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'

max_iters = 40000
warmup_iters = 400

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000, max_keep_ckpts=3,
                    save_best='mIoU'))
# Off by default (the recipe's lr is kept, as the authors did on 8 GPUs); `tools/train.py
# --auto-scale-lr` scales the lr linearly with the global batch.
auto_scale_lr = dict(enable=False, base_batch_size=128)
