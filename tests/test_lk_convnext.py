"""LKConvNeXt: ConvNeXt with per-stage kernel sizes and a re-parameterized small kernel.

Oracles independent of replk_mm: mmpretrain's own ``ConvNeXt`` (features, parameter counts,
its checkpoint key names), the official facebookresearch checkpoint layout written out here,
hand-computed parameter differences of larger kernels, and mmseg's lr-decay constructor.
"""
import contextlib
import os.path as osp
from unittest import mock

import pytest
import torch
from conftest import num_params, randomize_bn
from mmengine.config import Config

from replk_mm import switch_to_deploy
from replk_mm.apis import load_config
from replk_mm.models.backbones.lk_convnext import LKConvNeXt
from replk_mm.models.checkpoint import CheckpointMismatchError, load_backbone_checkpoint
from replk_mm.ops import set_default_backend
from replk_mm.utils.metafile import load_model_index

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
INDEX = load_model_index(osp.join(REPO, 'model-index.yml'))
ENTRIES = {m.name: m for m in INDEX if m.metafile.endswith('metafile_lk_convnext.yml')}
SMALL = dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 16])  # fast custom arch
LARGE = (31, 29, 27, 13)
# ConvNeXt's depths and widths, written out here (facebookresearch/ConvNeXt models/convnext.py)
CONVNEXT = {'tiny': ([3, 3, 9, 3], [96, 192, 384, 768]),
            'small': ([3, 3, 27, 3], [96, 192, 384, 768]),
            'base': ([3, 3, 27, 3], [128, 256, 512, 1024])}


@pytest.fixture(autouse=True)
def _native_dw_conv():
    """PyTorch's conv for every depth-wise conv: 'auto' would time the backends on each new
    shape, which costs these tests more than it checks (tests/test_ops.py covers them)."""
    with set_default_backend('native'):
        yield


def unscoped(node):
    """A config node without the `_scope_` keys that `mmpretrain::` / `mmseg::` bases add."""
    if isinstance(node, dict):
        return {k: unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [unscoped(v) for v in node]
    return node


@contextlib.contextmanager
def meta_device():
    """Build on the meta device; mmpretrain's ConvNeXt reads its drop-path rates with
    ``torch.linspace(...).item()``, which needs a real tensor: that one stays on the CPU."""
    linspace = torch.linspace
    with mock.patch.object(torch, 'linspace',
                           lambda *a, **k: linspace(*a, **dict(k, device='cpu'))), \
            torch.device('meta'):
        yield


def randomize(model, seed=0):
    """Random values in every parameter and BN statistic (LN / layer scale included), so that
    a wrong mapping or an identity-initialised tensor cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if p.ndim == 1 else 0.0))
    return randomize_bn(model, seed)


def mmpretrain_convnext(arch, **kwargs):
    from mmpretrain.models.backbones import ConvNeXt
    arch = arch if isinstance(arch, str) else dict(arch)
    return ConvNeXt(arch=arch, **kwargs)


def official_checkpoint(depths, channels, num_classes=10, kernel=7, seed=0):
    """An official ConvNeXt ImageNet checkpoint (facebookresearch layout, ``{'model': ...}``)
    with random tensors; keys and shapes written out independently of replk_mm."""
    shapes = {'downsample_layers.0.0.weight': (channels[0], 3, 4, 4),
              'downsample_layers.0.0.bias': (channels[0], ),
              'downsample_layers.0.1.weight': (channels[0], ),
              'downsample_layers.0.1.bias': (channels[0], )}
    for i in range(1, len(depths)):
        shapes.update({f'downsample_layers.{i}.0.weight': (channels[i - 1], ),
                       f'downsample_layers.{i}.0.bias': (channels[i - 1], ),
                       f'downsample_layers.{i}.1.weight': (channels[i], channels[i - 1], 2, 2),
                       f'downsample_layers.{i}.1.bias': (channels[i], )})
    for i, (d, c) in enumerate(zip(depths, channels)):
        for j in range(d):
            p = f'stages.{i}.{j}.'
            shapes.update({p + 'dwconv.weight': (c, 1, kernel, kernel), p + 'dwconv.bias': (c, ),
                           p + 'norm.weight': (c, ), p + 'norm.bias': (c, ),
                           p + 'pwconv1.weight': (4 * c, c), p + 'pwconv1.bias': (4 * c, ),
                           p + 'pwconv2.weight': (c, 4 * c), p + 'pwconv2.bias': (c, ),
                           p + 'gamma': (c, )})
    shapes.update({'norm.weight': (channels[-1], ), 'norm.bias': (channels[-1], ),
                   'head.weight': (num_classes, channels[-1]), 'head.bias': (num_classes, )})
    g = torch.Generator().manual_seed(seed)
    return {'model': {k: torch.randn(s, generator=g) * 0.1 + (1.0 if len(s) == 1 else 0.0)
                      for k, s in shapes.items()}}


def official_to_mmpretrain(state):
    """The oracle's own official -> mmpretrain-backbone renaming (for mmpretrain's ConvNeXt)."""
    names = {'.dwconv.': '.depthwise_conv.', '.pwconv1.': '.pointwise_conv1.',
             '.pwconv2.': '.pointwise_conv2.'}
    out = {}
    for k, v in state.items():
        if k.startswith('head.'):
            continue
        k = 'norm3.' + k[len('norm.'):] if k.startswith('norm.') else k
        for old, new in names.items():
            k = k.replace(old, new)
        out[k] = v
    return out


def pretrained(path, **kwargs):
    return dict(type='Pretrained', checkpoint=str(path), **kwargs)


# ------------------------------------------------------------------------------------- params
@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_params_are_convnext_plus_the_larger_kernels(arch):
    """7x7: exactly mmpretrain's ConvNeXt; 31-29-27-13 (+5x5 conv-BN / biased 5x5): that plus
    depth x channels x (k^2 - 49) per stage (+ 5x5 x channels and the BN's 2 x channels, or
    the conv's bias, per block), counted by hand."""
    depths, channels = CONVNEXT[arch]
    with meta_device():
        reference = num_params(mmpretrain_convnext(arch, out_indices=[0, 1, 2, 3],
                                                   gap_before_final_norm=False))
        plain = LKConvNeXt(arch)
        large_bn = LKConvNeXt(arch, kernel_sizes=LARGE, small_kernel=5)
        large_bias = LKConvNeXt(arch, kernel_sizes=LARGE, small_kernel=5,
                                small_kernel_norm_cfg=None)
    larger = sum(d * c * (k * k - 49) for d, c, k in zip(depths, channels, LARGE))
    blocks = sum(d * c for d, c in zip(depths, channels))
    assert num_params(plain) == reference
    assert num_params(large_bn) == reference + larger + blocks * (25 + 2)
    assert num_params(large_bias) == reference + larger + blocks * (25 + 1)
    assert [c for c in plain.channels] == channels and plain.depths == depths


def test_outputs_and_classification_mode():
    model = LKConvNeXt(SMALL, kernel_sizes=LARGE, small_kernel=3).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4),
                                              (2, 16, 2, 2)]
    cls = LKConvNeXt(SMALL, out_indices=(3, ), gap_before_final_norm=True).eval()
    assert [tuple(o.shape) for o in cls(torch.randn(2, 3, 64, 64))] == [(2, 16)]
    assert not hasattr(cls, 'norm0') and hasattr(cls, 'norm3')
    # every depth-wise conv runs through replk_mm.ops
    from replk_mm.ops import DepthwiseConv2d
    dw = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)
          and m.groups == m.in_channels > 1]
    assert dw and all(isinstance(m, DepthwiseConv2d) for m in dw)


# -------------------------------------------------------------------------------- checkpoints
def test_official_checkpoint_loads_with_no_missing_key_and_classifies_like_mmpretrain(tmp_path):
    """The official ConvNeXt-T ImageNet layout loads into the 7x7 classification form with
    every key placed (its final `norm` as `norm3`, `head` ignored), and the features equal
    mmpretrain's ConvNeXt given the same weights by the oracle's own renaming."""
    depths, channels = CONVNEXT['tiny']
    ckpt = official_checkpoint(depths, channels)
    torch.save(ckpt, tmp_path / 'convnext_tiny_1k_224.pth')
    model = LKConvNeXt('tiny', out_indices=(3, ), gap_before_final_norm=True)
    report = load_backbone_checkpoint(model, str(tmp_path / 'convnext_tiny_1k_224.pth'),
                                      strict=True)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    state = model.state_dict()
    assert torch.equal(state['stages.2.8.dwconv.lkb_origin.weight'],
                       ckpt['model']['stages.2.8.dwconv.weight'])
    assert torch.equal(state['norm3.bias'], ckpt['model']['norm.bias'])

    oracle = mmpretrain_convnext('tiny')  # classification defaults: out -1, GAP
    oracle.eval()  # (mmpretrain's ConvNeXt.train() returns None)
    oracle.load_state_dict(official_to_mmpretrain(ckpt['model']), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        (ours, ), (ref, ) = model.eval()(x), oracle(x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_mmpretrain_checkpoint_gives_mmpretrain_features(tmp_path):
    """An mmpretrain ConvNeXt-T classifier checkpoint (backbone with per-stage norms, as mmseg's
    UperNet + ConvNeXt configs build it: out_indices 0..3, gap_before_final_norm=False) loads
    with no missing key and gives mmpretrain's four feature maps."""
    oracle = randomize(mmpretrain_convnext('tiny', out_indices=[0, 1, 2, 3],
                                           gap_before_final_norm=False,
                                           layer_scale_init_value=1.0))
    oracle.eval()
    state = {'backbone.' + k: v for k, v in oracle.state_dict().items()}
    # the installed mmpretrain's names, as this repository expects them
    for key in ('backbone.stages.2.8.depthwise_conv.weight', 'backbone.stages.0.0.gamma',
                'backbone.stages.3.2.pointwise_conv1.weight', 'backbone.norm3.weight',
                'backbone.downsample_layers.3.1.weight'):
        assert key in state
    state.update({'head.fc.weight': torch.randn(10, 768), 'head.fc.bias': torch.randn(10)})
    torch.save({'state_dict': state, 'meta': {}}, tmp_path / 'mmpretrain.pth')
    model = LKConvNeXt('tiny', init_cfg=pretrained(tmp_path / 'mmpretrain.pth'))
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, ref = model.eval()(x), oracle(x)
    assert len(ours) == len(ref) == 4
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_block_keys_of_any_layout_load_through_plain_load_state_dict():
    """mmengine's `load_from`, tools/test.py and torch itself load ConvNeXt key names (official
    or mmpretrain) into LKConvNeXt, training or deploy form (e.g. an official UperNet model)."""
    source = randomize(LKConvNeXt(SMALL)).eval()
    official = {k.replace('dwconv.lkb_origin.', 'dwconv.'): v
                for k, v in source.state_dict().items()}
    mmpre = {k.replace('dwconv.lkb_origin.', 'depthwise_conv.').replace(
        'pwconv', 'pointwise_conv'): v for k, v in source.state_dict().items()}
    x = torch.randn(1, 3, 32, 32)
    for state in (official, mmpre):
        for merged in (False, True):
            model = LKConvNeXt(SMALL, small_kernel_merged=merged).eval()
            model.load_state_dict(state, strict=True)
            torch.testing.assert_close(model(x), source(x))


def test_official_upernet_checkpoint_loads_strictly_into_the_k7_config():
    """An official ConvNeXt UperNet checkpoint (mmseg 0.x: `backbone.stages.i.j.dwconv`,
    `backbone.norm0..3`, UPerHead) loads with replk_mm's strict whole-model loader (what
    `load_from` and tools/test.py use) into the 7x7 config's model."""
    from mmengine.registry import DefaultScope

    from replk_mm.models.checkpoint import load_model_state_dict
    cfg = load_config(INDEX.config_path(ENTRIES['upernet_lkconvnext_t_k7_ade20k']))
    cfg.model.backbone.update(arch=SMALL, init_cfg=None)
    cfg.model.decode_head.update(in_channels=SMALL['channels'], channels=16)
    cfg.model.auxiliary_head.update(in_channels=SMALL['channels'][2], channels=8)

    def build():
        import mmseg.registry
        with DefaultScope.overwrite_default_scope('mmseg'):
            return mmseg.registry.MODELS.build(cfg.model)

    state = {k.replace('dwconv.lkb_origin.', 'dwconv.'): v
             for k, v in randomize(build()).state_dict().items()}
    assert 'backbone.stages.2.1.dwconv.weight' in state and 'backbone.norm0.weight' in state
    model = build()
    assert load_model_state_dict(model, dict(state), strict=True).fits
    assert torch.equal(model.backbone.stages[2][1].dwconv.lkb_origin.weight,
                       state['backbone.stages.2.1.dwconv.weight'])


def test_seven_by_seven_into_large_kernels_refused_or_embedded(tmp_path):
    depths, channels = SMALL['depths'], SMALL['channels']
    torch.save(official_checkpoint(depths, channels), tmp_path / 'k7.pth')
    with pytest.raises(CheckpointMismatchError, match=r'7-7-7-7 .*31-29-27-13.*'
                       r'embed_smaller_kernels=True'):
        LKConvNeXt(SMALL, kernel_sizes=LARGE, init_cfg=pretrained(tmp_path / 'k7.pth')
                   ).init_weights()
    k7 = LKConvNeXt(SMALL, out_indices=(3, ), init_cfg=pretrained(tmp_path / 'k7.pth'))
    k7.init_weights()
    embedded = LKConvNeXt(SMALL, kernel_sizes=LARGE, out_indices=(3, ), init_cfg=pretrained(
        tmp_path / 'k7.pth', embed_smaller_kernels=True))
    embedded.init_weights()
    w = embedded.stages[0][0].dwconv.lkb_origin.weight
    assert w.shape[-1] == 31 and torch.equal(w[..., 12:19, 12:19],
                                             k7.stages[0][0].dwconv.lkb_origin.weight)
    assert w.abs().sum() == w[..., 12:19, 12:19].abs().sum()  # zeros around the 7x7
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(embedded.eval()(x), k7.eval()(x), rtol=1e-5, atol=1e-5)
    # with a small-kernel branch the branch is reported as not in the checkpoint, not an error
    LKConvNeXt(SMALL, kernel_sizes=LARGE, small_kernel=5, init_cfg=pretrained(
        tmp_path / 'k7.pth', embed_smaller_kernels=True)).init_weights()
    # larger checkpoint kernels never load into smaller ones
    torch.save(official_checkpoint(depths, channels, kernel=9), tmp_path / 'k9.pth')
    with pytest.raises(CheckpointMismatchError, match='larger depth-wise kernels'):
        LKConvNeXt(SMALL, init_cfg=pretrained(tmp_path / 'k9.pth', embed_smaller_kernels=True)
                   ).init_weights()


@pytest.mark.parametrize('other, message', [
    (dict(depths=[1, 1, 3, 1], channels=[8, 16, 32, 16]), r"missing keys.*stages\.2\.2\."),
    (dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 16]), r"unexpected keys.*stages\.2\.1\."),
    (dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 32]),
     r'(?s)another arch or width.*downsample_layers\.3\.1\.weight: checkpoint'),
])
def test_mismatched_checkpoint_is_named(tmp_path, other, message):
    torch.save(official_checkpoint(SMALL['depths'], SMALL['channels']), tmp_path / 'c.pth')
    with pytest.raises(CheckpointMismatchError, match=message):
        LKConvNeXt(other, init_cfg=pretrained(tmp_path / 'c.pth')).init_weights()


def test_bad_pretrained_cfg_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match='embed_smaller_kernels'):
        LKConvNeXt(SMALL, init_cfg=pretrained(tmp_path / 'x.pth', embed=True)).init_weights()
    with pytest.raises(FileNotFoundError, match='init_cfg.checkpoint'):
        LKConvNeXt(SMALL, init_cfg=pretrained(tmp_path / 'nope.pth')).init_weights()


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='huge'), r"unknown LKConvNeXt arch 'huge'.*\['base', 'small', 'tiny'\]"),
    (dict(arch=dict(depths=[1, 1], channels=[8])), 'one entry per stage'),
    (dict(arch=dict(depths=[1], widths=[8])),
     r"missing keys \['channels'\]; unknown keys 'widths'.*keys \['depths', 'channels'\]"),
    (dict(kernel_sizes=(7, 8, 7, 7)), r'kernel_sizes\[1\] \(stage 1\).*odd'),
    (dict(kernel_sizes=(7, 7, 7)), 'one entry per stage'),
    (dict(kernel_sizes=(31, 29, 27, 3), small_kernel=5), r'small_kernel \(5\).*stage 3 \(3\)'),
    (dict(small_kernel=4), 'small_kernel must be a positive odd int'),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
    (dict(drop_path_rate=1.0), 'drop_path_rate'),
])
def test_bad_arguments_are_named(kwargs, message):
    kwargs = dict(dict(arch=SMALL), **kwargs)
    with pytest.raises(ValueError, match=message):
        LKConvNeXt(**kwargs)


# ----------------------------------------------------------------------- re-parameterization
@pytest.mark.parametrize('norm_cfg', [dict(type='BN'), None])
def test_switch_to_deploy_equal_outputs_and_deploy_form_loads(norm_cfg):
    model = randomize(LKConvNeXt(SMALL, kernel_sizes=LARGE, small_kernel=5,
                                 small_kernel_norm_cfg=norm_cfg)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        assert switch_to_deploy(model) == sum(SMALL['depths'])
        after = model(x)
    for a, b in zip(before, after):
        assert ((a - b).norm() / b.norm()).item() < 1e-5
    keys = model.state_dict()
    assert not any('small_conv' in k or 'lkb_origin' in k for k in keys)
    deploy = LKConvNeXt(SMALL, kernel_sizes=LARGE, small_kernel=5, small_kernel_merged=True)
    deploy.load_state_dict(keys, strict=True)
    with torch.no_grad():
        for a, b in zip(deploy.eval()(x), after):
            torch.testing.assert_close(a, b)


def test_training_form_checkpoint_into_deploy_form_says_which_form(tmp_path):
    torch.save(LKConvNeXt(SMALL, small_kernel=3).state_dict(), tmp_path / 'train.pth')
    with pytest.raises(CheckpointMismatchError, match='small_kernel_merged=False'):
        LKConvNeXt(SMALL, small_kernel=3, small_kernel_merged=True,
                   init_cfg=pretrained(tmp_path / 'train.pth')).init_weights()


def test_frozen_stages_norm_eval_and_with_cp():
    model = LKConvNeXt(SMALL, kernel_sizes=LARGE, small_kernel=3, frozen_stages=2,
                       norm_eval=True).train()
    frozen = list(model.downsample_layers[:2].parameters()) + list(model.stages[:2].parameters())
    assert all(not p.requires_grad for p in frozen)
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert not any(m.training for m in model.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))
    plain = randomize(LKConvNeXt(SMALL, kernel_sizes=LARGE, small_kernel=3)).eval()
    cp = LKConvNeXt(SMALL, kernel_sizes=LARGE, small_kernel=3, with_cp=True).eval()
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    sum(o.sum() for o in plain(x)).backward()
    grad = x.grad.clone()
    x.grad = None
    sum(o.sum() for o in cp(x)).backward()
    torch.testing.assert_close(x.grad, grad)


# ---------------------------------------------------------------------------------- registry
def test_registered_without_colliding_with_convnext():
    import mmdet.registry
    import mmpretrain.models  # noqa: F401
    import mmpretrain.registry
    import mmseg.registry
    from mmengine.registry import DefaultScope
    cfg = dict(type='LKConvNeXt', arch=SMALL, kernel_sizes=LARGE, small_kernel=5)
    for scope, registry in (('mmseg', mmseg.registry.MODELS), ('mmdet', mmdet.registry.MODELS)):
        with DefaultScope.overwrite_default_scope(scope):
            assert type(registry.build(cfg)) is LKConvNeXt
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        registry = mmpretrain.registry.MODELS
        assert type(registry.build(dict(cfg, type='replk_mm.LKConvNeXt'))) is LKConvNeXt
        assert registry.get('ConvNeXt').__module__.startswith('mmpretrain.')
        assert registry.get('LKConvNeXt') is None
    assert mmseg.registry.MODELS.get('mmpretrain.ConvNeXt').__module__.startswith('mmpretrain')


def test_mmseg_lr_decay_groups_like_mmpretrain_convnext():
    """mmseg's LearningRateDecayOptimizerConstructor (the ConvNeXt recipe's stage-wise decay)
    reads LKConvNeXt's layer names: every parameter gets the lr scale of the same parameter
    of mmpretrain's ConvNeXt; the small-kernel branch gets its block's."""
    from mmseg.engine.optimizers import LearningRateDecayOptimizerConstructor

    class Segmentor(torch.nn.Module):

        def __init__(self, backbone):
            super().__init__()
            self.backbone, self.decode_head = backbone, torch.nn.Linear(4, 4)

    def scales(backbone):
        constructor = LearningRateDecayOptimizerConstructor(
            dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05)),
            dict(decay_rate=0.9, decay_type='stage_wise', num_layers=6))
        wrapper = constructor(Segmentor(backbone))
        return {name: (group['lr_scale'], group['weight_decay'])
                for group in wrapper.optimizer.param_groups for name in group['param_names']}

    ours = scales(LKConvNeXt(SMALL, kernel_sizes=LARGE, small_kernel=5))
    ref = scales(mmpretrain_convnext(SMALL, out_indices=[0, 1, 2, 3],
                                     gap_before_final_norm=False))
    renamed = {k.replace('depthwise_conv', 'dwconv.lkb_origin').replace(
        'pointwise_conv', 'pwconv'): v for k, v in ref.items()}
    small = {k: v for k, v in ours.items() if 'small_conv' in k}
    assert {k: v for k, v in ours.items() if k not in small} == renamed
    assert small and all(v[0] == ours[k.split('small_conv')[0] + 'lkb_origin.weight'][0]
                         for k, v in small.items())
    assert len({v[0] for v in ours.values()}) == 6  # downsample, 4 stages, heads / norms


# ----------------------------------------------------------------------------------- configs
REFERENCE = {  # the OpenMMLab config each one is ConvNeXt's recipe from
    'in1k': 'mmpretrain::convnext/convnext-{}_32xb128_in1k.py',
    'ade20k': 'mmseg::convnext/convnext-{}_upernet_8xb2-amp-160k_ade20k-512x512.py'}
SIZE = {'t': 'tiny', 's': 'small', 'b': 'base'}


def _build_meta(cfg, scope):
    from mmengine.registry import DefaultScope
    from mmengine.utils import import_modules_from_strings
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    registry = {'mmseg': 'mmseg.registry', 'mmpretrain': 'mmpretrain.registry'}[scope]
    with DefaultScope.overwrite_default_scope(scope), meta_device():
        return __import__(registry, fromlist=['MODELS']).MODELS.build(cfg.model)


def _ref_config(name):
    task = 'ade20k' if name.startswith('upernet') else 'in1k'
    size = SIZE[name.split('_')[-3]]  # ..._{t,s}_{k7,k31}_{task}
    package, path = REFERENCE[task].format(size).split('::')
    root = osp.dirname(__import__(package).__file__)
    return Config.fromfile(osp.join(root, '.mim', 'configs', path)), task


def test_ten_configs_one_per_model_in_the_metafile():
    """T and S with 7x7 and large kernels, and B with 7x7: the claim compares T-large with
    S-7x7 and S-large with B-7x7 (docs/lk_convnext.md)."""
    assert sorted(ENTRIES) == sorted(
        [f'{p}lkconvnext_{s}_{k}_{t}' for p, t in (('', 'in1k'), ('upernet_', 'ade20k'))
         for s in 't s'.split() for k in ('k7', 'k31')] +
        ['lkconvnext_b_k7_in1k', 'upernet_lkconvnext_b_k7_ade20k'])


@pytest.mark.parametrize('name', sorted(ENTRIES))
def test_config_builds_with_the_recipe_and_params(name):
    """Each config builds (on the meta device) the reference OpenMMLab ConvNeXt model with only
    the backbone's kernels changed: params = the reference's + the hand-computed difference;
    the 7x7 ones are within 1M of the official README's count."""
    entry = ENTRIES[name]
    cfg = load_config(INDEX.config_path(entry))
    ref_cfg, task = _ref_config(name)
    scope = 'mmseg' if task == 'ade20k' else 'mmpretrain'
    assert cfg.default_scope == ref_cfg.default_scope == scope
    backbone = cfg.model.backbone
    depths, channels = CONVNEXT[backbone.arch]
    large = '_k31_' in name
    assert tuple(backbone.kernel_sizes) == (LARGE if large else (7, 7, 7, 7))
    assert backbone.small_kernel == (5 if large else None)
    assert backbone.drop_path_rate == ref_cfg.model.backbone.drop_path_rate
    if task == 'ade20k':
        ref = ref_cfg.optim_wrapper
        assert cfg.optim_wrapper.constructor == 'LearningRateDecayOptimizerConstructor'
        # the recipe's mixed precision is tools/train.py's --amp (AmpOptimWrapper on a GPU)
        assert (cfg.optim_wrapper.type, ref.type) == ('OptimWrapper', 'AmpOptimWrapper')
        assert unscoped(cfg.optim_wrapper.paramwise_cfg) == unscoped(ref.paramwise_cfg)
        assert unscoped(cfg.optim_wrapper.optimizer) == unscoped(ref.optimizer)
        assert backbone.layer_scale_init_value == 1.0
        assert backbone.init_cfg.checkpoint == \
            f'work_dirs/{name[len("upernet_"):].replace("ade20k", "in1k")}/epoch_300.pth'
        sched, = cfg.param_scheduler
        assert (sched.type, sched.warmup_iters, sched.warmup_ratio) == \
            ('WarmupPolyLR', 1500, 1e-6)
        assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size == 2
        assert cfg.model.test_cfg == ref_cfg.model.test_cfg
    else:
        for key in ('optim_wrapper', 'param_scheduler', 'custom_hooks', 'train_dataloader'):
            assert unscoped(cfg[key]) == unscoped(ref_cfg[key]), key
        assert cfg.train_cfg.max_epochs == 300
        assert backbone.gap_before_final_norm and tuple(backbone.out_indices) == (3, )

    import mmpretrain.models  # noqa: F401  (the reference configs build mmpretrain's ConvNeXt)
    params = num_params(_build_meta(cfg, scope))
    reference = num_params(_build_meta(ref_cfg, scope))
    if large:
        blocks = sum(d * c for d, c in zip(depths, channels))
        reference += sum(d * c * (k * k - 49) for d, c, k in zip(depths, channels, LARGE)) + \
            blocks * (25 + 2)
    assert params == reference
    if 'Parameters (M)' in entry.metadata:
        assert abs(params / 1e6 - entry.metadata['Parameters (M)']) < 1


@pytest.mark.parametrize('size', ['t', 's'])
@pytest.mark.parametrize('task', ['in1k', 'ade20k'])
def test_large_kernel_config_differs_only_in_kernels(size, task):
    """Each comparison changes one thing: the k31 config is its k7 twin with other kernels and
    its own pre-training."""
    prefix = 'upernet_' if task == 'ade20k' else ''
    k7, k31 = (load_config(INDEX.config_path(ENTRIES[f'{prefix}lkconvnext_{size}_{k}_{task}']))
               for k in ('k7', 'k31'))
    a, b = k7.to_dict(), k31.to_dict()
    for cfg in (a, b):
        for key in ('kernel_sizes', 'small_kernel', 'small_kernel_norm_cfg', 'init_cfg'):
            cfg['model']['backbone'].pop(key, None)
        cfg.pop('pretrained', None)
    assert a == b
