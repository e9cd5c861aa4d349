"""replk_mm.ops.fused: a conv (or linear) and its activation / residual add in one oneDNN call
on CPU."""
import logging
from collections import Counter

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from replk_mm.ops import DepthwiseConv2d, conv2d_act, conv2d_add, fused, linear_act
from replk_mm.ops._log import forget_logged

pytestmark = pytest.mark.skipif(not fused.cpu_fusion_enabled(),
                                reason='torch built without oneDNN')


def nhwc(*shape):
    return torch.randn(*shape).contiguous(memory_format=torch.channels_last)


def biased(conv):
    with torch.no_grad():
        conv.bias.normal_()
    return conv


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    monkeypatch.delenv(fused.ENV_CPU_FUSION, raising=False)
    fused.clear_packed_weights()
    yield
    fused.clear_packed_weights()


CONVS = {
    '1x1': lambda: nn.Conv2d(16, 32, 1),
    '3x3/2 dense': lambda: nn.Conv2d(16, 32, 3, 2, 1),
    'dw 3x3/2': lambda: nn.Conv2d(16, 16, 3, 2, 1, groups=16),
    'dw 13 on 9x9': lambda: DepthwiseConv2d(16, 13, bias=True),
}
ACTIVATIONS = {'none': lambda: None, 'relu': nn.ReLU, 'relu in place': lambda: nn.ReLU(True),
               'gelu': nn.GELU, 'gelu tanh': lambda: nn.GELU(approximate='tanh')}


@pytest.mark.parametrize('act_name', ACTIVATIONS)
@pytest.mark.parametrize('conv_name', CONVS)
def test_conv2d_act_is_fused_and_equals_the_unfused_ops(conv_name, act_name):
    conv, activation = biased(CONVS[conv_name]()), ACTIVATIONS[act_name]()
    x = nhwc(2, 16, 9, 9)
    expected = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, 1, conv.groups)
    if activation is not None:
        expected = activation(expected.clone())
    with torch.no_grad():
        out = conv2d_act(conv, x, activation)
    assert fused.packed_weight_count() == 1  # it took the oneDNN path
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_other_inputs_take_the_unfused_ops():
    conv, act = biased(nn.Conv2d(8, 8, 1)), nn.ReLU()
    cases = {
        'NCHW input': torch.randn(2, 8, 6, 6),
        'float64': nhwc(2, 8, 6, 6).double(),
    }
    for why, x in cases.items():
        c = conv.double() if x.dtype == torch.float64 else conv.float()
        with torch.no_grad():
            out = conv2d_act(c, x, act)
        assert fused.packed_weight_count() == 0, why
        torch.testing.assert_close(out, F.relu(c(x)))
    # an activation oneDNN is not asked for runs after the conv
    x = nhwc(2, 8, 6, 6)
    with torch.no_grad():
        out = conv2d_act(conv.float(), x, nn.SiLU())
    assert fused.packed_weight_count() == 0
    torch.testing.assert_close(out, F.silu(conv(x)))


def test_a_kernel_larger_than_the_map_goes_through_replk_mm_ops_cropping():
    conv = biased(DepthwiseConv2d(8, 31, bias=True))
    x = nhwc(1, 8, 7, 7)  # 31 > 2 * 7 - 1: only a 13x13 window can reach the map
    with torch.no_grad():
        out = conv2d_act(conv, x, nn.ReLU())
    assert fused.packed_weight_count() == 0
    torch.testing.assert_close(out, F.relu(F.conv2d(x, conv.weight, conv.bias, 1, 15, 1, 8)),
                               rtol=1e-5, atol=1e-5)


def test_gradients_take_the_unfused_ops():
    conv = biased(nn.Conv2d(8, 8, 1))
    x = nhwc(2, 8, 5, 5).requires_grad_()
    residual = nhwc(2, 8, 5, 5)
    out = conv2d_add(conv, x, conv2d_act(conv, x, nn.GELU()))
    out.sum().backward()
    assert fused.packed_weight_count() == 0
    assert x.grad is not None and conv.weight.grad is not None
    before = residual.clone()
    conv2d_add(conv, x, residual)
    assert torch.equal(residual, before)  # not written into while gradients are recorded


def test_conv2d_add_writes_the_sum_into_the_residual():
    conv = biased(nn.Conv2d(16, 8, 1))
    x, residual = nhwc(2, 16, 6, 6), nhwc(2, 8, 6, 6)
    expected = residual + conv(x).detach()
    with torch.inference_mode():
        out = conv2d_add(conv, x, residual)
    assert fused.packed_weight_count() == 1
    assert out.data_ptr() == residual.data_ptr()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # a residual of another shape (a strided conv) is not fused, and is still added
    strided = biased(nn.Conv2d(16, 8, 1, stride=2))
    small = nhwc(2, 8, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(conv2d_add(strided, x, small.clone()), small + strided(x))
    with pytest.raises(RuntimeError):
        with torch.no_grad():
            conv2d_add(strided, x, residual)  # shapes that cannot add: PyTorch's own error


def test_a_changed_weight_is_packed_again():
    conv = biased(nn.Conv2d(8, 8, 1))
    x = nhwc(1, 8, 4, 4)
    with torch.no_grad():
        first = conv2d_act(conv, x)
        conv.load_state_dict({'weight': conv.weight * 2, 'bias': conv.bias})
        second = conv2d_act(conv, x)
    torch.testing.assert_close(second - conv.bias.view(1, -1, 1, 1),
                               2 * (first - conv.bias.view(1, -1, 1, 1)), rtol=1e-5, atol=1e-5)
    assert fused.packed_weight_count() == 1  # one entry per weight, replaced
    del conv
    assert fused.packed_weight_count() == 0  # dropped with the weight


def test_the_environment_variable_turns_fusion_off(monkeypatch, caplog):
    conv, x = biased(nn.Conv2d(8, 8, 1)), nhwc(1, 8, 4, 4)
    monkeypatch.setenv(fused.ENV_CPU_FUSION, '0')
    with torch.no_grad():
        conv2d_act(conv, x, nn.ReLU())
    assert fused.packed_weight_count() == 0
    monkeypatch.setenv(fused.ENV_CPU_FUSION, 'sometimes')
    forget_logged()
    with caplog.at_level(logging.WARNING, logger='replk_mm.ops'), torch.no_grad():
        conv2d_act(conv, x, nn.ReLU())
    assert fused.packed_weight_count() == 1
    assert "REPLK_CPU_FUSION='sometimes' is not 0 or 1" in caplog.text


def test_deploy_trunk_fused_equals_unfused_and_leaves_the_input_alone(monkeypatch):
    from replk_mm.models.backbones import RepLKNet
    torch.manual_seed(0)
    arch = dict(large_kernel_sizes=[31, 29, 27, 13], layers=[1, 1, 2, 1],
                channels=[16, 32, 64, 128], small_kernel=5)
    model = RepLKNet(arch=arch, small_kernel_merged=True).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    x = torch.randn(2, 3, 64, 64)
    before = x.clone()
    with torch.no_grad():
        monkeypatch.setenv(fused.ENV_CPU_FUSION, '0')
        expected = model(x)
        assert fused.packed_weight_count() == 0
        monkeypatch.setenv(fused.ENV_CPU_FUSION, '1')
        out = model(x)
    # every conv of the trunk but the 13x13 one on the 2x2 map (cropped) was fused
    assert fused.packed_weight_count() > 10
    assert torch.equal(x, before)
    for a, b in zip(out, expected):
        assert a.is_contiguous()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_a_conv_with_hooks_runs_its_own_forward():
    conv, x = biased(nn.Conv2d(8, 8, 1)), nhwc(1, 8, 4, 4)
    seen = []
    handle = conv.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    with torch.no_grad():
        out = conv2d_act(conv, x, nn.ReLU())
    handle.remove()
    assert seen == [out.shape] and fused.packed_weight_count() == 0
    torch.testing.assert_close(out, F.relu(conv(x)))


class CountOps(TorchDispatchMode):
    """Counts the operators a forward runs (by their overload packet)."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('act_name', ['none', 'relu', 'gelu', 'gelu tanh'])
def test_linear_act_is_one_onednn_call_and_equals_the_unfused_ops(act_name):
    linear, activation = nn.Linear(12, 20), ACTIVATIONS[act_name]()
    x = torch.randn(2, 5, 6, 12)  # channels-last features, any leading dimensions
    expected = linear(x).detach()
    expected = expected if activation is None else activation(expected)
    with torch.no_grad(), CountOps() as count:
        out = linear_act(linear, x, activation)
    assert count.ops['_linear_pointwise'] == 1 and count.ops['addmm'] == 0
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # with gradients: the module and the activation, and gradients flow
    x.requires_grad_()
    with CountOps() as count:
        out = linear_act(linear, x, activation)
    assert count.ops['_linear_pointwise'] == 0
    out.sum().backward()
    assert x.grad is not None and linear.weight.grad is not None


@pytest.mark.parametrize('which', ['UniRepLKNet', 'LKConvNeXt'])
def test_convnext_style_backbones_run_their_linears_fused_and_unchanged(which, monkeypatch):
    from replk_mm.layers import switch_to_deploy
    from replk_mm.models.backbones import LKConvNeXt, UniRepLKNet
    torch.manual_seed(0)
    if which == 'UniRepLKNet':
        model = UniRepLKNet(arch=dict(depths=[1, 1, 2, 1], channels=[16, 32, 64, 128],
                                      kernel_sizes=[[13], [13], [13, 3], [3]]))
    else:
        model = LKConvNeXt(arch=dict(depths=[1, 1, 2, 1], channels=[16, 32, 64, 128]),
                           kernel_sizes=[13, 13, 13, 7])
    model.eval()
    switch_to_deploy(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        monkeypatch.setenv(fused.ENV_CPU_FUSION, '0')
        expected = model(x)
        monkeypatch.setenv(fused.ENV_CPU_FUSION, '1')
        with CountOps() as count:
            out = model(x)
    assert count.ops['_linear_pointwise'] == 2 * 5  # two Linears in each of the 5 blocks
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_cpu_autocast_keeps_the_plain_ops_and_their_dtype():
    conv, linear = biased(nn.Conv2d(8, 8, 1)), nn.Linear(8, 8)
    x = nhwc(1, 8, 4, 4)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = conv2d_act(conv, x, nn.ReLU())
        lin = linear_act(linear, x.permute(0, 2, 3, 1), nn.GELU())
    assert fused.packed_weight_count() == 0
    assert out.dtype == torch.bfloat16 and lin.dtype == torch.bfloat16
