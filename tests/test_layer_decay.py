"""Layer-wise lr decay: every replk_mm backbone's ``get_layer_depth`` (mmpretrain's
interface), checked against the official RepLKNet layer ids and mmpretrain's ConvNeXt;
mmpretrain's own ``LearningRateDecayOptimWrapperConstructor`` on our backbones in an mmpretrain
classifier; replk_mm's constructor (the README's config line) in mmseg, mmdet and mmpretrain
configs, giving the same lr as mmpretrain's; clear errors."""
import logging
import types

import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from replk_mm import RepLKNet
from replk_mm.engine.optimizers import RepLKNetLayerDecayOptimWrapperConstructor
from replk_mm.models.backbones import LKConvNeXt, LKMobileNetV2

NARROW_31B = dict(large_kernel_sizes=[31, 29, 27, 13], layers=[2, 2, 18, 2],
                  channels=[8, 16, 32, 64], small_kernel=5)
SHALLOW = dict(large_kernel_sizes=[7, 7, 7, 5], layers=[1, 1, 3, 1], channels=[8, 8, 16, 16],
               small_kernel=3)
TINY_CONVNEXT = dict(depths=[1, 1, 4, 1], channels=[8, 8, 16, 16])
TINY_MBV2 = dict(widen_factor=0.25, layers=[[1, 8, 1, 1], [2, 8, 2, 2], [2, 16, 1, 2]])
OPTIMIZER = dict(type='AdamW', lr=4e-4, weight_decay=0.05)
NO_DECAY = dict(norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.)
README_CONSTRUCTOR = 'replk_mm.RepLKNetLayerDecayOptimWrapperConstructor'


@pytest.fixture(autouse=True)
def _quiet_mmengine():
    # the constructors log one line per parameter while they build param groups
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


def test_replknet_depths_of_other_depths():
    backbone = RepLKNet(SHALLOW, out_indices=(3, ), norm_intermediate_features=True)
    # 1-1-3-1 blocks, two per depth: stages take 1, 1, 2 and 1 depths -> 5, then 6, of 7
    expected = {'stem.0.conv.weight': 0, 'stages.0.blocks.1.pw1.conv.weight': 1,
                'transitions.0.0.conv.weight': 1, 'stages.1.blocks.0.prelkb_bn.weight': 2,
                'transitions.1.1.bn.bias': 2, 'stages.2.blocks.0.pw1.conv.weight': 3,
                'stages.2.blocks.3.pw2.conv.weight': 3, 'stages.2.blocks.4.pw1.conv.weight': 4,
                'stages.2.blocks.5.preffn_bn.bias': 4, 'transitions.2.0.conv.weight': 4,
                'stages.3.blocks.1.pw2.bn.weight': 5, 'stages.3.norm.weight': 6}
    for name, depth in expected.items():
        assert backbone.get_layer_depth(name) == (depth, 7), name
        assert backbone.get_layer_depth(f'backbone.{name}', 'backbone.') == (depth, 7), name
    assert backbone.get_layer_depth('head.fc.weight', 'backbone.') == (6, 7)
    for bad in ('stages.4.blocks.0.pw1.conv.weight', 'stages.0.blocks.2.pw1.conv.weight',
                'transitions.3.0.bn.weight', 'neck.weight'):
        with pytest.raises(ValueError, match='not a .*RepLKNet'):
            backbone.get_layer_depth(bad)


def mmpretrain_convnext_depth(depths, name):
    """mmpretrain's own ``ConvNeXt.get_layer_depth`` (it reads ``self.depths`` only)."""
    from mmpretrain.models.backbones import ConvNeXt
    return ConvNeXt.get_layer_depth(types.SimpleNamespace(depths=depths), name, 'backbone.')


@pytest.mark.parametrize('depths', [[3, 3, 9, 3], [3, 3, 27, 3]])
def test_lk_convnext_depths_are_mmpretrain_convnexts(depths):
    model = LKConvNeXt(dict(depths=depths, channels=[8, 8, 8, 8]), kernel_sizes=7)
    names = [f'backbone.{n}' for n, _ in model.named_parameters()] + ['head.fc.weight']
    for name in names:
        assert model.get_layer_depth(name, 'backbone.') == \
            mmpretrain_convnext_depth(depths, name), name


def test_lk_mobilenet_v2_depths():
    model = LKMobileNetV2(TINY_MBV2, out_indices=(3, ))
    assert model.get_layer_depth('conv1.conv.weight') == (0, 6)
    assert model.get_layer_depth('layer2.1.conv.1.lkb_origin.conv.weight') == (2, 6)
    assert model.get_layer_depth('conv2.bn.bias') == (4, 6)
    assert model.get_layer_depth('head.fc.bias', 'backbone.') == (5, 6)
    without_conv2 = LKMobileNetV2(TINY_MBV2, out_indices=(2, ))
    assert without_conv2.get_layer_depth('layer3.0.conv.0.conv.weight') == (3, 5)
    with pytest.raises(ValueError, match='conv2'):
        without_conv2.get_layer_depth('conv2.bn.bias')


def test_frozen_and_custom_keys_compose():
    model = Classifier(SHALLOW)
    for p in model.backbone.stem.parameters():
        p.requires_grad = False
    groups = build(model, rate=0.5, custom_keys={'head': dict(lr_mult=10.)})
    assert not any(name.startswith('backbone.stem.') for name in groups)
    assert groups['head.bias']['lr'] == pytest.approx(4e-3)


def mmpretrain_classifier(backbone):
    from mmpretrain.registry import MODELS
    channels = {'RepLKNet': SHALLOW['channels'][-1], 'LKConvNeXt': 16, 'LKMobileNetV2': 1280}
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(
            type='ImageClassifier', backbone=backbone, neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=3,
                      in_channels=channels[backbone['type'].split('.')[-1]])))


@pytest.mark.parametrize('backbone', [
    dict(type='replk_mm.RepLKNet', arch=SHALLOW, out_indices=(3, ),
         norm_intermediate_features=True),
    dict(type='replk_mm.LKConvNeXt', arch=TINY_CONVNEXT, out_indices=(3, ),
         gap_before_final_norm=True),
    dict(type='replk_mm.LKMobileNetV2', arch=TINY_MBV2)])
def test_mmpretrain_constructor_and_ours_agree(backbone):
    """mmpretrain's LearningRateDecayOptimWrapperConstructor works on our backbones in an
    mmpretrain classifier, and the README's constructor gives every parameter the same lr."""
    model = mmpretrain_classifier(backbone)
    cfg = dict(optimizer=OPTIMIZER, paramwise_cfg=dict(layer_decay_rate=0.5))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        theirs = groups_by_name(model, build_optim_wrapper(
            model, dict(cfg, constructor='LearningRateDecayOptimWrapperConstructor')))
        ours = groups_by_name(model, build_optim_wrapper(
            model, dict(cfg, constructor=README_CONSTRUCTOR)))
    num_depths = model.backbone.max_layer_depth() + 2
    assert set(theirs) == set(ours) == {n for n, _ in model.named_parameters()}
    for name in theirs:
        assert ours[name]['lr'] == pytest.approx(theirs[name]['lr'], rel=1e-12), name
        assert ours[name]['layer_id'] == theirs[name]['layer_id'], name
    stem = next(n for n in ours if n.startswith('backbone.'))
    assert ours[stem]['lr'] == pytest.approx(4e-4 * 0.5 ** (num_depths - 1))
    assert ours['head.fc.weight']['lr'] == pytest.approx(4e-4)


def test_readme_constructor_in_an_mmseg_segmentor():
    """The README's line in an mmseg config: mmseg's segmentors have no get_layer_depth
    (mmpretrain's constructor refuses them); ours asks the backbone."""
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(
            type='EncoderDecoder',
            backbone=dict(type='RepLKNet', arch=SHALLOW, out_indices=(3, )),
            decode_head=dict(type='FCNHead', in_channels=16, channels=8, num_convs=1,
                             num_classes=3, in_index=0)))
        groups = groups_by_name(model, build_optim_wrapper(model, dict(
            optimizer=OPTIMIZER, constructor=README_CONSTRUCTOR,
            paramwise_cfg=dict(layer_decay_rate=0.5))))
    assert groups['backbone.stem.0.conv.weight']['lr'] == pytest.approx(4e-4 * 0.5 ** 6)
    assert groups['backbone.stages.2.blocks.4.pw1.conv.weight']['lr'] == \
        pytest.approx(4e-4 * 0.5 ** 2)
    assert groups['decode_head.conv_seg.weight']['lr'] == pytest.approx(4e-4)
    # why replk_mm keeps its own constructor: mmpretrain's needs model.get_layer_depth
    with DefaultScope.overwrite_default_scope('mmseg'), \
            pytest.raises(NotImplementedError, match='get_layer_depth'):
        build_optim_wrapper(model, dict(
            optimizer=OPTIMIZER, constructor='mmpretrain.LearningRateDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.5)))


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmseg', 'mmdet'])
@pytest.mark.parametrize('name', [README_CONSTRUCTOR,
                                  'RepLKNetLayerDecayOptimWrapperConstructor'])
def test_usable_from_every_downstream_scope(scope, name):
    model = Classifier(SHALLOW)
    with DefaultScope.overwrite_default_scope(scope):
        optim_wrapper = build_optim_wrapper(model, dict(
            optimizer=OPTIMIZER, constructor=name, paramwise_cfg=dict(layer_decay_rate=0.7)))
    layer_ids = {g['layer_id'] for g in optim_wrapper.optimizer.param_groups}
    assert layer_ids == set(range(7))


def test_bad_arguments_are_named():
    cfg = dict(optimizer=OPTIMIZER)
    with pytest.raises(ValueError, match=r'layer_decay_rate=\.\.\.'):
        RepLKNetLayerDecayOptimWrapperConstructor(cfg, dict(norm_decay_mult=0.))
    for rate in (0, -0.5, True, '0.7'):
        with pytest.raises(ValueError, match='layer_decay_rate must be a number > 0'):
            RepLKNetLayerDecayOptimWrapperConstructor(cfg, dict(layer_decay_rate=rate))
    with pytest.raises(ValueError, match='set optim_wrapper.optimizer.lr'):
        RepLKNetLayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW')), dict(layer_decay_rate=0.7))
    constructor = RepLKNetLayerDecayOptimWrapperConstructor(cfg, dict(layer_decay_rate=0.7))
    with pytest.raises(TypeError, match='Linear has no get_layer_depth'):
        constructor(nn.Linear(2, 2))
    with_plain_backbone = nn.Module()
    with_plain_backbone.backbone = nn.Conv2d(3, 3, 1)
    with pytest.raises(TypeError, match='its backbone Conv2d has no get_layer_depth'):
        constructor(with_plain_backbone)
    grouped = RepLKNetLayerDecayOptimWrapperConstructor(
        cfg, dict(layer_decay_rate=0.7, blocks_per_layer=18))
    with pytest.raises(TypeError, match=r"\['blocks_per_layer'\] is not a layer-grouping "
                                        'option of LKMobileNetV2'):
        grouped(LKMobileNetV2(TINY_MBV2, out_indices=(3, )))
