"""The paper's argument on a laptop: train the tiny demo RepLKNet + UperNet twice on the
synthetic ADE20K-layout data, once with 3x3 depth-wise kernels (3-3-3-3, no small branch) and
once with the large kernels (31-29-27-13 + 5x5 re-parameterization branches), then print both
validation mIoUs and both effective receptive fields (high-contribution area ratios at
t = 20/30/50/99%) side by side. Under 15 minutes on 2 CPU cores.

    python tools/demo/kernel_size_demo.py [--work-dir work_dirs/kernel_size_demo] [--iters N]

Writes ``summary.json`` (every number printed) and ``erf.png`` (both ERFs) to the work dir.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tools.demo.demo_driver import DEMO_CONFIGS, choose_threads, phase  # noqa: E402

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
# Half the demo configs' 1200 iterations: two trainings must fit in 15 minutes on 2 cores even
# when a busy machine leaves one thread (docs/kernel_size_demo.md has the timings).
DEFAULT_ITERS = 600


@dataclass(frozen=True)
class Setting:
    """One of the two trainings."""
    key: str  # work sub-directory and summary key
    title: str
    config: str


SETTINGS = (
    Setting('small_3x3', '3x3 (3-3-3-3)',
            osp.join(DEMO_CONFIGS, 'upernet_replknet_tiny_3x3_demo_ade20k.py')),
    Setting('large', 'large (31-29-27-13 + 5x5)',
            osp.join(DEMO_CONFIGS, 'upernet_replknet_tiny_demo_ade20k.py')),
)


@dataclass
class Result:
    """What one training gave."""
    title: str
    config: str
    mIoU: float
    aAcc: float
    erf_area_ratio: Dict[str, float]  # 't=20%' -> share of the image
    backbone_params: int
    train_minutes: float
    checkpoint: str


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


def train_and_measure(setting, work_dir, options, image_dir, erf_count, erf_size):
    """Train ``setting`` in this process (tools/train.py's runner), read its final validation
    metrics, and measure its backbone's ERF on validation images."""
    from replk_mm.analysis import compute_erf, count_params, high_contribution_area_ratio
    from replk_mm.apis import train_runner
    start = time.time()
    runner = train_runner(setting.config, work_dir=work_dir, cfg_options=options)
    model = runner.train()
    minutes = (time.time() - start) / 60
    # The loop validates at its last iteration; mmengine keeps those metrics as val/<name>.
    metrics = {k: runner.message_hub.get_scalar(f'val/{k}').current() for k in ('mIoU', 'aAcc')}
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    print(f'{setting.title}: mIoU {metrics["mIoU"]:.2f} after {minutes:.1f} min; measuring '
          f'its effective receptive field on {erf_count} validation images at '
          f'{erf_size}x{erf_size}', flush=True)
    erf = compute_erf(model.backbone, erf_images(model, image_dir, erf_count, erf_size))
    ratios = {f't={t:.0%}': float(high_contribution_area_ratio(erf, t)) for t in THRESHOLDS}
    result = Result(title=setting.title, config=osp.relpath(setting.config),
                    mIoU=float(metrics['mIoU']), aAcc=float(metrics['aAcc']),
                    erf_area_ratio=ratios, backbone_params=count_params(model.backbone),
                    train_minutes=round(minutes, 2), checkpoint=checkpoint)
    return result, erf


def summary_lines(results):
    """The side-by-side table, as lines."""
    small, large = results
    width = 26
    lines = [f"{'':{width}}{small.title:>22}{large.title:>30}",
             f"{'validation mIoU (%)':{width}}{small.mIoU:>22.2f}{large.mIoU:>30.2f}",
             f"{'validation aAcc (%)':{width}}{small.aAcc:>22.2f}{large.aAcc:>30.2f}"]
    for t in small.erf_area_ratio:
        lines.append(f"{'ERF area ratio ' + t:{width}}{small.erf_area_ratio[t]:>22.3f}"
                     f'{large.erf_area_ratio[t]:>30.3f}')
    lines += [f"{'backbone params':{width}}{small.backbone_params:>22,d}"
              f'{large.backbone_params:>30,d}',
              f"{'training (min)':{width}}{small.train_minutes:>22.1f}"
              f'{large.train_minutes:>30.1f}']
    return lines


def run(work_dir, data_root, max_iters=DEFAULT_ITERS, threads='auto', num_train=300,
        num_val=50, erf_count=20, erf_size=256, workers=1):
    """Both trainings, the ERFs and the summary; returns the two Results (3x3, large)."""
    import torch

    from replk_mm.analysis import plot_erf
    from replk_mm.datasets.synthetic import make_ade20k_demo
    start = time.time()
    work_dir, data_root = osp.abspath(work_dir), osp.abspath(data_root)
    os.makedirs(work_dir, exist_ok=True)
    total = 2 + len(SETTINGS)
    phase('kernel-size', 1, total, 'synthetic ADE20K-layout data (squares, triangles, circles)')
    data = make_ade20k_demo(data_root, num_train=num_train, num_val=num_val)
    print(f"{'reused' if data.reused else 'generated'} "
          + ' + '.join(f'{s.images} {s.name}' for s in data.splits) + f' images in {data_root}',
          flush=True)
    image_dir = osp.join(data_root, data.split('validation').image_dir)
    options = dict(data_options(data_root, workers), **schedule_options(max_iters))
    threads, why = choose_threads(threads)
    print(f'compute threads: {why}', flush=True)
    previous = torch.get_num_threads()
    results, erfs = [], []
    try:
        if threads:
            torch.set_num_threads(threads)
        for step, setting in enumerate(SETTINGS, start=2):
            phase('kernel-size', step, total, f'train the tiny RepLKNet + UperNet with '
                  f'{setting.title} kernels, then measure its ERF')
            result, erf = train_and_measure(setting, osp.join(work_dir, setting.key), options,
                                            image_dir, erf_count, erf_size)
            results.append(result)
            erfs.append(erf)
    finally:
        torch.set_num_threads(previous)

    phase('kernel-size', total, total, 'summary')
    picture = plot_erf(erfs, osp.join(work_dir, 'erf.png'),
                       titles=[r.title for r in results])
    minutes = (time.time() - start) / 60
    with open(osp.join(work_dir, 'summary.json'), 'w') as f:
        json.dump(dict(results={s.key: asdict(r) for s, r in zip(SETTINGS, results)},
                       erf_images=erf_count, erf_size=erf_size, max_iters=max_iters,
                       total_minutes=round(minutes, 2)), f, indent=2)
    print('\n===== [kernel-size demo] 3x3 vs large kernels, same data, schedule and seed '
          '=====')
    print('\n'.join(summary_lines(results)))
    print(f'ERF: area ratio = share of the image, centred on the middle, that holds t of the '
          f'gradient of the last stage\'s centre pixel ({erf_count} images, {erf_size}x'
          f'{erf_size}); larger = wider effective receptive field')
    print(f'wall time {minutes:.1f} min; ERF picture: {picture}; numbers: '
          f'{osp.join(work_dir, "summary.json")}', flush=True)
    return results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/kernel_size_demo',
                        help='logs, checkpoints, erf.png, summary.json (default: %(default)s)')
    parser.add_argument('--data-root', default='data/demo_ade20k',
                        help='synthetic dataset directory (default: %(default)s)')
    parser.add_argument('--iters', type=int, default=DEFAULT_ITERS,
                        help='training iterations of each model (default: %(default)s; the '
                        "demo configs' own schedule is 1200)")
    parser.add_argument('--threads', default='auto',
                        help="compute threads: N, or 'auto' (one per core; 1 on a busy "
                        'machine) (default: %(default)s)')
    parser.add_argument('--num-train', type=int, default=300, help='synthetic training images')
    parser.add_argument('--num-val', type=int, default=50, help='synthetic validation images')
    parser.add_argument('--erf-images', type=int, default=20,
                        help='validation images the ERF is summed over (default: %(default)s)')
    parser.add_argument('--erf-size', type=int, default=256,
                        help='side the ERF images are resized to (default: %(default)s)')
    parser.add_argument('--workers', type=int, default=1,
                        help='training data loader processes, 0 = none (default: %(default)s)')
    args = parser.parse_args(argv)
    if args.threads != 'auto':
        if not args.threads.isdigit() or int(args.threads) < 1:
            parser.error(f"--threads must be a positive int or 'auto', got {args.threads!r}")
        args.threads = int(args.threads)
    for name, low in (('iters', 1), ('num_train', 1), ('num_val', 1), ('erf_images', 1),
                      ('erf_size', 32), ('workers', 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    if args.erf_images > args.num_val:
        parser.error(f'--erf-images ({args.erf_images}) is more than --num-val '
                     f'({args.num_val}): the ERF is measured on validation images')
    return args


def main(argv=None):
    args = parse_args(argv)
    return run(args.work_dir, args.data_root, max_iters=args.iters, threads=args.threads,
               num_train=args.num_train, num_val=args.num_val, erf_count=args.erf_images,
               erf_size=args.erf_size, workers=args.workers)


if __name__ == '__main__':
    main()
