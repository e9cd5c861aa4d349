# UniRepLKNet-S (ImageNet-22K, fine-tuned on ImageNet-1K at 384) + UperNet, ADE20K, 640x640.
# Paper results and weights: configs/metafile_unireplknet.yml (upernet_unireplknet-s_in22k-pre_8xb2-160k_ade20k-640x640)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet segmentation/configs/ade20k/
# upernet_unireplknet_s_in22k_640_160k_ade20k.py: the 512 recipe with images rescaled around
# 2560x640 (ratio 0.5-2.0), 640x640 crops, and a whole-image test at 2560x640 (short side
# 640, then a multiple of 32). Global batch 16 (8 GPUs x 2 images), 160k iterations.
_base_ = './upernet_unireplknet-s_in22k-pre_8xb2-160k_ade20k-512x512.py'

crop_size = (640, 640)
test_scale = (2560, 640)

model = dict(data_preprocessor=dict(size=crop_size), test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=test_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # mmseg 0.x --aug-test
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(test_scale[0] * r), int(test_scale[1] * r)),
                  keep_ratio=True) for r in img_ratios],
            [dict(type='ResizeToMultiple', size_divisor=32)],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ]),
]
