# LKConvNeXt-S with 31-29-27-13 kernels and 5x5 conv-SyncBN re-parameterization branches +
# UperNet, ADE20K, 512x512 crops.
# Paper results and weights: configs/metafile_lk_convnext.yml (upernet_lkconvnext_s_k31_ade20k)
#
# Identical to upernet_lkconvnext_s_k7_ade20k.py except the kernels (as
# upernet_lkconvnext_t_k31_ade20k.py), starting from lkconvnext_s_k31_in1k.py's run.
#   bash tools/dist_train.sh configs/lk_convnext/upernet_lkconvnext_s_k31_ade20k.py 8 --amp
_base_ = './upernet_lkconvnext_s_k7_ade20k.py'

pretrained = 'work_dirs/lkconvnext_s_k31_in1k/epoch_300.pth'

model = dict(
    backbone=dict(
        kernel_sizes=(31, 29, 27, 13),
        small_kernel=5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
