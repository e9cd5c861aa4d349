"""ONNX export (tools/deploy/export_onnx.py, replk_mm.deploy): plain Conv graphs that
onnxruntime runs like PyTorch, dynamic shapes, and clear errors on wrong input."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import REPO, randomize_bn, tiny_classifier_config

pytest.importorskip('onnxruntime')

SEG_CONFIG = f"""
_base_ = {osp.join(REPO, 'configs/demo/upernet_replknet_tiny_demo_ade20k.py')!r}
model = dict(
    data_preprocessor=dict(size=(64, 96)),
    backbone=dict(out_indices=(0, 1), arch=dict(_delete_=True, large_kernel_sizes=[13, 11],
                                                layers=[1, 1], channels=[8, 16],
                                                small_kernel=3)),
    decode_head=dict(in_channels=[8, 16], in_index=[0, 1], channels=16),
    auxiliary_head=dict(in_channels=16, in_index=1, channels=8))
"""

CLS_CONFIG = tiny_classifier_config(large_kernel_sizes=(13, 11)) + """
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=73),
                 dict(type='CenterCrop', crop_size=64), dict(type='PackInputs')]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
"""

DET_CONFIG = f"""
_base_ = {osp.join(REPO, 'configs/demo/fcos_replknet_tiny_demo_coco.py')!r}
model = dict(
    backbone=dict(out_indices=(0, 1), arch=dict(_delete_=True, large_kernel_sizes=[13, 11],
                                                layers=[1, 1], channels=[8, 16],
                                                small_kernel=3)),
    neck=dict(in_channels=[8, 16], out_channels=16, start_level=0, num_outs=3),
    bbox_head=dict(in_channels=16, feat_channels=16, stacked_convs=1, strides=[4, 8, 16],
                   regress_ranges=((-1, 32), (32, 64), (64, 1e8)),
                   norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)))
"""


def write_model(tmp_path, name, text):
    """A config file and a training-form checkpoint of its model (non-trivial BNs)."""
    from replk_mm.apis.builder import build_model
    from replk_mm.deploy.models import load_deploy_config
    config = tmp_path / f'{name}.py'
    config.write_text(text)
    model = randomize_bn(build_model(load_deploy_config(str(config))))
    checkpoint = tmp_path / f'{name}.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    return str(config), str(checkpoint)


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('export')
    return dict(seg=write_model(tmp, 'seg_tiny', SEG_CONFIG),
                cls=write_model(tmp, 'cls_tiny', CLS_CONFIG),
                det=write_model(tmp, 'det_tiny', DET_CONFIG), dir=tmp)


@pytest.fixture
def image(tmp_path):
    import mmcv
    rng = np.random.default_rng(0)
    path = str(tmp_path / 'photo.png')
    # smooth colour gradients + noise: a real file in another size than the export's
    y, x = np.mgrid[0:90, 0:130]
    array = np.stack([x * 1.9, y * 2.8, (x + y) * 1.1], -1) + rng.normal(0, 20, (90, 130, 3))
    mmcv.imwrite(np.clip(array, 0, 255).astype(np.uint8), path)
    return path


def onnx_metadata(path):
    import onnx
    return {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}


def test_seg_dynamic_export_runs_at_other_sizes(models, image, capsys):
    from replk_mm.deploy import OnnxRunner, difference, load_deploy_model
    from tools.deploy.export_onnx import main
    config, checkpoint = models['seg']
    out = str(models['dir'] / 'seg.onnx')
    report = main([config, checkpoint, out, '--dynamic', '--image', image])
    printed = capsys.readouterr().out
    assert report.passed and 'PASSED' in printed and '[export]' in printed
    assert report.graph.input_dims == ['batch', 3, 'height', 'width']
    # one plain Conv per RepLK block: the 13x13 / 11x11 kernels with their 3x3 branches merged;
    # merged modules: per stage 1 large kernel + 1 RepLK block + 1 ConvFFN (their pre-norm BNs)
    # + 4 1x1 conv-BNs, then the 4 stem and 2 transition conv-BNs
    assert report.merged == 2 * 7 + 4 + 2
    assert report.graph.large_depthwise(min_kernel=5) == {(11, 11): 1, (13, 13): 1}
    assert report.graph.plain and report.convs_match
    assert [c.shape for c in report.checks] == [(1, 3, 64, 96), (2, 3, 96, 160),
                                                (1, 3, 64, 96)]
    assert 'image photo.png' in printed
    assert onnx_metadata(out)['input_channel_order'] == 'RGB'

    # independently of the tool: a third size and batch, against the training form
    reference = load_deploy_model(config, checkpoint, reparam=False)
    x = torch.randn(3, 3, 128, 64)
    with torch.no_grad():
        expected = reference.graph(x)
    got = OnnxRunner(out)(x)
    assert got[0].shape == (3, 4, 128, 64)
    assert difference(got, expected).max_rel < 1e-4


def test_cls_export_is_static_and_plain(models):
    from tools.deploy.export_onnx import main
    config, checkpoint = models['cls']
    out = str(models['dir'] / 'cls.onnx')
    report = main([config, checkpoint, out])
    assert report.passed and report.task == 'classification'
    assert report.input_shape == (64, 64)  # the config's CenterCrop
    assert report.graph.input_dims == [1, 3, 64, 64]
    assert report.output_names == ['logits']
    assert report.graph.large_depthwise() == {(11, 11): 1, (13, 13): 1}
    assert report.worst < 1e-4
    # the pass / fail logic at another tolerance
    from dataclasses import replace
    strict = replace(report, rtol=report.worst / 2)
    assert not strict.passed
    assert any('above the tolerance' in p for p in strict.problems())


def test_det_head_export_without_autotuning(models, monkeypatch):
    import replk_mm.deploy.onnx as onnx_module
    import replk_mm.ops.dw_conv as dw_conv
    from replk_mm.deploy import export_and_check

    real_export = onnx_module.export_onnx

    def no_dispatch(*args, **kwargs):
        raise AssertionError('replk_mm.ops dispatched (autotuning) during export')

    def guarded_export(*args, **kwargs):
        # under export every depth-wise conv must be plain F.conv2d, never the dispatcher
        with monkeypatch.context() as patch:
            patch.setattr(dw_conv, 'get_default_backend', no_dispatch)
            return real_export(*args, **kwargs)

    monkeypatch.setattr(onnx_module, 'export_onnx', guarded_export)
    config, checkpoint = models['det']
    report = export_and_check(config, checkpoint, str(models['dir'] / 'det.onnx'),
                              shape=(96, 128), det_output='head', progress=lambda m: None)
    assert report.passed and report.task == 'detection'
    # FCOS: classification, regression and centerness maps at 3 FPN levels
    assert len(report.output_names) == 9 and report.output_names[-1] == 'head2_level2'
    assert report.graph.large_depthwise() == {(11, 11): 1, (13, 13): 1}

    # decoding + NMS stay in mmdet: onnxruntime's maps give PyTorch's detections
    from replk_mm.deploy import OnnxRunner, load_deploy_model
    deploy = load_deploy_model(config, checkpoint, shape=(96, 128))
    x = torch.randn(1, 3, 96, 128)
    maps = [torch.from_numpy(m) for m in OnnxRunner(str(models['dir'] / 'det.onnx'))(x)]
    head = deploy.model.bbox_head
    metas = [dict(img_shape=(96, 128), ori_shape=(96, 128), scale_factor=(1.0, 1.0))]
    cfg = copy.deepcopy(deploy.model.test_cfg)
    cfg.score_thr = 0.0  # random weights: keep every box
    with torch.no_grad():
        expected = head.predict_by_feat(*head(deploy.model.extract_feat(x)),
                                        batch_img_metas=metas, cfg=cfg)[0]
    got = head.predict_by_feat(maps[0:3], maps[3:6], maps[6:9], batch_img_metas=metas,
                               cfg=cfg)[0]
    assert len(got.bboxes) == len(expected.bboxes) > 0
    torch.testing.assert_close(got.bboxes, expected.bboxes, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(got.scores, expected.scores, rtol=1e-4, atol=1e-5)


def test_two_stage_head_export_is_refused():
    from replk_mm.deploy.models import graph_module
    with pytest.raises(ValueError, match='not a single-stage detector'):
        graph_module(nn.Conv2d(3, 3, 1), 'detection', det_output='head')
    with pytest.raises(ValueError, match='det_output'):
        graph_module(nn.Conv2d(3, 3, 1), 'detection', det_output='rpn')


def test_wrong_inputs_fail_with_a_message(models, tmp_path, monkeypatch):
    from tools.deploy.export_onnx import main
    out = str(tmp_path / 'x.onnx')
    seg_config, _ = models['seg']
    cls_config, cls_checkpoint = models['cls']
    with pytest.raises(SystemExit, match='does not fit the model'):
        main([seg_config, cls_checkpoint, out])  # another model's checkpoint
    with pytest.raises(SystemExit, match='at least 32'):
        main([cls_config, cls_checkpoint, out, '--shape', '16', '64'])
    with pytest.raises(SystemExit, match='two ints'):
        main([cls_config, cls_checkpoint, out, '--shape', '64'])
    with pytest.raises(SystemExit, match='does not exist'):
        main([cls_config, str(tmp_path / 'missing.pth'), out])
    unknown = tmp_path / 'no_size.py'
    unknown.write_text(CLS_CONFIG + "test_dataloader = dict(dataset=dict(pipeline=["
                       "dict(type='LoadImageFromFile'), dict(type='PackInputs')]))\n")
    with pytest.raises(SystemExit, match='--shape H W'):
        main([str(unknown), cls_checkpoint, out])
    assert not osp.exists(out)
    # onnxruntime missing: the install hint
    monkeypatch.setitem(__import__('sys').modules, 'onnxruntime', None)
    with pytest.raises(SystemExit, match=r"pip install 'replk_mm\[onnx\]'"):
        main([cls_config, cls_checkpoint, out])


def test_check_failure_exits_nonzero(models, monkeypatch):
    import replk_mm.deploy.onnx as onnx_module
    from tools.deploy.export_onnx import main

    def failing(*args, **kwargs):
        raise onnx_module.ExportCheckError('x.onnx: the export check failed: relative '
                                           'difference 0.1 above the tolerance 0.0001')

    monkeypatch.setattr(onnx_module, 'export_and_check', failing)
    with pytest.raises(SystemExit, match='above the tolerance'):
        main(list(models['cls']) + ['x.onnx'])


@pytest.mark.parametrize('size,output', [((7, 9), 3), ((6, 6), 2), ((13, 5), (6, 2)),
                                         ((4, 10), (1, 1)), ((9, 11), (2, None)),
                                         ((3, 3), 6)])
def test_exportable_adaptive_pool_equals_torch(size, output):
    from replk_mm.deploy import ExportableAdaptiveAvgPool2d
    x = torch.randn(2, 3, *size)
    expected = F.adaptive_avg_pool2d(x, output)
    torch.testing.assert_close(ExportableAdaptiveAvgPool2d(output)(x), expected)


def test_adaptive_pools_are_replaced_in_place():
    from replk_mm.deploy import ExportableAdaptiveAvgPool2d, replace_adaptive_avg_pools
    model = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Sequential(nn.AdaptiveAvgPool2d((1, 3))))
    assert replace_adaptive_avg_pools(model) == 2
    assert isinstance(model[1][0], ExportableAdaptiveAvgPool2d)
    assert model[1][0].output_size == (1, 3)
    with pytest.raises(ValueError, match='output_size'):
        ExportableAdaptiveAvgPool2d(0)


def test_graph_report_flags_custom_ops_and_control_flow(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from replk_mm.deploy import inspect_onnx
    x = helper.make_tensor_value_info('input', TensorProto.FLOAT, ['n', 3, 8, 8])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, None)
    weight = helper.make_tensor('w', TensorProto.FLOAT, [3, 1, 7, 7], [0.0] * 147)
    nodes = [helper.make_node('Conv', ['input', 'w'], ['c'], group=3, pads=[3, 3, 3, 3]),
             helper.make_node('DepthwiseConv', ['c'], ['d'], domain='mmcv'),
             helper.make_node('Identity', ['d'], ['y'])]
    graph = helper.make_graph(nodes, 'g', [x], [y], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17),
                                                    helper.make_opsetid('mmcv', 1)])
    path = str(tmp_path / 'custom.onnx')
    onnx.save(model, path)
    report = inspect_onnx(path)
    assert report.custom_ops == ['mmcv::DepthwiseConv'] and not report.plain
    assert report.convs == {(7, 7, True): 1} and report.input_dims == ['n', 3, 8, 8]
