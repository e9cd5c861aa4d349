"""Library functions behind tools/train.py and tools/test.py that need no dataset."""
import pytest
import torch.distributed as dist

from replk_mm import apis


@pytest.fixture
def gloo_group(tmp_path):
    """A one-process gloo group, as a distributed launch leaves it for the tools."""
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                            world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_close_distributed_destroys_the_process_group(gloo_group):
    assert dist.is_initialized()
    apis.close_distributed()
    assert not dist.is_initialized()
    apis.close_distributed()  # nothing to do: no error


def test_runners_reject_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        apis.train_runner(str(tmp_path / 'missing.py'))
    config = tmp_path / 'no_scope.py'
    config.write_text('model = dict(type="X")\n')
    with pytest.raises(ValueError, match='default_scope'):
        apis.train_runner(str(config))
    with pytest.raises(ValueError, match='unknown launcher'):
        apis.train_runner(str(config), launcher='ssh')
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        apis.test_runner(str(config), str(tmp_path / 'missing.pth'))


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_destroy_the_process_group_even_on_error(tmp_path, gloo_group, tool):
    """gloo aborts a process that exits with its group alive (measured: 18 of 40 two-process
    runs of a small all_gather script), so the tools always destroy it."""
    import importlib
    main = importlib.import_module(f'tools.{tool}').main
    argv = [str(tmp_path / 'missing.py')] + ([str(tmp_path / 'x.pth')] if tool == 'test' else [])
    with pytest.raises(FileNotFoundError):
        main(argv)
    assert not dist.is_initialized()


def test_exit_if_distributed_leaves_at_once_with_logs_flushed(tmp_path):
    """After a distributed run the tools leave through os._exit (see exit_if_distributed);
    without a process group it is a no-op."""
    import subprocess
    import sys
    log = tmp_path / 'run.log'
    script = f"""
import logging, torch.distributed as dist
from replk_mm import apis
apis.exit_if_distributed()  # no group yet: returns
logger = logging.getLogger('t'); logger.addHandler(logging.FileHandler({str(log)!r}))
dist.init_process_group('gloo', init_method='file://{tmp_path / "store"}', rank=0, world_size=1)
apis.close_distributed()
logger.warning('written before exit')
print('before', flush=True)
apis.exit_if_distributed(3)
print('after')
"""
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert 'before' in result.stdout and 'after' not in result.stdout
    assert 'written before exit' in log.read_text()


def _with_sync_bn(node):
    """Every ``norm_cfg`` of a model config made SyncBN, as the paper configs have it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'norm_cfg' and isinstance(value, dict) and value.get('type') == 'BN':
                value['type'] = 'SyncBN'
            else:
                _with_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _with_sync_bn(value)


def test_sync_bn_is_built_as_bn_without_cuda(tmp_path, monkeypatch, fast_config_parsing):
    """mmengine's revert_sync_batchnorm, in the builder (deploy, inference, analysis) and in
    ReplkRunner (train / test), turns a config's SyncBN into BN where there is no CUDA."""
    import os.path as osp

    import torch
    from conftest import REPO
    from torch.nn.modules.batchnorm import _BatchNorm

    from replk_mm.apis.builder import build_model
    from replk_mm.engine import ReplkRunner
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = apis.load_config(osp.join(REPO, 'configs', 'demo',
                                    'upernet_replknet_tiny_demo_ade20k.py'))
    cfg.model.backbone.init_cfg = None
    _with_sync_bn(cfg.model)
    assert 'SyncBN' in cfg.pretty_text
    runner = ReplkRunner(model=cfg.model, work_dir=str(tmp_path), default_scope='mmseg',
                         experiment_name='sync_bn_as_bn')
    for model in (build_model(cfg), runner.model):
        kinds = {type(m).__name__ for m in model.modules() if isinstance(m, _BatchNorm)}
        assert kinds and not any('Sync' in k for k in kinds), kinds
