"""Effective receptive field by the official RepLKNet method (replk_mm.analysis.erf and
tools/analysis/visualize_erf.py), checked against hand-computed cases."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from replk_mm.analysis import compute_erf, high_contribution_area_ratio, normalize_erf
from replk_mm.analysis.erf import area_ratios, default_erf_layer, list_images, load_erf_images


class LinearConvNet(nn.Module):
    """One 3x3 conv (3 -> 2 channels, no bias): the centre's gradient is the kernel."""

    def __init__(self, weight):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1, bias=False)
        self.conv.weight.data.copy_(weight)

    def forward(self, x):
        return (self.conv(x), )


def test_official_erf_of_a_linear_conv_by_hand():
    # channel 0: all +1, channel 1: all -0.5
    weight = torch.cat([torch.ones(1, 3, 3, 3), -0.5 * torch.ones(1, 3, 3, 3)])
    net = LinearConvNet(weight)
    bright, dark = torch.ones(3, 9, 9), -torch.ones(3, 9, 9)
    window = (slice(3, 6), slice(3, 6))  # the 3x3 around the centre (4, 4)
    # official: image +1 -> responses (27, -13.5): only channel 0 passes the ReLU, its kernel
    # is positive, sum over 3 colours = 3; image -1 -> (-27, 13.5): channel 1's kernel is
    # negative and the ReLU of the gradient removes it -> 0. Averaged over the 2 images: 1.5.
    expected = np.zeros((9, 9))
    expected[window] = 1.5
    np.testing.assert_allclose(compute_erf(net, [bright, dark]), expected)


def test_official_erf_of_random_conv_matches_formula():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 3, 3, 3, generator=g)
    net = LinearConvNet(weight)
    images = [torch.randn(3, 8, 10, generator=g) for _ in range(3)]
    expected = np.zeros((8, 10))
    for image in images:
        patch = image[:, 3:6, 4:7].numpy()  # the centre (4, 5) and its neighbours
        response = (weight.numpy() * patch).sum(axis=(1, 2, 3))
        grad = (weight.numpy() * (response > 0)[:, None, None, None]).sum(axis=0)
        expected[3:6, 4:7] += np.maximum(grad, 0).sum(axis=0)
    expected /= len(images)
    np.testing.assert_allclose(compute_erf(net, images), expected, rtol=1e-5, atol=1e-6)
    # same result in batches, and the model's state is left as it was
    net.train()
    np.testing.assert_allclose(compute_erf(net, images, batch_size=2), expected, rtol=1e-5,
                               atol=1e-6)
    assert net.training and net.conv.weight.requires_grad


def test_area_ratio_follows_official_get_rectangle():
    delta = np.zeros((11, 11))
    delta[5, 5] = 7.0
    # the smallest square the official code tries is 3x3
    assert high_contribution_area_ratio(delta, 0.5) == pytest.approx(9 / 121)
    uniform = np.full((10, 10), 3.0)
    # shares of a uniform 10x10: 3x3 9%, 5x5 25%, 7x7 49%, 9x9 81%; strictly above t
    assert area_ratios(uniform) == pytest.approx({0.2: 0.25, 0.3: 0.49, 0.5: 0.81, 0.99: 1.0})
    assert high_contribution_area_ratio(uniform, 0.49) == pytest.approx(0.81)
    with pytest.raises(ValueError, match='threshold'):
        high_contribution_area_ratio(uniform, 0)
    with pytest.raises(ValueError, match='zero everywhere'):
        high_contribution_area_ratio(np.zeros((5, 5)), 0.5)


def test_normalize_erf_is_log_scaled_to_one():
    erf = np.array([[0.0, 9.0], [99.0, 999.0]])
    np.testing.assert_allclose(normalize_erf(erf), [[0, 1 / 3], [2 / 3, 1]])


def test_probed_layer_is_the_last_stage_before_the_final_norm():
    from mmpretrain.models import ResNet

    from replk_mm import RepLKNet
    from replk_mm.analysis.erf import probe_features
    arch = dict(large_kernel_sizes=[7, 5], layers=[1, 1], channels=[8, 16], small_kernel=3)
    backbone = RepLKNet(arch, out_indices=(1, ), norm_intermediate_features=True).eval()
    assert default_erf_layer(backbone) == 'stages.1'
    bn = backbone.stages[1].norm
    bn.running_mean.fill_(5.0)  # make the final BN visible
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before_norm = probe_features(backbone, x, layer='stages.1')
        after_norm = backbone(x)[-1]
    torch.testing.assert_close(bn(before_norm), after_norm)
    assert default_erf_layer(ResNet(depth=18)) == 'layer4'
    assert default_erf_layer(nn.Conv2d(3, 3, 1)) is None
    with pytest.raises(ValueError, match='no sub-module'):
        probe_features(backbone, x, layer='stages.7')


def write_image(path, colour, size=(40, 30)):
    Image.new('RGB', size, colour).save(path)


def test_images_load_like_the_official_transform(tmp_path):
    for cls, names in (('b_class', ['2.png', '1.jpg']), ('a_class', ['9.png'])):
        (tmp_path / cls).mkdir()
        for name in names:
            write_image(tmp_path / cls / name, (255, 0, 128))
    (tmp_path / 'a_class' / 'notes.txt').write_text('not an image')
    files = [osp.relpath(p, tmp_path) for p in list_images(str(tmp_path))]
    assert files == ['a_class/9.png', 'b_class/1.jpg', 'b_class/2.png']  # ImageFolder order
    images = load_erf_images(str(tmp_path), num_images=2, size=48)
    assert len(images) == 2 and images[0].shape == (3, 48, 48)
    # a flat colour stays flat under the bicubic resize; ImageNet normalization of [0, 1] RGB
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    torch.testing.assert_close(images[1][:, 20, 20], torch.tensor(expected))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no images'):
        load_erf_images(str(tmp_path / 'empty'), 1, 48)


SEG_TINY = """
_base_ = {base!r}
model = dict(backbone=dict(out_indices=(0, 1), arch=dict(
    _delete_=True, large_kernel_sizes=[13, 11], layers=[1, 1], channels=[8, 16],
    small_kernel=3)), decode_head=dict(in_channels=[8, 16], in_index=[0, 1], channels=8),
    auxiliary_head=dict(in_channels=16, in_index=1, channels=8))
"""


def test_tool_compares_models_in_one_figure(tmp_path, capsys):
    from conftest import REPO

    from tools.analysis.visualize_erf import main
    images = tmp_path / 'images'
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(
            images / f'{i}.png')
    config = tmp_path / 'seg_tiny.py'
    config.write_text(SEG_TINY.format(
        base=osp.join(REPO, 'configs/demo/upernet_replknet_tiny_demo_ade20k.py')))
    out = tmp_path / 'figs' / 'erf.png'
    results = main(['--model', str(config), '--model', 'mmpretrain::resnet/resnet18_8xb32_in1k.py',
                    '--label', 'tiny RepLKNet', '--label', 'ResNet-18', '--images', str(images),
                    '--num-images', '2', '--size', '64', '--out', str(out), '--paper-table'])
    printed = capsys.readouterr().out
    assert out.stat().st_size > 5000
    assert [r.layer for r in results] == ['stages.1', 'layer4']
    assert '2/2 images' in printed and '| 20% |' in printed
    # --paper-table: each measured model in %, then Table 10's four rows, same thresholds
    measured = ' | '.join(f'{100 * r:.1f}%' for r in results[1].area_ratio.values())
    assert f'| ResNet-18 | measured here | {measured} |' in printed
    assert '| t = 20% | t = 30% | t = 50% | t = 99% |' in printed
    assert '| ResNet-101 | RepLKNet arXiv 2203.06717v1, Table 10 | 1.0% | 1.7% | 3.5% | 23.4% |' \
        in printed
    assert '| RepLKNet-31 | RepLKNet arXiv 2203.06717v1, Table 10 | 15.0% | 23.4% | 41.4% | ' \
        '98.6% |' in printed
    saved = json.loads((tmp_path / 'figs' / 'erf.json').read_text())
    assert [s['label'] for s in saved] == ['tiny RepLKNet', 'ResNet-18']
    for result, entry in zip(results, saved):
        erf = np.load(entry['npy'])
        assert erf.shape == (64, 64) and (erf >= 0).all()  # ReLU'd gradients, averaged
        np.testing.assert_array_equal(erf, result.erf)
        assert entry['area_ratio'] == pytest.approx(
            {f'{t:g}': r for t, r in area_ratios(erf).items()})
        assert entry['method'] == 'official' and entry['num_images'] == 2


def test_tool_rejects_bad_input(tmp_path):
    from tools.analysis.visualize_erf import main
    with pytest.raises(ValueError, match='unknown ERF model'):
        main(['--model', 'ResNet-9000', '--size', '32', '--num-images', '1',
              '--out', str(tmp_path / 'e.png')])
    with pytest.raises(SystemExit, match='--label'):
        main(['--model', 'RepLKNet-13', '--label', 'a', '--label', 'b'])
    with pytest.raises(SystemExit, match='--compare-small-kernel needs --arch'):
        main(['--compare-small-kernel', '3'])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        main(['--images', str(tmp_path / 'nowhere'), '--size', '32'])
