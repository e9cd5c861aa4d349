"""Implementations of the three phases of a stride-1 depth-wise conv.

Every backend module provides ``fwd(x, w, b, geom)``, ``dx(x, g, w, geom)`` and
``dw(x, g, w, geom)`` (``w`` is the cropped (C, 1, kh, kw) kernel, ``g`` the output gradient),
optionally ``dx_dw`` when both gradients share work, and ``available(device) -> (ok, why)``;
``PHASES`` lists the phases it offers when not all three.
A phase may use any backend: the autograd function mixes them (e.g. padded forward, FFT
weight gradient). ``native_nhwc`` is not a user choice: only 'auto' picks it.
"""
from ..layout import NCHW
from . import fft, native, native_nhwc, padded, triton_dw

BACKENDS = {'native': native, 'padded': padded, 'fft': fft, 'triton': triton_dw,
            'native_nhwc': native_nhwc}
PHASES = ('fwd', 'dx', 'dw')


def offers(name, phase):
    return phase in getattr(BACKENDS[name], 'PHASES', PHASES)


def auto_candidates(device, phase='fwd', layout=NCHW):
    """Backends 'auto' may choose for this phase here (Triton's CPU interpreter is for tests
    only, so Triton is a candidate on CUDA devices alone)."""
    if device.type not in ('cpu', 'cuda'):
        return ['native']
    names = ['native', 'padded', 'fft']
    if layout == NCHW:
        names.append('native_nhwc')
    if device.type == 'cuda' and BACKENDS['triton'].available(device)[0]:
        names.append('triton')
    return [n for n in names if offers(n, phase)]


__all__ = ['BACKENDS', 'PHASES', 'auto_candidates', 'offers']
