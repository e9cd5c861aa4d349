"""Small data, configs and checkpoints for the robustness tests (safe loading, atomic and strict
checkpoints, user errors, data checks). Everything is written directly (no subprocess)."""
import json
import os
import os.path as osp

import numpy as np
import torch
from fast_test_helpers import one_torch_thread as one_thread  # noqa: F401 (re-exported)
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_SEG_CONFIG = osp.join(REPO, 'configs', 'demo', 'upernet_replknet_tiny_demo_ade20k.py')

# The demo config's pipeline, model types and hooks, with a much smaller RepLKNet (8-64
# channels, 7x7 large kernels: the checks under test do not depend on the kernel size, and 31x31
# kernels cost seconds per CPU iteration), 64x64 crops, no workers, and a short schedule that
# saves every 2 iterations keeping one checkpoint (the demo's max_keep_ckpts).
TINY_SEG_CONFIG = """
_base_ = {base!r}
data_root = {root!r}
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch=dict(large_kernel_sizes=[7, 7, 7, 7], layers=[1, 1, 1, 1],
                            channels={channels}, small_kernel=3){backbone_extra}),
    decode_head=dict(in_channels={channels}, channels=16),
    auxiliary_head=dict(in_channels={channels}[2], channels=8))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(96, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
max_iters = {iters}
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=2),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=2, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=2, max_keep_ckpts=1, save_best=None))
"""


def write_ade20k(root, num_train=4, num_val=2, size=(80, 64), seed=0):
    """A minimal ADE20K-layout dataset: random jpgs and png label maps (ids 0-3)."""
    rng = np.random.default_rng(seed)
    for split, count in (('training', num_train), ('validation', num_val)):
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', split), exist_ok=True)
        for i in range(count):
            name = f'ADE_{split[:5]}_{i:08d}'
            img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(img).save(osp.join(root, 'images', split, name + '.jpg'))
            label = rng.integers(0, 4, (size[1], size[0]), dtype=np.uint8)
            Image.fromarray(label).save(osp.join(root, 'annotations', split, name + '.png'))
    return root


def write_tiny_seg_config(path, data_root, iters=6, channels=(8, 16, 32, 64),
                          backbone_extra='', validate=False, extra=''):
    """The tiny config at ``path``, flattened (no ``_base_``): resolving the demo config's
    ``mmseg::`` bases costs seconds per parse, and the tests parse it many times. Without
    ``validate`` training runs no validation (faster)."""
    text = TINY_SEG_CONFIG.format(base=DEMO_SEG_CONFIG, root=str(data_root), iters=iters,
                                  channels=list(channels), backbone_extra=backbone_extra)
    if not validate:
        text += 'val_dataloader = None\nval_cfg = None\nval_evaluator = None\n'
    from mmengine.config import Config
    source = osp.splitext(str(path))[0] + '_inherits.py'
    with open(source, 'w') as f:
        f.write(text + extra)
    Config.fromfile(source).dump(str(path))
    return str(path)


def write_coco(root, num_images=3, size=(64, 48)):
    """A minimal COCO-layout dataset (train2017 + instances_train2017.json): one box each."""
    os.makedirs(osp.join(root, 'train2017'), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        name = f'{i:012d}.jpg'
        Image.new('RGB', size, (i * 40, 90, 160)).save(osp.join(root, 'train2017', name))
        images.append(dict(id=i + 1, file_name=name, width=size[0], height=size[1]))
        annotations.append(dict(id=i + 1, image_id=i + 1, category_id=1,
                                bbox=[4, 4, 20, 16], area=320.0, iscrowd=0,
                                segmentation=[[4, 4, 24, 4, 24, 20, 4, 20]]))
    ann_file = osp.join(root, 'annotations', 'instances_train2017.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=1, name='square')]), f)
    return ann_file


class RunsCode:
    """Pickles to a call of ``open(marker, 'w')``: unpickling it creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def write_crafted_checkpoint(path, marker, state_dict=None):
    """A checkpoint that runs code (creates ``marker``) when unpickled with full pickle."""
    torch.save({'meta': {}, 'state_dict': state_dict or {'w': torch.zeros(1)},
                'payload': RunsCode(marker)}, path)
    return str(path)

