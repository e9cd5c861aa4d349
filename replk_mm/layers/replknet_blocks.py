"""RepLKNet building blocks, torch only.

Modified from the official RepLKNet code (https://github.com/DingXiaoH/RepLKNet-pytorch, MIT):
``RepLKBlock``, ``ConvFFN``, ``RepLKNetStage`` and the stem / transition layout. Child names
and registration order are the official ones, so state dicts match the released checkpoints
key for key and in order.
"""
import torch.nn as nn
import torch.utils.checkpoint as cp

from .conv_bn import conv_bn
from .drop_path import DropPath
from .reparam_large_kernel import ReparamLargeKernelConv


class RepLKBlock(nn.Module):
    """BN -> 1x1 conv-BN-ReLU -> large DW conv (+ small DW conv) -> ReLU -> 1x1 conv-BN, plus
    the identity.

    Args:
        channels (int): Block input = output channels.
        dw_channels (int): Channels of the depth-wise large-kernel conv.
        kernel_size (int): The large kernel size.
        small_kernel (int, optional): The parallel re-parameterized small kernel, or None.
        drop_path (float): Drop-path rate of the residual branch.
        small_kernel_merged (bool): Build the deploy form of the large-kernel conv.
        norm_layer (Callable[[int], nn.Module]): Builds every norm from its channel count.
        dw_conv_backend (str, optional): ``replk_mm.ops`` backend of the depth-wise convs.
    """

    def __init__(self, channels, dw_channels, kernel_size, small_kernel=None, *, drop_path=0.,
                 small_kernel_merged=False, norm_layer=nn.BatchNorm2d, dw_conv_backend=None):
        super().__init__()
        # Registration order = the official state-dict order.
        self.pw1 = conv_bn(channels, dw_channels, 1, norm_layer=norm_layer, relu=True)
        self.pw2 = conv_bn(dw_channels, channels, 1, norm_layer=norm_layer)
        self.large_kernel = ReparamLargeKernelConv(
            dw_channels, kernel_size, small_kernel, small_kernel_merged=small_kernel_merged,
            norm_layer=norm_layer, backend=dw_conv_backend)
        self.lk_nonlinear = nn.ReLU()
        self.prelkb_bn = norm_layer(channels)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        out = self.pw1(self.prelkb_bn(x))
        out = self.pw2(self.lk_nonlinear(self.large_kernel(out)))
        return x + self.drop_path(out)


class ConvFFN(nn.Module):
    """BN -> 1x1 conv-BN -> GELU -> 1x1 conv-BN, plus the identity.

    Args:
        channels (int): Input = output channels.
        hidden_channels (int): Channels between the two 1x1 convs.
        drop_path (float): Drop-path rate of the residual branch.
        norm_layer (Callable[[int], nn.Module]): Builds every norm from its channel count.
    """

    def __init__(self, channels, hidden_channels, *, drop_path=0., norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.preffn_bn = norm_layer(channels)
        self.pw1 = conv_bn(channels, hidden_channels, 1, norm_layer=norm_layer)
        self.nonlinear = nn.GELU()
        self.pw2 = conv_bn(hidden_channels, channels, 1, norm_layer=norm_layer)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        out = self.pw2(self.nonlinear(self.pw1(self.preffn_bn(x))))
        return x + self.drop_path(out)


class RepLKNetStage(nn.Module):
    """Alternating :class:`RepLKBlock` s and :class:`ConvFFN` s (``blocks.0, 1, ...``).

    ``norm`` is a BN when ``norm_intermediate_features`` else an identity; the stage does not
    apply it itself (the backbone applies it to the features it returns).

    Args:
        channels (int): Stage width.
        num_blocks (int): Number of RepLK block + ConvFFN pairs.
        kernel_size (int): The large kernel size.
        small_kernel (int, optional): The re-parameterized small kernel, or None.
        drop_paths (Sequence[float]): One drop-path rate per pair.
        dw_ratio (float): Depth-wise channels / ``channels``.
        ffn_ratio (float): ConvFFN hidden channels / ``channels``.
        with_cp (bool): Gradient checkpointing per block while gradients are needed.
        small_kernel_merged (bool): Build the deploy form.
        norm_intermediate_features (bool): Give the stage a BN ``norm``.
        norm_layer (Callable[[int], nn.Module]): Builds every norm from its channel count.
        dw_conv_backend (str, optional): ``replk_mm.ops`` backend of the depth-wise convs.
    """

    def __init__(self, channels, num_blocks, kernel_size, small_kernel, drop_paths, *,
                 dw_ratio=1., ffn_ratio=4., with_cp=False, small_kernel_merged=False,
                 norm_intermediate_features=False, norm_layer=nn.BatchNorm2d,
                 dw_conv_backend=None):
        super().__init__()
        if len(drop_paths) != num_blocks:
            raise ValueError(f'drop_paths needs one rate per block ({num_blocks}), got '
                             f'{len(drop_paths)}')
        self.with_cp = with_cp
        blocks = []
        for rate in drop_paths:
            blocks.append(RepLKBlock(channels, int(channels * dw_ratio), kernel_size,
                                     small_kernel, drop_path=rate,
                                     small_kernel_merged=small_kernel_merged,
                                     norm_layer=norm_layer, dw_conv_backend=dw_conv_backend))
            blocks.append(ConvFFN(channels, int(channels * ffn_ratio), drop_path=rate,
                                  norm_layer=norm_layer))
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm_layer(channels) if norm_intermediate_features else nn.Identity()

    def forward(self, x):
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def build_stem(in_channels, width, *, norm_layer=nn.BatchNorm2d):
    """The official stem (stride 4): 3x3/2 conv, DW 3x3, 1x1, DW 3x3/2, each BN-ReLU.

    An ``nn.ModuleList`` (``stem.0`` .. ``stem.3``), so the backbone can checkpoint each layer.
    """
    return nn.ModuleList([
        conv_bn(in_channels, width, 3, stride=2, norm_layer=norm_layer, relu=True),
        conv_bn(width, width, 3, groups=width, norm_layer=norm_layer, relu=True),
        conv_bn(width, width, 1, norm_layer=norm_layer, relu=True),
        conv_bn(width, width, 3, stride=2, groups=width, norm_layer=norm_layer, relu=True),
    ])


def build_transition(in_channels, out_channels, *, norm_layer=nn.BatchNorm2d):
    """The official transition between stages: 1x1 conv-BN-ReLU, DW 3x3/2 conv-BN-ReLU."""
    return nn.Sequential(
        conv_bn(in_channels, out_channels, 1, norm_layer=norm_layer, relu=True),
        conv_bn(out_channels, out_channels, 3, stride=2, groups=out_channels,
                norm_layer=norm_layer, relu=True))
