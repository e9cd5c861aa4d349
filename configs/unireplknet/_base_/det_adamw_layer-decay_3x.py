# The official UniRepLKNet COCO schedule (AILab-CVC/UniRepLKNet, detection/configs/coco, on
# mmdet 2.28's schedule_3x.py): AdamW lr 1e-4, betas (0.9, 0.999), weight decay 0.05 except
# on 1-D parameters and biases, layer-wise lr decay, 36 epochs, lr x0.1 after epochs 27 and
# 33, 500 iterations of linear warm-up from 0.001 x lr, no gradient clipping. (The official
# checkpoint policy, every epoch with 5 kept, is in the configs: mmdet's runtime owns the hooks.)
#
# Global batch 16: "We use 8 GPUs to train this model so that the total batch size was 16"
# (2 images per GPU). With another global batch add `--auto-scale-lr` (linear scaling from 16).
#
# Layer-wise lr decay: the official `UniRepLKNetLearningRateDecayOptimizerConstructor`, the
# same rule as ./seg_adamw_layer-decay_poly_160k.py explains (layer i of N trains with
# lr x rate ** (N + 1 - i); FPN and heads are layer N + 1). Every official detection config
# says `num_layers` 12, UniRepLKNet-T's too.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
# mmcv 1.x's `warmup='linear', warmup_iters=500, warmup_ratio=0.001`: mmengine's LinearLR
# reaches its end factor at step `end - 1`, so end=501 is that 500-step ramp
# (configs/_base_/schedules/det_adamw_3x.py).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=501),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='RepLKNetLayerDecayOptimWrapperConstructor',
    # official: `decay_rate`, `num_layers`; mmengine's multipliers give its weight-decay rule
    paramwise_cfg=dict(layer_decay_rate=0.8, num_layers=12, norm_decay_mult=0.,
                       bias_decay_mult=0., flat_decay_mult=0.))
auto_scale_lr = dict(enable=False, base_batch_size=16)
