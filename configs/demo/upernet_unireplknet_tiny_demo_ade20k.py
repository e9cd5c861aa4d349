# CPU demo: UniRepLKNet + UperNet on the synthetic ADE20K-layout data, trained from scratch in
# minutes; the RepLKNet demo (upernet_replknet_tiny_demo_ade20k.py: data, pipeline, heads,
# schedule) with its backbone swapped for a shallow, narrow UniRepLKNet: UniRepLKNet-T's
# block kinds (3x3 blocks in stage 0, 13x13 Dilated Reparam Blocks elsewhere, alternating with
# 3x3 blocks in stage 2), 1-1-2-1 blocks of 32-64-128-256 channels.
# Data: `python tools/dataset_converters/make_demo_data.py ade20k data/demo_ade20k`.
_base_ = './upernet_replknet_tiny_demo_ade20k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='UniRepLKNet',
        arch=dict(depths=[1, 1, 2, 1], channels=[32, 64, 128, 256],
                  kernel_sizes=[[3], [13], [13, 3], [13]]),
        drop_path_rate=0.0,
        norm_cfg=dict(type='BN', requires_grad=True),  # one process: plain BN
        init_cfg=None))  # trained from scratch
