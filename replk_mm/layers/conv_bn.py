"""Conv-BN building blocks and BN folding, torch only.

The ``conv`` / ``bn`` / ``nonlinear`` child names are those of the official RepLKNet code
(DingXiaoH/RepLKNet-pytorch, MIT), so its checkpoints load by key.
"""
from typing import NamedTuple

import torch
import torch.nn as nn
from torch.nn.utils import fuse_conv_bn_weights

from ..ops import build_dw_conv, conv2d_act
from .reparam import ReparamModule


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


def bn_scale_shift(mean, var, eps, gamma=None, beta=None):
    """The per-channel ``(scale, shift)`` with ``bn(x) == scale * x + shift`` (eval mode)."""
    scale = torch.rsqrt(var + eps)
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    return scale, shift


def fold_bn_before_1x1(weight, bias, scale, shift):
    """Weight and bias of the 1x1 conv equivalent to ``x -> scale * x + shift -> conv``.

    Exact only for a 1x1 conv without padding (every output reads each input pixel once, and
    no zero padding would skip the shift); ``bias`` may be None.
    """
    if weight.shape[2:] != (1, 1):
        raise ValueError(f'a BN before a conv folds into it only for a 1x1 conv, got a '
                         f'{tuple(weight.shape[2:])} kernel')
    folded_bias = weight[:, :, 0, 0] @ shift
    if bias is not None:
        folded_bias = folded_bias + bias
    return KernelBias(weight * scale.view(1, -1, 1, 1), folded_bias)


class ConvBN(ReparamModule):
    """Bias-free ``conv`` -> ``bn`` [-> ReLU ``nonlinear``]; deploy form: biased ``conv``
    [-> ``nonlinear``], the BN folded into the conv.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Odd kernel size; padding ``kernel_size // 2`` keeps the map size
            (divided by ``stride``).
        stride (int): Conv stride.
        groups (int): Conv groups (``groups=in_channels`` for depth-wise).
        norm_layer (Callable[[int], nn.Module]): Builds the norm from the channel count,
            e.g. ``nn.BatchNorm2d`` or a wrapper around mmcv's ``build_norm_layer``; a
            BatchNorm with running statistics (it is folded when merging).
        relu (bool): Append a ReLU named ``nonlinear``.
        merged (bool): Build the deploy form directly (a biased conv, no norm).
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, groups=1,
                 norm_layer=nn.BatchNorm2d, relu=False, merged=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                              groups=groups, bias=merged)
        if not merged:
            self.bn = check_foldable_norm(norm_layer(out_channels))
        # deploy form: in place (the conv's output is not needed by anything else)
        self.nonlinear = nn.ReLU(inplace=merged) if relu else None

    @property
    def merged(self):
        return 'bn' not in self._modules

    def forward(self, x, activation=None):
        """``activation``: run after the conv-BN by a ConvBN without its own ReLU (a ConvFFN's
        GELU); in the deploy form the conv and its activation run as one call where
        :func:`~replk_mm.ops.conv2d_act` can fuse them."""
        if activation is not None and self.nonlinear is not None:
            raise ValueError('this ConvBN applies its own ReLU; pass no activation')
        activation = self.nonlinear if activation is None else activation
        if self.merged:
            return conv2d_act(self.conv, x, activation)
        x = self.bn(self.conv(x))
        return x if activation is None else activation(x)

    def merge(self):
        kernel, bias = conv_kernel_bias(self.conv, self.bn)
        conv = self.conv
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                           conv.padding, groups=conv.groups, bias=True).to(kernel)
        folded.weight.data.copy_(kernel)
        folded.bias.data.copy_(bias)
        self.conv = folded
        del self.bn
        if self.nonlinear is not None:
            self.nonlinear.inplace = True

    def fold_bn_before(self, bn):
        """Fold ``bn`` (eval mode), which runs just before this merged 1x1 conv, into it."""
        if not self.merged:
            raise RuntimeError('fold the BN after the conv first (switch_to_deploy)')
        check_foldable_norm(bn, where='the BN to fold')
        scale, shift = bn_scale_shift(bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                      bn.bias)
        weight, bias = fold_bn_before_1x1(self.conv.weight, self.conv.bias, scale, shift)
        self.conv.weight.data.copy_(weight)
        self.conv.bias.data.copy_(bias)


def conv_bn(in_channels, out_channels, kernel_size, *, stride=1, groups=1,
            norm_layer=nn.BatchNorm2d, relu=False, merged=False):
    """A :class:`ConvBN` (state-dict keys ``conv.weight``, ``bn.*``; merged: ``conv.weight``,
    ``conv.bias``)."""
    return ConvBN(in_channels, out_channels, kernel_size, stride=stride, groups=groups,
                  norm_layer=norm_layer, relu=relu, merged=merged)


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
