"""A conv with its following element-wise op in one oneDNN call, for CPU inference.

Eager PyTorch runs a conv, then a ReLU / GELU, then a residual add, each as its own pass over
memory; onnxruntime fuses them into the conv, and that was the whole gap between the two on
RepLKNet's deploy form (docs/deploy.md). oneDNN, which runs PyTorch's CPU convs, applies such
element-wise "post-ops" while the conv's output is still in cache, and PyTorch exposes it as
``torch.ops.mkldnn._convolution_pointwise`` (what TorchInductor's CPU backend emits).
:func:`conv2d_act` and :func:`conv2d_add` use it where it applies and give PyTorch's unfused
result otherwise; :func:`linear_act` does the same for an ``nn.Linear`` and its activation (the
1x1 convs of the ConvNeXt-style blocks, as ``mkldnn._linear_pointwise``):

* only on CPU, float32, a channels_last (N, C, H, W) input (the deploy trunk's layout), when
  no gradient is recorded and CPU autocast is off; never under ``torch.jit`` tracing,
  ``torch.compile`` or ``torch.export`` (exporters and compilers see the plain ops, and do
  their own fusion);
* the weight is reordered once into oneDNN's blocked layout and kept, keyed by the weight
  tensor and checked against its storage and version counter, so a loaded or edited weight
  is packed again (cost: one more copy of each fused conv's weight in memory);
* a depth-wise conv whose kernel has taps that only ever see padding goes through
  :func:`~replk_mm.ops.depthwise_conv2d`, which crops them, and a conv module with forward
  (pre-)hooks through its own forward, so that the hooks see the call;
* ``REPLK_CPU_FUSION=0`` turns fusion off (to compare, or to save the packed copies).

Results agree with the unfused ops to float32 rounding (oneDNN runs the same conv; the
post-op only changes where the activation is applied).
"""
import os

import torch
import torch.nn as nn
from torch.utils.weak import WeakIdKeyDictionary

from ._log import log_once
from .dw_conv import DepthwiseConv2d
from .geometry import crop_geometry
from .layout import NHWC, memory_layout

ENV_CPU_FUSION = 'REPLK_CPU_FUSION'
_OFF = ('0', 'off', 'false', 'no')
_ON = ('', '1', 'on', 'true', 'yes')

# weight tensor -> (storage pointer, version, packed weight); dropped with the weight
_PACKED = WeakIdKeyDictionary()


def _mkldnn_ops():
    ops = getattr(torch.ops, 'mkldnn', None)
    try:
        return (ops._convolution_pointwise.default, ops._convolution_pointwise_.binary,
                ops._reorder_convolution_weight.default, ops._linear_pointwise.default)
    except AttributeError:  # a torch built without oneDNN
        return None


_OPS = _mkldnn_ops() if torch.backends.mkldnn.is_available() else None


def cpu_fusion_enabled():
    """Whether fusion is on: oneDNN is available and ``REPLK_CPU_FUSION`` is not 0."""
    value = os.environ.get(ENV_CPU_FUSION, '').strip().lower()
    if value not in _ON + _OFF:
        log_once(('env', ENV_CPU_FUSION, value), f'{ENV_CPU_FUSION}={value!r} is not 0 or 1; '
                 'fusion stays on (unset it, or set 0 to turn fusion off)')
    return _OPS is not None and value not in _OFF


def _post_op(activation):
    """oneDNN's (attr, algorithm) for an activation module, or None if it has none."""
    if type(activation) is nn.ReLU:
        return 'relu', ''
    if type(activation) is nn.GELU:
        return 'gelu', activation.approximate  # 'none' (erf) or 'tanh'
    return None


def _has_hooks(module):
    return bool(module._forward_hooks or module._forward_pre_hooks
                or nn.modules.module._global_forward_hooks
                or nn.modules.module._global_forward_pre_hooks)


def _inference_call(module, x, *tensors):
    """No gradient to record, no CPU autocast (which would run the op in its lower dtype), not
    traced / compiled / exported, fusion on, no hooks."""
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (x, *tensors)):
        return False
    if torch.is_autocast_enabled('cpu'):
        return False
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or not cpu_fusion_enabled():
        return False
    return not _has_hooks(module)  # hooks (feature extractors, FLOP counters) must see it


def _fusable(conv, x, *others):
    if not (x.is_cpu and x.dtype == torch.float32 and x.dim() == 4
            and conv.weight.dtype == torch.float32 and conv.padding_mode == 'zeros'
            and not isinstance(conv.padding, str) and memory_layout(x) == NHWC):
        return False
    if not _inference_call(conv, x, conv.weight, conv.bias, *others):
        return False
    if isinstance(conv, DepthwiseConv2d):
        # kernels larger than the map go through replk_mm.ops, which crops the useless taps
        (kh, kw), (ph, pw) = conv.kernel_size, conv.padding
        cropped = crop_geometry(x.shape[2], x.shape[3], kh, kw, ph, pw)
        return (conv.stride == (1, 1) and cropped is not None
                and (cropped[2].kh, cropped[2].kw) == (kh, kw))
    return True


def _packed_weight(conv, x):
    weight = conv.weight
    stamp = (weight.data_ptr(), weight._version)
    entry = _PACKED.get(weight)
    if entry is None or entry[:2] != stamp:
        # a plain tensor even when called under inference_mode (the cache outlives the call)
        with torch.inference_mode(False), torch.no_grad():
            packed = _OPS[2](weight.detach(), list(conv.padding), list(conv.stride),
                             list(conv.dilation), conv.groups, list(x.shape))
        entry = _PACKED[weight] = (*stamp, packed)
    return entry[2]


def _out_shape(conv, x):
    size = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in zip(
        x.shape[2:], conv.padding, conv.dilation, conv.kernel_size, conv.stride)]
    return torch.Size([x.shape[0], conv.out_channels, *size])


def _args(conv):
    return list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups


def conv2d_act(conv, x, activation=None):
    """``activation(conv(x))`` for an ``nn.Conv2d`` ``conv`` (including
    :class:`~replk_mm.ops.DepthwiseConv2d`) and an ``nn.ReLU`` / ``nn.GELU`` / None
    ``activation``, fused where the module docstring says; other activations run after the
    conv (an in-place ReLU too, on the conv's own output)."""
    post = (None, '') if activation is None else _post_op(activation)
    if post is not None and _fusable(conv, x):
        attr, algorithm = post
        return _OPS[0](x, _packed_weight(conv, x), conv.bias, *_args(conv), attr or 'none', [],
                       algorithm)
    out = conv(x)
    return out if activation is None else activation(out)


def conv2d_add(conv, x, residual):
    """``residual + conv(x)``. When no gradient is recorded the sum is written into
    ``residual``'s memory (fused: oneDNN accumulates the conv into it) or into the conv's
    output, so the caller must own ``residual`` and not need it afterwards."""
    if _fusable(conv, x, residual) and residual.dtype == torch.float32 \
            and residual.shape == _out_shape(conv, x) and memory_layout(residual) == NHWC:
        return _OPS[1](residual, x, _packed_weight(conv, x), conv.bias, *_args(conv), 'add',
                       1.0, None, [], None)
    out = conv(x)
    if torch.is_grad_enabled() and (out.requires_grad or residual.requires_grad):
        return residual + out
    return out.add_(residual)


def linear_act(linear, x, activation=None):
    """``activation(linear(x))`` for an ``nn.Linear`` on channels-last features (any leading
    dimensions) and an ``nn.ReLU`` / ``nn.GELU`` / None ``activation``: on CPU, float32,
    without gradients, one oneDNN matmul with the activation applied in its epilogue (on the
    development CPU oneDNN's matmul also runs these shapes about 2x faster than ``nn.Linear``'s
    MKL path, docs/deploy.md); elsewhere the module, then the activation."""
    post = (None, '') if activation is None else _post_op(activation)
    if post is not None and x.is_cpu and x.dtype == torch.float32 \
            and linear.weight.dtype == torch.float32 and _inference_call(
                linear, x, linear.weight, linear.bias):
        attr, algorithm = post
        return _OPS[3](x, linear.weight, linear.bias, attr or 'none', [], algorithm)
    out = linear(x)
    return out if activation is None else activation(out)


def clear_packed_weights():
    """Drop every packed weight (they are also dropped with their weights, and re-packed when
    a weight changes)."""
    _PACKED.clear()


def packed_weight_count():
    """How many packed weights are held (tests, memory accounting)."""
    return len(_PACKED)


__all__ = ['conv2d_act', 'conv2d_add', 'linear_act', 'cpu_fusion_enabled', 'clear_packed_weights',
           'packed_weight_count', 'ENV_CPU_FUSION']
