# RepLKNet-XL, MegData-73M pre-trained, fine-tuned on ImageNet-1K, tested at 320x320.
# Paper results and weights: configs/metafile_imagenet.yml (replknet-XL_meg73m-pre_in1k-320px)
#
# Evaluation only: the official release has no training command for this model (the MegData-73M
# data and its fine-tuning recipe are not public), so this config has no training part.
# As the official README says, XL was pre-trained and fine-tuned with mean = std = 0.5
# (timm's IMAGENET_INCEPTION_MEAN/STD, `--imagenet_default_mean_and_std false`), i.e. 127.5 on
# 0-255 pixels; the test resizes the short side to 320 / 0.875 = 365 (PIL bicubic) and
# centre-crops 320, the official code's transform for inputs below 384. (mmpretrain's own
# replknet-XL config normalises with 122.5 instead.) Test:
#   bash tools/dist_test.sh configs/imagenet/replknet-XL_meg73m-pre_in1k-320px.py CKPT 8
_base_ = [
    './_base_/replknet_classifier.py',
    './_base_/imagenet_224px.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(
    backbone=dict(arch='XL', drop_path_rate=0.),
    head=dict(in_channels=2048),
    train_cfg=None)
data_preprocessor = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5])
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=365, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=320),
    dict(type='PackInputs'),
]
val_dataloader = dict(batch_size=16, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_cfg = dict()
test_cfg = dict()

# no training part (see above)
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
auto_scale_lr = None
