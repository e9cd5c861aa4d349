"""Shape bias of an ImageNet classifier on cue-conflict images (Geirhos et al., 16 classes).

    python tools/analysis/shape_bias.py CONFIG CHECKPOINT --stimuli cue-conflict/ \
        --label RepLKNet-31B --json work_dirs/shape_bias/replknet31b.json
    # several models in one plot, each evaluated once (JSON results of earlier runs):
    python tools/analysis/shape_bias.py CONFIG CHECKPOINT --stimuli cue-conflict/ \
        --label Swin-B --compare work_dirs/shape_bias/replknet31b.json --plot shape_bias.png
    python tools/analysis/shape_bias.py --compare a.json b.json --plot shape_bias.png

CONFIG: an mmpretrain classifier config (path or pkg::name); CHECKPOINT: its whole-model
checkpoint. Stimuli: the texture-vs-shape repository's cue-conflict images (16 category folders
of <shape><n>-<texture><m>.png, e.g. airplane/airplane1-bicycle2.png); docs/analysis.md.
"""
import argparse
import os.path as osp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='mmpretrain classifier config')
    parser.add_argument('checkpoint', nargs='?', help='its checkpoint')
    parser.add_argument('--stimuli', help='cue-conflict folder (16 category sub-folders)')
    parser.add_argument('--label', help='model name in the output (default: config name)')
    parser.add_argument('--json', help='write the result here (to --compare it later)')
    parser.add_argument('--compare', nargs='+', default=[], metavar='JSON',
                        help='results of other models (written with --json) to plot with it')
    parser.add_argument('--plot', help='write the shape-bias plot (all models) here')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--size', type=int, default=224,
                        help='input side; stimuli of another size are resized and '
                             'centre-cropped (default: %(default)s)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def error(message):
        raise SystemExit(f'shape_bias.py: error: {message}')

    if bool(args.config) != bool(args.checkpoint):
        error('give both CONFIG and CHECKPOINT (or neither, to plot --compare results)')
    if args.config and not args.stimuli:
        error('--stimuli DIR is required to evaluate a model')
    if not args.config and not args.compare:
        error('nothing to do: give CONFIG CHECKPOINT --stimuli DIR, or --compare JSON files')
    if args.plot is None and not args.config:
        error('--compare without a model needs --plot')
    from replk_mm.analysis.shape_bias import (
                                              ShapeBiasResult,
                                              classifier_from_config,
                                              evaluate_shape_bias,
                                              format_result,
                                              plot_shape_bias,
    )
    results = []
    for path in args.compare:
        if not osp.isfile(path):
            error(f'--compare {path}: no such file')
        results.append(ShapeBiasResult.from_json(path))
    if args.config:
        classify, convention = classifier_from_config(args.config, args.checkpoint)
        label = args.label or osp.splitext(osp.basename(args.config.split('::')[-1]))[0]
        result = evaluate_shape_bias(classify, args.stimuli, model=label,
                                     batch_size=args.batch_size, size=args.size, **convention)
        print('\n'.join(format_result(result)), flush=True)
        if args.json:
            print(f'[shape-bias] result written to {result.to_json(args.json)}')
        results.insert(0, result)
    if args.plot:
        print(f'[shape-bias] plot of {len(results)} models written to '
              f'{plot_shape_bias(results, args.plot)}')
    return results


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('shape_bias.py'):  # expected errors: one line, no traceback
        main()
