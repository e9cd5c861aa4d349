"""Write the synthetic shapes dataset in the COCO layout (see replk_mm/demo/synthetic_coco.py).

    python tools/dataset_converters/make_demo_coco.py data/demo_coco --num-train 200 --num-val 50
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


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
    parser.add_argument('--min-size', type=float, default=24, help='smallest object (pixels)')
    parser.add_argument('--max-size', type=float, default=64, help='largest object (pixels)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from replk_mm.demo.synthetic_coco import make_demo_coco
    try:
        summary = make_demo_coco(args.out_dir, num_train=args.num_train, num_val=args.num_val,
                                 image_size=tuple(args.image_size), max_objects=args.max_objects,
                                 min_size=args.min_size, max_size=args.max_size, seed=args.seed)
    except ValueError as exc:
        sys.exit(f'make_demo_coco: {exc}')
    for split in ('train2017', 'val2017'):
        info = summary[split]
        print(f"{split}: {info['images']} images, {info['instances']} instances -> "
              f"{info['ann_file']}")
    print(f"classes: {', '.join(summary['classes'])}")
    return summary


if __name__ == '__main__':
    main()
