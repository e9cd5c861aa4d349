#!/usr/bin/env python
"""What reproducibility costs: two seeded runs of the segmentation demo in the default mode
(autotuned depth-wise convs) and two with ``randomness.deterministic=True``, interleaved
(default, deterministic, default, deterministic), each a fresh ``tools/train.py`` process,
plus one run with ``REPLK_DW_CONV_AUTOTUNE=model`` and deterministic=False, which makes the
same conv choices as deterministic mode without ``torch.use_deterministic_algorithms``: it
separates what the conv choices cost from what PyTorch's deterministic kernels cost.

Reports the parameter difference between the two runs of each mode after N iterations and the
seconds per iteration of each mode (median over the iterations after the first 5, which hold
the autotuning; the first iteration's time is reported apart).

    python tools/analysis/benchmark_reproducibility.py --iters 20 --json repro.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CONFIG = os.path.join(REPO, 'configs', 'demo', 'upernet_replknet_tiny_demo_ade20k.py')

CONFIG = """
_base_ = {base!r}
data_root = {root!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
train_cfg = dict(type='IterBasedTrainLoop', max_iters={iters}, val_interval={iters})
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={iters}))
log_processor = dict(window_size=1)
randomness = dict(seed=0, deterministic={deterministic})
"""


def ensure_data(root):
    if not os.path.isdir(os.path.join(root, 'images', 'training')):
        subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'dataset_converters',
                                                     'make_demo_data.py'), 'ade20k', root],
                       check=True, cwd=REPO)


def run(config, work_dir, threads, model_only):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS=str(threads))
    env.pop('REPLK_DW_CONV_CACHE', None)  # every run decides afresh
    env.pop('REPLK_DW_CONV_AUTOTUNE', None)
    if model_only:
        env['REPLK_DW_CONV_AUTOTUNE'] = 'model'
    proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir],
                          cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'training failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')


def iteration_times(work_dir):
    import glob
    files = glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(files[0]) as f:
        records = [json.loads(line) for line in f]
    return [r['time'] for r in records if 'time' in r and 'loss' in r]


def weights(work_dir, iters):
    from replk_mm.models.checkpoint import read_checkpoint
    return read_checkpoint(os.path.join(work_dir, f'iter_{iters}.pth'))['state_dict']


def difference(a, b):
    """Over the parameters (BN running statistics and counters left out): ||a - b|| / ||a|| of
    all of them as one vector, the largest absolute difference, and the tensors that differ."""
    buffers = ('running_mean', 'running_var', 'num_batches_tracked')
    names = [k for k in a if a[k].dtype.is_floating_point and not k.endswith(buffers)]
    absolute = {k: (a[k].double() - b[k].double()).abs().max().item() for k in names}
    diff2 = sum(((a[k].double() - b[k].double())**2).sum().item() for k in names)
    norm2 = sum((a[k].double()**2).sum().item() for k in names)
    worst = max(absolute, key=absolute.get)
    return dict(relative_l2=(diff2 / norm2)**0.5, max_abs=absolute[worst], worst_tensor=worst,
                tensors_differing=sum(v > 0 for v in absolute.values()), tensors=len(names))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=DEMO_CONFIG)
    parser.add_argument('--data', default=os.path.join(REPO, 'data', 'demo_ade20k'))
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--json', default=None)
    args = parser.parse_args(argv)
    ensure_data(args.data)
    base = tempfile.mkdtemp(prefix='repro_')
    configs = {}
    for mode, det in (('default', False), ('deterministic', True), ('model', False)):
        configs[mode] = os.path.join(base, f'{mode}.py')
        with open(configs[mode], 'w') as f:
            f.write(CONFIG.format(base=os.path.abspath(args.config),
                                  root=os.path.abspath(args.data), iters=args.iters,
                                  deterministic=det))
    result = dict(config=args.config, iters=args.iters, threads=args.threads, runs={})
    for i in range(2):
        for mode in ('default', 'deterministic', 'model')[:3 - i]:
            work_dir = os.path.join(base, f'{mode}{i}')
            print(f'run {mode} #{i + 1} ...', flush=True)
            run(configs[mode], work_dir, args.threads, model_only=mode == 'model')
            times = iteration_times(work_dir)
            steady = sorted(times[5:])
            result['runs'][f'{mode}{i}'] = dict(
                first_iter_s=times[0], median_s_per_iter=steady[len(steady) // 2],
                total_s=sum(times), work_dir=work_dir)
    for mode in ('default', 'deterministic'):
        result[f'{mode}_weight_difference'] = difference(
            weights(os.path.join(base, f'{mode}0'), args.iters),
            weights(os.path.join(base, f'{mode}1'), args.iters))
        runs = [result['runs'][f'{mode}{i}'] for i in range(2)]
        result[f'{mode}_s_per_iter'] = [r['median_s_per_iter'] for r in runs]
        result[f'{mode}_first_iter_s'] = [r['first_iter_s'] for r in runs]
    result['model_s_per_iter'] = [result['runs']['model0']['median_s_per_iter']]
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
