# MobileNet V2 at width 0.75x on ImageNet-1K, 100 epochs: a 7x7 depth-wise kernel
# (+ 3x3 re-parameterization) in the last layer only (guideline 5), at the width the journal
# version's Table 2c counts (arXiv 2410.08049); see mbv2-0.75x_k3_in1k.py.
# Everything else is mbv2_last7_rep3_in1k.py.
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (mbv2-0.75x_last7_rep3_in1k)
_base_ = './mbv2_last7_rep3_in1k.py'
model = dict(backbone=dict(arch='0.75x'))
