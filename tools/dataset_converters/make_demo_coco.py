"""Write the synthetic shapes dataset in the COCO layout (same as
``make_demo_data.py coco DIR``; see replk_mm/datasets/synthetic/coco.py).

    python tools/dataset_converters/make_demo_coco.py data/demo_coco --num-train 200 --num-val 50
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tools.dataset_converters.make_demo_data import main as make_demo_data  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', nargs='?', default='data/demo_coco',
                        help='dataset root (default: data/demo_coco)')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--image-size', type=int, nargs=2, default=[160, 160],
                        metavar=('HEIGHT', 'WIDTH'))
    parser.add_argument('--max-objects', type=int, default=4, help='objects per image, at most')
    parser.add_argument('--min-size', type=float, default=24,
                        help='smallest object (pixels, diameter of the circle of equal area)')
    parser.add_argument('--max-size', type=float, default=64, help='largest object (pixels)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true',
                        help='regenerate even if the same dataset is already there')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    argv = ['coco', args.out_dir, '--num-train', str(args.num_train), '--num-val',
            str(args.num_val), '--image-size', *map(str, args.image_size), '--max-objects',
            str(args.max_objects), '--object-sizes', str(args.min_size), str(args.max_size),
            '--seed', str(args.seed)] + (['--overwrite'] if args.overwrite else [])
    return make_demo_data(argv)


if __name__ == '__main__':
    main()
