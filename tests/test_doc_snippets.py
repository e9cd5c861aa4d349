"""Every config snippet of README.md and docs/*.md parses and builds.

A config snippet is a fenced ```python block without any import statement that assigns, at
the start of a line, ``model``, ``backbone``, ``optim_wrapper`` or ``custom_imports``: what
users paste into a config. Other python blocks are API examples (they import what they use)
and are not run here. Each snippet is parsed by mmengine (``Config.fromstring``, which also
imports its ``custom_imports``); its backbone (``backbone`` or ``model.backbone``), or its
whole model when the model has a ``type``, is built on the meta device (no memory, no
weights read); its ``optim_wrapper`` is built for a small model with a replk_mm backbone, in
an mmseg and in an mmpretrain scope. Models and backbones build in mmpretrain's scope when the
model is mmpretrain's ``ImageClassifier``, else in mmseg's.
"""
import glob
import logging
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, DefaultScope

from replk_mm import RepLKNet

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BLOCK = re.compile(r'^```python\n(.*?)^```', re.S | re.M)
CONFIG_KEYS = re.compile(r'^(model|backbone|optim_wrapper|custom_imports)\s*=', re.M)
IMPORT = re.compile(r'^\s*(import|from)\s', re.M)
TINY = dict(large_kernel_sizes=[7, 7, 7, 5], layers=[1, 1, 1, 1], channels=[8, 8, 8, 8],
            small_kernel=3)


def config_snippets():
    found = []
    for path in [osp.join(REPO, 'README.md')] + sorted(glob.glob(osp.join(REPO, 'docs', '*.md'))):
        with open(path, encoding='utf-8') as f:
            text = f.read()
        for match in BLOCK.finditer(text):
            code = match.group(1)
            if CONFIG_KEYS.search(code) and not IMPORT.search(code):
                line = text.count('\n', 0, match.start()) + 2
                found.append(pytest.param(code, id=f'{osp.relpath(path, REPO)}:{line}'))
    return found


SNIPPETS = config_snippets()


def test_the_readme_and_docs_have_config_snippets():
    ids = [p.id for p in SNIPPETS]
    assert any(i.startswith('README.md') for i in ids) and len(ids) >= 4, ids


class SmallModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = RepLKNet(TINY, out_indices=(3, ))
        self.decode_head = nn.Conv2d(8, 3, 1)


@pytest.mark.parametrize('code', SNIPPETS)
def test_config_snippet_parses_and_builds(code):
    cfg = Config.fromstring(code, '.py')
    model = cfg.get('model')
    backbone = cfg.get('backbone') or (model or {}).get('backbone')
    assert backbone or cfg.get('optim_wrapper'), 'a config snippet with nothing to build'
    if backbone:
        scope = 'mmpretrain' if model and model.get('type') == 'ImageClassifier' else 'mmseg'
        with DefaultScope.overwrite_default_scope(scope), torch.device('meta'):
            built = MODELS.build(model if model and 'type' in model else backbone)
        assert sum(p.numel() for p in built.parameters()) > 0
    if cfg.get('optim_wrapper'):
        for scope in ('mmseg', 'mmpretrain'):
            logger = logging.getLogger('mmengine')
            level, _ = logger.level, logger.setLevel(logging.WARNING)
            try:
                with DefaultScope.overwrite_default_scope(scope):
                    wrapper = build_optim_wrapper(SmallModel(), cfg.optim_wrapper.to_dict())
            finally:
                logger.setLevel(level)
            assert wrapper.optimizer.param_groups
