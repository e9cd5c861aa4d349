"""Triton backend (GPU; on CPU only under TRITON_INTERPRET=1, which is for tests)."""
import os

import torch

from ..layout import NHWC, memory_layout

_kernels = None


def _interpreting():
    return os.environ.get('TRITON_INTERPRET', '0') not in ('', '0')


def available(device):
    try:
        import triton  # noqa: F401
    except Exception as e:  # ImportError, or a broken install
        return False, f'triton does not import ({type(e).__name__}: {e})'
    if device.type == 'cuda' or (device.type == 'cpu' and _interpreting()):
        return True, ''
    return False, 'triton needs a CUDA device (or TRITON_INTERPRET=1 with CPU tensors)'


def auto_candidate(device, layout):
    # Triton's CPU interpreter is for tests only
    return device.type == 'cuda' and available(device)[0]


def _k():
    global _kernels
    if _kernels is None:
        from . import _triton_kernels
        _kernels = _triton_kernels
    return _kernels


def _acc(dtype):
    import triton.language as tl
    return tl.float64 if dtype == torch.float64 else tl.float32


def _pow2(n, cap):
    p = 1
    while p < n and p < cap:
        p *= 2
    return p


def _conv(x, w, b, out_hw, pt, pl):
    """y[n, c, oy, ox] = sum_ij x[n, c, oy + i - pt, ox + j - pl] * w[c, 0, i, j] (+ b[c])."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    ho, wo = out_hw
    y = torch.empty((n, c, ho, wo), device=x.device, dtype=x.dtype,
                    memory_format=torch.channels_last if memory_layout(x) == NHWC
                    else torch.contiguous_format)
    bw = _pow2(wo, 64)
    bh = _pow2(ho, max(1, 512 // bw))
    grid = (n * c, -(-ho // bh), -(-wo // bw))
    w = w.contiguous()
    _k().dw_conv_fwd_kernel[grid](
        x, w, w if b is None else b.contiguous(), y, c, h, wd, ho, wo, kh, kw, pt, pl,
        *x.stride(), *y.stride(), HAS_BIAS=b is not None, BH=bh, BW=bw, ACC=_acc(x.dtype))
    return y


def fwd(x, w, b, geom, state=None):
    return _conv(x, w, b, (geom.ho, geom.wo), geom.pt, geom.pl)


def dx(x, g, w, geom, state=None):
    return _conv(g, w.flip(2, 3), None, (geom.h, geom.w), geom.kh - 1 - geom.pt,
                 geom.kw - 1 - geom.pl)


def dw(x, g, w, geom, state=None):
    n, c, h, wd = x.shape
    bj = _pow2(geom.kw, 32)
    bx = _pow2(geom.wo, 64)
    rows = c * geom.kh * -(-geom.kw // bj)
    # split the batch over programs when there are too few (channel, row) pairs to fill a GPU
    nsplit = 1 if x.device.type == 'cpu' else max(1, min(n, 4096 // rows))
    acc_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    part = torch.empty((nsplit, c, geom.kh, geom.kw), device=x.device, dtype=acc_dtype)
    grid = (c * geom.kh, -(-geom.kw // bj), nsplit)
    _k().dw_conv_wgrad_kernel[grid](
        x, g, part, n, c, h, wd, geom.ho, geom.wo, geom.kh, geom.kw, geom.pt, geom.pl, nsplit,
        *x.stride(), *g.stride(), BJ=bj, BX=bx, ACC=_acc(x.dtype))
    return part.sum(0).unsqueeze(1).to(w.dtype)
