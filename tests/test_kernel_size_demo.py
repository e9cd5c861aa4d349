"""tools/demo/kernel_size_demo.py: its data needs context (a property of the generator), its
ERF measure ranks a 3x3 network below a large-kernel one, its spread over seeds is the usual
mean / sample std / range, and a shortened run (2 iterations per model and seed, a handful of
images) goes through the whole flow."""
import json
import os.path as osp

import numpy as np
import pytest

from replk_mm.datasets.synthetic import ADE20K_LABELS, SHAPES, render_scene, textured_background
from replk_mm.datasets.synthetic.seg_layouts import seg_style
from tools.demo import kernel_size_demo


def far_from_outline(mask, reach):
    """Pixels of ``mask`` whose whole (2 reach + 1)^2 neighbourhood lies inside ``mask``."""
    padded = np.pad(mask.astype(np.int64), ((reach + 1, reach), (reach + 1, reach)))
    sums = padded.cumsum(0).cumsum(1)
    side = 2 * reach + 1
    window = (sums[side:, side:] - sums[:-side, side:] - sums[side:, :-side]
              + sums[:-side, :-side])
    return window == side * side


def object_pixels_far_from_outline(scene_kind, side, reach, scenes=8):
    """Share of object pixels at least ``reach`` px (in x and y) from the object's outline."""
    rng = np.random.default_rng(0)
    style = seg_style(4, scene_kind)
    far = total = 0
    classes_per_image = []
    for _ in range(scenes):
        scene = render_scene(rng, textured_background(rng, side, side, 40.0), style)
        classes_per_image.append([placed.shape for placed in scene.shapes])
        for placed in scene.shapes:
            total += placed.mask.sum()
            far += far_from_outline(placed.mask, reach).sum()
    return far / total, classes_per_image


def test_context_data_needs_context():
    # A 33x33 patch around a pixel this far inside an object shows only the object's interior
    # (a flat random colour with grain, drawn alike for every class): its class cannot be read
    # there. In the demo's data that holds for a fifth or more of the object pixels; in the
    # shapes data (at the size its config validates at) for almost none.
    share, classes = object_pixels_far_from_outline('context', kernel_size_demo.IMAGE_SIDE, 16,
                                                    scenes=16)
    assert share > 0.2
    # every image holds different classes, mostly all three (a class that did not fit is left
    # out): which class an image holds does not tell which object is which
    for shapes in classes:
        assert len(set(shapes)) == len(shapes) and set(shapes) <= set(SHAPES)
    assert np.mean([len(s) for s in classes]) > 2.1
    local_share, _ = object_pixels_far_from_outline('shapes', 128, 16)
    assert local_share < 0.05
    assert set(ADE20K_LABELS) == {'wall', 'box', 'tent', 'ball'}  # the configs' four classes


def test_erf_ranks_3x3_below_large_kernels():
    import torch

    from replk_mm.analysis import compute_erf, high_contribution_area_ratio
    from replk_mm.models import RepLKNet
    torch.manual_seed(0)
    images = [torch.randn(3, 96, 96) for _ in range(2)]
    ratios = {}
    for kernels, small in (((3, 3), None), ((31, 29), 5)):
        backbone = RepLKNet(arch=dict(large_kernel_sizes=list(kernels), layers=[1, 1],
                                      channels=[8, 16], small_kernel=small),
                            out_indices=(1, ))
        erf = compute_erf(backbone, images)
        ratios[kernels[0]] = [high_contribution_area_ratio(erf, t) for t in (0.5, 0.99)]
    # At initialization the identity shortcuts keep the centre strong in both (about 1-3% of
    # the image at t = 50%); the large kernels' tail reaches the whole 96x96 input (98% at
    # t = 99%), the 3x3 network's about a tenth of it.
    (small_50, small_99), (large_50, large_99) = ratios[3], ratios[31]
    assert large_50 > small_50 and large_99 > 5 * small_99 and large_99 > 0.9, ratios


def test_spread_over_seeds():
    spread = kernel_size_demo.Spread.of([70.0, 74.0, 72.0])
    assert (spread.mean, spread.std, spread.low, spread.high) == pytest.approx((72, 2, 70, 74))
    assert kernel_size_demo.Spread.of([5.0]).std == 0.0
    with pytest.raises(ValueError, match='no values'):
        kernel_size_demo.Spread.of([])


def test_kernel_size_demo_flow(tmp_path, capsys, monkeypatch):
    # The flow is under test, not conv speed: skip the depth-wise conv autotuner's timings.
    monkeypatch.setenv('REPLK_DW_CONV_BACKEND', 'native')
    work_dir = tmp_path / 'work'
    small, large = kernel_size_demo.main([
        '--work-dir', str(work_dir), '--data-root', str(tmp_path / 'data'), '--iters', '2',
        '--seeds', '0', '1', '--num-train', '4', '--num-val', '1', '--erf-images', '1',
        '--erf-size', '64', '--workers', '0'])
    out = capsys.readouterr().out
    summary = out[out.index('[kernel-size demo] 3x3 vs large kernels'):]
    assert [r.seed for r in small] == [r.seed for r in large] == [0, 1]
    lines = {ln[:26].strip(): ln[26:] for ln in summary.splitlines()[1:] if ln[:26].strip()}
    for results, column in ((small, 0), (large, 1)):
        spread = kernel_size_demo.Spread.of([r.mIoU for r in results])
        cell = lines['mean +- std'][30 * column:30 * (column + 1)].strip()
        assert cell == f'{spread.mean:.2f} +- {spread.std:.2f}'
    assert small[0].backbone_params < large[0].backbone_params  # 3x3 vs 31x31 kernels
    with open(work_dir / 'summary.json') as f:
        saved = json.load(f)
    assert saved['seeds'] == [0, 1] and set(saved['results']) == {'small_3x3', 'large'}
    assert saved['spread']['large']['mIoU']['values'] == pytest.approx([r.mIoU for r in large])
    for result in saved['results']['large']:
        assert osp.isfile(result['checkpoint'])
    assert osp.isfile(work_dir / 'erf.png')


def test_kernel_size_demo_rejects_bad_options():
    with pytest.raises(SystemExit):
        kernel_size_demo.parse_args(['--erf-images', '60', '--num-val', '50'])
    with pytest.raises(SystemExit):
        kernel_size_demo.parse_args(['--iters', '1'])  # the schedule needs warm-up + decay
    with pytest.raises(SystemExit):
        kernel_size_demo.parse_args(['--seeds', '1', '1'])
