# LKConvNeXt-T with ConvNeXt's 7x7 depth-wise kernels (i.e. ConvNeXt-T), ImageNet-1K, 224x224.
# Paper results and weights: configs/metafile_lk_convnext.yml (lkconvnext_t_k7_in1k)
#
# The baseline of the large-kernel ConvNeXt comparison (docs/lk_convnext.md); its large-kernel
# twin is lkconvnext_t_k31_in1k.py (31-29-27-13 kernels + 5x5 re-parameterization branches).
#
# Schedule: ConvNeXt's own ImageNet-1K recipe (facebookresearch/ConvNeXt TRAINING.md), as in
# mmpretrain's configs/convnext/convnext-tiny_32xb128_in1k.py, inherited unchanged: 300 epochs,
# AdamW (lr 4e-3 at a global batch of 4096 = 32 GPUs x 128, weight decay 0.05, none on norms
# and biases), 20 linear warm-up epochs then cosine, RandAugment, Mixup 0.8, CutMix 1.0, random
# erasing 0.25, label smoothing 0.1, EMA (momentum 1e-4), drop path 0.1. The claim these
# configs test (docs/lk_convnext.md: not in RepLKNet v1; an announcement of a later version)
# states no schedule: this is ConvNeXt's recipe.
#
#   bash tools/dist_train.sh configs/lk_convnext/lkconvnext_t_k7_in1k.py 8 --auto-scale-lr
# On G GPUs x 128 images `--auto-scale-lr` scales the lr by G x 128 / 4096 (mmpretrain's rule);
# the ConvNeXt authors kept the global batch at 4096 with gradient accumulation instead:
# `--cfg-options optim_wrapper.accumulative_counts=4` on 8 GPUs.
# The checkpoint it writes (work_dirs/lkconvnext_t_k7_in1k/epoch_300.pth; mmengine's EMAHook
# puts the EMA weights in its state_dict) is what upernet_lkconvnext_t_k7_ade20k.py starts from.
_base_ = 'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py'

custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='replk_mm.LKConvNeXt',  # mmpretrain has its own `ConvNeXt`: use the scoped name
        arch='tiny',
        kernel_sizes=(7, 7, 7, 7),
        small_kernel=None,
        drop_path_rate=0.1,
        out_indices=(3, ),
        gap_before_final_norm=True))  # (N, C) features for the linear head, as ConvNeXt
