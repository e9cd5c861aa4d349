"""Which backend runs each phase (forward, input grad, weight grad) of a depth-wise conv.

Backend selection, highest priority first: the ``backend=`` argument (module / function /
config), :func:`set_default_backend`, the ``REPLK_DW_CONV_BACKEND`` environment variable,
then ``'auto'``. A forced backend that cannot run here (no Triton, no GPU) falls back to
``'auto'`` with a one-time log line.

``'auto'`` decides each phase separately, per (device, threads, dtype, N, C, H, W, kernel,
padding, layout) key, once per process:

* ``REPLK_DW_CONV_AUTOTUNE=measure`` (default): time the candidates on the real shape (in the
  order of a cost model, skipping repetitions of any that is already far behind), re-time the
  fastest against native in an interleaved round, and keep native (PyTorch's own kernel)
  unless the fastest beats it by more than ``1 - NATIVE_MARGIN``: 'auto' is never slower
  than PyTorch beyond timing noise. After ``REPLK_DW_CONV_TUNE_LIMIT`` (default 128)
  measured phase decisions, e.g. with many input sizes, new keys use the cost model.
* ``REPLK_DW_CONV_AUTOTUNE=model``: use the cost model only (deterministic across processes).

Decisions live in an in-process dict (:func:`dispatch_cache_info`); with
``REPLK_DW_CONV_CACHE=1`` (or a file path) measured ones are also kept on disk in
``~/.cache/replk_mm/dw_conv_autotune.json`` (versioned, keyed by device and torch version),
so later processes, e.g. every rank of a distributed run, reuse the same choices.
"""
import json
import logging
import math
import os
import platform
import tempfile
import threading
import time
from functools import lru_cache

import torch
import torch.nn.functional as F

from .backends import BACKENDS, PHASES
from .backends.fft import fft_shape
from .function import DepthwiseConvFunction, Plan

logger = logging.getLogger(__name__)

BACKEND_CHOICES = ('auto', 'native', 'padded', 'fft', 'triton')
ENV_BACKEND = 'REPLK_DW_CONV_BACKEND'
ENV_AUTOTUNE = 'REPLK_DW_CONV_AUTOTUNE'
ENV_CACHE = 'REPLK_DW_CONV_CACHE'
ENV_TUNE_LIMIT = 'REPLK_DW_CONV_TUNE_LIMIT'
CACHE_VERSION = 1
NATIVE_MARGIN = 0.93
NATIVE_PLAN = Plan('native', 'native', 'native')

_lock = threading.RLock()
_decisions = {}  # key string -> backend name
_routes = {}  # per-call fast path of dw_conv.depthwise_conv2d: call signature -> route
_stats = dict(hits=0, misses=0, measured=0, modelled=0)
_disk_loaded = set()
_logged = set()
_default_backend = None


def log_once(key, msg, level=logging.WARNING):
    with _lock:
        if key in _logged:
            return
        _logged.add(key)
    logger.log(level, msg)


def check_backend(backend, allow_none=True):
    if backend is None and allow_none:
        return backend
    if not isinstance(backend, str) or backend.lower() not in BACKEND_CHOICES:
        raise ValueError(f'unknown depth-wise conv backend {backend!r}; choose one of '
                         f'{BACKEND_CHOICES}' + (' or None (the default)' if allow_none else ''))
    return backend.lower()


class set_default_backend:
    """Set the backend used where none is given; as a context manager, restore it on exit.

    ``set_default_backend('fft')`` sets it for the process; ``with set_default_backend('native'):``
    only inside the block. ``None`` goes back to the environment variable / 'auto'.
    """

    def __init__(self, backend):
        global _default_backend
        backend = check_backend(backend)
        self.previous, _default_backend = _default_backend, backend

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _default_backend
        _default_backend = self.previous


def get_default_backend():
    if _default_backend is not None:
        return _default_backend
    env = os.environ.get(ENV_BACKEND, '').strip().lower()
    if not env:
        return 'auto'
    if env not in BACKEND_CHOICES:
        log_once(('env', env), f'{ENV_BACKEND}={env!r} is not one of {BACKEND_CHOICES}; '
                 "using 'auto'")
        return 'auto'
    return env


@lru_cache(maxsize=None)
def _chip(device_type, index):
    if device_type == 'cuda':
        return torch.cuda.get_device_name(index)
    try:
        with open('/proc/cpuinfo') as f:
            name = next(line.split(':', 1)[1].strip() for line in f if 'model name' in line)
    except (OSError, StopIteration):
        name = platform.processor()
    return f'{platform.machine()} {name}'.strip().replace('|', '/')


def device_tag(device):
    """What the measured costs depend on besides the shape: the chip and the thread count."""
    if device.type == 'cuda':
        return f'cuda:{_chip("cuda", device.index if device.index is not None else 0)}'
    return f'{device.type}:{_chip(device.type, None)}:{torch.get_num_threads()}t'


def _layout(x):
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return 'cl'
    return 'nchw'


def _key(phase, x, geom):
    n, c = x.shape[:2]
    g = geom
    return (f'{phase}|{device_tag(x.device)}|{str(x.dtype)[6:]}|n{n}c{c}|{g.h}x{g.w}'
            f'|k{g.kh}x{g.kw}|p{g.pt},{g.pb},{g.pl},{g.pr}|{_layout(x)}')


def candidates(device, phase='fwd', layout='nchw'):
    """Backends 'auto' may choose here (Triton's CPU interpreter is for tests only)."""
    if device.type not in ('cpu', 'cuda'):
        return ['native']
    names = ['native', 'padded', 'fft']
    if phase == 'fwd' and layout == 'nchw':
        names.append('cl')
    if device.type == 'cuda' and BACKENDS['triton'].available(device)[0]:
        names.append('triton')
    return [n for n in names if phase in getattr(BACKENDS[n], 'PHASES', PHASES)]


# ---------------------------------------------------------------------------- cost model
# FLOP/s of the direct kernel and of the gemm fallback, seconds per FFT point*log2(points),
# seconds per call, bytes/s of a layout copy.
CPU_COSTS = dict(direct=8e10, slow=1.5e9, fft=3e-10, call=2e-5, copy=1e9)
GPU_COSTS = dict(direct=2e12, slow=2e11, fft=2e-12, call=1e-5, copy=5e11)  # placeholders


def model_cost(phase, name, x, geom):
    """Rough seconds for one phase. CPU constants fitted on a 2-core AMD EPYC (AVX-512), oneDNN
    3.12, 1 thread: on 144 (shape, phase) pairs of the benchmark sweep the model picks the
    measured best 87% of the time, and its picks cost 8% more than the best on average.

    What matters is the ranking: oneDNN's direct depth-wise kernel versus its gemm fallback for
    an NCHW forward padding by >= 7 and for the weight gradient with k >= 5, versus FFTs whose
    cost does not grow with the kernel. The GPU constants are placeholders (not measured);
    on GPUs use the measured mode.
    """
    n, c = x.shape[:2]
    gpu = x.device.type == 'cuda'
    k = GPU_COSTS if gpu else CPU_COSTS
    pixels = geom.h * geom.w if phase == 'dx' else geom.ho * geom.wo
    flops = 2.0 * n * c * pixels * geom.kh * geom.kw
    if name == 'native':
        if gpu:
            return flops / (k['direct'] if max(geom.kh, geom.kw) <= 7 else k['slow']) + k['call']
        big = (phase == 'fwd' and _layout(x) == 'nchw' and max(geom.pads) >= 7) or (
            phase == 'dw' and max(geom.kh, geom.kw) >= 5)
        return flops / (k['slow'] if big else k['direct']) + k['call']
    if name == 'padded':
        return flops / k['direct'] * (1.5 if phase == 'dw' else 1.0) + 2 * k['call']
    if name == 'cl':  # direct NHWC kernel plus two layout copies
        copies = 2 * n * c * geom.h * geom.w * x.element_size()
        return flops / k['direct'] + copies / k['copy'] + 2 * k['call']
    if name == 'fft':
        lh, lw = fft_shape(geom)
        transform = n * c * lh * lw * math.log2(lh * lw) * k['fft']
        return (3 if phase == 'dw' else 2) * transform + 4 * k['call']
    if name == 'triton':
        return flops / (k['direct'] / 2) + k['call']
    return float('inf')


# ---------------------------------------------------------------------------- measurement
def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _run_timed(fn, device, reps):
    best = float('inf')
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _reps(first):
    """Min over more runs for cheap calls: one preemption must not decide a plan."""
    return 1 if first > 0.05 else max(3, min(20, int(0.03 / max(first, 1e-6))))


def _time(fn, device, best_so_far):
    """Min-of-N seconds after a warm-up run; give up early on a candidate far behind."""
    _sync(device)
    first = _run_timed(fn, device, 1)  # warm-up: JIT, primitive creation, allocator
    if best_so_far is not None and first > 3 * best_so_far and first > 1e-3:
        return first
    return _run_timed(fn, device, _reps(first))


def _phase_call(phase, name, x, w, b, g, geom):
    backend = BACKENDS[name]
    if phase == 'fwd':
        return lambda: backend.fwd(x, w, b, geom)
    if phase == 'dx':
        return lambda: backend.dx(x, g, w, geom)
    return lambda: backend.dw(x, g, w, geom)


@torch.no_grad()
def _measure(phase, x, w, b, geom, g):
    names = sorted(candidates(x.device, phase, _layout(x)),
                   key=lambda m: model_cost(phase, m, x, geom))
    times = {}
    for name in names:
        best = min(times.values()) if times else None
        try:
            times[name] = _time(_phase_call(phase, name, x, w, b, g, geom), x.device, best)
        except Exception as e:  # e.g. out of memory, a Triton compile error: not a candidate
            log_once(('tune-fail', name, type(e).__name__),
                     f'depth-wise conv backend {name!r} failed while autotuning '
                     f'({type(e).__name__}: {e}); skipping it')
            if x.device.type == 'cuda':
                torch.cuda.empty_cache()
    if not times:
        return 'native', None
    choice = min(times, key=times.get)
    if choice != 'native' and 'native' in times:
        # confirm against native in an interleaved second round before leaving PyTorch's conv
        reps = _reps(times['native'])
        for name in ('native', choice):
            times[name] = min(times[name], _run_timed(
                _phase_call(phase, name, x, w, b, g, geom), x.device, reps))
        if times[choice] > NATIVE_MARGIN * times['native']:
            choice = 'native'
    logger.debug('dw conv %s %s: %s -> %s', phase, _key(phase, x, geom),
                 {k: round(v * 1e3, 3) for k, v in times.items()}, choice)
    return choice, times.get('native')


def _training_call(plan, x, w, b, g, geom, need_dx, need_dw):
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


def _keep_mixed_plan(plan, x, w, b, g, geom, need_dx, need_dw):
    """Per-phase timings miss the custom autograd function's own cost (tens of microseconds),
    which decides on small convs: there, time the whole training call against native."""
    native = _training_call(NATIVE_PLAN, x, w, b, g, geom, need_dx, need_dw)
    mixed = _training_call(plan, x, w, b, g, geom, need_dx, need_dw)
    t_native = _time(native, x.device, None)
    t_mixed = _time(mixed, x.device, None)
    reps = _reps(t_native)
    t_native = min(t_native, _run_timed(native, x.device, reps))
    t_mixed = min(t_mixed, _run_timed(mixed, x.device, reps))
    return t_mixed <= NATIVE_MARGIN * t_native


def _model_choice(phase, x, geom):
    return min(candidates(x.device, phase, _layout(x)),
               key=lambda m: model_cost(phase, m, x, geom))


# ---------------------------------------------------------------------------- cache
def _cache_path():
    value = os.environ.get(ENV_CACHE, '').strip()
    if value.lower() in ('', '0', 'off', 'false', 'no'):
        return None
    if value.lower() in ('1', 'on', 'true', 'yes'):
        return os.path.join(os.path.expanduser('~'), '.cache', 'replk_mm',
                            'dw_conv_autotune.json')
    return os.path.expanduser(value)


def _disk_key(key):
    return f'torch{torch.__version__}|{key}'


def _read_disk(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get('version') != CACHE_VERSION:
        return {}
    entries = data.get('entries', {})
    return {k: v for k, v in entries.items() if v in BACKENDS}


def _load_disk():
    path = _cache_path()
    if path is None or path in _disk_loaded:
        return
    _disk_loaded.add(path)
    prefix = _disk_key('')
    for k, v in _read_disk(path).items():
        if k.startswith(prefix):
            _decisions.setdefault(k[len(prefix):], v)


def _write_disk(new):
    path = _cache_path()
    if path is None or not new:
        return
    try:
        os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
        entries = _read_disk(path)  # merge: other processes may have added keys
        entries.update({_disk_key(k): v for k, v in new.items()})
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or '.', suffix='.tmp')
        with os.fdopen(fd, 'w') as f:
            json.dump(dict(version=CACHE_VERSION, entries=entries), f, indent=0, sort_keys=True)
        os.replace(tmp, path)
    except OSError as e:
        log_once(('cache-write', path), f'could not write the depth-wise conv autotune cache '
                 f'{path} ({e}); decisions are kept in memory only')


def _unchanged(tensor):
    return tensor


def plan_for(backend, x, w, b, geom, need_dx, need_dw):
    """The Plan for this call; ``backend`` is already resolved (not None)."""
    if backend != 'auto':
        ok, why = BACKENDS[backend].available(x.device)
        if ok:
            return Plan(backend, backend, backend)
        log_once(('unavailable', backend, x.device.type),
                 f"depth-wise conv backend {backend!r} cannot run on {x.device.type} ({why}); "
                 "falling back to 'auto'")
    phases = [p for p, need in zip(PHASES, (True, need_dx, need_dw)) if need]
    keys = {p: _key(p, x, geom) for p in phases}
    # Timing runs autograd (see _training_call); under gradient checkpointing the tensors it
    # saves would be packed by the checkpoint's hooks and then missing from the recomputation
    # (which finds the choice cached), so the identity hooks keep them out of the checkpoint.
    with _lock, torch.autograd.graph.saved_tensors_hooks(_unchanged, _unchanged):
        _load_disk()
        chosen = {p: _decisions.get(k) for p, k in keys.items()}
        missing = [p for p in phases if chosen[p] is None]
        _stats['hits'] += len(phases) - len(missing)
        _stats['misses'] += len(missing)
        if missing:
            measure = (os.environ.get(ENV_AUTOTUNE, 'measure').strip().lower() != 'model'
                       and _stats['measured'] < int(os.environ.get(ENV_TUNE_LIMIT, '128')))
            new, native_time, g = {}, 0.0, None
            if measure:  # a stand-in output gradient (values do not matter for timing)
                g = torch.ones((x.shape[0], x.shape[1], geom.ho, geom.wo), dtype=x.dtype,
                               device=x.device)
                if _layout(x) == 'cl':
                    g = g.contiguous(memory_format=torch.channels_last)
            xd, wd, bd = x.detach(), w.detach(), None if b is None else b.detach()
            for p in missing:
                if measure:
                    chosen[p], t = _measure(p, xd, wd, bd, geom, g)
                    native_time += float('inf') if t is None else t
                    _stats['measured'] += 1
                    new[keys[p]] = chosen[p]
                else:
                    chosen[p] = _model_choice(p, x, geom)
                    _stats['modelled'] += 1
            plan = Plan(chosen['fwd'], chosen.get('dx', 'native'), chosen.get('dw', 'native'))
            if (new and (need_dx or need_dw) and plan != NATIVE_PLAN and native_time < 0.02
                    and not _keep_mixed_plan(plan, xd, wd, bd, g, geom, need_dx, need_dw)):
                chosen = {p: 'native' for p in phases}  # all phases, cached ones included
                new = {keys[p]: 'native' for p in phases}
            for p in phases:
                _decisions[keys[p]] = chosen[p]
            _write_disk(new)
    return Plan(chosen['fwd'], chosen.get('dx', 'native'), chosen.get('dw', 'native'))


def dispatch_cache_info():
    """Counters (hits / misses / measured / modelled phase decisions) and the decisions."""
    with _lock:
        return dict(_stats, size=len(_decisions), decisions=dict(_decisions))


def clear_dispatch_cache():
    """Forget in-process decisions and counters (the disk file is left alone)."""
    with _lock:
        _decisions.clear()
        _routes.clear()
        _disk_loaded.clear()
        for k in _stats:
            _stats[k] = 0
