# UniRepLKNet-XL (ImageNet-22K, fine-tuned on ImageNet-1K at 384) + UperNet, ADE20K, 640x640.
# Paper results and weights: configs/metafile_unireplknet.yml (upernet_unireplknet-xl_in22k-pre_8xb2-160k_ade20k-640x640)  # noqa: E501
#
# The official release has this model's result and checkpoint (README, "ADE-20K Semantic
# Segmentation") but no config: segmentation/configs/ade20k/ stops at L. This is the
# UniRepLKNet-L recipe (drop path 0.4, layer-wise decay 0.85 over 12 layers, 160k x 16 images)
# with UniRepLKNet-XL widths; the released checkpoint's backbone and heads have exactly these
# shapes, so it loads and tests as released. Training it reproduces L's recipe, not
# necessarily the authors' XL run (docs/unireplknet.md).
_base_ = './upernet_unireplknet-l_in22k-pre_8xb2-160k_ade20k-640x640.py'

pretrained = 'checkpoints/unireplknet_xl_in22k_to_in1k_384_acc87.96.pth'  # link in the metafile

model = dict(
    backbone=dict(arch='XL', init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]),
    auxiliary_head=dict(in_channels=1024))
