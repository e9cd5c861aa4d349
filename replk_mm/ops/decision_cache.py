"""Measured ``'auto'`` decisions (key text -> backend name) in memory, optionally on disk, with
the counters :func:`~replk_mm.ops.dispatch_cache_info` reports.

On disk (``REPLK_DW_CONV_CACHE``): one JSON file ``{"version": 2, "entries": {...}}`` whose
entries are keyed by ``torch<version>|<key text>`` (the key holds the device and thread count),
so later processes, e.g. every rank of a distributed run, reuse the same choices. A file of
another version is ignored and rewritten; writes merge with what other processes added and
replace the file atomically. Only measured decisions are stored: untimed ones are a function
of the call and are recomputed.
"""
import json
import os
import tempfile
import threading

import torch

from ._log import log_once
from .backends import BACKENDS

CACHE_VERSION = 2
COUNTERS = ('hits', 'misses', 'measured', 'modelled', 'native_fallbacks')


def _disk_key(key):
    return f'torch{torch.__version__}|{key}'


def _read(path):
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
    return {k: v for k, v in entries.items() if v in BACKENDS}


class DecisionCache:

    def __init__(self):
        self._lock = threading.RLock()
        self._decisions = {}
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._tune_seconds = 0.0
        self._loaded = set()

    def get(self, key):
        return self._decisions.get(key)

    def put(self, key, backend):
        with self._lock:
            self._decisions[key] = backend

    def count(self, counter, n=1):
        with self._lock:
            self._counters[counter] += n

    def add_tune_time(self, seconds):
        with self._lock:
            self._tune_seconds += seconds

    @property
    def measured(self):
        return self._counters['measured']

    def load(self, path):
        """Read the decisions in ``path`` once per process (those in memory win)."""
        with self._lock:
            if path is None or path in self._loaded:
                return
            self._loaded.add(path)
            prefix = _disk_key('')
            for k, v in _read(path).items():
                if k.startswith(prefix):
                    self._decisions.setdefault(k[len(prefix):], v)

    def save(self, path, new):
        """Add ``new`` (key -> backend) to the file at ``path``."""
        if path is None or not new:
            return
        folder = os.path.dirname(path) or '.'
        try:
            os.makedirs(folder, exist_ok=True)
            entries = _read(path)  # merge: other processes may have added keys
            entries.update({_disk_key(k): v for k, v in new.items()})
            fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
            with os.fdopen(fd, 'w') as f:
                json.dump(dict(version=CACHE_VERSION, entries=entries), f, indent=0,
                          sort_keys=True)
            os.replace(tmp, path)
        except OSError as e:
            log_once(('cache-write', path), f'could not write the depth-wise conv autotune '
                     f'cache {path} ({e}); decisions are kept in memory only')

    def info(self):
        with self._lock:
            return dict(self._counters, tune_seconds=self._tune_seconds,
                        size=len(self._decisions), decisions=dict(self._decisions))

    def clear(self):
        with self._lock:
            self._decisions.clear()
            self._loaded.clear()
            self._counters = dict.fromkeys(COUNTERS, 0)
            self._tune_seconds = 0.0
