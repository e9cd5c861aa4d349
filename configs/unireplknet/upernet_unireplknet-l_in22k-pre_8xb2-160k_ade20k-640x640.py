# UniRepLKNet-L (ImageNet-22K, fine-tuned on ImageNet-1K at 384) + UperNet, ADE20K, 640x640.
# Paper results and weights: configs/metafile_unireplknet.yml (upernet_unireplknet-l_in22k-pre_8xb2-160k_ade20k-640x640)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet segmentation/configs/ade20k/
# upernet_unireplknet_l_in22k_640_160k_ade20k.py: the UniRepLKNet-S 640 recipe with
# UniRepLKNet-L, drop path 0.4, layer-wise decay 0.85 over 12 layers.
_base_ = './upernet_unireplknet-s_in22k-pre_8xb2-160k_ade20k-640x640.py'

pretrained = 'checkpoints/unireplknet_l_in22k_to_in1k_384_acc87.88.pth'  # link in the metafile

model = dict(
    backbone=dict(
        arch='L',
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.85, num_layers=12))
