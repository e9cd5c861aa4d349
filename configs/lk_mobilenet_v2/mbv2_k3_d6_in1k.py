# MobileNet V2 1.0x on ImageNet-1K, 100 epochs: every depth-wise 3x3 conv replaced by a 3x3
# conv with dilation 6, whose maximum receptive field (13x13) is that of the dense
# 13x13 kernels of mbv2_k13_in1k.py (RepLKNet arXiv 2203.06717v1, Table 11 and Sec. 5.3:
# same params and FLOPs as the 3x3 model, 3.5M / 300M).
# Everything else is mbv2_k3_in1k.py.
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (mbv2_k3_d6_in1k)
_base_ = './mbv2_k3_in1k.py'
model = dict(backbone=dict(kernel_sizes=3, dilation=6))
