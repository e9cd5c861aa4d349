"""The fast large-kernel depth-wise conv (torch only; Triton optional, on GPUs).

Modules, by what they are: :mod:`.dw_conv` (the op, module and factory), :mod:`.config`
(backend policy and environment variables), :mod:`.dispatch` (how 'auto' decides),
:mod:`.keys` (shape buckets), :mod:`.timing` (check and time candidates), :mod:`.cost_model`,
:mod:`.decision_cache` (all process state: default backend, decisions, routes, counters, and
the decision file), :mod:`.routing` (the per-call route), :mod:`.backends` (the registry of
implementations), :mod:`.geometry` (kernel cropping), :mod:`.fused` (a conv and its
activation / residual add in one oneDNN call, for CPU inference).
"""
from .config import BACKEND_CHOICES, get_default_backend, set_default_backend
from .dispatch import clear_dispatch_cache, dispatch_cache_info
from .dw_conv import DepthwiseConv2d, build_dw_conv, depthwise_conv2d
from .fused import conv2d_act, conv2d_add, linear_act

__all__ = [
    'DepthwiseConv2d', 'build_dw_conv', 'depthwise_conv2d', 'set_default_backend',
    'get_default_backend', 'dispatch_cache_info', 'clear_dispatch_cache', 'BACKEND_CHOICES',
    'conv2d_act', 'conv2d_add', 'linear_act'
]
