"""Depth-wise convolution module used for every large (and small) kernel in RepLKNet.

`DepthwiseConv2d` is an `nn.Conv2d` (same `weight`/`bias` names and shapes), so checkpoints and
re-parameterization do not depend on which implementation runs the forward pass.
`depthwise_conv2d` is the single entry point that faster backends plug into.
"""
import torch.nn as nn
import torch.nn.functional as F


def check_depthwise_args(channels, kernel_size):
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'depth-wise kernel size must be a positive odd int, got {kernel_size!r}')
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f'channels must be a positive int, got {channels!r}')


def depthwise_conv2d(x, weight, bias=None, stride=1, padding=0):
    """Depth-wise conv: `weight` is (C, 1, K, K) and `x` is (N, C, H, W)."""
    if weight.dim() != 4 or weight.shape[1] != 1 or x.shape[1] != weight.shape[0]:
        raise ValueError(f'not a depth-wise call: input {tuple(x.shape)}, '
                         f'weight {tuple(weight.shape)} (expected (C, 1, K, K) with C = input C)')
    return F.conv2d(x, weight, bias, stride, padding, 1, weight.shape[0])


class DepthwiseConv2d(nn.Conv2d):
    """Square, odd-kernel depth-wise conv with 'same' padding by default."""

    def __init__(self, channels, kernel_size, stride=1, padding=None, bias=False):
        check_depthwise_args(channels, kernel_size)
        padding = kernel_size // 2 if padding is None else padding
        super().__init__(channels, channels, kernel_size, stride=stride, padding=padding,
                         groups=channels, bias=bias)

    def forward(self, x):
        return depthwise_conv2d(x, self.weight, self.bias, self.stride, self.padding)


def build_dw_conv(channels, kernel_size, stride=1, bias=False):
    """The one factory RepLKNet builds its depth-wise convs with."""
    return DepthwiseConv2d(channels, kernel_size, stride=stride, bias=bias)
