# ImageNet-1K evaluation at 384x384 with the official test pipeline
# (../../imagenet/_base_/imagenet_384px.py) on mmpretrain's runtime, without a training part.
_base_ = [
    '../../imagenet/_base_/imagenet_384px.py',
    'mmpretrain::_base_/default_runtime.py',
]

train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
auto_scale_lr = None
val_cfg = dict()
test_cfg = dict()
