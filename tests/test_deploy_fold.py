"""The fully folded deploy form: every BN folded, equal to the training form, and the official
deploy checkpoints (``lkb_reparam`` + unfolded BNs) still load into it."""
import pytest
import torch
from conftest import TINY_ARCH, randomize_bn
from official_layout import official_backbone_keys

from replk_mm import RepLKNet
from replk_mm.layers import (
                             ConvBN,
                             ReparamLargeKernelConv,
                             RepLKBlock,
                             fold_deploy_state_dict,
                             reparam_modules,
                             switch_to_deploy,
)
from replk_mm.models import load_backbone_checkpoint


def _relative_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def _official_deploy_state(trained):
    """What the official code's deploy conversion writes: large kernels merged, BNs kept."""
    for m in trained.modules():
        if isinstance(m, ReparamLargeKernelConv):
            m.switch_to_deploy()
    return trained.state_dict()


def test_fully_folded_deploy_form_equals_training_form():
    model = randomize_bn(RepLKNet(TINY_ARCH)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        assert switch_to_deploy(model) == len(reparam_modules(model))
        after = model(x)
    assert all(_relative_error(a, b) < 1e-5 for a, b in zip(after, before))
    # a block is conv1x1+ReLU, large DW conv, ReLU, conv1x1, add: no BN left in the trunk
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    block = model.stages[0].blocks[0]
    assert isinstance(block, RepLKBlock) and block.merged and block.pw1.conv.bias is not None
    built = RepLKNet(TINY_ARCH, small_kernel_merged=True)
    assert list(built.state_dict()) == list(model.state_dict()) and built.deployed


def test_official_deploy_layout_loads_then_folds(tmp_path):
    trained = randomize_bn(RepLKNet(TINY_ARCH), generator_seed=3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = trained(x)
    official = _official_deploy_state(trained)
    assert list(official) == official_backbone_keys(TINY_ARCH['layers'], deploy=True)
    torch.save(official, tmp_path / 'official_deploy.pth')
    deploy = RepLKNet(TINY_ARCH, small_kernel_merged=True).eval()
    load_backbone_checkpoint(deploy, str(tmp_path / 'official_deploy.pth'), strict=True)
    with torch.no_grad():
        assert all(_relative_error(a, b) < 1e-5 for a, b in zip(deploy(x), expected))
    # replk_mm's own deploy state dicts need no folding; training form is left alone
    assert fold_deploy_state_dict(deploy.state_dict()).keys() == deploy.state_dict().keys()
    training = RepLKNet(TINY_ARCH).state_dict()
    assert fold_deploy_state_dict(training).keys() == training.keys()


def test_conv_bn_folds_pre_norm_into_a_1x1_conv_only():
    conv = randomize_bn(ConvBN(4, 6, 1, relu=True)).eval()
    pre = randomize_bn(torch.nn.BatchNorm2d(4)).eval()
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        expected = conv(pre(x))
        conv.switch_to_deploy()
        conv.fold_bn_before(pre)
        assert _relative_error(conv(x), expected) < 1e-5
    wide = ConvBN(4, 4, 3, merged=True)
    try:
        wide.fold_bn_before(pre)
    except ValueError as err:
        assert 'only for a 1x1 conv' in str(err)
    else:
        raise AssertionError('a BN before a 3x3 conv was folded (zero padding makes it inexact)')


def test_deploy_form_runs_channels_last_on_cpu_with_the_same_outputs():
    trained = randomize_bn(RepLKNet(TINY_ARCH, out_indices=(2, 3)), generator_seed=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = trained(x)
        assert not expected[0].is_contiguous(memory_format=torch.channels_last)
        switch_to_deploy(trained)
        inside = []
        trained.stages[2].register_forward_hook(lambda m, args, out: inside.append(out))
        outs = trained(x)
    # the trunk runs channels_last; its outputs come back in the caller's layout (NCHW),
    # since kernels that read raw memory (mmcv's RoIAlign) would misread channels_last
    assert inside[0].is_contiguous(memory_format=torch.channels_last)
    for out, ref in zip(outs, expected):
        assert out.is_contiguous()
        assert _relative_error(out, ref) < 1e-5


def test_cropped_kernel_route_equals_torch_conv_for_kernels_larger_than_the_map():
    """A 27x27 kernel on a 5x6 map keeps only the 9x11 taps that touch it; the biased deploy
    conv under inference_mode runs a backend's forward directly, without autograd."""
    import torch.nn.functional as F

    from replk_mm.ops import depthwise_conv2d
    from replk_mm.ops.decision_cache import STATE
    from replk_mm.ops.routing import AUTOGRAD
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(6, 1, 27, 27))
    bias = torch.nn.Parameter(torch.randn(6))
    for x in (torch.randn(2, 6, 5, 6),
              torch.randn(2, 6, 5, 6).contiguous(memory_format=torch.channels_last)):
        expected = F.conv2d(x, weight, bias, 1, 13, 1, 6)
        for backend in ('native', 'padded', 'fft', 'auto'):
            with torch.inference_mode():
                out = depthwise_conv2d(x, weight, bias, 1, 13, backend=backend)
            torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    routes = [r for s, r in STATE.routes().items() if tuple(s[5]) == (6, 1, 27, 27)]
    assert routes and all(r.runner != AUTOGRAD for r in routes)
    assert any(r.window == (9, 18, 8, 19) for r in routes)  # rows 13-4..13+4, cols 13-5..13+5


def test_floor_of_the_training_step_makes_large_dw_convs_free_then_restores_them():
    from tools.analysis.benchmark_lk_conv import large_dw_convs_free
    model = RepLKNet(TINY_ARCH).eval()
    conv = model.stages[0].blocks[0].large_kernel.lkb_origin.conv
    x = torch.randn(1, 8, 9, 9)
    with torch.no_grad():
        real = conv(x)
        with large_dw_convs_free(model) as free:
            assert len(free.convs) == sum(TINY_ARCH['layers'])  # the 5x5 convs keep running
            assert torch.equal(conv(x), x)
        torch.testing.assert_close(conv(x), real)


def test_stage_costs_time_every_phase_and_count_only_taps_that_touch_the_map():
    from tools.analysis.benchmark_lk_conv import format_stage_costs, stage_costs, useful_taps
    assert useful_taps(14, 27) == 14 * 14  # a 27x27 kernel on 14x14: every pixel, once
    assert useful_taps(7, 13) == 49
    assert useful_taps(5, 3) == 5 * 3 - 2  # the two border outputs lose one tap each
    costs = stage_costs(1, 1, batch=1, size=32)  # maps 8, 4, 2, 1
    assert [r['kept'] for r in costs['stages']] == [15, 7, 3, 1]  # cropped to 2H-1
    for row in costs['stages']:
        for phase in row['phases'].values():
            assert phase['best'] in phase['times'] and phase['best_s'] == min(
                phase['times'].values())
    text = format_stage_costs(costs, dict(floor_s=2.0, auto_s=2.5))
    assert 'auto - floor = 0.500 s' in text and 'allows 0.100 s' in text
    assert costs['total_s'] == pytest.approx(sum(
        r['blocks'] * sum(p['best_s'] for p in r['phases'].values()) for r in costs['stages']))
