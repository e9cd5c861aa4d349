# RepLKNet classifier: replk_mm's RepLKNet + the official classification tail (final BN, global
# average pooling, linear head) in mmpretrain's ImageClassifier.
#
# State-dict layout = mmpretrain's own RepLKNet classifier: the official backbone keys under
# `backbone.`, the official final BN `norm` as `backbone.stages.3.norm` (a BN on the returned
# stage, norm_intermediate_features=True) and the official `head` as `head.fc`. So mmpretrain's
# converted RepLKNet checkpoints load as they are, official ImageNet files load after
# mmpretrain's `tools/model_converters/replknet_to_mmpretrain.py`, and replk_mm converts
# these checkpoints back to the official layout when a backbone loads them (downstream
# fine-tuning, tools/model_converters/mmpretrain2official.py). See docs/imagenet.md.
#
# `replk_mm.engine.optimizers` registers RepLKNetLayerDecayOptimWrapperConstructor (the
# fine-tunes' layer-wise lr decay).
custom_imports = dict(
    imports=['replk_mm', 'replk_mm.engine.optimizers'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='replk_mm.RepLKNet',  # mmpretrain's own `RepLKNet` is another class
        arch='31B',
        out_indices=(3, ),
        norm_intermediate_features=True,  # the official final BN, on the returned stage
        drop_path_rate=0.5,
        with_cp=False,  # the official --use_checkpoint (default false)
        norm_cfg=dict(type='SyncBN', requires_grad=True)),  # official: use_sync_bn=True
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1024,
        # official: --smoothing 0.1 (timm's SoftTargetCrossEntropy on mixed, smoothed targets
        # while mixup/cutmix are on; LabelSmoothingCrossEntropy when they are off)
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5),
        init_cfg=None),  # the official head is an nn.Linear with torch's default init
    # official: --mixup 0.8 --cutmix 1.0 --mixup_prob 1.0 --mixup_switch_prob 0.5 (one of the
    # two on every batch, chosen with equal probability)
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
