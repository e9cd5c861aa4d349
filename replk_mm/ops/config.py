"""Process-wide settings of ``replk_mm.ops``: the backend used where a call names none (kept,
with the rest of the process state, in :data:`~replk_mm.ops.decision_cache.STATE`), and how
``'auto'`` decides (one small module of flags, as timm keeps its layer flags).

Backend, highest priority first: the ``backend=`` argument (module, function, config),
:func:`set_default_backend`, the ``REPLK_DW_CONV_BACKEND`` environment variable, then
``'auto'``. Environment variables are read when they are needed, so a launcher or a test can
set them at any time before the first call of a shape:

============================  ===================================================================
``REPLK_DW_CONV_BACKEND``     ``auto`` | ``native`` | ``padded`` | ``fft`` | ``triton``
``REPLK_DW_CONV_AUTOTUNE``    ``measure`` (default): time new shape buckets; ``model``: never
                              time (the cost model where its constants were measured for the
                              device class, else PyTorch's conv)
``REPLK_DW_CONV_TUNE_LIMIT``  measured phase decisions per process (default 512), then as
                              ``model``
``REPLK_DW_CONV_CACHE``       unset: decisions in memory only; ``1``: also on disk in
                              ``~/.cache/replk_mm/dw_conv_autotune.json``; or a file path
                              (validated on read, merged under ``<file>.lock`` on write:
                              :mod:`.decision_cache`)
``REPLK_DW_CONV_COSTS``       a JSON file of measured GPU cost constants (the GPU check writes
                              one)
============================  ===================================================================
"""
import os

from ._log import log_once
from .decision_cache import STATE

BACKEND_CHOICES = ('auto', 'native', 'padded', 'fft', 'triton')
AUTOTUNE_MODES = ('measure', 'model')
DEFAULT_TUNE_LIMIT = 512

ENV_BACKEND = 'REPLK_DW_CONV_BACKEND'
ENV_AUTOTUNE = 'REPLK_DW_CONV_AUTOTUNE'
ENV_TUNE_LIMIT = 'REPLK_DW_CONV_TUNE_LIMIT'
ENV_CACHE = 'REPLK_DW_CONV_CACHE'
ENV_COSTS = 'REPLK_DW_CONV_COSTS'


def check_backend(backend, allow_none=True):
    """The backend name in lower case; a clear error for anything else."""
    if backend is None and allow_none:
        return backend
    if not isinstance(backend, str) or backend.lower() not in BACKEND_CHOICES:
        raise ValueError(f'unknown depth-wise conv backend {backend!r}; choose one of '
                         f'{BACKEND_CHOICES}' + (' or None (the default)' if allow_none else ''))
    return backend.lower()


class set_default_backend:
    """Set the backend used where none is given; as a context manager, restore it on exit.

    ``set_default_backend('fft')`` sets it for the process; ``with set_default_backend('native'):``
    only inside the block. ``None`` goes back to the environment variable / ``'auto'``.
    """

    def __init__(self, backend):
        backend = check_backend(backend)
        self.previous, STATE.default_backend = STATE.default_backend, backend

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        STATE.default_backend = self.previous


def _env_choice(name, choices, default):
    """The environment variable ``name`` in lower case if it is one of ``choices``; unset or
    empty gives ``default``, anything else ``default`` with a warning (once)."""
    env = os.environ.get(name, '').strip().lower()
    if not env:
        return default
    if env not in choices:
        log_once(('env', name, env), f'{name}={env!r} is not one of {choices}; using '
                 f'{default!r} (unset it or pick one of those)')
        return default
    return env


def get_default_backend():
    if STATE.default_backend is not None:
        return STATE.default_backend
    return _env_choice(ENV_BACKEND, BACKEND_CHOICES, 'auto')


def autotune_mode():
    """'measure' or 'model' (see the module docstring)."""
    return _env_choice(ENV_AUTOTUNE, AUTOTUNE_MODES, 'measure')


def tune_limit():
    """How many phase decisions one process may measure."""
    env = os.environ.get(ENV_TUNE_LIMIT, '').strip()
    if not env:
        return DEFAULT_TUNE_LIMIT
    try:
        limit = int(env)
        if limit < 0:
            raise ValueError
    except ValueError:
        log_once(('env', ENV_TUNE_LIMIT, env), f'{ENV_TUNE_LIMIT}={env!r} is not a '
                 f'non-negative integer; using {DEFAULT_TUNE_LIMIT}')
        return DEFAULT_TUNE_LIMIT
    return limit


def cache_path():
    """The decision file, or None when decisions stay in memory."""
    value = os.environ.get(ENV_CACHE, '').strip()
    if value.lower() in ('', '0', 'off', 'false', 'no'):
        return None
    if value.lower() in ('1', 'on', 'true', 'yes'):
        return os.path.join(os.path.expanduser('~'), '.cache', 'replk_mm',
                            'dw_conv_autotune.json')
    return os.path.expanduser(value)


def costs_path():
    """A JSON file of measured cost constants given by the user, or None."""
    value = os.environ.get(ENV_COSTS, '').strip()
    return os.path.expanduser(value) if value else None
