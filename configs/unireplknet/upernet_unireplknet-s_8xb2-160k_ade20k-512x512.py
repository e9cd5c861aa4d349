# UniRepLKNet-S (ImageNet-1K) + UperNet, ADE20K, 512x512 crops: the official recipe.
# Paper results and weights: configs/metafile_unireplknet.yml (upernet_unireplknet-s_8xb2-160k_ade20k-512x512)  # noqa: E501
#
# Ported from AILab-CVC/UniRepLKNet segmentation/configs/ade20k/
# upernet_unireplknet_s_512_160k_ade20k.py: the UniRepLKNet-T recipe with UniRepLKNet-S, drop
# path 0.3, gradient checkpointing, layer-wise decay rate 0.9 over 12 layers. Global batch 16
# (8 GPUs x 2 images), 160k iterations; see the T config for other GPU counts and testing.
_base_ = './upernet_unireplknet-t_8xb2-160k_ade20k-512x512.py'

pretrained = 'checkpoints/unireplknet_s_in1k_224_acc83.91.pth'  # link in the metafile

model = dict(
    backbone=dict(
        arch='S',
        drop_path_rate=0.3,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.9, num_layers=12))
