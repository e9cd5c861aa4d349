"""PyTorch's forward on a channels_last copy, for NCHW inputs (auto-dispatch only).

oneDNN's NHWC depth-wise forward has no gemm fallback for large padding, and the two layout
copies are cheap next to a large-kernel conv. Its weight gradient has the fallback, and the
input gradient gains nothing, so this backend only offers the forward phase.
"""
import torch

from . import native
from .common import like_input_layout

PHASES = ('fwd', )


def available(device):
    return True, ''


def fwd(x, w, b, geom, state=None):
    out = native.fwd(x.contiguous(memory_format=torch.channels_last), w, b, geom)
    return like_input_layout(out, x)
