"""A cost model of each backend's phases: what ``'auto'`` uses where it does not time.

``'auto'`` consults it in two ways:

* to **order** the candidates it times (cheapest first, so far-behind ones are cut short): any
  constants do;
* to **decide** where a decision cannot be timed (``REPLK_DW_CONV_AUTOTUNE=model``,
  ``torch.use_deterministic_algorithms(True)``, the measurement budget spent, CUDA graph
  capture): only constants *measured for the device class* (:func:`devices.device_class`) and
  dtype count; elsewhere the decision is PyTorch's own conv.

Measured constants:

* CPU: :data:`CPU_COSTS`, fitted by hand on the 2-core AMD EPYC development VMs, torch 2.14
  (oneDNN 3.12), float32, 1 thread, and checked against measured decisions on the AVX2 (Zen 3)
  ones; they count as measured for :data:`MEASURED_CPU_CLASSES` (``cpu:x86_64:AVX2``) and
  float32 only. The model captures oneDNN's NCHW depth-wise forward leaving its direct kernel
  for a gemm path when it pads by :data:`CPU_SLOW_FORWARD_PAD` or more, and its weight gradient
  doing so for k >= 5, against FFTs whose cost does not grow with the kernel (agreement with
  measured decisions: docs/benchmark_lk_conv.md).
* GPU: tables measured by the GPU check (a fixed and a per-work-unit time per backend, phase,
  kernel-size class and dtype), from :data:`SHIPPED_GPU_TABLES` (constants shipped with the
  package) and from the file named by ``REPLK_DW_CONV_COSTS``. None are shipped yet: on GPUs an
  untimed decision is PyTorch's conv. :data:`GPU_PLACEHOLDER_COSTS` only orders measurements.
"""
import json
import math
from functools import lru_cache
from typing import NamedTuple

from . import config
from ._log import log_once
from .backends.fft import fft_shape
from .devices import device_class
from .geometry import Geometry
from .layout import NCHW, memory_layout

# FLOP/s of oneDNN's direct kernel and of its gemm fallback, seconds per FFT point * log2(points),
# seconds per call, bytes/s of a layout copy.
CPU_COSTS = dict(direct=8e10, slow=1.5e9, fft=3e-10, call=2e-5, copy=1e9)
MEASURED_CPU_CLASSES = ('cpu:x86_64:AVX2', )
# The padding from which oneDNN's NCHW depth-wise forward leaves its direct kernel: 7 where the
# constants were first fitted, 5 on AVX2 (docs/benchmark_lk_conv.md, "Cost model").
CPU_SLOW_FORWARD_PAD = {'cpu:x86_64:AVX2': 5}
MEASURED_CPU_DTYPES = ('float32', )
# Not measured: they order the candidates that are timed on a GPU, nothing else.
GPU_PLACEHOLDER_COSTS = dict(direct=2e12, slow=2e11, fft=2e-12, call=1e-5, copy=5e11)

TABLE_VERSION = 1
# Measured GPU constants shipped with the package, in the format of ``REPLK_DW_CONV_COSTS``
# files (the GPU check writes one; docs/benchmark_lk_conv.md, "GPU: not measured yet"):
#   {'version': 1, 'classes': {'cuda:sm90': {'measured_on': 'NVIDIA H200, torch ..., date',
#    'tables': {'float32': {'native': {'fwd': {'small': [fixed_s, s_per_unit], ...}}}}}}}
# Empty until that check has run on a GPU of each class.
SHIPPED_GPU_TABLES = {'version': TABLE_VERSION, 'classes': {}}
# kernel-size classes of the measured tables: the largest cropped kernel side, inclusive bounds
KERNEL_CLASSES = (('small', 7), ('medium', 17), ('large', 10**9))
# a measured dtype that stands in for one that was not (same element size)
DTYPE_STAND_INS = {'float16': 'bfloat16', 'bfloat16': 'float16'}


class ConvCall(NamedTuple):
    """What the cost of a phase depends on."""
    batch: int
    channels: int
    dtype: str
    itemsize: int
    layout: str
    device_type: str
    geom: Geometry

    @classmethod
    def of(cls, x, geom):
        n, c = x.shape[:2]
        return cls(n, c, str(x.dtype).replace('torch.', ''), x.element_size(),
                   memory_layout(x), x.device.type, geom)


def _formula_cost(phase, name, call, k, slow_pad=7):
    """Seconds for one phase from the hand-fitted formula (CPU) or the placeholders (GPU);
    ``slow_pad``: the padding from which oneDNN's NCHW forward takes its gemm path."""
    g = call.geom
    gpu = call.device_type == 'cuda'
    pixels = g.h * g.w if phase == 'dx' else g.ho * g.wo
    flops = 2.0 * call.batch * call.channels * pixels * g.kh * g.kw
    if name == 'native':
        if gpu:
            return flops / (k['direct'] if max(g.kh, g.kw) <= 7 else k['slow']) + k['call']
        big = (phase == 'fwd' and call.layout == NCHW and max(g.pads) >= slow_pad) or (
            phase == 'dw' and max(g.kh, g.kw) >= 5)
        return flops / (k['slow'] if big else k['direct']) + k['call']
    if name == 'padded':
        return flops / k['direct'] * (1.5 if phase == 'dw' else 1.0) + 2 * k['call']
    if name == 'native_nhwc':  # the direct NHWC kernel plus two layout copies
        copies = 2 * call.batch * call.channels * g.h * g.w * call.itemsize
        return flops / k['direct'] + copies / k['copy'] + 2 * k['call']
    if name == 'fft':
        lh, lw = fft_shape(g)
        transform = call.batch * call.channels * lh * lw * math.log2(lh * lw) * k['fft']
        return (3 if phase == 'dw' else 2) * transform + 4 * k['call']
    if name == 'triton':
        return flops / (k['direct'] / 2) + k['call']
    return float('inf')


def kernel_class(geom):
    side = max(geom.kh, geom.kw)
    return next(name for name, bound in KERNEL_CLASSES if side <= bound)


def work_units(phase, name, call):
    """The amount of work a measured table's per-unit time multiplies: multiply-adds of the
    direct convolution (the cropped kernel), or FFT points * log2(points) for 'fft'."""
    g = call.geom
    if name == 'fft':
        lh, lw = fft_shape(g)
        return call.batch * call.channels * lh * lw * math.log2(lh * lw)
    pixels = g.h * g.w if phase == 'dx' else g.ho * g.wo
    return call.batch * call.channels * pixels * g.kh * g.kw


def table_cost(table, phase, name, call):
    entry = table.get(name, {}).get(phase, {}).get(kernel_class(call.geom))
    if entry is None:
        return float('inf')
    fixed, per_unit = entry
    return fixed + per_unit * work_units(phase, name, call)


def check_tables(data, where):
    """Validate a cost-table document; return its ``classes`` dict."""
    if not isinstance(data, dict) or data.get('version') != TABLE_VERSION:
        raise ValueError(f'{where}: not a version-{TABLE_VERSION} depth-wise conv cost table '
                         '(write one with the GPU check, see docs/benchmark_lk_conv.md)')
    classes = data.get('classes')
    if not isinstance(classes, dict):
        raise ValueError(f"{where}: no 'classes' mapping")
    for cls, entry in classes.items():
        for dtype, table in entry.get('tables', {}).items():
            for name, phases in table.items():
                for phase, by_class in phases.items():
                    for kc, coef in by_class.items():
                        if (kc not in dict(KERNEL_CLASSES) or len(coef) != 2
                                or not all(isinstance(v, (int, float)) for v in coef)):
                            raise ValueError(f'{where}: bad entry {cls}/{dtype}/{name}/{phase}/'
                                             f'{kc}: {coef!r} (want [fixed_s, s_per_unit])')
    return classes


@lru_cache(maxsize=8)
def _file_tables(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        log_once(('costs', path), f'cannot read {config.ENV_COSTS}={path!r} ({e}); '
                 'no measured GPU cost constants from it')
        return {}
    try:
        return check_tables(data, path)
    except ValueError as e:
        log_once(('costs', path), str(e))
        return {}


def measured_tables():
    """Device class -> its measured entry (``tables`` by dtype, and where it was measured)."""
    classes = dict(SHIPPED_GPU_TABLES['classes'])
    path = config.costs_path()
    if path is not None:
        classes.update(_file_tables(path))
    return classes


def _measured_table(device, dtype):
    entry = measured_tables().get(device_class(device))
    if entry is None:
        return None
    tables = entry.get('tables', {})
    return tables.get(dtype) or tables.get(DTYPE_STAND_INS.get(dtype, ''))


def has_measured_constants(device, dtype):
    """Whether the model may decide, untimed, for this device and dtype name."""
    if device.type == 'cpu':
        return device_class(device) in MEASURED_CPU_CLASSES and dtype in MEASURED_CPU_DTYPES
    return device.type == 'cuda' and _measured_table(device, dtype) is not None


def cost(phase, name, call, device):
    """Estimated seconds of one phase on one backend."""
    if device.type == 'cuda':
        table = _measured_table(device, call.dtype)
        if table is not None:
            return table_cost(table, phase, name, call)
        return _formula_cost(phase, name, call, GPU_PLACEHOLDER_COSTS)
    return _formula_cost(phase, name, call, CPU_COSTS,
                         CPU_SLOW_FORWARD_PAD.get(device_class(device), 7))


def cheapest(phase, names, call, device):
    return min(names, key=lambda name: cost(phase, name, call, device))


def ranked(phase, names, call, device):
    return sorted(names, key=lambda name: cost(phase, name, call, device))
