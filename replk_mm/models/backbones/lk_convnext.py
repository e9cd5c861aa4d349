"""Large-kernel ConvNeXt: ConvNeXt with per-stage depth-wise kernel sizes and an optional
parallel small kernel, merged for deployment (RepLKNet's structural re-parameterization).

ConvNeXt: Liu et al., "A ConvNet for the 2020s", CVPR 2022. The block and the stage / down-sampling
layout are modified from facebookresearch/ConvNeXt (``models/convnext.py``, MIT); the per-stage
output norms and ``gap_before_final_norm`` follow its segmentation backbone and mmpretrain's
``ConvNeXt``. With ``kernel_sizes=7`` and no small kernel this is plain ConvNeXt: the official
and the mmpretrain ImageNet / downstream checkpoints load into it (converted on the fly) and it
gives the same features as mmpretrain's ``ConvNeXt`` with the same weights.

Every depth-wise conv is a :class:`replk_mm.layers.ReparamLargeKernelConv` (run through
``replk_mm.ops``) named like RepLKNet's: ``dwconv.lkb_origin`` (biased, no norm: ConvNeXt's conv),
``dwconv.small_conv`` (the small branch, conv + BN by default) and, once merged by
``replk_mm.switch_to_deploy`` or built with ``small_kernel_merged=True``, ``dwconv.lkb_reparam``.
"""
import copy
import functools
import re

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...layers import (
    DropPath,
    LayerNorm2d,
    ReparamLargeKernelConv,
    check_odd_kernel,
    check_out_indices,
    linear_drop_path_rates,
    resolve_arch,
)
from ...ops import linear_act
from ...registry import MODELS
from .base import (
    DownsampleStagesMixin,
    check_frozen_stages,
    mmcv_norm_layer,
)

__all__ = ['LKConvNeXt', 'LKConvNeXtBlock', 'lk_convnext_checkpoint_filter']

ARCH_SETTINGS = {  # ConvNeXt's depths and widths (facebookresearch/ConvNeXt, models/convnext.py)
    'tiny': dict(depths=[3, 3, 9, 3], channels=[96, 192, 384, 768]),
    'small': dict(depths=[3, 3, 27, 3], channels=[96, 192, 384, 768]),
    'base': dict(depths=[3, 3, 27, 3], channels=[128, 256, 512, 1024]),
}


def block_key_renames(dwconv_name):
    """Official / mmpretrain ConvNeXt block keys -> this block's keys (relative to the block).
    ``dwconv_name``: the block's live depth-wise conv (``lkb_origin``, or ``lkb_reparam`` once
    merged), so a plain ConvNeXt conv loads into either form."""
    renames = {f'{old}.{p}': f'dwconv.{dwconv_name}.{p}'
               for old in ('dwconv', 'depthwise_conv') for p in ('weight', 'bias')}
    renames.update({f'pointwise_conv{i}.{p}': f'pwconv{i}.{p}'
                    for i in (1, 2) for p in ('weight', 'bias')})
    return renames


class LKConvNeXtBlock(nn.Module):
    """ConvNeXt block with a re-parameterizable large depth-wise conv.

    dw conv (large [+ small]) -> LayerNorm -> Linear (4x) -> GELU -> Linear -> layer scale
    -> drop path -> + input. Loads official (``dwconv``, ``pwconv1/2``) and mmpretrain
    (``depthwise_conv``, ``pointwise_conv1/2``) ConvNeXt block keys as they are.

    Args:
        channels (int): Input = output channels.
        kernel_size (int): The depth-wise kernel size (odd); 7 is ConvNeXt's.
        small_kernel (int, optional): A parallel small depth-wise kernel (odd, <=
            ``kernel_size``) merged into the large one for deployment; None for none.
        small_norm_layer (Callable | None): Norm after the small conv (a BatchNorm, folded when
            merging); None makes the small branch a biased conv.
        drop_path (float): Stochastic depth rate of this block.
        layer_scale_init_value (float): Initial layer scale ``gamma``; 0 for no layer scale.
        small_kernel_merged (bool): Build the deploy form (one ``dwconv.lkb_reparam`` conv).
        with_cp (bool): Gradient checkpointing.
        backend (str, optional): ``replk_mm.ops`` backend of the depth-wise convs.
    """

    def __init__(self, channels, kernel_size=7, small_kernel=None, *, small_norm_layer=None,
                 drop_path=0., layer_scale_init_value=1e-6, small_kernel_merged=False,
                 with_cp=False, backend=None):
        super().__init__()
        self.with_cp = with_cp
        self.dwconv = ReparamLargeKernelConv(
            channels, kernel_size, small_kernel, small_kernel_merged=small_kernel_merged,
            norm_layer=None, small_norm_layer=small_norm_layer, backend=backend)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, 4 * channels)  # point-wise convs on NHWC
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels, ), float(layer_scale_init_value))) \
            if layer_scale_init_value > 0 else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def _forward(self, x):
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        # one oneDNN call per Linear (with the GELU) in CPU inference
        y = linear_act(self.pwconv2, linear_act(self.pwconv1, y, self.act))
        if self.gamma is not None:
            y = y * self.gamma
        return x + self.drop_path(y.permute(0, 3, 1, 2))

    @property
    def dwconv_name(self):
        conv = self.dwconv
        return conv.merged_name if conv.merged else conv.large_name

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Any loader (init_cfg, load_from, tools/test.py) may hand us ConvNeXt's key names.
        for old, new in block_key_renames(self.dwconv_name).items():
            if prefix + old in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def parse_kernel_sizes(kernel_sizes, small_kernel, num_stages):
    """``kernel_sizes`` (int or one per stage) -> list, checked against ``small_kernel``."""
    if isinstance(kernel_sizes, int):
        kernel_sizes = [kernel_sizes] * num_stages
    kernel_sizes = list(kernel_sizes)
    if len(kernel_sizes) != num_stages:
        raise ValueError(f'kernel_sizes needs one entry per stage ({num_stages}), got '
                         f'{kernel_sizes}')
    for i, k in enumerate(kernel_sizes):
        check_odd_kernel(k, f'kernel_sizes[{i}] (stage {i})')
    if small_kernel is not None:
        check_odd_kernel(small_kernel, 'small_kernel')
        too_small = [i for i, k in enumerate(kernel_sizes) if k < small_kernel]
        if too_small:
            raise ValueError(f'small_kernel ({small_kernel}) is larger than the kernel of stage '
                             f'{too_small[0]} ({kernel_sizes[too_small[0]]}) and could not be '
                             'merged into it: use a small kernel <= every stage kernel, or None')
    return kernel_sizes


@MODELS.register_module()
class LKConvNeXt(DownsampleStagesMixin, BaseModule):
    """ConvNeXt with per-stage depth-wise kernel sizes and an optional re-parameterized small
    kernel (``kernel_sizes=7``, ``small_kernel=None``: plain ConvNeXt).

    Args:
        arch (str | dict): A name in ``arch_settings`` ('tiny', 'small', 'base': ConvNeXt's
            depths and widths; a class attribute a subclass may override), or
            ``dict(depths=[...], channels=[...])``.
        kernel_sizes (int | Sequence[int]): Depth-wise kernel size per stage (odd), e.g.
            ``(31, 29, 27, 13)``; an int for every stage. 7 is ConvNeXt.
        small_kernel (int, optional): Parallel small depth-wise kernel of every block (odd,
            <= every stage kernel), merged into the large one by ``replk_mm.switch_to_deploy``.
        small_kernel_norm_cfg (dict | None): Norm after the small conv (a BN config, e.g.
            ``dict(type='SyncBN')``; folded when merging), or None for a biased small conv.
        in_channels (int): Input image channels.
        out_indices (Sequence[int] | int): Stages whose (normed) outputs are returned; each
            gets a LayerNorm ``norm{i}``.
        drop_path_rate (float): Stochastic depth rate, linear over blocks.
        layer_scale_init_value (float): Initial layer scale (1e-6 ConvNeXt; 0 for none).
        gap_before_final_norm (bool): Average-pool each output before its norm and return
            ``(N, C)`` (classification, as mmpretrain's ``ConvNeXt``); False returns maps.
        small_kernel_merged (bool): Build the deploy form (one ``dwconv.lkb_reparam`` conv per
            block), to load a re-parameterized checkpoint.
        frozen_stages (int): -1 freezes nothing, 0 the stem (``downsample_layers[0]``), k >= 1
            ``downsample_layers[:k]`` and ``stages[:k]`` (the convention of every replk_mm
            backbone, see :class:`~replk_mm.models.backbones.base.BackboneMixin`; for k >= 1
            the modules mmpretrain's ConvNeXt freezes).
        norm_eval (bool): Keep the small branches' BNs in eval mode while training.
        with_cp (bool): Gradient checkpointing per block.
        dw_conv_backend (str, optional): Force the ``replk_mm.ops`` depth-wise conv backend.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=..., prefix=None,
            embed_smaller_kernels=False)`` loads official ConvNeXt, mmpretrain ConvNeXt or
            LKConvNeXt checkpoints (see :func:`lk_convnext_checkpoint_filter`); other init
            configs go to mmengine.

    Layer-wise lr decay (:meth:`get_layer_depth`) follows mmpretrain's ``ConvNeXt``,
    generalised to any depth: the stem is depth 0, every stage one depth except the
    second-to-last, whose blocks go three to a depth, a down-sampling layer shares the depth of
    the stage after it, and the output norms come after the backbone ('tiny': 6 depths after
    the stem, 'small' / 'base': 12).
    """
    arch_settings = ARCH_SETTINGS  # a subclass may name other archs
    arch_keys = ('depths', 'channels')
    arch_defaults = {}

    def __init__(self, arch='tiny', kernel_sizes=7, small_kernel=None,
                 small_kernel_norm_cfg=dict(type='BN'), in_channels=3, out_indices=(0, 1, 2, 3),
                 drop_path_rate=0., layer_scale_init_value=1e-6, gap_before_final_norm=False,
                 small_kernel_merged=False, frozen_stages=-1, norm_eval=False, with_cp=False,
                 dw_conv_backend=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.arch = self.parse_arch(arch)
        self.depths, self.channels = self.arch['depths'], self.arch['channels']
        self.num_stages = len(self.depths)
        self.kernel_sizes = parse_kernel_sizes(kernel_sizes, small_kernel, self.num_stages)
        self.small_kernel = small_kernel
        self.out_indices = check_out_indices(out_indices, self.num_stages)
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate!r}')
        if not layer_scale_init_value >= 0:
            raise ValueError(f'layer_scale_init_value must be >= 0 (0: no layer scale), got '
                             f'{layer_scale_init_value!r}')
        self.gap_before_final_norm = gap_before_final_norm
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_stages)
        self.norm_eval = norm_eval
        small_norm = None if small_kernel_norm_cfg is None else functools.partial(
            mmcv_norm_layer, copy.deepcopy(small_kernel_norm_cfg))

        channels = self.channels
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, channels[0], kernel_size=4, stride=4),
            LayerNorm2d(channels[0], eps=1e-6))])
        for i in range(1, self.num_stages):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm2d(channels[i - 1], eps=1e-6),
                nn.Conv2d(channels[i - 1], channels[i], kernel_size=2, stride=2)))
        rates = linear_drop_path_rates(drop_path_rate, sum(self.depths))
        self.stages = nn.ModuleList()
        for i, depth in enumerate(self.depths):
            first = sum(self.depths[:i])
            self.stages.append(nn.Sequential(*[LKConvNeXtBlock(
                channels[i], self.kernel_sizes[i], small_kernel, small_norm_layer=small_norm,
                drop_path=rates[first + j], layer_scale_init_value=layer_scale_init_value,
                small_kernel_merged=small_kernel_merged, with_cp=with_cp,
                backend=dw_conv_backend) for j in range(depth)]))
        for i in self.out_indices:
            self.add_module(f'norm{i}', LayerNorm2d(channels[i], eps=1e-6))
        self._freeze_stages()

    @classmethod
    def parse_arch(cls, arch):
        """A complete arch dict (``depths``, ``channels``, as lists) for an arch name in this
        class's ``arch_settings`` or an arch dict, validated."""
        arch = resolve_arch(arch, cls.arch_settings, cls.arch_keys, cls.arch_defaults,
                            owner='LKConvNeXt')
        depths, channels = list(arch['depths']), list(arch['channels'])
        if not depths or len(depths) != len(channels):
            raise ValueError(f'depths and channels need one entry per stage, got {depths} and '
                             f'{channels}')
        if not all(isinstance(v, int) and v > 0 for v in depths + channels):
            raise ValueError(f'depths and channels must be positive ints, got {depths} and '
                             f'{channels}')
        return dict(arch, depths=depths, channels=channels)

    def _stage_depths(self):
        """(first depth, blocks per depth) of each stage."""
        first, out = 1, []
        for i, depth in enumerate(self.depths):
            per = 3 if i == self.num_stages - 2 else depth
            out.append((first, per))
            first += -(-depth // per)
        return out

    def max_layer_depth(self):
        first, per = self._stage_depths()[-1]
        return first + (self.depths[-1] - 1) // per

    def layer_depth(self, name):
        parts = name.split('.')
        if parts[0].startswith('norm') and parts[0][len('norm'):].isdigit():
            return None  # an output norm: after the backbone
        if parts[0] in ('downsample_layers', 'stages') and len(parts) > 2 \
                and parts[1].isdigit() and int(parts[1]) < self.num_stages:
            stage = int(parts[1])
            first, per = self._stage_depths()[stage]
            if parts[0] == 'downsample_layers':
                return 0 if stage == 0 else first
            if parts[2].isdigit() and int(parts[2]) < self.depths[stage]:
                return first + int(parts[2]) // per
        raise ValueError(f'{name!r} is not a parameter of this LKConvNeXt (depths '
                         f'{self.depths}): expected downsample_layers.<i>.*, '
                         'stages.<i>.<j>.* or norm<i>.*')

    def reset_parameters(self):
        """ConvNeXt's initialisation: truncated normal (std 0.02) conv and linear weights, zero
        biases, LayerNorms at identity, layer scale at its initial value."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, _BatchNorm)):
                m.reset_parameters()

    @staticmethod
    def checkpoint_filter(state_dict, model, embed_smaller_kernels=False):
        """Official / mmpretrain ConvNeXt and LKConvNeXt keys -> the model's (replk_mm's
        checkpoint loader calls it; see :func:`lk_convnext_checkpoint_filter`)."""
        return lk_convnext_checkpoint_filter(state_dict, model, embed_smaller_kernels)

    def init_weights(self):
        self.reset_parameters()
        self.init_pretrained('Run the ImageNet config the header of this config names.',
                             extra_keys=('embed_smaller_kernels', ))


# ---------------------------------------------------------------------------------------------
# Checkpoints: official ConvNeXt, mmpretrain ConvNeXt and LKConvNeXt's own layout
# ---------------------------------------------------------------------------------------------
OUT_NORM = re.compile(r'^norm(\d+)\.')
DWCONV_WEIGHT = re.compile(r'^stages\.(\d+)\.(\d+)\.dwconv\.(lkb_origin|lkb_reparam)\.weight$')


def checkpoint_layout(state_dict):
    """'official' / 'mmpretrain' ConvNeXt or 'LKConvNeXt', from the block keys."""
    keys = ' '.join(state_dict)
    if '.dwconv.lkb_' in keys:
        return 'LKConvNeXt'
    if '.depthwise_conv.' in keys:
        return 'mmpretrain ConvNeXt'
    if '.dwconv.weight' in keys:
        return 'official ConvNeXt'
    return 'unknown'


def _kernel_size_pairs(state_dict, own):
    """{stage: (checkpoint kernel, model kernel)} for the depth-wise kernels that differ."""
    pairs = {}
    for key, value in state_dict.items():
        m = DWCONV_WEIGHT.match(key)
        if m and key in own and value.shape[-1] != own[key].shape[-1]:
            pairs.setdefault(int(m.group(1)), (value.shape[-1], own[key].shape[-1]))
    return pairs


def embed_kernels(state_dict, own):
    """Zero-pad (centred) each depth-wise kernel of ``state_dict`` smaller than the model's;
    returns how many were padded. The padded conv computes exactly what the small one did."""
    padded = 0
    for key, value in list(state_dict.items()):
        if DWCONV_WEIGHT.match(key) and key in own:
            pad = (own[key].shape[-1] - value.shape[-1]) // 2
            if pad > 0:
                state_dict[key] = F.pad(value, [pad] * 4)
                padded += 1
    return padded


def _check_kernel_sizes(state_dict, own, model, embed):
    pairs = _kernel_size_pairs(state_dict, own)
    if not pairs:
        return
    ck = '-'.join(str(pairs.get(i, (k, k))[0]) for i, k in enumerate(model.kernel_sizes))
    mk = '-'.join(map(str, model.kernel_sizes))
    larger = sorted(i for i, (c, m) in pairs.items() if c > m)
    if larger:
        raise ValueError(
            f'the checkpoint has larger depth-wise kernels ({ck} per stage) than the '
            f'model ({mk}); cropping would change what it computes. Build the model with '
            f'kernel_sizes={ck.replace("-", ", ")} (or larger).')
    if not embed:
        raise ValueError(
            f'the checkpoint has {ck} depth-wise kernels per stage, the model {mk}: '
            'a smaller-kernel checkpoint does not load into larger kernels as it is. Pass '
            "init_cfg=dict(type='Pretrained', checkpoint=..., embed_smaller_kernels=True) to "
            'zero-pad each kernel (centred) into the larger one, or build the model with '
            f'kernel_sizes=({ck.replace("-", ", ")}).')


def lk_convnext_checkpoint_filter(state_dict, model, embed_smaller_kernels=False):
    """Backbone keys of an official ConvNeXt, mmpretrain ConvNeXt or LKConvNeXt checkpoint ->
    ``model``'s keys (same tensors).

    * official classifier: its final ``norm`` becomes ``norm{last}`` when the model returns the
      last stage; ``head`` (and ``norm`` otherwise) is ignored, as are output norms of stages
      the model does not return; every ignored key is logged;
    * block keys (``dwconv`` / ``depthwise_conv``, ``pointwise_conv1/2``) -> the model's;
    * ``embed_smaller_kernels``: the checkpoint's smaller depth-wise kernels (e.g. ConvNeXt's
      7x7) are zero-padded, centred, into the model's larger ones; without it a kernel-size
      difference is a ValueError that says so (a larger checkpoint kernel always is);
    * what the checkpoint cannot have keeps the model's initial values, with a warning: the
      output norms of non-final stages (an ImageNet checkpoint has only the last one) and the
      small-kernel branches when it has none. Anything else that is missing stays missing
      (the loader names it).
    """
    own = model.state_dict()
    layout = checkpoint_layout(state_dict)
    last = model.num_stages - 1
    converted, ignored = {}, []
    for key, value in state_dict.items():
        if key.startswith('norm.'):  # the official classifier's final norm
            if f'norm{last}.weight' in own:
                converted[f'norm{last}.{key[len("norm."):]}'] = value
            else:
                ignored.append(key)
        elif key.startswith('head.') or (OUT_NORM.match(key) and key not in own):
            ignored.append(key)  # classifier, or the norm of a stage the model does not return
        else:
            converted[key] = value
    if ignored:
        print_log(f'replk_mm: ignoring the classification / unused output-norm keys '
                  f'{sorted(ignored)}', logger='current')
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage):
            for old, new in block_key_renames(block.dwconv_name).items():
                p = f'stages.{i}.{j}.'
                if p + old in converted and p + new not in converted:
                    converted[p + new] = converted.pop(p + old)
    _check_kernel_sizes(converted, own, model, embed_smaller_kernels)
    notes = []
    if embed_smaller_kernels:
        padded = embed_kernels(converted, own)
        if padded:
            notes.append(f'zero-padded {padded} depth-wise kernels into the larger ones')
    has_small = any('.dwconv.small_conv.' in k for k in converted)
    kept = [k for k in own if k not in converted and (
        (OUT_NORM.match(k) and not any(c.startswith(k.split('.')[0] + '.') for c in converted))
        or ('.dwconv.small_conv.' in k and not has_small))]
    if kept and any(k in own for k in converted):  # else the loader says nothing matches
        converted.update((k, own[k]) for k in kept)
        notes.append(f'not in the checkpoint, left at their initialisation: '
                     f'{_groups_by_kind(kept)}')
    if notes:
        print_log(f'replk_mm: the {layout} checkpoint into LKConvNeXt: ' + '; '.join(notes),
                  logger='current', level=30 if kept else 20)
    return converted


def _groups_by_kind(keys):
    norms = sorted({k.split('.')[0] for k in keys if OUT_NORM.match(k)})
    small = sum(1 for k in keys if '.dwconv.small_conv.' in k)
    parts = []
    if norms:
        parts.append(f'the output norms {norms} (an ImageNet checkpoint has only the last '
                     "stage's)")
    if small:
        parts.append(f'the small-kernel branches ({small} tensors)')
    return ' and '.join(parts)
