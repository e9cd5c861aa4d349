"""The one driver both CPU demos run (``tools/demo/seg_demo.py``, ``tools/demo/det_demo.py``).

A :class:`Demo` describes a task (config, data writer, schedule, summary metrics, pictures);
:func:`run_demo` runs its five phases with progress banners:

1. write the synthetic dataset (or reuse it),
2. train with ``tools/train.py`` in a child process (exactly what a user types; its log streams
   to the console),
3. evaluate with ``replk_mm.apis.test_runner`` (what ``tools/test.py`` runs),
4. re-parameterize (``tools/deploy/reparameterize.py``'s function) and evaluate again,
5. draw the deploy model's predictions on a few validation images,

then prints a summary and fails if re-parameterization changed a metric.
"""
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_TOOL = osp.join(REPO, 'tools', 'train.py')
DEMO_CONFIGS = osp.join(REPO, 'configs', 'demo')


@dataclass(frozen=True)
class Metric:
    """A summary metric: its key in the evaluator's results, and how to show and compare it.

    Args:
        key (str): e.g. 'mIoU' or 'coco/bbox_mAP'.
        fmt (str): format spec for the summary table.
        tolerance (float): the most re-parameterization may change it (float rounding only).
        expected (float, optional): what the demo schedule reaches; below it the summary warns.
    """
    key: str
    fmt: str = '.3f'
    tolerance: float = 0.005
    expected: Optional[float] = None


@dataclass(frozen=True)
class Demo:
    """One CPU demo.

    Args:
        task (str): 'seg' or 'det' (banners, messages).
        config (str): the demo config.
        data_title, train_title, draw_title (str): what phases 1, 2 and 5 do (banners).
        pictures_dir (str): the folder in the work dir that phase 5 writes to.
        make_data (callable): ``make_data(root) -> DemoDataset``: writes or reuses the data.
        data_options (callable): ``data_options(root) -> dict``: cfg options pointing the
            config's datasets (and evaluators) at ``root``.
        schedule_options (callable): ``schedule_options(max_iters) -> dict``: cfg options for a
            shorter or longer schedule (warm-up, lr steps, checkpoint interval).
        draw (callable): ``draw(config, checkpoint, images, out_dir, cfg_options) -> [files]``.
        images (callable): ``images(dataset, count) -> [paths]``: validation images to draw.
        metrics (tuple[Metric]): shown in the summary, compared before/after
            re-parameterization.
        train_options (dict): extra cfg options for training only.
    """
    task: str
    config: str
    data_title: str
    train_title: str
    draw_title: str
    pictures_dir: str
    make_data: Callable
    data_options: Callable
    schedule_options: Callable
    draw: Callable
    images: Callable
    metrics: Tuple[Metric, ...]
    train_options: Dict = field(default_factory=dict)


@dataclass
class DemoSummary:
    """What a demo run produced."""
    metrics: Dict[str, float]
    metrics_deploy: Dict[str, float]
    checkpoint: str
    deploy_checkpoint: str
    pictures: List[str]
    data_root: str
    train_minutes: float
    total_minutes: float


def phase(task, step, total, message):
    print(f'\n===== [{task} demo {step}/{total}] {message} =====', flush=True)


def choose_threads(threads='auto'):
    """Compute threads: a positive int, None (PyTorch's default: one per core) or 'auto'.

    'auto' keeps PyTorch's default on an idle machine and uses 1 on a busy one (load average
    >= cores / 2): processes that each run one thread per core slow each other down far more
    than the parallelism gains (measurements in docs/segmentation.md). Returns (threads, why).
    """
    if threads is None:
        return None, f'{os.cpu_count() or 1} (one per core, PyTorch default)'
    if threads != 'auto':
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, None or 'auto', got {threads!r}")
        return threads, f'{threads} (as requested)'
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else 0.0
    if cores > 1 and load >= cores / 2:
        return 1, (f'1: the machine is busy (load {load:.1f} on {cores} cores), several '
                   'threads per process would make everyone slower (--threads N overrides)')
    return None, f'{cores} (one per core)'


def option_text(value):
    """A cfg option value as one argv word (lists as [a,b], no spaces)."""
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(map(str, value)) + ']'
    return str(value)


def train(config, work_dir, cfg_options, threads=None, python=sys.executable):
    """``python tools/train.py CONFIG --work-dir WORK_DIR --cfg-options ...`` in a child
    process (its log streams to the console); returns the last checkpoint it wrote.
    ``threads`` sets OMP_NUM_THREADS / MKL_NUM_THREADS for it."""
    command = [python, TRAIN_TOOL, config, '--work-dir', work_dir]
    if cfg_options:
        command += ['--cfg-options'] + [f'{k}={option_text(v)}' for k, v in cfg_options.items()]
    print('$ ' + ' '.join(command), flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    result = subprocess.run(command, env=env)
    if result.returncode:
        raise RuntimeError(f'training failed (exit status {result.returncode}); see the log '
                           f'above and {work_dir}')
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise RuntimeError(f'training finished without writing {last}')
    with open(last) as f:
        return f.read().strip()


def evaluate(config, checkpoint, work_dir, cfg_options=None):
    """The metrics of ``checkpoint`` on the config's test split, as ``tools/test.py`` computes
    them (mmseg/mmdet print their tables on the way)."""
    from replk_mm.apis import test_runner
    return test_runner(config, checkpoint, work_dir=work_dir, cfg_options=cfg_options).test()


def reparameterize_and_evaluate(config, checkpoint, work_dir, cfg_options=None):
    """Merge the small kernels and BNs into the large kernels, write the deploy-form checkpoint
    and config into ``work_dir`` and evaluate them; returns (config, checkpoint, metrics)."""
    from replk_mm.apis.deploy import reparameterize_checkpoint
    deploy_ckpt = osp.join(work_dir, 'deploy.pth')
    deploy_cfg = osp.join(work_dir, 'deploy_config.py')
    reparameterize_checkpoint(config, checkpoint, deploy_ckpt, deploy_cfg)
    metrics = evaluate(deploy_cfg, deploy_ckpt, osp.join(work_dir, 'eval_deploy_form'),
                       cfg_options)
    return deploy_cfg, deploy_ckpt, metrics


def run_demo(demo, work_dir, data_root, max_iters=None, threads='auto', num_drawn=4,
             extra_options=None):
    """Run the five phases of ``demo``; returns a DemoSummary.

    Args:
        extra_options (dict): cfg options for every phase (e.g. data loader workers).
    Raises:
        RuntimeError: training failed, or re-parameterization changed a metric.
    """
    import torch
    start = time.time()
    total = 5
    config, work_dir, data_root = (osp.abspath(p) for p in (demo.config, work_dir, data_root))
    os.makedirs(work_dir, exist_ok=True)
    # The depth-wise conv autotuner's choices, shared by the training process and the
    # evaluations here: each image size is timed once, not once per process.
    os.environ.setdefault('REPLK_DW_CONV_CACHE', osp.join(work_dir, 'dw_conv_autotune.json'))

    phase(demo.task, 1, total, demo.data_title)
    data = demo.make_data(data_root)
    counts = ' + '.join(f'{s.images} {s.name}' for s in data.splits)
    print(f"{'reused' if data.reused else 'generated'} {counts} images in {data_root} "
          f"(classes {', '.join(data.classes)})", flush=True)
    options = dict(demo.data_options(data_root), **(extra_options or {}))

    phase(demo.task, 2, total, demo.train_title)
    threads, why = choose_threads(threads)
    print(f'compute threads: {why}', flush=True)
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)  # for the evaluations in this process
    try:
        train_options = dict(options, **demo.train_options)
        if max_iters:
            train_options.update(demo.schedule_options(max_iters))
        checkpoint = train(config, work_dir, train_options, threads)
        train_done = time.time()

        phase(demo.task, 3, total, f'evaluate {osp.basename(checkpoint)} (training form)')
        before = evaluate(config, checkpoint, osp.join(work_dir, 'eval_train_form'), options)

        phase(demo.task, 4, total, 're-parameterize (merge 5x5 branches and BNs into the large '
              'kernels) and evaluate again')
        deploy_cfg, deploy_ckpt, after = reparameterize_and_evaluate(config, checkpoint,
                                                                     work_dir, options)

        phase(demo.task, 5, total, demo.draw_title)
        pictures = demo.draw(deploy_cfg, deploy_ckpt, demo.images(data, num_drawn),
                             osp.join(work_dir, demo.pictures_dir), options)
        for path in pictures:
            print(path)
    finally:
        torch.set_num_threads(previous_threads)

    summary = DemoSummary(metrics=before, metrics_deploy=after, checkpoint=checkpoint,
                          deploy_checkpoint=deploy_ckpt, pictures=pictures,
                          data_root=data_root, train_minutes=(train_done - start) / 60,
                          total_minutes=(time.time() - start) / 60)
    print_summary(demo, summary)
    changed = [m.key for m in demo.metrics
               if abs(before[m.key] - after[m.key]) > m.tolerance]
    if changed:
        raise RuntimeError(f're-parameterization changed {changed}: ' + ', '.join(
            f'{before[k]} -> {after[k]}' for k in changed))
    return summary


def print_summary(demo, summary):
    before, after = summary.metrics, summary.metrics_deploy
    width = max(len(m.key) for m in demo.metrics) + 2
    print(f'\n===== [{demo.task} demo] summary (validation set of the synthetic data) =====')
    print(f"{'':{width}} {'training form':>14} {'re-parameterized':>17}")
    for m in demo.metrics:
        print(f'{m.key:{width}} {before[m.key]:>14{m.fmt}} {after[m.key]:>17{m.fmt}}')
    print(f'wall time {summary.total_minutes:.1f} min ({summary.train_minutes:.1f} min data + '
          'training)')
    print(f'checkpoints: {summary.checkpoint}, {summary.deploy_checkpoint}')
    pictures = osp.dirname(summary.pictures[0]) if summary.pictures else '-'
    print(f'pictures: {pictures}', flush=True)
    low = [m for m in demo.metrics if m.expected is not None and before[m.key] < m.expected]
    for m in low:
        print(f'WARNING: {m.key} {before[m.key]:{m.fmt}} is below the {m.expected:{m.fmt}} the '
              'demo schedule reaches (a changed config or a shortened --iters run does that; '
              'a busy machine does not)', flush=True)
