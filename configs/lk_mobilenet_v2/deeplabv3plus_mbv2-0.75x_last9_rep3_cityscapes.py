# DeepLabv3+ on Cityscapes, starting from the ImageNet-trained MobileNet V2 0.75x of
# mbv2-0.75x_last9_rep3_in1k.py: a 9x9 depth-wise kernel (+ 3x3 re-parameterization) in the
# last layer only (guideline 5; a row of the journal version only, arXiv 2410.08049 Table 2c,
# kept at the width it counts). The heads take the 0.75x widths (240, 24 and 72 channels).
# Everything else is deeplabv3plus_mbv2_k3_cityscapes.py.
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (deeplabv3plus_mbv2-0.75x_last9_rep3_cityscapes)  # noqa: E501
_base_ = './deeplabv3plus_mbv2_k3_cityscapes.py'
model = dict(
    backbone=dict(
        arch='0.75x', kernel_sizes=[3, 3, 3, 3, 3, 3, 9], small_kernel=3,
        init_cfg=dict(checkpoint='work_dirs/mbv2-0.75x_last9_rep3_in1k/epoch_100.pth')),
    decode_head=dict(in_channels=240),
    auxiliary_head=dict(in_channels=72))
