# RepLKNet-31B width and depth with large kernels 3-3-3-3 (stages 1-4), ImageNet-1K, 120 epochs.
# Paper results and weights: configs/metafile_kernel_ablation.yml (replknet-31B-k3-3-3-3_32xb64_in1k-120e)  # noqa: E501
# No parallel small kernel: a 5x5 branch cannot be merged into a 3x3 kernel (see the docs).
_base_ = './_base_/replknet-31B_in1k-120e.py'

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, large_kernel_sizes=[3, 3, 3, 3], layers=[2, 2, 18, 2],
                  channels=[128, 256, 512, 1024], small_kernel=None)))
