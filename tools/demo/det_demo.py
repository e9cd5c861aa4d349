"""Detection demo on the CPU (~7-10 min on 2 cores): synthetic COCO-layout shapes -> train a
small RepLKNet + Cascade Mask R-CNN with tools/train.py -> bbox/segm AP with mmdet's CocoMetric
-> re-parameterize and evaluate again -> predicted boxes and masks drawn on a few images.

    python tools/demo/det_demo.py                  # the full demo
    python tools/demo/det_demo.py --iters 20       # a quick smoke run (AP stays near 0)
"""
import argparse
import functools
import glob
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tools.demo.demo_driver import DEMO_CONFIGS, Demo, Metric, run_demo  # noqa: E402

DET_CONFIG = osp.join(DEMO_CONFIGS, 'cascade_mask_rcnn_replknet_tiny_demo_coco.py')
MIN_EXPECTED_AP = 0.3  # what the demo schedule reaches on box and mask AP (docs/detection.md)
AP_KEYS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50')


def data_options(root):
    """cfg options pointing the config's datasets and evaluators at ``root``."""
    root = root.rstrip('/') + '/'
    options = {f'{split}_dataloader.dataset.data_root': root
               for split in ('train', 'val', 'test')}
    for split in ('val', 'test'):
        options[f'{split}_evaluator.ann_file'] = root + 'annotations/instances_val2017.json'
    return options


def schedule_options(max_iters):
    """The config's schedule over ``max_iters`` (warm-up, lr steps at 75% and 90%)."""
    return {'train_cfg.max_iters': max_iters,
            'param_scheduler.0.end': max(1, min(100, max_iters // 10)),
            'param_scheduler.1.end': max_iters,
            'param_scheduler.1.milestones': [int(max_iters * 0.75), int(max_iters * 0.9)],
            'default_hooks.checkpoint.interval': max_iters}


def validation_images(data, count):
    return sorted(glob.glob(osp.join(data.root, data.split('val2017').image_dir,
                                     '*.jpg')))[:count]


def write_drawings(config, checkpoint, images, out_dir, cfg_options=None, score_thr=0.5):
    """The deploy model's boxes, classes, scores and masks, drawn by mmdet's
    DetLocalVisualizer on each image enlarged 2x (the images are 160x160)."""
    from replk_mm.apis import draw_detection, inference_detector, init_detector
    model = init_detector(config, checkpoint, device='cpu', cfg_options=cfg_options)
    written = []
    for image in images:
        out = osp.join(out_dir, osp.splitext(osp.basename(image))[0] + '_pred.png')
        draw_detection(model, image, inference_detector(model, image), out_file=out,
                       score_thr=score_thr, scale=2)
        written.append(out)
    return written


def det_demo(config=DET_CONFIG, num_train=200, num_val=50, seed=0):
    """The detection demo's description (see tools/demo/demo_driver.py)."""
    from replk_mm.datasets.synthetic import make_coco_demo
    return Demo(
        task='det', config=config,
        data_title='synthetic COCO-layout data (circles, squares, triangles; random colours)',
        train_title='train RepLKNet (31-29-27-13 kernels, 32-256 channels) + Cascade Mask '
                    'R-CNN with tools/train.py',
        draw_title='predicted boxes and masks (mmdet DetLocalVisualizer)', pictures_dir='drawn',
        make_data=functools.partial(make_coco_demo, num_train=num_train, num_val=num_val,
                                    seed=seed),
        data_options=data_options, schedule_options=schedule_options, draw=write_drawings,
        images=validation_images,
        metrics=tuple(Metric(key, fmt='.3f', tolerance=0.005,
                             expected=MIN_EXPECTED_AP if key.endswith('mAP') else None)
                      for key in AP_KEYS),
        # evaluated in phase 3, not during training
        train_options={'randomness.seed': seed, 'train_cfg.val_interval': 10**9})


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/det_demo',
                        help='logs, checkpoints and drawn images (default: %(default)s)')
    parser.add_argument('--data-root', default='data/demo_coco',
                        help='where the synthetic dataset is written (default: %(default)s)')
    parser.add_argument('--config', default=DET_CONFIG, help='demo config (default: '
                        'configs/demo/cascade_mask_rcnn_replknet_tiny_demo_coco.py)')
    parser.add_argument('--iters', type=int, default=None,
                        help="training iterations (default: the config's)")
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--num-drawn', type=int, default=4, help='val images to draw')
    parser.add_argument('--workers', type=int, default=None, help='data loader workers')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (default: %(default)s; 0 = torch default). One '
                             'thread is about as fast on 2 idle cores and much faster on busy '
                             'ones')
    args = parser.parse_args(argv)
    for name in ('iters', 'num_train', 'num_val'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    for name in ('num_drawn', 'workers', 'threads'):
        value = getattr(args, name)
        if value is not None and value < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    return args


def main(argv=None):
    args = parse_args(argv)
    workers = {}
    if args.workers is not None:
        for split in ('train', 'val', 'test'):
            workers[f'{split}_dataloader.num_workers'] = args.workers
            workers[f'{split}_dataloader.persistent_workers'] = args.workers > 0
    return run_demo(det_demo(args.config, args.num_train, args.num_val, args.seed),
                    args.work_dir, args.data_root, max_iters=args.iters,
                    threads=args.threads or None, num_drawn=args.num_drawn,
                    extra_options=workers)


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('det_demo.py'):  # expected errors: one line, no traceback
        main()
