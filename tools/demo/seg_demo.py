"""The segmentation demo: synthetic ADE20K-layout data -> train a small RepLKNet + UperNet
with tools/train.py -> evaluate (mIoU + per-class table) -> re-parameterize -> evaluate again
(same mIoU) -> write prediction overlays. About 10 minutes on a 2-core CPU.

    python tools/demo/seg_demo.py [--work-dir work_dirs/seg_demo] [--iters N]
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)


def parse_args(argv=None):
    from replk_mm.demo.seg_demo import DEMO_CONFIG
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=DEMO_CONFIG,
                        help='demo config (default: %(default)s)')
    parser.add_argument('--work-dir', default='work_dirs/seg_demo',
                        help='logs, checkpoints and overlays (default: %(default)s)')
    parser.add_argument('--data-root', default=None,
                        help="synthetic dataset directory (default: the config's, "
                        "data/demo_ade20k)")
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
    from replk_mm.demo.seg_demo import run
    return run(args.config, args.work_dir, data_root=args.data_root, max_iters=args.iters,
               num_overlays=args.overlays, num_train=args.num_train, num_val=args.num_val,
               threads=args.threads)


if __name__ == '__main__':
    main()
