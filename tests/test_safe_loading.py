"""Checkpoints are read weights-only: mmengine checkpoints through exactly the types they hold,
a checkpoint that would run code on unpickling is refused on every path a user has (and its code
does not run), files that are not checkpoints get errors naming them, and importing replk_mm
allow-lists exactly the types mmengine checkpoints hold, so that a plain mmengine Runner
resumes."""
import functools
import http.server
import os
import os.path as osp
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from conftest import REPO, TINY_ARCH
from robustness_helpers import (
                                one_thread,
                                write_ade20k,
                                write_crafted_checkpoint,
                                write_tiny_seg_config,
)

from replk_mm import RepLKNet
from replk_mm.fileio import (
                             ALLOW_UNSAFE_ENV,
                             NotACheckpointError,
                             UnsafeCheckpointError,
                             allow_mmengine_checkpoints,
                             mmengine_checkpoint_globals,
                             read_checkpoint,
)

# -- read_checkpoint: what is refused, what a bad file says --------------------------------------


@pytest.fixture
def crafted(tmp_path):
    marker = tmp_path / 'code_ran'
    path = write_crafted_checkpoint(tmp_path / 'crafted.pth', marker)
    yield path
    assert not marker.exists(), 'the crafted checkpoint ran its code'


def test_crafted_checkpoint_is_refused_and_names_the_opt_in(crafted):
    with pytest.raises(UnsafeCheckpointError) as info:
        read_checkpoint(crafted)
    message = str(info.value)
    assert crafted in message and ALLOW_UNSAFE_ENV in message and 'open' in message


def test_opt_in_loads_full_pickle_with_a_warning(tmp_path, monkeypatch):
    marker = tmp_path / 'code_ran'
    path = write_crafted_checkpoint(tmp_path / 'old.pth', marker)
    monkeypatch.setenv(ALLOW_UNSAFE_ENV, '1')
    with pytest.warns(UserWarning, match=f'{ALLOW_UNSAFE_ENV} is set'):
        checkpoint = read_checkpoint(path)
    assert marker.exists()  # full pickle did run it: that is what the opt-in means
    assert 'state_dict' in checkpoint


@pytest.mark.parametrize('kind, content, expected', [
    ('empty', b'', r'is empty \(0 bytes'),
    ('random', bytes(range(7, 250)) * 4, r'not a PyTorch checkpoint \(it starts with'),
    ('text', b'model weights are at https://example.com\n', 'a text file'),
    ('pickle', pickle.dumps({'a': 1}), 'a plain pickle file'),
])
def test_files_that_are_not_checkpoints_are_named(tmp_path, kind, content, expected):
    path = tmp_path / f'{kind}.pth'
    path.write_bytes(content)
    with pytest.raises(NotACheckpointError, match=expected) as info:
        read_checkpoint(str(path))
    assert str(path) in str(info.value) and 'expected a file written by torch.save' in \
        str(info.value)


def test_truncated_list_and_missing_files(tmp_path):
    torch.save({'w': torch.zeros(1000)}, tmp_path / 'full.pth')
    data = (tmp_path / 'full.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(NotACheckpointError, match=r'cut\.pth: a truncated or corrupt checkpoint'):
        read_checkpoint(str(tmp_path / 'cut.pth'))
    torch.save([torch.zeros(1)], tmp_path / 'list.pth')
    with pytest.raises(NotACheckpointError, match=r'list\.pth holds a list, expected a dict'):
        read_checkpoint(str(tmp_path / 'list.pth'))
    with pytest.raises(FileNotFoundError, match=r'checkpoint .*nothere\.pth does not exist'):
        read_checkpoint(str(tmp_path / 'nothere.pth'))


@pytest.fixture
def http_dir(tmp_path, monkeypatch):
    """A local http server over tmp_path/www; torch.hub's cache in tmp_path/hub."""
    root = tmp_path / 'www'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def test_urls_are_downloaded_then_read_weights_only(http_dir, tmp_path):
    root, url = http_dir
    torch.save({'state_dict': {'w': torch.ones(2)}}, root / 'good.pth')
    assert torch.equal(read_checkpoint(f'{url}/good.pth')['state_dict']['w'], torch.ones(2))
    assert osp.isfile(tmp_path / 'hub' / 'hub' / 'checkpoints' / 'good.pth')
    marker = tmp_path / 'code_ran'
    write_crafted_checkpoint(root / 'crafted.pth', marker)
    with pytest.raises(UnsafeCheckpointError) as info:
        read_checkpoint(f'{url}/crafted.pth')
    assert f'{url}/crafted.pth (downloaded to ' in str(info.value)
    assert ALLOW_UNSAFE_ENV in str(info.value)
    assert not marker.exists()


def test_mmengine_zoo_names_are_read_weights_only(http_dir, tmp_path, monkeypatch):
    """open-mmlab:// names resolve to a URL that is read like any other (mmengine's own loader
    for them unpickles with full pickle)."""
    from mmengine.runner import checkpoint as mmengine_checkpoint
    root, url = http_dir
    marker = tmp_path / 'code_ran'
    write_crafted_checkpoint(root / 'zoo_crafted.pth', marker)
    torch.save({'state_dict': {'w': torch.ones(2)}}, root / 'zoo_good.pth')
    monkeypatch.setattr(mmengine_checkpoint, 'get_external_models', lambda: {
        'good': f'{url}/zoo_good.pth', 'crafted': f'{url}/zoo_crafted.pth'})
    assert torch.equal(read_checkpoint('open-mmlab://good')['state_dict']['w'], torch.ones(2))
    with pytest.raises(UnsafeCheckpointError, match='zoo_crafted.pth'):
        read_checkpoint('open-mmlab://crafted')
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="knows no model 'nothere'"):
        read_checkpoint('open-mmlab://nothere')


# -- allow_mmengine_checkpoints: exactly mmengine's types, nothing left behind --------------------

def test_context_adds_only_what_is_missing_and_restores_exactly():
    class Mine:
        pass

    before = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([Mine, np.ndarray])  # a user's own allowlist
    try:
        with allow_mmengine_checkpoints():
            inside = torch.serialization.get_safe_globals()
            assert Mine in inside and np.ndarray in inside
        after = torch.serialization.get_safe_globals()
        assert set(map(str, after)) == set(map(str, before + [Mine, np.ndarray]))
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


def test_the_allowlist_holds_no_code_running_callables():
    """Types, numpy's array rebuilders and a getattr restricted to HistoryBuffer's methods."""
    from mmengine.logging import HistoryBuffer
    entries = [e[0] if isinstance(e, tuple) else e for e in mmengine_checkpoint_globals()]
    names = {e[1] for e in mmengine_checkpoint_globals() if isinstance(e, tuple)}
    assert not any(e in (eval, exec, open, os.system, getattr, __import__) for e in entries)
    assert 'builtins.getattr' in names
    restricted = dict((e[1], e[0]) for e in mmengine_checkpoint_globals()
                      if isinstance(e, tuple))['builtins.getattr']
    assert restricted(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer'):
        restricted(os, 'system')


PLAIN_RUNNER = """
import os, pickle, sys
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

work_dir, crafted = sys.argv[1:3]


class Tiny(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, inputs, labels, mode='loss'):
        logits = self.fc(torch.stack(inputs))
        return dict(loss=torch.nn.functional.cross_entropy(logits, torch.stack(labels)))


def runner(name, iters, **kwargs):
    data = [dict(inputs=torch.ones(2) * i, labels=torch.tensor(i % 2)) for i in range(4)]
    return Runner(
        model=Tiny(), work_dir=work_dir, experiment_name=name, log_level='WARNING',
        train_dataloader=dict(dataset=data, batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False)),
        **kwargs)


def state():
    return (set(map(str, torch.serialization.get_safe_globals())),
            {k: f'{v.__module__}.{v.__qualname__}' for k, v in CheckpointLoader._schemes.items()})


before = state()
runner('first', 1).train()  # writes iter_1.pth (message hub, numpy values)
try:
    runner('plain', 2, resume=True).load_or_resume()
except pickle.UnpicklingError:
    print('RESULT plain mmengine refuses its own checkpoint')

import replk_mm  # what custom_imports=dict(imports=['replk_mm']) does
from replk_mm.fileio import mmengine_checkpoint_globals
added, schemes = state()[0] - before[0], state()[1]
ours = set(map(str, mmengine_checkpoint_globals()))
# exactly mmengine's types (torch's own modules, e.g. torch._dynamo, may add some of theirs)
assert ours - before[0] <= added and all("'torch." in a for a in added - ours), added - ours
assert schemes == before[1]  # mmengine's loaders are not replaced
resumed = runner('resumed', 2, resume=True)
resumed.load_or_resume()
assert resumed.iter == 1, resumed.iter
resumed.train()
assert resumed.iter == 2 and os.path.isfile(os.path.join(work_dir, 'iter_2.pth'))
print('RESULT resumed after import replk_mm')
try:
    runner('crafted', 2, resume=True, load_from=crafted).load_or_resume()
except pickle.UnpicklingError:
    print('RESULT crafted refused')
"""


def test_plain_mmengine_runner_resumes_after_import_replk_mm(tmp_path):
    """In a fresh interpreter, as mmseg's or mmdet's tools/train.py runs a config with
    custom_imports=['replk_mm']: mmengine's own Runner cannot resume its checkpoint under
    torch's weights-only default, resumes after ``import replk_mm`` (which adds exactly the
    types of :func:`mmengine_checkpoint_globals` and replaces no loader), and still refuses a
    crafted checkpoint without running its code."""
    marker = tmp_path / 'code_ran'
    crafted = write_crafted_checkpoint(tmp_path / 'crafted.pth', marker)
    result = subprocess.run(
        [sys.executable, '-c', PLAIN_RUNNER, str(tmp_path / 'work'), crafted],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    said = [line[len('RESULT '):] for line in result.stdout.splitlines()
            if line.startswith('RESULT ')]
    assert said == ['plain mmengine refuses its own checkpoint', 'resumed after import replk_mm',
                    'crafted refused'], result.stdout[-3000:]
    assert not marker.exists()


# -- every path a user has refuses the crafted checkpoint ----------------------------------------

def test_init_cfg_pretrained_refuses(crafted):
    model = RepLKNet(TINY_ARCH, init_cfg=dict(type='Pretrained', checkpoint=crafted))
    with pytest.raises(UnsafeCheckpointError, match=ALLOW_UNSAFE_ENV):
        model.init_weights()


@pytest.fixture(scope='module')
def seg_setup(tmp_path_factory):
    base = tmp_path_factory.mktemp('safe_seg')
    write_ade20k(str(base / 'data'))
    config = write_tiny_seg_config(str(base / 'tiny.py'), str(base / 'data'), iters=4,
                                   validate=True)
    return dict(base=base, config=config)


def _refused(call):
    with pytest.raises(UnsafeCheckpointError, match=ALLOW_UNSAFE_ENV):
        with one_thread():
            call()


def test_tools_refuse_it(seg_setup, crafted, tmp_path, monkeypatch):
    """tools/test.py CONFIG CKPT, tools/train.py --resume CKPT, load_from, the converters."""
    monkeypatch.setenv('REPLK_DW_CONV_BACKEND', 'native')
    import tools.deploy.reparameterize
    import tools.model_converters.mmpretrain2official
    import tools.test
    import tools.train
    config, work = seg_setup['config'], str(tmp_path / 'work')
    _refused(lambda: tools.test.main([config, crafted, '--work-dir', work]))
    _refused(lambda: tools.train.main([config, '--work-dir', work, '--resume', crafted]))
    _refused(lambda: tools.train.main([config, '--work-dir', work,
                                       '--cfg-options', f'load_from={crafted}']))
    _refused(lambda: tools.deploy.reparameterize.main([config, crafted,
                                                       str(tmp_path / 'deploy.pth')]))
    _refused(lambda: tools.model_converters.mmpretrain2official.main(
        [crafted, str(tmp_path / 'official.pth')]))
    assert not (tmp_path / 'deploy.pth').exists() and not (tmp_path / 'official.pth').exists()


def test_distributed_test_refuses_it(seg_setup, crafted, tmp_path, monkeypatch):
    """What dist_test.sh runs in each process (tools/test.py --launcher pytorch), here as a
    one-process gloo group in this process."""
    import torch.distributed as dist
    from conftest import free_port
    monkeypatch.setenv('REPLK_DW_CONV_BACKEND', 'native')
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()), RANK='0',
                           LOCAL_RANK='0', WORLD_SIZE='1').items():
        monkeypatch.setenv(key, value)
    import tools.test
    _refused(lambda: tools.test.main([seg_setup['config'], crafted, '--launcher', 'pytorch',
                                      '--work-dir', str(tmp_path / 'work')]))
    assert not dist.is_initialized()  # the tool closed its group on the way out


def test_image_demos_refuse_it(seg_setup, crafted, tmp_path):
    """tools/demo/image_demo.py and det_image_demo.py (replk_mm.apis.init_segmentor /
    init_detector read through read_checkpoint)."""
    import runpy
    image = osp.join(str(seg_setup['base']), 'data', 'images', 'validation',
                     'ADE_valid_00000000.jpg')
    seg_demo = runpy.run_path(osp.join(REPO, 'tools', 'demo', 'image_demo.py'))
    _refused(lambda: seg_demo['main']([image, seg_setup['config'], crafted,
                                       '--out', str(tmp_path / 'seg.png')]))
    det_config = osp.join(REPO, 'configs', 'demo', 'cascade_mask_rcnn_replknet_tiny_demo_coco.py')
    det_demo = runpy.run_path(osp.join(REPO, 'tools', 'demo', 'det_image_demo.py'))
    _refused(lambda: det_demo['main']([image, det_config, crafted,
                                       '--out', str(tmp_path / 'det.png')]))
    assert not (tmp_path / 'seg.png').exists() and not (tmp_path / 'det.png').exists()
