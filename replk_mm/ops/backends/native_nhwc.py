"""PyTorch's forward on an NHWC (channels_last) copy of an NCHW input ('auto' only).

oneDNN's NHWC depth-wise forward has no gemm fallback for large padding, and the two layout
copies are cheap next to a large-kernel conv. Its weight gradient has the fallback, and the
input gradient gains nothing, so this backend offers the forward phase only.
"""
import torch

from ..layout import NCHW, like_input_layout
from . import native

PHASES = ('fwd', )


def available(device):
    return True, ''


def auto_candidate(device, layout):
    # an NHWC input already runs NHWC in 'native'
    return layout == NCHW


def fwd(x, w, b, geom, state=None):
    out = native.fwd(x.contiguous(memory_format=torch.channels_last), w, b, geom)
    return like_input_layout(out, x)
