# DeepLabv3+ on Cityscapes, starting from the ImageNet-trained MobileNet V2 1.0x of
# mbv2_k13_in1k.py,
# 13x13 depth-wise kernels in every layer, with shortcuts (guidelines 2, 3).
# Everything else is deeplabv3plus_mbv2_k3_cityscapes.py.
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (deeplabv3plus_mbv2_k13_cityscapes)  # noqa: E501
_base_ = './deeplabv3plus_mbv2_k3_cityscapes.py'
model = dict(backbone=dict(
    kernel_sizes=13,
    init_cfg=dict(checkpoint='work_dirs/mbv2_k13_in1k/epoch_100.pth')))
