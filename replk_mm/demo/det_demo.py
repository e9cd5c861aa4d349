"""The detection demo: synthetic COCO-layout data -> train a small RepLKNet + Cascade Mask R-CNN
on the CPU with ``tools/train.py`` -> bbox/segm AP with mmdet's CocoMetric -> re-parameterize
and evaluate again -> a few validation images with the predicted boxes and masks drawn.

``tools/demo/det_demo.py`` is its command line; ``tools/demo/det_image_demo.py`` draws the
predictions of any detector config + checkpoint on one image with the helpers below.
"""
import copy
import glob
import os
import os.path as osp
import sys
import time

from .steps import REPO, evaluate, phase, reparameterize_and_evaluate, run_train_tool

DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                       'cascade_mask_rcnn_replknet_tiny_demo_coco.py')
AP_KEYS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50')
MIN_EXPECTED_AP = 0.3  # what the demo schedule reaches on box and mask AP (docs/detection.md)


def data_options(data_root):
    """cfg options pointing a demo config's datasets and evaluators at ``data_root``."""
    data_root = data_root.rstrip('/') + '/'
    options = {f'{split}_dataloader.dataset.data_root': data_root
               for split in ('train', 'val', 'test')}
    for split in ('val', 'test'):
        options[f'{split}_evaluator.ann_file'] = data_root + 'annotations/instances_val2017.json'
    return options


def schedule_options(max_iters):
    """cfg options that shorten/lengthen the demo schedule (warm-up, lr steps, checkpoint)."""
    return {'train_cfg.max_iters': max_iters,
            'param_scheduler.0.end': max(1, min(100, max_iters // 10)),
            'param_scheduler.1.end': max_iters,
            'param_scheduler.1.milestones': [int(max_iters * 0.75), int(max_iters * 0.9)],
            'default_hooks.checkpoint.interval': max_iters}


def train(config, work_dir, cfg_options, python=sys.executable, threads=None):
    """``python tools/train.py CONFIG --work-dir WORK_DIR --cfg-options ...``; returns the
    last checkpoint. ``threads`` sets OMP_NUM_THREADS for it."""
    command = [python, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir]
    command += ['--cfg-options'] + [f'{k}={_option_text(v)}' for k, v in cfg_options.items()]
    return run_train_tool(command, work_dir, threads)


def _option_text(value):
    if isinstance(value, (list, tuple)):  # one argv word: [600,720]
        return '[' + ','.join(map(str, value)) + ']'
    return str(value)


def inference_pipeline(cfg):
    """The config's test pipeline without annotation loading (for images without labels)."""
    from mmdet.utils import get_test_pipeline_cfg
    pipeline = copy.deepcopy(get_test_pipeline_cfg(cfg))
    return [t for t in pipeline
            if not str(t.get('type', '')).split('.')[-1].startswith('LoadAnnotations')]


def predict(model, cfg, image_paths):
    """DetDataSamples for image files, with the config's test pipeline (no annotations)."""
    import torch
    from mmcv.transforms import Compose
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    pipeline = Compose(inference_pipeline(cfg))
    model.eval()
    results = []
    with torch.no_grad():
        for path in image_paths:
            if not osp.isfile(path):
                raise FileNotFoundError(f'image {path} does not exist')
            data = pipeline(dict(img_path=path, img_id=0))
            batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
            results.append(model.test_step(batch)[0])
    return results


def draw_predictions(image_paths, results, classes, out_dir=None, score_thr=0.3, scale=1,
                     out_files=None):
    """Draw each image's predicted boxes, labels and masks; returns the written files.

    Files go to ``out_files`` if given, else to ``out_dir/<image name>_pred.png``. ``scale``
    > 1 enlarges small images (and the predictions) so that labels stay readable.
    """
    import mmcv
    from mmdet.visualization import DetLocalVisualizer

    if out_files is None:
        if out_dir is None:
            raise ValueError('give out_dir or out_files')
        out_files = [osp.join(out_dir, osp.splitext(osp.basename(p))[0] + '_pred.png')
                     for p in image_paths]
    if not len(out_files) == len(image_paths) == len(results):
        raise ValueError(f'{len(image_paths)} images, {len(results)} results and '
                         f'{len(out_files)} output files: they must match')
    visualizer = DetLocalVisualizer.get_instance('replk_mm_det_drawer')
    visualizer.dataset_meta = dict(classes=tuple(classes))
    for path, result, out_file in zip(image_paths, results, out_files):
        os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
        image = mmcv.imread(path, channel_order='rgb')
        if scale != 1:
            image = mmcv.imrescale(image, scale)
            result = _rescaled(result, scale)
        visualizer.add_datasample(osp.basename(path), image, data_sample=result,
                                  draw_gt=False, pred_score_thr=score_thr, out_file=out_file)
    return list(out_files)


def _rescaled(result, scale):
    import torch.nn.functional as F
    result = result.clone()
    pred = result.pred_instances
    pred.bboxes = pred.bboxes * scale
    if 'masks' in pred:
        masks = pred.masks.float()[None]
        pred.masks = F.interpolate(masks, scale_factor=scale, mode='nearest')[0].bool()
    return result


def init_detector(config, checkpoint, cfg_options=None, device='cpu'):
    """A detector in eval mode with ``model.cfg`` and ``model.dataset_meta['classes']``.

    Like ``mmdet.apis.init_detector`` (SyncBN reverted for CPU inference), but the class
    names come from the checkpoint's meta, else from the config's test set - never mmdet's
    silent fallback to the 80 COCO names, which would mislabel a converted or re-parameterized
    checkpoint that carries no meta.
    """
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.model.get('backbone', {}).pop('init_cfg', None)  # the checkpoint has the weights
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    meta = load_checkpoint(model, checkpoint, map_location='cpu').get('meta', {})
    classes = (meta.get('dataset_meta') or {}).get('classes') or \
        (cfg.test_dataloader.dataset.get('metainfo') or {}).get('classes')
    if not classes:
        raise ValueError(f'neither {checkpoint} (meta.dataset_meta) nor {config} '
                         '(test_dataloader.dataset.metainfo) names the classes')
    model.dataset_meta = dict(classes=tuple(classes))
    model.cfg = cfg
    return model.to(device).eval()


def write_drawings(config, checkpoint, image_paths, out_dir, cfg_options=None, score_thr=0.5):
    model = init_detector(config, checkpoint, cfg_options)
    results = predict(model, model.cfg, image_paths)
    return draw_predictions(image_paths, results, model.dataset_meta['classes'], out_dir,
                            score_thr=score_thr, scale=2)


def run(config=DEMO_CONFIG, work_dir='work_dirs/det_demo', data_root='data/demo_coco',
        max_iters=None, num_train=200, num_val=50, num_drawn=4, num_workers=None, seed=0,
        threads=1):
    """Run every phase; returns a summary dict. Raises if re-parameterization changes AP.

    ``threads``: torch threads (None: torch's default). 1 by default: this small model gains
    little from a second thread on 2 cores, and OpenMP thread pools slow down many times
    over when other jobs compete for the cores.
    """
    import torch
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(config, work_dir, data_root, max_iters, num_train, num_val, num_drawn,
                    num_workers, seed, threads)
    finally:
        torch.set_num_threads(previous_threads)


def _run(config, work_dir, data_root, max_iters, num_train, num_val, num_drawn, num_workers,
         seed, threads):
    from .synthetic_coco import is_demo_coco, make_demo_coco

    start = time.time()
    total = 5
    config, work_dir, data_root = map(osp.abspath, (config, work_dir, data_root))

    phase('det', 1, total,
          'synthetic COCO-layout data (circles, squares, triangles; random colours)')
    if is_demo_coco(data_root, num_train=num_train, num_val=num_val, seed=seed):
        print(f'reused {num_train} training + {num_val} validation images in {data_root}')
    else:
        make_demo_coco(data_root, num_train=num_train, num_val=num_val, seed=seed)
        print(f'generated {num_train} training + {num_val} validation images in {data_root}')
    options = data_options(data_root)
    if num_workers is not None:
        for split in ('train', 'val', 'test'):
            options[f'{split}_dataloader.num_workers'] = num_workers
            options[f'{split}_dataloader.persistent_workers'] = num_workers > 0

    phase('det', 2, total, 'train RepLKNet (31-29-27-13 kernels, 32-256 channels) + Cascade Mask '
          'R-CNN with tools/train.py')
    train_options = dict(options, **{'randomness.seed': seed,
                                     'train_cfg.val_interval': 10**9})  # evaluated below
    if max_iters is not None:
        train_options.update(schedule_options(max_iters))
    checkpoint = train(config, work_dir, train_options, threads=threads)
    train_done = time.time()

    phase('det', 3, total, f'evaluate {osp.basename(checkpoint)} with CocoMetric (bbox + segm)')
    before = evaluate(config, checkpoint, osp.join(work_dir, 'eval_train_form'), options)

    phase('det', 4, total, 're-parameterize (merge 5x5 branches and BNs into the large kernels) '
          'and evaluate again')
    deploy_cfg, deploy_ckpt, after = reparameterize_and_evaluate(config, checkpoint, work_dir,
                                                                 options)

    phase('det', 5, total, 'draw predicted boxes and masks')
    images = sorted(glob.glob(osp.join(data_root, 'val2017', '*.jpg')))[:num_drawn]
    drawn = write_drawings(deploy_cfg, deploy_ckpt, images, osp.join(work_dir, 'drawn'),
                           options)
    for path in drawn:
        print(path)

    summary = dict(metrics=before, metrics_deploy=after, checkpoint=checkpoint,
                   deploy_checkpoint=deploy_ckpt, drawn=drawn,
                   train_minutes=(train_done - start) / 60,
                   total_minutes=(time.time() - start) / 60)
    print_summary(summary)
    changed = [k for k in AP_KEYS if abs(before[k] - after[k]) > 0.005]
    if changed:
        raise RuntimeError(f're-parameterization changed {changed}: '
                           + ', '.join(f'{before[k]:.3f} -> {after[k]:.3f}' for k in changed))
    return summary


def print_summary(summary):
    before, after = summary['metrics'], summary['metrics_deploy']
    print('\n===== [det demo] summary (COCO metrics on the synthetic val set) =====')
    print(f"{'':18} {'training form':>14} {'re-parameterized':>17}")
    for key in AP_KEYS:
        print(f'{key:18} {before[key]:>14.3f} {after[key]:>17.3f}')
    print(f"wall time {summary['total_minutes']:.1f} min ({summary['train_minutes']:.1f} min "
          'data + training)')
    print(f"checkpoints: {summary['checkpoint']}, {summary['deploy_checkpoint']}")
    print(f"drawn predictions: {osp.dirname(summary['drawn'][0]) if summary['drawn'] else '-'}",
          flush=True)
    low = [k for k in ('coco/bbox_mAP', 'coco/segm_mAP') if before[k] < MIN_EXPECTED_AP]
    if low:
        print(f'WARNING: {", ".join(low)} below the {MIN_EXPECTED_AP} the demo schedule '
              'reaches (a changed config or a shortened --iters run does that)', flush=True)
