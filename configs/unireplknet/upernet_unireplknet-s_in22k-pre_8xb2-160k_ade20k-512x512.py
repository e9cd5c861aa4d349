# UniRepLKNet-S (ImageNet-22K, fine-tuned on ImageNet-1K at 384) + UperNet, ADE20K, 512x512.
# Paper results and weights: configs/metafile_unireplknet.yml (upernet_unireplknet-s_in22k-pre_8xb2-160k_ade20k-512x512)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet segmentation/configs/ade20k/
# upernet_unireplknet_s_in22k_512_160k_ade20k.py: the ImageNet-1K UniRepLKNet-S recipe
# started from the 22K-pretrained, 1K-fine-tuned 384x384 classifier.
_base_ = './upernet_unireplknet-s_8xb2-160k_ade20k-512x512.py'

pretrained = 'checkpoints/unireplknet_s_in22k_to_in1k_384_acc86.44.pth'  # link in the metafile

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
