"""Stride-1 depth-wise conv geometry, with exact cropping of kernel taps that only see padding.

For an output of size ``out = size + lo + hi - k + 1`` the tap ``i`` reads input row
``y + i - lo`` for output rows ``y`` in ``[0, out)``; taps for which that is never inside
``[0, size)`` multiply zeros only. Dropping them changes nothing (their weight gradient is
exactly 0), and it turns e.g. a 31x31 kernel on a 7x7 map into a 13x13 one (at most 2*size-1).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Geometry:
    """Input ``h x w``, kernel ``kh x kw`` (after cropping) and zero padding per side."""
    h: int
    w: int
    kh: int
    kw: int
    pt: int  # top
    pb: int  # bottom
    pl: int  # left
    pr: int  # right

    @property
    def ho(self):
        return self.h + self.pt + self.pb - self.kh + 1

    @property
    def wo(self):
        return self.w + self.pl + self.pr - self.kw + 1

    @property
    def symmetric(self):
        return self.pt == self.pb and self.pl == self.pr

    @property
    def pads(self):
        """Padding in F.pad order (left, right, top, bottom)."""
        return (self.pl, self.pr, self.pt, self.pb)


def _crop_1d(size, k, lo, hi):
    """First useful tap, useful kernel length and the new (lo, hi) padding; None if no tap is."""
    out = size + lo + hi - k + 1
    first = max(0, lo - out + 1)
    last = min(k - 1, lo + size - 1)
    if out < 1 or first > last:
        return None
    k2 = last - first + 1
    lo2 = lo - first
    return first, k2, lo2, out - 1 - size + k2 - lo2


def crop_geometry(h, w, kh, kw, pad_h, pad_w):
    """Return ``(row0, col0, Geometry)`` of the useful kernel window, or None (degenerate)."""
    rows = _crop_1d(h, kh, pad_h, pad_h)
    cols = _crop_1d(w, kw, pad_w, pad_w)
    if rows is None or cols is None:
        return None
    (r0, kh2, pt, pb), (c0, kw2, pl, pr) = rows, cols
    return r0, c0, Geometry(h, w, kh2, kw2, pt, pb, pl, pr)
