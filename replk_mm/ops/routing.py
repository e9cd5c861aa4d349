"""How one call signature of ``depthwise_conv2d`` runs: its :class:`Route`, decided once and then
looked up per call in :data:`ROUTES` (a dict lookup: the per-call cost stays a few
microseconds), plus the argument checks that come before any routing.

A route runs the call in one of three ways:

* ``TORCH_CONV``: ``F.conv2d`` (the 'native' plan, stride != 1, or a call no backend
  accelerates), possibly on the cropped kernel;
* ``BACKEND_FORWARD``: one backend's forward, when no gradient is needed;
* ``AUTOGRAD``: :class:`~replk_mm.ops.function.DepthwiseConvFunction` with a per-phase plan.
"""
from typing import NamedTuple, Optional, Tuple

from torch.nn.modules.utils import _pair

from .function import Plan
from .geometry import Geometry

TORCH_CONV = 'torch_conv'
BACKEND_FORWARD = 'backend_forward'
AUTOGRAD = 'autograd'


class Route(NamedTuple):
    runner: str  # TORCH_CONV | BACKEND_FORWARD | AUTOGRAD
    # useful kernel taps (row0, row1, col0, col1); None: the whole kernel
    window: Optional[Tuple[int, int, int, int]]
    stride: Tuple[int, int]  # for TORCH_CONV
    padding: Tuple[int, int]  # for TORCH_CONV
    geometry: Optional[Geometry]  # for the backends (cropped kernel, padding per side)
    plan: Optional[Plan]
    decisions: int  # 'auto' decisions every call with this route reuses (the hit counter)


class RouteTable:
    """Call signature -> Route, and how many 'auto' decisions were served through it."""

    def __init__(self):
        self._routes = {}
        self._hits = 0

    def lookup(self, signature):
        route = self._routes.get(signature)
        if route is not None:
            self._hits += route.decisions
        return route

    def store(self, signature, route):
        self._routes[signature] = route

    @property
    def hits(self):
        return self._hits

    def __len__(self):
        return len(self._routes)

    def clear(self):
        self._routes.clear()
        self._hits = 0


ROUTES = RouteTable()


def check_call(x, weight, bias):
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


def normalize_padding(padding, kh, kw, stride):
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
    return tuple(padding)


def accelerable(x, weight, bias, stride):
    """Whether any backend but PyTorch's conv may run this call."""
    return (stride == (1, 1) and x.device.type in ('cpu', 'cuda') and x.dtype.is_floating_point
            and weight.dtype == x.dtype and (bias is None or bias.dtype == x.dtype))


def normalize_stride(stride):
    return tuple(_pair(stride))
