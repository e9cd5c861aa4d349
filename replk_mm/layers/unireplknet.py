"""UniRepLKNet building blocks, torch only.

UniRepLKNet: Ding et al., "UniRepLKNet: A Universal Perception Large-Kernel ConvNet for Audio,
Video, Point Cloud, Time-Series and Image Recognition", CVPR 2024. Modified from
AILab-CVC/UniRepLKNet ``unireplknet.py`` (Apache-2.0): the Dilated Reparam Block, GRN, SE and
the UniRepLKNet block, with the official module names and registration order so that the
released training-form and deploy-form checkpoints load by key.

Re-parameterization goes through :class:`replk_mm.layers.ReparamModule`, as the official
``UniRepLKNetBlock.reparameterize`` does it: the dilated branches and every BN before the
point-wise convs are folded into one biased dense depth-wise conv, and the GRN bias, the BN
after the second point-wise linear and the layer scale are folded into that linear. SE and the
GRN scale stay (they depend on the input).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp

from ..ops import build_dw_conv, linear_act
from .conv_bn import check_foldable_norm, conv_kernel_bias
from .drop_path import DropPath
from .reparam import ReparamModule

__all__ = ['DILATED_BRANCHES', 'BLOCK_KERNEL_SIZES', 'dilate_kernel', 'pad_kernel', 'GRN',
           'SEBlock', 'ToChannelsLast', 'ToChannelsFirst', 'DilatedReparamBlock',
           'UniRepLKNetBlock']

# Kernel size -> the parallel dilated branches as (kernel, dilation) pairs; the official
# defaults (unireplknet.py, DilatedReparamBlock.__init__), which its authors say were not tuned.
DILATED_BRANCHES = {
    5: ((3, 1), (3, 2)),
    7: ((5, 1), (3, 2), (3, 3)),
    9: ((5, 1), (5, 2), (3, 3), (3, 4)),
    11: ((5, 1), (5, 2), (3, 3), (3, 4), (3, 5)),
    13: ((5, 1), (7, 2), (3, 3), (3, 4), (3, 5)),
    15: ((5, 1), (7, 2), (3, 3), (3, 5), (3, 7)),
    17: ((5, 1), (9, 2), (3, 4), (3, 5), (3, 7)),
}
# What a block's kernel size may be: 0 (no depth-wise conv), 3 or 5 (a plain depth-wise conv
# + BN) or >= 7 (a Dilated Reparam Block); the official UniRepLKNetBlock.__init__.
BLOCK_KERNEL_SIZES = (0, 3, 5) + tuple(k for k in DILATED_BRANCHES if k >= 7)


def dilate_kernel(kernel, dilation):
    """The dense kernel equivalent to ``kernel`` applied with ``dilation``: the taps spread
    ``dilation`` apart with zeros between them, size ``dilation * (k - 1) + 1``."""
    if dilation == 1:
        return kernel
    k = kernel.shape[-1]
    size = dilation * (k - 1) + 1
    dense = kernel.new_zeros(*kernel.shape[:-2], size, size)
    dense[..., ::dilation, ::dilation] = kernel
    return dense


def pad_kernel(kernel, size):
    """``kernel`` zero-padded, centred, to ``size`` x ``size`` (both odd): with 'same' padding
    the padded conv computes what the small one did."""
    pad = (size - kernel.shape[-1]) // 2
    return F.pad(kernel, [pad] * 4) if pad else kernel


class ToChannelsLast(nn.Module):
    """NCHW -> NHWC (a module so that the official ``pwconv1.1`` key index holds)."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1)


class ToChannelsFirst(nn.Module):
    """NHWC -> NCHW."""

    def forward(self, x):
        return x.permute(0, 3, 1, 2)


class GRN(nn.Module):
    """Global Response Normalization (ConvNeXt V2, Woo et al., CVPR 2023) on NHWC inputs.

    ``(gamma * N(x) + 1) * x + beta`` with ``N(x)`` the per-channel spatial L2 norm divided by
    its mean over channels. The deploy form has no ``beta`` (folded into the next linear).

    Args:
        channels (int): Channels (last dimension).
        use_bias (bool): Keep ``beta``.
    """

    def __init__(self, channels, use_bias=True):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels)) if use_bias else None

    def forward(self, x):
        # the official torch.norm(x, p=2, dim=(1, 2)); vector_norm does not square in the input
        # dtype, so fp16 maps do not overflow
        gx = torch.linalg.vector_norm(x, 2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        out = (self.gamma * nx + 1) * x
        return out if self.beta is None else out + self.beta


class SEBlock(nn.Module):
    """Squeeze-and-Excitation (Hu et al., CVPR 2018) on NCHW inputs, the official ``down`` /
    ``up`` biased 1x1 convs with ReLU between and a sigmoid gate.

    Args:
        channels (int): Input = output channels.
        internal_channels (int): Channels of the squeezed representation.
    """

    def __init__(self, channels, internal_channels):
        super().__init__()
        self.down = nn.Conv2d(channels, internal_channels, kernel_size=1, bias=True)
        self.up = nn.Conv2d(internal_channels, channels, kernel_size=1, bias=True)
        self.nonlinear = nn.ReLU(inplace=True)

    def forward(self, x):
        w = self.up(self.nonlinear(self.down(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.sigmoid(w)


def dilated_branch_name(kernel, dilation, kind):
    return f'dil_{kind}_k{kernel}_{dilation}'


class DilatedReparamBlock(ReparamModule):
    """Large depth-wise conv with parallel dilated small depth-wise convs, each followed by a BN
    (UniRepLKNet's Dilated Reparam Block), mergeable into one biased dense large conv.

    Training form: ``origin_bn(lk_origin(x)) + sum_i dil_bn_i(dil_conv_i(x))``, the branches
    of :data:`DILATED_BRANCHES`. Deploy form: ``lk_origin`` alone, biased. The large conv runs
    through ``replk_mm.ops``; the dilated convs are small (at most 9 taps a side) and run as
    dilated ``nn.Conv2d``.

    Args:
        channels (int): Input = output channels.
        kernel_size (int): The large kernel, a key of :data:`DILATED_BRANCHES` (5 to 17, odd).
        norm_layer (Callable[[int], nn.Module]): Builds every BN (folded when merging).
        deployed (bool): Build the deploy form directly (to load a deploy-form checkpoint).
        backend (str, optional): ``replk_mm.ops`` backend of the large conv.
    """

    def __init__(self, channels, kernel_size, *, norm_layer=nn.BatchNorm2d, deployed=False,
                 backend=None):
        super().__init__()
        if kernel_size not in DILATED_BRANCHES:
            raise ValueError(f'the Dilated Reparam Block has branch settings for kernel sizes '
                             f'{sorted(DILATED_BRANCHES)}, got {kernel_size!r}')
        self.channels, self.kernel_size, self.backend = channels, kernel_size, backend
        self.branches = DILATED_BRANCHES[kernel_size]
        self.lk_origin = build_dw_conv(channels, kernel_size, bias=deployed, backend=backend)
        if deployed:
            return
        self.origin_bn = check_foldable_norm(norm_layer(channels))
        for k, r in self.branches:
            self.add_module(dilated_branch_name(k, r, 'conv'), nn.Conv2d(
                channels, channels, k, padding=r * (k - 1) // 2, dilation=r, groups=channels,
                bias=False))
            self.add_module(dilated_branch_name(k, r, 'bn'),
                            check_foldable_norm(norm_layer(channels)))

    @property
    def merged(self):
        return 'origin_bn' not in self._modules

    def forward(self, x):
        if self.merged:
            return self.lk_origin(x)
        out = self.origin_bn(self.lk_origin(x))
        for k, r in self.branches:
            conv = self._modules[dilated_branch_name(k, r, 'conv')]
            out = out + self._modules[dilated_branch_name(k, r, 'bn')](conv(x))
        return out

    def equivalent_kernel_bias(self):
        """Weight and bias of the one dense conv equivalent to the branches (eval mode)."""
        if self.merged:
            return conv_kernel_bias(self.lk_origin)
        kernel, bias = conv_kernel_bias(self.lk_origin, self.origin_bn)
        for k, r in self.branches:
            branch = conv_kernel_bias(self._modules[dilated_branch_name(k, r, 'conv')],
                                      self._modules[dilated_branch_name(k, r, 'bn')])
            kernel = kernel + pad_kernel(dilate_kernel(branch.weight, r), self.kernel_size)
            bias = bias + branch.bias
        return kernel, bias

    def merge(self):
        kernel, bias = self.equivalent_kernel_bias()
        conv = build_dw_conv(self.channels, self.kernel_size, bias=True, backend=self.backend)
        conv.to(device=kernel.device, dtype=kernel.dtype)
        conv.weight.data.copy_(kernel)
        conv.bias.data.copy_(bias)
        self.lk_origin = conv
        del self.origin_bn
        for k, r in self.branches:
            delattr(self, dilated_branch_name(k, r, 'conv'))
            delattr(self, dilated_branch_name(k, r, 'bn'))

    def extra_repr(self):
        return f'kernel_size={self.kernel_size}, branches={self.branches}, merged={self.merged}'


class UniRepLKNetBlock(ReparamModule):
    """The UniRepLKNet block.

    ``x + drop_path(gamma * FFN(SE(norm(dwconv(x)))))`` with ``FFN`` = linear (``ffn_ratio``
    x) -> GELU -> GRN -> linear -> BN, on channels-last tensors. ``dwconv`` is a
    :class:`DilatedReparamBlock` for kernels >= 7, a plain depth-wise conv for 3 and 5, nothing
    for 0 (then there is no ``norm`` either).

    Deploy form (``replk_mm.switch_to_deploy`` or ``deployed=True``), as the official
    ``reparameterize``: ``dwconv`` biased (dilated branches, their BNs and ``norm`` folded),
    ``norm`` an identity, GRN without ``beta``, ``pwconv2.0`` a biased linear holding the GRN
    bias, the BN and the layer scale, no ``gamma``.

    Args:
        channels (int): Input = output channels.
        kernel_size (int): One of :data:`BLOCK_KERNEL_SIZES`.
        drop_path (float): Stochastic depth rate.
        layer_scale_init_value (float): Initial layer scale; 0 or None for none.
        ffn_ratio (float): Hidden channels of the FFN / ``channels``.
        norm_layer (Callable[[int], nn.Module]): Builds the BNs (``nn.BatchNorm2d``; the
            official downstream models use ``nn.SyncBatchNorm``).
        deployed (bool): Build the deploy form directly.
        with_cp (bool): Gradient checkpointing while gradients are needed.
        backend (str, optional): ``replk_mm.ops`` backend of the depth-wise convs.
    """

    def __init__(self, channels, kernel_size, *, drop_path=0., layer_scale_init_value=1e-6,
                 ffn_ratio=4, norm_layer=nn.BatchNorm2d, deployed=False, with_cp=False,
                 backend=None):
        super().__init__()
        if kernel_size not in BLOCK_KERNEL_SIZES:
            raise ValueError(f'a UniRepLKNet block kernel size is one of '
                             f'{list(BLOCK_KERNEL_SIZES)} (0: no depth-wise conv; 3, 5: a plain '
                             f'one; >= 7: a Dilated Reparam Block), got {kernel_size!r}')
        self.channels, self.kernel_size, self.backend = channels, kernel_size, backend
        self.with_cp = with_cp
        if kernel_size == 0:
            self.dwconv = nn.Identity()
        elif kernel_size >= 7:
            self.dwconv = DilatedReparamBlock(channels, kernel_size, norm_layer=norm_layer,
                                              deployed=deployed, backend=backend)
        else:
            self.dwconv = build_dw_conv(channels, kernel_size, bias=deployed, backend=backend)
        self.norm = nn.Identity() if deployed or kernel_size == 0 else \
            check_foldable_norm(norm_layer(channels))
        self.se = SEBlock(channels, channels // 4)
        hidden = int(ffn_ratio * channels)
        self.pwconv1 = nn.Sequential(ToChannelsLast(), nn.Linear(channels, hidden))
        self.act = nn.Sequential(nn.GELU(), GRN(hidden, use_bias=not deployed))
        self.pwconv2 = nn.Sequential(nn.Linear(hidden, channels, bias=deployed),
                                     ToChannelsFirst())
        if not deployed:
            self.pwconv2.append(check_foldable_norm(norm_layer(channels)))
        if not deployed and layer_scale_init_value:
            self.gamma = nn.Parameter(torch.full((channels, ), float(layer_scale_init_value)))
        else:
            self.gamma = None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    @property
    def merged(self):
        return len(self.pwconv2) == 2

    def forward(self, x):
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def _forward(self, x):
        y = self.se(self.norm(self.dwconv(x)))
        # pwconv1 = (to NHWC, Linear), act = (GELU, GRN), pwconv2 = (Linear, to NCHW[, BN]):
        # linear_act runs each Linear (with the GELU) as one oneDNN call in CPU inference
        y = self.act[1](linear_act(self.pwconv1[1], self.pwconv1[0](y), self.act[0]))
        y = linear_act(self.pwconv2[0], y)
        for layer in self.pwconv2[1:]:
            y = layer(y)
        if self.gamma is not None:
            y = self.gamma.view(1, -1, 1, 1) * y
        return x + self.drop_path(y)

    def merge(self):
        if isinstance(self.dwconv, ReparamModule):
            self.dwconv.switch_to_deploy()
        if not isinstance(self.norm, nn.Identity):
            conv = self.dwconv.lk_origin if isinstance(self.dwconv, DilatedReparamBlock) \
                else self.dwconv
            kernel, bias = conv_kernel_bias(conv, self.norm)
            fused = build_dw_conv(self.channels, self.kernel_size, bias=True,
                                  backend=self.backend)
            fused.to(device=kernel.device, dtype=kernel.dtype)
            fused.weight.data.copy_(kernel)
            fused.bias.data.copy_(bias)
            if isinstance(self.dwconv, DilatedReparamBlock):
                self.dwconv.lk_origin = fused
            else:
                self.dwconv = fused
            self.norm = nn.Identity()
        # linear (no bias) on GRN output (+ beta) -> BN -> layer scale: one biased linear
        linear, bn, grn = self.pwconv2[0], self.pwconv2[2], self.act[1]
        weight, bias = conv_kernel_bias(linear, bn)  # works for (out, in) weights too
        if grn.beta is not None:
            std = (bn.running_var + bn.eps).sqrt()
            scale = bn.weight / std if bn.weight is not None else std.reciprocal()
            bias = bias + (linear.weight @ grn.beta.reshape(-1)) * scale
            grn.beta = None
        if self.gamma is not None:
            weight = weight * self.gamma.reshape(-1, 1)
            bias = bias * self.gamma
            self.gamma = None
        fused = nn.Linear(linear.in_features, linear.out_features, bias=True)
        fused.to(device=weight.device, dtype=weight.dtype)
        fused.weight.data.copy_(weight)
        fused.bias.data.copy_(bias)
        self.pwconv2 = nn.Sequential(fused, ToChannelsFirst())

    def extra_repr(self):
        return f'kernel_size={self.kernel_size}, merged={self.merged}'
