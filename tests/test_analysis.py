import pytest
import torch
from conftest import TINY_ARCH

from replk_mm import RepLKNet
from replk_mm.analysis import (
    compute_erf,
    count_flops,
    count_params,
    high_contribution_area_ratio,
    model_complexity,
    paper_input_shape,
)


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


# --- FLOPs the paper's way (replk_mm/analysis/complexity.py, tools/analysis/get_flops.py) ---

@pytest.mark.parametrize('size', [40, 9])  # 9 < 31: the ops would crop the kernel
def test_large_kernel_flops_do_not_depend_on_the_backend(size):
    """A 31x31 DepthwiseConv2d counts C * H * W * 31 * 31 MACs with every backend forced
    (traced, the op runs as F.conv2d on the full kernel, as the paper's counter saw it)."""
    from replk_mm.ops import BACKEND_CHOICES, DepthwiseConv2d
    channels = 8
    expected = channels * size * size * 31 * 31
    native = count_flops(DepthwiseConv2d(channels, 31, backend='native'),
                         (channels, size, size))
    assert native == expected
    for backend in BACKEND_CHOICES:
        conv = DepthwiseConv2d(channels, 31, backend=backend)
        assert count_flops(conv, (channels, size, size)) == native, backend


def _demo_model(config, scope):
    import os.path as osp

    from mmengine.registry import init_default_scope

    from replk_mm.apis.builder import build_model
    from replk_mm.apis.runner import load_config
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg = load_config(osp.join(repo, 'configs', 'demo', config))
    init_default_scope(scope)
    return build_model(cfg).eval()


def _flops(module, *inputs):
    from mmengine.analysis import FlopAnalyzer
    with torch.no_grad():
        analyzer = FlopAnalyzer(module, inputs)
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analyzer.total()


def test_segmentor_counts_backbone_and_decode_head_only():
    """mmseg 0.x's forward_dummy: the backbone and the decode head, not the auxiliary head."""
    model = _demo_model('upernet_replknet_tiny_demo_ade20k.py', 'mmseg')
    result = model_complexity(model, (64, 128))
    x = torch.zeros(1, 3, 64, 128)
    with torch.no_grad():
        feats = model.backbone(x)
    assert result.flops == _flops(model.backbone, x) + _flops(model.decode_head, feats)
    assert result.params == count_params(model)  # params: everything, auxiliary head too
    assert result.input_shape == (64, 128) and 'no auxiliary head' in result.counted


def test_two_stage_detector_counts_roi_heads_like_mmdet2_forward_dummy():
    """Cascade Mask R-CNN: every added proposal costs one pass of each stage's box head, every
    added mask RoI one pass of each stage's mask head (on 7x7 / 14x14 RoI features)."""
    model = _demo_model('cascade_mask_rcnn_replknet_tiny_demo_coco.py', 'mmdet')
    roi = model.roi_head
    stages = range(roi.num_stages)
    box_per_roi = sum(_flops(roi.bbox_head[s], torch.zeros(1, 64, 7, 7)) for s in stages)
    mask_per_roi = sum(_flops(roi.mask_head[s], torch.zeros(1, 64, 14, 14)) for s in stages)
    assert box_per_roi > 0 and mask_per_roi > 0

    def count(proposals, masks):
        return model_complexity(model, (96, 128), num_proposals=proposals,
                                num_mask_rois=masks).flops

    base = count(20, 10)
    assert count(30, 10) - base == 10 * box_per_roi
    assert count(20, 15) - base == 5 * mask_per_roi


def test_paper_input_shapes():
    from mmengine.config import Config
    seg = Config(dict(default_scope='mmseg', crop_size=(640, 640), model=dict(),
                      test_dataloader=dict(dataset=dict(pipeline=[
                          dict(type='LoadImageFromFile'),
                          dict(type='Resize', scale=(2048, 512), keep_ratio=True)]))))
    assert paper_input_shape(seg) == (640, 2560)
    seg.crop_size = (512, 512)
    assert paper_input_shape(seg) == (512, 2048)
    assert paper_input_shape(Config(dict(default_scope='mmdet'))) == (800, 1280)
    cls = Config(dict(default_scope='mmpretrain', test_dataloader=dict(dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=256, edge='short'),
        dict(type='CenterCrop', crop_size=224)]))))
    assert paper_input_shape(cls) == (224, 224)
    with pytest.raises(ValueError, match='pass the shape'):
        paper_input_shape(Config(dict(default_scope='mmocr')))
    with pytest.raises(ValueError, match='positive'):
        model_complexity(RepLKNet(TINY_ARCH), (0, 64))


def test_get_flops_tool(capsys):
    from tools.analysis.get_flops import main
    results = main(['configs/demo/fcos_replknet_tiny_demo_coco.py', '--shape', '64', '96'])
    assert results[0]['input_shape'] == [64, 96] and results[0]['flops'] > 0
    assert 'multiply-accumulates' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(['configs/no_such_config.py'])
    assert 'not found: configs/no_such_config.py' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['--arch', '31B', '--shape', '0', '224'])
    assert 'positive' in capsys.readouterr().err


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
