"""Implementations of the three phases of a stride-1 depth-wise conv.

Every backend module provides ``fwd(x, w, b, geom)``, ``dx(x, g, w, geom)`` and
``dw(x, g, w, geom)`` (``w`` is the cropped (C, 1, kh, kw) kernel, ``g`` the output gradient),
optionally ``dx_dw`` when both gradients share work, and ``available(device) -> (ok, why)``;
``PHASES`` lists the phases it offers when not all three.
A phase may use any backend: the autograd function mixes them (e.g. padded forward, FFT
weight gradient).
"""
from . import fft, native, native_cl, padded, triton_dw
from .common import like_input_layout

BACKENDS = {'native': native, 'padded': padded, 'fft': fft, 'triton': triton_dw,
            'cl': native_cl}
PHASES = ('fwd', 'dx', 'dw')


__all__ = ['BACKENDS', 'PHASES', 'like_input_layout']
