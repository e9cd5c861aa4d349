"""Segmentation and detection inference (replk_mm.apis.inference) on tiny randomly initialised
models, CPU: training- and deploy-form checkpoints load strictly into the same config, class
names come from the checkpoint's meta or else the config (never mmseg's / mmdet's fallbacks),
mmseg's / mmdet's inferencers and visualizers do the work, and bad inputs are named. Also
tools/demo/image_demo.py and the names earlier releases had."""
import os.path as osp
import subprocess

import numpy as np
import pytest
import torch
from conftest import TINY_ARCH, randomize_bn
from mmengine.config import Config
from PIL import Image

import replk_mm
from replk_mm.apis import (
    draw_detection,
    draw_segmentation,
    inference_detector,
    inference_segmentor,
    init_detector,
    init_segmentor,
    read_image,
)
from replk_mm.datasets.synthetic import make_ade20k_demo, make_coco_demo
from replk_mm.models.checkpoint import CheckpointMismatchError

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEG_CONFIG = osp.join(REPO, 'configs', 'demo', 'upernet_replknet_tiny_demo_ade20k.py')
DET_CONFIG = osp.join(REPO, 'configs', 'demo', 'cascade_mask_rcnn_replknet_tiny_demo_coco.py')
CHANNELS = TINY_ARCH['channels']
TINY = {  # flat keys: --cfg-options cannot parse a dict value
    'seg': {'model.backbone.arch.channels': CHANNELS,
            'model.backbone.arch.layers': TINY_ARCH['layers'],
            'model.decode_head.in_channels': CHANNELS, 'model.decode_head.channels': 16,
            'model.auxiliary_head.in_channels': 32, 'model.auxiliary_head.channels': 8},
    'det': {'model.backbone.arch.channels': CHANNELS,
            'model.backbone.arch.layers': TINY_ARCH['layers'],
            'model.neck.in_channels': CHANNELS},
}
CONFIG = {'seg': SEG_CONFIG, 'det': DET_CONFIG}
CONFIG_CLASSES = {'seg': ('wall', 'box', 'tent', 'ball'), 'det': ('circle', 'square', 'triangle')}
META_CLASSES = {'seg': ('w', 'b', 't', 'o'), 'det': ('c', 's', 't')}
INIT = {'seg': init_segmentor, 'det': init_detector}


@pytest.fixture(scope='module', autouse=True)
def _modelled_conv_choice():
    # These tests check loading, names and drawing, not conv speed: let the depth-wise conv
    # autotuner choose by its cost model instead of timing every new image size.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('REPLK_DW_CONV_AUTOTUNE', 'model')
        yield


def _build(task, deploy=False):
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(CONFIG[task])
    cfg.merge_from_dict(TINY[task])
    cfg.model.backbone.small_kernel_merged = deploy
    scope = cfg.default_scope
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(cfg.model)


def _is_deploy(model):
    return any('lkb_reparam' in key for key in model.state_dict())


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Per task: a training-form checkpoint whose meta names the classes, the same weights
    re-parameterized without meta, and a validation image of the synthetic data."""
    base = tmp_path_factory.mktemp('inference')
    ade = make_ade20k_demo(str(base / 'ade'), num_train=1, num_val=1, min_side=64, max_side=96)
    coco = make_coco_demo(str(base / 'coco'), num_train=1, num_val=1)
    images = {'seg': osp.join(ade.root, 'images', 'validation', 'ADE_val_00000001.jpg'),
              'det': osp.join(coco.root, 'val2017', '000000000002.jpg')}
    out = {'base': base}
    for task in ('seg', 'det'):
        model = randomize_bn(_build(task)).eval()
        ckpt = str(base / f'{task}.pth')
        torch.save({'state_dict': model.state_dict(),
                    'meta': {'dataset_meta': {'classes': META_CLASSES[task]}}}, ckpt)
        replk_mm.switch_to_deploy(model)
        deploy = str(base / f'{task}_deploy.pth')
        torch.save({'state_dict': model.state_dict()}, deploy)
        out[task] = dict(ckpt=ckpt, deploy=deploy, image=images[task])
    return out


@pytest.fixture(scope='module')
def models(files):
    return {(task, form): INIT[task](CONFIG[task], files[task][form], device='cpu',
                                     cfg_options=TINY[task])
            for task in ('seg', 'det') for form in ('ckpt', 'deploy')}


@pytest.mark.parametrize('task', ['seg', 'det'])
def test_both_forms_load_with_class_names_from_meta_or_config(task, models):
    trained, deployed = models[task, 'ckpt'], models[task, 'deploy']
    assert not _is_deploy(trained) and _is_deploy(deployed)
    assert trained.dataset_meta['classes'] == META_CLASSES[task]  # the checkpoint's meta
    assert deployed.dataset_meta['classes'] == CONFIG_CLASSES[task]  # no meta: the config's
    assert len(deployed.dataset_meta['palette']) >= len(CONFIG_CLASSES[task])
    assert not trained.training and next(trained.parameters()).device.type == 'cpu'


def test_deploy_form_segments_like_the_training_form(files, models):
    image = files['seg']['image']
    a = inference_segmentor(models['seg', 'ckpt'], image)
    b = inference_segmentor(models['seg', 'deploy'], image)
    height, width = read_image(image).shape[:2]
    assert a.pred_sem_seg.data.shape == (1, height, width)
    assert (a.pred_sem_seg.data == b.pred_sem_seg.data).float().mean() > 0.999
    batch = inference_segmentor(models['seg', 'ckpt'], [image, read_image(image)])
    assert len(batch) == 2 and torch.equal(batch[1].pred_sem_seg.data, a.pred_sem_seg.data)


def test_deploy_form_detects_like_the_training_form(files, models):
    image = files['det']['image']
    a, b = models['det', 'ckpt'], models['det', 'deploy']
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for fa, fb in zip(a.extract_feat(x), b.extract_feat(x)):
            torch.testing.assert_close(fb, fa, rtol=1e-4, atol=1e-4)
    result = inference_detector(a, image)
    pred = result.pred_instances
    assert len(pred) > 0 and pred.masks.shape[1:] == read_image(image).shape[:2]
    assert set(pred.labels.tolist()) <= {0, 1, 2}


def test_drawings_are_the_visualizers_enlarged(files, models, tmp_path):
    image = files['seg']['image']
    height, width = read_image(image).shape[:2]
    model = models['seg', 'ckpt']
    out = str(tmp_path / 'seg.png')
    drawn = draw_segmentation(model, image, inference_segmentor(model, image), out_file=out,
                              min_size=200)
    factor = -(-200 // min(height, width))
    assert drawn.shape == (height * factor, width * factor, 3)
    assert np.array_equal(np.array(Image.open(out)), drawn)
    plain = np.repeat(np.repeat(read_image(image)[..., ::-1], factor, 0), factor, 1)
    assert np.abs(drawn.astype(int) - plain).mean() > 5  # class colours were blended in

    model = models['det', 'ckpt']
    image = files['det']['image']
    out = str(tmp_path / 'det.png')
    drawn = draw_detection(model, image, inference_detector(model, image), out_file=out,
                           score_thr=0.0, scale=2)
    assert drawn.shape == (320, 320, 3) and Image.open(out).size == (320, 320)
    with pytest.raises(ValueError, match='opacity must be in'):
        draw_segmentation(models['seg', 'ckpt'], files['seg']['image'], None, opacity=0)


@pytest.mark.parametrize('task', ['seg', 'det'])
def test_inferencers_are_mmsegs_and_mmdets_with_our_loading(task, files, models, tmp_path):
    from replk_mm import apis
    cfg = Config.fromfile(CONFIG[task])
    cfg.merge_from_dict(TINY[task])
    if task == 'seg':
        from mmseg.apis import MMSegInferencer as base
        inferencer = apis.RepLKSegInferencer(cfg, files[task]['deploy'], device='cpu')
        out = inferencer(files[task]['image'], out_dir=str(tmp_path))
        direct = inference_segmentor(models[task, 'deploy'], files[task]['image'])
        assert np.array_equal(out['predictions'], direct.pred_sem_seg.data[0].numpy())
    else:
        from mmdet.apis import DetInferencer as base
        inferencer = apis.RepLKDetInferencer(cfg, files[task]['deploy'], device='cpu')
        out = inferencer(files[task]['image'], out_dir=str(tmp_path), pred_score_thr=0.0)
        assert len(out['predictions'][0]['labels']) > 0
    assert isinstance(inferencer, base)
    assert _is_deploy(inferencer.model)
    assert inferencer.model.dataset_meta['classes'] == CONFIG_CLASSES[task]  # not COCO's 80
    assert [p.name for p in tmp_path.rglob('*') if p.suffix in ('.jpg', '.png')]
    _check_refuses_bad_images(inferencer, task, tmp_path / 'bad')


def test_gpu_config_runs_on_the_cpu(files):
    options = dict(TINY['seg'], **{'model.backbone.norm_cfg.type': 'SyncBN',
                                   'model.decode_head.norm_cfg.type': 'SyncBN'})
    model = init_segmentor(SEG_CONFIG, files['seg']['ckpt'], device='cpu', cfg_options=options)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    inference_segmentor(model, files['seg']['image'])


def test_without_a_checkpoint_the_config_names_the_classes(mmengine_log):
    model = init_detector(DET_CONFIG, device='cpu', cfg_options=TINY['det'])
    assert model.dataset_meta['classes'] == CONFIG_CLASSES['det']
    assert 'random weights' in mmengine_log()


def test_bad_inputs_are_named(files, tmp_path):
    with pytest.raises(FileNotFoundError, match='image .*nope.jpg does not exist'):
        inference_segmentor(object(), str(tmp_path / 'nope.jpg'))
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='could not decode image .*corrupt.jpg'):
        read_image(str(corrupt))
    with pytest.raises(FileNotFoundError, match='checkpoint .*missing.pth does not exist'):
        init_segmentor(SEG_CONFIG, str(tmp_path / 'missing.pth'), device='cpu')
    # the tiny checkpoint does not fit the demo config's wider model: the keys are named
    with pytest.raises(CheckpointMismatchError,
                       match=r'det.pth on .*cascade.*does not fit the model') as info:
        init_detector(DET_CONFIG, files['det']['ckpt'], device='cpu')
    assert 'backbone.stem.0.conv.weight: checkpoint (8, 3, 3, 3) vs model (32, 3, 3, 3)' in \
        str(info.value)
    assert len(str(info.value)) < 3000  # the first keys and a count, not hundreds of lines
    with pytest.raises(ValueError, match="needs an mmseg config"):
        init_segmentor(DET_CONFIG)
    with pytest.raises(ValueError, match="needs an mmdet config"):
        init_detector(SEG_CONFIG)


def test_a_checkpoint_that_runs_code_is_refused(tmp_path):
    from replk_mm.fileio import CheckpointError
    bad = str(tmp_path / 'bad.pth')
    torch.save({'state_dict': {}, 'meta': {'x': _Payload()}}, bad)
    with pytest.raises(CheckpointError, match='bad.pth'):
        init_segmentor(SEG_CONFIG, bad, device='cpu', cfg_options=TINY['seg'])


class _Payload:
    """Any class outside the weights-only allowlist stands for a code-running pickle."""


# --------------------------------------------------------------------------- the tools
@pytest.mark.parametrize('form', ['ckpt', 'deploy'])
def test_image_demo_writes_the_picture(files, form, capsys):
    from tools.demo.image_demo import main
    out = str(files['base'] / f'overlay_{form}.png')
    pred = main([files['seg']['image'], SEG_CONFIG, files['seg'][form], '--out', out,
                 '--device', 'cpu', '--min-size', '128', '--cfg-options']
                + [f'{k}={v}' for k, v in TINY['seg'].items()])
    height, width = read_image(files['seg']['image']).shape[:2]
    assert pred.shape == (height, width)
    factor = -(-128 // min(height, width))
    assert Image.open(out).size == (width * factor, height * factor)
    assert 'predicted classes' in capsys.readouterr().out


def test_image_demo_names_a_missing_image(tmp_path):
    from tools.demo.image_demo import main
    # SystemExit(message): python prints it to stderr and exits with status 1
    with pytest.raises(SystemExit, match='image_demo: image .*nope.png does not exist'):
        main([str(tmp_path / 'nope.png'), SEG_CONFIG, str(tmp_path / 'x.pth')])



def test_run_demo_rejects_unknown_job():
    result = subprocess.run(['bash', 'tools/run_demo.sh', 'classify'], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "unknown job 'classify'" in result.stderr


# ------------------------------------------------------- inputs the model cannot take
def test_min_image_size_is_the_backbones_total_stride(models):
    from replk_mm.apis.inference import min_image_size
    assert min_image_size(models['seg', 'ckpt']) == 32  # stem /4, three transitions /2
    assert min_image_size(models['det', 'deploy']) == 32
    assert min_image_size(object()) == 1  # no backbone: nothing to derive a minimum from


def _bad_arrays():
    nan = np.full((64, 64, 3), 100, np.float32)
    nan[:4, :, 0] = np.nan
    inf = np.full((64, 64, 3), 100, np.float32)
    inf[0, 0] = np.inf
    return [(nan, r'image array 0 holds 256 non-finite values of 12288 \(2\.08%; NaN: 256, '
                  r'Inf: 0\).*NaN logits.*np\.nan_to_num'),
            (inf, r'holds 3 non-finite values .*Inf: 3'),
            (np.zeros((0, 64, 3), np.uint8), r'shape \(0, 64, 3\): expected a non-empty'),
            (np.zeros((31, 64, 3), np.uint8), r'64x31 \(WxH\), smaller than the 32x32 pixels')]


def test_bad_image_arrays_are_refused_by_the_functions(models):
    from replk_mm.apis.inference import ImageInputError
    for image, message in _bad_arrays():
        with pytest.raises(ImageInputError, match=message):
            inference_segmentor(models['seg', 'ckpt'], image)
    with pytest.raises(ImageInputError, match='non-finite'):
        inference_detector(models['det', 'ckpt'], [np.zeros((64, 64, 3), np.uint8),
                                                   _bad_arrays()[0][0]])


def _check_refuses_bad_images(inferencer, task, tmp_path):
    """The inferencer (with out_dir) refuses NaN, Inf and images below the minimum."""
    from replk_mm.apis.inference import ImageInputError
    tmp_path.mkdir()
    for image, message in _bad_arrays()[:2]:
        with pytest.raises(ImageInputError, match=message.replace('image array 0', 'image array')):
            inferencer(image, out_dir=str(tmp_path))
    tiny = str(tmp_path / 'one_pixel.png')
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    with pytest.raises(ImageInputError, match=r'image .*one_pixel\.png is 1x1 \(WxH\), smaller '
                                              r'than the 32x32 pixels the model takes'):
        inferencer(tiny, out_dir=str(tmp_path))
    if task == 'seg':  # the minimum itself is drawn (with class names) without an error
        smallest = str(tmp_path / 'smallest.png')
        Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(smallest)
        out = inferencer(smallest, out_dir=str(tmp_path / 'vis'))
        assert out['predictions'].shape == (32, 32)


def test_image_demo_refuses_an_image_below_the_minimum(files, tmp_path):
    from replk_mm.apis.inference import ImageInputError
    from tools.demo.image_demo import main
    tiny = str(tmp_path / 'one_pixel.png')
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    with pytest.raises(ImageInputError, match='1x1 .WxH., smaller than the 32x32 pixels'):
        main([tiny, SEG_CONFIG, files['seg']['ckpt'], '--out', str(tmp_path / 'o.png'),
              '--device', 'cpu', '--cfg-options'] + [f'{k}={v}' for k, v in TINY['seg'].items()])
