# RepLKNet-31B width and depth with large kernels 13-13-13-13 + UperNet, ADE20K, 512x512 crops,
# the paper's 80K-iteration setting (its base config says what that is), starting
# from the 120-epoch ImageNet-1K model of replknet-31B-k13-13-13-13_32xb64_in1k-120e.py.
# Paper results and weights: configs/metafile_kernel_ablation.yml (upernet_replknet-31B-k13-13-13-13_ade20k)  # noqa: E501
# Re-parameterized with a parallel 5x5 depth-wise conv in every block, as RepLKNet-31B.
_base_ = './_base_/upernet_replknet-31B_ade20k-80k.py'

# Written by `tools/train.py configs/kernel_ablation/replknet-31B-k13-13-13-13_32xb64_in1k-120e.py`
# (an mmpretrain classifier checkpoint: replk_mm converts it to the backbone layout on load).
pretrained = 'work_dirs/replknet-31B-k13-13-13-13_32xb64_in1k-120e/epoch_120.pth'
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, large_kernel_sizes=[13, 13, 13, 13], layers=[2, 2, 18, 2],
                  channels=[128, 256, 512, 1024], small_kernel=5),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
