"""Depth-wise convolution module used for every large (and small) kernel in RepLKNet.

`DepthwiseConv2d` is an `nn.Conv2d` (same `weight`/`bias` names and shapes), so checkpoints and
re-parameterization do not depend on which implementation runs the forward pass.
`depthwise_conv2d` is the single entry point: it crops kernel taps that only ever see padding,
then runs each phase (forward, input grad, weight grad) on the backend chosen by `dispatch`
('native' PyTorch, 'padded' direct convs, 'fft', 'triton'; 'auto' by default).
"""
import logging
from contextlib import nullcontext

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from . import dispatch
from .backends import BACKENDS
from .function import DepthwiseConvFunction
from .geometry import crop_geometry


def check_depthwise_args(channels, kernel_size):
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'depth-wise kernel size must be a positive odd int, got {kernel_size!r}')
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f'channels must be a positive int, got {channels!r}')


def _check_call(x, weight, bias):
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


def _padding(padding, kh, kw, stride):
    if isinstance(padding, str):
        if padding == 'valid':
            return (0, 0)
        if padding == 'same' and stride == (1, 1):
            return (kh // 2, kw // 2)
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same' (stride 1), "
                         f'got {padding!r}')
    padding = _pair(padding)
    if len(padding) != 2 or min(padding) < 0:
        raise ValueError(f'padding must be non-negative, got {padding!r}')
    return padding


def _accelerable(x, weight, bias, stride):
    return (stride == (1, 1) and x.device.type in ('cpu', 'cuda') and x.dtype.is_floating_point
            and weight.dtype == x.dtype and (bias is None or bias.dtype == x.dtype))


def _route(name, x, weight, bias, stride, padding, need_dx, need_dw):
    """Validate a call and decide how it runs: ('conv', stride, padding) for PyTorch's conv
    (possibly on the cropped kernel), or ('fwd' | 'fn', geometry, crop window, plan)."""
    _check_call(x, weight, bias)
    kh, kw = weight.shape[2:]
    stride = _pair(stride)
    padding = _padding(padding, kh, kw, stride)
    native = name == 'native' or not _accelerable(x, weight, bias, stride)
    geometry = None if native else crop_geometry(x.shape[2], x.shape[3], kh, kw, *padding)
    if geometry is None:
        if name not in ('native', 'auto') and stride != (1, 1):
            dispatch.log_once(('stride', name), f'depth-wise conv backend {name!r} handles '
                              'stride 1 only; strided calls run natively',
                              level=logging.INFO)
        return ('conv', stride, padding, None, 0)
    row, col, geom = geometry
    w = weight[:, :, row:row + geom.kh, col:col + geom.kw]
    plan = dispatch.plan_for(name, x, w, bias, geom, need_dx, need_dw)
    phases = 1 + need_dx + need_dw if name == 'auto' else 0  # decisions this call looks up
    crop = None if (geom.kh, geom.kw) == (kh, kw) else (row, row + geom.kh, col, col + geom.kw)
    if plan == dispatch.NATIVE_PLAN and geom.symmetric:
        return ('conv', (1, 1), (geom.pt, geom.pl), crop, phases)
    return ('fn' if need_dx or need_dw or (bias is not None and bias.requires_grad) else 'fwd',
            geom, crop, plan, phases)


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
    name = dispatch.get_default_backend() if backend is None else dispatch.check_backend(backend)
    device = 'cuda' if x.is_cuda else 'cpu' if x.is_cpu else x.device.type
    autocast = device in ('cpu', 'cuda') and torch.is_autocast_enabled(device)
    if autocast and name != 'native':
        # conv2d runs in the autocast dtype; the custom path must see the same inputs
        dtype = torch.get_autocast_dtype(device)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or (
        bias is not None and bias.requires_grad))
    # The route of a call depends only on this signature: look it up, do not re-derive it
    # (this path costs a few microseconds per call).
    key = (name, x.shape, x.dtype, x.device,
           x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last) and 'cl',
           weight.shape, weight.dtype,
           None if bias is None else (bias.shape, bias.dtype, bias.requires_grad and grad),
           tuple(stride) if type(stride) is list else stride,
           tuple(padding) if type(padding) is list else padding,
           grad and x.requires_grad, grad and weight.requires_grad, torch.get_num_threads())
    route = dispatch._routes.get(key)
    if route is None:
        route = _route(name, x, weight, bias, stride, padding, grad and x.requires_grad,
                       grad and weight.requires_grad)
        dispatch._routes[key] = route
    else:
        dispatch._stats['hits'] += route[-1]
    kind, crop = route[0], route[3 if route[0] == 'conv' else 2]
    # taps that only ever see padding are dropped (their gradient is exactly zero)
    w = weight if crop is None else weight[:, :, crop[0]:crop[1], crop[2]:crop[3]]
    if kind == 'conv':
        out = F.conv2d(x, w, bias, route[1], route[2], 1, weight.shape[0])
    else:
        geom, plan = route[1], route[3]
        with torch.autocast(device, enabled=False) if autocast else nullcontext():
            if kind == 'fwd':
                out = BACKENDS[plan.fwd].fwd(x, w, bias, geom)
            else:
                out = DepthwiseConvFunction.apply(x, w, bias, geom, plan)
    return out.squeeze(0) if unbatched else out


class DepthwiseConv2d(nn.Conv2d):
    """Square, odd-kernel depth-wise conv with 'same' padding by default.

    ``backend`` (None = the process default, normally 'auto') picks the implementation; it does
    not change the parameters, so checkpoints and re-parameterization are backend-independent.
    """

    def __init__(self, channels, kernel_size, stride=1, padding=None, bias=False, backend=None):
        check_depthwise_args(channels, kernel_size)
        self.backend = dispatch.check_backend(backend)
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
