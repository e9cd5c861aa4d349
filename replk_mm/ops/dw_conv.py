"""Depth-wise convolution module used for every large (and small) kernel in RepLKNet.

`DepthwiseConv2d` is an `nn.Conv2d` (same `weight`/`bias` names and shapes), so checkpoints and
re-parameterization do not depend on which implementation runs the forward pass.
`depthwise_conv2d` is the single entry point: it crops kernel taps that only ever see padding,
then runs each phase (forward, input grad, weight grad) on the backend chosen by
:mod:`.dispatch` ('native' PyTorch, 'padded' direct convs, 'fft', 'triton'; 'auto' by default).
"""
from contextlib import nullcontext

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from . import dispatch
from .backends import BACKENDS
from .config import check_backend, get_default_backend
from .decision_cache import STATE
from .function import DepthwiseConvFunction
from .layout import memory_layout
from .routing import BACKEND_FORWARD, TORCH_CONV


def check_depthwise_args(channels, kernel_size):
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'depth-wise kernel size must be a positive odd int, got {kernel_size!r}')
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f'channels must be a positive int, got {channels!r}')


def check_call(x, weight, bias, stride, padding):
    """Validate a call; return its stride and padding as pairs."""
    if x.dim() != 4:
        raise ValueError(f'depth-wise conv expects an (N, C, H, W) input, got {tuple(x.shape)}')
    if weight.dim() != 4 or weight.shape[1] != 1 or x.shape[1] != weight.shape[0]:
        raise ValueError(f'not a depth-wise call: input {tuple(x.shape)}, '
                         f'weight {tuple(weight.shape)} (expected (C, 1, K, K) with C = input C)')
    kh, kw = weight.shape[2:]
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f'depth-wise kernel sizes must be odd (centred padding), got {kh}x{kw}')
    if bias is not None and tuple(bias.shape) != (weight.shape[0], ):
        raise ValueError(f'bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}')
    stride = tuple(_pair(stride))
    if isinstance(padding, str):
        if padding == 'valid':
            return stride, (0, 0)
        if padding == 'same' and stride == (1, 1):
            return stride, (kh // 2, kw // 2)
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same' (stride 1), "
                         f'got {padding!r}')
    padding = _pair(padding)
    if len(padding) != 2 or min(padding) < 0:
        raise ValueError(f'padding must be non-negative, got {padding!r}')
    return stride, tuple(padding)


def depthwise_conv2d(x, weight, bias=None, stride=1, padding=0, backend=None):
    """Depth-wise conv: `weight` is (C, 1, K, K) with odd K and `x` is (N, C, H, W).

    Same result as ``F.conv2d(x, weight, bias, stride, padding, groups=C)``. ``backend``:
    None (the default: see :func:`set_default_backend`), 'auto', 'native', 'padded', 'fft' or
    'triton'. Strides other than 1 always run natively.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        # exporters and compilers see plain conv2d
        return F.conv2d(x, weight, bias, stride, padding, 1, weight.shape[0])
    unbatched = x.dim() == 3
    if unbatched:
        x = x.unsqueeze(0)
    name = get_default_backend() if backend is None else check_backend(backend)
    device = 'cuda' if x.is_cuda else 'cpu' if x.is_cpu else x.device.type
    autocast = device in ('cpu', 'cuda') and torch.is_autocast_enabled(device)
    if autocast and name != 'native':
        # conv2d runs in the autocast dtype; the custom path must see the same inputs
        dtype = torch.get_autocast_dtype(device)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    grad = torch.is_grad_enabled()
    need_dx = grad and x.requires_grad
    need_dw = grad and weight.requires_grad
    # How a call runs depends only on this signature: look it up, do not re-derive it (this
    # path is the per-call overhead of the op).
    signature = (name, x.shape, x.dtype, x.device, memory_layout(x), weight.shape, weight.dtype,
                 None if bias is None else (bias.shape, bias.dtype, grad and bias.requires_grad),
                 tuple(stride) if type(stride) is list else stride,
                 tuple(padding) if type(padding) is list else padding,
                 need_dx, need_dw, torch.get_num_threads(),
                 torch.are_deterministic_algorithms_enabled())
    route = STATE.route(signature)
    if route is None:  # a new signature: validate once, then route
        stride, padding = check_call(x, weight, bias, stride, padding)
        route = dispatch.route(signature, name, x, weight, bias, stride, padding, need_dx,
                               need_dw)
    # taps that only ever see padding are dropped (their gradient is exactly zero)
    window = route.window
    w = weight if window is None else weight[:, :, window[0]:window[1], window[2]:window[3]]
    if route.runner == TORCH_CONV:
        out = F.conv2d(x, w, bias, route.stride, route.padding, 1, weight.shape[0])
    else:
        with torch.autocast(device, enabled=False) if autocast else nullcontext():
            if route.runner == BACKEND_FORWARD:
                out = BACKENDS[route.plan.fwd].fwd(x, w, bias, route.geometry)
            else:
                out = DepthwiseConvFunction.apply(x, w, bias, route.geometry, route.plan)
    return out.squeeze(0) if unbatched else out


class DepthwiseConv2d(nn.Conv2d):
    """Square, odd-kernel depth-wise conv with 'same' padding by default.

    ``backend`` (None = the process default, normally 'auto') picks the implementation; it does
    not change the parameters, so checkpoints and re-parameterization are backend-independent.
    """

    def __init__(self, channels, kernel_size, stride=1, padding=None, bias=False, backend=None):
        check_depthwise_args(channels, kernel_size)
        self.backend = check_backend(backend)
        padding = kernel_size // 2 if padding is None else padding
        super().__init__(channels, channels, kernel_size, stride=stride, padding=padding,
                         groups=channels, bias=bias)

    def forward(self, x):
        if self.padding_mode != 'zeros' or self.dilation != (1, 1):
            return super().forward(x)
        return depthwise_conv2d(x, self.weight, self.bias, self.stride, self.padding,
                                backend=self.backend)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.backend is None else f'{s}, backend={self.backend!r}'


def build_dw_conv(channels, kernel_size, stride=1, bias=False, backend=None):
    """The one factory RepLKNet builds its depth-wise convs with."""
    return DepthwiseConv2d(channels, kernel_size, stride=stride, bias=bias, backend=backend)
