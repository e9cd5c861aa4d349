import numpy as np
import pytest
import torch
from conftest import TINY_ARCH

from replk_mm import RepLKNet
from replk_mm.analysis import compute_erf, count_flops, count_params, high_contribution_area_ratio


def test_31b_flops_match_paper():
    # Paper / official README: RepLKNet-31B at 224x224 has 15.3G FLOPs (multiply-accumulates).
    model = RepLKNet('31B')
    flops = count_flops(model, (3, 224, 224))
    assert flops == pytest.approx(15.3e9, rel=0.03)
    assert count_params(model) == 78_837_120


def test_reparameterization_does_not_change_flops_much():
    model = RepLKNet(TINY_ARCH).eval()
    before = count_flops(model, (3, 64, 64))
    model.switch_to_deploy()
    after = count_flops(model, (3, 64, 64))
    assert after < before  # the parallel 5x5 branch and the BNs are gone


def test_area_ratio_of_known_maps():
    delta = np.zeros((33, 33))
    delta[16, 16] = 100.0
    assert high_contribution_area_ratio(delta, 0.5) == pytest.approx(1 / 33 ** 2)
    uniform = np.ones((20, 20))
    assert high_contribution_area_ratio(uniform, 1.0) == 1.0
    assert 0.4 <= high_contribution_area_ratio(uniform, 0.5) <= 0.7
    with pytest.raises(ValueError, match='threshold'):
        high_contribution_area_ratio(uniform, 0)


def test_large_kernels_have_larger_erf():
    g = torch.Generator().manual_seed(0)
    images = [torch.randn(3, 128, 128, generator=g) for _ in range(2)]
    small = dict(TINY_ARCH, large_kernel_sizes=[3, 3, 3, 3], small_kernel=None)
    erf_large = compute_erf(RepLKNet(TINY_ARCH), images)
    erf_small = compute_erf(RepLKNet(small), images)
    assert erf_large.shape == (128, 128)
    for t in (0.3, 0.5, 0.99):
        assert high_contribution_area_ratio(erf_large, t) > \
            high_contribution_area_ratio(erf_small, t)


def test_erf_tool_writes_heatmap(tmp_path):
    from tools.analysis.visualize_erf import main
    out = tmp_path / 'erf.png'
    erfs = main(['--arch', '31B', '--size', '64', '--num-images', '1',
                 '--compare-small-kernel', '3', '--out', str(out)])
    assert out.stat().st_size > 1000 and len(erfs) == 2
