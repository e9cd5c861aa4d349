"""FFT convolution: O(log L) work per pixel whatever the kernel size.

The kernel is placed circularly with its tap (pt, pl) at index (0, 0); then output (y, x) is
the circular correlation of the unshifted, zero-extended input at (y, x), with no wrap-around
as long as L >= size + max(pad) (and L >= kernel, L >= output). Forward, input gradient and
weight gradient are the circular correlation, convolution and (batch-summed) correlation of the
same spectra. fp16/bf16 are computed in fp32 (cuFFT half needs power-of-2 sizes), fp64 in fp64.
"""
import torch
import torch.nn.functional as F

from ..layout import like_input_layout


def available(device):
    return device.type in ('cpu', 'cuda'), 'torch.fft supports only CPU and CUDA here'


def auto_candidate(device, layout):
    return available(device)[0]


def fast_len(n):
    """Smallest even 2^a 3^b 5^c 7^d >= n (sizes pocketfft/MKL/cuFFT handle fastest)."""
    m = max(n + (n & 1), 2)
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 2


def fft_shape(geom):
    lh = fast_len(max(geom.h + max(geom.pt, geom.pb), geom.kh, geom.ho))
    lw = fast_len(max(geom.w + max(geom.pl, geom.pr), geom.kw, geom.wo))
    return lh, lw


def _real(t):
    return t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)


def _kernel_spectrum(w, geom, s, state):
    """rfft2 of the kernel rolled so that tap (pt, pl) sits at (0, 0); kept in ``state`` (the
    autograd context) so the backward pass does not transform it again."""
    if state is not None and 'wspec' in state:
        return state['wspec']
    k = F.pad(_real(w[:, 0]), (0, s[1] - geom.kw, 0, s[0] - geom.kh))
    spec = torch.fft.rfft2(torch.roll(k, (-geom.pt, -geom.pl), (-2, -1)))
    if state is not None:
        state['wspec'] = spec
    return spec


def fwd(x, w, b, geom, state=None):
    s = fft_shape(geom)
    spec = torch.fft.rfft2(_real(x), s=s)
    spec.mul_(_kernel_spectrum(w, geom, s, state).conj())
    out = torch.fft.irfft2(spec, s=s)[..., :geom.ho, :geom.wo]
    if b is not None:
        out = out + _real(b).view(1, -1, 1, 1)
    return like_input_layout(out.to(x.dtype), x)


def _dx(gspec, w, geom, s, x, state, inplace):
    wspec = _kernel_spectrum(w, geom, s, state)
    gspec = gspec.mul_(wspec) if inplace else gspec * wspec
    return like_input_layout(torch.fft.irfft2(gspec, s=s)[..., :geom.h, :geom.w].to(x.dtype), x)


def _dw(gspec, x, w, geom, s):
    spec = torch.fft.rfft2(_real(x), s=s)
    spec.mul_(gspec.conj())
    corr = torch.fft.irfft2(spec.sum(0), s=s)  # one inverse transform per channel, not per sample
    corr = torch.roll(corr, (geom.pt, geom.pl), (-2, -1))[:, :geom.kh, :geom.kw]
    return corr.unsqueeze(1).to(w.dtype).contiguous()


def dx(x, g, w, geom, state=None):
    s = fft_shape(geom)
    return _dx(torch.fft.rfft2(_real(g), s=s), w, geom, s, x, state, True)


def dw(x, g, w, geom, state=None):
    s = fft_shape(geom)
    return _dw(torch.fft.rfft2(_real(g), s=s), x, w, geom, s)


def dx_dw(x, g, w, geom, state=None):
    s = fft_shape(geom)
    gspec = torch.fft.rfft2(_real(g), s=s)
    gw = _dw(gspec, x, w, geom, s)
    return _dx(gspec, w, geom, s, x, state, True), gw
