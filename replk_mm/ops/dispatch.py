"""Which backend runs each phase (forward, input grad, weight grad) of a depth-wise conv: the
orchestration of backend policy (:mod:`.config`), decision keys (:mod:`.keys`), the decision
cache (:mod:`.decision_cache`), the timing harness (:mod:`.timing`), the cost model
(:mod:`.cost_model`) and routes (:mod:`.routing`).

A forced backend (``backend=`` / :func:`set_default_backend` / ``REPLK_DW_CONV_BACKEND``) runs
all phases; one that cannot run here (no Triton, no GPU) falls back to ``'auto'`` with a
one-time log line. ``'auto'`` decides each needed phase separately:

1. **measured** (the default): once per shape bucket (:mod:`.keys`) and process, the candidate
   backends are timed on the real call (:mod:`.timing`) and the fastest is kept only if it
   beats PyTorch's own conv by more than the timing margin. Measured decisions are cached in
   memory and, with ``REPLK_DW_CONV_CACHE``, on disk.
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
import threading
import time

import torch

from . import config, cost_model, timing
from ._log import log_once
from .backends import BACKENDS, PHASES, auto_candidates
from .config import (  # noqa: F401  (the policy names, also importable from here)
    BACKEND_CHOICES,
    ENV_AUTOTUNE,
    ENV_BACKEND,
    ENV_CACHE,
    ENV_COSTS,
    ENV_TUNE_LIMIT,
    check_backend,
    get_default_backend,
    set_default_backend,
)
from .decision_cache import CACHE_VERSION, DecisionCache  # noqa: F401
from .devices import device_class
from .function import NATIVE_PLAN, Plan
from .geometry import crop_geometry
from .keys import decision_key
from .layout import NHWC, memory_layout
from .routing import (
    AUTOGRAD,
    BACKEND_FORWARD,
    ROUTES,
    TORCH_CONV,
    Route,
    accelerable,
    check_call,
    normalize_padding,
    normalize_stride,
)

_lock = threading.RLock()
_cache = DecisionCache()


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


def untimed_choice(phase, call, device):
    """The backend of a phase that is not timed: the cost model's cheapest candidate where its
    constants were measured for this device class and dtype, else PyTorch's conv."""
    if cost_model.has_measured_constants(device, call.dtype):
        _cache.count('modelled')
        return cost_model.cheapest(phase, auto_candidates(device, phase, call.layout), call,
                                   device)
    _cache.count('native_fallbacks')
    return 'native'


def _measure(phases, keys, x, w, b, geom, need_dx, need_dw, chosen):
    """Time the missing phases; return the new decisions (key -> backend)."""
    xd, wd, bd = x.detach(), w.detach(), None if b is None else b.detach()
    # a stand-in output gradient (values do not matter for timing)
    g = torch.ones((x.shape[0], x.shape[1], geom.ho, geom.wo), dtype=x.dtype, device=x.device)
    if memory_layout(x) == NHWC:
        g = g.contiguous(memory_format=torch.channels_last)
    call = cost_model.ConvCall.of(x, geom)
    new, native_time = {}, 0.0
    for p in phases:
        names = cost_model.ranked(p, auto_candidates(x.device, p, call.layout), call, x.device)
        chosen[p], times = timing.measure_phase(p, names, xd, wd, bd, g, geom)
        native_time += times.get('native', float('inf'))
        _cache.count('measured')
        new[keys[p]] = chosen[p]
    plan = Plan(chosen['fwd'], chosen.get('dx', 'native'), chosen.get('dw', 'native'))
    if ((need_dx or need_dw) and plan != NATIVE_PLAN
            and native_time < timing.SMALL_CONV_SECONDS
            and not timing.mixed_plan_pays(plan, xd, wd, bd, g, geom, need_dx, need_dw)):
        for p in chosen:  # all phases, cached ones included
            chosen[p] = 'native'
            new[keys[p]] = 'native'
    return new


def plan_for(backend, x, w, b, geom, need_dx, need_dw, kernel_size, padding):
    """(Plan, number of 'auto' decisions) for a call; ``w`` is the cropped kernel and
    ``kernel_size`` / ``padding`` are the call's own (they key measured decisions)."""
    if backend != 'auto':
        ok, why = BACKENDS[backend].available(x.device)
        if ok:
            return Plan(backend, backend, backend), 0
        log_once(('unavailable', backend, x.device.type),
                 f"depth-wise conv backend {backend!r} cannot run on {x.device.type} ({why}); "
                 "falling back to 'auto'")
    phases = [p for p, need in zip(PHASES, (True, need_dx, need_dw)) if need]
    reason = untimed_reason(x.device)
    # Timing runs autograd (see timing.training_call); under gradient checkpointing the tensors
    # it saves would be packed by the checkpoint's hooks and then missing from the
    # recomputation (which finds the choice cached), so the identity hooks keep them out.
    with _lock, torch.autograd.graph.saved_tensors_hooks(_unchanged, _unchanged):
        if reason is not None:
            _cache.count('misses', len(phases))
            call = cost_model.ConvCall.of(x, geom)
            chosen = {p: untimed_choice(p, call, x.device) for p in phases}
        else:
            path = config.cache_path()
            _cache.load(path)
            keys = {p: decision_key(p, x, kernel_size, padding) for p in phases}
            chosen = {p: _cache.get(k) for p, k in keys.items()}
            missing = [p for p in phases if chosen[p] is None]
            _cache.count('hits', len(phases) - len(missing))
            _cache.count('misses', len(missing))
            limit = config.tune_limit()
            if missing and _cache.measured < limit:
                start = time.perf_counter()
                new = _measure(missing, keys, x, w, b, geom, need_dx, need_dw, chosen)
                for k, v in new.items():
                    _cache.put(k, v)
                _cache.add_tune_time(time.perf_counter() - start)
                _cache.save(path, new)
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
    plan = Plan(chosen['fwd'], chosen.get('dx', 'native'), chosen.get('dw', 'native'))
    return plan, len(phases)


def route(signature, backend, x, weight, bias, stride, padding, need_dx, need_dw):
    """Validate a call, decide how it runs and remember that for its ``signature``."""
    check_call(x, weight, bias)
    kh, kw = weight.shape[2:]
    stride = normalize_stride(stride)
    padding = normalize_padding(padding, kh, kw, stride)
    native = backend == 'native' or not accelerable(x, weight, bias, stride)
    geometry = None if native else crop_geometry(x.shape[2], x.shape[3], kh, kw, *padding)
    if geometry is None:
        if backend not in ('native', 'auto') and stride != (1, 1):
            log_once(('stride', backend), f'depth-wise conv backend {backend!r} handles '
                     'stride 1 only; strided calls run natively', level=logging.INFO)
        result = Route(TORCH_CONV, None, stride, padding, None, NATIVE_PLAN, 0)
    else:
        row, col, geom = geometry
        w = weight[:, :, row:row + geom.kh, col:col + geom.kw]
        plan, decisions = plan_for(backend, x, w, bias, geom, need_dx, need_dw, (kh, kw),
                                   padding)
        window = (None if (geom.kh, geom.kw) == (kh, kw)
                  else (row, row + geom.kh, col, col + geom.kw))
        if plan == NATIVE_PLAN and geom.symmetric:
            result = Route(TORCH_CONV, window, (1, 1), (geom.pt, geom.pl), geom, plan,
                           decisions)
        else:
            grad = need_dx or need_dw or (bias is not None and bias.requires_grad)
            result = Route(AUTOGRAD if grad else BACKEND_FORWARD, window, (1, 1), padding, geom,
                           plan, decisions)
    if not (x.is_cuda and torch.cuda.is_current_stream_capturing()):
        ROUTES.store(signature, result)  # a captured call is routed again once capture ends
    return result


def dispatch_cache_info():
    """Counters and the measured decisions (key text -> backend).

    ``hits``/``misses``: phase decisions found / not found; ``measured``: decisions timed;
    ``modelled``: untimed decisions by the cost model; ``native_fallbacks``: untimed decisions
    that fell back to PyTorch's conv (no measured constants); ``tune_seconds``: wall time spent
    timing; ``size``: measured decisions held; ``routes``: call signatures routed.
    """
    info = _cache.info()
    info['hits'] += ROUTES.hits
    info['routes'] = len(ROUTES)
    return info


def clear_dispatch_cache():
    """Forget in-process decisions, routes and counters (the disk file is left alone)."""
    with _lock:
        _cache.clear()
        ROUTES.clear()
