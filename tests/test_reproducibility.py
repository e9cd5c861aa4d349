"""Reproducible when asked: with ``randomness=dict(seed=..., deterministic=True)`` (mmengine then
calls ``torch.use_deterministic_algorithms(True)``) two runs of tools/train.py on the tiny
segmentation demo give bit-identical weights, because the depth-wise conv's choices come from
the cost model (or PyTorch's conv), never from timing."""
import glob
import os.path as osp
import sys

import pytest
import torch
from conftest import REPO, run_tool

pytest.importorskip('mmseg')

ITERS = 3
CONFIG = """
_base_ = {base!r}
data_root = {root!r}
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch=dict(large_kernel_sizes=[31, 29, 27, 13], layers=[1, 1, 1, 1],
                            channels=[8, 16, 32, 64], small_kernel=5)),
    decode_head=dict(in_channels=[8, 16, 32, 64], channels=16),
    auxiliary_head=dict(in_channels=32, channels=8))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
param_scheduler = []
train_cfg = dict(type='IterBasedTrainLoop', max_iters={iters}, val_interval={iters})
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={iters}))
randomness = dict(seed=7, deterministic=True)
"""


def _weights(work_dir):
    path = osp.join(work_dir, f'iter_{ITERS}.pth')
    assert osp.isfile(path), glob.glob(osp.join(work_dir, '*'))
    from replk_mm.fileio import read_checkpoint
    return read_checkpoint(path)['state_dict']


def test_deterministic_training_gives_identical_weights(tmp_path):
    from tools.dataset_converters.make_demo_data import main as make_demo_data
    root = str(tmp_path / 'ade')
    make_demo_data(['ade20k', root, '--num-train', '6', '--num-val', '1', '--sides', '64', '80'])
    config = tmp_path / 'tiny_deterministic.py'
    config.write_text(CONFIG.format(
        base=osp.join(REPO, 'configs', 'demo', 'upernet_replknet_tiny_demo_ade20k.py'),
        root=root, iters=ITERS))
    runs = []
    for i in range(2):
        work_dir = str(tmp_path / f'run{i}')
        # a measured (timed) decision would be written to this file: there must be none
        cache = tmp_path / f'autotune{i}.json'
        run_tool([sys.executable, 'tools/train.py', str(config), '--work-dir', work_dir],
                 REPLK_DW_CONV_CACHE=str(cache))
        assert not cache.exists(), 'the autotuner timed decisions under deterministic=True'
        runs.append(_weights(work_dir))
    assert runs[0].keys() == runs[1].keys()
    changed = 0
    for name, a in runs[0].items():
        assert torch.equal(a, runs[1][name]), name
        changed += 'large_kernel' in name and a.dtype.is_floating_point
    assert changed  # the large-kernel convs were trained (and compared)
