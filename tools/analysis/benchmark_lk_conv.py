#!/usr/bin/env python
"""Benchmark the large-kernel depth-wise conv backends (replk_mm.ops) on RepLKNet-31B shapes.

Sweeps kernel sizes {3, 5, 7, 13, 27, 29, 31} over the four RepLKNet-31B stage shapes at 224
and 512 input (128/256/512/1024 channels at strides 4/8/16/32), batch sizes, forward
(inference) and forward+backward (training), and compares 'auto' with PyTorch's own conv in
NCHW and channels_last. Then times end-to-end steps: a RepLKNet-31B training step at 224
(and the deploy-form forward), and, if mmseg imports, an UperNet-31B training step at 512.

Timing: a warm-up call per variant (two for 'auto', whose first call runs the autotuner),
then interleaved rounds in shuffled order (every variant once per round, so drifts of a shared
machine and cache effects hit all variants alike; up to 30 rounds for cheap calls) and the
minimum over rounds; CUDA is synchronized around every call.

    python tools/analysis/benchmark_lk_conv.py --quick            # a few minutes on 2 cores
    python tools/analysis/benchmark_lk_conv.py                    # full sweep (long on CPU)
    python tools/analysis/benchmark_lk_conv.py --quick --e2e all  # + UperNet-31B step
    python tools/analysis/benchmark_lk_conv.py --tuning-check 3 --threads 1  # the check's cost

Results are printed and written between markers into docs/benchmark_lk_conv.md (``--out``),
raw numbers into docs/benchmark_lk_conv.<mode>.json.
"""
import argparse
import copy
import json
import os
import platform
import random
import re
import sys
import time

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from replk_mm.ops import (  # noqa: E402
    clear_dispatch_cache,
    config,
    cost_model,
    depthwise_conv2d,
    dispatch_cache_info,
    set_default_backend,
)
from replk_mm.ops.backends import auto_candidates  # noqa: E402
from replk_mm.ops.devices import device_class  # noqa: E402
from replk_mm.ops.geometry import crop_geometry  # noqa: E402
from replk_mm.ops.keys import decision_key  # noqa: E402

KERNELS = (3, 5, 7, 13, 27, 29, 31)
STAGE_CHANNELS = (128, 256, 512, 1024)
STAGE_KERNELS = (31, 29, 27, 13)  # RepLKNet-31B's large kernel per stage (small kernel: 5)


def stage_shapes(size):
    return [(i, c, size // s) for i, (c, s) in enumerate(zip(STAGE_CHANNELS, (4, 8, 16, 32)))]


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def bench(fns, device, rounds, budget_s, tuned=()):
    """min-of-rounds seconds per variant, after a warm-up call (two for the ``tuned``
    variants, whose first call runs the autotuner). Interleaved rounds in shuffled order;
    cheap variants get up to 30 rounds (~0.1 s of samples) so that min-of-N outlasts
    preemptions on a shared machine; slow ones stop after ``budget_s`` (but get at least one
    round; a slow warm-up of an untuned variant counts as a sample)."""
    first = {}
    for name, fn in fns.items():
        for _ in range(2 if name in tuned else 1):
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            first[name] = time.perf_counter() - start
    best = {name: (t if t > 0.5 else float('inf')) for name, t in first.items()}
    want = {name: max(rounds, min(30, int(0.1 / max(t, 1e-6)))) for name, t in first.items()}
    order = list(fns)
    shuffle = random.Random(0).shuffle
    for r in range(max(want.values())):
        shuffle(order)  # what ran just before (cache contents) must not favour one variant
        for name in order:
            if r >= want[name] or (r >= 1 and first[name] * (r + 1) > budget_s):
                continue
            sync(device)
            start = time.perf_counter()
            fns[name]()
            sync(device)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def conv_fn(x, w, backend, train, layout):
    """A forward (no_grad) or forward+backward closure; backend 'torch' is plain F.conv2d."""
    if layout == 'nhwc':
        x = x.contiguous(memory_format=torch.channels_last)
    k = w.shape[-1]

    def conv(x, w):
        if backend == 'torch':
            return F.conv2d(x, w, None, 1, k // 2, 1, w.shape[0])
        return depthwise_conv2d(x, w, None, 1, k // 2, backend=backend)

    if not train:
        def fwd():
            with torch.no_grad():
                conv(x, w)
        return fwd
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    g = torch.randn(x.shape, device=x.device, dtype=x.dtype)
    if layout == 'nhwc':
        g = g.contiguous(memory_format=torch.channels_last)

    def fwd_bwd():
        torch.autograd.grad(conv(x, w), (x, w), g)
    return fwd_bwd


def plan_name(n, c, h, k, dtype, device, train):
    geom = crop_geometry(h, h, k, k, k // 2, k // 2)[2]
    x = torch.empty(n, c, h, h, dtype=dtype, device=device)
    phases = ('fwd', 'dx', 'dw') if train else ('fwd', )
    decisions = dispatch_cache_info()['decisions']
    names = [decisions.get(decision_key(p, x, (k, k), (k // 2, k // 2)), '?') for p in phases]
    crop = '' if geom.kh == k else f' (crop {geom.kh})'
    return ('/'.join(names) if len(set(names)) > 1 else names[0]) + crop


def model_agreement(rows, decisions, dtype, device):
    """How often the cost model's untimed choice equals the measured decision, over the
    distinct (shape, phase) decisions of the sweep rows (keys with the current thread count)."""
    seen, agree, differ = set(), 0, []
    for r in rows:
        n, c, h, k = r['batch'], r['channels'], r['hw'], r['k']
        x = torch.empty(n, c, h, h, dtype=dtype, device=device)
        geom = crop_geometry(h, h, k, k, k // 2, k // 2)[2]
        call = cost_model.ConvCall.of(x, geom)
        for phase in (('fwd', 'dx', 'dw') if r['mode'] == 'fwd+bwd' else ('fwd', )):
            key = decision_key(phase, x, (k, k), (k // 2, k // 2))
            if key in seen or key not in decisions:
                continue
            seen.add(key)
            pick = cost_model.cheapest(phase, auto_candidates(device, phase), call, device)
            agree += pick == decisions[key]
            if pick != decisions[key]:
                differ.append(f'{phase} {n}x{c}x{h}x{h} k{k}: measured {decisions[key]}, '
                              f'model {pick}')
    return dict(decisions=len(seen), agree=agree, differ=differ,
                device_class=device_class(device),
                constants_measured=cost_model.has_measured_constants(
                    device, str(dtype).replace('torch.', '')))


def format_agreement(agreement, args):
    return (f"Cost model (device class {agreement['device_class']}, constants "
            f"{'measured' if agreement['constants_measured'] else 'not measured'} for it), "
            f"{time.strftime('%Y-%m-%d %H:%M')}: its untimed choice equals the measured "
            f"decision for {agreement['agree']} of {agreement['decisions']} sweep decisions "
            f"({args.threads[0]} thread(s))"
            + ''.join(f'\n- {d}' for d in agreement['differ']))


def sweep(rows, threads, device, dtype, rounds, budget, extra_backends):
    torch.set_num_threads(threads)
    out = []
    for size, stage, c, h, k, n in rows:
        x = torch.randn(n, c, h, h, device=device, dtype=dtype)
        w = torch.randn(c, 1, k, k, device=device, dtype=dtype) / k
        for train in (False, True):
            fns = {'native': conv_fn(x, w, 'torch', train, 'nchw'),
                   'native_nhwc_input': conv_fn(x, w, 'torch', train, 'nhwc'),
                   'auto': conv_fn(x, w, 'auto', train, 'nchw')}
            for b in extra_backends:
                fns[b] = conv_fn(x, w, b, train, 'nchw')
            t = bench(fns, device, rounds, budget, tuned=('auto', ))
            flops = 2.0 * n * c * h * h * k * k * (3 if train else 1)
            row = dict(input=size, stage=stage + 1, channels=c, hw=h, k=k, batch=n,
                       mode='fwd+bwd' if train else 'fwd', threads=threads,
                       ms={name: v * 1e3 for name, v in t.items()},
                       auto_gflops=flops / t['auto'] / 1e9,
                       vs_native=t['native'] / t['auto'],
                       vs_best_native=min(t['native'], t['native_nhwc_input']) / t['auto'],
                       plan=plan_name(n, c, h, k, dtype, device, train))
            out.append(row)
            print(format_row(row, extra_backends), flush=True)
    return out


HEADER = ('| input | stage | C | HxW | K | B | mode | thr | native NCHW ms | native NHWC ms '
          '| auto ms | auto GFLOP/s | x vs NCHW | x vs best native | auto plan (fwd/dx/dw) |')


def header(extra):
    cols = HEADER.count('|') - 1 + len(extra)
    head = HEADER[:-len(' auto plan (fwd/dx/dw) |')] + ''.join(f' {b} ms |' for b in extra)
    return head + ' auto plan (fwd/dx/dw) |\n' + '|---' * (cols) + '|'


def format_row(r, extra):
    ms = r['ms']
    cells = [r['input'], r['stage'], r['channels'], f"{r['hw']}x{r['hw']}", r['k'], r['batch'],
             r['mode'], r['threads'], f"{ms['native']:.2f}", f"{ms['native_nhwc_input']:.2f}",
             f"{ms['auto']:.2f}", f"{r['auto_gflops']:.1f}", f"{r['vs_native']:.2f}",
             f"{r['vs_best_native']:.2f}"] + [f"{ms[b]:.2f}" for b in extra] + [r['plan']]
    return '| ' + ' | '.join(str(c) for c in cells) + ' |'


# ---------------------------------------------------------------------------- end to end
class Unavailable(Exception):
    """A part of the benchmark needs a package that is not installed."""


def replknet_class():
    """RepLKNet: the torch-only trunk (replk_mm.layers) where it exists, else the OpenMMLab
    backbone; Unavailable (saying what to install) when neither imports."""
    try:
        from replk_mm.layers import RepLKNetTrunk
        return RepLKNetTrunk
    except ImportError as torch_only:
        try:
            from replk_mm.models.backbones.replknet import RepLKNet
            return RepLKNet
        except ImportError as plugin:
            raise Unavailable(
                'the end-to-end steps need RepLKNet from replk_mm.layers (torch only; not in '
                f'this checkout: {torch_only}) or from the OpenMMLab plugin (needs mmengine and '
                f'mmcv: {plugin}); install them with `bash tools/setup_env.sh`') from plugin


def e2e_backbone(threads, rounds, batch=2, size=224, deploy_form=True):
    """RepLKNet-31B + pooled linear classifier: one SGD training step; deploy-form forward."""
    RepLKNet = replknet_class()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    backbone = RepLKNet(arch='31B', out_indices=(3, ))
    head = torch.nn.Linear(1024, 1000)
    model = torch.nn.ModuleDict(dict(backbone=backbone, head=head)).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch, ))

    def step(backend):
        def run():
            with set_default_backend(backend):
                opt.zero_grad(set_to_none=True)
                feat = model['backbone'](x)[-1].mean((2, 3))
                F.cross_entropy(model['head'](feat), y).backward()
                opt.step()
        return run

    train = bench({'native': step('native'), 'auto': step('auto')}, torch.device('cpu'),
                  rounds, budget_s=1e9, tuned=('auto', ))
    rows = [dict(what=f'RepLKNet-31B training step (SGD, CE), {size}x{size}, B={batch}',
                 threads=threads, native_s=train['native'], auto_s=train['auto'])]
    if not deploy_form:
        return rows
    deploy = copy.deepcopy(backbone).eval()
    deploy.switch_to_deploy()

    def infer(backend):
        def run():
            with set_default_backend(backend), torch.no_grad():
                deploy(x)
        return run

    inference = bench({'native': infer('native'), 'auto': infer('auto')}, torch.device('cpu'),
                      rounds, budget_s=1e9, tuned=('auto', ))
    return rows + [dict(what=f'RepLKNet-31B deploy-form forward, {size}x{size}, B={batch}',
                        threads=threads, native_s=inference['native'],
                        auto_s=inference['auto'])]


class large_dw_convs_free:
    """Inside: every depth-wise conv with a kernel >= ``min_kernel`` of ``model`` costs nothing
    (its output is its input, plus the bias), the floor a faster large-kernel conv could reach.
    The weights then get no gradient (the optimizer skips them)."""

    def __init__(self, model, min_kernel=13):
        from replk_mm.ops import DepthwiseConv2d
        self.convs = [m for m in model.modules()
                      if isinstance(m, DepthwiseConv2d) and m.kernel_size[0] >= min_kernel]

    @staticmethod
    def _free(conv):
        def forward(x):
            return x if conv.bias is None else x + conv.bias.view(1, -1, 1, 1)
        return forward

    def __enter__(self):
        for conv in self.convs:
            conv.forward = self._free(conv)  # an instance attribute shadows the method
        return self

    def __exit__(self, *exc):
        for conv in self.convs:
            del conv.forward


def e2e_floor(threads, rounds, batch=2, size=224):
    """RepLKNet-31B training step with replk_mm's convs ('auto') vs PyTorch's ('native') vs
    the large depth-wise convs free (the floor), then one profiled 'auto' step: the large
    depth-wise convs' forward and backward time per stage."""
    from torch.profiler import profile, record_function
    RepLKNet = replknet_class()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch.nn.ModuleDict(dict(backbone=RepLKNet(arch='31B', out_indices=(3, )),
                                     head=torch.nn.Linear(1024, 1000))).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch, ))
    free = large_dw_convs_free(model)

    def one_step():
        opt.zero_grad(set_to_none=True)
        with record_function('forward'):
            feat = model['backbone'](x)[-1].mean((2, 3))
            loss = F.cross_entropy(model['head'](feat), y)
        with record_function('backward'):
            loss.backward()
        opt.step()

    def step(backend, floor=False):
        def run():
            with set_default_backend(backend):
                if floor:
                    with free:
                        one_step()
                else:
                    one_step()
        return run

    t = bench({'native': step('native'), 'auto': step('auto'), 'floor': step('auto', True)},
              torch.device('cpu'), rounds, budget_s=1e9, tuned=('auto', ))
    with set_default_backend('auto'), profile(record_shapes=True) as prof:
        one_step()
    phases = {}
    for e in prof.key_averages(group_by_input_shape=True):
        if 'DepthwiseConvFunction' in e.key or e.key in ('forward', 'backward'):
            shape = e.input_shapes[0] if e.input_shapes and e.input_shapes[0] else []
            phases[(e.key, tuple(shape))] = e.cpu_time_total / 1e6
    return dict(what=f'RepLKNet-31B training step (SGD, CE), {size}x{size}, B={batch}',
                threads=threads, native_s=t['native'], auto_s=t['auto'], floor_s=t['floor'],
                profile={f'{k} {list(s)}': v for (k, s), v in sorted(phases.items())})


STAGE_BLOCKS_31B = (2, 2, 18, 2)  # RepLK blocks per stage of RepLKNet-31B


def useful_taps(size, k):
    """Sum over output positions (one dimension, 'same' padding) of the kernel taps that read
    a pixel inside the map: the work any exact direct conv must do."""
    p = k // 2
    return sum(min(k - 1, size - 1 - y + p) - max(0, p - y) + 1 for y in range(size))


def matmul_gflops(threads, rounds):
    """The fastest fp32 matrix multiply (1024^3) this process runs, the practical compute
    ceiling: PyTorch's ``mm`` (MKL) and oneDNN's matmul (``mkldnn._linear_pointwise``), which
    differ by 2x on some CPUs (MKL takes a slower path on AMD's)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    fns = {'mm (MKL)': lambda: a @ b}
    if torch.backends.mkldnn.is_available():
        fns['oneDNN'] = lambda: torch.ops.mkldnn._linear_pointwise(a, b, None, 'none', [], '')
    with torch.no_grad():
        t = bench(fns, torch.device('cpu'), max(rounds, 5), budget_s=5)
    return {name: 2 * 1024 ** 3 / s / 1e9 for name, s in t.items()}


def stage_costs(threads, rounds, batch=2, size=224):
    """Each RepLKNet-31B stage's large depth-wise conv, phase by phase, on every backend that
    offers the phase: the fastest time, the useful-tap FLOPs and the rate they run at, and
    the direct-conv bound (useful FLOPs at the fastest matmul rate). Summed over the blocks, this is
    the least time today's backends can give the large convs in one training step."""
    from replk_mm.ops.backends import BACKENDS, offers
    torch.set_num_threads(threads)
    rates = matmul_gflops(threads, rounds)
    gemm = max(rates.values())
    rows = []
    for (i, c, h), k, blocks in zip(stage_shapes(size), STAGE_KERNELS, STAGE_BLOCKS_31B):
        r0, c0, geom = crop_geometry(h, h, k, k, k // 2, k // 2)
        x = torch.randn(batch, c, h, h)
        w = torch.randn(c, 1, k, k)[:, :, r0:r0 + geom.kh, c0:c0 + geom.kw].contiguous()
        g = torch.randn(batch, c, geom.ho, geom.wo)
        flops = 2 * batch * c * useful_taps(h, k) ** 2
        calls = {'fwd': lambda impl: lambda: impl.fwd(x, w, None, geom),
                 'dx': lambda impl: lambda: impl.dx(x, g, w, geom),
                 'dw': lambda impl: lambda: impl.dw(x, g, w, geom)}
        phases = {}
        with torch.no_grad():
            for phase, call in calls.items():
                fns = {name: call(impl) for name, impl in BACKENDS.items()
                       if offers(name, phase) and impl.available(torch.device('cpu'))[0]
                       and impl.auto_candidate(torch.device('cpu'), 'nchw')}
                t = bench(fns, torch.device('cpu'), rounds, budget_s=20)
                best = min(t, key=t.get)
                phases[phase] = dict(best=best, best_s=t[best], times=t)
        rows.append(dict(stage=i + 1, shape=f'{batch}x{c}x{h}x{h}', k=k, kept=geom.kh,
                         blocks=blocks, useful_gflop=flops / 1e9, phases=phases,
                         bound_s=flops / (gemm * 1e9)))
    return dict(threads=threads, matmul_gflops=rates, ceiling_gflops=gemm, stages=rows)


def format_stage_costs(costs, floor_row=None):
    rates = ', '.join(f'{name} {rate:.0f}' for name, rate in costs['matmul_gflops'].items())
    lines = [f"Large depth-wise convs of a RepLKNet-31B step, {costs['threads']} thread(s), "
             f'batch 2 at 224; fp32 matmul here, GFLOP/s: {rates}. Per phase: the fastest '
             'backend and its time, the useful-tap GFLOP it must do and the rate achieved; '
             "'bound' = useful GFLOP at the fastest matmul rate (any direct conv's floor).\n",
             '| stage | input, kernel (kept) | blocks | useful GFLOP / phase | fwd ms | dx ms | '
             'dw ms | rate, GFLOP/s | bound ms / phase | stage total ms (x blocks) |',
             '|---|---|---|---|---|---|---|---|---|---|']
    total = 0.0
    for r in costs['stages']:
        ph = r['phases']
        per_block = sum(p['best_s'] for p in ph.values())
        total += per_block * r['blocks']
        rate = 3 * r['useful_gflop'] / per_block
        cells = ' | '.join(f"{ph[p]['best_s'] * 1e3:.1f} ({ph[p]['best']})"
                           for p in ('fwd', 'dx', 'dw'))
        lines.append(f"| {r['stage']} | {r['shape']}, {r['k']}x{r['k']} ({r['kept']}) | "
                     f"{r['blocks']} | {r['useful_gflop']:.3f} | {cells} | {rate:.0f} | "
                     f"{r['bound_s'] * 1e3:.1f} | {per_block * r['blocks'] * 1e3:.0f} |")
    lines.append(f'\nSum over the step: **{total:.3f} s** with the fastest backend of each '
                 'phase.')
    if floor_row is not None:
        floor, auto = floor_row['floor_s'], floor_row['auto_s']
        lines.append(f"Measured in the step: auto - floor = {auto - floor:.3f} s; the goal "
                     f"(auto <= 1.05 x floor) allows {0.05 * floor:.3f} s.")
    costs['total_s'] = total
    return '\n'.join(lines)


def format_floor(rows):
    lines = ['| training step | threads | nn.Conv2d (native) s | replk_mm (auto) s | large DW '
             'convs free s | auto / floor |', '|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['what']} | {r['threads']} | {r['native_s']:.3f} | "
                     f"{r['auto_s']:.3f} | {r['floor_s']:.3f} | "
                     f"{r['auto_s'] / r['floor_s']:.2f}x |")
    for r in rows:
        if 'profile' not in r:
            continue
        lines.append(f"\nProfiled 'auto' step, {r['threads']} thread(s) (CPU time total, s; "
                     'DepthwiseConvFunction = forward, ...Backward = input + weight grad):\n')
        lines += [f'- {k}: {v:.3f}' for k, v in r['profile'].items()]
    return '\n'.join(lines)


def e2e_upernet(threads, rounds, batch=1, size=512, floor=False):
    """UperNet-31B (mmseg UPerHead on the backbone, built directly) training step at 512;
    ``floor``: also with the large depth-wise convs free (see :class:`large_dw_convs_free`)."""
    try:
        from mmseg.models.decode_heads import UPerHead
    except ImportError as e:
        raise Unavailable(f'the UperNet step needs mmsegmentation ({e}); install it with '
                          '`bash tools/setup_env.sh`') from e
    RepLKNet = replknet_class()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    backbone = RepLKNet(arch='31B', drop_path_rate=0.3)
    head = UPerHead(in_channels=[128, 256, 512, 1024], in_index=[0, 1, 2, 3],
                    pool_scales=(1, 2, 3, 6), channels=512, dropout_ratio=0.1,
                    num_classes=150, norm_cfg=dict(type='BN'), align_corners=False)
    model = torch.nn.ModuleDict(dict(backbone=backbone, head=head)).train()
    # B=1 cannot train BN on the 1x1 pyramid-pooling map: keep the head's BN statistics frozen
    for m in head.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 150, (batch, size, size))

    free = large_dw_convs_free(model)

    def one_step():
        opt.zero_grad(set_to_none=True)
        logits = model['head'](model['backbone'](x))
        logits = F.interpolate(logits, size=(size, size), mode='bilinear', align_corners=False)
        F.cross_entropy(logits, y).backward()
        opt.step()

    def step(backend, free_convs=False):
        def run():
            with set_default_backend(backend):
                if free_convs:
                    with free:
                        one_step()
                else:
                    one_step()
        return run

    fns = {'native': step('native'), 'auto': step('auto')}
    if floor:
        fns['floor'] = step('auto', True)
    t = bench(fns, torch.device('cpu'), rounds, budget_s=1e9, tuned=('auto', ))
    row = dict(what=f'UperNet-31B training step (SGD, CE), {size}x{size}, B={batch}',
               threads=threads, native_s=t['native'], auto_s=t['auto'])
    if floor:
        row['floor_s'] = t['floor']
    return [row]


def format_e2e(rows):
    lines = ['| end to end | threads | nn.Conv2d (native) s | auto s | speed-up |',
             '|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['what']} | {r['threads']} | {r['native_s']:.3f} | "
                     f"{r['auto_s']:.3f} | {r['native_s'] / r['auto_s']:.2f}x |")
    return '\n'.join(lines)


# ---------------------------------------------------------------------------- plan and report
def sweep_rows(quick):
    rows = []
    batches_224, batches_512 = ((2, ), (1, )) if quick else ((1, 2, 8), (1, 2))
    for size, batches in ((224, batches_224), (512, batches_512)):
        for stage, c, h in stage_shapes(size):
            # quick: every kernel at 224; at 512 the stage's own large kernel and the small 5x5
            kernels = KERNELS if (size == 224 or not quick) else (STAGE_KERNELS[stage], 5)
            for k in kernels:
                for n in batches:
                    rows.append((size, stage, c, h, k, n))
    return rows


TARGET_ROWS = [(224, 0, 128, 56, 31, 2), (224, 0, 128, 56, 31, 8)]


def write_markdown(path, block, text):
    """Replace (or append) the block between this block's markers; other blocks are kept."""
    start, end = f'<!-- benchmark:{block}:start -->', f'<!-- benchmark:{block}:end -->'
    new_block = f'{start}\n{text}\n{end}'
    old = open(path).read() if os.path.exists(path) else '# Depth-wise conv benchmark\n'
    if start in old and end in old:
        new = re.sub(re.escape(start) + '.*?' + re.escape(end), lambda _: new_block, old,
                     flags=re.S)
    else:
        new = old.rstrip('\n') + '\n\n' + new_block + '\n'
    with open(path, 'w') as f:
        f.write(new)


def machine_line(args):
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if 'model name' in line)
    except (OSError, StopIteration):
        pass
    return (f'{os.cpu_count()}-core CPU ({cpu}, torch CPU capability '
            f'{torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}, '
            f"threads {args.threads}, {time.strftime('%Y-%m-%d %H:%M')}, "
            f"autotune={os.environ.get(config.ENV_AUTOTUNE, 'measure')}, malloc="
            + ('glibc default' if args.system_malloc else 'steady (MALLOC_MMAP_THRESHOLD_, '
               'MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_)'))


# glibc returns freed large blocks to the OS (mmap threshold, heap trimming), so every call
# re-faults its output and temporaries; in a VM that costs up to ~10x on small convs and makes
# timings bimodal. Keeping freed memory in the process (what jemalloc/tcmalloc setups do)
# gives steady-state numbers for every variant alike; --system-malloc measures without it.
STEADY_MALLOC = dict(MALLOC_MMAP_THRESHOLD_='4294967296', MALLOC_TRIM_THRESHOLD_='68719476736',
                     MALLOC_TOP_PAD_='536870912')


def steady_malloc():
    if platform.system() != 'Linux' or all(k in os.environ for k in STEADY_MALLOC):
        return
    os.environ.update(STEADY_MALLOC)  # glibc reads these at start-up: run again with them
    os.execv(sys.executable, [sys.executable] + sys.argv)


def tuning_check_cost(repeats, threads, device, dtype, batch=2, size=224):
    """What checking candidates' answers against PyTorch's conv costs the autotuner: tune the
    four RepLKNet-31B stage convs (training: forward, input and weight gradient) from a clean
    state ``repeats`` times. The check's reference run is native's warm-up, so tuning without
    the check takes ``tune_seconds - check_seconds``."""
    torch.set_num_threads(threads)
    lines = ['| run | tune_seconds | check_seconds | share | measured decisions |',
             '|---|---|---|---|---|']
    for i in range(repeats):
        clear_dispatch_cache()
        with set_default_backend('auto'):
            for _, c, h in stage_shapes(size):
                k = STAGE_KERNELS[STAGE_CHANNELS.index(c)]
                x = torch.randn(batch, c, h, h, device=device, dtype=dtype, requires_grad=True)
                w = torch.randn(c, 1, k, k, device=device, dtype=dtype, requires_grad=True)
                depthwise_conv2d(x, w, None, 1, k // 2).sum().backward()
        info = dispatch_cache_info()
        lines.append(f"| {i + 1} | {info['tune_seconds']:.2f} | {info['check_seconds']:.3f} | "
                     f"{info['check_seconds'] / info['tune_seconds']:.1%} | {info['measured']} |")
    return '\n'.join(lines)


def main():
    if '--system-malloc' not in sys.argv:
        steady_malloc()
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='a few minutes on 2 cores')
    parser.add_argument('--threads', default='1,2', help='comma-separated; the sweep uses the '
                        'first, the target shapes and end-to-end steps use all')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', default='float32', choices=['float32', 'float16', 'bfloat16'])
    parser.add_argument('--rounds', type=int, default=None, help='timing rounds (min-of-N)')
    parser.add_argument('--backends', default=None,
                        help="extra forced backends to time, e.g. 'fft,padded' (full: fft,padded)")
    parser.add_argument('--skip-sweep', action='store_true')
    parser.add_argument('--model-agreement', metavar='JSON', default=None,
                        help="only compare the cost model's untimed choices with the measured "
                        'decisions of an earlier run (its .json), e.g. after changing the '
                        'model; rewrites that block of --out')
    parser.add_argument('--floor', action='store_true',
                        help='RepLKNet-31B training step: native vs auto vs the large '
                             'depth-wise convs free (their floor), with a profile by phase '
                             'and the per-stage cost of each phase against its bound; with '
                             '--e2e upernet (or all) the UperNet-31B step at 512 too')
    parser.add_argument('--e2e', default=None, choices=['none', 'backbone', 'upernet', 'all'],
                        help='end-to-end steps (CPU only): quick default backbone, full all; '
                        'upernet needs mmseg')
    parser.add_argument('--system-malloc', action='store_true',
                        help="keep glibc's default malloc settings (see STEADY_MALLOC)")
    parser.add_argument('--tuning-check', type=int, metavar='N', default=None,
                        help="only time what checking candidates' answers costs the autotuner "
                        '(N clean tunings of the RepLKNet-31B stage convs); writes nothing')
    parser.add_argument('--out', default=os.path.join(REPO, 'docs', 'benchmark_lk_conv.md'))
    args = parser.parse_args()
    args.threads = [int(t) for t in args.threads.split(',')]
    mode = 'quick' if args.quick else 'full'
    e2e = args.e2e or ('backbone' if args.quick else 'all')
    rounds = args.rounds or (2 if args.quick else 5)
    extra = ([b for b in args.backends.split(',') if b] if args.backends is not None
             else ([] if args.quick else ['fft', 'padded']))
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    blocks, raw = {}, {}
    if args.tuning_check:
        print(f'Machine: {machine_line(args)}; batch 2 at 224, {args.dtype}\n')
        print(tuning_check_cost(args.tuning_check, args.threads[0], device, dtype))
        return
    if args.floor:
        rows = [e2e_floor(t, args.rounds or 2) for t in args.threads]
        text = f'Machine: {machine_line(args)}.\n\n' + format_floor(rows)
        for t, row in zip(args.threads, rows):
            row['stage_costs'] = stage_costs(t, args.rounds or 2)
            text += '\n\n' + format_stage_costs(row['stage_costs'], row)
        if e2e in ('upernet', 'all') and args.e2e is not None:
            try:
                up = [e2e_upernet(t, args.rounds or 2, floor=True)[0] for t in args.threads]
                text += '\n\n' + format_floor(up)
                rows += up
            except Unavailable as e:
                print(f'skipping the UperNet step: {e}')
        print(text)
        if args.out:
            write_markdown(args.out, f'{mode}-floor', text)
        return
    if args.model_agreement:
        with open(args.model_agreement) as f:
            earlier = json.load(f)
        torch.set_num_threads(args.threads[0])
        agreement = model_agreement(earlier['sweep'], earlier['decisions'], dtype, device)
        print(format_agreement(agreement, args))
        if args.out:
            write_markdown(args.out, f'{mode}-model', format_agreement(agreement, args))
            earlier['model_agreement'] = agreement
            with open(args.model_agreement, 'w') as f:
                json.dump(earlier, f, indent=1)
        return
    if not args.skip_sweep:
        print(header(extra))
        rows = sweep(sweep_rows(args.quick), args.threads[0], device, dtype, rounds, 20,
                     extra)
        targets = []
        for t in args.threads:
            # B=2 at the first thread count is in the sweep; quick mode: B=8 at one count only
            todo = [r for r in TARGET_ROWS if (r[-1] != 2 if t == args.threads[0]
                                               else r[-1] == 2 or not args.quick)]
            targets += sweep(todo, t, device, dtype, rounds, 20, extra)
        torch.set_num_threads(args.threads[0])
        agreement = model_agreement(rows, dispatch_cache_info()['decisions'], dtype, device)
        blocks['model'] = format_agreement(agreement, args)
        slower = [r for r in rows + targets if r['vs_native'] < 1]
        blocks['sweep'] = '\n\n'.join([
            f'Machine: {machine_line(args)}. Mode: {mode}.',
            f'#### Sweep ({args.threads[0]} thread(s), {args.dtype})\n\n' + header(extra)
            + '\n' + '\n'.join(format_row(r, extra) for r in rows),
            '#### Target shape (RepLKNet-31B stage 1 at 224: 128 x 56x56, 31x31), fwd+bwd\n\n'
            + header(extra) + '\n' + '\n'.join(
                format_row(r, extra) for r in rows + targets
                if (r['input'], r['stage'], r['k']) == (224, 1, 31) and r['mode'] == 'fwd+bwd'),
            f"Rows where 'auto' measured slower than native NCHW: {len(slower)} of "
            f"{len(rows) + len(targets)}"
            + ''.join(f"\n- {format_row(r, extra)}" for r in slower)])
        raw.update(sweep=rows, targets=targets, model_agreement=agreement)
    if device.type == 'cpu' and e2e in ('backbone', 'all'):
        try:
            rows = []
            for t in args.threads:
                rows += e2e_backbone(t, 1 if args.quick else 3,
                                     deploy_form=not args.quick or t == args.threads[0])
            print(format_e2e(rows))
            blocks['e2e'] = f'Machine: {machine_line(args)}.\n\n' + format_e2e(rows)
            raw.update(e2e_backbone=rows)
        except Unavailable as e:
            print(f'skipping the end-to-end backbone step: {e}')
    if device.type == 'cpu' and e2e in ('upernet', 'all'):
        try:
            rows = e2e_upernet(args.threads[0], 1 if args.quick else 2)
            print(format_e2e(rows))
            blocks['upernet'] = (f'Machine: {machine_line(args)}.\n\n'
                                 + format_e2e(rows))
            raw.update(e2e_upernet=rows)
        except Unavailable as e:
            print(f'skipping the UperNet step: {e}')
    raw.update(decisions=dispatch_cache_info()['decisions'])
    if args.out:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        for name, text in blocks.items():
            write_markdown(args.out, f'{mode}-{name}', text)
        json_path = os.path.splitext(args.out)[0] + f'.{mode}.json'
        old = json.load(open(json_path)) if os.path.exists(json_path) else {}
        old.update(raw)  # a partial run (e.g. --skip-sweep) keeps the other sections
        with open(json_path, 'w') as f:
            json.dump(old, f, indent=1)
        print((f'wrote {args.out} ({", ".join(blocks)}) and ' if blocks else 'wrote ')
              + json_path)


if __name__ == '__main__':
    main()
