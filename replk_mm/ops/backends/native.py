"""PyTorch's own kernels (oneDNN on CPU, cuDNN on GPU), one phase at a time."""
import torch
import torch.nn.functional as F

from . import padded


def available(device):
    return True, ''


def auto_candidate(device, layout):
    return True


def fwd(x, w, b, geom, state=None):
    if not geom.symmetric:
        return padded.fwd(x, w, b, geom)
    return F.conv2d(x, w, b, 1, (geom.pt, geom.pl), 1, w.shape[0])


def _backward(x, g, w, geom, mask):
    return torch.ops.aten.convolution_backward(
        g, x, w, None, [1, 1], [geom.pt, geom.pl], [1, 1], False, [0, 0], w.shape[0],
        [mask[0], mask[1], False])


def dx(x, g, w, geom, state=None):
    if not geom.symmetric:
        return padded.dx(x, g, w, geom)
    return _backward(x, g, w, geom, (True, False))[0]


def dw(x, g, w, geom, state=None):
    if not geom.symmetric:
        return padded.dw(x, g, w, geom)
    return _backward(x, g, w, geom, (False, True))[1]


def dx_dw(x, g, w, geom, state=None):
    if not geom.symmetric:
        return padded.dx(x, g, w, geom), padded.dw(x, g, w, geom)
    gx, gw, _ = _backward(x, g, w, geom, (True, True))
    return gx, gw
