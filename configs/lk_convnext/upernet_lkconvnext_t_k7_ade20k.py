# LKConvNeXt-T with ConvNeXt's 7x7 kernels (i.e. ConvNeXt-T) + UperNet, ADE20K, 512x512 crops.
# Paper results and weights: configs/metafile_lk_convnext.yml (upernet_lkconvnext_t_k7_ade20k)
#
# The baseline of the large-kernel ConvNeXt comparison (docs/lk_convnext.md); its large-kernel
# twin is upernet_lkconvnext_t_k31_ade20k.py. Both start from their own ImageNet run
# (configs/lk_convnext/lkconvnext_t_k{7,31}_in1k.py, same recipe). The official ConvNeXt-T
# ImageNet weights load here too (the metafile names them):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/convnext_tiny_1k_224.pth
#
# Recipe: mmseg 1.2.2's configs/convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py
# (the official ConvNeXt ADE20K recipe), inherited: global batch 16 (8 GPUs x 2 images), 160k
# iterations, AdamW lr 1e-4, weight decay 0.05, stage-wise lr decay 0.9 (mmseg's
# LearningRateDecayOptimizerConstructor, which reads LKConvNeXt's ConvNeXt layer names),
# drop path 0.4, layer scale 1.0, sliding-window test (512, stride 341). Two changes: the
# schedule is mmcv 1.x's poly with a 1500-iteration linear warm-up multiplying it (WarmupPolyLR),
# which the official ConvNeXt runs used, instead of mmseg 1.x's poly restarted after the
# warm-up; and mixed precision (the recipe's, mmseg's AmpOptimWrapper) is the `--amp` flag, so
# that the config also runs on machines without CUDA:
#   bash tools/dist_train.sh configs/lk_convnext/upernet_lkconvnext_t_k7_ade20k.py 8 --amp
# Test: `bash tools/dist_test.sh CONFIG CKPT 8`; `--tta` adds the multi-scale + flip test of
# mmseg 0.x's `--aug-test` (see tta_pipeline below; the official ms configs tested whole
# images there: --cfg-options model.test_cfg.mode=whole).
_base_ = 'mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py'

# replk_mm.datasets.seg_checked: mmseg's datasets with loading errors that name the file;
# replk_mm.engine.schedulers: WarmupPolyLR, mmcv 1.x's poly + warm-up schedule.
custom_imports = dict(
    imports=['replk_mm', 'replk_mm.datasets.seg_checked', 'replk_mm.engine.schedulers'],
    allow_failed_imports=False)

# What lkconvnext_t_k7_in1k.py writes (EMA weights, mmengine's EMAHook).
pretrained = 'work_dirs/lkconvnext_t_k7_in1k/epoch_300.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='LKConvNeXt',  # replk_mm's, registered in the mmseg scope
        arch='tiny',
        kernel_sizes=(7, 7, 7, 7),
        small_kernel=None,
        small_kernel_norm_cfg=dict(type='SyncBN', requires_grad=True),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',  # `--amp` makes it mmseg's AmpOptimWrapper (loss_scale='dynamic')
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise', num_layers=6),
    constructor='LearningRateDecayOptimizerConstructor')
param_scheduler = [
    dict(type='WarmupPolyLR', power=1.0, eta_min=0.0, warmup='linear', warmup_iters=1500,
         warmup_ratio=1e-6, by_epoch=False),
]

# mmseg's ADE20KDataset, plus errors that name a file that fails to load
train_dataloader = dict(batch_size=2, dataset=dict(type='CheckedADE20KDataset'))  # per GPU
val_dataloader = dict(batch_size=1, dataset=dict(type='CheckedADE20KDataset'))
test_dataloader = val_dataloader

# `--tta`: what mmseg 0.x's `tools/test.py --aug-test` did for the official "ms+flip" numbers:
# the test scale (2048, 512) times 0.5 ... 1.75, each image also flipped.
test_scale = (2048, 512)
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(test_scale[0] * r), int(test_scale[1] * r)),
                  keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ]),
]

auto_scale_lr = dict(enable=False, base_batch_size=16)
