"""replk_mm: RepLKNet (CVPR 2022) for the OpenMMLab 2.x stack.

Activate in a config with::

    custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)

Two layers, by dependency:

* ``replk_mm.ops`` (the fast large-kernel depth-wise conv), ``replk_mm.layers`` (building blocks,
  the RepLKNet trunk) and ``replk_mm.switch_to_deploy`` need torch only;
* everything else is the OpenMMLab plugin (mmengine, mmcv, and mmseg / mmdet / mmpretrain where
  installed). It is imported and registered here when mmengine is installed. Without mmengine
  (e.g. a GPU box with only torch and Triton) ``import replk_mm.ops`` still works, and touching
  a plugin name says what to install.

With mmengine installed, importing replk_mm also adds the types mmengine checkpoints hold
(its message hub, numpy arrays and scalars) to torch's weights-only allow-list
(:func:`replk_mm.fileio.register_mmengine_checkpoint_globals`), so that any mmengine Runner in
the process resumes without full pickle; nothing else is allowed.
"""
from .layers import switch_to_deploy
from .version import __version__

try:
    import mmengine  # noqa: F401
except ModuleNotFoundError as exc:
    if exc.name != 'mmengine':
        raise  # mmengine is installed but broken: say so, do not hide it
    _PLUGIN_MISSING = exc
else:
    _PLUGIN_MISSING = None
    from .fileio import register_mmengine_checkpoint_globals
    register_mmengine_checkpoint_globals()
    from . import models as _models
    from .engine import optimizers as _optimizers  # noqa: F401  (the layer-decay constructor)
    from .models import RepLKNet
    from .models.backbones import __all__ as _backbones
    from .registry import MODELS, register_downstream

    for _name in _backbones:
        register_downstream(_name, getattr(_models.backbones, _name))

__all__ = ['RepLKNet', 'switch_to_deploy', 'MODELS', '__version__']

_PLUGIN_NAMES = {'RepLKNet', 'MODELS', 'register_downstream', 'apis',
                 'analysis', 'datasets', 'engine', 'fileio', 'models', 'registry'}


def __getattr__(name):
    if _PLUGIN_MISSING is not None and name in _PLUGIN_NAMES:
        raise ImportError(
            f'replk_mm.{name} is part of the OpenMMLab plugin, which needs mmengine and mmcv '
            f"(not installed: {_PLUGIN_MISSING}). Install them with `bash tools/setup_env.sh` "
            "or `pip install 'replk_mm[all]'` after building mmcv; with torch alone "
            'replk_mm.ops, replk_mm.layers and replk_mm.switch_to_deploy work.')
    raise AttributeError(f"module 'replk_mm' has no attribute {name!r}")
