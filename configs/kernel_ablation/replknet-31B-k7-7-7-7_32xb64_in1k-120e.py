# RepLKNet-31B width and depth with large kernels 7-7-7-7 (stages 1-4), ImageNet-1K, 120 epochs.
# Paper results and weights: configs/metafile_kernel_ablation.yml (replknet-31B-k7-7-7-7_32xb64_in1k-120e)  # noqa: E501
# Re-parameterized with a parallel 5x5 depth-wise conv in every block, as RepLKNet-31B.
_base_ = './_base_/replknet-31B_in1k-120e.py'

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, large_kernel_sizes=[7, 7, 7, 7], layers=[2, 2, 18, 2],
                  channels=[128, 256, 512, 1024], small_kernel=5)))
