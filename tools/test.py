"""Evaluate a checkpoint with a replk_mm config (mmseg, mmdet or mmpretrain)."""
import argparse
import os

from replk_mm.engine.config_checks import CfgOptionsAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the evaluation log goes')
    parser.add_argument('--out', help='also dump the raw predictions to this .pkl file')
    parser.add_argument('--show-dir', help='write predictions drawn on the images here')
    parser.add_argument('--tta', action='store_true',
                        help='multi-scale + flip test-time augmentation')
    parser.add_argument('--allow-partial', action='store_true',
                        help='evaluate even if the checkpoint does not fit the model (what fits '
                             'is loaded, the rest is listed); by default that is an error')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    from replk_mm.apis import close_distributed, test_runner
    try:
        runner = test_runner(args.config, args.checkpoint, work_dir=args.work_dir,
                             tta=args.tta, show_dir=args.show_dir, out=args.out,
                             cfg_options=args.cfg_options, launcher=args.launcher,
                             allow_partial=args.allow_partial)
        return runner.test()
    finally:
        close_distributed()


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('test.py'):  # expected errors: one line, no traceback
        main()
    from replk_mm.apis import exit_if_distributed
    exit_if_distributed()  # see its docstring: gloo can abort a finishing process
