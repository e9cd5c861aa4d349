# UniRepLKNet ImageNet classifier in mmpretrain's ImageClassifier: replk_mm's UniRepLKNet
# returning the last stage, average-pooled then layer-normalised (`gap_before_final_norm`: the
# official classifier's `x.mean([-2, -1])` -> `norm`, its norm being the backbone's `norm3`),
# and the official linear `head` as LinearClsHead's `fc`. The official ImageNet files are
# converted to this layout by `replk_mm.models.backbones.unireplknet.
# convert_official_classifier` (docs/unireplknet.md). Evaluation only: the configs set the
# arch, the head width and the test pipeline.
custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='replk_mm.UniRepLKNet',  # replk_mm's registry (mmpretrain has no UniRepLKNet)
        arch='T',
        out_indices=(3, ),
        gap_before_final_norm=True,
        drop_path_rate=0.),
    neck=None,  # pooled in the backbone
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=640,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
        init_cfg=None))
