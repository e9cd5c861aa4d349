"""Write a small synthetic segmentation dataset in the real ADE20K or Cityscapes layout.

    python tools/dataset_converters/make_demo_data.py ade20k data/demo_ade20k
    python tools/dataset_converters/make_demo_data.py cityscapes data/demo_cityscapes

mmseg's ADE20KDataset / CityscapesDataset read the result unchanged; see
replk_mm/demo/synthetic_seg.py for the classes and label values.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('layout', choices=['ade20k', 'cityscapes'])
    parser.add_argument('root', help='output directory (created; must be empty or a previous '
                        'demo dataset)')
    parser.add_argument('--num-train', type=int, default=None, help='training images')
    parser.add_argument('--num-val', type=int, default=None, help='validation images')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true',
                        help='regenerate even if the same dataset is already there')
    args = parser.parse_args(argv)
    from replk_mm.demo.synthetic_seg import make_demo_dataset
    kwargs = dict(seed=args.seed, overwrite=args.overwrite)
    if args.num_train is not None:
        kwargs['num_train'] = args.num_train
    if args.num_val is not None:
        kwargs['num_val'] = args.num_val
    try:
        meta = make_demo_dataset(args.layout, args.root, **kwargs)
    except (ValueError, FileExistsError) as exc:
        parser.error(str(exc))
    print(f"{args.layout} demo dataset in {args.root}: {meta['num_train']} train / "
          f"{meta['num_val']} val images, classes {', '.join(meta['classes'])}")
    return meta


if __name__ == '__main__':
    main()
