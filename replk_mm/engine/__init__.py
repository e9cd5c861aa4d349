"""mmengine integration: safe checkpoint reading, atomic checkpoints, a strict Runner.

Importing it changes nothing about how other code loads checkpoints (no global safe globals,
no loader re-registration); it registers ``AtomicCheckpointHook`` in mmengine's ``HOOKS`` and
``ReplkRunner`` in ``RUNNERS`` and the RepLKNet layer-decay optimizer constructor.
"""
from . import optimizers  # noqa: F401  (registers RepLKNetLayerDecayOptimWrapperConstructor)
from .hooks import AtomicCheckpointHook
from .runner import ReplkRunner, ResumeError
from .safe_load import (
    ALLOW_UNSAFE_ENV,
    CheckpointError,
    NotACheckpointError,
    UnsafeCheckpointError,
    allow_mmengine_checkpoints,
    read_checkpoint,
)


def load_from_local(filename, map_location=None):
    """Kept for compatibility: :func:`read_checkpoint` of a local file (weights-only)."""
    return read_checkpoint(filename, map_location=map_location)


def load_from_url(filename, map_location=None, model_dir=None, progress=True):
    """Kept for compatibility: :func:`read_checkpoint` of an http(s) URL (weights-only).
    ``model_dir`` and ``progress`` are ignored: the file goes to torch.hub's folder."""
    return read_checkpoint(filename, map_location=map_location)


__all__ = ['ALLOW_UNSAFE_ENV', 'AtomicCheckpointHook', 'CheckpointError', 'NotACheckpointError',
           'ReplkRunner', 'ResumeError', 'UnsafeCheckpointError', 'allow_mmengine_checkpoints',
           'load_from_local', 'load_from_url', 'read_checkpoint']
