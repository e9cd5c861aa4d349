# The official ImageNet-1K training recipe (DingXiaoH/RepLKNet-pytorch main.py defaults and the
# README's RepLKNet-31B command): AdamW (eps 1e-8, betas 0.9/0.999), lr 4e-3 for a global batch
# of 2048, weight decay 0.05 on every parameter except biases and 1-D ones, linear warm-up
# for 10 epochs then cosine decay to 1e-6, both per iteration; 300 epochs; model EMA with
# decay 0.9999 on parameters and buffers (timm's ModelEma), evaluated; no gradient clipping.
_base_ = [
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

warmup_epochs = 10
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    # official: no decay for biases and 1-D parameters (BN weights included)
    paramwise_cfg=dict(_delete_=True, norm_decay_mult=0., bias_decay_mult=0.,
                       flat_decay_mult=0.),
    clip_grad=None)
param_scheduler = [
    # the official warm-up starts at 0, which mmengine's LinearLR cannot: 1e-6 x lr
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    # `end` is left out: the runner sets it to train_cfg.max_epochs
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=warmup_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)

# timm's ModelEma (decay 0.9999) averages buffers too (BN statistics): update_buffers=True
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL')]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                                     save_best='auto'))

# The lr belongs to the global batch: `tools/train.py --auto-scale-lr` scales it linearly to
# yours (GPUs x batch per GPU; gradient accumulation is not counted, see docs/imagenet.md).
auto_scale_lr = dict(base_batch_size=2048)
