"""Conv-BN building blocks and BN folding, torch only.

The ``conv`` / ``bn`` / ``nonlinear`` child names are those of the official RepLKNet code
(DingXiaoH/RepLKNet-pytorch, MIT), so its checkpoints load by key.
"""
from typing import NamedTuple

import torch
import torch.nn as nn
from torch.nn.utils import fuse_conv_bn_weights

from ..ops import build_dw_conv


class KernelBias(NamedTuple):
    """The weight and bias of one biased conv equivalent to a (conv, BN) pair or to branches."""
    weight: torch.Tensor
    bias: torch.Tensor


def check_foldable_norm(norm, where='norm_layer'):
    """Raise unless ``norm`` can be folded into the conv before it: a BatchNorm-like module
    (``nn.BatchNorm2d``, ``nn.SyncBatchNorm``, mmcv's ``MMSyncBN``...) with running statistics.
    """
    if not all(getattr(norm, name, None) is not None
               for name in ('running_mean', 'running_var', 'eps')):
        raise TypeError(
            f'{where} built {type(norm).__name__}; re-parameterization folds BatchNorm running '
            'statistics into the conv, so the norm must be a BatchNorm (e.g. nn.BatchNorm2d, '
            'nn.SyncBatchNorm) with track_running_stats=True, or None for a biased conv '
            'without norm')
    return norm


def conv_bn(in_channels, out_channels, kernel_size, *, stride=1, groups=1,
            norm_layer=nn.BatchNorm2d, relu=False):
    """Bias-free ``conv`` -> ``bn`` [-> ReLU ``nonlinear``] as an ``nn.Sequential``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Odd kernel size; padding ``kernel_size // 2`` keeps the map size
            (divided by ``stride``).
        stride (int): Conv stride.
        groups (int): Conv groups (``groups=in_channels`` for depth-wise).
        norm_layer (Callable[[int], nn.Module]): Builds the norm from the channel count,
            e.g. ``nn.BatchNorm2d`` or a wrapper around mmcv's ``build_norm_layer``.
        relu (bool): Append a ReLU named ``nonlinear``.
    """
    layers = nn.Sequential()
    layers.add_module('conv', nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                        kernel_size // 2, groups=groups, bias=False))
    layers.add_module('bn', norm_layer(out_channels))
    if relu:
        layers.add_module('nonlinear', nn.ReLU())
    return layers


def dw_conv_bn(channels, kernel_size, *, stride=1, norm_layer=nn.BatchNorm2d, backend=None):
    """Bias-free depth-wise ``conv`` (through ``replk_mm.ops``) -> ``bn`` as an nn.Sequential.

    Args:
        channels (int): Input = output channels.
        kernel_size (int): Odd kernel size ('same' padding).
        stride (int): Conv stride.
        norm_layer (Callable[[int], nn.Module]): Builds the norm; it must be a BatchNorm with
            running statistics, since this pair exists to be folded.
        backend (str, optional): ``replk_mm.ops`` backend of the conv.
    """
    layers = nn.Sequential()
    layers.add_module('conv', build_dw_conv(channels, kernel_size, stride=stride,
                                            backend=backend))
    layers.add_module('bn', check_foldable_norm(norm_layer(channels)))
    return layers


def conv_kernel_bias(conv, bn=None):
    """Weight and bias of one conv equivalent to ``conv`` (biased or not) [followed by ``bn`` in
    eval mode, i.e. with its running statistics]."""
    weight = conv.weight
    if bn is None:
        bias = conv.bias if conv.bias is not None else weight.new_zeros(weight.shape[0])
        return KernelBias(weight, bias)
    check_foldable_norm(bn, where='the BN to fold')
    weight, bias = fuse_conv_bn_weights(weight, conv.bias, bn.running_mean, bn.running_var,
                                        bn.eps, bn.weight, bn.bias)
    # torch returns new leaf Parameters; the merged conv copies plain tensors
    return KernelBias(weight.detach(), bias.detach())


def fuse_conv_bn(conv, bn):
    """Kernel and bias (a :class:`KernelBias`) of the conv equivalent to ``conv`` -> ``bn``."""
    return conv_kernel_bias(conv, bn)
