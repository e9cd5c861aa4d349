"""Structural re-parameterization for any model that contains RepLKNet blocks.

The implementation is the torch-only, backbone-independent one in ``replk_mm.layers``; these
names stay here for existing imports.
"""
from ..layers.reparam import ReparamModule, is_deployed, switch_to_deploy

__all__ = ['switch_to_deploy', 'is_deployed', 'ReparamModule']
