"""The paper's argument on a laptop: train the tiny demo RepLKNet + UperNet with 3x3
depth-wise kernels (3-3-3-3, no small branch) and with the large kernels (31-29-27-13 + 5x5
re-parameterization branches), three seeds each, on synthetic data that needs context, then
print both validation mIoUs (each seed, mean and spread) and both effective receptive fields
(high-contribution area ratios at t = 20/30/50/99%) side by side. Under 15 minutes on 2 idle
CPU cores.

The data (``make_ade20k_demo(scene='context')``): 320x320 images, each holding a square, a
triangle and a circle of 80-112 px at any rotation, with the same kind of interior for every
class, so that most of an object's pixels can be classified only from its outline, tens of
pixels away.

    python tools/demo/kernel_size_demo.py [--work-dir work_dirs/kernel_size_demo] [--iters N]
        [--seeds 0 1 2]

Writes ``summary.json`` (every number printed) and ``erf.png`` (both ERFs, each the mean over
the seeds' trained backbones) to the work dir.
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tools.demo.demo_driver import DEMO_CONFIGS, choose_threads, phase  # noqa: E402

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
# Sized so that six trainings (two models x three seeds), their validation and ERFs fit in 15
# minutes on 2 idle cores (docs/kernel_size_demo.md has the timings).
DEFAULT_ITERS = 500
DEFAULT_SEEDS = (0, 1, 2)
IMAGE_SIDE = 320  # the data's images; validation and ERF at this size


@dataclass(frozen=True)
class Setting:
    """One of the two models."""
    key: str  # work sub-directory prefix and summary key
    title: str
    config: str


SETTINGS = (
    Setting('small_3x3', '3x3 (3-3-3-3)',
            osp.join(DEMO_CONFIGS, 'upernet_replknet_tiny_3x3_context_demo_ade20k.py')),
    Setting('large', 'large (31-29-27-13 + 5x5)',
            osp.join(DEMO_CONFIGS, 'upernet_replknet_tiny_context_demo_ade20k.py')),
)


@dataclass
class Result:
    """What one training (one model, one seed) gave."""
    title: str
    config: str
    seed: int
    mIoU: float
    aAcc: float
    erf_area_ratio: Dict[str, float]  # 't=20%' -> share of the image
    backbone_params: int
    train_minutes: float
    checkpoint: str


@dataclass
class Spread:
    """One number over the seeds: each seed's value, mean, sample standard deviation, range."""
    values: List[float]
    mean: float
    std: float
    low: float
    high: float

    @classmethod
    def of(cls, values):
        values = [float(v) for v in values]
        if not values:
            raise ValueError('no values to summarise')
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(values, statistics.fmean(values), std, min(values), max(values))


def data_options(root, workers):
    """cfg options pointing the config's datasets at ``root`` (``workers`` training loader
    processes; 0 loads in the main process)."""
    options = {f'{split}_dataloader.dataset.data_root': root
               for split in ('train', 'val', 'test')}
    options.update({'train_dataloader.num_workers': workers,
                    'train_dataloader.persistent_workers': workers > 0})
    return options


def schedule_options(max_iters):
    """The demo schedule over ``max_iters`` iterations, validated once, at the end."""
    warmup = max(1, min(50, max_iters // 10))  # the config's 50, shortened for short runs
    return {'train_cfg.max_iters': max_iters, 'train_cfg.val_interval': max_iters,
            'param_scheduler.0.end': warmup, 'param_scheduler.1.begin': warmup,
            'param_scheduler.1.end': max_iters, 'default_hooks.checkpoint.interval': max_iters}


def erf_images(model, image_dir, count, size):
    """The first ``count`` validation images, normalised as the model's data preprocessor
    does and resized to ``size`` x ``size``: a list of (3, size, size) tensors."""
    import mmcv
    import torch
    paths = sorted(glob.glob(osp.join(image_dir, '*.jpg')))[:count]
    if len(paths) < count:
        raise ValueError(f'--erf-images {count}: only {len(paths)} images in {image_dir}')
    pre = model.data_preprocessor
    images = []
    for path in paths:
        rgb = mmcv.imresize(mmcv.imread(path, channel_order='rgb'), (size, size))
        image = torch.from_numpy(rgb).permute(2, 0, 1).float()
        images.append((image - pre.mean.cpu()) / pre.std.cpu())
    return images


def train_and_measure(setting, seed, work_dir, options, image_dir, erf_count, erf_size):
    """Train ``setting`` with ``seed`` in this process (tools/train.py's runner), read its
    final validation metrics, and measure its backbone's ERF on validation images."""
    from replk_mm.analysis import compute_erf, count_params, high_contribution_area_ratio
    from replk_mm.apis import train_runner
    start = time.time()
    runner = train_runner(setting.config, work_dir=work_dir,
                          cfg_options=dict(options, **{'randomness.seed': seed}))
    model = runner.train()
    minutes = (time.time() - start) / 60
    # The loop validates at its last iteration; mmengine keeps those metrics as val/<name>.
    metrics = {k: runner.message_hub.get_scalar(f'val/{k}').current() for k in ('mIoU', 'aAcc')}
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    print(f'{setting.title}, seed {seed}: mIoU {metrics["mIoU"]:.2f} after {minutes:.1f} min; '
          f'measuring its effective receptive field on {erf_count} validation images at '
          f'{erf_size}x{erf_size}', flush=True)
    erf = compute_erf(model.backbone, erf_images(model, image_dir, erf_count, erf_size))
    ratios = {f't={t:.0%}': float(high_contribution_area_ratio(erf, t)) for t in THRESHOLDS}
    result = Result(title=setting.title, config=osp.relpath(setting.config), seed=seed,
                    mIoU=float(metrics['mIoU']), aAcc=float(metrics['aAcc']),
                    erf_area_ratio=ratios, backbone_params=count_params(model.backbone),
                    train_minutes=round(minutes, 2), checkpoint=checkpoint)
    return result, erf


def aggregate(results):
    """Each model's numbers over its seeds: {'mIoU', 'aAcc', 'train_minutes', 't=20%', ...}
    -> Spread."""
    numbers = {'mIoU': [r.mIoU for r in results], 'aAcc': [r.aAcc for r in results],
               'train_minutes': [r.train_minutes for r in results]}
    for t in results[0].erf_area_ratio:
        numbers[t] = [r.erf_area_ratio[t] for r in results]
    return {name: Spread.of(values) for name, values in numbers.items()}


def summary_lines(small, large):
    """The side-by-side table, as lines; ``small`` and ``large`` are each model's Results (one
    per seed, same seeds in the same order)."""
    width, col = 26, 30
    stats = aggregate(small), aggregate(large)
    lines = [f"{'':{width}}{small[0].title:>{col}}{large[0].title:>{col}}"]

    def row(name, cells):
        lines.append(f'{name:{width}}' + ''.join(f'{c:>{col}}' for c in cells))

    row('seeds', [' / '.join(str(r.seed) for r in rs) for rs in (small, large)])
    row('validation mIoU (%)', [' / '.join(f'{v:.2f}' for v in s['mIoU'].values)
                                for s in stats])
    row('  mean +- std', [f"{s['mIoU'].mean:.2f} +- {s['mIoU'].std:.2f}" for s in stats])
    row('  range', [f"{s['mIoU'].low:.2f} - {s['mIoU'].high:.2f}" for s in stats])
    row('validation aAcc (%), mean', [f"{s['aAcc'].mean:.2f}" for s in stats])
    for t in small[0].erf_area_ratio:
        row(f'ERF area ratio {t}, mean', [f'{s[t].mean:.3f} ({s[t].low:.3f}-{s[t].high:.3f})'
                                          for s in stats])
    row('backbone params', [f'{rs[0].backbone_params:,d}' for rs in (small, large)])
    row('training (min per run)', [f"{s['train_minutes'].mean:.1f}" for s in stats])
    return lines


def run(work_dir, data_root, max_iters=DEFAULT_ITERS, seeds=DEFAULT_SEEDS, threads='auto',
        num_train=300, num_val=50, erf_count=20, erf_size=IMAGE_SIDE, workers=1):
    """All trainings (seed by seed, both models per seed, so that a change of machine load hits
    both alike), the ERFs and the summary; returns (3x3 Results, large Results), one per
    seed."""
    import numpy as np
    import torch

    from replk_mm.analysis import plot_erf
    from replk_mm.datasets.synthetic import make_ade20k_demo
    start = time.time()
    work_dir, data_root = osp.abspath(work_dir), osp.abspath(data_root)
    os.makedirs(work_dir, exist_ok=True)
    total = 2 + len(seeds) * len(SETTINGS)
    phase('kernel-size', 1, total, 'synthetic data that needs context (a square, a triangle '
          'and a circle per image, one interior for all)')
    data = make_ade20k_demo(data_root, num_train=num_train, num_val=num_val,
                            min_side=IMAGE_SIDE, max_side=IMAGE_SIDE, scene='context')
    print(f"{'reused' if data.reused else 'generated'} "
          + ' + '.join(f'{s.images} {s.name}' for s in data.splits) + f' images in {data_root}',
          flush=True)
    image_dir = osp.join(data_root, data.split('validation').image_dir)
    options = dict(data_options(data_root, workers), **schedule_options(max_iters))
    threads, why = choose_threads(threads)
    print(f'compute threads: {why}; load average {os.getloadavg()}', flush=True)
    previous = torch.get_num_threads()
    results = {s.key: [] for s in SETTINGS}
    erfs = {s.key: [] for s in SETTINGS}
    try:
        if threads:
            torch.set_num_threads(threads)
        step = 2
        for seed in seeds:
            for setting in SETTINGS:
                phase('kernel-size', step, total, f'seed {seed}: train the tiny RepLKNet + '
                      f'UperNet with {setting.title} kernels, then measure its ERF')
                result, erf = train_and_measure(
                    setting, seed, osp.join(work_dir, f'{setting.key}_seed{seed}'), options,
                    image_dir, erf_count, erf_size)
                results[setting.key].append(result)
                erfs[setting.key].append(erf)
                step += 1
    finally:
        torch.set_num_threads(previous)

    phase('kernel-size', total, total, 'summary')
    small, large = (results[s.key] for s in SETTINGS)
    # The picture: each model's ERF averaged over its seeds, as the official method averages
    # over images.
    picture = plot_erf([np.mean(erfs[s.key], axis=0) for s in SETTINGS],
                       osp.join(work_dir, 'erf.png'),
                       titles=[f'{s.title}, ' + (f'mean of {len(seeds)} seeds' if len(seeds) > 1
                                                 else f'seed {seeds[0]}') for s in SETTINGS])
    minutes = (time.time() - start) / 60
    load = os.getloadavg()
    with open(osp.join(work_dir, 'summary.json'), 'w') as f:
        json.dump(dict(results={k: [asdict(r) for r in rs] for k, rs in results.items()},
                       spread={s.key: {k: asdict(v) for k, v in aggregate(results[s.key]).items()}
                               for s in SETTINGS},
                       seeds=list(seeds), erf_images=erf_count, erf_size=erf_size,
                       max_iters=max_iters, threads=threads or torch.get_num_threads(),
                       load_average_end=load, total_minutes=round(minutes, 2)), f, indent=2)
    print(f'\n===== [kernel-size demo] 3x3 vs large kernels on data that needs context: same '
          f'data and schedule ({max_iters} iterations), seeds {", ".join(map(str, seeds))} '
          '=====')
    print('\n'.join(summary_lines(small, large)))
    print(f'ERF: area ratio = share of the image, centred on the middle, that holds t of the '
          f'gradient of the last stage\'s centre pixel ({erf_count} images, {erf_size}x'
          f'{erf_size}); larger = wider effective receptive field')
    print(f'wall time {minutes:.1f} min (load average at the end {load[0]:.2f}); ERF picture: '
          f'{picture}; numbers: {osp.join(work_dir, "summary.json")}', flush=True)
    return small, large


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/kernel_size_demo',
                        help='logs, checkpoints, erf.png, summary.json (default: %(default)s)')
    parser.add_argument('--data-root', default='data/demo_ade20k_context',
                        help='synthetic dataset directory (default: %(default)s)')
    parser.add_argument('--iters', type=int, default=DEFAULT_ITERS,
                        help='training iterations of each model and seed (default: '
                        '%(default)s)')
    parser.add_argument('--seeds', type=int, nargs='+', default=list(DEFAULT_SEEDS),
                        help='training seeds, each model is trained once per seed (default: '
                        '%(default)s)')
    parser.add_argument('--threads', default='auto',
                        help="compute threads: N, or 'auto' (one per core; 1 on a busy "
                        'machine) (default: %(default)s)')
    parser.add_argument('--num-train', type=int, default=300, help='synthetic training images')
    parser.add_argument('--num-val', type=int, default=50, help='synthetic validation images')
    parser.add_argument('--erf-images', type=int, default=20,
                        help='validation images the ERF is summed over (default: %(default)s)')
    parser.add_argument('--erf-size', type=int, default=IMAGE_SIDE,
                        help='side the ERF images are resized to (default: %(default)s, the '
                        "data's size)")
    parser.add_argument('--workers', type=int, default=1,
                        help='training data loader processes, 0 = none (default: %(default)s)')
    args = parser.parse_args(argv)
    if args.threads != 'auto':
        if not args.threads.isdigit() or int(args.threads) < 1:
            parser.error(f"--threads must be a positive int or 'auto', got {args.threads!r}")
        args.threads = int(args.threads)
    for name, low in (('iters', 2), ('num_train', 1), ('num_val', 1), ('erf_images', 1),
                      ('erf_size', 32), ('workers', 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds must be distinct, got {args.seeds}')
    if args.erf_images > args.num_val:
        parser.error(f'--erf-images ({args.erf_images}) is more than --num-val '
                     f'({args.num_val}): the ERF is measured on validation images')
    return args


def main(argv=None):
    args = parse_args(argv)
    return run(args.work_dir, args.data_root, max_iters=args.iters, seeds=args.seeds,
               threads=args.threads, num_train=args.num_train, num_val=args.num_val,
               erf_count=args.erf_images, erf_size=args.erf_size, workers=args.workers)


if __name__ == '__main__':
    main()
