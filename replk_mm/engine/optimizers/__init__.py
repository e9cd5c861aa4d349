"""Optimizer-wrapper constructors for RepLKNet models (registered in mmengine's root registry,
so every scope finds them: mmpretrain, mmseg, mmdet)."""
from .layer_decay import (
                          LayerId,
                          RepLKNetLayerDecayOptimWrapperConstructor,
                          find_replknet,
                          layer_decay_scale,
                          replknet_layer_id,
)

__all__ = ['LayerId', 'RepLKNetLayerDecayOptimWrapperConstructor', 'find_replknet',
           'layer_decay_scale', 'replknet_layer_id']
