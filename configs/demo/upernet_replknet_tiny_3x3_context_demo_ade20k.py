# CPU demo, small-kernel twin of upernet_replknet_tiny_context_demo_ade20k.py: the same tiny
# RepLKNet + UperNet, data, schedule and seed, with 3x3 depth-wise kernels in every stage
# (3-3-3-3) and no re-parameterization branch (a 5x5 branch cannot be merged into a 3x3
# kernel). tools/demo/kernel_size_demo.py trains both and prints their mIoU and effective
# receptive fields side by side.
_base_ = './upernet_replknet_tiny_context_demo_ade20k.py'

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, large_kernel_sizes=[3, 3, 3, 3], layers=[1, 1, 2, 1],
                  channels=[32, 64, 128, 256], small_kernel=None)))
