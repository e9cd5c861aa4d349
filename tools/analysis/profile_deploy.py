"""Where the deploy-form time goes: interleaved img/s of several classifiers and a per-op
profile of each (torch.profiler, self CPU time), PyTorch eager.

    # RepLKNet-31B (deploy form) vs Swin-B vs ConvNeXt-B, batch 8 at 224, 2 threads
    python tools/analysis/profile_deploy.py configs/imagenet/replknet-31B_32xb64_in1k.py \
        mmpretrain::swin_transformer/swin-base_16xb64_in1k.py \
        mmpretrain::convnext/convnext-base_32xb128_in1k.py \
        --labels RepLKNet-31B Swin-B ConvNeXt-B --batch 8 --threads 2 --profile

The models are timed in turns (round r runs every model once), so a machine shared with other
jobs slows them alike: the ratio to the first model is taken per round and its median
printed, with the best and median img/s and the load average before and after.
``--memory-format channels_last`` converts a model and its input (RepLKNet's deploy form
already runs channels_last on CPU). ``--route`` prints how replk_mm ran each depth-wise conv
call signature (runner, kernel taps kept after cropping, backend per phase).
``--onednn-linear`` runs every model's ``nn.Linear`` layers through oneDNN's matmul, as the
replk_mm models' own linears run on CPU, so that a comparison with Swin / ConvNeXt measures
the architectures, not PyTorch's two matmul libraries.
"""
import argparse
import os
import platform
import statistics
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='+', metavar='CONFIG')
    parser.add_argument('--labels', nargs='+', help='model names (default: config names)')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--shape', nargs=2, type=int, default=(224, 224), metavar=('H', 'W'))
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--memory-format', nargs='+', default=['contiguous'],
                        choices=('contiguous', 'channels_last'),
                        help='one per model, or one for all')
    parser.add_argument('--training-form', action='store_true',
                        help='do not re-parameterize (compare with the deploy form)')
    parser.add_argument('--onednn-linear', action='store_true',
                        help="run every nn.Linear through oneDNN's matmul "
                             '(replk_mm.ops.linear_act), as the replk_mm models do on CPU: '
                             "compares the architectures rather than PyTorch's two matmul "
                             'libraries (MKL, which nn.Linear uses, runs at about half '
                             "oneDNN's rate on some AMD CPUs)")
    parser.add_argument('--profile', action='store_true', help='per-op table of each model')
    parser.add_argument('--top', type=int, default=12, help='ops listed per profile')
    parser.add_argument('--route', action='store_true',
                        help="how replk_mm ran each depth-wise conv call signature")
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.configs):
        parser.error('--labels needs one name per config')
    if len(args.memory_format) not in (1, len(args.configs)):
        parser.error('--memory-format needs one value, or one per config')
    return args


def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def build(config, shape, reparam, memory_format, onednn_linear=False):
    import functools

    import torch

    from replk_mm.deploy.models import load_deploy_model
    from replk_mm.ops import linear_act
    graph = load_deploy_model(config, shape=shape, reparam=reparam).graph.eval()
    if memory_format == 'channels_last':
        graph = graph.to(memory_format=torch.channels_last)
    if onednn_linear:
        for module in graph.modules():
            if type(module) is torch.nn.Linear:
                # an instance attribute shadows the class's forward for this module only
                module.forward = functools.partial(linear_act, module)
    return graph


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    labels = args.labels or [os.path.basename(c) for c in args.configs]
    formats = args.memory_format * (len(args.configs) // len(args.memory_format))
    x = torch.randn(args.batch, 3, *args.shape)
    models = []
    for config, label, fmt in zip(args.configs, labels, formats):
        graph = build(config, tuple(args.shape), not args.training_form, fmt,
                      args.onednn_linear)
        xin = x.contiguous(memory_format=torch.channels_last) if fmt == 'channels_last' else x
        with torch.inference_mode():
            graph(xin)  # warm-up (also lets replk_mm's 'auto' decide its routes)
        models.append((label, fmt, graph, xin))
    load_before = os.getloadavg()
    times = {label: [] for label, *_ in models}
    for _ in range(args.rounds):
        for label, _, graph, xin in models:
            with torch.inference_mode():
                start = time.perf_counter()
                graph(xin)
                times[label].append(time.perf_counter() - start)
    load_after = os.getloadavg()
    print(f'# {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, {cpu_model()} (torch CPU '
          f'capability {torch.backends.cpu.get_cpu_capability()}), '
          f'{args.threads} threads, batch {args.batch} at {args.shape[0]}x{args.shape[1]}, '
          f'torch {torch.__version__}, load average {load_before[0]:.1f} before / '
          f'{load_after[0]:.1f} after'
          + (", every nn.Linear through oneDNN's matmul" if args.onednn_linear else ''))
    first = models[0][0]
    # per-round ratios: the models of one round ran back to back, under about the same load
    print(f'| model | memory format | img/s best | img/s median | {first} / model, '
          'median of rounds (range) |')
    print('|---|---|---:|---:|---:|')
    for label, fmt, *_ in models:
        best, median = min(times[label]), statistics.median(times[label])
        ratios = [t / t0 for t, t0 in zip(times[label], times[first])]
        print(f'| {label} | {fmt} | {args.batch / best:.2f} | {args.batch / median:.2f} | '
              f'{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |')
    if args.route:
        from replk_mm.ops.decision_cache import STATE
        print('\nreplk_mm depth-wise conv routes (input shape -> runner, kernel window, plan):')
        for signature, route in STATE.routes().items():
            print(f'  {tuple(signature[1])} {signature[5][2:]}: {route.runner}, '
                  f'window {route.window}, plan {route.plan}')
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        for label, fmt, graph, xin in models:
            with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
                graph(xin)
            print(f'\n## {label} ({fmt}): self CPU time per op, one batch')
            print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=args.top,
                                            max_name_column_width=40))


if __name__ == '__main__':
    main()
