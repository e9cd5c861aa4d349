"""replk_mm: RepLKNet (CVPR 2022) for the OpenMMLab 2.x stack.

Activate in a config with::

    custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)
"""
from . import engine  # noqa: F401  (registers the checkpoint loader fix)
from .models import RepLKNet, switch_to_deploy
from .registry import MODELS, register_downstream
from .version import __version__

register_downstream('RepLKNet', RepLKNet)

__all__ = ['RepLKNet', 'switch_to_deploy', 'MODELS', '__version__']
