"""Optimizer-wrapper constructors for models on replk_mm backbones (registered in mmengine's
root registry, so every scope finds them: mmpretrain, mmseg, mmdet)."""
from .layer_decay import RepLKNetLayerDecayOptimWrapperConstructor, layer_depth_function

__all__ = ['RepLKNetLayerDecayOptimWrapperConstructor', 'layer_depth_function']
