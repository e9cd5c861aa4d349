"""Safe checkpoint reading: ``torch.load(weights_only=True)``, mmengine checkpoints included.

A leaf of the package (torch, numpy and mmengine only): ``replk_mm.models`` (the checkpoint
loader) and ``replk_mm.engine`` (the Runner, the checkpoint hook) both read through it.

torch >= 2.6 unpickles with ``weights_only=True`` by default: only tensors, plain containers
and an allow-list of types. mmengine 0.10.7 checkpoints also hold its message hub
(``HistoryBuffer`` objects) and numpy arrays / scalars, so ``runner.resume()`` fails under that
default. Instead of re-enabling full pickle (which runs any code a file holds),
:func:`register_mmengine_checkpoint_globals` adds exactly those extra types to torch's
process-wide allow-list; ``import replk_mm`` calls it, so that a plain mmengine Runner of a
config with ``custom_imports=dict(imports=['replk_mm'])`` resumes too.
:func:`read_checkpoint` turns torch's refusals into messages that name the file and what was
expected. A checkpoint that needs any other type (an old checkpoint saved with full pickle, or a
crafted one) is refused unless ``REPLK_ALLOW_UNSAFE_CHECKPOINTS=1`` is set, in which case it is
read with full pickle and a warning says so.
"""
import os
import os.path as osp
import pickle
import warnings
import zipfile
from contextlib import contextmanager
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log

from .errors import UserError

__all__ = ['ALLOW_UNSAFE_ENV', 'CheckpointError', 'NotACheckpointError', 'UnsafeCheckpointError',
           'allow_mmengine_checkpoints', 'mmengine_checkpoint_globals', 'read_checkpoint',
           'register_mmengine_checkpoint_globals', 'unsafe_loading_allowed']

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


def _missing_globals():
    present = set(map(_global_key, torch.serialization.get_safe_globals()))
    return [g for g in mmengine_checkpoint_globals() if _global_key(g) not in present]


def register_mmengine_checkpoint_globals():
    """Add :func:`mmengine_checkpoint_globals` to torch's process-wide weights-only allow-list
    (``torch.serialization.add_safe_globals``); ``import replk_mm`` calls it.

    Every loader in the process then reads mmengine checkpoints weights-only, mmengine's own
    ``Runner.resume`` included. Only those types are added: unpickling still cannot call
    anything else, so a crafted checkpoint is refused as before. Idempotent."""
    missing = _missing_globals()
    if missing:
        torch.serialization.add_safe_globals(missing)


@contextmanager
def allow_mmengine_checkpoints():
    """While open, ``torch.load(weights_only=True)`` also accepts mmengine checkpoints.

    Uses torch's ``torch.serialization.safe_globals`` with the types of
    :func:`mmengine_checkpoint_globals` that are not allowed already, so leaving the context
    removes only what it added (a user's own ``add_safe_globals`` stay). After ``import
    replk_mm`` nothing is missing; :func:`read_checkpoint` still opens it, so that it reads
    mmengine checkpoints even after a user's ``torch.serialization.clear_safe_globals()``.
    """
    with torch.serialization.safe_globals(_missing_globals()):
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
            torch.hub's checkpoint folder, rank 0 first in a distributed run), an mmengine
            model-zoo name (``open-mmlab://``, ``torchvision://``, ``mmcls://``: resolved to
            its URL, then read as one), or any other prefix mmengine's ``CheckpointLoader``
            knows (``s3://`` ...), read by mmengine inside :func:`allow_mmengine_checkpoints`.
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
        # weights-only unpickling refused something: torch names what, for a torch.save archive
        if not zipfile.is_zipfile(path):
            raise _not_a_checkpoint(path, exc, shown) from exc
        checkpoint = _read_unsafe(path, map_location, _refused_globals(path, exc), exc, shown)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise _not_a_checkpoint(path, exc, shown) from exc
    return _check_dict(checkpoint, shown)


def _check_dict(checkpoint, where):
    if not isinstance(checkpoint, dict):
        raise NotACheckpointError(
            f'{where} holds a {type(checkpoint).__name__}, expected a dict (a state dict, or a '
            "checkpoint with a 'state_dict' entry as tools/train.py writes)")
    return checkpoint


def _refused_globals(path, exc):
    """What weights-only reading refused in the archive ``path``: the globals outside the
    allow-list (torch's ``get_unsafe_globals_in_checkpoint``), else the refusal itself (an
    allowed callable that refused its arguments, e.g. the restricted ``getattr``)."""
    with allow_mmengine_checkpoints():
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    if unsafe:
        return ', '.join(sorted(unsafe))
    return f'{type(exc).__name__}: {_first_line(exc)}'


def _first_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else repr(exc))[:200]


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
        what = ('a plain pickle file, not a PyTorch checkpoint (or one written by torch < 1.6, '
                'whose format weights-only reading cannot check: re-save it with a current '
                'torch.save)')
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


# mmengine's load_from_http (and torch.hub.load_state_dict_from_url under it) unpickles the
# download with weights_only=False, i.e. full pickle: URLs are downloaded with torch.hub's
# downloader and read here instead.
def _download(url):
    """The local copy of ``url`` in torch.hub's checkpoint folder (downloaded if missing;
    rank 0 first in a distributed run, as mmengine's ``load_from_http``)."""
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


# mmengine's model-zoo schemes: name -> URL tables (mmengine.runner.checkpoint). Their loaders
# end in load_from_http, i.e. full pickle, so the name is resolved here and the URL read as any
# other.
ZOO_SCHEMES = {'open-mmlab://': 'get_external_models', 'openmmlab://': 'get_external_models',
               'torchvision://': 'get_torchvision_models', 'modelzoo://': 'get_torchvision_models',
               'mmcls://': 'get_mmcls_models'}


def _read_from_zoo(filename, prefix, map_location):
    from mmengine.runner import checkpoint as mmengine_checkpoint
    name = filename[len(prefix):]
    if prefix in ('open-mmlab://', 'openmmlab://'):
        name = mmengine_checkpoint.get_deprecated_model_names().get(name, name)
    urls = getattr(mmengine_checkpoint, ZOO_SCHEMES[prefix])()
    if name not in urls:
        raise FileNotFoundError(f'{filename}: mmengine knows no model {name!r} under {prefix}')
    url = urls[name]
    if url.startswith(URL_PREFIXES):
        checkpoint = read_checkpoint(url, map_location)
    else:  # open-mmlab:// names may point into mmengine's home folder
        checkpoint = read_checkpoint(osp.join(mmengine_checkpoint._get_mmengine_home(), url),
                                     map_location)
    if prefix == 'mmcls://':
        checkpoint = mmengine_checkpoint._process_mmcls_checkpoint(checkpoint)
    return checkpoint


def _read_with_mmengine(filename, map_location):
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefix in ZOO_SCHEMES:
        if filename.startswith(prefix):
            return _read_from_zoo(filename, prefix, map_location)
    try:
        with allow_mmengine_checkpoints():
            checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    except pickle.UnpicklingError as exc:
        raise _refusal(filename, f'{type(exc).__name__}: {_first_line(exc)}') from exc
    return _check_dict(checkpoint, filename)
