"""Detection demo on the CPU (~10 min on 2 cores): synthetic COCO-layout shapes -> train a
small RepLKNet + Cascade Mask R-CNN with tools/train.py -> bbox/segm AP with mmdet's CocoMetric
-> re-parameterize and evaluate again -> predicted boxes and masks drawn on a few images.

    python tools/demo/det_demo.py                  # the full demo
    python tools/demo/det_demo.py --iters 20       # a quick smoke run (AP stays near 0)
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/det_demo',
                        help='logs, checkpoints and drawn images (default: %(default)s)')
    parser.add_argument('--data-root', default='data/demo_coco',
                        help='where the synthetic dataset is written (default: %(default)s)')
    parser.add_argument('--config', default=None, help='demo config (default: '
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
    return args


def main(argv=None):
    args = parse_args(argv)
    from replk_mm.demo.det_demo import DEMO_CONFIG, run
    return run(config=args.config or DEMO_CONFIG, work_dir=args.work_dir,
               data_root=args.data_root, max_iters=args.iters, num_train=args.num_train,
               num_val=args.num_val, num_drawn=args.num_drawn, num_workers=args.workers,
               seed=args.seed, threads=args.threads or None)


if __name__ == '__main__':
    main()
