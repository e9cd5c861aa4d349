"""Config -> mmengine Runner for training and testing, for mmseg, mmdet and mmpretrain configs.

`tools/train.py` and `tools/test.py` are thin wrappers over these functions, so tests can call
them directly. The config's ``default_scope`` decides which downstream package is used.
"""
import logging
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import RUNNERS

import replk_mm  # noqa: F401  (registers RepLKNet)

from ..engine.config_checks import (
                                    ConfigError,
                                    ConfigSyntaxError,
                                    check_cfg_options,
                                    check_hooks,
                                    locate_syntax_error,
                                    syntax_error_message,
)
from ..engine.hooks import AtomicCheckpointHook, remove_interrupted_saves
from ..engine.runner import PARTIAL_LOAD_KEY, ReplkRunner
from ..errors import MissingFileError

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
# What each distributed launcher reads from the environment its starter sets.
LAUNCHER_ENV = {
    'pytorch': (('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
                'start it with tools/dist_train.sh CONFIG GPUS (tools/dist_test.sh CONFIG '
                'CHECKPOINT GPUS for tests) or torchrun --nproc_per_node=GPUS tools/train.py '
                'CONFIG --launcher pytorch'),
    'slurm': (('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
              'start it with tools/slurm_train.sh (tools/slurm_test.sh), which runs it under '
              'srun'),
}


def check_launcher(launcher):
    """A known launcher, started the way it needs (torchrun, srun); else ConfigError."""
    if launcher not in LAUNCHERS:
        raise ConfigError(f'unknown launcher {launcher!r}; choose from {LAUNCHERS}')
    names, how = LAUNCHER_ENV.get(launcher, ((), ''))
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise ConfigError(
            f'--launcher {launcher} needs the environment its starter sets ({", ".join(missing)} '
            f'not set): {how}. For a single process, leave out --launcher.')


def load_config(config, cfg_options=None):
    """Parse ``config`` and apply ``cfg_options``, with clear errors for the usual mistakes
    (see ``replk_mm.engine.config_checks``)."""
    if not osp.isfile(config):
        raise MissingFileError(f'config file {config} does not exist')
    try:
        cfg = Config.fromfile(config)
    except SyntaxError:
        located = locate_syntax_error(config)
        if located is None:
            raise
        # mmengine parses a temporary copy and reports File "<unknown>"
        raise ConfigSyntaxError(syntax_error_message(located),
                          (located.filename, located.lineno, located.offset,
                           located.text)) from None
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    if cfg.get('default_scope') not in ('mmseg', 'mmdet', 'mmpretrain'):
        raise ConfigError(f"{config}: default_scope must be 'mmseg', 'mmdet' or 'mmpretrain', "
                         f"got {cfg.get('default_scope')!r}")
    check_hooks(cfg)
    return cfg


def adapt_to_device(cfg, launcher):
    """Let GPU configs run unchanged on a CPU-only machine (gloo, DDP without devices); the
    Runner builds SyncBN layers as BN there (:meth:`ReplkRunner.build_model`)."""
    if torch.cuda.is_available():
        return cfg
    if launcher != 'none':
        cfg.setdefault('env_cfg', ConfigDict())
        cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
        cfg.env_cfg.dist_cfg.backend = 'gloo'
        wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(type='MMDistributedDataParallel')
        wrapper.device_ids = None  # a CPU module takes no device ids
        cfg.model_wrapper_cfg = wrapper
        # mmengine's launcher calls torch.cuda.set_device(); initialise gloo ourselves instead.
        if launcher == 'pytorch' and not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend='gloo')
    return cfg


_closed_a_process_group = False


def close_distributed():
    """Destroy the default process group, if any (all launchers), before the tool returns."""
    global _closed_a_process_group
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
        _closed_a_process_group = True


def exit_if_distributed(code=0):
    """End a tool process that ran a process group, without interpreter finalization.

    gloo's worker threads free a finished collective's tensors lazily, and that needs the GIL;
    during interpreter finalization it aborts the process ("terminate called without an active
    exception", SIGABRT) after a successful run; ``destroy_process_group()`` alone does not
    prevent it (the measurements are in DEVELOPERS.md). Checkpoints, logs and
    visualizer backends are written and closed by then; logging and stdio are flushed here.
    """
    if not _closed_a_process_group:
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _set_work_dir(cfg, config, work_dir):
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])


def _enable_amp(cfg):
    wrapper = cfg.optim_wrapper
    if not _amp_device_available():
        raise ConfigError(AMP_NEEDS_DEVICE)
    if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        print_log('AMP is already enabled in the config', logger='current', level=30)
        return
    if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise ConfigError(f'--amp works with OptimWrapper, the config uses {wrapper.type}')
    wrapper.type = 'AmpOptimWrapper'
    wrapper.setdefault('loss_scale', 'dynamic')


AMP_NEEDS_DEVICE = (
    '--amp (mmengine\'s AmpOptimWrapper) needs a CUDA GPU (or an NPU/MLU/MUSA device); this '
    'machine has none. On the CPU, train without --amp (docs/robustness.md).')


def _amp_device_available():
    from mmengine.device import is_cuda_available, is_mlu_available, is_npu_available
    try:
        from mmengine.device import is_musa_available
    except ImportError:  # older mmengine
        def is_musa_available():
            return False
    return is_cuda_available() or is_npu_available() or is_mlu_available() or \
        is_musa_available()


def _check_amp_device(cfg):
    wrapper = cfg.get('optim_wrapper') or {}
    if str(wrapper.get('type', '')).split('.')[-1] == 'AmpOptimWrapper' and \
            not _amp_device_available():
        raise ConfigError(AMP_NEEDS_DEVICE.replace('--amp', 'optim_wrapper.type=AmpOptimWrapper'))


def use_atomic_checkpoints(cfg):
    """Put ``AtomicCheckpointHook`` in place of every ``CheckpointHook`` of ``cfg`` (with all
    its arguments), including mmengine's implicit default one."""
    hooks = cfg.get('default_hooks')
    if hooks is None:
        hooks = cfg.default_hooks = ConfigDict()
    if 'checkpoint' not in hooks:  # mmengine would add CheckpointHook(interval=1)
        hooks.checkpoint = ConfigDict(type='AtomicCheckpointHook', interval=1)
    entries = [('default_hooks.checkpoint', hooks.checkpoint)] + [
        (f'custom_hooks[{i}]', hook) for i, hook in enumerate(cfg.get('custom_hooks') or [])]
    for where, hook in entries:
        if not isinstance(hook, dict):
            continue
        kind = hook.get('type')
        name = kind.split('.')[-1] if isinstance(kind, str) else getattr(kind, '__name__', '')
        if name == 'CheckpointHook':
            hook.type = 'AtomicCheckpointHook'
        elif where == 'default_hooks.checkpoint' and name != 'AtomicCheckpointHook' and \
                not (isinstance(kind, type) and issubclass(kind, AtomicCheckpointHook)):
            print_log(f'{where} is {kind}, not (Atomic)CheckpointHook: its saves are not made '
                      'atomic by replk_mm', logger='current', level=30)
    return cfg


def _enable_auto_scale_lr(cfg, config):
    scale = cfg.get('auto_scale_lr')
    if not scale or 'base_batch_size' not in scale:
        raise ConfigError(f'{config}: --auto-scale-lr needs '
                         '`auto_scale_lr = dict(base_batch_size=...)` in the config (the global '
                         'batch size its lr was set for)')
    scale.enable = True


def build_runner(cfg):
    """``ReplkRunner`` (safe, strict checkpoint loading) unless the config names another
    ``runner_type``."""
    runner_type = cfg.get('runner_type')
    if runner_type in (None, 'Runner', 'ReplkRunner'):
        return ReplkRunner.from_cfg(cfg)
    runner_cls = RUNNERS.get(runner_type) if isinstance(runner_type, str) else runner_type
    if not (isinstance(runner_cls, type) and issubclass(runner_cls, ReplkRunner)):
        print_log(f'runner_type {runner_type} is not a replk_mm.engine.ReplkRunner: checkpoints '
                  'load as that runner loads them (not strictly, no mmengine safe globals)',
                  logger='current', level=30)
        if cfg.get('resume') == 'auto':  # mmengine's own auto-resume spelling
            cfg.resume, cfg.load_from = True, None
    return RUNNERS.build(cfg)


def train_runner(config, work_dir=None, resume=False, amp=False, cfg_options=None,
                 launcher='none', auto_scale_lr=False, allow_partial=False):
    """Runner for training. `resume`: False, True (latest checkpoint in work_dir) or a path.
    `allow_partial`: let ``load_from`` load a checkpoint that does not fit the model (the
    config key ``allow_partial_load``); by default that is an error."""
    check_launcher(launcher)
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    _set_work_dir(cfg, config, work_dir)
    if amp:
        _enable_amp(cfg)
    _check_amp_device(cfg)
    if allow_partial:
        cfg[PARTIAL_LOAD_KEY] = True
    use_atomic_checkpoints(cfg)
    if auto_scale_lr:  # lr x (GPUs x images per GPU) / auto_scale_lr.base_batch_size
        _enable_auto_scale_lr(cfg, config)
    if resume is True or resume == 'auto':
        # ReplkRunner: the latest checkpoint in work_dir, else the config's load_from
        cfg.resume = 'auto'
    elif resume:
        if not osp.isfile(resume):
            raise MissingFileError(f'checkpoint to resume from {resume} does not exist')
        cfg.resume, cfg.load_from = True, resume
    adapt_to_device(cfg, launcher)
    _remove_interrupted_saves(cfg)
    return build_runner(cfg)


def _remove_interrupted_saves(cfg):
    """Before the runner writes its logs and config dump: a save that failed on a full disk may
    have left a large temporary file (see ``AtomicCheckpointHook``)."""
    if os.environ.get('RANK', '0') != '0' or os.environ.get('SLURM_PROCID', '0') != '0':
        return
    folders = {cfg.work_dir}
    out_dir = ((cfg.get('default_hooks') or {}).get('checkpoint') or {}).get('out_dir')
    if isinstance(out_dir, str) and '://' not in out_dir:
        folders.add(osp.join(out_dir, osp.basename(osp.abspath(cfg.work_dir))))
    for folder in sorted(folders):
        remove_interrupted_saves(folder, lambda message: print_log(message, logger='current'))


def _enable_visualization(cfg, show_dir):
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ConfigError("--show-dir needs a 'visualization' entry in default_hooks")
    hook.draw = True
    if cfg.default_scope == 'mmdet':
        hook.test_out_dir = show_dir
    else:
        cfg.visualizer.save_dir = show_dir
        hook.setdefault('interval', 1)


def _enable_tta(cfg):
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ConfigError('--tta needs tta_model and tta_pipeline in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def test_runner(config, checkpoint, work_dir=None, tta=False, show_dir=None, out=None,
                cfg_options=None, launcher='none', allow_partial=False):
    """Runner whose `.test()` evaluates `checkpoint` on the config's test set.

    The checkpoint must fit the model (strict loading; the error lists the keys and the likely
    cause); `allow_partial=True` loads what fits and warns about the rest."""
    check_launcher(launcher)
    if not (checkpoint.startswith(('http://', 'https://')) or osp.isfile(checkpoint)):
        raise MissingFileError(f'checkpoint {checkpoint} does not exist')
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    _set_work_dir(cfg, config, work_dir)
    cfg.load_from = checkpoint
    if allow_partial:
        cfg[PARTIAL_LOAD_KEY] = True
    if show_dir:
        _enable_visualization(cfg, show_dir)
    if tta:
        _enable_tta(cfg)
    adapt_to_device(cfg, launcher)
    runner = build_runner(cfg)
    if out:
        _dump_results(runner, cfg, out)
    return runner


def _dump_results(runner, cfg, out):
    from mmengine.evaluator import DumpResults
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))
