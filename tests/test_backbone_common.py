"""What the replk_mm backbones share (models/backbones/base.py): the arch shape
(``arch_settings`` overridable by a subclass, a name or a dict with the same keys), one
``frozen_stages`` convention, the ``deployed`` property, one drop-path-rate helper, and unknown
arguments named with the closest valid one (also through the registry)."""
import re

import pytest
import torch
from mmengine.registry import MODELS

from replk_mm import RepLKNet, switch_to_deploy
from replk_mm.layers import linear_drop_path_rates
from replk_mm.models.backbones import LKConvNeXt, LKMobileNetV2, UniRepLKNet

REPLKNET = dict(large_kernel_sizes=[7, 7, 7, 5], layers=[1, 1, 2, 1], channels=[8, 8, 16, 16],
                small_kernel=3)
CONVNEXT = dict(depths=[1, 1, 2, 1], channels=[8, 8, 16, 16])
MBV2 = dict(widen_factor=0.25, layers=[[1, 8, 1, 1], [2, 8, 2, 2], [2, 16, 1, 2]])
UNI = dict(depths=[1, 1, 2, 1], channels=[8, 8, 16, 16], kernel_sizes=[[3], [5], [7, 0], [3]])
# each backbone, a small arch, the kwargs that give it re-parameterizable branches, its stem's
# and its first stage's parameter prefixes
BACKBONES = {
    'RepLKNet': (RepLKNet, REPLKNET, {}, ('stem.', ), ('stages.0.', )),
    'LKConvNeXt': (LKConvNeXt, CONVNEXT, dict(kernel_sizes=7, small_kernel=3),
                   ('downsample_layers.0.', ), ('stages.0.', )),
    'LKMobileNetV2': (LKMobileNetV2, MBV2, dict(kernel_sizes=7, small_kernel=3), ('conv1.', ),
                      ('layer1.', )),
    'UniRepLKNet': (UniRepLKNet, UNI, {}, ('downsample_layers.0.', ), ('stages.0.', )),
}


@pytest.mark.parametrize('name, unknown, hint', [
    ('RepLKNet', dict(kernel_sizes=[31, 29, 27, 13]), 'arch=dict(large_kernel_sizes=...)'),
    ('RepLKNet', dict(drop_path=0.1), 'drop_path_rate'),
    ('LKConvNeXt', dict(kernel_size=31), 'kernel_sizes'),
    ('LKConvNeXt', dict(depth=[1, 1, 2, 1]), 'arch=dict(depths=...)'),
    ('LKMobileNetV2', dict(widen_factor=0.5), 'arch=dict(widen_factor=...)'),
    ('LKMobileNetV2', dict(shortcut=False), 'with_shortcut'),
    ('UniRepLKNet', dict(kernel_size=[[3], [5], [7, 0], [3]]), 'kernel_sizes'),
    ('UniRepLKNet', dict(channel=[8, 8, 16, 16]), 'arch=dict(channels=...)'),
])
def test_unknown_argument_names_the_closest_valid_one(name, unknown, hint):
    cls, arch = BACKBONES[name][:2]
    hint = re.escape(f'(did you mean {hint}?)')
    with pytest.raises(TypeError, match=rf"{name} got unknown argument '{list(unknown)[0]}' "
                                        + hint):
        cls(arch=arch, **unknown)
    # through the registry, as a config builds it
    with pytest.raises(TypeError, match=hint):
        MODELS.build(dict(type=f'replk_mm.{name}', arch=arch, **unknown))


def test_unknown_argument_without_a_close_one_lists_them():
    with pytest.raises(TypeError, match=r"'zzz'\. Its arguments: arch, in_channels.*the arch "
                                        'dict keys: large_kernel_sizes, layers'):
        RepLKNet(REPLKNET, zzz=1)


@pytest.mark.parametrize('name', list(BACKBONES))
def test_arch_settings_is_overridable_and_names_are_checked(name):
    cls, arch = BACKBONES[name][:2]
    sub = type(f'My{name}', (cls, ), dict(arch_settings=dict(mine=arch)))
    assert sub.parse_arch('mine') == cls.parse_arch(arch)
    assert sub('mine').state_dict().keys() == cls(arch).state_dict().keys()
    with pytest.raises(ValueError, match=r"unknown \w+ arch 'mne' \(did you mean 'mine'\?\); "
                                         r"the named archs are \['mine'\]"):
        sub('mne')
    with pytest.raises(TypeError, match='arch must be a name in'):
        cls(arch=3)


@pytest.mark.parametrize('name', list(BACKBONES))
@pytest.mark.parametrize('frozen_stages', [-1, 0, 1])
def test_one_frozen_stages_convention(name, frozen_stages):
    """-1: nothing; 0: the stem; k: the stem and stages 0..k-1."""
    cls, arch, _, stem, stage0 = BACKBONES[name]
    model = cls(arch, frozen_stages=frozen_stages).train()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    expected_prefixes = (() if frozen_stages < 0 else stem) + (stage0 if frozen_stages > 0
                                                               else ())
    assert frozen == {n for n, _ in model.named_parameters() if n.startswith(expected_prefixes)}
    assert frozen or frozen_stages < 0
    with pytest.raises(ValueError, match=r'frozen_stages must be an int in \[-1, \d\] \(-1: '
                                         'nothing, 0: the stem'):
        cls(arch, frozen_stages=-2)


@pytest.mark.parametrize('name', list(BACKBONES))
def test_deployed_property(name):
    cls, arch, branches = BACKBONES[name][:3]
    model = cls(arch, **branches).eval()
    assert not model.deployed
    assert switch_to_deploy(model) > 0
    assert model.deployed
    assert cls(arch, small_kernel_merged=True, **branches).deployed


def test_one_drop_path_rate_helper():
    assert linear_drop_path_rates(0.3, 4) == pytest.approx([0., .1, .2, .3])
    assert linear_drop_path_rates(0.3, 1) == [0.]
    torch_rates = torch.linspace(0, 0.3, 7).tolist()
    assert linear_drop_path_rates(0.3, 7) == pytest.approx(torch_rates)
    model = LKMobileNetV2(MBV2, drop_path_rate=0.3)
    rates = linear_drop_path_rates(0.3, 4)  # 4 blocks, the shortcut ones keep their rate
    assert [getattr(b.drop_path, 'drop_prob', 0.) for b in model.blocks()] == \
        pytest.approx([0., 0., rates[2], 0.])
