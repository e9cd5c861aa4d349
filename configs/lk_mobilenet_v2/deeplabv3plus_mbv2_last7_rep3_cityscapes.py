# DeepLabv3+ on Cityscapes, starting from the ImageNet-trained MobileNet V2 1.0x of
# mbv2_last7_rep3_in1k.py,
# a 7x7 depth-wise kernel (+ 3x3 re-parameterization) in the last layer
# only, whose maps are 7x7 at 224x224 (guideline 5).
# Everything else is deeplabv3plus_mbv2_k3_cityscapes.py.
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (deeplabv3plus_mbv2_last7_rep3_cityscapes)  # noqa: E501
_base_ = './deeplabv3plus_mbv2_k3_cityscapes.py'
model = dict(backbone=dict(
    kernel_sizes=[3, 3, 3, 3, 3, 3, 7], small_kernel=3,
    init_cfg=dict(checkpoint='work_dirs/mbv2_last7_rep3_in1k/epoch_100.pth')))
