# LKConvNeXt-B with ConvNeXt's 7x7 depth-wise kernels (i.e. ConvNeXt-B), ImageNet-1K, 224x224.
# Paper results and weights: configs/metafile_lk_convnext.yml (lkconvnext_b_k7_in1k)
#
# The reference of the second large-kernel ConvNeXt comparison (docs/lk_convnext.md): the
# claim is that ConvNeXt-S with very large kernels beats ConvNeXt-B, so lkconvnext_s_k31_in1k.py
# is compared with this config. ConvNeXt's own ImageNet-1K recipe, as mmpretrain's
# configs/convnext/convnext-base_32xb128_in1k.py (see lkconvnext_t_k7_in1k.py for what it is
# and why), with ConvNeXt-B's drop path 0.5 (mmpretrain's _base_/models/convnext/convnext-base.py).
#
#   bash tools/dist_train.sh configs/lk_convnext/lkconvnext_b_k7_in1k.py 8 --auto-scale-lr
_base_ = 'mmpretrain::convnext/convnext-base_32xb128_in1k.py'

custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='replk_mm.LKConvNeXt',
        arch='base',
        kernel_sizes=(7, 7, 7, 7),
        small_kernel=None,
        drop_path_rate=0.5,
        out_indices=(3, ),
        gap_before_final_norm=True))
