"""UniRepLKNet backbone (Ding et al., "UniRepLKNet: A Universal Perception Large-Kernel ConvNet
for Audio, Video, Point Cloud, Time-Series and Image Recognition", CVPR 2024).

Modified from AILab-CVC/UniRepLKNet ``unireplknet.py`` (Apache-2.0): the sizes A to XL with their
depths, widths and default kernel sizes, the stem and down-sampling layers, the per-stage output
LayerNorms of its mmseg / mmdet backbone and the classifier's final norm. The blocks are
:class:`replk_mm.layers.UniRepLKNetBlock` (large depth-wise convs through ``replk_mm.ops``).
Module names follow the official checkpoints (``downsample_layers.i``, ``stages.i.j``,
``norm{i}``), so the released ImageNet, downstream and deploy-form weights load through
:func:`checkpoint_filter`.
"""
import copy
import functools
import re

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...layers import (
    BLOCK_KERNEL_SIZES,
    LayerNorm2d,
    UniRepLKNetBlock,
    check_out_indices,
    linear_drop_path_rates,
    resolve_arch,
)
from ...registry import MODELS
from ..checkpoint import group_keys
from .base import (
    DownsampleStagesMixin,
    check_frozen_stages,
    mmcv_norm_layer,
)

__all__ = ['UniRepLKNet', 'checkpoint_filter', 'convert_official_classifier']

# Default kernel sizes per block (official unireplknet.py, default_UniRepLKNet_*_kernel_sizes):
# 3x3 in stage 0, 13x13 in stages 1 and 3; in stage 2 13x13 everywhere (A-N), every second
# block (T) or every third block (S-XL), 3x3 otherwise.
_K_AFP = ((3, 3), (13, 13), (13, ) * 6, (13, 13))
_K_N = ((3, 3), (13, 13), (13, ) * 8, (13, 13))
_K_T = ((3, 3, 3), (13, 13, 13), (13, 3) * 9, (13, 13, 13))
_K_SBLXL = ((3, 3, 3), (13, 13, 13), (13, 3, 3) * 9, (13, 13, 13))

# Depths and widths: official unireplknet.py (UniRepLKNet_*_depths and the dims of the
# unireplknet_a ... unireplknet_xl constructors); the names are the official sizes.
ARCH_SETTINGS = {
    'A': dict(depths=(2, 2, 6, 2), channels=(40, 80, 160, 320), kernel_sizes=_K_AFP),
    'F': dict(depths=(2, 2, 6, 2), channels=(48, 96, 192, 384), kernel_sizes=_K_AFP),
    'P': dict(depths=(2, 2, 6, 2), channels=(64, 128, 256, 512), kernel_sizes=_K_AFP),
    'N': dict(depths=(2, 2, 8, 2), channels=(80, 160, 320, 640), kernel_sizes=_K_N),
    'T': dict(depths=(3, 3, 18, 3), channels=(80, 160, 320, 640), kernel_sizes=_K_T),
    'S': dict(depths=(3, 3, 27, 3), channels=(96, 192, 384, 768), kernel_sizes=_K_SBLXL),
    'B': dict(depths=(3, 3, 27, 3), channels=(128, 256, 512, 1024), kernel_sizes=_K_SBLXL),
    'L': dict(depths=(3, 3, 27, 3), channels=(192, 384, 768, 1536), kernel_sizes=_K_SBLXL),
    'XL': dict(depths=(3, 3, 27, 3), channels=(256, 512, 1024, 2048), kernel_sizes=_K_SBLXL),
}


def parse_kernel_sizes(kernel_sizes, depths):
    """Per-block kernel sizes: one sequence per stage with one size per block."""
    shape_hint = ('kernel_sizes needs one sequence per stage with one kernel size per block '
                  f'(depths {depths}), e.g. ((3, 3), (13, 13), (13, ) * 6, (13, 13)) for '
                  'UniRepLKNet-A')
    if isinstance(kernel_sizes, (int, str)) or len(kernel_sizes) != len(depths):
        raise ValueError(f'{shape_hint}; got {kernel_sizes!r}')
    parsed = []
    for i, (stage, depth) in enumerate(zip(kernel_sizes, depths)):
        if isinstance(stage, (int, str)) or len(stage) != depth:
            raise ValueError(f'{shape_hint}; stage {i} has {depth} blocks but got '
                             f'kernel_sizes[{i}]={stage!r}')
        bad = [k for k in stage if k not in BLOCK_KERNEL_SIZES or isinstance(k, bool)]
        if bad:
            raise ValueError(f'kernel_sizes[{i}] has {bad}: a block kernel size is one of '
                             f'{list(BLOCK_KERNEL_SIZES)}')
        parsed.append(tuple(stage))
    return tuple(parsed)


# ---------------------------------------------------------------------------------------------
# Checkpoints: official ImageNet classifier, official mmseg 0.x / mmdet 2.x backbone (after the
# loader stripped ``backbone.``), training or deploy form; replk_mm's own layout is the latter.
# ---------------------------------------------------------------------------------------------
BACKBONE_TOPS = ('downsample_layers.', 'stages.')
OUT_NORM = re.compile(r'^norm(\d+)\.')
# keys only one form has (the official reparameterize() deletes / creates them)
TRAINING_ONLY = re.compile(
    r'^stages\.\d+\.\d+\.(gamma$|pwconv2\.2\.|act\.1\.beta$|dwconv\.origin_bn\.|norm\.)')
# also inside a whole model (``backbone.stages...``): what tells the inferencers a deploy form
DEPLOY_KEY = re.compile(r'(^|\.)stages\.\d+\.\d+\.pwconv2\.0\.bias$')


def checkpoint_form(state_dict):
    """'deploy' or 'training' (or None) from the block keys of an official-layout state dict."""
    if any(DEPLOY_KEY.match(k) for k in state_dict):
        return 'deploy'
    if any(TRAINING_ONLY.match(k) for k in state_dict):
        return 'training'
    return None


def checkpoint_filter(state_dict, model, logger='current'):
    """An official UniRepLKNet state dict -> ``model``'s key layout (same tensors).

    Takes the backbone's tensors with keys relative to the backbone: the official ImageNet
    classifier (``norm`` / ``head``), the official mmseg / mmdet backbone (``norm0`` ..
    ``norm3``; the loader strips ``backbone.``) or replk_mm's layout, each in the training or
    the deploy form.

    * the classifier's ``head`` is dropped; its final ``norm`` (a LayerNorm of the pooled
      feature) becomes ``norm{last}`` of a model with ``gap_before_final_norm``, else it is
      dropped, and the output norms of a feature-map model start at the identity, as in the
      official downstream training (its loader leaves them at their initialisation);
    * the output norms of stages the model does not return are dropped;
    * everything dropped or filled is logged.

    Raises:
        ValueError: the state dict is no UniRepLKNet backbone, or its form (training /
            deploy) is not the model's.
    """
    keys = list(state_dict)
    if not any(k.startswith(BACKBONE_TOPS) for k in keys):
        raise ValueError(f'not a UniRepLKNet checkpoint: no downsample_layers.* / stages.* key '
                         f'(keys: {group_keys(keys)}); if it holds a whole model, load it with '
                         "prefix 'backbone.'")
    form, model_form = checkpoint_form(state_dict), 'deploy' if model.deployed else 'training'
    if form is not None and form != model_form:
        fix = ('build the backbone with small_kernel_merged=True' if form == 'deploy' else
               'build the backbone with small_kernel_merged=False, load, then '
               'replk_mm.switch_to_deploy')
        raise ValueError(f'the checkpoint is a {form}-form UniRepLKNet (re-parameterized: '
                         f'{form == "deploy"}) but the model is in the {model_form} form: {fix}')
    last = len(model.stages) - 1
    is_classifier = any(k.startswith(('norm.', 'head.')) for k in keys)
    out, dropped = {}, []
    for key, value in state_dict.items():
        m = OUT_NORM.match(key)
        if key.startswith('head.'):
            dropped.append(key)
        elif key.startswith('norm.'):
            if model.gap_before_final_norm and last in model.out_indices:
                out[f'norm{last}.{key[len("norm."):]}'] = value
            else:
                dropped.append(key)
        elif m and int(m.group(1)) not in model.out_indices:
            dropped.append(key)
        else:
            out[key] = value
    filled = []
    if is_classifier:
        for i in model.out_indices:
            norm = getattr(model, f'norm{i}')
            for name, tensor in norm.state_dict().items():
                if f'norm{i}.{name}' not in out:
                    fill = torch.ones_like if name == 'weight' else torch.zeros_like
                    out[f'norm{i}.{name}'] = fill(tensor, device='cpu')
                    filled.append(f'norm{i}.{name}')
    if dropped:
        print_log(f'replk_mm: UniRepLKNet does not use the checkpoint keys {group_keys(dropped)} '
                  '(classifier head / final norm, or norms of stages it does not return)',
                  logger=logger)
    if filled:
        print_log(f'replk_mm: the ImageNet checkpoint has no output norm for {filled}; they '
                  'start at the identity, as in the official downstream training',
                  logger=logger)
    return out


def convert_official_classifier(state_dict, num_stages=4):
    """The official UniRepLKNet ImageNet classifier -> the key layout of the mmpretrain
    ``ImageClassifier`` of ``configs/unireplknet`` (backbone with ``gap_before_final_norm``,
    ``LinearClsHead``): ``norm`` -> ``backbone.norm{last}``, ``head`` -> ``head.fc``, the rest
    under ``backbone.``."""
    converted = {}
    for key, value in state_dict.items():
        if key.startswith('head.'):
            converted['head.fc.' + key[len('head.'):]] = value
        elif key.startswith('norm.'):
            converted[f'backbone.norm{num_stages - 1}.' + key[len('norm.'):]] = value
        else:
            converted['backbone.' + key] = value
    return converted


@MODELS.register_module()
class UniRepLKNet(DownsampleStagesMixin, BaseModule):
    """UniRepLKNet backbone.

    Modified from AILab-CVC/UniRepLKNet ``unireplknet.py`` (Apache-2.0).

    Args:
        arch (str | dict): A name in ``arch_settings`` ('A', 'F', 'P', 'N', 'T', 'S', 'B', 'L',
            'XL': the official depths, widths and kernel sizes; a class attribute a subclass
            may override), or ``dict(depths=[...], channels=[...], kernel_sizes=...)`` with 4
            stages (``kernel_sizes`` optional there, then the argument is needed).
        kernel_sizes (Sequence[Sequence[int]], optional): Kernel size of every block, one
            sequence per stage (0, 3, 5, or 7 to 17 odd: a Dilated Reparam Block). None: the
            arch's.
        in_channels (int): Input image channels.
        out_indices (Sequence[int] | int): Stages whose outputs are returned; each gets a
            LayerNorm ``norm{i}`` (official downstream backbones: all four).
        drop_path_rate (float): Stochastic depth rate, linear over blocks.
        layer_scale_init_value (float): Initial layer scale (official 1e-6; 0 for none).
        gap_before_final_norm (bool): Average-pool each returned stage before its norm and
            return ``(N, C)`` vectors: the official classifier's ``x.mean((2, 3))`` -> ``norm``
            with ``out_indices=(3, )`` (then ``norm3`` is the official ``norm``).
        small_kernel_merged (bool): Build the deploy form, the official ``deploy=True`` (to load
            a re-parameterized checkpoint); a training-form model goes there with
            ``replk_mm.switch_to_deploy``.
        frozen_stages (int): -1 freezes nothing, 0 the stem (``downsample_layers[0]``), k >= 1
            ``downsample_layers[:k]`` and ``stages[:k]`` (the convention of every replk_mm
            backbone, see :class:`~replk_mm.models.backbones.base.BackboneMixin`).
        norm_eval (bool): Keep the BNs in eval mode (frozen statistics) while training.
        with_cp (bool): Gradient checkpointing per block.
        norm_cfg (dict): The BNs of the blocks (mmcv config): ``dict(type='BN')``, or
            ``dict(type='SyncBN')`` for the official downstream models' ``use_sync_bn=True``.
        dw_conv_backend (str, optional): Force the ``replk_mm.ops`` depth-wise conv backend.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=..., prefix=None)``
            loads an official ImageNet, official downstream (``prefix='backbone.'`` or
            detected) or replk_mm checkpoint through :func:`checkpoint_filter`, strictly;
            other init configs go to mmengine.

    Layer-wise lr decay (:meth:`get_layer_depth`) uses the layer ids of the official
    ``UniRepLKNetLearningRateDecayOptimizerConstructor`` (``layer_wise``; segmentation/ and
    detection/ ``mmcv_custom``): the stem 0, stage 0 1, stage 1 and its down-sampling 2,
    stage 2's down-sampling 3 and its block j ``3 + j // 3``, stage 3 and its down-sampling
    the depth after (``3 + depths[2] // 3`` for the official sizes: 9 for T, 12 for S-XL), the
    output norms after the backbone. An official recipe's ``num_layers`` above that (COCO
    UniRepLKNet-T: 12) is ``max_layer_id``.
    """
    arch_settings = ARCH_SETTINGS  # a subclass may name other archs
    arch_keys = ('depths', 'channels')
    arch_defaults = {'kernel_sizes': None}
    checkpoint_filter = staticmethod(checkpoint_filter)

    def __init__(self, arch='T', kernel_sizes=None, in_channels=3, out_indices=(0, 1, 2, 3),
                 drop_path_rate=0., layer_scale_init_value=1e-6, gap_before_final_norm=False,
                 small_kernel_merged=False, frozen_stages=-1, norm_eval=False, with_cp=False,
                 norm_cfg=dict(type='BN'), dw_conv_backend=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.arch = self.parse_arch(arch)
        self.depths, self.channels = self.arch['depths'], self.arch['channels']
        if kernel_sizes is None:
            if self.arch['kernel_sizes'] is None:
                raise ValueError('an arch dict without kernel_sizes needs the kernel_sizes '
                                 'argument (one sequence per stage, one size per block)')
            kernel_sizes = self.arch['kernel_sizes']
        self.kernel_sizes = parse_kernel_sizes(kernel_sizes, self.depths)
        self.num_stages = len(self.depths)
        self.out_indices = check_out_indices(out_indices, self.num_stages)
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate!r}')
        if layer_scale_init_value is None or not layer_scale_init_value >= 0:
            raise ValueError(f'layer_scale_init_value must be >= 0 (0: no layer scale), got '
                             f'{layer_scale_init_value!r}')
        self.gap_before_final_norm = gap_before_final_norm
        self.frozen_stages = check_frozen_stages(frozen_stages, self.num_stages)
        self.norm_eval = norm_eval
        norm_layer = functools.partial(mmcv_norm_layer, copy.deepcopy(norm_cfg))

        c = self.channels
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, c[0] // 2, kernel_size=3, stride=2, padding=1),
            LayerNorm2d(c[0] // 2, eps=1e-6),
            nn.GELU(),
            nn.Conv2d(c[0] // 2, c[0], kernel_size=3, stride=2, padding=1),
            LayerNorm2d(c[0], eps=1e-6))])
        for i in range(1, self.num_stages):
            self.downsample_layers.append(nn.Sequential(
                nn.Conv2d(c[i - 1], c[i], kernel_size=3, stride=2, padding=1),
                LayerNorm2d(c[i], eps=1e-6)))
        rates = linear_drop_path_rates(drop_path_rate, sum(self.depths))
        self.stages = nn.ModuleList()
        for i, depth in enumerate(self.depths):
            first = sum(self.depths[:i])
            self.stages.append(nn.Sequential(*[UniRepLKNetBlock(
                c[i], self.kernel_sizes[i][j], drop_path=rates[first + j],
                layer_scale_init_value=layer_scale_init_value, norm_layer=norm_layer,
                deployed=small_kernel_merged, with_cp=with_cp, backend=dw_conv_backend)
                for j in range(depth)]))
        for i in self.out_indices:
            self.add_module(f'norm{i}', LayerNorm2d(c[i], eps=1e-6))
        self._freeze_stages()

    @classmethod
    def parse_arch(cls, arch):
        """A complete arch dict (``depths``, ``channels`` as lists, ``kernel_sizes`` or None)
        for an arch name in this class's ``arch_settings`` or an arch dict, validated."""
        arch = resolve_arch(arch, cls.arch_settings, cls.arch_keys, cls.arch_defaults,
                            owner='UniRepLKNet')
        depths, channels = list(arch['depths']), list(arch['channels'])
        if len(depths) != 4 or len(channels) != 4:
            raise ValueError(f'UniRepLKNet has 4 stages: depths and channels need 4 entries, '
                             f'got {depths} and {channels}')
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                   for v in depths + channels):
            raise ValueError(f'depths and channels must be positive ints, got {depths} and '
                             f'{channels}')
        if channels[0] % 2:
            raise ValueError(f'the stem halves channels[0] ({channels[0]}): it must be even')
        return dict(arch, depths=depths, channels=channels)

    def max_layer_depth(self):
        # the depth after stage 2's last group of three blocks: the official
        # 3 + depths[2] // 3 for every official size (stage 2 has 6, 8, 18 or 27 blocks;
        # for 8 that formula would put stage 2's last two blocks with stage 3)
        return 4 + (self.depths[2] - 1) // 3

    def layer_depth(self, name):
        parts = name.split('.')
        if parts[0].startswith('norm') and parts[0][len('norm'):].isdigit():
            return None  # an output norm: after the backbone
        if parts[0] in ('downsample_layers', 'stages') and len(parts) > 2 \
                and parts[1].isdigit() and int(parts[1]) < self.num_stages:
            stage, last = int(parts[1]), self.max_layer_depth()
            if parts[0] == 'downsample_layers':
                return (0, 2, 3, last)[stage]
            if parts[2].isdigit() and int(parts[2]) < self.depths[stage]:
                return (1, 2, 3 + int(parts[2]) // 3, last)[stage]
        raise ValueError(f'{name!r} is not a parameter of this UniRepLKNet (depths '
                         f'{self.depths}): expected downsample_layers.<i>.*, '
                         'stages.<i>.<j>.* or norm<i>.*')

    def reset_parameters(self):
        """The official pre-training initialisation (``UniRepLKNet._init_weights``): truncated
        normal (std 0.02) conv and linear weights, zero biases; norms at identity."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, _BatchNorm)):
                m.reset_parameters()

    def init_weights(self):
        self.reset_parameters()
        self.init_pretrained(
            'Download the weights the config names (docs/unireplknet.md has the links).')
