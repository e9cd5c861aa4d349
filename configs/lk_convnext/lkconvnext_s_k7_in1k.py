# LKConvNeXt-S with ConvNeXt's 7x7 depth-wise kernels (i.e. ConvNeXt-S), ImageNet-1K, 224x224.
# Paper results and weights: configs/metafile_lk_convnext.yml (lkconvnext_s_k7_in1k)
#
# ConvNeXt's own ImageNet-1K recipe, as mmpretrain's configs/convnext/convnext-small_32xb128_in1k.py
# (see lkconvnext_t_k7_in1k.py for what it is and why), with ConvNeXt-S's drop path 0.4.
#
#   bash tools/dist_train.sh configs/lk_convnext/lkconvnext_s_k7_in1k.py 8 --auto-scale-lr
_base_ = 'mmpretrain::convnext/convnext-small_32xb128_in1k.py'

custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='replk_mm.LKConvNeXt',
        arch='small',
        kernel_sizes=(7, 7, 7, 7),
        small_kernel=None,
        drop_path_rate=0.4,
        out_indices=(3, ),
        gap_before_final_norm=True))
