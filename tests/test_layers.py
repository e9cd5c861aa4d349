"""replk_mm.layers: torch-only building blocks and the generic re-parameterization."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn
from conftest import BLOCK_OPENMMLAB, REPO, TINY_ARCH, randomize_bn, relative_error

from replk_mm.layers import (
    DropPath,
    ReparamLargeKernelConv,
    ReparamModule,
    RepLKNetTrunk,
    conv_kernel_bias,
    drop_path,
    is_deployed,
    reparam_modules,
    switch_to_deploy,
)

# Runs with every OpenMMLab package made unimportable, as on a bare GPU box with torch only.
TORCH_ONLY_SCRIPT = BLOCK_OPENMMLAB + textwrap.dedent('''
    import importlib, json, pkgutil
    import torch
    import replk_mm.layers
    from replk_mm.layers import RepLKNetTrunk, is_deployed, reparam_modules, switch_to_deploy
    for info in pkgutil.walk_packages(replk_mm.layers.__path__, 'replk_mm.layers.'):
        importlib.import_module(info.name)
    assert not [m for m in sys.modules if m.split('.')[0] in OPENMMLAB]

    torch.manual_seed(0)
    arch = json.loads(sys.argv[1])
    model = RepLKNetTrunk(arch, drop_path_rate=0.2, with_cp=True, dw_conv_backend='native')
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    loss = sum(o.square().mean() for o in model(torch.randn(2, 3, 64, 64)))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())
    optimizer.step()  # BN statistics and weights now differ from their initial values

    model.eval()
    x = torch.randn(1, 3, 64, 64)
    mergeable = len(reparam_modules(model))
    with torch.no_grad():
        before = model(x)
        merged = switch_to_deploy(model)
        after = model(x)
    assert merged == mergeable and is_deployed(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    err = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(after, before))
    assert err < 1e-5, err
    print('TORCH_ONLY_OK')
''')


def test_layers_and_tiny_trunk_train_and_reparameterize_without_openmmlab():
    result = subprocess.run([sys.executable, '-c', TORCH_ONLY_SCRIPT, json.dumps(TINY_ARCH)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert 'TORCH_ONLY_OK' in result.stdout


def _check_merge_is_exact(model, x):
    model.eval()
    with torch.no_grad():
        before = model(x)
        assert switch_to_deploy(model) == 1
        state = {k: v.clone() for k, v in model.state_dict().items()}
        assert switch_to_deploy(model) == 0  # idempotent: nothing left, nothing changed
        after = model(x)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert relative_error(after, before) < 1e-5
    assert is_deployed(model)
    return model


@pytest.mark.parametrize('stride', [1, 2])
def test_conv_bn_branch_pair_merges_exactly(stride):
    layer = randomize_bn(ReparamLargeKernelConv(6, 13, 3, stride=stride))
    assert list(layer.state_dict())[:2] == ['lkb_origin.conv.weight', 'lkb_origin.bn.weight']
    assert 'small_conv.bn.running_var' in layer.state_dict()
    _check_merge_is_exact(layer, torch.randn(2, 6, 21, 21))
    assert sorted(layer.state_dict()) == ['lkb_reparam.bias', 'lkb_reparam.weight']
    assert layer.lkb_reparam.stride == (stride, stride)


def test_biased_conv_branch_pair_merges_exactly_with_own_names():
    """ConvNeXt-style: both branches biased depth-wise convs without BN, named by the backbone."""
    layer = ReparamLargeKernelConv(8, 31, 5, norm_layer=None, large_name='dwconv',
                                   small_name='dwconv_small', merged_name='dwconv_merged')
    assert list(layer.state_dict()) == ['dwconv.weight', 'dwconv.bias', 'dwconv_small.weight',
                                        'dwconv_small.bias']
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    _check_merge_is_exact(layer, torch.randn(2, 8, 40, 40))
    assert list(layer.state_dict()) == ['dwconv_merged.weight', 'dwconv_merged.bias']


def test_mixed_branches_biased_large_and_conv_bn_small():
    layer = randomize_bn(ReparamLargeKernelConv(4, 7, 3, norm_layer=None,
                                                small_norm_layer=nn.BatchNorm2d))
    assert {'lkb_origin.weight', 'lkb_origin.bias', 'small_conv.bn.running_var'} <= \
        set(layer.state_dict())
    _check_merge_is_exact(layer, torch.randn(1, 4, 16, 16))


def test_deploy_form_loads_merged_state_and_keeps_backend():
    trained = randomize_bn(ReparamLargeKernelConv(4, 9, 5, backend='fft')).eval()
    x = torch.randn(1, 4, 12, 12)
    with torch.no_grad():
        expected = trained(x)
    switch_to_deploy(trained)
    assert trained.lkb_reparam.backend == 'fft'
    deploy = ReparamLargeKernelConv(4, 9, 5, small_kernel_merged=True)
    deploy.load_state_dict(trained.state_dict(), strict=True)
    assert deploy.merged and relative_error(deploy(x), expected) < 1e-5


def test_biased_conv_followed_by_bn_folds_exactly():
    conv, bn = nn.Conv2d(3, 5, 3, padding=1, bias=True), nn.BatchNorm2d(5)
    randomize_bn(bn).eval()
    fused = conv_kernel_bias(conv, bn)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = bn(conv(x))
        result = nn.functional.conv2d(x, fused.weight, fused.bias, padding=1)
    assert relative_error(result, expected) < 1e-5


def test_nothing_to_merge_is_an_error():
    with pytest.raises(ValueError, match='contains no RepLKNet block or other re-parameterizable'):
        switch_to_deploy(nn.Sequential(nn.Conv2d(3, 3, 3), nn.BatchNorm2d(3)))
    with pytest.raises(TypeError, match='expected an nn.Module'):
        switch_to_deploy({'state': 'dict'})


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(kernel_size=5, small_kernel=7), ValueError, 'small_kernel (7) is larger than the large '
                                                     'kernel (5)'),
    (dict(kernel_size=30, small_kernel=5), ValueError, 'kernel_size (the large kernel) must be a '
                                                       'positive odd int'),
    (dict(kernel_size=31, small_kernel=4), ValueError, 'small_kernel must be a positive odd int'),
    (dict(kernel_size=31, small_kernel=5, small_name='lkb_origin'), ValueError,
     'three different identifiers'),
    (dict(kernel_size=31, small_kernel=5, small_norm_layer='bn'), ValueError,
     "small_norm_layer must be a callable, None or 'same'"),
    (dict(kernel_size=31, small_kernel=5, norm_layer=lambda c: nn.GroupNorm(1, c)), TypeError,
     'norm_layer built GroupNorm; re-parameterization folds BatchNorm'),
])
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message.replace('(', r'\(').replace(')', r'\)')):
        ReparamLargeKernelConv(4, **kwargs)


def test_reparam_protocol_is_enforced():
    class Incomplete(ReparamModule):
        @property
        def merged(self):
            return False

    with pytest.raises(TypeError, match='abstract'):
        Incomplete()

    class ForgetsToMerge(Incomplete):
        def merge(self):
            pass

    with pytest.raises(RuntimeError, match='left the module unmerged'):
        switch_to_deploy(nn.Sequential(ForgetsToMerge()))


def test_drop_path_draws_the_same_masks_as_mmcv():
    from mmcv.cnn.bricks.drop import drop_path as mmcv_drop_path
    x = torch.randn(64, 3, 4, 4)
    torch.manual_seed(3)
    ours = drop_path(x, 0.3, training=True)
    torch.manual_seed(3)
    torch.testing.assert_close(ours, mmcv_drop_path(x, 0.3, training=True), rtol=0, atol=0)
    kept = ours.flatten(1).abs().sum(1) > 0
    assert 0 < kept.sum() < 64  # some samples dropped, some kept (scaled by 1 / 0.7)
    torch.testing.assert_close(ours[kept], x[kept] / 0.7)
    assert torch.equal(DropPath(0.3).eval()(x), x)
    with pytest.raises(ValueError, match=r'drop_prob must be a float in \[0, 1\)'):
        DropPath(1.0)


def test_trunk_and_plugin_share_layout_and_outputs():
    from replk_mm import RepLKNet
    trunk = randomize_bn(RepLKNetTrunk(TINY_ARCH, out_indices=(1, 3))).eval()
    plugin = RepLKNet(TINY_ARCH, out_indices=(1, 3)).eval()
    assert isinstance(plugin, RepLKNetTrunk) and RepLKNet.arch_settings is trunk.arch_settings
    assert list(plugin.state_dict()) == list(trunk.state_dict())
    plugin.load_state_dict(trunk.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(plugin(x), trunk(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    mergeable = len(reparam_modules(trunk))
    assert trunk.switch_to_deploy() == mergeable and trunk.deployed
    with pytest.raises(TypeError, match="unexpected keyword argument 'init_cfg'"):
        RepLKNetTrunk(TINY_ARCH, init_cfg=None)
