# LKConvNeXt-S with ConvNeXt's 7x7 kernels (i.e. ConvNeXt-S) + UperNet, ADE20K, 512x512 crops.
# Paper results and weights: configs/metafile_lk_convnext.yml (upernet_lkconvnext_s_k7_ade20k)
#
# As upernet_lkconvnext_t_k7_ade20k.py (what the recipe is and where it comes from), with
# mmseg's ConvNeXt-S settings (configs/convnext/
# convnext-small_upernet_8xb2-amp-160k_ade20k-512x512.py): drop path 0.3, stage-wise lr decay
# over num_layers 12. Starts from lkconvnext_s_k7_in1k.py's run; the official weights:
#   --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/convnext_small_1k_224.pth
#   bash tools/dist_train.sh configs/lk_convnext/upernet_lkconvnext_s_k7_ade20k.py 8 --amp
_base_ = './upernet_lkconvnext_t_k7_ade20k.py'

pretrained = 'work_dirs/lkconvnext_s_k7_in1k/epoch_300.pth'

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))
