"""RepLKNet backbone (Ding et al., "Scaling Up Your Kernels to 31x31", CVPR 2022).

Module names follow the official checkpoint layout exactly (``stem.i``, ``stages.i.blocks.j``,
``transitions.i``, ``large_kernel.lkb_origin`` / ``small_conv`` / ``lkb_reparam``...), so the
authors' released ImageNet and downstream weights load unchanged.
"""
import copy
import os.path as osp

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...ops import build_dw_conv
from ...registry import MODELS
from ..checkpoint import load_backbone_checkpoint


def conv_bn(in_channels, out_channels, kernel_size, stride=1, groups=1, norm_cfg=None,
            relu=False):
    """conv (no bias) -> BN [-> ReLU], as an nn.Sequential named like the official code."""
    layers = nn.Sequential()
    layers.add_module('conv', nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                        kernel_size // 2, groups=groups, bias=False))
    layers.add_module('bn', build_norm_layer(norm_cfg, out_channels)[1])
    if relu:
        layers.add_module('nonlinear', nn.ReLU())
    return layers


def dw_conv_bn(channels, kernel_size, stride, norm_cfg, backend=None):
    layers = nn.Sequential()
    layers.add_module('conv', build_dw_conv(channels, kernel_size, stride=stride,
                                            backend=backend))
    layers.add_module('bn', build_norm_layer(norm_cfg, channels)[1])
    return layers


def fuse_conv_bn(conv, bn):
    """Kernel and bias of a bias-free conv followed by BN (eval-mode statistics)."""
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    return conv.weight * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


class ReparamLargeKernelConv(nn.Module):
    """Large depth-wise conv-BN plus a parallel small one; merges into ``lkb_reparam``."""

    def __init__(self, channels, kernel_size, small_kernel=None, stride=1,
                 small_kernel_merged=False, norm_cfg=None, backend=None):
        super().__init__()
        self.channels, self.kernel_size, self.stride = channels, kernel_size, stride
        self.small_kernel, self.backend = small_kernel, backend
        if small_kernel_merged:
            self.lkb_reparam = build_dw_conv(channels, kernel_size, stride=stride, bias=True,
                                             backend=backend)
        else:
            self.lkb_origin = dw_conv_bn(channels, kernel_size, stride, norm_cfg, backend)
            if small_kernel:
                self.small_conv = dw_conv_bn(channels, small_kernel, stride, norm_cfg, backend)

    @property
    def merged(self):
        return hasattr(self, 'lkb_reparam')

    def forward(self, x):
        if self.merged:
            return self.lkb_reparam(x)
        out = self.lkb_origin(x)
        if hasattr(self, 'small_conv'):
            out = out + self.small_conv(x)
        return out

    @torch.no_grad()
    def equivalent_kernel_bias(self):
        kernel, bias = fuse_conv_bn(self.lkb_origin.conv, self.lkb_origin.bn)
        if hasattr(self, 'small_conv'):
            small_kernel, small_bias = fuse_conv_bn(self.small_conv.conv, self.small_conv.bn)
            pad = (self.kernel_size - self.small_kernel) // 2
            kernel = kernel + F.pad(small_kernel, [pad] * 4)
            bias = bias + small_bias
        return kernel, bias

    def switch_to_deploy(self):
        """Fold BNs and the small kernel into one biased large conv. Idempotent."""
        if self.merged:
            return
        kernel, bias = self.equivalent_kernel_bias()
        reparam = build_dw_conv(self.channels, self.kernel_size, stride=self.stride, bias=True,
                                backend=self.backend)
        reparam.to(device=kernel.device, dtype=kernel.dtype)
        reparam.weight.data.copy_(kernel)
        reparam.bias.data.copy_(bias)
        self.lkb_reparam = reparam
        del self.lkb_origin
        if hasattr(self, 'small_conv'):
            del self.small_conv


class RepLKBlock(nn.Module):
    """BN -> 1x1 conv-BN-ReLU -> large DW conv -> ReLU -> 1x1 conv-BN, plus identity."""

    def __init__(self, channels, dw_channels, kernel_size, small_kernel, drop_path=0.,
                 small_kernel_merged=False, norm_cfg=None, dw_conv_backend=None):
        super().__init__()
        # Registration order = the official state-dict order.
        self.pw1 = conv_bn(channels, dw_channels, 1, norm_cfg=norm_cfg, relu=True)
        self.pw2 = conv_bn(dw_channels, channels, 1, norm_cfg=norm_cfg)
        self.large_kernel = ReparamLargeKernelConv(dw_channels, kernel_size, small_kernel,
                                                   small_kernel_merged=small_kernel_merged,
                                                   norm_cfg=norm_cfg, backend=dw_conv_backend)
        self.lk_nonlinear = nn.ReLU()
        self.prelkb_bn = build_norm_layer(norm_cfg, channels)[1]
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        out = self.pw1(self.prelkb_bn(x))
        out = self.pw2(self.lk_nonlinear(self.large_kernel(out)))
        return x + self.drop_path(out)


class ConvFFN(nn.Module):
    """BN -> 1x1 conv-BN -> GELU -> 1x1 conv-BN, plus identity."""

    def __init__(self, channels, hidden_channels, drop_path=0., norm_cfg=None):
        super().__init__()
        self.preffn_bn = build_norm_layer(norm_cfg, channels)[1]
        self.pw1 = conv_bn(channels, hidden_channels, 1, norm_cfg=norm_cfg)
        self.nonlinear = nn.GELU()
        self.pw2 = conv_bn(hidden_channels, channels, 1, norm_cfg=norm_cfg)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        out = self.pw2(self.nonlinear(self.pw1(self.preffn_bn(x))))
        return x + self.drop_path(out)


class RepLKNetStage(nn.Module):
    """Alternating RepLK blocks and ConvFFNs; ``norm`` is applied to the stage's output."""

    def __init__(self, channels, num_blocks, kernel_size, small_kernel, drop_paths,
                 dw_ratio=1., ffn_ratio=4., with_cp=False, small_kernel_merged=False,
                 norm_intermediate_features=False, norm_cfg=None, dw_conv_backend=None):
        super().__init__()
        self.with_cp = with_cp
        blocks = []
        for i in range(num_blocks):
            blocks.append(RepLKBlock(channels, int(channels * dw_ratio), kernel_size,
                                     small_kernel, drop_paths[i], small_kernel_merged,
                                     norm_cfg, dw_conv_backend))
            blocks.append(ConvFFN(channels, int(channels * ffn_ratio), drop_paths[i], norm_cfg))
        self.blocks = nn.ModuleList(blocks)
        self.norm = (build_norm_layer(norm_cfg, channels)[1]
                     if norm_intermediate_features else nn.Identity())

    def forward(self, x):
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def _linear_rates(max_rate, n):
    """Drop-path rates rising linearly from 0 to max_rate over n blocks (plain Python, so the
    backbone also builds under `torch.device('meta')`)."""
    return [max_rate * i / (n - 1) if n > 1 else 0.0 for i in range(n)]


@MODELS.register_module()
class RepLKNet(BaseModule):
    """RepLKNet backbone.

    Args:
        arch (str | dict): '31B', '31L', 'XL', or a dict with keys ``large_kernel_sizes``,
            ``layers``, ``channels`` (one entry per stage), ``small_kernel`` (int or None),
            and optionally ``dw_ratio`` (default 1) and ``ffn_ratio`` (default 4).
        in_channels (int): Input image channels.
        out_indices (Sequence[int]): Stages whose outputs are returned, in 0..num_stages-1.
        drop_path_rate (float): Stochastic depth rate, linearly increased over blocks.
        small_kernel_merged (bool): Build the deploy form (one ``lkb_reparam`` conv per block).
        norm_intermediate_features (bool): Apply a BN (``stages.i.norm``) to each output; the
            official XL downstream models do.
        frozen_stages (int): -1 freezes nothing; 0 the stem; k >= 1 the stem, stages 0..k-1
            and the transitions between them (the ResNet convention of mmdet/mmseg).
        norm_eval (bool): Keep BN layers in eval mode (frozen statistics) while training.
        with_cp (bool): Gradient checkpointing per block (saves memory, costs time).
        norm_cfg (dict): Norm layer config, e.g. ``dict(type='SyncBN', requires_grad=True)``.
        dw_conv_backend (str, optional): Force the depth-wise conv implementation
            ('native', 'padded', 'fft', 'triton', 'auto'); None follows
            ``replk_mm.ops.set_default_backend`` / ``REPLK_DW_CONV_BACKEND`` / auto.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=..., prefix=None)``
            loads official, downstream (``prefix='backbone.'``) or mmpretrain checkpoints and
            reports missing/unexpected keys by name.
    """
    arch_settings = {
        '31B': dict(large_kernel_sizes=[31, 29, 27, 13], layers=[2, 2, 18, 2],
                    channels=[128, 256, 512, 1024], small_kernel=5, dw_ratio=1),
        '31L': dict(large_kernel_sizes=[31, 29, 27, 13], layers=[2, 2, 18, 2],
                    channels=[192, 384, 768, 1536], small_kernel=5, dw_ratio=1),
        'XL': dict(large_kernel_sizes=[27, 27, 27, 13], layers=[2, 2, 18, 2],
                   channels=[256, 512, 1024, 2048], small_kernel=None, dw_ratio=1.5),
    }

    def __init__(self, arch='31B', in_channels=3, out_indices=(0, 1, 2, 3), drop_path_rate=0.,
                 small_kernel_merged=False, norm_intermediate_features=False, frozen_stages=-1,
                 norm_eval=False, with_cp=False, norm_cfg=dict(type='BN'), dw_conv_backend=None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.arch = self.parse_arch(arch)
        channels = self.arch['channels']
        self.num_stages = len(channels)
        self.out_indices = self.check_out_indices(out_indices, self.num_stages)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be an int in [-1, {self.num_stages}], '
                             f'got {frozen_stages!r}')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate!r}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        norm_cfg = copy.deepcopy(norm_cfg)

        width = channels[0]
        self.stem = nn.ModuleList([
            conv_bn(in_channels, width, 3, stride=2, norm_cfg=norm_cfg, relu=True),
            conv_bn(width, width, 3, groups=width, norm_cfg=norm_cfg, relu=True),
            conv_bn(width, width, 1, norm_cfg=norm_cfg, relu=True),
            conv_bn(width, width, 3, stride=2, groups=width, norm_cfg=norm_cfg, relu=True),
        ])
        layers = self.arch['layers']
        drop_paths = _linear_rates(drop_path_rate, sum(layers))
        self.stages = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for i in range(self.num_stages):
            first = sum(layers[:i])
            self.stages.append(RepLKNetStage(
                channels[i], layers[i], self.arch['large_kernel_sizes'][i],
                self.arch['small_kernel'], drop_paths[first:first + layers[i]],
                dw_ratio=self.arch['dw_ratio'], ffn_ratio=self.arch['ffn_ratio'],
                with_cp=with_cp, small_kernel_merged=small_kernel_merged,
                norm_intermediate_features=norm_intermediate_features, norm_cfg=norm_cfg,
                dw_conv_backend=dw_conv_backend))
            if i < self.num_stages - 1:
                self.transitions.append(nn.Sequential(
                    conv_bn(channels[i], channels[i + 1], 1, norm_cfg=norm_cfg, relu=True),
                    conv_bn(channels[i + 1], channels[i + 1], 3, stride=2,
                            groups=channels[i + 1], norm_cfg=norm_cfg, relu=True)))
        self._freeze_stages()

    @classmethod
    def parse_arch(cls, arch):
        if isinstance(arch, str):
            if arch not in cls.arch_settings:
                raise ValueError(f'unknown RepLKNet arch {arch!r}; valid archs are '
                                 f'{sorted(cls.arch_settings)} or a dict')
            arch = cls.arch_settings[arch]
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
        required = {'large_kernel_sizes', 'layers', 'channels', 'small_kernel'}
        missing = required - set(arch)
        unknown = set(arch) - required - {'dw_ratio', 'ffn_ratio'}
        if missing or unknown:
            raise ValueError(f'custom arch dict: missing keys {sorted(missing)}, unknown keys '
                             f'{sorted(unknown)}; expected {sorted(required)} '
                             "(+ optional 'dw_ratio', 'ffn_ratio')")
        arch = dict(dict(dw_ratio=1, ffn_ratio=4), **arch)
        kernels, layers, channels = arch['large_kernel_sizes'], arch['layers'], arch['channels']
        if not len(kernels) == len(layers) == len(channels) or not kernels:
            raise ValueError('large_kernel_sizes, layers and channels need one entry per stage, '
                             f'got {len(kernels)}, {len(layers)} and {len(channels)}')
        for k in kernels:
            if not isinstance(k, int) or k < 1 or k % 2 == 0:
                raise ValueError(f'large kernel sizes must be positive odd ints (centred '
                                 f'padding), got {k!r} in {kernels}')
        small = arch['small_kernel']
        if small is not None:
            if not isinstance(small, int) or small < 1 or small % 2 == 0:
                raise ValueError(f'small_kernel must be a positive odd int or None, got {small!r}')
            if small > min(kernels):
                raise ValueError(f'small_kernel ({small}) is larger than the smallest large '
                                 f'kernel ({min(kernels)}); it could not be merged into it')
        return arch

    @staticmethod
    def check_out_indices(out_indices, num_stages):
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        out_indices = tuple(out_indices)
        bad = [i for i in out_indices if not isinstance(i, int) or not 0 <= i < num_stages]
        if bad or not out_indices:
            raise ValueError(f'out_indices must be non-empty ints in [0, {num_stages - 1}], '
                             f'got {out_indices}')
        return out_indices

    def forward(self, x):
        for i, layer in enumerate(self.stem):
            if self.with_cp and i > 0 and x.requires_grad:
                x = cp.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(stage.norm(x))
            if i < self.num_stages - 1:
                x = self.transitions[i](x)
        return tuple(outs)

    def frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        return ([self.stem] + list(self.stages[:self.frozen_stages])
                + list(self.transitions[:max(self.frozen_stages - 1, 0)]))

    def _freeze_stages(self):
        for module in self.frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def switch_to_deploy(self):
        """Merge every block's small kernel and BNs into one large conv (idempotent)."""
        for m in self.modules():
            if isinstance(m, ReparamLargeKernelConv):
                m.switch_to_deploy()

    @property
    def deployed(self):
        return all(m.merged for m in self.modules() if isinstance(m, ReparamLargeKernelConv))

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            unknown = set(cfg) - {'type', 'checkpoint', 'prefix', 'map_location'}
            if unknown or 'checkpoint' not in cfg:
                raise ValueError(f"Pretrained init_cfg takes 'checkpoint' and optional "
                                 f"'prefix'/'map_location'; got {cfg}")
            checkpoint = cfg['checkpoint']
            if '://' not in str(checkpoint) and not osp.isfile(osp.expanduser(str(checkpoint))):
                raise FileNotFoundError(
                    f'RepLKNet pre-trained checkpoint {checkpoint} (init_cfg.checkpoint) does '
                    'not exist. Download the weights the config names (its header has the '
                    'link), or pass --cfg-options model.backbone.init_cfg.checkpoint=PATH_OR_URL'
                    ', or model.backbone.init_cfg=None to train from scratch.')
            load_backbone_checkpoint(self, checkpoint, prefix=cfg.get('prefix'),
                                     map_location=cfg.get('map_location', 'cpu'))
            self._is_init = True
        else:
            super().init_weights()
