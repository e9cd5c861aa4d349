# LKConvNeXt-B with ConvNeXt's 7x7 kernels (i.e. ConvNeXt-B) + UperNet, ADE20K, 512x512 crops.
# Paper results and weights: configs/metafile_lk_convnext.yml (upernet_lkconvnext_b_k7_ade20k)
#
# The reference of upernet_lkconvnext_s_k31_ade20k.py (ConvNeXt-S with very large kernels vs
# ConvNeXt-B, docs/lk_convnext.md). As upernet_lkconvnext_t_k7_ade20k.py (what the recipe is and
# where it comes from), with mmseg's ConvNeXt-B settings (configs/convnext/
# convnext-base_upernet_8xb2-amp-160k_ade20k-512x512.py and _base_/models/upernet_convnext.py):
# drop path 0.4, stage-wise lr decay over num_layers 12, heads on 128-256-512-1024 channels.
# Starts from lkconvnext_b_k7_in1k.py's run; the official weights:
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/convnext_base_1k_224.pth
#   bash tools/dist_train.sh configs/lk_convnext/upernet_lkconvnext_b_k7_ade20k.py 8 --amp
_base_ = './upernet_lkconvnext_t_k7_ade20k.py'

pretrained = 'work_dirs/lkconvnext_b_k7_in1k/epoch_300.pth'

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))
