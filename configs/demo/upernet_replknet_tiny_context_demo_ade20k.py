# CPU demo of the paper's argument (tools/demo/kernel_size_demo.py): the tiny RepLKNet + UperNet
# of upernet_replknet_tiny_demo_ade20k.py (31-29-27-13 kernels + 5x5 re-parameterization
# branches) on synthetic data made to need context, written by
# `python tools/dataset_converters/make_demo_data.py ade20k data/demo_ade20k_context
#  --scene context --sides 320 320` (or by the demo itself).
# Each 320x320 image holds a square, a triangle and a circle (80-112 px, any rotation) with the
# same kind of interior for every class: most of an object's pixels are tens of pixels away from
# the outline that tells its class (replk_mm.datasets.synthetic.seg_style). Training sees
# 192x192 crops, validation the whole image.
_base_ = './upernet_replknet_tiny_demo_ade20k.py'

data_root = 'data/demo_ade20k_context'
crop_size = (192, 192)

model = dict(data_preprocessor=dict(size=crop_size))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(320, 320), ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root,
                                                   pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=4)
