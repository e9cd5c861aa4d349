"""RepLKNet building blocks, torch only.

Modified from the official RepLKNet code (https://github.com/DingXiaoH/RepLKNet-pytorch, MIT):
``RepLKBlock``, ``ConvFFN``, ``RepLKNetStage`` and the stem / transition layout. Child names
and registration order are the official ones, so state dicts match the released checkpoints
key for key and in order.

Deploy form (:func:`~replk_mm.layers.switch_to_deploy`, or built with
``small_kernel_merged=True``): every BN is folded. The post-norm BNs go into their conv; the
pre-norm BNs (``prelkb_bn``, ``preffn_bn``) into the 1x1 conv that follows them, which is exact
for a 1x1 conv without padding. A block is then 1x1 conv + ReLU, the large depth-wise conv,
ReLU, 1x1 conv, add. The official deploy checkpoints (``lkb_reparam`` plus the unfolded BNs)
map onto it by :func:`fold_deploy_state_dict`.
"""
import re

import torch.nn as nn
import torch.utils.checkpoint as cp

from ..ops import conv2d_add
from .conv_bn import bn_scale_shift, conv_bn, fold_bn_before_1x1
from .drop_path import DropPath
from .reparam import ReparamModule
from .reparam_large_kernel import ReparamLargeKernelConv


class PreNormBlock(ReparamModule):
    """A residual block whose branch starts with a BN (``pre_norm_name``) and then ``pw1``, a
    1x1 :class:`~replk_mm.layers.conv_bn.ConvBN`; merging folds every BN of the branch, the
    pre-norm into ``pw1``."""
    pre_norm_name = None

    @property
    def merged(self):
        return self.pre_norm_name not in self._modules

    def merge(self):
        for module in self.branch_reparam_modules():
            module.switch_to_deploy()  # children first (a no-op when already merged)
        self.pw1.fold_bn_before(self._modules[self.pre_norm_name])
        delattr(self, self.pre_norm_name)
        self.use_inplace_ops()

    def use_inplace_ops(self):
        """Deploy form: ReLUs and the residual add in place, which saves an allocation and a
        pass over memory each (measured in docs/deploy.md); outputs are unchanged."""
        for module in self.modules():
            if isinstance(module, nn.ReLU):
                module.inplace = True

    def residual(self, x, out):
        """``x + drop_path(pw2(out))``. In the deploy form (no drop path at work) the 1x1 conv
        and the add run as one call where :func:`~replk_mm.ops.conv2d_add` can fuse them;
        without a gradient the sum is written into ``x``'s memory (as an in-place ReLU writes
        into its input): a forward hook that keeps a block's input must clone it."""
        if self.merged and not (self.training and isinstance(self.drop_path, DropPath)):
            return conv2d_add(self.pw2.conv, out, x)
        return x + self.drop_path(self.pw2(out))

    def branch_reparam_modules(self):
        return [m for m in self.children() if isinstance(m, ReparamModule)]

    def pre_norm(self, x):
        norm = self._modules.get(self.pre_norm_name)
        return x if norm is None else norm(x)


class RepLKBlock(PreNormBlock):
    """BN -> 1x1 conv-BN-ReLU -> large DW conv (+ small DW conv) -> ReLU -> 1x1 conv-BN, plus
    the identity.

    Args:
        channels (int): Block input = output channels.
        dw_channels (int): Channels of the depth-wise large-kernel conv.
        kernel_size (int): The large kernel size.
        small_kernel (int, optional): The parallel re-parameterized small kernel, or None.
        drop_path (float): Drop-path rate of the residual branch.
        small_kernel_merged (bool): Build the deploy form (every BN folded).
        norm_layer (Callable[[int], nn.Module]): Builds every norm from its channel count.
        dw_conv_backend (str, optional): ``replk_mm.ops`` backend of the depth-wise convs.
    """
    pre_norm_name = 'prelkb_bn'

    def __init__(self, channels, dw_channels, kernel_size, small_kernel=None, *, drop_path=0.,
                 small_kernel_merged=False, norm_layer=nn.BatchNorm2d, dw_conv_backend=None):
        super().__init__()
        # Registration order = the official state-dict order.
        merged = small_kernel_merged
        self.pw1 = conv_bn(channels, dw_channels, 1, norm_layer=norm_layer, relu=True,
                           merged=merged)
        self.pw2 = conv_bn(dw_channels, channels, 1, norm_layer=norm_layer, merged=merged)
        self.large_kernel = ReparamLargeKernelConv(
            dw_channels, kernel_size, small_kernel, small_kernel_merged=merged,
            norm_layer=norm_layer, backend=dw_conv_backend)
        self.lk_nonlinear = nn.ReLU()
        if not merged:
            self.prelkb_bn = norm_layer(channels)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if merged:
            self.use_inplace_ops()

    def forward(self, x):
        out = self.pw1(self.pre_norm(x))
        return self.residual(x, self.large_kernel(out, self.lk_nonlinear))


class ConvFFN(PreNormBlock):
    """BN -> 1x1 conv-BN -> GELU -> 1x1 conv-BN, plus the identity.

    Args:
        channels (int): Input = output channels.
        hidden_channels (int): Channels between the two 1x1 convs.
        drop_path (float): Drop-path rate of the residual branch.
        norm_layer (Callable[[int], nn.Module]): Builds every norm from its channel count.
        merged (bool): Build the deploy form (every BN folded).
    """
    pre_norm_name = 'preffn_bn'

    def __init__(self, channels, hidden_channels, *, drop_path=0., norm_layer=nn.BatchNorm2d,
                 merged=False):
        super().__init__()
        if not merged:
            self.preffn_bn = norm_layer(channels)
        self.pw1 = conv_bn(channels, hidden_channels, 1, norm_layer=norm_layer, merged=merged)
        self.nonlinear = nn.GELU()
        self.pw2 = conv_bn(hidden_channels, channels, 1, norm_layer=norm_layer, merged=merged)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        return self.residual(x, self.pw1(self.pre_norm(x), self.nonlinear))


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
        small_kernel_merged (bool): Build the deploy form (every BN of the blocks folded).
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
                                  norm_layer=norm_layer, merged=small_kernel_merged))
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm_layer(channels) if norm_intermediate_features else nn.Identity()

    def forward(self, x):
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def build_stem(in_channels, width, *, norm_layer=nn.BatchNorm2d, merged=False):
    """The official stem (stride 4): 3x3/2 conv, DW 3x3, 1x1, DW 3x3/2, each BN-ReLU
    (``merged``: the BNs folded).

    An ``nn.ModuleList`` (``stem.0`` .. ``stem.3``), so the backbone can checkpoint each layer.
    """
    kw = dict(norm_layer=norm_layer, relu=True, merged=merged)
    return nn.ModuleList([
        conv_bn(in_channels, width, 3, stride=2, **kw),
        conv_bn(width, width, 3, groups=width, **kw),
        conv_bn(width, width, 1, **kw),
        conv_bn(width, width, 3, stride=2, groups=width, **kw),
    ])


def build_transition(in_channels, out_channels, *, norm_layer=nn.BatchNorm2d, merged=False):
    """The official transition between stages: 1x1 conv-BN-ReLU, DW 3x3/2 conv-BN-ReLU
    (``merged``: the BNs folded)."""
    kw = dict(norm_layer=norm_layer, relu=True, merged=merged)
    return nn.Sequential(
        conv_bn(in_channels, out_channels, 1, **kw),
        conv_bn(out_channels, out_channels, 3, stride=2, groups=out_channels, **kw))


# A conv-BN pair of the official deploy layout: '<P>.conv.weight' with '<P>.bn.*', no bias.
_CONV_BN_WEIGHT = re.compile(r'^(.*)\.conv\.weight$')
_PRE_NORMS = {'prelkb_bn': 'pw1', 'preffn_bn': 'pw1'}
BN_EPS = 1e-5  # the official code's (and nn.BatchNorm2d's) BN eps


def _pop_bn(state_dict, prefix):
    """Remove the BN tensors at ``prefix`` and return its (scale, shift)."""
    bn = {k: state_dict.pop(f'{prefix}.{k}') for k in
          ('weight', 'bias', 'running_mean', 'running_var')}
    state_dict.pop(f'{prefix}.num_batches_tracked', None)
    return bn_scale_shift(bn['running_mean'], bn['running_var'], BN_EPS, bn['weight'],
                          bn['bias'])


def fold_deploy_state_dict(state_dict):
    """The official RepLKNet deploy-form state dict (``lkb_reparam`` convs, every other BN
    unfolded) in replk_mm's deploy layout (every BN folded), as a new dict.

    The same arithmetic as merging the modules: each ``P.conv.weight`` with ``P.bn.*`` becomes
    ``P.conv.weight`` / ``P.conv.bias``, then each block's ``prelkb_bn`` / ``preffn_bn`` folds
    into its ``pw1``. BNs use the official eps (1e-5). A state dict with no conv-BN pair left
    (replk_mm's own deploy checkpoints) comes back unchanged; the training form (``lkb_origin``
    branches) is not touched either, since only a merge can combine its branches.
    """
    state_dict = dict(state_dict)
    if not any('lkb_reparam' in k for k in state_dict) or \
            any('lkb_origin' in k for k in state_dict):
        return state_dict
    for key in list(state_dict):
        match = _CONV_BN_WEIGHT.match(key)
        if not match or f'{match.group(1)}.bn.running_var' not in state_dict:
            continue
        prefix = match.group(1)
        scale, shift = _pop_bn(state_dict, f'{prefix}.bn')
        weight = state_dict[key]
        state_dict[key] = weight * scale.view(-1, 1, 1, 1)
        bias = state_dict.get(f'{prefix}.conv.bias')
        state_dict[f'{prefix}.conv.bias'] = shift if bias is None else bias * scale + shift
    for key in list(state_dict):
        match = re.match(r'^(.*)\.(prelkb_bn|preffn_bn)\.running_var$', key)
        if not match:
            continue
        block, norm = match.groups()
        scale, shift = _pop_bn(state_dict, f'{block}.{norm}')
        conv = f'{block}.{_PRE_NORMS[norm]}.conv'
        state_dict[f'{conv}.weight'], state_dict[f'{conv}.bias'] = fold_bn_before_1x1(
            state_dict[f'{conv}.weight'], state_dict[f'{conv}.bias'], scale, shift)
    return state_dict
