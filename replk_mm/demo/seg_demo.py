"""The README's main job: synthetic ADE20K-layout data -> train -> evaluate -> re-parameterize
-> evaluate again -> prediction overlays, all with the real mmseg pipeline, on a CPU.

Training runs through ``tools/train.py`` in a child process (exactly what a user types);
evaluations use ``replk_mm.apis.test_runner``, the function behind ``tools/test.py``.
"""
import glob
import os
import os.path as osp
import sys
import time

from .steps import REPO, evaluate, phase, reparameterize_and_evaluate, run_train_tool

DEMO_CONFIG = osp.join(REPO, 'configs', 'demo', 'upernet_replknet_tiny_demo_ade20k.py')
MIN_EXPECTED_MIOU = 70.0  # percent; what the demo schedule reaches (docs/segmentation.md)


def data_root_options(data_root):
    """cfg options pointing the train/val/test sets of a config at ``data_root``."""
    return {f'{split}_dataloader.dataset.data_root': data_root
            for split in ('train', 'val', 'test')}


def generate_data(root, num_train=300, num_val=50, seed=0):
    from .synthetic_seg import make_ade20k_demo, read_meta
    before = read_meta(root)
    meta = make_ade20k_demo(root, num_train=num_train, num_val=num_val, seed=seed)
    state = 'reused' if before == meta else 'generated'
    print(f'{state} {num_train} training + {num_val} validation images in {root} '
          f'(classes {", ".join(meta["classes"])})', flush=True)
    return root


def choose_threads(threads='auto'):
    """Compute threads for training: an int, or 'auto'.

    'auto' keeps PyTorch's default (one per core) on an idle machine. On a busy one it uses 1:
    two processes each running one thread per core slow each other down far more than the
    parallelism gains (measured here: ~2 s vs ~0.45 s per demo iteration on a loaded 2-core
    machine, against ~0.22 s idle with both threads).
    """
    if threads != 'auto':
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int or 'auto', got {threads!r}")
        return threads, f'{threads} (as requested)'
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else 0.0
    if cores > 1 and load >= cores / 2:
        return 1, (f'1: the machine is busy (load {load:.1f} on {cores} cores), several '
                   'threads per process would make everyone slower (--threads N overrides)')
    return None, f'{cores} (one per core)'


def train(config, work_dir, max_iters=None, cfg_options=None, threads=None,
          python=sys.executable):
    """``python tools/train.py CONFIG --work-dir WORK_DIR``; returns the last checkpoint."""
    command = [python, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir]
    options = dict(cfg_options or {})
    if max_iters:
        warmup = max(1, min(50, max_iters // 10))  # the config's 50, shortened for short runs
        options.update({'train_cfg.max_iters': max_iters,
                        'train_cfg.val_interval': max(max_iters // 2, 1),
                        'param_scheduler.0.end': warmup, 'param_scheduler.1.begin': warmup,
                        'param_scheduler.1.end': max_iters,
                        'default_hooks.checkpoint.interval': max_iters})
    if options:
        command += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    return run_train_tool(command, work_dir, threads)


def write_overlays(config, checkpoint, image_dir, out_dir, count, cfg_options=None):
    from replk_mm.apis.seg_inference import init_segmentor, save_overlay
    model = init_segmentor(config, checkpoint, device='cpu', cfg_options=cfg_options)
    images = sorted(glob.glob(osp.join(image_dir, '*.jpg')))[:count]
    written = []
    for image in images:
        out = osp.join(out_dir, osp.splitext(osp.basename(image))[0] + '_overlay.png')
        save_overlay(model, image, out, min_size=384)
        written.append(out)
    return written


def run(config=DEMO_CONFIG, work_dir='work_dirs/seg_demo', data_root=None, max_iters=None,
        num_overlays=4, num_train=300, num_val=50, threads='auto'):
    """Run every phase; returns a summary dict. Raises if re-parameterization changes mIoU."""
    from replk_mm.apis import load_config

    start = time.time()
    total = 5
    config, work_dir = osp.abspath(config), osp.abspath(work_dir)
    cfg = load_config(config)
    os.makedirs(work_dir, exist_ok=True)
    # The depth-wise conv autotuner's choices, shared by the training process and the
    # evaluations here: each validation image size is timed once, not once per process.
    os.environ.setdefault('REPLK_DW_CONV_CACHE', osp.join(work_dir, 'dw_conv_autotune.json'))
    data_root = osp.abspath(data_root or cfg.train_dataloader.dataset.data_root)
    options = data_root_options(data_root)

    phase('seg', 1, total, 'synthetic ADE20K-layout data')
    generate_data(data_root, num_train, num_val)

    phase('seg', 2, total, 'train RepLKNet (31-29-27-13 kernels, 32-256 channels) + UperNet '
          'with tools/train.py')
    threads, why = choose_threads(threads)
    print(f'compute threads: {why}', flush=True)
    if threads:
        import torch
        torch.set_num_threads(threads)  # for the evaluations in this process
    checkpoint = train(config, work_dir, max_iters, options, threads)
    train_done = time.time()

    phase('seg', 3, total, f'evaluate {osp.basename(checkpoint)} (training form)')
    before = evaluate(config, checkpoint, osp.join(work_dir, 'eval_train_form'), options)

    phase('seg', 4, total, 're-parameterize (merge 5x5 branches and BNs into the large kernels) '
          'and evaluate again')
    deploy_cfg, deploy_ckpt, after = reparameterize_and_evaluate(config, checkpoint, work_dir,
                                                                 options)

    phase('seg', 5, total, 'prediction overlays')
    overlays = write_overlays(deploy_cfg, deploy_ckpt,
                              osp.join(data_root, 'images', 'validation'),
                              osp.join(work_dir, 'overlays'), num_overlays, options)
    for path in overlays:
        print(path)

    summary = dict(miou=before['mIoU'], miou_deploy=after['mIoU'], aacc=before['aAcc'],
                   checkpoint=checkpoint, deploy_checkpoint=deploy_ckpt, overlays=overlays,
                   train_minutes=(train_done - start) / 60,
                   total_minutes=(time.time() - start) / 60)
    print('\n===== [seg demo] summary =====')
    print(f"validation mIoU, training form:          {summary['miou']:.2f}")
    print(f"validation mIoU, re-parameterized model: {summary['miou_deploy']:.2f}")
    print(f"pixel accuracy: {summary['aacc']:.2f}; wall time {summary['total_minutes']:.1f} "
          f"min ({summary['train_minutes']:.1f} min data + training)")
    print(f'checkpoints: {checkpoint}, {deploy_ckpt}; overlays in '
          f"{osp.join(work_dir, 'overlays')}", flush=True)
    if abs(summary['miou'] - summary['miou_deploy']) > 0.05:
        raise RuntimeError(f"re-parameterization changed the mIoU: {summary['miou']:.2f} -> "
                           f"{summary['miou_deploy']:.2f}")
    if summary['miou'] < MIN_EXPECTED_MIOU:
        print(f'WARNING: mIoU {summary["miou"]:.2f} is below the {MIN_EXPECTED_MIOU:.0f} the '
              'demo schedule usually reaches (a heavily loaded machine does not change it; '
              'a changed config or --iters may)', flush=True)
    return summary
