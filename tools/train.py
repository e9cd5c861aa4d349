"""Train a replk_mm config (mmseg, mmdet or mmpretrain, chosen by the config's default_scope)."""
import argparse
import os

from replk_mm.engine.config_checks import CfgOptionsAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from CHECKPOINT, or from the latest one in work-dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed-precision training (AmpOptimWrapper: needs a CUDA GPU)')
    parser.add_argument('--allow-partial', action='store_true',
                        help="let the config's load_from load a checkpoint that does not fit "
                             'the model (what fits is loaded, the rest is listed); by default '
                             'that is an error')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale the lr linearly from the config's auto_scale_lr."
                             'base_batch_size to the actual global batch')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    from replk_mm.apis import close_distributed, train_runner
    try:
        runner = train_runner(args.config, work_dir=args.work_dir, resume=args.resume or False,
                              amp=args.amp, cfg_options=args.cfg_options,
                              launcher=args.launcher, auto_scale_lr=args.auto_scale_lr,
                              allow_partial=args.allow_partial)
        runner.train()
    finally:
        close_distributed()
    return runner


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('train.py'):  # expected errors: one line, no traceback
        main()
    from replk_mm.apis import exit_if_distributed
    exit_if_distributed()  # see its docstring: gloo can abort a finishing process
