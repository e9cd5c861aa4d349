# DeepLabv3+ on Cityscapes, starting from the ImageNet-trained MobileNet V2 1.0x of
# mbv2_k13_rep3_in1k.py,
# 13x13 depth-wise kernels with a parallel 3x3 re-parameterization branch
# (guideline 3).
# Everything else is deeplabv3plus_mbv2_k3_cityscapes.py.
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (deeplabv3plus_mbv2_k13_rep3_cityscapes)  # noqa: E501
_base_ = './deeplabv3plus_mbv2_k3_cityscapes.py'
model = dict(backbone=dict(
    kernel_sizes=13, small_kernel=3,
    init_cfg=dict(checkpoint='work_dirs/mbv2_k13_rep3_in1k/epoch_100.pth')))
