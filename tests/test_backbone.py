import re

import pytest
import torch
from conftest import TINY_ARCH, num_params, randomize_bn

from replk_mm import RepLKNet

PARAMS = {'31B': 78_837_120, '31L': 171_130_944, 'XL': 333_382_656}


@pytest.mark.parametrize('arch', ['31B', '31L', 'XL'])
def test_param_count_and_shapes(arch):
    model = RepLKNet(arch).eval()
    assert num_params(model) == PARAMS[arch]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    channels = RepLKNet.arch_settings[arch]['channels']
    expected = [(1, c, 64 // s, 64 // s) for c, s in zip(channels, (4, 8, 16, 32))]
    assert [tuple(o.shape) for o in outs] == expected


def test_builds_on_meta_device():
    """`torch.device('meta')` builds the structure without memory (e.g. to count XL params or
    to shard before loading weights)."""
    with torch.device('meta'):
        model = RepLKNet('XL', drop_path_rate=0.5)
    assert num_params(model) == PARAMS['XL']
    assert next(model.parameters()).is_meta


def test_xl_norm_intermediate_features():
    model = RepLKNet('XL', norm_intermediate_features=True)
    assert num_params(model) == 333_390_336
    assert all(isinstance(s.norm, torch.nn.BatchNorm2d) for s in model.stages)


def test_out_indices_selects_stages():
    model = RepLKNet(TINY_ARCH, out_indices=(1, 3)).eval()
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [16, 64]
    assert RepLKNet(TINY_ARCH, out_indices=2).out_indices == (2, )


def test_dw_ratio_and_custom_arch():
    model = RepLKNet(dict(TINY_ARCH, dw_ratio=1.5, ffn_ratio=2))
    block = model.stages[0].blocks[0]
    assert block.large_kernel.lkb_origin.conv.weight.shape == (12, 1, 31, 31)
    assert model.stages[0].blocks[1].pw1.conv.out_channels == 16


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='31X'), "the named archs are ['31B', '31L', 'XL']"),
    (dict(arch=dict(TINY_ARCH, large_kernel_sizes=[31, 28, 27, 13])), 'positive odd ints'),
    (dict(arch=dict(TINY_ARCH, small_kernel=4)), 'small_kernel must be a positive odd'),
    (dict(arch=dict(TINY_ARCH, small_kernel=15)), 'larger than the smallest large kernel'),
    (dict(arch=dict(TINY_ARCH, layers=[1, 1, 1])), 'one entry per stage'),
    (dict(arch=dict(TINY_ARCH, kernel=3)), "unknown keys 'kernel'"),
    (dict(arch=TINY_ARCH, out_indices=(0, 4)), 'out_indices must be'),
    (dict(arch=TINY_ARCH, out_indices=()), 'out_indices must be'),
    (dict(arch=TINY_ARCH, frozen_stages=5), 'frozen_stages must be'),
    (dict(arch=TINY_ARCH, frozen_stages=-2), 'frozen_stages must be'),
    (dict(arch=TINY_ARCH, drop_path_rate=1.0), 'drop_path_rate'),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RepLKNet(**kwargs)


def _train_step(model, x):
    loss = sum(o.square().mean() for o in model(x))
    loss.backward()


@pytest.mark.parametrize('frozen_stages', [0, 1, 3])
def test_frozen_stages(frozen_stages):
    model = randomize_bn(RepLKNet(TINY_ARCH, frozen_stages=frozen_stages))
    frozen = [model.stem] + list(model.stages[:frozen_stages]) + \
        list(model.transitions[:max(frozen_stages - 1, 0)])
    trainable = list(model.stages[frozen_stages:]) + list(model.transitions[len(frozen) - 1:])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    _train_step(model, torch.randn(2, 3, 64, 64))
    for module in frozen:
        assert not module.training
        assert all(p.grad is None and not p.requires_grad for p in module.parameters())
    frozen_ids = {id(p) for m in frozen for p in m.parameters()}
    assert any(p.grad is not None for m in trainable for p in m.parameters())
    # BN statistics of frozen modules are untouched by a training-mode forward
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d) and id(module.weight) in frozen_ids:
            assert torch.equal(module.running_mean, before[f'{name}.running_mean'])
    assert model.stem.training is False


def test_frozen_stages_all():
    model = RepLKNet(TINY_ARCH, frozen_stages=4).train()
    assert not any(p.requires_grad for p in model.parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_frozen_stages_keeps_later_transitions_trainable():
    model = RepLKNet(TINY_ARCH, frozen_stages=2)
    assert not any(p.requires_grad for p in model.transitions[0].parameters())
    assert all(p.requires_grad for p in model.transitions[1].parameters())
    assert all(p.requires_grad for p in model.stages[2].parameters())


def test_norm_eval_keeps_bn_statistics():
    model = randomize_bn(RepLKNet(TINY_ARCH, norm_eval=True)).train()
    before = {k: v.clone() for k, v in model.state_dict().items() if 'running' in k}
    _train_step(model, torch.randn(2, 3, 64, 64))
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    # and without norm_eval the same step does change them
    model = randomize_bn(RepLKNet(TINY_ARCH)).train()
    _train_step(model, torch.randn(2, 3, 64, 64))
    assert not torch.equal(model.stem[0].bn.running_mean, before['stem.0.bn.running_mean'])


def test_with_cp_same_outputs_and_gradients():
    plain = randomize_bn(RepLKNet(TINY_ARCH, drop_path_rate=0.))
    ckpt = RepLKNet(TINY_ARCH, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    plain.eval(), ckpt.eval()  # eval: BN must not update twice during recomputation
    x = torch.randn(2, 3, 64, 64)
    outs_plain, outs_ckpt = plain(x), ckpt(x)
    for a, b in zip(outs_plain, outs_ckpt):
        torch.testing.assert_close(a, b)
    sum(o.sum() for o in outs_plain).backward()
    sum(o.sum() for o in outs_ckpt).backward()
    grads = dict(ckpt.named_parameters())
    for name, p in plain.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-5, atol=1e-6)


def test_drop_path_rate_increases_linearly():
    model = RepLKNet(TINY_ARCH, drop_path_rate=0.5)
    rates = [blk.drop_path.drop_prob for stage in model.stages
             for blk in stage.blocks[::2] if hasattr(blk.drop_path, 'drop_prob')]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.5)
    assert isinstance(model.stages[0].blocks[0].drop_path, torch.nn.Identity)  # rate 0


def test_syncbn_from_config_builds():
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):  # whatever scope earlier tests left
        model = MODELS.build(dict(type='RepLKNet', arch=TINY_ARCH,
                                  norm_cfg=dict(type='SyncBN', requires_grad=True)))
    assert isinstance(model.stem[0].bn, torch.nn.SyncBatchNorm)
    assert isinstance(model.stages[0].blocks[0].large_kernel.lkb_origin.bn,
                      torch.nn.SyncBatchNorm)


def test_dw_conv_backend_reaches_every_large_kernel_conv():
    from replk_mm.ops import DepthwiseConv2d
    model = RepLKNet(TINY_ARCH, dw_conv_backend='fft')
    convs = [m for m in model.modules() if isinstance(m, DepthwiseConv2d)]
    assert len(convs) == 2 * sum(TINY_ARCH['layers'])  # large + small per block
    assert {c.backend for c in convs} == {'fft'}
    model.eval().switch_to_deploy()
    assert {m.backend for m in model.modules() if isinstance(m, DepthwiseConv2d)} == {'fft'}
    with pytest.raises(ValueError, match='bogus'):
        RepLKNet(TINY_ARCH, dw_conv_backend='bogus')
