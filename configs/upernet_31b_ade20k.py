# RepLKNet-31B (ImageNet-1K) + UperNet, ADE20K, 512x512 crops.
# Paper results and weights: configs/metafile_seg.yml (upernet_31b_ade20k)
#
# Global batch 128 (64 GPUs x 2 images) for 40k iterations, warm-up 400. On G GPUs x 2 images
# multiply both by 64 / G to see the same number of images (docs/segmentation.md), e.g. 8 GPUs:
#   bash tools/dist_train.sh configs/upernet_31b_ade20k.py 8 --cfg-options \
#     train_cfg.max_iters=320000 param_scheduler.0.warmup_iters=3200
# Test: `bash tools/dist_test.sh configs/upernet_31b_ade20k.py CKPT 8` (single scale); add
# `--tta` for the multi-scale test of mmseg 0.x's `--aug-test` (see tta_pipeline below).
_base_ = [
    './_base_/models/upernet_replknet.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/seg_adamw_poly_40k.py',
]

# The authors' ImageNet-1K RepLKNet-31B (224x224) weights: download them into checkpoints/
# (link in the metafile) or override with
# `--cfg-options model.backbone.init_cfg.checkpoint=PATH_OR_URL`.
pretrained = 'checkpoints/RepLKNet-31B_ImageNet-1K_224.pth'
crop_size = (512, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='31B',
        drop_path_rate=0.5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024], num_classes=150),
    auxiliary_head=dict(in_channels=512, num_classes=150),
    test_cfg=dict(mode='whole'))  # whole image, short side resized to 512

# mmseg's ADE20KDataset, plus errors that name a file that fails to load
train_dataloader = dict(batch_size=2, dataset=dict(type='CheckedADE20KDataset'))  # per GPU
val_dataloader = dict(batch_size=1, dataset=dict(type='CheckedADE20KDataset'))
test_dataloader = val_dataloader

# `--tta`: what mmseg 0.x's `tools/test.py --aug-test` did: the test scale (2048, 512) times
# 0.5 ... 1.75, each image also flipped, softmax scores averaged. (mmseg 1.x's own
# tta_pipeline multiplies the original image size by these ratios instead: for an image whose
# short side is not 512 even its ratio 1.0 is not the single-scale test size.)
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

auto_scale_lr = dict(base_batch_size=128)
