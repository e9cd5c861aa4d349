"""Implementations of the three phases of a stride-1 depth-wise conv, in one registry.

Every backend module (or object) in :data:`BACKENDS` provides ``fwd(x, w, b, geom)``,
``dx(x, g, w, geom)`` and ``dw(x, g, w, geom)`` (``w`` is the cropped (C, 1, kh, kw) kernel,
``g`` the output gradient), optionally ``dx_dw`` when both gradients share work,
``available(device) -> (ok, why)`` (whether it can run there at all) and
``auto_candidate(device, layout) -> bool`` (whether ``'auto'`` may time it there);
``PHASES`` lists the phases it offers when not all three. A new backend is one more entry.
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
    """Backends 'auto' may choose for this phase, device and memory layout, in registry order
    ('native', PyTorch's conv, is always one)."""
    if device.type not in ('cpu', 'cuda'):
        return ['native']
    return [name for name, impl in BACKENDS.items()
            if offers(name, phase) and impl.auto_candidate(device, layout)]


__all__ = ['BACKENDS', 'PHASES', 'auto_candidates', 'offers']
