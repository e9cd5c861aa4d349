"""The timing harness of ``'auto'``: time the candidate backends of one phase on the real call.

Candidates run in the given order (cheapest first by the cost model): a warm-up run, then the
minimum of 3-20 runs (more for cheap calls, so one preemption does not decide), and a candidate
3x behind the best so far is not repeated. The fastest is re-timed against native in an
interleaved round (unless native takes over 50 ms and the fastest is over ``CONFIRM_WITHIN``
times faster), and native (PyTorch's own kernel) is kept unless the fastest beats it by more
than ``1 - NATIVE_MARGIN``. For training calls on small convs the whole forward+backward of a
mixed plan is also timed against PyTorch's, because per-phase timings miss the custom autograd
function's own cost (tens of microseconds). CUDA is synchronized around every run.

No candidate is timed before its answer is checked: its warm-up run's result is compared with
PyTorch's conv (the 'native' backend) on the same tensors, as the largest absolute difference
over the largest absolute reference value, against :func:`tolerance` for the dtype (wide
enough for FFT rounding, which is spread over the whole map, and for PyTorch's own rounding in
half precision; far below what a wrong tap, shift or missing bias gives). The reference run
doubles as native's warm-up, so the check adds the comparisons only; a candidate that
disagrees is returned as wrong and never timed.
"""
import logging
import time

import torch
import torch.nn.functional as F

from ._log import log_once, logger
from .backends import BACKENDS
from .function import NATIVE_PLAN, DepthwiseConvFunction

NATIVE_MARGIN = 0.93
# A winner this many times faster than a slow native conv needs no second round: re-timing
# native is then most of the tuning time of a large kernel, and a preemption inflates a call
# that long by a small fraction only. Cheap calls are always confirmed (cheap to re-time, and
# one preemption can double them).
CONFIRM_WITHIN = 2.0
CONFIRM_ALWAYS_BELOW_S = 0.05
SMALL_CONV_SECONDS = 0.02  # below this native time, a mixed plan is checked as a whole
# Largest |candidate - reference| / largest |reference| a correct backend stays below. Measured
# on CPU (k 7-31, maps 7-56): fp32 <= 1.5e-6; fp16/bf16 <= 1e-2, because PyTorch's own half
# input gradient is that far from the exact one. A wrong tap, shift or bias is off by O(1).
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 5e-2,
             torch.bfloat16: 5e-2}
DEFAULT_TOLERANCE = 5e-2
TF32_TOLERANCE = 1e-2  # fp32 on CUDA where cuDNN may use TF32 (a 10-bit mantissa)


def tolerance(x):
    if x.dtype == torch.float32 and x.is_cuda and torch.backends.cudnn.allow_tf32:
        return TF32_TOLERANCE
    return TOLERANCE.get(x.dtype, DEFAULT_TOLERANCE)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def run_timed(fn, device, reps):
    best = float('inf')
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def reps_for(first):
    """Min over more runs for cheap calls: one preemption must not decide a plan."""
    return 1 if first > 0.05 else max(3, min(20, int(0.03 / max(first, 1e-6))))


def first_run(fn, device):
    """(result, seconds) of the warm-up run: JIT, primitive creation, allocator."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def time_call(fn, device, best_so_far=None, first=None):
    """Min-of-N seconds after a warm-up run (``first``: its seconds, when it has run already);
    give up early on a candidate far behind."""
    if first is None:
        first = first_run(fn, device)[1]
    if best_so_far is not None and first > 3 * best_so_far and first > 1e-3:
        return first
    return run_timed(fn, device, reps_for(first))


def phase_call(phase, name, x, w, b, g, geom):
    backend = BACKENDS[name]
    if phase == 'fwd':
        return lambda: backend.fwd(x, w, b, geom)
    if phase == 'dx':
        return lambda: backend.dx(x, g, w, geom)
    return lambda: backend.dw(x, g, w, geom)


def disagreement(out, ref):
    """Largest absolute difference over the largest absolute reference value."""
    if not isinstance(out, torch.Tensor) or out.shape != ref.shape:
        return float('inf')
    scale = ref.abs().max().item()
    err = (out.to(ref.dtype) - ref).abs().max().item()
    return err / scale if scale > 0 else err


@torch.no_grad()
def measure_phase(phase, names, x, w, b, g, geom):
    """Check, then time ``names`` (in this order) for one phase; return (choice, seconds by
    backend, {wrong backend: its disagreement}, seconds spent comparing). The tensors must be
    finite."""
    times, wrong, ref, check_seconds = {}, {}, None, 0.0
    limit = tolerance(x)
    for name in names:
        best = min(times.values()) if times else None
        fn = phase_call(phase, name, x, w, b, g, geom)
        try:
            if ref is None:
                ref, ref_seconds = first_run(phase_call(phase, 'native', x, w, b, g, geom),
                                             x.device)
            if name == 'native':
                first = ref_seconds
            else:
                out, first = first_run(fn, x.device)
                start = time.perf_counter()
                err = disagreement(out, ref)
                check_seconds += time.perf_counter() - start
                del out
                if not err <= limit:  # NaN too
                    wrong[name] = err
                    continue
            times[name] = time_call(fn, x.device, best, first)
        except Exception as e:  # e.g. out of memory, a Triton compile error: not a candidate
            log_once(('tune-fail', name, type(e).__name__),
                     f'depth-wise conv backend {name!r} failed while autotuning '
                     f'({type(e).__name__}: {e}); skipping it')
            if x.device.type == 'cuda':
                torch.cuda.empty_cache()
            if ref is None:  # PyTorch's own conv failed: nothing can be checked
                break
    if not times:
        return 'native', times, wrong, check_seconds
    choice = min(times, key=times.get)
    if choice != 'native' and 'native' in times and (
            times['native'] < max(CONFIRM_WITHIN * times[choice], CONFIRM_ALWAYS_BELOW_S)):
        # close to native: confirm in an interleaved second round before leaving PyTorch's conv
        reps = reps_for(times['native'])
        for name in ('native', choice):
            times[name] = min(times[name], run_timed(
                phase_call(phase, name, x, w, b, g, geom), x.device, reps))
        if times[choice] > NATIVE_MARGIN * times['native']:
            choice = 'native'
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug('dw conv %s %s: %s -> %s', phase, tuple(x.shape),
                     {k: round(v * 1e3, 3) for k, v in times.items()}, choice)
    return choice, times, wrong, check_seconds


def training_call(plan, x, w, b, g, geom, need_dx, need_dw):
    """A whole forward+backward, autograd included, as a training step runs it."""
    x = x.detach().requires_grad_(need_dx)
    w = w.detach().requires_grad_(need_dw)
    inputs = [t for t, need in ((x, need_dx), (w, need_dw)) if need]

    def run():
        with torch.enable_grad():
            if plan == NATIVE_PLAN and geom.symmetric:
                out = F.conv2d(x, w, b, 1, (geom.pt, geom.pl), 1, w.shape[0])
            else:
                out = DepthwiseConvFunction.apply(x, w, b, geom, plan)
            torch.autograd.grad(out, inputs, g)
    return run


def mixed_plan_pays(plan, x, w, b, g, geom, need_dx, need_dw):
    """Whether a whole training call with ``plan`` beats PyTorch's by the native margin."""
    native = training_call(NATIVE_PLAN, x, w, b, g, geom, need_dx, need_dw)
    mixed = training_call(plan, x, w, b, g, geom, need_dx, need_dw)
    t_native = time_call(native, x.device)
    t_mixed = time_call(mixed, x.device)
    reps = reps_for(t_native)
    t_native = min(t_native, run_timed(native, x.device, reps))
    t_mixed = min(t_mixed, run_timed(mixed, x.device, reps))
    return t_mixed <= NATIVE_MARGIN * t_native
