import logging
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # tools/ is importable as a package-less folder of scripts

# Same large kernels as RepLKNet-31B, narrow and shallow so CPU tests stay fast.
TINY_ARCH = dict(large_kernel_sizes=[31, 29, 27, 13], layers=[1, 1, 2, 1],
                 channels=[8, 16, 32, 64], small_kernel=5)


# Python source that makes every OpenMMLab import fail, as on a bare GPU box with torch only:
# the first lines of a `python -c` script, or a sitecustomize.py.
BLOCK_OPENMMLAB = textwrap.dedent('''
    import importlib.abc
    import sys

    OPENMMLAB = ('mmengine', 'mmcv', 'mmseg', 'mmdet', 'mmpretrain')


    class NoOpenMMLab(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in OPENMMLAB:
                raise ModuleNotFoundError(f'No module named {name!r} (blocked)', name=name)


    sys.meta_path.insert(0, NoOpenMMLab())
''')


def relative_error(a, b):
    """max |a - b| over max |b| (a scalar)."""
    return ((a - b).abs().max() / b.abs().max()).item()


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def ade_dataset(root, split='training', checked=False, **kwargs):
    """mmseg's ADE20KDataset (or replk_mm's checked one) over ``root`` with the label loading
    of the ADE20K configs (``reduce_zero_label``), in mmseg's scope."""
    from mmengine.registry import init_default_scope
    from mmseg.datasets import ADE20KDataset

    from replk_mm.datasets.seg_checked import CheckedADE20KDataset
    init_default_scope('mmseg')  # pipelines resolve mmseg's transforms, as in a config
    return (CheckedADE20KDataset if checked else ADE20KDataset)(
        data_root=root,
        data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', reduce_zero_label=True)],
        **kwargs)


@pytest.fixture(scope='module')
def fast_config_parsing():
    """Parse configs with the packages' metafiles read once (fast_test_helpers); a module
    opts in with ``pytestmark = pytest.mark.usefixtures('fast_config_parsing')``."""
    from fast_test_helpers import cached_package_metafiles
    with cached_package_metafiles():
        yield


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_tool(command, timeout=400, **env):
    """Run a command from the repo root (tools/ as users call them); fail with its output."""
    env = dict(os.environ, **env, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=timeout)
    # Both tails: the log (stdout) says how far it got, stderr says how it ended.
    assert result.returncode == 0, (f'{command} failed with exit status {result.returncode}\n'
                                    f'--- stdout (end) ---\n{result.stdout[-4000:]}\n'
                                    f'--- stderr (end) ---\n{result.stderr[-4000:]}')
    return result.stdout + result.stderr


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def randomize_bn(model, generator_seed=0):
    """Give every BN non-trivial statistics and affine params (so fusion is really tested)."""
    g = torch.Generator().manual_seed(generator_seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model


class _ListHandler(logging.Handler):

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def mmengine_log():
    """Messages logged through mmengine's current logger during the test, as one string."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    handler = _ListHandler()
    logger.addHandler(handler)
    yield lambda: '\n'.join(handler.lines)
    logger.removeHandler(handler)


def tiny_classifier_config(large_kernel_sizes=(7, 5), num_classes=10):
    """An mmpretrain config (text) of a 2-stage replk_mm.RepLKNet classifier, for the tools
    that take a classification config (ONNX export, deploy benchmark, shape bias)."""
    return f"""
default_scope = 'mmpretrain'
custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='replk_mm.RepLKNet', out_indices=(1, ), norm_intermediate_features=True,
                  arch=dict(large_kernel_sizes={list(large_kernel_sizes)}, layers=[1, 1],
                            channels=[8, 16], small_kernel=3)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes={num_classes}, in_channels=16))
data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
"""
