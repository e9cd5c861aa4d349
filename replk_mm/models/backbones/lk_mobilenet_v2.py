"""MobileNet V2 with large depth-wise kernels: the network of the RepLKNet paper's MobileNet V2
studies (Ding et al., "Scaling Up Your Kernels to 31x31", CVPR 2022; guidelines 2, 3 and 5).

Four switches on top of MobileNet V2 (Sandler et al., CVPR 2018):

* ``kernel_sizes``: the depth-wise kernel of every layer (one per row of the layer table), e.g.
  13 everywhere, or 3 everywhere but 13 in the last layer, whose maps are 7x7 at 224x224;
* ``with_shortcut``: the identity shortcuts of the inverted residual blocks, on or off;
* ``small_kernel``: a parallel re-parameterized small depth-wise conv-BN on every depth-wise
  conv larger than it, merged into the large kernel by :func:`replk_mm.switch_to_deploy`;
* ``dilation``: dilated instead of dense depth-wise convs (the paper's Table 11).

Modified from mmpretrain's ``MobileNetV2`` (https://github.com/open-mmlab/mmpretrain,
Apache-2.0): same layer table, widths, block layout and state-dict names (``conv1``,
``layer<i>.<j>.conv.<k>``, ``conv2``), except that each depth-wise conv is a
:class:`replk_mm.layers.ReparamLargeKernelConv` (modified from the official RepLKNet code, MIT)
whose conv-BN sits under ``lkb_origin``. mmpretrain / mmseg MobileNetV2 checkpoints are
converted to this layout on loading.
"""
import copy
import functools

import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule

from ...layers import (
    DropPath,
    ReparamLargeKernelConv,
    check_odd_kernel,
    linear_drop_path_rates,
    resolve_arch,
)
from ...registry import MODELS
from .base import BackboneMixin, check_frozen_stages, mmcv_norm_layer

__all__ = ['LKMobileNetV2', 'LKInvertedResidual', 'LKDepthwiseConv', 'make_divisible']

# expand ratio, output channels, blocks, stride of the first block (MobileNet V2, Table 2)
MOBILENET_V2_LAYERS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
LAST_CONV_CHANNELS = 1280
DEFAULT_INIT_CFG = [dict(type='Kaiming', layer=['Conv2d']),
                    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]


def make_divisible(value, divisor=8, min_ratio=0.9):
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), and never
    below ``min_ratio * value``: the channel rounding of the MobileNet reference code, so widths
    match mmpretrain's and torchvision's for every ``widen_factor``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < min_ratio * value else rounded


class LKDepthwiseConv(ReparamLargeKernelConv):
    """The depth-wise conv of an inverted residual block: a :class:`ReparamLargeKernelConv`
    (large conv-BN ``lkb_origin`` [+ small conv-BN ``small_conv``], or the merged
    ``lkb_reparam``) followed by the block's activation ``activate``.

    Args:
        channels (int): Input = output channels.
        kernel_size (int): The depth-wise kernel size (odd).
        small_kernel (int, optional): The parallel re-parameterized kernel, or None.
        act_cfg (dict): The activation, e.g. ``dict(type='ReLU6')``.
        **kwargs: ``stride``, ``small_kernel_merged``, ``norm_layer``, ``backend`` of
            :class:`ReparamLargeKernelConv`.
    """

    def __init__(self, channels, kernel_size, small_kernel=None, *, act_cfg, **kwargs):
        super().__init__(channels, kernel_size, small_kernel, **kwargs)
        self.activate = build_activation_layer(act_cfg)

    def forward(self, x):
        return self.activate(super().forward(x))


def check_dilation(dilation, small_kernel, dw_conv_backend):
    """Refuse a dilation that is not a positive int, or one above 1 together with what only the
    dense depth-wise conv has (a re-parameterization branch, a ``replk_mm.ops`` backend)."""
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 1:
        raise ValueError(f'dilation must be an int >= 1, got {dilation!r}')
    if dilation > 1 and small_kernel is not None:
        raise ValueError(f'dilation={dilation} with small_kernel={small_kernel}: a dilated '
                         'depth-wise conv has no re-parameterization branch here; set '
                         'small_kernel=None (or dilation=1)')
    if dilation > 1 and dw_conv_backend is not None:
        raise ValueError(f'dilation={dilation} with dw_conv_backend={dw_conv_backend!r}: the '
                         'replk_mm.ops backends run dense depth-wise convs only; leave '
                         'dw_conv_backend=None for dilated convs')


class LKInvertedResidual(nn.Module):
    """Inverted residual block: 1x1 expand conv-BN-act (if ``expand_ratio`` != 1), depth-wise
    conv-BN-act (:class:`LKDepthwiseConv`), 1x1 project conv-BN, plus the identity when
    ``with_shortcut`` and the block keeps its shape (stride 1, same channels).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depth-wise conv (1 or 2).
        expand_ratio (float): Hidden channels / ``in_channels``.
        kernel_size (int): Depth-wise kernel size.
        small_kernel (int, optional): Parallel re-parameterized depth-wise kernel, or None.
        with_shortcut (bool): Add the identity where the shapes allow.
        drop_path (float): Drop-path rate of the residual branch (needs the shortcut).
        small_kernel_merged (bool): Build the depth-wise conv in its deploy form.
        norm_cfg (dict): Norm config (a BatchNorm: it is folded on re-parameterization).
        act_cfg (dict): Activation config.
        with_cp (bool): Gradient checkpointing of the block.
        dw_conv_backend (str, optional): ``replk_mm.ops`` backend of the depth-wise conv.
        dilation (int): Dilation of the depth-wise conv. Above 1 it is a plain dilated
            conv-BN-act (mmcv ``ConvModule``, the state-dict layout of mmseg's dilated
            MobileNetV2): the paper's Table 11 compares 3x3 convs with dilation 4 / 6 against
            dense 9x9 / 13x13 ones of the same maximum receptive field. It has no
            re-parameterization branch and runs through PyTorch's conv.
    """

    def __init__(self, in_channels, out_channels, stride, expand_ratio, *, kernel_size=3,
                 small_kernel=None, with_shortcut=True, drop_path=0., small_kernel_merged=False,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU6'), with_cp=False,
                 dw_conv_backend=None, dilation=1):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride!r}')
        check_dilation(dilation, small_kernel, dw_conv_backend)
        self.use_shortcut = with_shortcut and stride == 1 and in_channels == out_channels
        if drop_path and not self.use_shortcut:
            raise ValueError('drop_path needs the identity shortcut (it drops the residual '
                             'branch); this block has none')
        self.with_cp = with_cp
        hidden = int(round(in_channels * expand_ratio))
        layers = []
        if expand_ratio != 1:
            layers.append(ConvModule(in_channels, hidden, 1, norm_cfg=norm_cfg, act_cfg=act_cfg))
        if dilation > 1:
            # (k - 1) * dilation / 2 keeps the map size, as 'same' padding does for dense ones
            layers.append(ConvModule(
                hidden, hidden, kernel_size, stride=stride, dilation=dilation,
                padding=(kernel_size - 1) * dilation // 2, groups=hidden, norm_cfg=norm_cfg,
                act_cfg=act_cfg))
        else:
            layers.append(LKDepthwiseConv(
                hidden, kernel_size, small_kernel, act_cfg=act_cfg, stride=stride,
                small_kernel_merged=small_kernel_merged,
                norm_layer=functools.partial(mmcv_norm_layer, copy.deepcopy(norm_cfg)),
                backend=dw_conv_backend))
        layers.append(ConvModule(hidden, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None))
        self.conv = nn.Sequential(*layers)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _forward(self, x):
        out = self.conv(x)
        return x + self.drop_path(out) if self.use_shortcut else out

    def forward(self, x):
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


@MODELS.register_module()
class LKMobileNetV2(BackboneMixin, BaseModule):
    """MobileNet V2 with per-layer depth-wise kernel sizes, switchable identity shortcuts and an
    optional re-parameterized small kernel (the RepLKNet paper's MobileNet V2 studies).

    With ``kernel_sizes=3``, ``small_kernel=None`` and ``with_shortcut=True`` it is MobileNet V2:
    the same modules and parameters as mmpretrain's ``MobileNetV2`` (``7`` in ``out_indices``)
    or mmseg's (without ``7``), and their checkpoints load.

    Args:
        arch (str | dict): A name in ``arch_settings`` ('1.0x', '0.75x'; a class attribute a
            subclass may override), or a dict with ``widen_factor`` and optionally ``layers``
            (rows ``[expand_ratio, channels, num_blocks, stride]``; default MobileNet V2's
            seven).
        kernel_sizes (int | Sequence[int]): Depth-wise kernel size (odd) of every layer, or one
            per layer. ``[3, 3, 3, 3, 3, 3, 13]`` puts 13x13 kernels on the last layer only,
            whose maps are 7x7 for a 224x224 input.
        small_kernel (int, optional): Size of a parallel depth-wise conv-BN added to every
            depth-wise conv whose kernel is larger, merged into it by
            :func:`replk_mm.switch_to_deploy`; None for none.
        with_shortcut (bool): The identity shortcuts of the blocks that keep their shape.
        out_indices (Sequence[int] | int, optional): Outputs to return: ``i`` < number of
            layers is layer ``i + 1``; the number of layers (7) is the final 1x1 conv to 1280
            channels (``conv2``), which is only built when it is asked for (mmpretrain returns
            it, mmseg's MobileNetV2 has none). Default (None): the final conv only.
        frozen_stages (int): -1 freezes nothing, 0 the stem ``conv1``, k >= 1 also
            ``layer1`` .. ``layer<k>`` (mmpretrain's MobileNetV2 convention, that of every
            replk_mm backbone, see :class:`~replk_mm.models.backbones.base.BackboneMixin`).
        drop_path_rate (float): Stochastic depth, rising linearly over the blocks, on the
            residual branches (needs ``with_shortcut``).
        small_kernel_merged (bool): Build the deploy form (one biased ``lkb_reparam`` conv per
            depth-wise layer), e.g. to load a re-parameterized checkpoint.
        norm_cfg (dict): Norm config, a BatchNorm (``BN`` / ``SyncBN``).
        act_cfg (dict): Activation config (MobileNet V2: ``ReLU6``).
        norm_eval (bool): Keep BN layers in eval mode while training.
        with_cp (bool): Gradient checkpointing per block.
        dw_conv_backend (str, optional): ``replk_mm.ops`` backend of the depth-wise convs.
        dilation (int): Dilation of every depth-wise conv (1: dense). The paper's Table 11
            (arXiv 2203.06717v1) replaces every 3x3 depth-wise conv by a 3x3 conv with
            dilation 4 or 6; see :class:`LKInvertedResidual`.
        init_cfg (dict | list[dict], optional): Initialisation; default Kaiming convs and unit
            BNs (mmpretrain's). ``dict(type='Pretrained', checkpoint=..., prefix=None)`` loads
            a checkpoint of this backbone, of a classifier or segmentor built on it
            (``prefix='backbone.'``), or of mmpretrain's / mmseg's MobileNetV2, naming every key
            that does not fit.

    Layer-wise lr decay (:meth:`get_layer_depth`): the stem ``conv1`` is depth 0, ``layer<k>``
    depth k, the final 1x1 conv (when built) the last depth.
    """
    arch_keys = ('widen_factor', )
    arch_defaults = dict(layers=MOBILENET_V2_LAYERS)
    arch_settings = {  # a subclass may name other archs
        '1.0x': dict(widen_factor=1.0),
        # The width whose params / FLOPs match the journal version's MobileNet V2 counts
        # (arXiv 2410.08049, Table 2c); RepLKNet v1's (Table 11) are 1.0x's (docs).
        '0.75x': dict(widen_factor=0.75),
    }

    def __init__(self, arch='1.0x', kernel_sizes=3, small_kernel=None, with_shortcut=True,
                 out_indices=None, frozen_stages=-1, drop_path_rate=0.,
                 small_kernel_merged=False, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU6'), norm_eval=False, with_cp=False,
                 dw_conv_backend=None, dilation=1, init_cfg=DEFAULT_INIT_CFG):
        super().__init__(init_cfg=copy.deepcopy(init_cfg))
        self.arch = self.parse_arch(arch)
        layers = self.arch['layers']
        self.num_layers = len(layers)
        self.kernel_sizes = self.check_kernel_sizes(kernel_sizes, self.num_layers)
        self.small_kernel = self.check_small_kernel(small_kernel, self.kernel_sizes)
        self.out_indices = self.check_out_indices(out_indices, self.num_layers)
        check_frozen_stages(frozen_stages, self.num_layers)
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate!r}')
        if drop_path_rate and not with_shortcut:
            raise ValueError('drop_path_rate > 0 needs with_shortcut=True: drop path drops the '
                             'residual branch of a block with an identity shortcut')
        self.with_shortcut = with_shortcut
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        widen = self.arch['widen_factor']

        channels = make_divisible(32 * widen)
        self.conv1 = ConvModule(3, channels, 3, stride=2, padding=1, norm_cfg=norm_cfg,
                                act_cfg=act_cfg)
        num_blocks = sum(row[2] for row in layers)
        rates = linear_drop_path_rates(drop_path_rate, num_blocks)
        self.layer_names = []
        block_id = 0
        for i, (expand_ratio, width, repeats, stride) in enumerate(layers):
            out_channels = make_divisible(width * widen)
            kernel = self.kernel_sizes[i]
            small = self.small_kernel if self.small_kernel and kernel > self.small_kernel \
                else None
            blocks = []
            for j in range(repeats):
                block_stride = stride if j == 0 else 1
                keeps_shape = block_stride == 1 and channels == out_channels
                blocks.append(LKInvertedResidual(
                    channels, out_channels, block_stride, expand_ratio, kernel_size=kernel,
                    small_kernel=small, with_shortcut=with_shortcut,
                    drop_path=rates[block_id] if with_shortcut and keeps_shape else 0.,
                    small_kernel_merged=small_kernel_merged, norm_cfg=norm_cfg,
                    act_cfg=act_cfg, with_cp=with_cp, dw_conv_backend=dw_conv_backend,
                    dilation=dilation))
                channels = out_channels
                block_id += 1
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            self.layer_names.append(name)
        if self.num_layers in self.out_indices:
            self.out_channels = int(LAST_CONV_CHANNELS * max(widen, 1.0))
            self.conv2 = ConvModule(channels, self.out_channels, 1, norm_cfg=norm_cfg,
                                    act_cfg=act_cfg)
        self._freeze_stages()

    @classmethod
    def parse_arch(cls, arch):
        """A complete arch dict (``widen_factor``, ``layers``) for an arch name in this class's
        ``arch_settings`` or an arch dict, validated."""
        arch = resolve_arch(arch, cls.arch_settings, cls.arch_keys, cls.arch_defaults,
                            owner='LKMobileNetV2')
        widen = arch['widen_factor']
        if isinstance(widen, bool) or not isinstance(widen, (int, float)) or widen <= 0:
            raise ValueError(f'widen_factor must be a positive number, got {widen!r}')
        layers = [list(row) for row in arch['layers']]
        for row in layers:
            if len(row) != 4 or row[2] < 1 or row[3] not in (1, 2) or row[0] <= 0:
                raise ValueError('each arch layer is [expand_ratio > 0, channels, num_blocks '
                                 f'>= 1, stride 1 or 2], got {row}')
        if not layers:
            raise ValueError('arch layers must not be empty')
        return dict(widen_factor=widen, layers=layers)

    @staticmethod
    def check_kernel_sizes(kernel_sizes, num_layers):
        """``kernel_sizes`` as a list with one odd size per layer (an int is every layer's)."""
        if isinstance(kernel_sizes, int) and not isinstance(kernel_sizes, bool):
            kernel_sizes = [kernel_sizes] * num_layers
        kernel_sizes = list(kernel_sizes)
        if len(kernel_sizes) != num_layers:
            raise ValueError(f'kernel_sizes needs one size per layer ({num_layers}), got '
                             f'{len(kernel_sizes)}: {kernel_sizes}')
        for i, k in enumerate(kernel_sizes):
            check_odd_kernel(k, f'kernel_sizes[{i}] (the depth-wise kernel of layer{i + 1})')
        return kernel_sizes

    @staticmethod
    def check_small_kernel(small_kernel, kernel_sizes):
        if small_kernel is None:
            return None
        check_odd_kernel(small_kernel, 'small_kernel')
        if small_kernel >= max(kernel_sizes):
            raise ValueError(
                f'small_kernel ({small_kernel}) is not smaller than any depth-wise kernel '
                f'(kernel_sizes {kernel_sizes}): it re-parameterizes the larger kernels, so it '
                'must be smaller than at least one of them (or None)')
        return small_kernel

    @staticmethod
    def check_out_indices(out_indices, num_layers):
        if out_indices is None:
            return (num_layers, )
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        out_indices = tuple(out_indices)
        bad = [i for i in out_indices if not isinstance(i, int) or not 0 <= i <= num_layers]
        if bad or not out_indices:
            raise ValueError(f'out_indices must be non-empty ints in [0, {num_layers}] '
                             f'({num_layers} is the final 1x1 conv), got {out_indices}')
        return out_indices

    def forward(self, x):
        x = self.conv1(x)
        outs = []
        last = max(self.out_indices)
        for i, name in enumerate(self.layer_names[:last + 1]):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        if self.num_layers in self.out_indices:
            outs.append(self.conv2(x))
        return tuple(outs)

    def blocks(self):
        """Every :class:`LKInvertedResidual`, in order."""
        return [b for name in self.layer_names for b in getattr(self, name)]

    def depthwise_convs(self):
        """``{state-dict path: LKDepthwiseConv}`` of every depth-wise conv, in order."""
        return {name: m for name, m in self.named_modules() if isinstance(m, LKDepthwiseConv)}

    def max_layer_depth(self):
        return self.num_layers + (1 if hasattr(self, 'conv2') else 0)

    def layer_depth(self, name):
        top = name.split('.')[0]
        if top == 'conv1':
            return 0
        if top in self.layer_names:
            return self.layer_names.index(top) + 1
        if top == 'conv2' and hasattr(self, 'conv2'):
            return self.num_layers + 1
        raise ValueError(f'{name!r} is not a parameter of this LKMobileNetV2: expected '
                         f'conv1.*, layer1.* .. layer{self.num_layers}.* or conv2.*')

    def frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        return [self.conv1] + [getattr(self, name)
                               for name in self.layer_names[:self.frozen_stages]]

    @staticmethod
    def checkpoint_filter(state_dict, model):
        """mmpretrain / mmseg MobileNetV2 and LKMobileNetV2 keys -> the model's (replk_mm's
        checkpoint loader calls it; see :func:`lk_mobilenet_v2_checkpoint_filter`)."""
        return lk_mobilenet_v2_checkpoint_filter(state_dict, model)

    def init_weights(self):
        self.init_pretrained(
            'Train the matching ImageNet config first (its work dir is where the config looks).')


# ----------------------------------------------------------------------------------------------
# Checkpoints


def from_mobilenet_v2_layout(state_dict, depthwise_paths, large_name='lkb_origin'):
    """mmpretrain / mmseg ``MobileNetV2`` keys -> :class:`LKMobileNetV2` keys (same tensors).

    Their depth-wise ``ConvModule`` at ``P`` holds ``P.conv.weight`` and ``P.bn.*``; here that
    conv-BN is the large branch, ``P.<large_name>.conv.weight`` / ``P.<large_name>.bn.*``.
    Every other key is the same in both layouts. Returns (new state dict, number of depth-wise
    convs renamed).
    """
    renames = {}
    for path in depthwise_paths:
        if f'{path}.conv.weight' not in state_dict:
            continue
        for part in ('conv.', 'bn.'):
            old = f'{path}.{part}'
            renames.update({k: f'{path}.{large_name}.{part}{k[len(old):]}'
                            for k in state_dict if k.startswith(old)})
    converted = {renames.get(k, k): v for k, v in state_dict.items()}
    return converted, sum(1 for k in renames if k.endswith('.conv.weight'))


def check_depthwise_kernels(model, state_dict):
    """Raise a ValueError naming the kernel sizes when the checkpoint's depth-wise kernels
    differ from the model's (the usual mismatch in these studies)."""
    differ = []
    for path, module in model.depthwise_convs().items():
        keys = (f'{path}.{module.large_name}.conv.weight', f'{path}.{module.merged_name}.weight')
        for key in keys:
            size = state_dict[key].shape[-1] if key in state_dict else module.kernel_size
            if size != module.kernel_size:
                differ.append(f'{path}: {size}x{size} in the checkpoint, '
                              f'{module.kernel_size}x{module.kernel_size} in the model')
    if differ:
        shown = '\n  '.join(differ[:8]) + (f'\n  ... and {len(differ) - 8} more'
                                           if len(differ) > 8 else '')
        raise ValueError(
            f'the checkpoint\'s depth-wise kernel sizes differ from the model\'s '
            f'(kernel_sizes={model.kernel_sizes}):\n  {shown}\nBuild the backbone with the '
            'kernel sizes the checkpoint was trained with.')


def lk_mobilenet_v2_checkpoint_filter(state_dict, model):
    """Backbone keys of an LKMobileNetV2 or an mmpretrain / mmseg MobileNetV2 checkpoint ->
    ``model``'s keys: MobileNetV2's depth-wise conv-BN becomes the large branch, the final 1x1
    conv is ignored when ``out_indices`` does not ask for it, and depth-wise kernel sizes that
    differ from the model's are a ValueError naming them."""
    state_dict, renamed = from_mobilenet_v2_layout(state_dict, model.depthwise_convs())
    if renamed:
        print_log(f'replk_mm: converted {renamed} depth-wise convs from the mmpretrain / mmseg '
                  'MobileNetV2 layout', logger='current')
    if not hasattr(model, 'conv2'):
        unused = sorted(k for k in state_dict if k.startswith('conv2.'))
        if unused:
            print_log(f'replk_mm: ignoring the final 1x1 conv ({len(unused)} conv2.* keys): '
                      'out_indices does not ask for it', logger='current')
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith('conv2.')}
    check_depthwise_kernels(model, state_dict)
    return state_dict
