"""Effective receptive fields of several models in one figure, by the RepLKNet paper's method.

The official method (erf/visualize_erf.py + erf/analyze_erf.py of DingXiaoH/RepLKNet-pytorch):
the first 50 images of a folder (ImageFolder order; the paper used ImageNet val) resized to
1024x1024, the ReLU'd gradient of the ReLU'd centre response of the last stage (before the
final norm), averaged over images; shown as log10(x + 1) / max with the high-contribution area
ratios (t = 20/30/50/99%). Details: docs/analysis.md.

    # the paper's figure: RepLKNet-31B, RepLKNet-13, ResNet-101, ResNet-152
    python tools/analysis/visualize_erf.py --images data/imagenet/val \\
        --model RepLKNet-31B RepLKNet-31B_ImageNet-1K_224.pth \\
        --model RepLKNet-13 RepLKNet-13_ImageNet-1K_224.pth \\
        --model mmpretrain::resnet/resnet101_8xb32_in1k.py RESNET101_CKPT \\
        --model mmpretrain::resnet/resnet152_8xb32_in1k.py RESNET152_CKPT --out erf.png \\
        --paper-table
    # older form, still accepted: one RepLKNet arch (+ the same net with KxK kernels)
    python tools/analysis/visualize_erf.py --arch 31B --compare-small-kernel 3 --out erf.png

Writes OUT (the figure), OUT_STEM.json (the ratios) and OUT_STEM.<label>.npy (the matrices).
Without --images the inputs are random noise (the structure-only ERF, not the paper's method).
--paper-table prints the paper's Table 10 beside the measured ratios.
"""
import argparse

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
# High-contribution area ratio r (%) at t = 20 / 30 / 50 / 99%, measured by the paper on 50
# ImageNet validation images at 1024x1024 with ImageNet-trained weights.
PAPER_TABLE10_SOURCE = 'RepLKNet arXiv 2203.06717v1, Table 10'
PAPER_TABLE10 = {
    'ResNet-101': (1.0, 1.7, 3.5, 23.4),
    'ResNet-152': (1.3, 2.1, 4.5, 34.9),
    'RepLKNet-13': (10.2, 15.8, 28.5, 96.3),
    'RepLKNet-31': (15.0, 23.4, 41.4, 98.6),
}


def paper_table(results):
    """The measured area ratios (%) beside the paper's Table 10 rows, as a Markdown table: one
    row per model (measured first, then the paper's), one column per threshold."""
    thresholds = [float(t) for t in results[0].area_ratio]
    if thresholds != list(THRESHOLDS):
        raise ValueError(f'Table 10 gives t = {THRESHOLDS}; these results have {thresholds}')
    lines = ['| model | source | ' + ' | '.join(f't = {t:.0%}' for t in THRESHOLDS) + ' |',
             '|---|---|' + '---|' * len(THRESHOLDS)]
    for result in results:
        ratios = [100 * result.area_ratio[t] for t in result.area_ratio]
        lines.append(f'| {result.label} | measured here | '
                     + ' | '.join(f'{r:.1f}%' for r in ratios) + ' |')
    for label, ratios in PAPER_TABLE10.items():
        lines.append(f'| {label} | {PAPER_TABLE10_SOURCE} | '
                     + ' | '.join(f'{r:.1f}%' for r in ratios) + ' |')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', nargs='+', action='append', default=[],
                        metavar=('SPEC', 'CHECKPOINT'),
                        help="a model to measure: 'RepLKNet-31B', 'RepLKNet-13', a RepLKNet "
                             'arch (31B/31L/XL) or a config (.py or pkg::name; its '
                             'model.backbone), optionally followed by its checkpoint; repeat '
                             'for several models')
    parser.add_argument('--label', action='append', default=[],
                        help='names for the models, in order (default from SPEC)')
    parser.add_argument('--arch', help='a RepLKNet arch to measure (older form of --model)')
    parser.add_argument('--checkpoint', help='weights for --arch')
    parser.add_argument('--compare-small-kernel', type=int, metavar='K',
                        help='also measure the --arch network with KxK kernels (random init)')
    parser.add_argument('--images', help='image folder or ImageFolder root (e.g. ImageNet '
                                         'val); default: random noise')
    parser.add_argument('--num-images', type=int, default=50,
                        help='images used (default: %(default)s, the official number)')
    parser.add_argument('--size', type=int, default=1024,
                        help='images resized to SIZE x SIZE (default: %(default)s, official)')
    parser.add_argument('--layer', default='auto',
                        help="probed sub-module of the backbone; 'auto' (default): the last "
                             "stage before the final norm; 'output': the backbone's output")
    parser.add_argument('--stage', type=int,
                        help='probe this output index of the backbone instead of --layer')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--out', default='erf.png', help='the figure (default: %(default)s)')
    parser.add_argument('--paper-table', action='store_true',
                        help=f"also print the paper's rows ({PAPER_TABLE10_SOURCE}: ResNet-101, "
                        'ResNet-152, RepLKNet-13, RepLKNet-31) beside the measured ratios')
    return parser.parse_args(argv)


def model_specs(args, parser_error):
    specs = []
    for entry in args.model:
        if len(entry) > 2:
            parser_error(f'--model takes SPEC [CHECKPOINT], got {entry}')
        specs.append(dict(spec=entry[0], checkpoint=entry[1] if len(entry) > 1 else None))
    if args.arch:
        specs.append(dict(spec=args.arch, checkpoint=args.checkpoint))
    elif args.checkpoint:
        parser_error('--checkpoint goes with --arch; give a checkpoint per model with '
                     '--model SPEC CHECKPOINT')
    if args.compare_small_kernel:
        if not args.arch:
            parser_error('--compare-small-kernel needs --arch')
        specs.append(dict(spec=args.arch, checkpoint=None,
                          kernel_size=args.compare_small_kernel))
    if not specs:
        specs.append(dict(spec='RepLKNet-31B', checkpoint=None))
    if args.label:
        if len(args.label) != len(specs):
            parser_error(f'{len(args.label)} --label for {len(specs)} models')
        for spec, label in zip(specs, args.label):
            spec['label'] = label
    return specs


def main(argv=None):
    args = parse_args(argv)

    def parser_error(message):
        raise SystemExit(f'visualize_erf.py: error: {message}')

    specs = model_specs(args, parser_error)
    import torch

    from replk_mm.analysis.erf import (
                                       build_erf_model,
                                       compare_erfs,
                                       erf_table,
                                       load_erf_images,
                                       noise_images,
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    layer = None if args.layer == 'output' or args.stage is not None else args.layer
    if args.images:
        images = load_erf_images(args.images, args.num_images, args.size)
        print(f'[erf] {len(images)} images from {args.images} at {args.size}x{args.size}',
              flush=True)
    else:
        images = noise_images(args.num_images, args.size)
        print(f'[erf] no --images: {args.num_images} random-noise images at '
              f'{args.size}x{args.size} (structure only; the paper uses real images)',
              flush=True)
    models = []
    for spec in specs:
        model = build_erf_model(spec['spec'], spec.get('checkpoint'), spec.get('label'),
                                layer=layer, kernel_size=spec.get('kernel_size'))
        print(f'[erf] {model.label}: {model.source}, probing '
              f'{model.layer or "the backbone output"}', flush=True)
        models.append(model)
    results = compare_erfs(models, images, args.out, thresholds=THRESHOLDS,
                           batch_size=args.batch_size,
                           progress=lambda m: print(m, flush=True),
                           stage=-1 if args.stage is None else args.stage)
    print(erf_table(results))
    if args.paper_table:
        print(f'\nArea ratios beside {PAPER_TABLE10_SOURCE} (50 ImageNet val images at '
              '1024x1024, trained weights):')
        print(paper_table(results))
    return results


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('visualize_erf.py'):  # expected errors: one line, no traceback
        main()
