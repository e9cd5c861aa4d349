"""What a measured ``'auto'`` decision is keyed by: shape buckets, so that training with many
input sizes reaches a steady state after a bounded number of measurements.

One decision (the backend of one phase: forward, input grad or weight grad) is measured per
key and reused by every call that falls into it::

    phase | device tag | dtype | layout | batch bucket | channels | height bucket | width bucket
          | kernel | padding

* channels, the kernel size (as given, before cropping) and the padding are exact: a network
  has a handful of (channels, kernel) pairs, whatever its input size;
* height and width are exact up to 8, then **half-octave buckets**: ``v`` falls into bucket
  ``b = round(2 log2 v)``, which holds ``[ceil(2^((b - 1/2) / 2)), ceil(2^((b + 1/2) / 2)))``:
  9, 10-13, 14-19, 20-26, 27-38, 39-53, 54-76, 77-107, 108-152, 153-215, 216-304, 305-430, ...
  (sizes within a bucket differ by less than a factor 1.42, and the ranking of the backends,
  which depends on kernel size relative to map size and on the amount of work, changes slowly
  over that range);
* the batch is exact for 1 and 2, then in octave buckets 3-5, 6-11, 12-22, 23-45, ...

So a run whose images vary between sizes S and 2S visits at most 3 height buckets and 3 width
buckets per stage: the number of measurements is bounded by the network's distinct layers, not
by the number of input sizes. The key text (what :func:`~replk_mm.ops.dispatch_cache_info`
and the disk cache show) reads e.g.
``fwd|cpu:x86_64 AMD EPYC:1t|float32|nchw|n2|c128|h54-76|w54-76|k31x31|p15,15``.
"""
import math
from functools import lru_cache
from typing import NamedTuple, Tuple

from .devices import device_tag
from .layout import memory_layout

EXACT_SIZE_UP_TO = 8
SIZE_STEPS_PER_OCTAVE = 2
EXACT_BATCH_UP_TO = 2
BATCH_STEPS_PER_OCTAVE = 1


class Bucket(NamedTuple):
    """The integers ``lo <= v < hi``."""
    lo: int
    hi: int

    def __str__(self):
        return str(self.lo) if self.hi == self.lo + 1 else f'{self.lo}-{self.hi - 1}'


@lru_cache(maxsize=4096)
def bucket(v, exact_up_to=EXACT_SIZE_UP_TO, steps_per_octave=SIZE_STEPS_PER_OCTAVE):
    """The bucket of a positive size (see the module docstring)."""
    if v <= exact_up_to:
        return Bucket(v, v + 1)
    b = round(steps_per_octave * math.log2(v))
    lo = max(exact_up_to + 1, math.ceil(2 ** ((b - 0.5) / steps_per_octave)))
    hi = math.ceil(2 ** ((b + 0.5) / steps_per_octave))
    return Bucket(lo, hi)


def batch_bucket(n):
    return bucket(n, EXACT_BATCH_UP_TO, BATCH_STEPS_PER_OCTAVE)


class DecisionKey(NamedTuple):
    phase: str
    device: str
    dtype: str
    layout: str
    batch: Bucket
    channels: int
    height: Bucket
    width: Bucket
    kernel: Tuple[int, int]
    padding: Tuple[int, int]

    def __str__(self):
        return (f'{self.phase}|{self.device}|{self.dtype}|{self.layout}|n{self.batch}'
                f'|c{self.channels}|h{self.height}|w{self.width}'
                f'|k{self.kernel[0]}x{self.kernel[1]}|p{self.padding[0]},{self.padding[1]}')


def decision_key(phase, x, kernel_size, padding):
    """The key text of one phase of a depth-wise conv of ``x`` (N, C, H, W) with a kernel of
    ``kernel_size`` (kh, kw) and ``padding`` (ph, pw), before any cropping."""
    n, c, h, w = x.shape
    return str(DecisionKey(phase, device_tag(x.device), str(x.dtype).replace('torch.', ''),
                           memory_layout(x), batch_bucket(n), c, bucket(h), bucket(w),
                           tuple(kernel_size), tuple(padding)))
