from .dispatch import (
                       BACKEND_CHOICES,
                       clear_dispatch_cache,
                       dispatch_cache_info,
                       get_default_backend,
                       set_default_backend,
)
from .dw_conv import DepthwiseConv2d, build_dw_conv, depthwise_conv2d

__all__ = [
    'DepthwiseConv2d', 'build_dw_conv', 'depthwise_conv2d', 'set_default_backend',
    'get_default_backend', 'dispatch_cache_info', 'clear_dispatch_cache', 'BACKEND_CHOICES'
]
