"""The segmentation demo: synthetic ADE20K-layout data -> train a small RepLKNet + UperNet
with tools/train.py -> evaluate (mIoU + per-class table) -> re-parameterize -> evaluate again
(same mIoU) -> write prediction overlays. About 5-7 minutes on a 2-core CPU.

    python tools/demo/seg_demo.py [--work-dir work_dirs/seg_demo] [--iters N]
"""
import argparse
import functools
import glob
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tools.demo.demo_driver import DEMO_CONFIGS, Demo, Metric, run_demo  # noqa: E402

SEG_CONFIG = osp.join(DEMO_CONFIGS, 'upernet_replknet_tiny_demo_ade20k.py')
MIN_EXPECTED_MIOU = 70.0  # percent; what the demo schedule reaches (docs/segmentation.md)


def data_options(root):
    """cfg options pointing the train/val/test sets of the config at ``root``."""
    return {f'{split}_dataloader.dataset.data_root': root for split in ('train', 'val', 'test')}


def schedule_options(max_iters):
    """The config's schedule over ``max_iters``: validation at half and at the end."""
    warmup = max(1, min(50, max_iters // 10))  # the config's 50, shortened for short runs
    return {'train_cfg.max_iters': max_iters,
            'train_cfg.val_interval': max(max_iters // 2, 1),
            'param_scheduler.0.end': warmup, 'param_scheduler.1.begin': warmup,
            'param_scheduler.1.end': max_iters,
            'default_hooks.checkpoint.interval': max_iters}


def validation_images(data, count):
    return sorted(glob.glob(osp.join(data.root, data.split('validation').image_dir,
                                     '*.jpg')))[:count]


def write_overlays(config, checkpoint, images, out_dir, cfg_options=None):
    """Each image (left) beside the deploy model's prediction drawn over it by mmseg's
    SegLocalVisualizer (right: class colours and names), enlarged to a short side of 384
    pixels so the names stay readable."""
    import mmcv
    import numpy as np

    from replk_mm.apis import draw_segmentation, inference_segmentor, init_segmentor, read_image
    model = init_segmentor(config, checkpoint, device='cpu', cfg_options=cfg_options)
    written = []
    for image in images:
        out = osp.join(out_dir, osp.splitext(osp.basename(image))[0] + '_overlay.png')
        drawn = draw_segmentation(model, image, inference_segmentor(model, image),
                                  opacity=0.7, min_size=384)
        plain = mmcv.imresize(read_image(image), drawn.shape[1::-1])
        if not mmcv.imwrite(np.concatenate([plain, mmcv.rgb2bgr(drawn)], axis=1), out):
            raise OSError(f'could not write {out}')
        written.append(out)
    return written


def seg_demo(config=SEG_CONFIG, num_train=300, num_val=50):
    """The segmentation demo's description (see tools/demo/demo_driver.py)."""
    from replk_mm.datasets.synthetic import make_ade20k_demo
    return Demo(
        task='seg', config=config,
        data_title='synthetic ADE20K-layout data (squares, triangles, circles on textures)',
        train_title='train RepLKNet (31-29-27-13 kernels, 32-256 channels) + UperNet with '
                    'tools/train.py',
        draw_title='prediction overlays (mmseg SegLocalVisualizer)', pictures_dir='overlays',
        make_data=functools.partial(make_ade20k_demo, num_train=num_train, num_val=num_val),
        data_options=data_options, schedule_options=schedule_options, draw=write_overlays,
        images=validation_images,
        metrics=(Metric('mIoU', fmt='.2f', tolerance=0.05, expected=MIN_EXPECTED_MIOU),
                 Metric('aAcc', fmt='.2f', tolerance=0.05)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=SEG_CONFIG,
                        help='demo config (default: %(default)s)')
    parser.add_argument('--work-dir', default='work_dirs/seg_demo',
                        help='logs, checkpoints and overlays (default: %(default)s)')
    parser.add_argument('--data-root', default=None,
                        help="synthetic dataset directory (default: the config's, "
                        'data/demo_ade20k)')
    parser.add_argument('--iters', type=int, default=None,
                        help="training iterations (default: the config's)")
    parser.add_argument('--threads', default='auto',
                        help="compute threads for training: N, or 'auto' (one per core; 1 on "
                        'a busy machine) (default: %(default)s)')
    parser.add_argument('--overlays', type=int, default=4, help='number of overlays to write')
    parser.add_argument('--num-train', type=int, default=300, help='synthetic training images')
    parser.add_argument('--num-val', type=int, default=50, help='synthetic validation images')
    args = parser.parse_args(argv)
    if args.threads != 'auto':
        if not args.threads.isdigit() or int(args.threads) < 1:
            parser.error(f"--threads must be a positive int or 'auto', got {args.threads!r}")
        args.threads = int(args.threads)
    for name in ('iters', 'overlays', 'num_train', 'num_val'):
        value = getattr(args, name)
        if value is not None and value < (0 if name == 'overlays' else 1):
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    return args


def main(argv=None):
    args = parse_args(argv)
    data_root = args.data_root
    if data_root is None:
        from replk_mm.apis import load_config
        data_root = load_config(args.config).train_dataloader.dataset.data_root
    return run_demo(seg_demo(args.config, args.num_train, args.num_val), args.work_dir,
                    data_root, max_iters=args.iters, threads=args.threads,
                    num_drawn=args.overlays)


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('seg_demo.py'):  # expected errors: one line, no traceback
        main()
