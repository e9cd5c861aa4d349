# MobileNet V2 1.0x on ImageNet-1K, 100 epochs:
# a 13x13 depth-wise kernel (+ 3x3 re-parameterization) in the last layer
# only, whose maps are 7x7 at 224x224 (guideline 5; RepLKNet arXiv 2203.06717v1, Table 4).
# "The last stage" is read as layer7 (320 channels, one block, input 7x7): the journal
# version's params for these models (arXiv 2410.08049, Table 2c) fit exactly one enlarged conv
# of layer7's width (docs/lk_mobilenet_v2.md, "Which blocks 'the last stage' changes").
# Everything else is mbv2_k3_in1k.py (the paper trains every variant alike).
# Paper results and weights: configs/metafile_lk_mobilenet_v2.yml (mbv2_last13_rep3_in1k)
_base_ = './mbv2_k3_in1k.py'
model = dict(backbone=dict(kernel_sizes=[3, 3, 3, 3, 3, 3, 13], small_kernel=3))
