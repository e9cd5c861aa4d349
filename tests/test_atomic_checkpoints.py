"""Checkpoints a kill cannot lose: tools/train.py writes each checkpoint to a temporary name and
renames it, updates last_checkpoint after that, and removes the oldest checkpoint last; a run
killed (SIGKILL) at any moment of a save finishes with --resume."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from mmengine.evaluator import BaseMetric
from mmengine.fileio.backends import LocalBackend
from mmengine.model import BaseModel
from robustness_helpers import one_thread, write_ade20k, write_tiny_seg_config

import replk_mm.engine.hooks as hooks_module
from replk_mm.apis import train_runner
from replk_mm.engine import AtomicCheckpointHook, ReplkRunner
from replk_mm.fileio import read_checkpoint

KILL_POINTS = ('before_save', 'mid_write', 'after_rename', 'before_removal')

# Runs in a fresh interpreter: imports once, then forks one child per kill point (the parent
# runs no torch computation, so forking is safe). Each child resumes the prepared run with
# tools/train.py and SIGKILLs itself at the named moment of the iteration-4 save.
KILL_DRIVER = r'''
import json, os, signal, sys
sys.path.insert(0, {repo!r})
from mmengine.fileio.backends import LocalBackend
import tools.train as train_tool
from replk_mm.apis import train_runner  # noqa: F401 (imported before forking)
from replk_mm.engine.hooks import AtomicCheckpointHook as Hook
# What building the first runner imports lazily, imported once here instead of in each child.
import mmengine.utils.dl_utils.collect_env, torchvision.ops, yapf.yapflib.yapf_api  # noqa
from mmseg.utils import register_all_modules
register_all_modules(init_default_scope=False)

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def arm(point):
    if point == 'before_save':
        orig = Hook._save_checkpoint_with_step
        def save(self, runner, step, meta):
            if step == 4:
                die()
            return orig(self, runner, step, meta)
        Hook._save_checkpoint_with_step = save
    elif point == 'mid_write':  # half of the bytes written, then killed
        orig = LocalBackend.put
        def put(self, obj, filepath):
            if 'iter_4' in str(filepath):
                with open(filepath, 'wb') as f:
                    f.write(obj[:len(obj) // 2])
                die()
            return orig(self, obj, filepath)
        LocalBackend.put = put
    elif point == 'after_rename':
        orig = Hook._publish
        def publish(self, tmp, final):
            orig(self, tmp, final)
            if final.endswith('iter_4.pth'):
                die()
        Hook._publish = publish
    elif point == 'before_removal':
        orig = Hook._remove_stale
        def remove(self, runner, names):
            if names:
                die()
            return orig(self, runner, names)
        Hook._remove_stale = remove

config, base = sys.argv[1], sys.argv[2]
results = {{}}
for point in sys.argv[3:]:
    pid = os.fork()
    if pid == 0:
        try:
            arm(point)
            train_tool.main([config, '--work-dir', os.path.join(base, point), '--resume'])
        finally:
            os._exit(3)  # the kill point was never reached
    _, status = os.waitpid(pid, 0)
    results[point] = 'SIGKILL' if os.WIFSIGNALED(status) and \
        os.WTERMSIG(status) == signal.SIGKILL else f'status {{status}}'
print('RESULTS ' + json.dumps(results))
'''


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """The tiny seg config (4 iterations, a checkpoint every 2, max_keep_ckpts=1) and a run
    stopped after its iteration-2 checkpoint."""
    base = tmp_path_factory.mktemp('atomic')
    write_ade20k(str(base / 'data'))
    config = write_tiny_seg_config(str(base / 'tiny.py'), str(base / 'data'), iters=4)
    with pytest.MonkeyPatch.context() as mp, one_thread():
        mp.setenv('REPLK_DW_CONV_BACKEND', 'native')
        import tools.train
        tools.train.main([config, '--work-dir', str(base / 'stopped'),
                          '--cfg-options', 'train_cfg.max_iters=2'])
    assert sorted(p for p in os.listdir(base / 'stopped') if p.endswith('.pth')) == \
        ['iter_2.pth']
    return dict(base=base, config=config, stopped=str(base / 'stopped'))


@pytest.fixture(scope='module')
def killed_runs(tiny_run):
    """One copy of the stopped run per kill point, each resumed by tools/train.py in a child
    process that is SIGKILLed at that point of the iteration-4 save."""
    base = tiny_run['base'] / 'killed'
    for point in KILL_POINTS:
        shutil.copytree(tiny_run['stopped'], base / point)
        with open(base / point / 'last_checkpoint', 'w') as f:  # it names an absolute path
            f.write(str(base / point / 'iter_2.pth'))
    script = KILL_DRIVER.format(repo=REPO)
    result = subprocess.run(
        [sys.executable, '-c', script, tiny_run['config'], str(base), *KILL_POINTS],
        capture_output=True, text=True, timeout=600, cwd=REPO,
        env=dict(os.environ, REPLK_DW_CONV_BACKEND='native', OMP_NUM_THREADS='1'))
    lines = [line for line in result.stdout.splitlines() if line.startswith('RESULTS ')]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    return dict(base=base, status=json.loads(lines[-1][len('RESULTS '):]))


def _checkpoints(work_dir):
    return sorted(n for n in os.listdir(work_dir) if n.endswith('.pth') or 'replk-tmp' in n)


def _last_checkpoint(work_dir):
    """The file last_checkpoint names, relative to ``work_dir`` (where it must be)."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return osp.relpath(f.read().strip(), work_dir)


# What each kill leaves behind (checkpoint files, last_checkpoint); mmengine's own hook would
# leave iter_2.pth removed and a truncated iter_4.pth at 'mid_write'.
LEFT_BEHIND = {
    'before_save': (['iter_2.pth'], 'iter_2.pth'),
    'mid_write': (['.iter_4.pth.replk-tmp', 'iter_2.pth'], 'iter_2.pth'),
    'after_rename': (['iter_2.pth', 'iter_4.pth'], 'iter_2.pth'),
    'before_removal': (['iter_2.pth', 'iter_4.pth'], 'iter_4.pth'),
}


@pytest.mark.parametrize('point', KILL_POINTS)
def test_resume_finishes_a_run_killed_during_a_save(killed_runs, tiny_run, point, monkeypatch):
    work_dir = str(killed_runs['base'] / point)
    assert killed_runs['status'][point] == 'SIGKILL'
    files, last = LEFT_BEHIND[point]
    assert _checkpoints(work_dir) == files
    assert _last_checkpoint(work_dir) == last

    monkeypatch.setenv('REPLK_DW_CONV_BACKEND', 'native')
    import tools.train
    with one_thread():
        runner = tools.train.main([tiny_run['config'], '--work-dir', work_dir, '--resume'])
    assert runner.iter == 4
    # one checkpoint kept (max_keep_ckpts=1), no temporary file, last_checkpoint names it
    assert _checkpoints(work_dir) == ['iter_4.pth']
    assert _last_checkpoint(work_dir) == 'iter_4.pth'
    saved = read_checkpoint(osp.join(work_dir, 'iter_4.pth'))
    assert saved['meta']['iter'] == 4


def test_train_runner_swaps_in_the_atomic_hook_with_all_arguments(tiny_run):
    hook_cfg = dict(type='CheckpointHook', interval=3, by_epoch=False, max_keep_ckpts=2,
                    save_best='mIoU', rule='greater', save_last=False,
                    filename_tmpl='ckpt_{}.pth', save_optimizer=False)
    options = {'default_hooks.checkpoint': hook_cfg}
    runner = train_runner(tiny_run['config'], work_dir=str(tiny_run['base'] / 'swap'),
                          cfg_options=options)
    hooks = [h for h in runner.hooks if type(h).__name__.endswith('CheckpointHook')]
    assert len(hooks) == 1 and type(hooks[0]) is AtomicCheckpointHook
    hook = hooks[0]
    assert (hook.interval, hook.by_epoch, hook.max_keep_ckpts, hook.save_best, hook.rules,
            hook.save_last, hook.filename_tmpl, hook.save_optimizer) == \
        (3, False, 2, ['mIoU'], ['greater'], False, 'ckpt_{}.pth', False)
    # checkpoint=None (no checkpoints) stays so
    runner = train_runner(tiny_run['config'], work_dir=str(tiny_run['base'] / 'swap2'),
                          cfg_options={'default_hooks.checkpoint': None})
    assert not [h for h in runner.hooks if 'CheckpointHook' in type(h).__name__]


# -- the order of a save, on a tiny model (no dataset files) ----------------------------------

class _Tiny(BaseModel):

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='loss'):
        logits = self.lin(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=torch.nn.functional.cross_entropy(logits, torch.stack(labels)))
        return [dict(score=float(logits.sum()))]


class _RisingScore(BaseMetric):
    """A score that improves at every validation (so every validation saves a best)."""
    calls = 0

    def process(self, data_batch, data_samples):
        self.results.append(1)

    def compute_metrics(self, results):
        type(self).calls += 1
        return dict(score=np.float64(type(self).calls))


def _tiny_runner(work_dir, validate=True):
    data = [dict(inputs=torch.randn(4), labels=torch.tensor(i % 2)) for i in range(4)]
    loader = dict(dataset=data, batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='pseudo_collate'))
    val = dict(val_dataloader=loader, val_evaluator=dict(type=_RisingScore), val_cfg=dict())
    return ReplkRunner(
        model=_Tiny(), work_dir=str(work_dir), train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=4, val_interval=2),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', interval=2,
                                           by_epoch=False, max_keep_ckpts=1,
                                           save_best='score' if validate else None,
                                           rule='greater')),
        experiment_name=f'order_{osp.basename(str(work_dir))}', **(val if validate else {}))


def test_new_checkpoint_is_complete_before_anything_is_removed(tmp_path, monkeypatch):
    events = []
    put, replace = LocalBackend.put, os.replace

    def record_put(self, obj, filepath):
        events.append(('write', osp.basename(filepath)))
        return put(self, obj, filepath)

    def record_replace(src, dst):
        events.append(('rename', osp.basename(src), osp.basename(dst)))
        return replace(src, dst)

    def record_remove(self, runner, names):
        events.extend(('remove', name) for name in names)
        return remove(self, runner, names)

    remove = AtomicCheckpointHook._remove_stale
    monkeypatch.setattr(LocalBackend, 'put', record_put)
    monkeypatch.setattr(hooks_module.os, 'replace', record_replace)
    monkeypatch.setattr(AtomicCheckpointHook, '_remove_stale', record_remove)
    with one_thread():
        _tiny_runner(tmp_path).train()

    def in_order(*expected):
        """Whether ``expected`` occur in this order (list.index raises if one does not)."""
        position = 0
        for event in expected:
            position = events.index(event, position) + 1
        return True

    # the periodic save of iteration 4 (max_keep_ckpts=1 drops iteration 2)
    assert in_order(('write', '.iter_4.pth.replk-tmp'),
                    ('rename', '.iter_4.pth.replk-tmp', 'iter_4.pth'),
                    ('rename', '.last_checkpoint.replk-tmp', 'last_checkpoint'),
                    ('remove', 'iter_2.pth'))
    # the best checkpoint: the new one is in place before the previous best is removed
    assert in_order(('rename', '.best_score_iter_4.pth.replk-tmp', 'best_score_iter_4.pth'),
                    ('remove', 'best_score_iter_2.pth'))
    assert ('remove', 'best_score_iter_2.pth') not in events[:events.index(
        ('rename', '.best_score_iter_4.pth.replk-tmp', 'best_score_iter_4.pth'))]
    assert _checkpoints(tmp_path) == ['best_score_iter_4.pth', 'iter_4.pth']
    hub = read_checkpoint(tmp_path / 'iter_4.pth')['message_hub']['runtime_info']
    assert osp.basename(hub['best_ckpt']) == 'best_score_iter_4.pth'
    assert hub['keep_ckpt_ids'] == [4]


def test_every_checkpoint_hook_of_a_config_becomes_atomic():
    from mmengine.config import Config

    from replk_mm.apis.runner import use_atomic_checkpoints
    cfg = use_atomic_checkpoints(Config(dict(
        default_hooks=dict(logger=dict(type='LoggerHook')),  # mmengine would add its own
        custom_hooks=[dict(type='mmengine.CheckpointHook', interval=5, by_epoch=False)])))
    assert cfg.default_hooks.checkpoint == dict(type='AtomicCheckpointHook', interval=1)
    assert cfg.custom_hooks[0] == dict(type='AtomicCheckpointHook', interval=5, by_epoch=False)


# -- a full disk ------------------------------------------------------------------------------

def _disk_full_after_iter_2(monkeypatch, work_dir, free=1000):
    """shutil.disk_usage says ``free`` bytes once iter_2.pth is written (plenty before)."""
    real = shutil.disk_usage

    def disk_usage(path):
        usage = real(path)
        if osp.exists(osp.join(work_dir, 'iter_2.pth')):
            return usage._replace(free=free)
        return usage

    monkeypatch.setattr(hooks_module.shutil, 'disk_usage', disk_usage)


def test_a_checkpoint_that_does_not_fit_stops_the_run_before_writing(tmp_path, monkeypatch):
    from replk_mm.engine.hooks import DiskSpaceError
    _disk_full_after_iter_2(monkeypatch, str(tmp_path))
    with one_thread(), pytest.raises(DiskSpaceError) as info:
        _tiny_runner(tmp_path, validate=False).train()
    message = str(info.value)
    assert '\n' not in message
    assert f'no room for checkpoint iter_4.pth in {tmp_path} (checked before writing): it ' \
           'needs about ' in message and ', 1000 bytes (0.0 MiB) are free' in message
    assert 'room for one checkpoint more than max_keep_ckpts (two with max_keep_ckpts=1)' in \
        message
    assert f'the last checkpoint {tmp_path / "iter_2.pth"} is intact' in message
    # nothing removed, nothing half-written; --resume continues from iteration 2
    assert _checkpoints(tmp_path) == ['iter_2.pth']
    assert _last_checkpoint(tmp_path) == 'iter_2.pth'


def test_a_write_that_runs_out_of_space_removes_its_partial_file(tmp_path, monkeypatch):
    import errno

    from replk_mm.engine.hooks import DiskSpaceError
    put = LocalBackend.put

    def put_until_full(self, obj, filepath):
        if 'iter_4' in str(filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise OSError(errno.ENOSPC, 'No space left on device')
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put_until_full)
    with one_thread(), pytest.raises(DiskSpaceError,
                                     match=f'iter_4.pth in {tmp_path} .the disk filled up while '
                                           'writing it; the partial file was removed.') as info:
        _tiny_runner(tmp_path, validate=False).train()
    assert info.value.__cause__.errno == errno.ENOSPC
    assert _checkpoints(tmp_path) == ['iter_2.pth']
    assert _last_checkpoint(tmp_path) == 'iter_2.pth'


def test_interrupted_saves_are_removed_before_the_runner_writes(tmp_path, monkeypatch):
    from mmengine.config import Config

    import replk_mm.apis.runner as runner_module
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / '.iter_4.pth.replk-tmp').write_bytes(b'\0' * 1000)
    seen = []
    # any config: parsing a real one costs seconds and does not matter here
    monkeypatch.setattr(runner_module, 'load_config', lambda config, options: Config(dict(
        default_scope='mmseg', model=dict(type='EncoderDecoder'))))
    monkeypatch.setattr(runner_module, 'build_runner',
                        lambda cfg: seen.append(sorted(os.listdir(cfg.work_dir))))
    train_runner('config.py', work_dir=str(work_dir), resume=True)
    assert seen == [[]]  # gone before the runner (its logs, its config dump) was built
