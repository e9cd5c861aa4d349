# The official RepLKNet detection schedule: AdamW (lr 4e-4, weight decay 0.05, none on norm
# layers), 36 epochs, lr x0.1 after epochs 27 and 33, 500 iterations of linear warm-up.
#
# Global batch: the release trains with 1 image per GPU (4 for XL) but does not record the
# GPU count. We assume a global batch of 32 (32 GPUs x 1 image; XL: 8 GPUs x 4), the batch at
# which lr 4e-4 matches the linear-scaling rule of comparable AdamW recipes (2e-4 at 16).
# With another batch, train with `--auto-scale-lr` to scale the lr linearly.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
# The official warm-up is mmcv 1.x's `warmup='linear', warmup_iters=500, warmup_ratio=0.001`:
# factor 0.001 + 0.999 * i / 500 before iteration i, 1 from i = 500 on. mmengine's LinearLR
# reaches its end factor at step `end - 1`, so end=501 gives exactly that 500-step ramp.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=501),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.))
auto_scale_lr = dict(enable=False, base_batch_size=32)
