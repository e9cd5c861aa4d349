"""All process state of ``replk_mm.ops`` in one object, :data:`STATE`, and the decision file.

:data:`STATE` holds the default backend (:func:`~replk_mm.ops.set_default_backend`), the
measured ``'auto'`` decisions (key text -> backend name), the route of every call signature
seen (:class:`~replk_mm.ops.routing.Route`, looked up per call: one dict lookup), the backends
excluded for disagreeing with PyTorch's conv, and the counters
:func:`~replk_mm.ops.dispatch_cache_info` reports. :meth:`State.reset`
(:func:`~replk_mm.ops.clear_dispatch_cache`) puts all of it back as in a fresh process.

On disk (``REPLK_DW_CONV_CACHE``): one JSON file ``{"version": 2, "entries": {...}}`` whose
entries are keyed by ``torch<version>|<key text>`` (the key holds the device and thread count),
so later processes, e.g. every rank of a distributed run, reuse the same choices. Only measured
decisions are stored: untimed ones are a function of the call and are recomputed.

* Reading trusts nothing: an entry whose backend is unknown, does not offer the phase, or is no
  ``'auto'`` candidate for the device and layout its key names (e.g. ``triton`` on a CPU) is
  dropped, with one log line per file, and measured again. A file of another version is
  ignored and rewritten.
* Writing merges with what other processes added, under a lock (``fcntl.flock`` on
  ``<file>.lock`` on POSIX; elsewhere that lock file created exclusively), through a temporary
  ``.<file name>.<pid>.<random>.tmp`` in the same folder that is renamed over the file. The
  temporary gets the file's permission bits (a new file: the umask's default), and a failed
  write removes it; temporaries left by killed processes are removed on the next load (under
  the lock, so no write is in flight).
"""
import errno
import json
import os
import secrets
import stat
import threading
import time
from contextlib import contextmanager

import torch

from ._log import log_once
from .backends import BACKENDS, PHASES, auto_candidates

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

CACHE_VERSION = 2
COUNTERS = ('hits', 'misses', 'measured', 'modelled', 'native_fallbacks')
LOCK_TIMEOUT_S = 30.0  # the lock-file fallback: a lock older than this was left by a crash


def _disk_key(key):
    return f'torch{torch.__version__}|{key}'


def _key_device_type(key):
    """The device type in a key text (``phase|device tag|...``)."""
    return key.split('|', 2)[1].split(':', 1)[0]


def entry_problem(disk_key, backend):
    """Why a file entry cannot be used, or None."""
    parts = disk_key.split('|')
    if len(parts) < 6 or parts[1] not in PHASES:
        return 'not a decision key'
    if not isinstance(backend, str) or backend not in BACKENDS:
        return 'unknown backend'
    try:
        device = torch.device(parts[2].split(':', 1)[0])
    except RuntimeError:
        return 'unknown device'
    if backend not in auto_candidates(device, parts[1], parts[4]):
        return f'not a candidate for {parts[1]} on {device.type} ({parts[4]})'
    return None


def _temporaries(path):
    folder, base = os.path.split(path)
    prefix = f'.{base}.'
    try:
        names = os.listdir(folder or '.')
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if n.startswith(prefix) and n.endswith('.tmp')]


@contextmanager
def _locked(path):
    """Hold the file's lock (see the module docstring)."""
    lock = path + '.lock'
    if fcntl is not None:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
        return
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            break
        except FileExistsError:
            try:
                if time.time() - os.path.getmtime(lock) > LOCK_TIMEOUT_S:
                    os.remove(lock)  # left by a process that died holding it
                    continue
            except OSError:
                continue
            if time.monotonic() > deadline:
                raise OSError(errno.ETIMEDOUT, f'lock {lock} held for over {LOCK_TIMEOUT_S} s')
            time.sleep(0.01)
    try:
        yield
    finally:
        os.close(fd)
        os.remove(lock)


def read_entries(path):
    """The usable entries of the file (disk key -> backend); drops the others with one log
    line per file."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get('version') != CACHE_VERSION:
        return {}
    entries = data.get('entries')
    if not isinstance(entries, dict):
        return {}
    good, bad = {}, {}
    for k, v in entries.items():
        problem = entry_problem(k, v)
        if problem is None:
            good[k] = v
        else:
            bad[k] = (v, problem)
    if bad:
        k, (v, problem) = next(iter(bad.items()))
        log_once(('cache-invalid', path), (
            f'depth-wise conv autotune cache {path}: dropped {len(bad)} entr'
            f'{"y" if len(bad) == 1 else "ies"} this process cannot run, e.g. {k!r} -> {v!r} '
            f'({problem}); those decisions are measured again'))
    return good


def save_entries(path, new):
    """Merge ``new`` (key text -> backend) into the file at ``path``."""
    folder, base = os.path.split(path)
    tmp = None
    try:
        os.makedirs(folder or '.', exist_ok=True)
        with _locked(path):
            entries = read_entries(path)  # merge: other processes may have added keys
            entries.update({_disk_key(k): v for k, v in new.items()})
            tmp = os.path.join(folder, f'.{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp')
            # 0o666 & ~umask, as for any new file; then the existing file's own bits
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            with os.fdopen(fd, 'w') as f:
                json.dump(dict(version=CACHE_VERSION, entries=entries), f, indent=0,
                          sort_keys=True)
            try:
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            except FileNotFoundError:
                pass
            os.replace(tmp, path)
            tmp = None
    except OSError as e:
        log_once(('cache-write', path), f'could not write the depth-wise conv autotune '
                 f'cache {path} ({e}); decisions are kept in memory only (set '
                 'REPLK_DW_CONV_CACHE to a writable file path, or unset it)')
    finally:
        if tmp is not None:
            try:
                os.remove(tmp)
            except OSError:
                pass


def load_entries(path):
    """Remove temporaries left by killed writers, then read the file."""
    if os.path.isdir(os.path.dirname(path) or '.'):
        try:
            with _locked(path):
                for tmp in _temporaries(path):
                    os.remove(tmp)
                return read_entries(path)
        except OSError:  # a folder we cannot write: read without cleaning
            pass
    return read_entries(path)


class State:
    """The process state of ``replk_mm.ops`` (see the module docstring)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.default_backend = None  # None: REPLK_DW_CONV_BACKEND, then 'auto'
            self._decisions = {}
            self._routes = {}
            self._route_hits = 0
            self._counters = dict.fromkeys(COUNTERS, 0)
            self._tune_seconds = 0.0
            self._check_seconds = 0.0
            self._loaded = set()
            self._excluded = {}  # (backend, device type) -> why

    # per call: keep this a dict lookup
    def route(self, signature):
        route = self._routes.get(signature)
        if route is not None:
            self._route_hits += 1
        return route

    def store_route(self, signature, route):
        with self.lock:
            self._routes[signature] = route

    def routes(self):
        """A copy of the stored routes (call signature -> Route), for reports."""
        with self.lock:
            return dict(self._routes)

    def get(self, key):
        return self._decisions.get(key)

    def put(self, key, backend):
        with self.lock:
            self._decisions[key] = backend

    def count(self, counter, n=1):
        with self.lock:
            self._counters[counter] += n

    def add_seconds(self, tune=0.0, check=0.0):
        with self.lock:
            self._tune_seconds += tune
            self._check_seconds += check

    @property
    def measured(self):
        return self._counters['measured']

    def excluded(self, backend, device_type):
        return (backend, device_type) in self._excluded

    def exclude(self, backend, device_type, why):
        """Never use ``backend`` on this device type again in this process; forget the
        decisions and routes that use it."""
        with self.lock:
            self._excluded[(backend, device_type)] = why
            self._decisions = {k: v for k, v in self._decisions.items()
                               if v != backend or _key_device_type(k) != device_type}
            self._routes.clear()

    def load(self, path):
        """Read the decisions in ``path`` once per process (those in memory win)."""
        with self.lock:
            if path is None or path in self._loaded:
                return
            self._loaded.add(path)
            prefix = _disk_key('')
            for k, v in load_entries(path).items():
                if k.startswith(prefix):
                    key = k[len(prefix):]
                    if not self.excluded(v, _key_device_type(key)):
                        self._decisions.setdefault(key, v)

    def save(self, path, new):
        if path is not None and new:
            save_entries(path, new)

    def info(self):
        with self.lock:
            return dict(self._counters, tune_seconds=self._tune_seconds,
                        check_seconds=self._check_seconds, size=len(self._decisions),
                        routes=len(self._routes), route_hits=self._route_hits,
                        excluded={f'{b} on {d}': why for (b, d), why in self._excluded.items()},
                        decisions=dict(self._decisions))


STATE = State()
