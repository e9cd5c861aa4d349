"""End to end through the user-facing tools: a tiny RepLKNet + UperNet trains on generated
ADE20K-layout data with tools/train.py (loss decreases), tools/test.py evaluates it (also with
--tta, --show-dir, --out), tools/dist_test.sh with 2 gloo processes gives the same mIoU,
tools/dist_train.sh trains with 2 gloo processes, and a
stopped run resumes from the same iteration with the same optimizer state."""
import copy
import glob
import json
import os
import os.path as osp
import pickle
import re
import shutil
import sys

import pytest
import torch
from conftest import free_port, run_tool
from mmengine.hooks import Hook

from replk_mm.datasets.synthetic import make_ade20k_demo
from replk_mm.fileio import read_checkpoint

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo', 'upernet_replknet_tiny_demo_ade20k.py')
MAX_ITERS = 24
HALF = MAX_ITERS // 2

# The demo config, narrower still (8-64 channels, same kernels) on 64x64 crops.
TINY_CONFIG = """
_base_ = {base!r}
data_root = {root!r}
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch=dict(large_kernel_sizes=[31, 29, 27, 13], layers=[1, 1, 2, 1],
                            channels=[8, 16, 32, 64], small_kernel=5)),
    decode_head=dict(in_channels=[8, 16, 32, 64], channels=16),
    auxiliary_head=dict(in_channels=32, channels=8))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=4e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=2),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=2, end={iters}),
]
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={half}, max_keep_ckpts=4))
log_processor = dict(window_size=1)  # log each iteration's own loss
"""


def _miou(output):
    found = re.findall(r'mIoU: (\d+\.\d+)', output)
    assert found, f'no mIoU in the output:\n{output[-3000:]}'
    return float(found[-1])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp('seg_train')
    root = str(base / 'data')
    make_ade20k_demo(root, num_train=16, num_val=4, min_side=64, max_side=80)
    config = str(base / 'tiny_seg.py')
    with open(config, 'w') as f:
        f.write(TINY_CONFIG.format(base=DEMO_CONFIG, root=root, iters=MAX_ITERS, half=HALF))
    work_dir = str(base / 'work')
    output = run_tool([sys.executable, 'tools/train.py', config, '--work-dir', work_dir])
    return dict(config=config, work_dir=work_dir, output=output, base=base)


def _scalars(work_dir):
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        return [json.loads(line) for line in f]


def test_train_py_trains_and_loss_decreases(trained):
    records = [r for r in _scalars(trained['work_dir']) if 'loss' in r]
    assert [r['iter'] for r in records] == list(range(1, MAX_ITERS + 1))
    losses = [r['loss'] for r in records]
    assert sum(losses[-4:]) / 4 < 0.85 * sum(losses[:4]) / 4, losses
    for n in (HALF, MAX_ITERS):
        assert osp.isfile(osp.join(trained['work_dir'], f'iter_{n}.pth'))
    assert 'RepLKNet' in trained['output'] or 'replk_mm' in trained['output']
    # validation at the end printed mmseg's per-class table with the demo's class names
    for name in ('wall', 'box', 'tent', 'ball'):
        assert re.search(rf'\|\s+{name}\s+\|', trained['output']), name


def test_test_py_evaluates_with_show_dir_and_out(trained):
    ckpt = osp.join(trained['work_dir'], f'iter_{MAX_ITERS}.pth')
    show_dir = str(trained['base'] / 'show')
    out = str(trained['base'] / 'preds.pkl')
    output = run_tool([sys.executable, 'tools/test.py', trained['config'], ckpt, '--work-dir',
                       str(trained['base'] / 'eval1'), '--show-dir', show_dir, '--out', out])
    miou = _miou(output)
    assert 0 <= miou <= 100
    trained['miou'] = miou
    assert len(glob.glob(osp.join(show_dir, '**', '*.png'), recursive=True)) == 4
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 4


def test_test_py_tta(trained):
    ckpt = osp.join(trained['work_dir'], f'iter_{MAX_ITERS}.pth')
    output = run_tool([sys.executable, 'tools/test.py', trained['config'], ckpt, '--tta',
                       '--work-dir', str(trained['base'] / 'eval_tta')])
    assert 0 <= _miou(output) <= 100


def test_dist_test_two_gloo_processes_match_one(trained):
    ckpt = osp.join(trained['work_dir'], f'iter_{MAX_ITERS}.pth')
    single = trained.get('miou')
    if single is None:
        single = _miou(run_tool([sys.executable, 'tools/test.py', trained['config'], ckpt,
                                 '--work-dir', str(trained['base'] / 'eval1b')]))
    output = run_tool(['bash', 'tools/dist_test.sh', trained['config'], ckpt, '2',
                       '--work-dir', str(trained['base'] / 'eval2')],
                      PYTHON=sys.executable, PORT=str(free_port()))
    assert _miou(output) == pytest.approx(single, abs=1e-2)


def test_dist_train_two_gloo_processes(trained):
    """dist_train.sh on a CPU-only machine: gloo, BN instead of SyncBN, DDP without devices,
    and both processes exit cleanly (the process group is destroyed before exit)."""
    work_dir = str(trained['base'] / 'dist_train')
    output = run_tool(['bash', 'tools/dist_train.sh', trained['config'], '2',
                       '--work-dir', work_dir, '--cfg-options', 'train_cfg.max_iters=4',
                       'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4'],
                      PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    assert re.search(r'Iter\(train\) \[4/4\]', output), output[-3000:]
    assert 0 <= _miou(output) <= 100


class _SnapshotAtStart(Hook):
    """Records what training starts from, after the runner has resumed."""

    def before_train(self, runner):
        self.iter = runner.iter
        self.optimizer = copy.deepcopy(runner.optim_wrapper.state_dict())


def test_resume_continues_stoppedrun_tool(trained):
    from replk_mm.apis import train_runner

    # The state of a run stopped right after its middle checkpoint.
    work_dir = str(trained['base'] / 'stopped')
    shutil.copytree(trained['work_dir'], work_dir)
    os.remove(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'))
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, f'iter_{HALF}.pth'))

    # What `tools/train.py CONFIG --work-dir DIR --resume` runs; the snapshot is taken after
    # Runner.train() has resumed (calling load_or_resume() before train() would rebuild the
    # warm-up scheduler on top of the resumed lr).
    runner = train_runner(trained['config'], work_dir=work_dir, resume=True)
    snapshot = _SnapshotAtStart()
    runner.register_hook(snapshot, priority='VERY_LOW')
    runner.train()

    assert snapshot.iter == HALF
    saved = read_checkpoint(osp.join(work_dir, f'iter_{HALF}.pth'))['optimizer']
    state = snapshot.optimizer
    assert state['param_groups'][0]['lr'] == pytest.approx(saved['param_groups'][0]['lr'])
    assert state['state'].keys() == saved['state'].keys()
    for key, value in saved['state'].items():
        for name in ('exp_avg', 'exp_avg_sq', 'step'):
            torch.testing.assert_close(state['state'][key][name], value[name])
    assert runner.iter == MAX_ITERS
    assert osp.isfile(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'))
