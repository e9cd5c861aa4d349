# LKConvNeXt-T with 31-29-27-13 kernels and 5x5 conv-SyncBN re-parameterization branches +
# UperNet, ADE20K, 512x512 crops.
# Paper results and weights: configs/metafile_lk_convnext.yml (upernet_lkconvnext_t_k31_ade20k)
#
# Identical to upernet_lkconvnext_t_k7_ade20k.py (the ConvNeXt recipe, see there) except the
# kernels, starting from lkconvnext_t_k31_in1k.py's ImageNet run.
#   bash tools/dist_train.sh configs/lk_convnext/upernet_lkconvnext_t_k31_ade20k.py 8 --amp
# Without that run, the official 7x7 ConvNeXt-T weights can start it, each kernel zero-padded
# (centred) into the larger one (docs/lk_convnext.md; not the paper's experiment):
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/convnext_tiny_1k_224.pth \
#                 model.backbone.init_cfg.embed_smaller_kernels=True
# Large kernels need more memory: model.backbone.with_cp=True trades time for it.
_base_ = './upernet_lkconvnext_t_k7_ade20k.py'

pretrained = 'work_dirs/lkconvnext_t_k31_in1k/epoch_300.pth'

model = dict(
    backbone=dict(
        kernel_sizes=(31, 29, 27, 13),
        small_kernel=5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
