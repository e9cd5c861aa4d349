# DeepLabv3+ on Cityscapes, starting from the ImageNet-trained MobileNet V2 0.75x of
# mbv2_last9_rep3_in1k.py,
# a 9x9 depth-wise kernel (+ 3x3 re-parameterization) in the last layer
# only, whose maps are 7x7 at 224x224 (guideline 5; a row of the extended paper).
# Everything else is deeplabv3plus_mbv2_k3_cityscapes.py.
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (deeplabv3plus_mbv2_last9_rep3_cityscapes)  # noqa: E501
_base_ = './deeplabv3plus_mbv2_k3_cityscapes.py'
model = dict(backbone=dict(
    kernel_sizes=[3, 3, 3, 3, 3, 3, 9], small_kernel=3,
    init_cfg=dict(checkpoint='work_dirs/mbv2_last9_rep3_in1k/epoch_100.pth')))
