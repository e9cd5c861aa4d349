"""Segmentation inference: tools/demo/image_demo.py overlays, deploy-form checkpoints, the
re-parameterized segmentor's equivalence, and clear errors for bad inputs."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_ARCH, randomize_bn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

import replk_mm
from replk_mm.apis.seg_inference import init_segmentor, overlay, read_image
from replk_mm.demo.synthetic_seg import make_ade20k_demo

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo', 'upernet_replknet_tiny_demo_ade20k.py')
TINY_OPTIONS = {  # flat keys: --cfg-options cannot parse a dict value
    'model.backbone.arch.channels': TINY_ARCH['channels'],
    'model.backbone.arch.layers': TINY_ARCH['layers'],
    'model.decode_head.in_channels': [8, 16, 32, 64],
    'model.decode_head.channels': 16,
    'model.auxiliary_head.in_channels': 32,
    'model.auxiliary_head.channels': 8,
}


def _build(small_kernel_merged=False):
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.merge_from_dict(TINY_OPTIONS)
    cfg.model.backbone.small_kernel_merged = small_kernel_merged
    assert cfg.model.backbone.arch == TINY_ARCH
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp('seg_infer')
    make_ade20k_demo(str(base / 'data'), num_train=1, num_val=2, min_size=64, max_size=96)
    model = randomize_bn(_build()).eval()
    ckpt = str(base / 'tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    replk_mm.switch_to_deploy(model)
    deploy = str(base / 'tiny_deploy.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, deploy)
    image = str(base / 'data' / 'images' / 'validation' / 'ADE_val_00000001.jpg')
    return dict(base=base, ckpt=ckpt, deploy=deploy, image=image)


def test_reparameterized_segmentor_predicts_the_same():
    model = randomize_bn(_build()).eval()
    x = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        before = model(x, mode='tensor')
        assert replk_mm.switch_to_deploy(model) == 5  # one branch per RepLK block
        after = model(x, mode='tensor')
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('which', ['ckpt', 'deploy'])
def test_image_demo_writes_overlay(files, which, capsys):
    from tools.demo.image_demo import main
    out = str(files['base'] / f'overlay_{which}.png')
    pred = main([files['image'], DEMO_CONFIG, files[which], '--out', out, '--device', 'cpu',
                 '--cfg-options'] + [f'{k}={v}' for k, v in TINY_OPTIONS.items()])
    height, width = read_image(files['image']).shape[:2]
    assert pred.shape == (height, width)
    drawn = np.array(Image.open(out))
    assert drawn.shape[1] == width and drawn.shape[0] > height  # legend strip underneath
    assert 'predicted classes' in capsys.readouterr().out


def test_training_and_deploy_checkpoints_predict_alike(files):
    options = dict(TINY_OPTIONS)
    a = init_segmentor(DEMO_CONFIG, files['ckpt'], device='cpu', cfg_options=options)
    b = init_segmentor(DEMO_CONFIG, files['deploy'], device='cpu', cfg_options=options)
    assert b.backbone.deployed and not a.backbone.deployed
    assert a.dataset_meta['classes'] == ('wall', 'box', 'tent', 'ball')
    from replk_mm.apis.seg_inference import predict
    pa, pb = predict(a, files['image']), predict(b, files['image'])
    assert (pa == pb).mean() > 0.999


def test_overlay_blends_class_colours():
    image = np.zeros((4, 5, 3), np.uint8)
    pred = np.ones((4, 5), np.int64)
    out = overlay(image, pred, [[0, 0, 0], [200, 100, 0]], opacity=0.5)
    assert out[0, 0].tolist() == [0, 50, 100]  # RGB palette, BGR image
    with pytest.raises(ValueError, match='opacity'):
        overlay(image, pred, [[0, 0, 0]], opacity=0)
    with pytest.raises(ValueError, match='differ in size'):
        overlay(image, pred[:2], [[0, 0, 0]])


def test_bad_inputs_give_clear_errors(files, tmp_path):
    with pytest.raises(FileNotFoundError, match='image .*nope.jpg does not exist'):
        read_image(str(tmp_path / 'nope.jpg'))
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='could not decode image .*corrupt.jpg'):
        read_image(str(corrupt))
    with pytest.raises(FileNotFoundError, match='checkpoint .*missing.pth does not exist'):
        init_segmentor(DEMO_CONFIG, str(tmp_path / 'missing.pth'), device='cpu')
    # the tiny checkpoint does not fit the demo config's wider model
    with pytest.raises(RuntimeError, match='does not fit'):
        init_segmentor(DEMO_CONFIG, files['ckpt'], device='cpu')
    det_config = tmp_path / 'det.py'
    det_config.write_text("default_scope = 'mmdet'\nmodel = dict()\n")
    with pytest.raises(ValueError, match='needs an mmseg config'):
        init_segmentor(str(det_config))


def test_image_demo_cli_reports_missing_image(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/demo/image_demo.py',
         str(tmp_path / 'nope.png'), DEMO_CONFIG, str(tmp_path / 'x.pth')],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert 'nope.png does not exist' in result.stderr


def test_run_demo_rejects_unknown_job():
    result = subprocess.run(['bash', 'tools/run_demo.sh', 'classify'], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "unknown job 'classify'" in result.stderr
