"""mmengine integration: atomic checkpoints, a strict Runner, optimizer constructors.

Registers ``AtomicCheckpointHook`` in mmengine's ``HOOKS``, ``ReplkRunner`` in ``RUNNERS`` and
the RepLKNet layer-decay optimizer constructor. Safe checkpoint reading is
:mod:`replk_mm.fileio`; loading into models is :mod:`replk_mm.models.checkpoint`.
"""
from . import optimizers  # noqa: F401  (registers RepLKNetLayerDecayOptimWrapperConstructor)
from .hooks import AtomicCheckpointHook
from .runner import ReplkRunner, ResumeError

__all__ = ['AtomicCheckpointHook', 'ReplkRunner', 'ResumeError']
