# UniRepLKNet + UperNet with an FCN auxiliary head on stage 3: the official UniRepLKNet
# segmentation model (AILab-CVC/UniRepLKNet, segmentation/configs/ade20k/: the heads of
# upernet_r50_nopretrain.py, the same as RepLKNet's, on `UniRepLKNetBackbone`, whose BNs are
# SyncBN). Configs set the arch, drop path, gradient checkpointing, channels and checkpoint.
_base_ = '../../_base_/models/upernet_replknet.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='UniRepLKNet',  # replk_mm's, registered in the mmseg scope
        arch='T',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        with_cp=False,
        norm_cfg=dict(type='SyncBN', requires_grad=True)),  # tools/train.py: BN on CPU
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))
