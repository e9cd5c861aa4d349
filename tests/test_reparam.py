import copy

import pytest
import torch
from conftest import TINY_ARCH, randomize_bn, relative_error

from replk_mm import RepLKNet, switch_to_deploy
from replk_mm.layers import reparam_modules


@pytest.mark.parametrize('arch', ['31B', '31L', 'XL', 'tiny'])
def test_switch_to_deploy_is_equivalent(arch):
    arch = TINY_ARCH if arch == 'tiny' else arch
    model = randomize_bn(RepLKNet(arch, norm_intermediate_features=True)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        model.switch_to_deploy()
        after = model(x)
    for a, b in zip(after, before):
        assert relative_error(a, b) < 1e-5
    assert model.deployed
    keys = list(model.state_dict())
    assert not any('lkb_origin' in k or 'small_conv' in k for k in keys)
    n_blocks = sum(RepLKNet.parse_arch(arch)['layers'])
    assert sum(k.endswith('lkb_reparam.bias') for k in keys) == n_blocks


def test_switch_to_deploy_twice_is_harmless():
    model = randomize_bn(RepLKNet(TINY_ARCH)).eval()
    model.switch_to_deploy()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.switch_to_deploy()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_helper_reparameterizes_any_containing_model():
    model = torch.nn.Sequential(randomize_bn(RepLKNet(TINY_ARCH, out_indices=(3, ))),
                                torch.nn.Identity()).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[0]
        assert switch_to_deploy(model) == len(reparam_modules(model))
        assert switch_to_deploy(model) == 0  # idempotent
        after = model(x)[0]
    assert relative_error(after, before) < 1e-5
    with pytest.raises(ValueError, match='contains no RepLKNet'):
        switch_to_deploy(torch.nn.Linear(2, 2))


def test_deploy_form_model_loads_reparameterized_state():
    trained = randomize_bn(RepLKNet(TINY_ARCH)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = trained(x)
    trained.switch_to_deploy()
    deploy = RepLKNet(TINY_ARCH, small_kernel_merged=True).eval()
    result = deploy.load_state_dict(trained.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        for a, b in zip(deploy(x), expected):
            assert relative_error(a, b) < 1e-5


def test_no_small_kernel_arch_merges_bn_only():
    arch = dict(TINY_ARCH, small_kernel=None)
    model = randomize_bn(RepLKNet(arch)).eval()
    assert not any('small_conv' in k for k in model.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        model.switch_to_deploy()
        assert all(relative_error(a, b) < 1e-5 for a, b in zip(model(x), before))


def test_deploy_form_gradients_equal_the_training_forms():
    """The merged conv is the same function of the input and of its kernel: input gradients are
    equal, and the merged kernel's gradient times the large branch's BN scale is the training
    form's large-kernel gradient (a wrong scale, shift or padding in the merge breaks both)."""
    model = randomize_bn(RepLKNet(TINY_ARCH)).eval()
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    sum(o.square().sum() for o in model(x)).backward()
    deploy = copy.deepcopy(model)
    switch_to_deploy(deploy)
    deploy.zero_grad()
    x_deploy = x.detach().clone().requires_grad_(True)
    sum(o.square().sum() for o in deploy(x_deploy)).backward()
    assert relative_error(x_deploy.grad, x.grad) < 1e-4
    checked = 0
    for name, trained in model.named_modules():
        if hasattr(trained, 'lkb_origin'):
            merged = deploy.get_submodule(name)
            bn = trained.lkb_origin.bn
            scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).view(-1, 1, 1, 1)
            expected = trained.lkb_origin.conv.weight.grad
            assert relative_error(merged.lkb_reparam.weight.grad * scale, expected) < 1e-4
            assert merged.lkb_reparam.bias.grad is not None
            checked += 1
    assert checked == sum(TINY_ARCH['layers'])
