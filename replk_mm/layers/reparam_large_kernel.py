"""The re-parameterizable large depth-wise conv, torch only.

Modified from ``ReparamLargeKernelConv`` of the official RepLKNet code
(https://github.com/DingXiaoH/RepLKNet-pytorch, MIT): a large depth-wise conv with an optional
parallel small depth-wise conv, merged for deployment into one biased large conv. Generalised
so that each branch is either conv + BN (RepLKNet, MobileNet V2) or a biased conv without norm
(ConvNeXt's depth-wise conv), and so that a backbone can name the branches as its checkpoints
need.
"""
import torch.nn as nn
import torch.nn.functional as F

from ..ops import build_dw_conv, conv2d_act
from .conv_bn import KernelBias, conv_kernel_bias, dw_conv_bn
from .reparam import ReparamModule

SAME = 'same'


def check_odd_kernel(kernel_size, name='kernel_size'):
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 \
            or kernel_size % 2 == 0:
        raise ValueError(f'{name} must be a positive odd int (centred "same" padding is what '
                         f'lets a small kernel be zero-padded into the large one), got '
                         f'{kernel_size!r}')
    return kernel_size


def build_dw_branch(channels, kernel_size, *, stride=1, norm_layer=nn.BatchNorm2d,
                    backend=None):
    """One depth-wise branch: ``conv``/``bn`` Sequential, or a biased conv if ``norm_layer`` is
    None (its parameters are then ``weight`` / ``bias`` directly under the branch name)."""
    if norm_layer is None:
        return build_dw_conv(channels, kernel_size, stride=stride, bias=True, backend=backend)
    return dw_conv_bn(channels, kernel_size, stride=stride, norm_layer=norm_layer,
                      backend=backend)


def branch_kernel_bias(branch):
    """The :class:`KernelBias` of a branch built by :func:`build_dw_branch`."""
    if isinstance(branch, nn.Sequential):
        return conv_kernel_bias(branch.conv, branch.bn)
    return conv_kernel_bias(branch)


class ReparamLargeKernelConv(ReparamModule):
    """Large depth-wise conv plus an optional parallel small one, mergeable into one conv.

    Training form: ``out = large(x) + small(x)``; deploy form (after
    :func:`replk_mm.layers.switch_to_deploy`, or built with ``small_kernel_merged=True``): one
    biased large conv. Both convs use 'same' padding and the same stride, so the small kernel,
    zero-padded to the large size, adds to the large kernel.

    Args:
        channels (int): Input = output channels.
        kernel_size (int): The large kernel size (positive, odd).
        small_kernel (int, optional): The parallel small kernel size (positive, odd,
            <= ``kernel_size``); None for no small branch (BN folding only).
        stride (int): Stride of both convs.
        small_kernel_merged (bool): Build the deploy form directly (e.g. to load a
            re-parameterized checkpoint).
        norm_layer (Callable[[int], nn.Module] | None): Norm after the large conv, built from the
            channel count; a BatchNorm (folded when merging). None makes the large branch a
            biased conv without norm.
        small_norm_layer (Callable | None | 'same'): Norm after the small conv; ``'same'``
            (default) uses ``norm_layer``, None gives a biased small conv without norm.
        backend (str, optional): ``replk_mm.ops`` backend of every conv (kept when merging).
        large_name (str): Attribute name of the large branch (official RepLKNet: 'lkb_origin').
        small_name (str): Attribute name of the small branch (official: 'small_conv').
        merged_name (str): Attribute name of the merged conv (official: 'lkb_reparam').

    A branch with a norm is an ``nn.Sequential`` with children ``conv`` and ``bn``
    (state-dict keys ``<name>.conv.weight``, ``<name>.bn.*``); without a norm it is the biased
    conv itself (``<name>.weight``, ``<name>.bias``). The merged conv is always biased.
    """

    def __init__(self, channels, kernel_size, small_kernel=None, *, stride=1,
                 small_kernel_merged=False, norm_layer=nn.BatchNorm2d, small_norm_layer=SAME,
                 backend=None, large_name='lkb_origin', small_name='small_conv',
                 merged_name='lkb_reparam'):
        super().__init__()
        check_odd_kernel(kernel_size, 'kernel_size (the large kernel)')
        if small_kernel is not None:
            check_odd_kernel(small_kernel, 'small_kernel')
            if small_kernel > kernel_size:
                raise ValueError(f'small_kernel ({small_kernel}) is larger than the large kernel '
                                 f'({kernel_size}); it could not be merged into it: use a small '
                                 'kernel <= the large one, or None')
        names = (large_name, small_name, merged_name)
        if len(set(names)) != 3 or not all(isinstance(n, str) and n.isidentifier()
                                           for n in names):
            raise ValueError('large_name, small_name and merged_name must be three different '
                             f'identifiers, got {names}')
        if isinstance(small_norm_layer, str) and small_norm_layer != SAME:
            raise ValueError(f"small_norm_layer must be a callable, None or 'same', got "
                             f'{small_norm_layer!r}')
        self.channels, self.kernel_size, self.small_kernel = channels, kernel_size, small_kernel
        self.stride, self.backend = stride, backend
        self.large_name, self.small_name, self.merged_name = names
        if small_kernel_merged:
            self.add_module(merged_name, build_dw_conv(channels, kernel_size, stride=stride,
                                                       bias=True, backend=backend))
            return
        small_norm_layer = norm_layer if small_norm_layer == SAME else small_norm_layer
        self.add_module(large_name, build_dw_branch(channels, kernel_size, stride=stride,
                                                    norm_layer=norm_layer, backend=backend))
        if small_kernel is not None:
            self.add_module(small_name, build_dw_branch(
                channels, small_kernel, stride=stride, norm_layer=small_norm_layer,
                backend=backend))

    @property
    def merged(self):
        return self.merged_name in self._modules

    @property
    def has_small_branch(self):
        return self.small_name in self._modules

    def forward(self, x, activation=None):
        """The conv(s), then ``activation`` (an optional module; fused with the merged conv
        where :func:`~replk_mm.ops.conv2d_act` can)."""
        if self.merged:
            return conv2d_act(self._modules[self.merged_name], x, activation)
        out = self._modules[self.large_name](x)
        if self.has_small_branch:
            out = out + self._modules[self.small_name](x)
        return out if activation is None else activation(out)

    def equivalent_kernel_bias(self):
        """The :class:`KernelBias` of the one conv equivalent to the branches (eval mode)."""
        if self.merged:
            conv = self._modules[self.merged_name]
            return KernelBias(conv.weight, conv.bias)
        kernel, bias = branch_kernel_bias(self._modules[self.large_name])
        if self.has_small_branch:
            small = branch_kernel_bias(self._modules[self.small_name])
            pad = (self.kernel_size - self.small_kernel) // 2
            kernel = kernel + F.pad(small.weight, [pad] * 4)
            bias = bias + small.bias
        return KernelBias(kernel, bias)

    def merge(self):
        kernel, bias = self.equivalent_kernel_bias()
        conv = build_dw_conv(self.channels, self.kernel_size, stride=self.stride, bias=True,
                             backend=self.backend)
        conv.to(device=kernel.device, dtype=kernel.dtype)
        conv.weight.data.copy_(kernel)
        conv.bias.data.copy_(bias)
        delattr(self, self.large_name)
        if self.has_small_branch:
            delattr(self, self.small_name)
        self.add_module(self.merged_name, conv)

    def extra_repr(self):
        return (f'kernel_size={self.kernel_size}, small_kernel={self.small_kernel}, '
                f'merged={self.merged}')
