"""End to end through the user-facing tools on generated COCO-layout data: a tiny RepLKNet +
Cascade Mask R-CNN and a tiny FCOS train with tools/train.py and are evaluated by mmdet's
CocoMetric (bbox + segm); tools/test.py reproduces the validation AP from the checkpoint;
tools/dist_test.sh with 2 gloo processes gives the same AP and predictions; the detector
re-parameterized by tools/deploy/reparameterize.py gives the same detections; bad
annotations fail early with a clear message (or are skipped on request); the demo tools run."""
import json
import os
import os.path as osp
import pickle
import re
import sys

import numpy as np
import pytest
import torch
from conftest import free_port, run_tool

pytest.importorskip('mmdet')

from replk_mm.datasets.synthetic import make_coco_demo  # noqa: E402
from replk_mm.fileio import read_checkpoint  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_DIR = osp.join(REPO, 'configs', 'demo')
CASCADE_DEMO = osp.join(DEMO_DIR, 'cascade_mask_rcnn_replknet_tiny_demo_coco.py')
FCOS_DEMO = osp.join(DEMO_DIR, 'fcos_replknet_tiny_demo_coco.py')
ITERS = 4

# The demo configs on the test data: 2 images per batch, no worker processes, a short run.
TINY_CONFIG = """
_base_ = {base!r}
data_root = {root!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters={iters}, val_interval={iters})
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={iters}))
log_processor = dict(window_size=1)
"""


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    # The 2-core CI machines run several jobs at once: one BLAS/OpenMP thread per process is
    # both faster and steadier there than oversubscribed thread pools.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _write_config(directory, base, root, name, iters=ITERS, extra=''):
    path = osp.join(directory, name)
    with open(path, 'w') as f:
        f.write(TINY_CONFIG.format(base=base, root=root.rstrip('/') + '/', iters=iters))
        f.write(extra)
    return path


def _val_metrics(runner):
    scalars = runner.message_hub.log_scalars
    return {k[len('val/'):]: v.current() for k, v in scalars.items()
            if k.startswith('val/coco/')}


def _load_predictions(path):
    with open(path, 'rb') as f:
        results = pickle.load(f)
    return {r['img_id']: r['pred_instances'] for r in results}


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('det')
    data = str(root / 'coco')
    make_coco_demo(data, num_train=6, num_val=5, seed=1)  # 5 val images: uneven over 2 ranks
    return dict(root=str(root), data=data,
                cascade=_write_config(str(root), CASCADE_DEMO, data, 'cascade_tiny.py'),
                # A 4-iteration FCOS scores nothing above 0.05: keep all its boxes for CocoMetric.
                fcos=_write_config(str(root), FCOS_DEMO, data, 'fcos_tiny.py',
                                   extra='model = dict(test_cfg=dict(score_thr=0.0))\n'))


@pytest.fixture(scope='module')
def trained_cascade(workspace):
    from tools.train import main as train
    work_dir = osp.join(workspace['root'], 'cascade_train')
    runner = train([workspace['cascade'], '--work-dir', work_dir])
    checkpoint = osp.join(work_dir, f'iter_{ITERS}.pth')
    assert osp.isfile(checkpoint)
    return dict(checkpoint=checkpoint, val=_val_metrics(runner),
                loss=runner.message_hub.get_scalar('train/loss').current())


@pytest.fixture(scope='module')
def tested_cascade(workspace, trained_cascade):
    """tools/test.py on the trained checkpoint, one process, with --out and --show-dir."""
    from tools.test import main as test
    work_dir = osp.join(workspace['root'], 'cascade_test')
    out = osp.join(work_dir, 'predictions.pkl')
    show_dir = osp.join(work_dir, 'shown')
    metrics = test([workspace['cascade'], trained_cascade['checkpoint'], '--work-dir', work_dir,
                    '--out', out, '--show-dir', show_dir])
    return dict(metrics=metrics, out=out, show_dir=show_dir, work_dir=work_dir)


def test_tiny_cascade_mask_rcnn_trains_and_is_evaluated_with_cocometric(trained_cascade):
    assert np.isfinite(trained_cascade['loss'])
    val = trained_cascade['val']
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert key in val and 0 <= val[key] <= 1


def test_test_tool_reproduces_the_validation_ap(trained_cascade, tested_cascade):
    metrics = tested_cascade['metrics']
    for key, value in trained_cascade['val'].items():
        assert metrics[key] == pytest.approx(value, abs=1e-6), key
    predictions = _load_predictions(tested_cascade['out'])
    assert len(predictions) == 5
    assert all('masks' in p and 'bboxes' in p for p in predictions.values())
    drawn = [f for _, _, files in os.walk(tested_cascade['show_dir']) for f in files]
    assert len(drawn) == 5


def test_dist_test_with_two_processes_gives_the_same_ap(workspace, trained_cascade,
                                                        tested_cascade):
    work_dir = osp.join(workspace['root'], 'cascade_dist_test')
    out = osp.join(work_dir, 'predictions.pkl')
    output = run_tool(['bash', 'tools/dist_test.sh', workspace['cascade'],
                       trained_cascade['checkpoint'], '2', '--work-dir', work_dir, '--out', out],
                      PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    assert re.search(r'world_size: 2|distributed: True', output) or \
        'Distributed launcher: pytorch' in output or 'launcher: pytorch' in output
    for key in ('coco/bbox_mAP', 'coco/segm_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP_50'):
        found = re.findall(re.escape(key) + r': (-?\d+\.\d+)', output)
        assert found, f'{key} not in the output of dist_test.sh'
        assert float(found[-1]) == pytest.approx(tested_cascade['metrics'][key], abs=1e-4)
    one, two = _load_predictions(tested_cascade['out']), _load_predictions(out)
    assert sorted(one) == sorted(two)  # every image once, none duplicated by the padding
    for img_id in one:
        for field in ('bboxes', 'scores', 'labels'):
            assert torch.allclose(one[img_id][field].float(), two[img_id][field].float(),
                                  atol=1e-4), (img_id, field)


def _match(reference, other, score_thr, atol=2e-3):
    """Every confident detection of `reference` has a twin in `other` (same label, box,
    score), ignoring detections too close to the score threshold to be stable."""
    matched = 0
    for box, score, label in zip(reference['bboxes'], reference['scores'],
                                 reference['labels']):
        if score < score_thr + 1e-3:
            continue
        same = (other['labels'] == label) & ((other['scores'] - score).abs() < atol) & \
            ((other['bboxes'] - box).abs().max(dim=1).values < 0.05)
        assert same.any(), f'no twin for {box.tolist()} (label {int(label)}, {float(score)})'
        matched += 1
    return matched


def test_reparameterized_detector_gives_the_same_detections(workspace, trained_cascade,
                                                            tested_cascade):
    from tools.deploy.reparameterize import main as reparameterize
    from tools.test import main as test
    work_dir = osp.join(workspace['root'], 'cascade_deploy')
    os.makedirs(work_dir, exist_ok=True)
    deploy_ckpt = osp.join(work_dir, 'deploy.pth')
    deploy_cfg = osp.join(work_dir, 'deploy_config.py')
    merged = reparameterize([workspace['cascade'], trained_cascade['checkpoint'], deploy_ckpt,
                             '--deploy-config', deploy_cfg])
    assert merged > 5  # the large kernels and every conv-BN pair / block around them
    state = read_checkpoint(deploy_ckpt)['state_dict']
    assert not any('lkb_origin' in k or 'small_conv' in k for k in state)
    # one large kernel per RepLK block (layers 1-1-2-1), every backbone BN folded
    assert sum(k.endswith('lkb_reparam.weight') for k in state) == 5
    assert not any(k.startswith('backbone.') and ('.bn.' in k or 'pre' in k and '_bn.' in k)
                   for k in state)
    from replk_mm.apis import init_detector
    # The deploy checkpoint keeps the training checkpoint's meta (class names).
    assert init_detector(deploy_cfg, deploy_ckpt).dataset_meta['classes'] == \
        ('circle', 'square', 'triangle')
    out = osp.join(work_dir, 'predictions.pkl')
    metrics = test([deploy_cfg, deploy_ckpt, '--work-dir', work_dir, '--out', out])
    for key, value in tested_cascade['metrics'].items():
        assert metrics[key] == pytest.approx(value, abs=2e-3), key
    before, after = _load_predictions(tested_cascade['out']), _load_predictions(out)
    score_thr = 0.05  # the demo config's rcnn test score_thr
    matched = sum(_match(before[i], after[i], score_thr) + _match(after[i], before[i],
                                                                  score_thr) for i in before)
    assert matched > 0


def test_tiny_fcos_trains_with_auto_scaled_lr_and_is_evaluated(workspace):
    from tools.train import main as train
    work_dir = osp.join(workspace['root'], 'fcos_train')
    runner = train([workspace['fcos'], '--work-dir', work_dir, '--auto-scale-lr'])
    assert osp.isfile(osp.join(work_dir, f'iter_{ITERS}.pth'))
    val = _val_metrics(runner)
    assert 0 <= val['coco/bbox_mAP'] <= 1 and 'coco/segm_mAP' not in val
    # base_batch_size 4 in the demo config, 2 images here: half the lr (1e-3).
    assert runner.optim_wrapper.get_lr()['lr'][0] == pytest.approx(5e-4)


def _bad_train_annotations(workspace):
    with open(osp.join(workspace['data'], 'annotations', 'instances_train2017.json')) as f:
        coco = json.load(f)
    coco['annotations'][0]['bbox'] = [900.0, 900.0, 10.0, 10.0]  # outside the 160x160 image
    coco['annotations'][1]['segmentation'] = []  # empty polygon
    path = osp.join(workspace['root'], 'instances_train_bad.json')
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path, coco['annotations'][0]['id'], coco['annotations'][1]['id']


def test_bad_annotations_fail_early_with_a_clear_message(workspace):
    from tools.train import main as train
    ann_file, box_id, polygon_id = _bad_train_annotations(workspace)
    with pytest.raises(ValueError) as info:
        train([workspace['cascade'], '--work-dir', osp.join(workspace['root'], 'bad'),
               '--cfg-options', f'train_dataloader.dataset.ann_file={ann_file}'])
    message = str(info.value)
    assert f'annotation id {box_id}' in message and 'lies outside the 160x160 image' in message
    assert f'annotation id {polygon_id}' in message and 'no usable mask' in message


def test_bad_annotations_can_be_skipped_and_training_runs(workspace):
    from tools.train import main as train
    ann_file, _, _ = _bad_train_annotations(workspace)
    runner = train([workspace['cascade'], '--work-dir', osp.join(workspace['root'], 'skip'),
                    '--cfg-options', f'train_dataloader.dataset.ann_file={ann_file}',
                    'train_dataloader.dataset.invalid_annotations=skip', 'train_cfg.max_iters=2',
                    'train_cfg.val_interval=100'])
    assert np.isfinite(runner.message_hub.get_scalar('train/loss').current())


def test_det_image_demo_draws_predictions(workspace, trained_cascade, tmp_path):
    from PIL import Image

    from tools.demo.det_image_demo import main as image_demo
    image = osp.join(workspace['data'], 'val2017', '000000000007.jpg')
    out = str(tmp_path / 'drawn.png')
    result = image_demo([image, workspace['cascade'], trained_cascade['checkpoint'], '--out',
                         out, '--score-thr', '0.0', '--scale', '2'])
    assert 'masks' in result.pred_instances
    assert Image.open(out).size == (320, 320)
    from replk_mm.apis import init_detector
    model = init_detector(workspace['cascade'], trained_cascade['checkpoint'])
    assert model.dataset_meta['classes'] == ('circle', 'square', 'triangle')  # not COCO's


def test_image_demo_names_a_missing_file(workspace, tmp_path):
    from tools.demo.det_image_demo import main as image_demo
    with pytest.raises(SystemExit, match='checkpoint .*missing.pth does not exist'):
        image_demo([osp.join(workspace['data'], 'val2017', '000000000007.jpg'),
                    workspace['cascade'], str(tmp_path / 'missing.pth')])


def test_det_demo_tool_runs_end_to_end(tmp_path):
    from tools.demo.det_demo import AP_KEYS
    from tools.demo.det_demo import main as det_demo
    work_dir = str(tmp_path / 'demo')
    summary = det_demo(['--iters', '2', '--num-train', '4', '--num-val', '3', '--num-drawn',
                        '2', '--workers', '0', '--work-dir', work_dir,
                        '--data-root', str(tmp_path / 'demo_coco')])
    for key in AP_KEYS:
        assert summary.metrics[key] == pytest.approx(summary.metrics_deploy[key], abs=5e-3)
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth')) and osp.isfile(
        summary.deploy_checkpoint)
    assert [osp.relpath(f, work_dir) for f in summary.pictures] == [
        'drawn/000000000005_pred.png', 'drawn/000000000006_pred.png']
    assert all(osp.isfile(f) for f in summary.pictures)
