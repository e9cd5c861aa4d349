"""Reading checkpoints with ``torch.load(weights_only=True)``, mmengine checkpoints included.

torch >= 2.6 unpickles with ``weights_only=True`` by default: only tensors, plain containers
and an allowlist of types. mmengine 0.10.7 checkpoints also hold its message hub
(``HistoryBuffer`` objects) and numpy arrays / scalars, so ``runner.resume()`` fails under that
default. Instead of re-enabling full pickle (which runs any code a file holds),
:func:`allow_mmengine_checkpoints` allows exactly those extra types, through torch's
safe-globals mechanism, while it is open; :func:`read_checkpoint` reads inside it and turns
torch's unpickling errors into messages that name the file and what was expected.

Importing this module changes nothing: replk_mm's tools and APIs open the context where they
load. A checkpoint that needs any other type (an old checkpoint saved with full pickle, or a
crafted one) is refused unless ``REPLK_ALLOW_UNSAFE_CHECKPOINTS=1`` is set, in which case it is
read with full pickle and a warning says so.
"""
import os
import os.path as osp
import pickle
import re
import warnings
import zipfile
from contextlib import contextmanager
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log

from ..errors import UserError

__all__ = ['ALLOW_UNSAFE_ENV', 'CheckpointError', 'NotACheckpointError', 'UnsafeCheckpointError',
           'allow_mmengine_checkpoints', 'mmengine_checkpoint_globals', 'read_checkpoint',
           'unsafe_loading_allowed']

ALLOW_UNSAFE_ENV = 'REPLK_ALLOW_UNSAFE_CHECKPOINTS'
URL_PREFIXES = ('http://', 'https://')


class CheckpointError(ValueError, UserError):
    """A file could not be read as a checkpoint; the message names it and says why."""


class NotACheckpointError(CheckpointError):
    """The file is not a PyTorch checkpoint (empty, text, random bytes, truncated, not a dict)."""


class UnsafeCheckpointError(CheckpointError):
    """Reading the file needs a type that weights-only loading does not allow."""


def _numpy_core():
    # numpy 2 moved numpy.core to numpy._core; checkpoints name whichever wrote them.
    return getattr(np, '_core', None) or np.core


def _numeric_dtype_classes():
    """numpy's dtype classes for numbers, booleans and strings (``numpy.dtypes.Float64DType``
    ...): the type of ``arr.dtype``, which numpy >= 1.25 pickles by name. Object and void
    dtypes are left out: they are the ones whose arrays can carry arbitrary objects."""
    names = ('Bool', 'Int8', 'UInt8', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Int64', 'UInt64',
             'Long', 'ULong', 'LongLong', 'ULongLong', 'Byte', 'UByte', 'Short', 'UShort',
             'Float16', 'Float32', 'Float64', 'LongDouble', 'Complex64', 'Complex128',
             'CLongDouble', 'Str', 'Bytes')
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is None:
        return []
    found = {getattr(dtypes, f'{name}DType') for name in names
             if hasattr(dtypes, f'{name}DType')}
    return sorted(found, key=lambda t: t.__name__)


# HistoryBuffer pickles its class-level statistics methods; with torch's default protocol 2
# a method is written as getattr(HistoryBuffer, 'mean').
HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(obj, name):
    """``getattr`` as checkpoints use it, restricted to HistoryBuffer's statistics methods."""
    if obj is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}): only HistoryBuffer statistics '
                                 f'methods {HISTORY_BUFFER_METHODS} may be looked up')


def mmengine_checkpoint_globals():
    """The types and functions (beyond torch's default allowlist) mmengine 0.10.7 checkpoints
    need, as entries for ``torch.serialization.safe_globals``.

    Found by saving real Runner checkpoints (AdamW and SGD, LinearLR / PolyLR / MultiStepLR /
    CosineAnnealingLR, an AMP loss scaler, ``save_best`` with numpy metric values) and listing
    what weights-only loading rejects: the message hub's ``HistoryBuffer`` (and the statistics
    methods it pickles, through a ``getattr`` restricted to them), and numpy arrays, dtypes and
    scalars. Both numpy module spellings are listed so that checkpoints written under numpy 1.x
    and 2.x read under either.
    """
    multiarray = _numpy_core().multiarray
    entries = [HistoryBuffer, np.ndarray, np.dtype,
               (history_buffer_getattr, 'builtins.getattr')]
    entries += [(getattr(HistoryBuffer, name),
                 f'mmengine.logging.history_buffer.HistoryBuffer.{name}')
                for name in HISTORY_BUFFER_METHODS]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    entries += _numeric_dtype_classes()
    return entries


@contextmanager
def allow_mmengine_checkpoints():
    """While open, ``torch.load(weights_only=True)`` also accepts mmengine checkpoints.

    Uses torch's ``torch.serialization.safe_globals`` with the types of
    :func:`mmengine_checkpoint_globals` that are not allowed already, so leaving the context
    removes only what it added (a user's own ``add_safe_globals`` stay). torch keeps this
    allowlist per process, not per thread.
    """
    present = set(map(_global_key, torch.serialization.get_safe_globals()))
    missing = [g for g in mmengine_checkpoint_globals() if _global_key(g) not in present]
    with torch.serialization.safe_globals(missing):
        yield


def _global_key(entry):
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


def unsafe_loading_allowed():
    """Whether the documented opt-in for full-pickle checkpoints is set."""
    return os.environ.get(ALLOW_UNSAFE_ENV, '').strip().lower() in ('1', 'true', 'yes')


def read_checkpoint(filename, map_location='cpu'):
    """Read a checkpoint (local path or http(s) URL) with weights-only unpickling.

    Args:
        filename (str | os.PathLike): a local file, an ``http(s)://`` URL (downloaded once into
            torch.hub's checkpoint folder, rank 0 first in a distributed run), or any other
            prefix mmengine's ``CheckpointLoader`` knows (``open-mmlab://``, ``s3://`` ...),
            which is then read by mmengine inside :func:`allow_mmengine_checkpoints`.
        map_location: as for ``torch.load``.

    Returns:
        dict: the checkpoint.

    Raises:
        FileNotFoundError: the file does not exist.
        NotACheckpointError: the file is empty, not written by ``torch.save``, truncated, or
            holds something other than a dict.
        UnsafeCheckpointError: reading it needs a type weights-only loading does not allow
            (it could run code); set ``REPLK_ALLOW_UNSAFE_CHECKPOINTS=1`` to read it with full
            pickle if you trust it.
    """
    filename = os.fspath(filename)
    if filename.startswith(URL_PREFIXES):
        path = _download(filename)
        return _read_local(path, map_location, shown=f'{filename} (downloaded to {path})')
    if '://' in filename:
        return _read_with_mmengine(filename, map_location)
    path = osp.expanduser(filename)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    return _read_local(path, map_location, shown=path)


def _read_local(path, map_location, shown):
    """Read the local file ``path``; messages call it ``shown``."""
    if osp.getsize(path) == 0:
        raise NotACheckpointError(f'{shown} is empty (0 bytes; an interrupted copy or save?); '
                                  'expected a file written by torch.save')
    try:
        with allow_mmengine_checkpoints():
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _refused_global(exc)
        if refused is None and not zipfile.is_zipfile(path):
            raise _not_a_checkpoint(path, exc, shown) from exc
        checkpoint = _read_unsafe(path, map_location, refused or _first_line(exc), exc, shown)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise _not_a_checkpoint(path, exc, shown) from exc
    return _check_dict(checkpoint, shown)


def _check_dict(checkpoint, where):
    if not isinstance(checkpoint, dict):
        raise NotACheckpointError(
            f'{where} holds a {type(checkpoint).__name__}, expected a dict (a state dict, or a '
            "checkpoint with a 'state_dict' entry as tools/train.py writes)")
    return checkpoint


# What torch's weights-only unpickler names when it refuses something.
_REFUSED = (re.compile(r'GLOBAL (\S+) was not an allowed global'),
            re.compile(r'unsupported GLOBAL (\S+) whose module'),
            re.compile(r"but got <class '([^']+)'>"),
            re.compile(r'unrecognized function (\S+)'),
            re.compile(r'(getattr\(.*?\)): only HistoryBuffer'))


def _refused_global(exc):
    for pattern in _REFUSED:
        found = pattern.search(str(exc))
        if found:
            return found.group(1)
    return None


def _first_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if 'error' in line.lower()]
    return (lines[-1] if lines else str(exc))[:200]


def _refusal(path, needs):
    return UnsafeCheckpointError(
        f'{path}: refused to load. Reading it needs {needs}, which weights-only loading does '
        'not allow (unpickling it can run arbitrary code). If you trust the file (e.g. an old '
        f'checkpoint saved with full pickle), set {ALLOW_UNSAFE_ENV}=1 to load it with full '
        'pickle, then re-save it with torch.save(state_dict) (docs/robustness.md).')


def _read_unsafe(path, map_location, needs, exc, shown):
    if not unsafe_loading_allowed():
        raise _refusal(shown, needs) from exc
    message = (f'{shown}: loading with full pickle (weights_only=False) because '
               f'{ALLOW_UNSAFE_ENV} is set: this runs any code the file holds ({needs})')
    warnings.warn(message, stacklevel=3)
    print_log(message, logger='current', level=30)
    return torch.load(path, map_location=map_location, weights_only=False)


def _not_a_checkpoint(path, exc, shown):
    expected = 'expected a file written by torch.save'
    if zipfile.is_zipfile(path):  # a complete archive torch could not read: say why
        return NotACheckpointError(f'{shown}: torch.load cannot read this zip archive ({expected}'
                                   f'): {type(exc).__name__}: {_first_line(exc)}')
    with open(path, 'rb') as f:
        head = f.read(512)
    if head.startswith(b'PK\x03\x04'):
        what = 'a truncated or corrupt checkpoint (an interrupted save, copy or download?)'
    elif head[:1] == b'\x80' and head[1:2] in (b'\x02', b'\x03', b'\x04', b'\x05'):
        what = 'a plain pickle file, not a PyTorch checkpoint'
    elif _is_text(head):
        what = 'a text file, not a PyTorch checkpoint'
    else:
        what = f'not a PyTorch checkpoint (it starts with {head[:8]!r})'
    return NotACheckpointError(f'{shown}: {what}; {expected}')


def _is_text(head):
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in '\r\n\t' for c in text)


def _download(url):
    """The local copy of ``url`` in torch.hub's checkpoint folder (downloaded if missing)."""
    from mmengine.dist import barrier, get_dist_info
    name = osp.basename(urlparse(url).path)
    if not name:
        raise ValueError(f'{url}: a checkpoint URL must end with a file name')
    folder = osp.join(torch.hub.get_dir(), 'checkpoints')
    path = osp.join(folder, name)

    def fetch():
        if not osp.isfile(path):
            os.makedirs(folder, exist_ok=True)
            print_log(f'downloading {url} to {path}', logger='current')
            # writes to a temporary name and renames: an interrupted download leaves no file
            torch.hub.download_url_to_file(url, path, progress=False)

    rank, world_size = get_dist_info()
    if rank == 0:
        fetch()
    if world_size > 1:
        barrier()
        if rank > 0:
            fetch()
    return path


def _read_with_mmengine(filename, map_location):
    from mmengine.runner.checkpoint import CheckpointLoader
    try:
        with allow_mmengine_checkpoints():
            checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    except pickle.UnpicklingError as exc:
        raise _refusal(filename, _refused_global(exc) or _first_line(exc)) from exc
    return _check_dict(checkpoint, filename)
