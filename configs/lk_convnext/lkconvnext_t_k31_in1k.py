# LKConvNeXt-T with 31-29-27-13 depth-wise kernels and 5x5 conv-BN re-parameterization
# branches, ImageNet-1K, 224x224.
# Paper results and weights: configs/metafile_lk_convnext.yml (lkconvnext_t_k31_in1k)
#
# Identical to lkconvnext_t_k7_in1k.py (ConvNeXt's recipe, see there) except the kernels:
# RepLKNet-31B's kernel sizes per stage, each large depth-wise conv with a parallel 5x5 conv + BN
# (RepLKNet's re-parameterization), merged into the large kernel by `replk_mm.switch_to_deploy`
# or tools/deploy/reparameterize.py after training.
#
#   bash tools/dist_train.sh configs/lk_convnext/lkconvnext_t_k31_in1k.py 8 --auto-scale-lr
_base_ = './lkconvnext_t_k7_in1k.py'

model = dict(
    backbone=dict(
        kernel_sizes=(31, 29, 27, 13),
        small_kernel=5,
        small_kernel_norm_cfg=dict(type='BN')))
