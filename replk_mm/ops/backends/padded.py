"""Direct convolutions with the padding made explicit.

oneDNN leaves its fast direct depth-wise kernel for a gemm path when the conv itself pads by
more than a few pixels (forward) and for the weight gradient of all but the smallest kernels
(thresholds measured in docs/benchmark_lk_conv.md); with ``F.pad`` first and
``padding=0`` the forward and input gradient stay on the direct path. The weight gradient is
written as a forward conv too: per (sample, channel) it is the correlation of the padded
input with the output gradient, i.e. a grouped conv with N*C groups whose "kernel" is the
gradient map, followed by a sum over the batch.
"""
import torch.nn.functional as F


def available(device):
    return True, ''


def auto_candidate(device, layout):
    return True


def fwd(x, w, b, geom, state=None):
    return F.conv2d(F.pad(x, geom.pads), w, b, 1, 0, 1, w.shape[0])


def dx(x, g, w, geom, state=None):
    # dx is the correlation of g with the flipped kernel; F.pad crops when a pad is negative.
    kh, kw = geom.kh - 1, geom.kw - 1
    gp = F.pad(g, (kw - geom.pl, kw - geom.pr, kh - geom.pt, kh - geom.pb))
    return F.conv2d(gp, w.flip(2, 3), None, 1, 0, 1, w.shape[0])


def dw(x, g, w, geom, state=None):
    n, c = x.shape[:2]
    xp = F.pad(x, geom.pads)
    out = F.conv2d(xp.reshape(1, n * c, *xp.shape[2:]), g.reshape(n * c, 1, *g.shape[2:]),
                   None, 1, 0, 1, n * c)
    return out.reshape(n, c, geom.kh, geom.kw).sum(0).unsqueeze(1).to(w.dtype)
