"""PyTorch's conv on NHWC (channels_last) copies of an NCHW input ('auto' only).

oneDNN's NHWC depth-wise forward has no gemm fallback for large padding, and the two layout
copies are cheap next to a large-kernel conv. The input gradient is the forward conv of the
output gradient with the flipped kernel, so it runs on the same NHWC kernel (on 14x14 maps
with 27x27 kernels about twice as fast as oneDNN's NCHW backward-data, docs/benchmark_lk_conv.md).
The NHWC weight gradient has the gemm fallback, so this backend offers no weight gradient.
"""
import torch
import torch.nn.functional as F

from ..layout import NCHW, like_input_layout
from . import native

PHASES = ('fwd', 'dx')


def available(device):
    return True, ''


def auto_candidate(device, layout):
    # an NHWC input already runs NHWC in 'native'
    return layout == NCHW


def fwd(x, w, b, geom, state=None):
    out = native.fwd(x.contiguous(memory_format=torch.channels_last), w, b, geom)
    return like_input_layout(out, x)


def dx(x, g, w, geom, state=None):
    g = g.contiguous(memory_format=torch.channels_last)
    kh, kw = geom.kh - 1, geom.kw - 1
    left, right, top, bottom = kw - geom.pl, kw - geom.pr, kh - geom.pt, kh - geom.pb
    flipped = w.flip(2, 3)
    if left == right >= 0 and top == bottom >= 0:
        out = F.conv2d(g, flipped, None, 1, (top, left), 1, w.shape[0])
    else:  # asymmetric (a cropped kernel): F.pad pads, or crops where a pad is negative
        out = F.conv2d(F.pad(g, (left, right, top, bottom)), flipped, None, 1, 0, 1, w.shape[0])
    return like_input_layout(out, x)
