#!/usr/bin/env python
"""The GPU check of the fast depth-wise conv (replk_mm.ops): correctness of every backend
against cuDNN, the paper's Table 1 setting, a RepLKNet-31B training step, and the measured
cost constants of the autotuner.

Needs only Python, torch and Triton plus this repository on ``PYTHONPATH`` (no OpenMMLab, no
network); ``tools/analysis/gpu_check.sh`` sets that up::

    bash tools/analysis/gpu_check.sh OUT_DIR              # one GPU; < 8 min on an H100/H200
    bash tools/analysis/gpu_check.sh OUT_DIR --dry-run    # CPU, tiny sizes, TRITON_INTERPRET=1

Sections (each writes its results as soon as it is done, so a cut-short run keeps them):

1. ``correctness``: native, padded, fft, triton and auto against ``F.conv2d`` (cuDNN) for the
   forward, input gradient and weight gradient; fp32 (TF32 off), bf16, fp16; kernels 3..31, maps
   smaller and larger than the kernel, batch 1 and 4, NCHW and channels_last, and UniRepLKNet-T's
   kernels and map sizes (:data:`UNIREPLKNET_T_CASES`). The error is
   ``max|out - ref| / max|ref|`` with ``ref`` computed in fp64 from the same (rounded) inputs; a
   result passes when it is within :data:`TOLERANCES` or at most 2x cuDNN's own error.
2. ``phases``: one layer's forward / input grad / weight grad per backend on Table 1 shapes (B=16),
   fitted into the cost model's tables (``dw_conv_costs.json``, see the docs).
3. ``table1``: the paper's Table 1 setting: 24 stacked depth-wise layers on (64, 384, R, R),
   R = 16/32/64, kernels 3..31, forward and forward+backward, fp32 and bf16, for PyTorch's conv
   (cuDNN), each backend and auto; the 31x31 / 3x3 ratio and auto vs cuDNN.
4. ``e2e``: a RepLKNet-31B training step (224, batch 64, bf16 autocast) and the re-parameterized
   model's inference, native vs auto, and the autotuner's tuning time.

Outputs in OUT_DIR: ``gpu_check.json`` (everything), ``gpu_check.md`` (tables and targets),
``dw_conv_costs.json`` (cost tables for ``REPLK_DW_CONV_COSTS`` or
``replk_mm/ops/cost_tables.py``); the shell script adds ``gpu_check.log``.
"""
import argparse
import copy
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field

DRY_RUN = '--dry-run' in sys.argv
if DRY_RUN:  # must be set before triton is imported (replk_mm imports it lazily)
    os.environ.setdefault('TRITON_INTERPRET', '1')
# Every decision measured: the check wants the measured choice everywhere, not the untimed
# fallback (the dry run measures a few, then exercises the fallback).
os.environ['REPLK_DW_CONV_TUNE_LIMIT'] = '8' if DRY_RUN else '1000000'
for _var in ('REPLK_DW_CONV_BACKEND', 'REPLK_DW_CONV_AUTOTUNE', 'REPLK_DW_CONV_CACHE',
             'REPLK_DW_CONV_COSTS'):
    os.environ.pop(_var, None)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from replk_mm.ops import (  # noqa: E402
    cost_model,
    depthwise_conv2d,
    dispatch_cache_info,
    set_default_backend,
)
from replk_mm.ops.backends import BACKENDS, offers  # noqa: E402
from replk_mm.ops.devices import device_class, device_tag  # noqa: E402
from replk_mm.ops.geometry import crop_geometry  # noqa: E402

BACKENDS_CHECKED = ('native', 'padded', 'fft', 'triton', 'auto')
# max|out - ref| / max|ref| against an fp64 reference from the same inputs: fp32 without TF32
# is a few 1e-7 for every backend (FFT rounding is global, hence relative to the maximum);
# bf16/fp16 are dominated by rounding the output to 8 / 11 significant bits (2^-8, 2^-11),
# with room for fp32 accumulation order over large kernels and batches.
TOLERANCES = {'float32': 1e-5, 'bfloat16': 1.6e-2, 'float16': 2e-3}
CUDNN_FACTOR = 2.0  # or at most this many times cuDNN's own error on the same inputs
NOISE = 1.10  # "auto not slower than cuDNN": within 10% (timing noise of min-of-N runs)
PAPER_RATIO_31_3 = 4.4  # issue 11's target: 31x31 / 3x3 at R=32 in the paper's Table 1
TIMING_KINDS = ('cudnn', 'native', 'padded', 'fft', 'triton', 'auto')


@dataclass
class Settings:
    device: str
    dtypes: tuple
    kernels: tuple  # correctness
    channels: int  # correctness
    larger_by: tuple  # correctness: (dh, dw) of the maps larger than the kernel
    table_r: tuple
    table_kernels: tuple
    table_batch: int
    table_channels: int
    table_layers: int
    phase_batch: int
    e2e_arch: object
    e2e_batch: int
    e2e_size: int
    timing_dtypes: tuple  # phases and Table 1
    target_s: float  # seconds of samples per timed variant
    max_reps: int  # timed runs per variant at most (after a warm-up)
    budget_s: dict = field(default_factory=dict)  # per section
    # correctness: (kernel, map side) cases of UniRepLKNet (replk_mm.layers.unireplknet)
    unireplknet_cases: tuple = ()


# UniRepLKNet-T at 224x224 (official unireplknet.py): 13x13 Dilated Reparam Blocks on 28, 14
# and 7 pixel maps (stages 1-3), 3x3 blocks on 56. Its dilated branches (5x5; 7x7, 3x3, 3x3,
# 3x3 dilated 2, 3, 4, 5) run as dilated nn.Conv2d while training and are one 13x13 kernel once
# merged; their dense equivalents (5, 13, 7, 9, 11) are checked on the 14-pixel maps.
UNIREPLKNET_T_CASES = ((13, 28), (13, 14), (13, 7), (3, 56), (5, 14), (7, 14), (9, 14), (11, 14))

FULL = Settings(
    device='cuda', dtypes=('float32', 'bfloat16', 'float16'), kernels=tuple(range(3, 32, 2)),
    channels=8, larger_by=(5, 9), table_r=(32, 16, 64),
    table_kernels=(3, 7, 13, 17, 21, 27, 29, 31), table_batch=64, table_channels=384,
    table_layers=24, phase_batch=16, e2e_arch='31B',
    e2e_batch=64, e2e_size=224, timing_dtypes=('float32', 'bfloat16'), target_s=0.15,
    max_reps=3, budget_s=dict(correctness=50, phases=60, table1=200, e2e=90),
    unireplknet_cases=UNIREPLKNET_T_CASES)
# The dry run exercises every code path on the CPU with Triton interpreted (slow: tiny sizes);
# its numbers mean nothing.
DRY = Settings(
    device='cpu', dtypes=('float32', 'bfloat16'), kernels=(3, 5), channels=2, larger_by=(1, 3),
    table_r=(4, ),
    table_kernels=(3, 5), table_batch=1, table_channels=2, table_layers=2, phase_batch=1,
    e2e_arch=dict(large_kernel_sizes=[7, 5, 5, 3], layers=[1, 1, 1, 1], channels=[4, 4, 4, 4],
                  small_kernel=None),
    e2e_batch=2, e2e_size=32, timing_dtypes=('float32', ), target_s=0.001, max_reps=1,
    budget_s=dict(correctness=300, phases=300, table1=300, e2e=300))  # never cut short


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


SLOW_S = 0.5  # a call this slow is timed once after its warm-up, not min-of-N


def min_time(fn, device, target_s, max_reps):
    """Warm-up, then the minimum of runs until ``target_s`` of samples (at least one)."""
    first = timed(fn, device)
    if first > SLOW_S:
        return timed(fn, device), first
    best, spent, reps = float('inf'), 0.0, 0
    while reps < max_reps and (reps == 0 or spent < target_s):
        t = timed(fn, device)
        best, spent, reps = min(best, t), spent + t, reps + 1
    return best, first


class Deadline:

    def __init__(self, seconds):
        self.end = time.perf_counter() + seconds

    def left(self):
        return self.end - time.perf_counter()

    def passed(self):
        return self.left() <= 0


# ---------------------------------------------------------------------------- correctness
@dataclass
class Case:
    k: int
    n: int
    h: int
    w: int
    channels_last: bool


def correctness_cases(s):
    cases = []
    for i, k in enumerate(s.kernels):
        small = (max(1, k // 3), max(2, k // 2 + 1))  # smaller than the kernel (cropped)
        large = (k + s.larger_by[0], k + s.larger_by[1])
        for j, (h, w) in enumerate((small, large)):
            cases.append(Case(k, 1 + 3 * ((i + j) % 2), h, w, (i + j) % 2 == 1))
    for i, (k, side) in enumerate(s.unireplknet_cases):
        cases.append(Case(k, 1 + 3 * (i % 2), side, side, i % 2 == 1))
    return cases


def _grads(fn, x, w, g):
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    out = fn(x, w)
    dx, dw = torch.autograd.grad(out, (x, w), g)
    return out.detach(), dx, dw


def rel_err(out, ref):
    return ((out.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def check_correctness(s, device, deadline):
    rows, failures = [], []
    gen = torch.Generator(device='cpu').manual_seed(0)
    for case in correctness_cases(s):
        if deadline.passed():
            failures.append(dict(skipped='time budget spent', from_case=asdict(case)))
            break
        c, k = s.channels, case.k
        pad = k // 2
        x = torch.randn(case.n, c, case.h, case.w, generator=gen, dtype=torch.float64)
        w = torch.randn(c, 1, k, k, generator=gen, dtype=torch.float64) / k
        g = torch.randn(case.n, c, case.h, case.w, generator=gen, dtype=torch.float64)
        for dtype_name in s.dtypes:
            dtype = getattr(torch, dtype_name)
            xd, wd, gd = (t.to(device=device, dtype=dtype) for t in (x, w, g))
            if case.channels_last:
                xd = xd.contiguous(memory_format=torch.channels_last)
                gd = gd.contiguous(memory_format=torch.channels_last)
            ref = _grads(lambda a, b: F.conv2d(a, b, None, 1, pad, 1, c),
                         xd.double(), wd.double(), gd.double())
            cudnn = _grads(lambda a, b: F.conv2d(a, b, None, 1, pad, 1, c), xd, wd, gd)
            cudnn_err = [rel_err(o, r) for o, r in zip(cudnn, ref)]
            for backend in BACKENDS_CHECKED:
                row = dict(asdict(case), dtype=dtype_name, backend=backend,
                           cudnn_err=dict(zip(('fwd', 'dx', 'dw'), cudnn_err)))
                try:
                    out = _grads(lambda a, b: depthwise_conv2d(a, b, None, 1, pad,
                                                               backend=backend), xd, wd, gd)
                except Exception as e:  # a failing backend is a result, not the end of the run
                    row.update(error=f'{type(e).__name__}: {e}', ok=False)
                    rows.append(row)
                    failures.append(row)
                    continue
                errs = [rel_err(o, r) for o, r in zip(out, ref)]
                layout_ok = (not case.channels_last or min(case.h, case.w) == 1
                             or out[0].is_contiguous(memory_format=torch.channels_last))
                ok = [e <= max(TOLERANCES[dtype_name], CUDNN_FACTOR * ce)
                      for e, ce in zip(errs, cudnn_err)]
                row.update(err=dict(zip(('fwd', 'dx', 'dw'), errs)),
                           dtype_ok=all(o.dtype == dtype for o in out), layout_ok=layout_ok,
                           ok=all(ok) and layout_ok and all(o.dtype == dtype for o in out))
                rows.append(row)
                if not row['ok']:
                    failures.append(row)
    summary = {}
    for row in rows:
        if 'err' not in row:
            continue
        key = f"{row['backend']}/{row['dtype']}"
        entry = summary.setdefault(key, dict(backend=row['backend'], dtype=row['dtype'],
                                             cases=0, failed=0, max_err={}, max_cudnn_err={}))
        entry['cases'] += 1
        entry['failed'] += not row['ok']
        for phase in ('fwd', 'dx', 'dw'):
            entry['max_err'][phase] = max(entry['max_err'].get(phase, 0), row['err'][phase])
            entry['max_cudnn_err'][phase] = max(entry['max_cudnn_err'].get(phase, 0),
                                                row['cudnn_err'][phase])
    return dict(rows=rows, failures=failures, summary=list(summary.values()),
                tolerances=TOLERANCES, cudnn_factor=CUDNN_FACTOR)


# ---------------------------------------------------------------------------- phase timings
def phase_timings(s, device, deadline):
    """One layer's phases per backend (forced), for the cost-model fit."""
    rows = []
    names = [n for n in ('native', 'padded', 'fft', 'triton', 'native_nhwc')
             if BACKENDS[n].available(device)[0]]
    for dtype_name in s.timing_dtypes:  # fp16 uses bf16's table
        dtype = getattr(torch, dtype_name)
        for r in s.table_r:
            for k in s.table_kernels:
                if deadline.passed():
                    return dict(rows=rows, cut_short=True)
                row0, col0, geom = crop_geometry(r, r, k, k, k // 2, k // 2)
                x = torch.randn(s.phase_batch, s.table_channels, r, r, device=device,
                                dtype=dtype)
                w = (torch.randn(s.table_channels, 1, k, k, device=device, dtype=dtype)
                     / k)[:, :, row0:row0 + geom.kh, col0:col0 + geom.kw].contiguous()
                g = torch.randn(s.phase_batch, s.table_channels, geom.ho, geom.wo,
                                device=device, dtype=dtype)
                for name in names:
                    backend = BACKENDS[name]
                    for phase in ('fwd', 'dx', 'dw'):
                        if not offers(name, phase):
                            continue
                        fn = {'fwd': lambda: backend.fwd(x, w, None, geom),
                              'dx': lambda: backend.dx(x, g, w, geom),
                              'dw': lambda: backend.dw(x, g, w, geom)}[phase]
                        try:
                            with torch.no_grad():
                                t, _ = min_time(fn, device, s.target_s / 3,
                                                min(3, s.max_reps))
                        except Exception as e:
                            rows.append(dict(dtype=dtype_name, r=r, k=k, backend=name,
                                             phase=phase, error=f'{type(e).__name__}: {e}'))
                            continue
                        rows.append(dict(dtype=dtype_name, r=r, k=k, backend=name, phase=phase,
                                         n=s.phase_batch, c=s.table_channels, seconds=t))
    return dict(rows=rows, cut_short=False)


def _fit_line(points):
    """Least-squares ``t = a + b u`` with a, b >= 0 (plain Python: no numpy on the device)."""
    n = len(points)
    su = sum(u for u, _ in points)
    st = sum(t for _, t in points)
    suu = sum(u * u for u, _ in points)
    sut = sum(u * t for u, t in points)
    det = n * suu - su * su
    if n >= 2 and det > 0:
        b = (n * sut - su * st) / det
        a = (st - b * su) / n
        if a >= 0 and b >= 0:
            return [a, b]
    if suu > 0:  # through the origin
        b = max(0.0, sut / suu)
        if b > 0:
            return [0.0, b]
    return [st / n, 0.0]


def fit_cost_tables(phase_rows, device):
    """Cost-model tables (see replk_mm.ops.cost_model) from measured phase timings."""
    groups = {}
    for row in phase_rows:
        if 'seconds' not in row:
            continue
        geom = crop_geometry(row['r'], row['r'], row['k'], row['k'], row['k'] // 2,
                             row['k'] // 2)[2]
        call = cost_model.ConvCall(row['n'], row['c'], row['dtype'], 4, 'nchw', device.type,
                                   geom)
        units = cost_model.work_units(row['phase'], row['backend'], call)
        key = (row['dtype'], row['backend'], row['phase'], cost_model.kernel_class(geom))
        groups.setdefault(key, []).append((units, row['seconds']))
    tables = {}
    for (dtype, backend, phase, kclass), points in sorted(groups.items()):
        tables.setdefault(dtype, {}).setdefault(backend, {}).setdefault(phase, {})[kclass] = \
            _fit_line(points)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor()
    doc = dict(version=cost_model.TABLE_VERSION, classes={device_class(device): dict(
        measured_on=f'{name}, torch {torch.__version__}, {time.strftime("%Y-%m-%d")}',
        tables=tables)})
    cost_model.check_tables(doc, 'fitted tables')
    return doc


def model_agreement(phase_rows, tables_doc, device):
    """How often the fitted model picks the measured fastest backend of a phase."""
    table_by_dtype = next(iter(tables_doc['classes'].values()))['tables']
    best, agree, extra = {}, 0, []
    for row in phase_rows:
        if 'seconds' in row:
            best.setdefault((row['dtype'], row['r'], row['k'], row['phase'], row['n'],
                             row['c']), {})[row['backend']] = row['seconds']
    for (dtype, r, k, phase, n, c), times in best.items():
        geom = crop_geometry(r, r, k, k, k // 2, k // 2)[2]
        call = cost_model.ConvCall(n, c, dtype, 4, 'nchw', device.type, geom)
        table = table_by_dtype.get(dtype, {})
        pick = min(times, key=lambda b: cost_model.table_cost(table, phase, b, call))
        fastest = min(times, key=times.get)
        agree += pick == fastest
        extra.append(times[pick] / times[fastest])
    n = len(best)
    return dict(pairs=n, agree=agree, mean_cost_of_pick=sum(extra) / n if n else None)


# ---------------------------------------------------------------------------- Table 1
def stacked(kind, x, weights, train, g):
    """24 (or s.table_layers) depth-wise layers; kind 'cudnn' is plain F.conv2d."""
    pad = weights[0].shape[-1] // 2
    c = x.shape[1]

    def layer(y, w):
        if kind == 'cudnn':
            return F.conv2d(y, w, None, 1, pad, 1, c)
        return depthwise_conv2d(y, w, None, 1, pad, backend=kind)

    if not train:
        def run():
            with torch.no_grad():
                y = x
                for w in weights:
                    y = layer(y, w)
        return run
    xg = x.detach().requires_grad_()

    def run_train():
        y = xg
        for w in weights:
            y = layer(y, w)
        torch.autograd.grad(y, [xg] + weights, g)
    return run_train


def time_stack(kind, s, x, weights, train, g, device):
    """Seconds of the full stack; slow variants time fewer layers and scale (identical layers
    of one shape cost the same each), which the row records as ``layers_timed``."""
    one = stacked(kind, x, weights[:1], train, g)
    first = timed(one, device)  # warm-up (and, for auto, the tuning of this shape)
    t1 = timed(one, device)
    if first > SLOW_S or t1 * len(weights) > 4 * s.target_s:
        return t1 * len(weights), 1  # slow: one layer, once (the budget goes to other rows)
    t1 = min(first, t1)
    layers = max(1, min(len(weights), int(s.target_s / max(t1, 1e-9))))
    t, _ = min_time(stacked(kind, x, weights[:layers], train, g), device, s.target_s,
                    s.max_reps)
    return t * len(weights) / layers, layers


def table1(s, device, deadline):
    rows = []
    kinds = [k for k in TIMING_KINDS
             if k in ('cudnn', 'auto') or BACKENDS[k].available(device)[0]]
    for r in s.table_r:  # R=32 (the targets) first
        for train in (True, False):
            for dtype_name in s.timing_dtypes:
                dtype = getattr(torch, dtype_name)
                for k in s.table_kernels:
                    if deadline.passed():
                        return dict(rows=rows, cut_short=True, kinds=kinds)
                    x = torch.randn(s.table_batch, s.table_channels, r, r, device=device,
                                    dtype=dtype)
                    weights = [(torch.randn(s.table_channels, 1, k, k, device=device,
                                            dtype=dtype) / k).requires_grad_(train)
                               for _ in range(s.table_layers)]
                    g = torch.randn_like(x) if train else None
                    row = dict(r=r, k=k, mode='fwd+bwd' if train else 'fwd', dtype=dtype_name,
                               ms={}, layers_timed={})
                    before = dispatch_cache_info()
                    for kind in kinds:
                        try:
                            t, layers = time_stack(kind, s, x, weights, train, g, device)
                            row['ms'][kind] = t * 1e3
                            row['layers_timed'][kind] = layers
                        except Exception as e:
                            row.setdefault('errors', {})[kind] = f'{type(e).__name__}: {e}'
                            if device.type == 'cuda':
                                torch.cuda.empty_cache()
                    after = dispatch_cache_info()
                    row['auto_tune_s'] = after['tune_seconds'] - before['tune_seconds']
                    ms = row['ms']
                    if 'auto' in ms and 'cudnn' in ms:
                        row['cudnn_over_auto'] = ms['cudnn'] / ms['auto']
                    rows.append(row)
                    print(format_table1_row(row, kinds), flush=True)
                    del x, weights, g
    return dict(rows=rows, cut_short=False, kinds=kinds)


def format_table1_row(row, kinds):
    cells = [row['r'], row['k'], row['mode'], row['dtype']]
    cells += [f"{row['ms'][k]:.2f}" if k in row['ms'] else '-' for k in kinds]
    cells.append(f"{row['cudnn_over_auto']:.2f}x" if 'cudnn_over_auto' in row else '-')
    return '| ' + ' | '.join(str(c) for c in cells) + ' |'


def table1_targets(t1, s):
    rows = t1.get('rows', [])
    slower = [r for r in rows if 'cudnn_over_auto' in r and r['cudnn_over_auto'] < 1 / NOISE]
    k_big, k_small = max(s.table_kernels), min(s.table_kernels)
    r_target = 32 if 32 in s.table_r else s.table_r[0]
    speedup, ratios = {}, {}
    for r in rows:
        if r['r'] != r_target:
            continue
        if r['k'] == k_big and r['mode'] == 'fwd+bwd' and 'cudnn_over_auto' in r:
            speedup[r['dtype']] = r['cudnn_over_auto']
    for mode in ('fwd', 'fwd+bwd'):
        for dtype in s.timing_dtypes:
            by_k = {r['k']: r['ms'] for r in rows
                    if (r['r'], r['mode'], r['dtype']) == (r_target, mode, dtype)}
            if k_big in by_k and k_small in by_k:
                ratios[f'{mode}/{dtype}'] = {
                    kind: by_k[k_big][kind] / by_k[k_small][kind]
                    for kind in by_k[k_big] if kind in by_k[k_small]}
    return dict(
        auto_slower_than_cudnn=[dict(r=r['r'], k=r['k'], mode=r['mode'], dtype=r['dtype'],
                                     cudnn_over_auto=r['cudnn_over_auto']) for r in slower],
        auto_never_slower=not slower and bool(rows),
        r=r_target, big_kernel=k_big, small_kernel=k_small,
        fwd_bwd_speedup_vs_cudnn=speedup,
        speedup_target_met=bool(speedup) and min(speedup.values()) >= 3,
        ratio_big_over_small=ratios,
        ratio_target=PAPER_RATIO_31_3,
        ratio_target_met={key: v.get('auto', float('inf')) <= PAPER_RATIO_31_3
                          for key, v in ratios.items()})


# ---------------------------------------------------------------------------- end to end
def replknet_trunk(arch):
    try:
        from replk_mm.layers import RepLKNetTrunk
    except ImportError as e:
        raise RuntimeError(f'the end-to-end step needs the torch-only RepLKNet trunk '
                           f'(replk_mm.layers.RepLKNetTrunk), which does not import: {e}')
    return RepLKNetTrunk(arch=arch, out_indices=(3, ))


def end_to_end(s, device, deadline):
    torch.manual_seed(0)
    trunk = replknet_trunk(s.e2e_arch).to(device)
    width = trunk.arch['channels'][-1]
    head = torch.nn.Linear(width, 1000).to(device)
    model = torch.nn.ModuleDict(dict(backbone=trunk, head=head)).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    x = torch.randn(s.e2e_batch, 3, s.e2e_size, s.e2e_size, device=device)
    y = torch.randint(0, 1000, (s.e2e_batch, ), device=device)
    amp_dtype = torch.bfloat16

    def step(backend):
        def run():
            with set_default_backend(backend), torch.autocast(device.type, dtype=amp_dtype):
                opt.zero_grad(set_to_none=True)
                feat = model['backbone'](x)[-1].float().mean((2, 3))
                loss = F.cross_entropy(model['head'](feat), y)
            loss.backward()
            opt.step()
        return run

    result = dict(arch=s.e2e_arch if isinstance(s.e2e_arch, str) else 'tiny (dry run)',
                  batch=s.e2e_batch, size=s.e2e_size, autocast='bfloat16')
    result['native_first_step_s'] = timed(step('native'), device)
    before = dispatch_cache_info()
    result['auto_first_step_s'] = timed(step('auto'), device)  # tunes every new shape
    info = dispatch_cache_info()
    result['auto_tune_s'] = info['tune_seconds'] - before['tune_seconds']
    result['auto_measured_decisions'] = info['measured'] - before['measured']
    best = {'native': float('inf'), 'auto': float('inf')}
    for rep in range(s.max_reps):
        if rep and deadline.passed():
            break
        for backend in ('native', 'auto'):
            best[backend] = min(best[backend], timed(step(backend), device))
    result['train_step_s'] = best
    result['train_speedup'] = best['native'] / best['auto']

    deploy = copy.deepcopy(trunk).eval()
    deploy.switch_to_deploy()

    def infer(backend):
        def run():
            with set_default_backend(backend), torch.no_grad(), torch.autocast(
                    device.type, dtype=amp_dtype):
                deploy(x)
        return run

    before = dispatch_cache_info()['tune_seconds']
    timed(infer('native'), device)
    timed(infer('auto'), device)
    result['deploy_auto_tune_s'] = dispatch_cache_info()['tune_seconds'] - before
    best = {'native': float('inf'), 'auto': float('inf')}
    for rep in range(s.max_reps):
        if rep and deadline.passed():
            break
        for backend in ('native', 'auto'):
            best[backend] = min(best[backend], timed(infer(backend), device))
    result['deploy_inference_s'] = best
    result['deploy_speedup'] = best['native'] / best['auto']
    result['auto_decisions'] = dispatch_cache_info()['decisions']
    return result


# ---------------------------------------------------------------------------- report
def environment(device):
    env = dict(python=platform.python_version(), torch=torch.__version__,
               cuda=torch.version.cuda, device=str(device), device_class=device_class(device),
               device_tag=device_tag(device),
               triton_interpret=os.environ.get('TRITON_INTERPRET'))
    try:
        import triton
        env['triton'] = triton.__version__
    except ImportError as e:
        env['triton'] = f'not importable: {e}'
    if device.type == 'cuda':
        env.update(gpu=torch.cuda.get_device_name(device),
                   capability='.'.join(map(str, torch.cuda.get_device_capability(device))),
                   cudnn=torch.backends.cudnn.version(),
                   memory_gib=round(torch.cuda.get_device_properties(device).total_memory
                                    / 2**30, 1))
    return env


def markdown(results, s):
    lines = [f"# GPU check of replk_mm.ops ({'dry run' if results['dry_run'] else 'full'})", '']
    env = results['environment']
    lines += ['| ' + ' | '.join(env) + ' |', '|---' * len(env) + '|',
              '| ' + ' | '.join(str(v) for v in env.values()) + ' |', '']
    lines.append(f"Total wall time: {results.get('wall_s', 0):.0f} s. Sections: "
                 + ', '.join(f"{k} {v:.0f} s" for k, v in results.get('section_s', {}).items()))
    corr = results.get('correctness')
    if corr:
        lines += ['', '## Correctness against cuDNN (max |out - ref| / max |ref|, ref in fp64)',
                  '', f"Tolerances: {TOLERANCES}, or at most {CUDNN_FACTOR}x cuDNN's own error.",
                  '', '| backend | dtype | cases | failed | fwd | dx | dw | cuDNN fwd | cuDNN dx '
                  '| cuDNN dw |', '|---|---|---|---|---|---|---|---|---|---|']
        for e in corr['summary']:
            lines.append('| ' + ' | '.join(
                [e['backend'], e['dtype'], str(e['cases']), str(e['failed'])]
                + [f"{e['max_err'][p]:.1e}" for p in ('fwd', 'dx', 'dw')]
                + [f"{e['max_cudnn_err'][p]:.1e}" for p in ('fwd', 'dx', 'dw')]) + ' |')
        lines += ['', f"Failures: {len(corr['failures'])}"]
        for f in corr['failures'][:20]:
            lines.append(f'- {json.dumps(f)}')
    t1 = results.get('table1')
    if t1:
        kinds = t1['kinds']
        lines += ['', f'## Table 1 setting: {s.table_layers} stacked depth-wise layers on '
                  f'({s.table_batch}, {s.table_channels}, R, R), ms', '',
                  '| R | K | mode | dtype | ' + ' | '.join(
                      'PyTorch (cuDNN)' if k == 'cudnn' else k for k in kinds)
                  + ' | cuDNN / auto |', '|---' * (len(kinds) + 5) + '|']
        lines += [format_table1_row(r, kinds) for r in t1['rows']]
        if t1.get('cut_short'):
            lines.append('\n(cut short: time budget spent)')
        tg = results.get('targets', {})
        if tg:
            lines += ['', '## Targets', '',
                      f"- auto never slower than cuDNN beyond {int((NOISE - 1) * 100)}% noise: "
                      f"{'met' if tg['auto_never_slower'] else 'NOT met'}"
                      + ''.join(f"\n  - R={r['r']} K={r['k']} {r['mode']} {r['dtype']}: "
                                f"cuDNN/auto {r['cudnn_over_auto']:.2f}"
                                for r in tg['auto_slower_than_cudnn']),
                      f"- {tg['big_kernel']}x{tg['big_kernel']} fwd+bwd at R={tg['r']} at least "
                      f"3x faster than cuDNN: {tg['fwd_bwd_speedup_vs_cudnn']} -> "
                      f"{'met' if tg['speedup_target_met'] else 'NOT met'}",
                      f"- {tg['big_kernel']}x{tg['big_kernel']} / {tg['small_kernel']}x"
                      f"{tg['small_kernel']} time at R={tg['r']} no worse than "
                      f"{tg['ratio_target']} (auto): "
                      + '; '.join(f"{key}: " + ', '.join(f'{k} {v:.1f}' for k, v in r.items())
                                  for key, r in tg['ratio_big_over_small'].items())
                      + f" -> {tg['ratio_target_met']}"]
    e2e = results.get('e2e')
    if e2e and 'error' not in e2e:
        lines += ['', f"## RepLKNet-{e2e['arch']} end to end ({e2e['size']}x{e2e['size']}, "
                  f"batch {e2e['batch']}, {e2e['autocast']} autocast)", '',
                  '| what | native s | auto s | speed-up |', '|---|---|---|---|',
                  f"| training step | {e2e['train_step_s']['native']:.3f} | "
                  f"{e2e['train_step_s']['auto']:.3f} | {e2e['train_speedup']:.2f}x |",
                  f"| re-parameterized inference | {e2e['deploy_inference_s']['native']:.3f} | "
                  f"{e2e['deploy_inference_s']['auto']:.3f} | {e2e['deploy_speedup']:.2f}x |",
                  '', f"Autotuning: {e2e['auto_measured_decisions']} measured decisions, "
                  f"{e2e['auto_tune_s']:.1f} s in the first training step (first step "
                  f"{e2e['auto_first_step_s']:.1f} s vs native {e2e['native_first_step_s']:.1f}"
                  f" s); {e2e['deploy_auto_tune_s']:.1f} s more for the deploy form."]
    elif e2e:
        lines += ['', f"## End to end: {e2e['error']}"]
    fit = results.get('cost_fit')
    if fit:
        lines += ['', '## Cost-model constants', '',
                  f"Fitted from {fit['points']} phase timings into `dw_conv_costs.json` "
                  f"(device class `{fit['device_class']}`); the fitted model picks the measured "
                  f"fastest backend for {fit['agreement']['agree']} of "
                  f"{fit['agreement']['pairs']} (shape, phase) pairs, its picks cost "
                  f"{fit['agreement']['mean_cost_of_pick'] or 0:.2f}x the fastest on average."]
    lines += ['', f"Total autotuning in this run: {results.get('tune_s', 0):.1f} s, "
              f"{results.get('measured_decisions', 0)} measured decisions."]
    return '\n'.join(lines) + '\n'


def write(out_dir, results, s):
    with open(os.path.join(out_dir, 'gpu_check.json'), 'w') as f:
        json.dump(results, f, indent=1, default=str)
    with open(os.path.join(out_dir, 'gpu_check.md'), 'w') as f:
        f.write(markdown(results, s))


SECTIONS = ('correctness', 'phases', 'table1', 'e2e')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, help='folder for the results')
    parser.add_argument('--dry-run', action='store_true',
                        help='CPU, tiny sizes, Triton in its interpreter (for the CPU test)')
    parser.add_argument('--sections', default=','.join(SECTIONS),
                        help=f'comma-separated subset of {SECTIONS}')
    parser.add_argument('--budget-scale', type=float, default=1.0,
                        help='multiply every section time budget')
    parser.add_argument('--max-seconds', type=float, default=450,
                        help='stop starting new work after this many seconds in all')
    args = parser.parse_args(argv)
    sections = [x for x in args.sections.split(',') if x]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f'unknown sections {sorted(unknown)}; choose from {SECTIONS}')
    s = DRY if args.dry_run else FULL
    device = torch.device(s.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error('no CUDA device visible: run on the GPU machine, or --dry-run on a CPU')
    if args.dry_run and os.environ.get('TRITON_INTERPRET') in (None, '', '0'):
        parser.error('--dry-run needs TRITON_INTERPRET=1 before Python starts '
                     '(gpu_check.sh sets it)')
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    results = dict(dry_run=args.dry_run, environment=environment(device), settings=asdict(s),
                   section_s={})
    print(json.dumps(results['environment']), flush=True)
    for section in sections:
        left = args.max_seconds - (time.perf_counter() - start)
        if left <= 0:
            results.setdefault('skipped', []).append(section)
            continue
        deadline = Deadline(min(s.budget_s[section] * args.budget_scale, left))
        t0 = time.perf_counter()
        print(f'== {section} (budget {s.budget_s[section] * args.budget_scale:.0f} s)',
              flush=True)
        try:
            if section == 'correctness':
                results['correctness'] = check_correctness(s, device, deadline)
                print(f"correctness: {len(results['correctness']['failures'])} failures",
                      flush=True)
            elif section == 'phases':
                phases = phase_timings(s, device, deadline)
                results['phases'] = phases
                doc = fit_cost_tables(phases['rows'], device)
                with open(os.path.join(args.out, 'dw_conv_costs.json'), 'w') as f:
                    json.dump(doc, f, indent=1)
                results['cost_fit'] = dict(
                    points=sum('seconds' in r for r in phases['rows']),
                    device_class=device_class(device),
                    agreement=model_agreement(phases['rows'], doc, device))
            elif section == 'table1':
                results['table1'] = table1(s, device, deadline)
                results['targets'] = table1_targets(results['table1'], s)
            elif section == 'e2e':
                results['e2e'] = end_to_end(s, device, deadline)
        except Exception as e:  # report and go on: the other sections are still worth having
            import traceback
            traceback.print_exc()
            results.setdefault('errors', {})[section] = f'{type(e).__name__}: {e}'
            if section == 'e2e':
                results['e2e'] = dict(error=f'{type(e).__name__}: {e}')
        results['section_s'][section] = time.perf_counter() - t0
        info = dispatch_cache_info()
        results['tune_s'] = info['tune_seconds']
        results['measured_decisions'] = info['measured']
        results['wall_s'] = time.perf_counter() - start
        write(args.out, results, s)
    print(markdown(results, s))
    print(f'wrote {args.out}/gpu_check.json, gpu_check.md'
          + (', dw_conv_costs.json' if 'phases' in sections else ''))
    return results


if __name__ == '__main__':
    main()
