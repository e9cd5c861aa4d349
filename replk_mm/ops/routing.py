"""How one call signature of ``depthwise_conv2d`` runs: its :class:`Route`, decided once by
:func:`~replk_mm.ops.dispatch.route` and then looked up per call in the process state
(:data:`~replk_mm.ops.decision_cache.STATE`; a dict lookup, so the per-call cost stays a few
microseconds).

A route runs the call in one of three ways:

* ``TORCH_CONV``: ``F.conv2d`` (the 'native' plan, stride != 1, or a call no backend
  accelerates), possibly on the cropped kernel;
* ``BACKEND_FORWARD``: one backend's forward, when no gradient is needed;
* ``AUTOGRAD``: :class:`~replk_mm.ops.function.DepthwiseConvFunction` with a per-phase plan.
"""
from typing import NamedTuple, Optional, Tuple

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


def accelerable(x, weight, bias, stride):
    """Whether any backend but PyTorch's conv may run this call."""
    return (stride == (1, 1) and x.device.type in ('cpu', 'cuda') and x.dtype.is_floating_point
            and weight.dtype == x.dtype and (bias is None or bias.dtype == x.dtype))
