# UniRepLKNet-B (ImageNet-22K, fine-tuned on ImageNet-1K at 384) + UperNet, ADE20K, 640x640.
# Paper results and weights: configs/metafile_unireplknet.yml (upernet_unireplknet-b_in22k-pre_8xb2-160k_ade20k-640x640)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet segmentation/configs/ade20k/
# upernet_unireplknet_b_in22k_640_160k_ade20k.py: the UniRepLKNet-S 640 recipe with
# UniRepLKNet-B (drop path 0.3, layer-wise decay 0.9 over 12 layers).
_base_ = './upernet_unireplknet-s_in22k-pre_8xb2-160k_ade20k-640x640.py'

pretrained = 'checkpoints/unireplknet_b_in22k_to_in1k_384_acc87.40.pth'  # link in the metafile

model = dict(
    backbone=dict(
        arch='B',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
