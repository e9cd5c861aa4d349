# MobileNet V2 1.0x on ImageNet-1K, 100 epochs:
# 9x9 depth-wise kernels in every layer (guideline 3).
# Everything else is mbv2_k3_in1k.py (the paper trains every variant alike).
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (mbv2_k9_in1k)
_base_ = './mbv2_k3_in1k.py'
model = dict(backbone=dict(kernel_sizes=9))
