# DeepLabv3+ on Cityscapes, starting from the ImageNet-trained MobileNet V2 1.0x of
# mbv2_k9_in1k.py,
# 9x9 depth-wise kernels in every layer (guideline 3).
# Everything else is deeplabv3plus_mbv2_k3_cityscapes.py.
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (deeplabv3plus_mbv2_k9_cityscapes)
_base_ = './deeplabv3plus_mbv2_k3_cityscapes.py'
model = dict(backbone=dict(
    kernel_sizes=9,
    init_cfg=dict(checkpoint='work_dirs/mbv2_k9_in1k/epoch_100.pth')))
