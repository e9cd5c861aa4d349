"""The first mistakes users make get a message that names the problem and what to write:
config syntax errors name their file (a base file too), malformed --cfg-options, hook name and
type typos, unknown top-level keys, overrides of config variables that cannot take effect,
--resume with nothing to resume, --amp on a machine without a GPU. The tools print expected
errors in one line without a traceback; distributed launchers say how to start them."""
import glob
import inspect
import os
import os.path as osp
import types
from unittest import mock

import pytest
import torch
from robustness_helpers import REPO, write_ade20k, write_tiny_seg_config

from replk_mm import apis
from replk_mm.engine import ResumeError
from replk_mm.engine.config_checks import ConfigError


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    base = tmp_path_factory.mktemp('user_errors')
    write_ade20k(str(base / 'data'), num_train=2, num_val=1)
    return write_tiny_seg_config(str(base / 'tiny.py'), str(base / 'data'), iters=4)


def test_syntax_error_in_a_base_file_names_that_file(tmp_path):
    (tmp_path / 'base.py').write_text("default_scope = 'mmseg'\nmodel = dict(type='X',\n"
                                      "optim = dict(lr=0.1)\n")
    (tmp_path / 'child.py').write_text("_base_ = './base.py'\nwork_dir = 'w'\n")
    with pytest.raises(SyntaxError) as info:
        apis.load_config(str(tmp_path / 'child.py'))
    assert str(tmp_path / 'base.py') in str(info.value)
    assert info.value.filename == str(tmp_path / 'base.py') and info.value.lineno == 2
    (tmp_path / 'own.py').write_text("default_scope = 'mmseg'\nx = [1, 2\n")
    with pytest.raises(SyntaxError, match=r'syntax error in config file .*own\.py, line 2'):
        apis.load_config(str(tmp_path / 'own.py'))


def test_cfg_options_without_equals_says_how_to_write_it(config, capsys):
    import tools.train
    with pytest.raises(SystemExit):
        tools.train.main([config, '--cfg-options', 'train_cfg.max_iters'])
    err = capsys.readouterr().err
    assert "'train_cfg.max_iters' is not KEY=VALUE" in err and 'train_cfg.max_iters=100' in err


def test_hook_name_and_type_typos(config, tmp_path):
    with pytest.raises(ConfigError, match=r'default_hooks\.checkpiont has no type .*did you '
                                          r'mean default_hooks\.checkpoint\?'):
        apis.load_config(config, {'default_hooks.checkpiont.interval': 5})
    typo = tmp_path / 'typo.py'
    typo.write_text(f"_base_ = {config!r}\ncustom_hooks = [dict(type='EMAHok')]\n")
    with pytest.raises(ConfigError, match=r"custom_hooks\[0\]: hook type 'EMAHok' is not "
                                          r"registered .*did you mean 'EMAHook'\?"):
        apis.load_config(str(typo))


def test_runner_keys_and_default_hook_names_are_mmengines():
    """config_checks asks mmengine instead of copying its lists: the Runner's arguments and
    cfg keys, and the names of the hooks Runner.register_default_hooks registers."""
    from mmengine.runner import Runner

    from replk_mm.engine import config_checks
    keys = config_checks.runtime_keys()
    assert set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'} <= keys
    assert {'model_wrapper_cfg', 'find_unused_parameters', 'compile', 'sync_bn'} <= keys
    registered = []
    Runner.register_default_hooks(types.SimpleNamespace(register_hook=registered.append))
    names = config_checks.default_hook_names()
    assert 'checkpoint' in names and len(names) == len(registered)

    class NewerRunner(Runner):  # an mmengine upgrade: a new argument, a new default hook
        def __init__(self, model, new_option=None, **kwargs):
            super().__init__(model, **kwargs)

        def register_default_hooks(self, hooks=None):
            default_hooks = dict(timer=dict(type='IterTimerHook'), profiler=dict(type='X'))
            return default_hooks, hooks

    with mock.patch.object(config_checks, 'Runner', NewerRunner):
        config_checks.runtime_keys.cache_clear()
        config_checks.default_hook_names.cache_clear()
        try:
            assert 'new_option' in config_checks.runtime_keys()
            assert config_checks.default_hook_names() == ('timer', 'profiler')
        finally:
            config_checks.runtime_keys.cache_clear()
            config_checks.default_hook_names.cache_clear()


def test_unknown_top_level_key_gets_a_suggestion(config):
    with pytest.raises(ConfigError, match=r"trian_cfg.max_iters: the config has no top-level "
                                          r"key 'trian_cfg'; did you mean 'train_cfg'\?"):
        apis.load_config(config, {'trian_cfg.max_iters': 2})
    # keys the Runner reads are fine even when the config does not set them
    assert apis.load_config(config, {'load_from': 'x.pth'}).load_from == 'x.pth'


def test_overriding_a_config_variable_is_an_error_naming_the_keys_to_set(config):
    with pytest.raises(ConfigError) as info:
        apis.load_config(config, {'max_iters': 2})
    message = str(info.value)
    assert "'max_iters' is a config variable" in message and 'changes nothing' in message
    assert 'Set instead: --cfg-options train_cfg.max_iters=2' in message
    assert 'param_scheduler.1.end' in message  # same value: named as possibly derived
    with pytest.raises(ConfigError,
                       match=r'train_dataloader\.dataset\.pipeline\.2\.crop_size=\[32,32\]'):
        apis.load_config(config, {'train_pipeline.2.crop_size': [32, 32]})
    # the keys it names do take effect
    cfg = apis.load_config(config, {'train_cfg.max_iters': 2, 'param_scheduler.1.end': 2})
    assert cfg.train_cfg.max_iters == 2 and cfg.param_scheduler[1].end == 2


def _log(work_dir):
    return ''.join(open(p).read() for p in glob.glob(osp.join(work_dir, '*', '*.log')))


def test_resume_with_nothing_to_resume_says_so(config, tmp_path):
    work_dir = str(tmp_path / 'empty')
    runner = apis.train_runner(config, work_dir=work_dir, resume=True)
    runner.load_or_resume()
    log = _log(work_dir)
    assert f'--resume: nothing to resume in {work_dir} (no last_checkpoint file): training ' \
           'starts from iteration 0.' in log
    assert 'Auto resumed from the latest checkpoint None' not in log
    # a last_checkpoint that names a removed file is an error, not a fresh start
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'iter_8.pth'))
    runner = apis.train_runner(config, work_dir=work_dir, resume=True)
    with pytest.raises(ResumeError, match=r'last_checkpoint names .*iter_8\.pth, which does not '
                                          r'exist.*--resume CHECKPOINT'):
        runner.load_or_resume()


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message on a CPU-only machine')
def test_amp_on_a_cpu_says_what_it_needs(config, tmp_path):
    with pytest.raises(ValueError, match='--amp .*needs a CUDA GPU.*train without --amp'):
        apis.train_runner(config, work_dir=str(tmp_path / 'amp'), amp=True)
    with pytest.raises(ValueError, match='AmpOptimWrapper.*needs a CUDA GPU'):
        apis.train_runner(config, work_dir=str(tmp_path / 'amp'),
                          cfg_options={'optim_wrapper.type': 'AmpOptimWrapper'})


def test_each_runner_draws_with_its_own_visualizer(tmp_path):
    """mmseg's, mmdet's and mmpretrain's runtimes all name their visualizer 'visualizer':
    a second run in one process must not get the first one's (another task's) instance."""
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.visualization import Visualizer
    from mmseg.visualization import SegLocalVisualizer

    from replk_mm.engine import ReplkRunner

    first = SegLocalVisualizer.get_instance('visualizer')
    Visualizer.get_instance(f'plain_{tmp_path.name}')  # the latest created, for now
    runner = ReplkRunner(model=torch.nn.Linear(1, 1), work_dir=str(tmp_path),
                         visualizer=dict(type='DetLocalVisualizer', name='visualizer'),
                         default_scope='mmdet')
    assert isinstance(runner.visualizer, DetLocalVisualizer) and runner.visualizer is not first
    assert Visualizer.get_current_instance() is runner.visualizer  # what the hooks draw with
    assert runner.visualizer.instance_name.startswith('visualizer_')


def test_runs_of_one_config_in_one_process_keep_their_own_logs(tmp_path):
    """Two runners of one config built in the same second: mmengine would give the second the
    first's logger (its log file) and message hub."""
    from mmengine.config import Config

    from replk_mm.engine import ReplkRunner
    (tmp_path / 'same_name.py').write_text("default_scope = 'mmseg'\n")
    cfg = Config.fromfile(str(tmp_path / 'same_name.py'))
    first, second = (ReplkRunner(model=torch.nn.Linear(1, 1), work_dir=str(tmp_path / d),
                                 default_scope='mmseg', cfg=cfg) for d in ('a', 'b'))
    assert first.experiment_name != second.experiment_name
    assert first.logger is not second.logger and first.message_hub is not second.message_hub
    assert first.experiment_name.startswith('same_name_')


# -- expected errors: one line, no traceback (tools); bugs keep theirs ---------------------------

def _expected_error_classes():
    from replk_mm.apis.inference import ImageInputError
    from replk_mm.datasets.errors import (
        DatasetNotFoundError,
        LabelSizeError,
        LabelValueError,
        MissingImagesError,
    )
    from replk_mm.datasets.seg_checked import SampleLoadError
    from replk_mm.engine.config_checks import ConfigSyntaxError
    from replk_mm.engine.hooks import DiskSpaceError
    from replk_mm.errors import MissingFileError
    from replk_mm.fileio import CheckpointError
    from replk_mm.models.checkpoint import CheckpointMismatchError
    from replk_mm.utils.metafile import MetafileError
    return (CheckpointError, CheckpointMismatchError, ConfigError, ConfigSyntaxError,
            DatasetNotFoundError, DiskSpaceError, ImageInputError, LabelSizeError,
            LabelValueError, MetafileError, MissingFileError, MissingImagesError, ResumeError,
            SampleLoadError)


def test_every_expected_error_is_a_user_error():
    from replk_mm.errors import UserError
    assert [c.__name__ for c in _expected_error_classes() if not issubclass(c, UserError)] == []


def _run_tool_main(path, argv, monkeypatch):
    """Run the tool's ``if __name__ == '__main__':`` block in this process."""
    import runpy
    monkeypatch.setattr('sys.argv', [path] + argv)
    runpy.run_path(path, run_name='__main__')


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_print_expected_errors_in_one_line(tool, tmp_path, monkeypatch, capsys):
    missing = str(tmp_path / 'no_such_config.py')
    argv = [missing] + ([] if tool == 'train' else [str(tmp_path / 'x.pth')])
    if tool == 'test':
        (tmp_path / 'x.pth').write_bytes(b'')
    with pytest.raises(SystemExit) as info:
        _run_tool_main(osp.join(REPO, 'tools', f'{tool}.py'), argv, monkeypatch)
    assert info.value.code == f'{tool}.py: MissingFileError: config file {missing} does not exist'
    # with REPLK_TRACEBACK=1 the exception itself propagates (and python prints its traceback)
    monkeypatch.setenv('REPLK_TRACEBACK', '1')
    with pytest.raises(FileNotFoundError, match='no_such_config'):
        _run_tool_main(osp.join(REPO, 'tools', f'{tool}.py'), argv, monkeypatch)


def test_an_expected_error_from_a_data_loader_worker_is_one_line_too():
    from replk_mm.datasets.errors import LabelValueError
    from replk_mm.errors import report_user_errors
    # how torch's DataLoader re-raises an error of a worker process
    wrapped = LabelValueError(
        'Caught LabelValueError in DataLoader worker process 0.\nOriginal Traceback (most '
        'recent call last):\n  File "x.py", line 1, in f\n    raise\n'
        'replk_mm.datasets.errors.LabelValueError: label map a.png holds ids ...\n')
    with pytest.raises(SystemExit) as info:
        with report_user_errors('train.py'):
            raise wrapped
    assert info.value.code == ('train.py: LabelValueError: label map a.png holds ids ... '
                               '(in a data loader worker)')


def test_bugs_keep_their_traceback():
    from replk_mm.errors import report_user_errors
    with pytest.raises(KeyError):  # not a UserError: not turned into a one-line exit
        with report_user_errors('train.py'):
            {}['x']


# -- distributed launchers ----------------------------------------------------------------------

def test_launcher_pytorch_without_torchrun_says_how_to_start_it(monkeypatch):
    import tools.train
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=r'--launcher pytorch needs .*RANK.*not set.*'
                                          r'tools/dist_train\.sh CONFIG GPUS.*torchrun'):
        tools.train.main(['any_config.py', '--launcher', 'pytorch'])
    for name in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=r'--launcher slurm needs .*slurm_train\.sh'):
        apis.test_runner('any_config.py', 'x.pth', launcher='slurm')


@pytest.mark.parametrize('script, args, problem', [
    ('dist_train.sh', ['c.py', '0'], "GPUS must be a positive integer, got '0'"),
    ('dist_train.sh', ['c.py', '-1'], "GPUS must be a positive integer, got '-1'"),
    ('dist_train.sh', ['c.py', 'abc'], "GPUS must be a positive integer, got 'abc'"),
    ('dist_train.sh', ['c.py'], 'CONFIG GPUS are required, got 1 argument(s)'),
    ('dist_test.sh', ['c.py', 'x.pth', '0'], "GPUS must be a positive integer, got '0'"),
    ('dist_test.sh', ['c.py', 'x.pth'], 'CONFIG CHECKPOINT GPUS are required'),
    ('slurm_train.sh', ['p', 'j', 'c.py'], 'PARTITION JOB CONFIG WORK_DIR are required'),
    ('slurm_test.sh', ['p', 'j', 'c.py', 'x.pth'], "GPUS must be a positive integer, got 'x'"),
])
def test_launch_scripts_check_their_arguments(script, args, problem):
    import subprocess
    result = subprocess.run(['bash', osp.join(REPO, 'tools', script), *args],
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, GPUS='x', PYTHON='false'))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f'{script}: {problem}')
    assert lines[1].startswith('usage: ') and 'GPUS' in lines[2]
