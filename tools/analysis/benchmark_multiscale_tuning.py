#!/usr/bin/env python
"""What autotuning costs under multi-scale detection training: measured decisions and tuning
time over N iterations of a real mmdet training run (tiny RepLKNet detector, CPU).

The train pipeline is the official Cascade Mask R-CNN recipe (flip, then either a multi-scale
resize or resize -> random crop -> multi-scale resize; configs/_base_/datasets/
det_coco_instance_ms_crop.py) with every size multiplied by ``--scale``, on the synthetic COCO
shapes (written on first use with tools/dataset_converters/make_demo_coco.py). Inputs are padded
to multiples of 32 as in every mmdet config. Reported: measured decisions, tuning seconds
(``dispatch_cache_info()['tune_seconds']``; for versions without that counter the script times
their measuring functions) and the part of it spent checking candidates' answers against
PyTorch's conv (``check_seconds``, where the version has it), untimed decisions, the
iteration of the last measurement, distinct input shapes, and seconds per iteration.

    python tools/analysis/benchmark_multiscale_tuning.py --iters 200 --json after.json
    # the committed code, for a before/after comparison (no git state touched):
    mkdir -p /tmp/replk_before && git archive HEAD | tar -x -C /tmp/replk_before
    PYTHONPATH=/tmp/replk_before python tools/analysis/benchmark_multiscale_tuning.py \\
        --config /tmp/replk_before/configs/demo/fcos_replknet_tiny_demo_coco.py --json before.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# appended, not prepended: PYTHONPATH=<another checkout> must win (before/after comparisons)
sys.path.append(REPO)

DEFAULT_CONFIG = os.path.join(REPO, 'configs', 'demo', 'fcos_replknet_tiny_demo_coco.py')
# configs/_base_/datasets/det_coco_instance_ms_crop.py, shorter sides and crops in pixels
PAPER_SHORT_SIDES = (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)
PAPER_LONG_SIDE = 1333
PAPER_CROP_RESIZE = (400, 500, 600)
PAPER_CROP = (384, 600)


def multiscale_pipeline(scale):
    def s(v):
        return max(8, int(round(v * scale)))

    scales = [(s(short), s(PAPER_LONG_SIDE)) for short in PAPER_SHORT_SIDES]
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomChoice', transforms=[
            [dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
            [dict(type='RandomChoiceResize',
                  scales=[(s(v), s(PAPER_LONG_SIDE)) for v in PAPER_CROP_RESIZE],
                  keep_ratio=True),
             dict(type='RandomCrop', crop_type='absolute_range',
                  crop_size=tuple(s(v) for v in PAPER_CROP), allow_negative_crop=True),
             dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
        ]),
        dict(type='PackDetInputs'),
    ]


def ensure_data(root):
    if os.path.exists(os.path.join(root, 'annotations', 'instances_train2017.json')):
        return
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}  # this checkout's tool
    subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'dataset_converters',
                                                 'make_demo_coco.py'), root,
                    '--num-train', '64', '--num-val', '8', '--image-size', '160', '213'],
                   check=True, env=env, cwd=REPO)


class TuningClock:
    """Seconds spent autotuning: the counter where the package has one, else a wrapper around
    the measuring functions of the pre-bucketing dispatch module."""

    def __init__(self):
        import replk_mm.ops as ops
        self.ops = ops
        self.wrapped = 0.0
        self.native_counter = 'tune_seconds' in ops.dispatch_cache_info()
        if not self.native_counter:
            from replk_mm.ops import dispatch
            for name in ('_measure', '_keep_mixed_plan'):
                setattr(dispatch, name, self._timed(getattr(dispatch, name)))

    def _timed(self, fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wrapped += time.perf_counter() - start
        return run

    def info(self):
        info = self.ops.dispatch_cache_info()
        if not self.native_counter:
            info['tune_seconds'] = self.wrapped
        return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--data', default=os.path.join(REPO, 'data', 'demo_coco_multiscale'))
    parser.add_argument('--iters', type=int, default=200)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--scale', type=float, default=0.2,
                        help='multiply the paper recipe sizes (0.2: shorter sides 96-160)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--label', default=None, help='name of this run in the output')
    parser.add_argument('--json', default=None, help='write the result here')
    args = parser.parse_args(argv)

    ensure_data(args.data)
    import torch
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    cfg.work_dir = tempfile.mkdtemp(prefix='multiscale_tuning_')
    cfg.randomness = dict(seed=args.seed)
    cfg.train_dataloader.batch_size = args.batch
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.dataset.data_root = args.data.rstrip('/') + '/'
    cfg.train_dataloader.dataset.pipeline = multiscale_pipeline(args.scale)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters, val_interval=10**9)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**9)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    torch.set_num_threads(args.threads)
    clock = TuningClock()
    shapes, trace = set(), []

    def record_shape(module, inputs):
        shapes.add(tuple(inputs[0].shape))

    runner.model.backbone.register_forward_pre_hook(record_shape)

    class Trace(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            info = clock.info()
            trace.append(dict(iter=runner.iter + 1, t=time.perf_counter(),
                              measured=info['measured'], tune_s=info['tune_seconds']))

    runner.register_hook(Trace(), priority='LOWEST')
    start = time.perf_counter()
    runner.train()
    wall = time.perf_counter() - start
    info = clock.info()
    last_new = max((t['iter'] for i, t in enumerate(trace)
                    if t['measured'] > (trace[i - 1]['measured'] if i else 0)), default=0)
    tail = sorted(b['t'] - a['t'] for a, b in list(zip(trace, trace[1:]))[-50:])
    result = dict(
        label=args.label or ('after' if clock.native_counter else 'before'),
        package=os.path.dirname(clock.ops.__file__), torch=torch.__version__,
        config=args.config, iters=args.iters, batch=args.batch, scale=args.scale,
        threads=args.threads, wall_s=wall, measured=info['measured'],
        untimed=info.get('modelled', 0) + info.get('native_fallbacks', 0),
        modelled=info.get('modelled', 0), native_fallbacks=info.get('native_fallbacks', 0),
        tune_s=info['tune_seconds'],
        # the part of tune_s spent checking candidates against PyTorch's conv (newer versions)
        check_s=info.get('check_seconds'), decisions_held=info['size'],
        last_measurement_iter=last_new, input_shapes=len(shapes),
        s_per_iter_last50=tail[len(tail) // 2] if tail else None,  # median
        measured_by_iter=[(t['iter'], t['measured']) for t in trace
                          if t['iter'] in (1, 10, 25, 50, 100, 150, 200, args.iters)])
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(result, input_shape_list=sorted(shapes)), f, indent=1)
    return result


if __name__ == '__main__':
    main()
