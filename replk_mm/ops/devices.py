"""Which machine a decision or a cost table belongs to.

* :func:`device_tag` - what measured timings depend on besides the shape: the chip, and on CPU
  the thread count (``'cpu:x86_64 AMD EPYC:1t'``, ``'cuda:NVIDIA H200'``). Measured decisions
  are keyed by it.
* :func:`device_class` - the granularity at which cost-model constants are measured:
  the CPU architecture and the vector ISA PyTorch dispatches to
  (``torch.backends.cpu.get_cpu_capability()``, e.g. ``'cpu:x86_64:AVX2'``), or the CUDA
  compute capability (``'cuda:sm90'`` for H100 and H200).
"""
import platform
from functools import lru_cache

import torch


@lru_cache(maxsize=None)
def _chip(device_type, index):
    if device_type == 'cuda':
        return torch.cuda.get_device_name(index)
    try:
        with open('/proc/cpuinfo') as f:
            name = next(line.split(':', 1)[1].strip() for line in f if 'model name' in line)
    except (OSError, StopIteration):
        name = platform.processor()
    return f'{platform.machine()} {name}'.strip().replace('|', '/')


def _index(device):
    return device.index if device.index is not None else torch.cuda.current_device()


def device_tag(device):
    if device.type == 'cuda':
        return f'cuda:{_chip("cuda", _index(device))}'
    return f'{device.type}:{_chip(device.type, None)}:{torch.get_num_threads()}t'


@lru_cache(maxsize=None)
def _cuda_class(index):
    major, minor = torch.cuda.get_device_capability(index)
    return f'cuda:sm{major}{minor}'


@lru_cache(maxsize=None)
def _cpu_class():
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        isa = 'unknown'
    return f'cpu:{platform.machine()}:{isa}'


def device_class(device):
    if device.type == 'cuda':
        return _cuda_class(_index(device))
    if device.type == 'cpu':
        return _cpu_class()
    return device.type
