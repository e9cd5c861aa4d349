"""Which backend runs each phase (forward, input grad, weight grad) of a depth-wise conv: the
orchestration of backend policy (:mod:`.config`), decision keys (:mod:`.keys`), the decision
cache (:mod:`.decision_cache`), the timing harness (:mod:`.timing`), the cost model
(:mod:`.cost_model`) and routes (:mod:`.routing`).

A forced backend (``backend=`` / :func:`set_default_backend` / ``REPLK_DW_CONV_BACKEND``) runs
all phases; one that cannot run here (no Triton, no GPU) falls back to ``'auto'`` with a
one-time log line. ``'auto'`` decides each needed phase separately:

1. **measured** (the default): once per shape bucket (:mod:`.keys`) and process, the candidate
   backends are timed on the real call (:mod:`.timing`) and the fastest is kept only if it
   beats PyTorch's own conv by more than the timing margin. Before a candidate is timed its
   answer is compared with PyTorch's conv on the same call (:mod:`.timing`); one that
   disagrees is excluded from 'auto' on that device type for the process, logged once with
   the numbers, and never cached. Measured decisions are cached in memory and, with
   ``REPLK_DW_CONV_CACHE``, on disk.
2. **untimed**, where a decision cannot be measured: ``REPLK_DW_CONV_AUTOTUNE=model``,
   ``torch.use_deterministic_algorithms(True)`` (so that seeded runs repeat exactly), CUDA graph
   capture, or the measurement budget (``REPLK_DW_CONV_TUNE_LIMIT`` measured decisions per
   process) spent. Then the cost model decides if its constants were measured for this device
   class and dtype (:mod:`.cost_model`), else the choice is PyTorch's own conv. Untimed
   decisions are a function of the exact call, deterministic across processes; they are kept
   with the call's route, never in the measured cache. Under ``torch.jit.trace``,
   ``torch.compile`` and ``torch.export`` every call is plain ``F.conv2d``.
"""
import logging
import time

import torch

from . import config, cost_model, timing
from ._log import forget_logged, log_once
from .backends import BACKENDS, PHASES, auto_candidates
from .decision_cache import STATE
from .devices import device_class
from .function import NATIVE_PLAN, Plan
from .geometry import crop_geometry
from .keys import decision_key
from .layout import NHWC, memory_layout
from .routing import AUTOGRAD, BACKEND_FORWARD, TORCH_CONV, Route, accelerable


def _unchanged(tensor):
    return tensor


def untimed_reason(device):
    """Why decisions for this device cannot be timed now, or None."""
    if config.autotune_mode() == 'model':
        return f'{config.ENV_AUTOTUNE}=model'
    if torch.are_deterministic_algorithms_enabled():
        return 'deterministic algorithms'
    if device.type == 'cuda' and torch.cuda.is_current_stream_capturing():
        return 'CUDA graph capture'
    return None


def candidates(device, phase, layout):
    """'auto' candidates, less those excluded in this process for a wrong answer."""
    return [name for name in auto_candidates(device, phase, layout)
            if not STATE.excluded(name, device.type)]


def untimed_choice(phase, call, device):
    """The backend of a phase that is not timed: the cost model's cheapest candidate where its
    constants were measured for this device class and dtype, else PyTorch's conv."""
    if cost_model.has_measured_constants(device, call.dtype):
        STATE.count('modelled')
        return cost_model.cheapest(phase, candidates(device, phase, call.layout), call, device)
    STATE.count('native_fallbacks')
    return 'native'


def _stand_in(t, generator):
    """Seeded random values with ``t``'s shape, dtype and layout (the global RNG untouched)."""
    out = torch.randn(t.shape, dtype=t.dtype, device=t.device, generator=generator)
    if t.dim() == 4 and memory_layout(t) == NHWC:
        return out.contiguous(memory_format=torch.channels_last)
    return out


def _exclude_wrong(wrong, phase, x):
    for name, err in wrong.items():
        why = (f"{phase} of {tuple(x.shape)} {str(x.dtype).replace('torch.', '')}: max "
               f'|error| {err:.3g} of the largest value (tolerance {timing.tolerance(x):g})')
        STATE.exclude(name, x.device.type, why)
        log_once(('wrong', name, x.device.type), (
            f"depth-wise conv backend {name!r} disagrees with PyTorch's conv on {why}; it is "
            f"excluded from 'auto' on {x.device.type} for this process and never cached"))


def _measure(phases, keys, x, w, b, geom, need_dx, need_dw, chosen):
    """Check and time the missing phases; return the new decisions (key -> backend)."""
    gen = torch.Generator(device=x.device).manual_seed(0)
    xd, wd, bd = x.detach(), w.detach(), None if b is None else b.detach()
    start = time.perf_counter()
    if not all(t is None or bool(torch.isfinite(t).all()) for t in (xd, wd, bd)):
        # the check needs finite values; timing does not care which
        xd, wd, bd = (None if t is None else _stand_in(t, gen) for t in (xd, wd, bd))
    STATE.add_seconds(check=time.perf_counter() - start)
    # a stand-in output gradient, random so that the check of the gradients means something
    g = torch.randn((x.shape[0], x.shape[1], geom.ho, geom.wo), dtype=x.dtype, device=x.device,
                    generator=gen)
    if memory_layout(x) == NHWC:
        g = g.contiguous(memory_format=torch.channels_last)
    call = cost_model.ConvCall.of(x, geom)
    new, native_time = {}, 0.0
    for p in phases:
        names = cost_model.ranked(p, candidates(x.device, p, call.layout), call, x.device)
        chosen[p], times, wrong, check_seconds = timing.measure_phase(p, names, xd, wd, bd, g,
                                                                      geom)
        STATE.add_seconds(check=check_seconds)
        _exclude_wrong(wrong, p, x)
        native_time += times.get('native', float('inf'))
        STATE.count('measured')
        new[keys[p]] = chosen[p]
    for p in chosen:  # a phase found cached may name a backend excluded just now
        if STATE.excluded(chosen[p], x.device.type):
            chosen[p] = 'native'
    plan = Plan(chosen['fwd'], chosen.get('dx', 'native'), chosen.get('dw', 'native'))
    if ((need_dx or need_dw) and plan != NATIVE_PLAN
            and native_time < timing.SMALL_CONV_SECONDS
            and not timing.mixed_plan_pays(plan, xd, wd, bd, g, geom, need_dx, need_dw)):
        for p in chosen:  # all phases, cached ones included
            chosen[p] = 'native'
            new[keys[p]] = 'native'
    return new


def plan_for(backend, x, w, b, geom, need_dx, need_dw, kernel_size, padding):
    """The Plan of a call; ``w`` is the cropped kernel and ``kernel_size`` / ``padding`` are
    the call's own (they key measured decisions)."""
    if backend != 'auto':
        ok, why = BACKENDS[backend].available(x.device)
        if ok:
            return Plan(backend, backend, backend)
        log_once(('unavailable', backend, x.device.type),
                 f"depth-wise conv backend {backend!r} cannot run on {x.device.type} ({why}); "
                 "falling back to 'auto'")
    phases = [p for p, need in zip(PHASES, (True, need_dx, need_dw)) if need]
    reason = untimed_reason(x.device)
    # Timing runs autograd (see timing.training_call); under gradient checkpointing the tensors
    # it saves would be packed by the checkpoint's hooks and then missing from the
    # recomputation (which finds the choice cached), so the identity hooks keep them out.
    with STATE.lock, torch.autograd.graph.saved_tensors_hooks(_unchanged, _unchanged):
        if reason is not None:  # untimed: the cache is not consulted
            call = cost_model.ConvCall.of(x, geom)
            chosen = {p: untimed_choice(p, call, x.device) for p in phases}
        else:
            path = config.cache_path()
            STATE.load(path)
            keys = {p: decision_key(p, x, kernel_size, padding) for p in phases}
            chosen = {p: STATE.get(k) for p, k in keys.items()}
            missing = [p for p in phases if chosen[p] is None]
            STATE.count('hits', len(phases) - len(missing))
            STATE.count('misses', len(missing))
            limit = config.tune_limit()
            if missing and STATE.measured < limit:
                start = time.perf_counter()
                new = _measure(missing, keys, x, w, b, geom, need_dx, need_dw, chosen)
                for k, v in new.items():
                    STATE.put(k, v)
                STATE.add_seconds(tune=time.perf_counter() - start)
                STATE.save(path, new)
            elif missing:
                call = cost_model.ConvCall.of(x, geom)
                measured = cost_model.has_measured_constants(x.device, call.dtype)
                log_once(('budget', x.device.type), (
                    f'depth-wise conv autotuning: {limit} measured decisions spent '
                    f'({config.ENV_TUNE_LIMIT}); new shapes now use '
                    + ('the cost model' if measured else "PyTorch's own conv (no measured cost "
                       f'constants for {device_class(x.device)})')), level=logging.INFO)
                for p in missing:
                    chosen[p] = untimed_choice(p, call, x.device)
    return Plan(chosen['fwd'], chosen.get('dx', 'native'), chosen.get('dw', 'native'))


def route(signature, backend, x, weight, bias, stride, padding, need_dx, need_dw):
    """Decide how a validated call runs (``stride`` and ``padding`` are pairs) and remember it
    for its ``signature``."""
    kh, kw = weight.shape[2:]
    native = backend == 'native' or not accelerable(x, weight, bias, stride)
    geometry = None if native else crop_geometry(x.shape[2], x.shape[3], kh, kw, *padding)
    if geometry is None:
        if backend not in ('native', 'auto') and stride != (1, 1):
            log_once(('stride', backend), f'depth-wise conv backend {backend!r} handles '
                     'stride 1 only; strided calls run natively', level=logging.INFO)
        result = Route(TORCH_CONV, None, stride, padding, None, NATIVE_PLAN)
    else:
        row, col, geom = geometry
        w = weight[:, :, row:row + geom.kh, col:col + geom.kw]
        plan = plan_for(backend, x, w, bias, geom, need_dx, need_dw, (kh, kw), padding)
        window = (None if (geom.kh, geom.kw) == (kh, kw)
                  else (row, row + geom.kh, col, col + geom.kw))
        if plan == NATIVE_PLAN and geom.symmetric:
            result = Route(TORCH_CONV, window, (1, 1), (geom.pt, geom.pl), geom, plan)
        else:
            # a biased deploy conv under no_grad / inference_mode needs no autograd either
            grad = need_dx or need_dw or (bias is not None and bias.requires_grad
                                          and torch.is_grad_enabled())
            result = Route(AUTOGRAD if grad else BACKEND_FORWARD, window, (1, 1), padding, geom,
                           plan)
    if not (x.is_cuda and torch.cuda.is_current_stream_capturing()):
        STATE.store_route(signature, result)  # a captured call is routed again once capture ends
    return result


def dispatch_cache_info():
    """Counters, the measured decisions (key text -> backend) and the excluded backends.

    ``hits`` / ``misses``: phase decisions found / not found in the measured-decision cache
    (looked up once per new call signature; untimed decisions do not look); ``measured``:
    decisions timed; ``modelled``: untimed decisions by the cost model; ``native_fallbacks``:
    untimed decisions that fell back to PyTorch's conv (no measured constants);
    ``tune_seconds``: wall time spent checking and timing, of which ``check_seconds`` comparing
    candidates' answers with PyTorch's conv; ``size``: measured decisions held; ``routes``:
    call signatures routed; ``route_hits``: calls served by a stored route; ``excluded``:
    '<backend> on <device type>' -> the disagreement that excluded it.
    """
    return STATE.info()


def clear_dispatch_cache():
    """Reset all process state of ``replk_mm.ops`` to a fresh process's: decisions, routes,
    counters, excluded backends, the default backend (:func:`set_default_backend`) and the
    once-per-process log lines. The disk file is left alone."""
    with STATE.lock:
        STATE.reset()
        forget_logged()
