# MobileNet V2 1.0x on ImageNet-1K, 100 epochs:
# 13x13 depth-wise kernels with a parallel 3x3 re-parameterization branch
# (guideline 3).
# Everything else is mbv2_k3_in1k.py (the paper trains every variant alike).
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (mbv2_k13_rep3_in1k)
_base_ = './mbv2_k3_in1k.py'
model = dict(backbone=dict(kernel_sizes=13, small_kernel=3))
