"""The RepLKNet trunk (stem, stages, transitions), torch only.

Modified from the official RepLKNet code (https://github.com/DingXiaoH/RepLKNet-pytorch, MIT).
:class:`RepLKNetTrunk` holds the arch table, its validation, the build and the forward; the
OpenMMLab backbone ``replk_mm.RepLKNet`` is this class plus registry, ``init_cfg``, frozen
stages and ``norm_eval``, so both have the same official state-dict layout.
"""
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

from .arch import resolve_arch
from .drop_path import linear_drop_path_rates
from .reparam import is_deployed, switch_to_deploy
from .replknet_blocks import RepLKNetStage, build_stem, build_transition

ARCH_SETTINGS = {
    '31B': dict(large_kernel_sizes=[31, 29, 27, 13], layers=[2, 2, 18, 2],
                channels=[128, 256, 512, 1024], small_kernel=5, dw_ratio=1),
    '31L': dict(large_kernel_sizes=[31, 29, 27, 13], layers=[2, 2, 18, 2],
                channels=[192, 384, 768, 1536], small_kernel=5, dw_ratio=1),
    'XL': dict(large_kernel_sizes=[27, 27, 27, 13], layers=[2, 2, 18, 2],
               channels=[256, 512, 1024, 2048], small_kernel=None, dw_ratio=1.5),
}
ARCH_KEYS = ('large_kernel_sizes', 'layers', 'channels', 'small_kernel')
ARCH_DEFAULTS = dict(dw_ratio=1, ffn_ratio=4)


def parse_arch(arch, arch_settings=ARCH_SETTINGS):
    """Validate an arch name or dict; return a complete arch dict (a new one).

    Args:
        arch (str | dict): A key of ``arch_settings``, or a dict with ``large_kernel_sizes``,
            ``layers``, ``channels`` (one entry per stage), ``small_kernel`` (odd int or None)
            and optionally ``dw_ratio`` (default 1) and ``ffn_ratio`` (default 4).
        arch_settings (dict): The named archs.
    """
    arch = resolve_arch(arch, arch_settings, ARCH_KEYS, ARCH_DEFAULTS, owner='RepLKNet')
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


def check_out_indices(out_indices, num_stages):
    """``out_indices`` as a non-empty tuple of stage indices (an int is one stage)."""
    if isinstance(out_indices, int):
        out_indices = (out_indices, )
    out_indices = tuple(out_indices)
    bad = [i for i in out_indices if not isinstance(i, int) or not 0 <= i < num_stages]
    if bad or not out_indices:
        raise ValueError(f'out_indices must be non-empty ints in [0, {num_stages - 1}], '
                         f'got {out_indices}')
    return out_indices


class RepLKNetTrunk(nn.Module):
    """RepLKNet without classifier: stem, stages and transitions, returning stage features.

    Args:
        arch (str | dict): '31B', '31L', 'XL', or a dict (see :func:`parse_arch`).
        in_channels (int): Input image channels.
        out_indices (Sequence[int] | int): Stages whose outputs are returned.
        drop_path_rate (float): Stochastic depth rate in [0, 1), linear over blocks.
        small_kernel_merged (bool): Build the deploy form, as ``switch_to_deploy`` leaves it:
            one ``lkb_reparam`` conv per block and every BN folded (the official deploy
            checkpoints load through :func:`~replk_mm.layers.fold_deploy_state_dict`).
        norm_intermediate_features (bool): A BN (``stages.i.norm``) on each returned feature
            (only returned stages get one).
        with_cp (bool): Gradient checkpointing per stem layer and block.
        norm_layer (Callable[[int], nn.Module]): Builds every norm from its channel count;
            default ``nn.BatchNorm2d`` (the plugin passes mmcv's ``build_norm_layer``).
        dw_conv_backend (str, optional): ``replk_mm.ops`` backend of the depth-wise convs.
        **kwargs: Passed on to the next class of a subclass's bases (mmengine's ``BaseModule``
            takes ``init_cfg``); nothing else is accepted.
    """
    arch_settings = ARCH_SETTINGS  # a subclass may name other archs
    arch_keys = ARCH_KEYS
    arch_defaults = ARCH_DEFAULTS

    def __init__(self, arch='31B', in_channels=3, out_indices=(0, 1, 2, 3), drop_path_rate=0.,
                 small_kernel_merged=False, norm_intermediate_features=False, with_cp=False,
                 norm_layer=nn.BatchNorm2d, dw_conv_backend=None, **kwargs):
        super().__init__(**kwargs)
        self.arch = self.parse_arch(arch)
        channels, layers = self.arch['channels'], self.arch['layers']
        self.num_stages = len(channels)
        self.out_indices = check_out_indices(out_indices, self.num_stages)
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate!r}')
        self.with_cp = with_cp

        # Registration order (stem, stages, transitions) = the official state-dict order.
        self.stem = build_stem(in_channels, channels[0], norm_layer=norm_layer,
                               merged=small_kernel_merged)
        rates = linear_drop_path_rates(drop_path_rate, sum(layers))
        self.stages = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for i in range(self.num_stages):
            first = sum(layers[:i])
            self.stages.append(RepLKNetStage(
                channels[i], layers[i], self.arch['large_kernel_sizes'][i],
                self.arch['small_kernel'], rates[first:first + layers[i]],
                dw_ratio=self.arch['dw_ratio'], ffn_ratio=self.arch['ffn_ratio'],
                with_cp=with_cp, small_kernel_merged=small_kernel_merged,
                # a BN only where the stage is returned: any other would get no gradient
                # (DDP stops on it); with out_indices=(3, ) it is the official classifier's norm
                norm_intermediate_features=norm_intermediate_features and i in self.out_indices,
                norm_layer=norm_layer,
                dw_conv_backend=dw_conv_backend))
            if i < self.num_stages - 1:
                self.transitions.append(
                    build_transition(channels[i], channels[i + 1], norm_layer=norm_layer,
                                     merged=small_kernel_merged))

    @classmethod
    def parse_arch(cls, arch):
        """:func:`parse_arch` against this class's (overridable) ``arch_settings``."""
        return parse_arch(arch, cls.arch_settings)

    @staticmethod
    def check_out_indices(out_indices, num_stages):
        return check_out_indices(out_indices, num_stages)

    def forward(self, x):
        channels_last = self.stem[0].merged and x.is_cpu and x.dim() == 4 and not (
            torch.jit.is_tracing() or torch.compiler.is_compiling())
        if channels_last:
            # The deploy form runs channels_last on CPU: oneDNN's 1x1 and depth-wise convs then
            # skip the layout reorders around every call (RepLKNet-31B, batch 8 at 224, 2
            # threads: 1.2x, docs/deploy.md). Every later weight is 1x1 or depth-wise, the same
            # in both layouts, so the layout carries through the whole trunk. Exporters see
            # the graph without it (a layout is not an operation).
            x = x.contiguous(memory_format=torch.channels_last)
        for i, layer in enumerate(self.stem):
            # The first stem conv sees the input, which usually needs no gradient: checkpointing
            # it would save nothing.
            if self.with_cp and i > 0 and x.requires_grad:
                x = cp.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                out = stage.norm(x)
                # Callers get the layout they gave: kernels that read raw memory (mmcv's
                # RoIAlign in a detector's RoI head) take a channels_last map for NCHW.
                outs.append(out.contiguous() if channels_last else out)
            if i < self.num_stages - 1:
                x = self.transitions[i](x)
        return tuple(outs)

    def switch_to_deploy(self):
        """Merge every block's small kernel into its large conv and fold every BN but the
        stages' output ``norm`` (idempotent). Returns the number of re-parameterizable modules
        merged by this call."""
        return switch_to_deploy(self)

    @property
    def deployed(self):
        return is_deployed(self)
