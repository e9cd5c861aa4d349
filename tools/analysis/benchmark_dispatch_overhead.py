#!/usr/bin/env python
"""Per-call Python overhead of ``replk_mm.ops`` on a cached call, in microseconds.

Times a tiny depth-wise conv (1x2x4x4, 3x3; oneDNN off, whose tiny-conv set-up costs ~80 us
and would drown the difference) through
``depthwise_conv2d(..., backend=...)`` / ``DepthwiseConv2d`` and through plain
``F.conv2d`` / ``nn.Conv2d``, in interleaved rounds (min over rounds of the mean over a batch of
calls), and prints the difference: what the dispatch wrapper adds to a call whose route is
already cached. Uses only the public API, so it runs against any version of the package, e.g.
the committed one::

    PYTHONPATH=/tmp/replk_before python tools/analysis/benchmark_dispatch_overhead.py

    python tools/analysis/benchmark_dispatch_overhead.py [--rounds 30] [--calls 2000]
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def per_call(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=30)
    parser.add_argument('--calls', type=int, default=2000)
    args = parser.parse_args(argv)

    import replk_mm.ops as ops
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 4)
    w = torch.randn(2, 1, 3, 3)
    xg = x.clone().requires_grad_()
    module = ops.DepthwiseConv2d(2, 3)
    reference = nn.Conv2d(2, 2, 3, padding=1, groups=2, bias=False)

    def fn_call(backend, inp):
        return lambda: ops.depthwise_conv2d(inp, w, None, 1, 1, backend=backend)

    variants = {
        'F.conv2d (no grad)': lambda: F.conv2d(x, w, None, 1, 1, 1, 2),
        "depthwise_conv2d auto (no grad)": fn_call('auto', x),
        "depthwise_conv2d native (no grad)": fn_call('native', x),
        'F.conv2d (input requires grad)': lambda: F.conv2d(xg, w, None, 1, 1, 1, 2),
        "depthwise_conv2d auto (input requires grad)": fn_call('auto', xg),
        'nn.Conv2d module (weight requires grad)': lambda: reference(x),
        'DepthwiseConv2d module, default backend (weight requires grad)': lambda: module(x),
    }
    baseline = {
        "depthwise_conv2d auto (no grad)": 'F.conv2d (no grad)',
        "depthwise_conv2d native (no grad)": 'F.conv2d (no grad)',
        "depthwise_conv2d auto (input requires grad)": 'F.conv2d (input requires grad)',
        'DepthwiseConv2d module, default backend (weight requires grad)':
            'nn.Conv2d module (weight requires grad)',
    }
    with torch.no_grad():
        for fn in list(variants.values())[:3]:
            fn()  # first calls: autotune, route
    for fn in list(variants.values())[3:]:
        fn()
    best = {name: float('inf') for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            if 'no grad' in name:
                with torch.no_grad():
                    t = per_call(fn, args.calls)
            else:
                t = per_call(fn, args.calls)
            best[name] = min(best[name], t)
    print(f'torch {torch.__version__}, replk_mm.ops from {ops.__file__}, 1 thread, oneDNN off, '
          f'x {tuple(x.shape)}, 3x3 kernel, min over {args.rounds} rounds of {args.calls} calls')
    print('| call | us per call | overhead vs PyTorch, us |')
    print('|---|---|---|')
    for name, t in best.items():
        extra = (f'{(t - best[baseline[name]]) * 1e6:.2f}' if name in baseline else '')
        print(f'| {name} | {t * 1e6:.2f} | {extra} |')
    return best


if __name__ == '__main__':
    main()
