"""RepLKNetLayerDecayOptimWrapperConstructor: the official layer ids and lr multipliers, from
every downstream scope, and clear errors."""
import logging

import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from replk_mm import RepLKNet
from replk_mm.engine.optimizers import (
                                        RepLKNetLayerDecayOptimWrapperConstructor,
                                        replknet_layer_id,
)

NARROW_31B = dict(large_kernel_sizes=[31, 29, 27, 13], layers=[2, 2, 18, 2],
                  channels=[8, 16, 32, 64], small_kernel=5)
SHALLOW = dict(large_kernel_sizes=[7, 7, 7, 5], layers=[1, 1, 3, 1], channels=[8, 8, 16, 16],
               small_kernel=3)
OPTIMIZER = dict(type='AdamW', lr=4e-4, weight_decay=0.05)
NO_DECAY = dict(norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.)


@pytest.fixture(autouse=True)
def _quiet_mmengine():
    # mmengine logs one line per parameter while it builds param groups
    logger = logging.getLogger('mmengine')
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


class Classifier(nn.Module):
    """A RepLKNet with the classification tail, as mmpretrain's ImageClassifier holds it."""

    def __init__(self, arch):
        super().__init__()
        self.backbone = RepLKNet(arch, out_indices=(3, ), norm_intermediate_features=True)
        self.head = nn.Linear(arch['channels'][-1], 10)


def official_layer_id(name):
    """``get_num_layer_for_replknet`` of the official optim_factory.py (RepLKNet-31B's 2-2-18-2
    blocks in 12 layers), restated from its comments: stem 0; stage 0 -> 1, stage 1 -> 2 (with
    the transition after each); stage 2 -> 3 + block // 4 (transition 2 -> 11); stage 3 -> 12;
    anything else (the final norm, the head) -> 13. ``name`` is relative to the classifier."""
    if name.startswith('backbone.'):
        name = name[len('backbone.'):]
        parts = name.split('.')
        if parts[0] == 'stem':
            return 0
        if parts[0] == 'transitions':
            return {0: 1, 1: 2, 2: 11}[int(parts[1])]
        if parts[0] == 'stages' and parts[2] == 'blocks':
            stage, block = int(parts[1]), int(parts[3])
            return {0: 1, 1: 2, 3: 12}.get(stage, 3 + block // 4)
    return 13


def groups_by_name(model, optim_wrapper):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(g['params'][0])]: g for g in optim_wrapper.optimizer.param_groups}


def build(model, rate=0.7, **paramwise):
    constructor = RepLKNetLayerDecayOptimWrapperConstructor(
        dict(optimizer=OPTIMIZER), dict(layer_decay_rate=rate, **paramwise))
    return groups_by_name(model, constructor(model))


def test_official_layer_ids_and_lr_multipliers():
    model = Classifier(NARROW_31B)
    groups = build(model, **NO_DECAY)
    assert len(groups) == len(list(model.parameters()))
    for name, group in groups.items():
        expected = official_layer_id(name)
        assert group['layer_id'] == expected, name
        # the official schedule: lr x layer_decay ** (num_layers + 1 - layer_id), 12 layers
        assert group['lr'] == pytest.approx(4e-4 * 0.7 ** (13 - expected), rel=1e-12), name
        # official: no weight decay on biases and 1-D parameters
        decayed = group['params'][0].ndim > 1 and not name.endswith('.bias')
        assert group['weight_decay'] == (0.05 if decayed else 0.), name
    assert {g['layer_id'] for g in groups.values()} == set(range(14))
    assert groups['backbone.stages.3.norm.weight']['layer_id'] == 13  # official `norm`
    assert groups['backbone.transitions.2.1.conv.weight']['layer_id'] == 11


def test_other_depths_group_blocks_per_layer():
    model = Classifier(SHALLOW)
    # 1-1-3-1 blocks, two per layer id: stages take 1, 1, 2 and 1 ids -> 5 layers, head 6
    expected = {'stem.0.conv.weight': 0, 'stages.0.blocks.1.pw1.conv.weight': 1,
                'transitions.0.0.conv.weight': 1, 'stages.1.blocks.0.prelkb_bn.weight': 2,
                'transitions.1.1.bn.bias': 2, 'stages.2.blocks.0.pw1.conv.weight': 3,
                'stages.2.blocks.3.pw2.conv.weight': 3, 'stages.2.blocks.4.pw1.conv.weight': 4,
                'stages.2.blocks.5.preffn_bn.bias': 4, 'transitions.2.0.conv.weight': 4,
                'stages.3.blocks.1.pw2.bn.weight': 5, 'stages.3.norm.weight': 6}
    groups = build(model, rate=0.5)
    for name, layer in expected.items():
        group = groups[f'backbone.{name}']
        assert group['layer_id'] == layer, name
        assert group['lr'] == pytest.approx(4e-4 * 0.5 ** (6 - layer)), name
    assert groups['head.weight']['layer_id'] == 6 and groups['head.weight']['lr'] == 4e-4
    # one block per layer id: 1 + 1 + 3 + 1 = 6 layers
    assert replknet_layer_id('stages.2.blocks.5.pw1.conv.weight', [1, 1, 3, 1],
                             blocks_per_layer=1) == (5, 6)
    assert replknet_layer_id('transitions.2.0.bn.weight', [1, 1, 3, 1], 1) == (5, 6)


def test_frozen_and_custom_keys_compose():
    model = Classifier(SHALLOW)
    for p in model.backbone.stem.parameters():
        p.requires_grad = False
    groups = build(model, rate=0.5, custom_keys={'head': dict(lr_mult=10.)})
    assert not any(name.startswith('backbone.stem.') for name in groups)
    assert groups['head.bias']['lr'] == pytest.approx(4e-3)


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmseg', 'mmdet'])
def test_usable_from_every_downstream_scope(scope):
    model = Classifier(SHALLOW)
    with DefaultScope.overwrite_default_scope(scope):
        optim_wrapper = build_optim_wrapper(model, dict(
            optimizer=OPTIMIZER, constructor='RepLKNetLayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.7)))
    layer_ids = {g['layer_id'] for g in optim_wrapper.optimizer.param_groups}
    assert layer_ids == set(range(7))


def test_bad_arguments_are_named():
    cfg = dict(optimizer=OPTIMIZER)
    with pytest.raises(ValueError, match=r'layer_decay_rate=\.\.\.'):
        RepLKNetLayerDecayOptimWrapperConstructor(cfg, dict(norm_decay_mult=0.))
    for rate in (0, -0.5, True, '0.7'):
        with pytest.raises(ValueError, match='layer_decay_rate must be a number > 0'):
            RepLKNetLayerDecayOptimWrapperConstructor(cfg, dict(layer_decay_rate=rate))
    with pytest.raises(ValueError, match='blocks_per_layer must be a positive int'):
        RepLKNetLayerDecayOptimWrapperConstructor(
            cfg, dict(layer_decay_rate=0.7, blocks_per_layer=0))
    with pytest.raises(ValueError, match='set optim_wrapper.optimizer.lr'):
        RepLKNetLayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW')), dict(layer_decay_rate=0.7))
    constructor = RepLKNetLayerDecayOptimWrapperConstructor(cfg, dict(layer_decay_rate=0.7))
    with pytest.raises(TypeError, match='exactly one RepLKNet backbone; Linear has no'):
        constructor(nn.Linear(2, 2))
    two = nn.ModuleDict(dict(a=RepLKNet(SHALLOW), b=RepLKNet(SHALLOW)))
    with pytest.raises(TypeError, match=r'has 2 \(a, b\)'):
        constructor(two)
    with pytest.raises(ValueError, match='stage index below 4'):
        replknet_layer_id('stages.4.blocks.0.pw1.conv.weight', [2, 2, 18, 2])
    with pytest.raises(ValueError, match='block index below 4'):
        replknet_layer_id('stages.0.blocks.4.pw1.conv.weight', [2, 2, 18, 2])
    with pytest.raises(ValueError, match='is not a RepLKNet parameter'):
        replknet_layer_id('neck.weight', [2, 2, 18, 2])
