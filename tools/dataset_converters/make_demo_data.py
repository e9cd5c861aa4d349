"""Write a small synthetic dataset in the real ADE20K, Cityscapes or COCO layout.

    python tools/dataset_converters/make_demo_data.py ade20k data/demo_ade20k
    python tools/dataset_converters/make_demo_data.py cityscapes data/demo_cityscapes
    python tools/dataset_converters/make_demo_data.py coco data/demo_coco

mmseg's ADE20KDataset / CityscapesDataset and mmdet's CocoDataset read the result unchanged;
see replk_mm/datasets/synthetic/ for the classes and label values. A folder that already holds
the same dataset (same arguments) is reused; a non-empty folder the generator did not write is
refused.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

# option -> (writer keyword, layouts it applies to)
LAYOUT_OPTIONS = {
    'sides': ('min_side/max_side', ('ade20k', )),
    'scene': ('scene', ('ade20k', )),
    'image_size': ('image_size', ('cityscapes', 'coco')),
    'object_sizes': ('object_sizes', ('coco', )),
    'classes': ('classes', ('coco', )),
}


def build_parser(description=__doc__):
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('layout', choices=['ade20k', 'cityscapes', 'coco'])
    parser.add_argument('root', help='output directory (created; must be empty or a previous '
                        'demo dataset)')
    parser.add_argument('--num-train', type=int, default=None,
                        help='training images (default: 300 ade20k, 200 cityscapes and coco)')
    parser.add_argument('--num-val', type=int, default=None,
                        help='validation images (default: 50 ade20k and coco, 30 cityscapes)')
    parser.add_argument('--max-objects', type=int, default=None,
                        help='objects per image, at most (default: 4)')
    parser.add_argument('--sides', type=int, nargs=2, metavar=('MIN', 'MAX'), default=None,
                        help='ade20k: image sides drawn from [MIN, MAX] (default: 128 192)')
    parser.add_argument('--scene', choices=('shapes', 'context'), default=None,
                        help="ade20k: 'shapes' (default) or 'context' (large shapes whose "
                        'class only the outline tells: the kernel-size demo\'s data)')
    parser.add_argument('--image-size', type=int, nargs=2, metavar=('HEIGHT', 'WIDTH'),
                        default=None, help='cityscapes, coco: image size (default: 128 256 / '
                        '160 160)')
    parser.add_argument('--object-sizes', type=float, nargs=2, metavar=('MIN', 'MAX'),
                        default=None, help='coco: object size range in pixels, as the '
                        'diameter of the circle of the same area (default: 24 64)')
    parser.add_argument('--classes', nargs='+', default=None,
                        help='coco: the shapes to draw (default: circle square triangle)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true',
                        help='regenerate even if the same dataset is already there')
    return parser


def writer_kwargs(args, parser):
    """The writer's keyword arguments for the options given; errors for foreign options."""
    kwargs = dict(seed=args.seed, overwrite=args.overwrite)
    for name in ('num_train', 'num_val', 'max_objects'):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    for name, (keyword, layouts) in LAYOUT_OPTIONS.items():
        value = getattr(args, name)
        if value is None:
            continue
        if args.layout not in layouts:
            parser.error(f"--{name.replace('_', '-')} applies to {', '.join(layouts)}, not "
                         f'{args.layout}')
        if name == 'sides':
            kwargs['min_side'], kwargs['max_side'] = value
        elif name == 'scene':
            kwargs['scene'] = value
        else:
            kwargs[keyword] = tuple(value)
    return kwargs


def describe(data):
    state = 'reused (already generated with these arguments)' if data.reused else 'generated'
    lines = [f'{data.layout} demo dataset in {data.root}: {state}']
    for split in data.splits:
        lines.append(f'  {split.name}: {split.images} images, {split.objects} objects -> '
                     f'{split.image_dir}, {split.annotations}')
    lines.append(f"  classes: {', '.join(data.classes)}")
    return '\n'.join(lines)


def main(argv=None, parser=None):
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    kwargs = writer_kwargs(args, parser)
    from replk_mm.datasets.synthetic import make_demo_dataset
    try:
        data = make_demo_dataset(args.layout, args.root, **kwargs)
    except (ValueError, FileExistsError) as exc:
        parser.error(str(exc))
    print(describe(data))
    return data


if __name__ == '__main__':
    main()
