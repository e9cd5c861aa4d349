"""Layer-wise learning-rate decay for models with a RepLKNet backbone.

The layer ids follow ``get_num_layer_for_replknet`` of the official code
(https://github.com/DingXiaoH/RepLKNet-pytorch, ``optim_factory.py``, MIT; itself adapted from
BEiT), generalised from RepLKNet's [2, 2, 18, 2] blocks to any depth:

* the stem is layer 0;
* each stage's RepLK blocks (each with the ConvFFN after it) are grouped ``blocks_per_layer``
  at a time (official: 2), the groups numbered 1, 2, ... over the stages;
* a transition shares the id of the last group of the stage before it;
* everything else (the classifier's final BN ``stages.<i>.norm``, necks, heads, decode heads)
  is layer ``num_layers + 1``.

RepLKNet-31B / 31L / XL: 12 layers (stem 0; stage 0: 1; stage 1: 2; stage 2: 3..11; stage 3:
12; head 13). A parameter of layer ``i`` trains with ``lr * rate ** (num_layers + 1 - i)``,
as the official ``--layer_decay`` does.
"""
import math
from collections import OrderedDict
from typing import NamedTuple

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from ...layers import RepLKNetTrunk

DEFAULT_BLOCKS_PER_LAYER = 2  # official: 2 RepLK blocks + their 2 ConvFFNs per layer id


class LayerId(NamedTuple):
    """The layer id of a parameter and the number of backbone layers (stem excluded): ids run
    from 0 (stem) to ``num_layers`` (last block group); ``num_layers + 1`` is above the
    backbone."""
    layer: int
    num_layers: int


def _check_layers(layers, blocks_per_layer):
    if isinstance(blocks_per_layer, bool) or not isinstance(blocks_per_layer, int) \
            or blocks_per_layer < 1:
        raise ValueError(f'blocks_per_layer must be a positive int (RepLK blocks that share '
                         f'one layer id; official: 2), got {blocks_per_layer!r}')
    if not layers or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                         for n in layers):
        raise ValueError(f'layers must be positive ints, one per stage, got {layers!r}')


def _groups(layers, blocks_per_layer):
    return [math.ceil(n / blocks_per_layer) for n in layers]


def replknet_layer_id(name, layers, blocks_per_layer=DEFAULT_BLOCKS_PER_LAYER):
    """The :class:`LayerId` of a RepLKNet parameter.

    Args:
        name (str): Parameter name relative to the backbone, e.g. ``'stem.0.conv.weight'``,
            ``'stages.2.blocks.35.pw1.conv.weight'``, ``'transitions.1.0.bn.bias'``.
        layers (Sequence[int]): RepLK blocks per stage (the arch's ``layers``).
        blocks_per_layer (int): RepLK blocks (each with its ConvFFN) per layer id.

    Raises:
        ValueError: a name that is not a RepLKNet parameter, or a stage / block / transition
            index that the arch does not have.
    """
    _check_layers(layers, blocks_per_layer)
    groups = _groups(layers, blocks_per_layer)
    num_layers = sum(groups)
    parts = name.split('.')

    def index(i, what, limit):
        if len(parts) <= i or not parts[i].isdigit() or int(parts[i]) >= limit:
            raise ValueError(f'{name!r}: expected a {what} index below {limit} at position {i} '
                             f'(RepLKNet with layers {list(layers)})')
        return int(parts[i])

    if parts[0] == 'stem':
        return LayerId(0, num_layers)
    if parts[0] == 'stages':
        stage = index(1, 'stage', len(layers))
        if len(parts) > 2 and parts[2] == 'norm':
            return LayerId(num_layers + 1, num_layers)  # the final BN of a classifier
        if len(parts) > 2 and parts[2] == 'blocks':
            entry = index(3, 'block', 2 * layers[stage])  # RepLK block, ConvFFN, RepLK, ...
            first = 1 + sum(groups[:stage])
            return LayerId(first + (entry // 2) // blocks_per_layer, num_layers)
    if parts[0] == 'transitions':
        stage = index(1, 'transition', len(layers) - 1)
        return LayerId(sum(groups[:stage + 1]), num_layers)
    raise ValueError(f'{name!r} is not a RepLKNet parameter (expected stem.*, '
                     'stages.<i>.blocks.<j>.*, stages.<i>.norm.* or transitions.<i>.*)')


def layer_decay_scale(layer_id, rate):
    """The lr multiplier of a :class:`LayerId`: ``rate ** (num_layers + 1 - layer)``."""
    return rate ** (layer_id.num_layers + 1 - layer_id.layer)


def find_replknet(model):
    """``(prefix, backbone)`` of the one RepLKNet (``replk_mm.layers.RepLKNetTrunk``) in
    ``model``; ``prefix`` is e.g. ``'backbone.'`` (``''`` for a bare backbone)."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, RepLKNetTrunk)]
    if len(found) != 1:
        what = 'no' if not found else f'{len(found)} ({", ".join(n for n, _ in found)})'
        raise TypeError(
            f'RepLKNetLayerDecayOptimWrapperConstructor needs a model with exactly one RepLKNet '
            f'backbone; {type(model).__name__} has {what}. For other backbones use the '
            "downstream library's own constructor (e.g. mmpretrain's "
            'LearningRateDecayOptimWrapperConstructor).')
    name, backbone = found[0]
    return (f'{name}.' if name else ''), backbone


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class RepLKNetLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor plus RepLKNet's layer-wise lr decay.

    Every ``paramwise_cfg`` option of ``DefaultOptimWrapperConstructor`` applies as usual
    (``norm_decay_mult``, ``bias_decay_mult``, ``flat_decay_mult``, ``custom_keys``...); the lr
    each parameter ends up with is then multiplied by its layer's scale (see the module
    docstring). Registered in mmengine's root registry: ``constructor=
    'RepLKNetLayerDecayOptimWrapperConstructor'`` works in mmpretrain, mmseg and mmdet configs
    (with ``custom_imports=dict(imports=['replk_mm.engine.optimizers'])``).

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config (``optimizer`` needs ``lr``).
        paramwise_cfg (dict): Must hold ``layer_decay_rate`` (float > 0; the official
            fine-tunes use 0.7); optional ``blocks_per_layer`` (int, default 2: RepLK blocks
            sharing one layer id), plus mmengine's options.

    Each param group gets ``layer_id`` and ``lr_scale`` keys (kept by torch optimizers), and the
    layer ids with their scales are logged.

    Example::

        optim_wrapper = dict(
            optimizer=dict(type='AdamW', lr=4e-4, weight_decay=1e-8),
            constructor='RepLKNetLayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.7, norm_decay_mult=0., bias_decay_mult=0.,
                               flat_decay_mult=0.))
    """
    OWN_KEYS = ('layer_decay_rate', 'blocks_per_layer')

    def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
        if not isinstance(paramwise_cfg, dict) or 'layer_decay_rate' not in paramwise_cfg:
            raise ValueError(
                'RepLKNetLayerDecayOptimWrapperConstructor needs paramwise_cfg='
                "dict(layer_decay_rate=...) (the official RepLKNet fine-tunes use 0.7); got "
                f'paramwise_cfg={paramwise_cfg!r}')
        rate = paramwise_cfg['layer_decay_rate']
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ValueError(f'paramwise_cfg.layer_decay_rate must be a number > 0 (lower '
                             f'layers train with lr x rate ** depth), got {rate!r}')
        blocks_per_layer = paramwise_cfg.get('blocks_per_layer', DEFAULT_BLOCKS_PER_LAYER)
        _check_layers([1], blocks_per_layer)
        # The keys stay in paramwise_cfg: mmengine builds param groups only when it is not
        # empty, and ignores keys it does not know.
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        if self.base_lr is None:
            raise ValueError('layer-wise lr decay scales the optimizer lr: set optim_wrapper.'
                             'optimizer.lr')
        self.layer_decay_rate = float(rate)
        self.blocks_per_layer = blocks_per_layer

    def add_params(self, params, module, prefix='', is_dcn_module=None):
        first = len(params)
        super().add_params(params, module, prefix=prefix, is_dcn_module=is_dcn_module)
        if prefix:
            return  # a recursive call: the top-level one scales every group at once
        self._scale_groups(params[first:], module)

    def _scale_groups(self, groups, model):
        backbone_prefix, backbone = find_replknet(model)
        layers = backbone.arch['layers']
        num_layers = sum(_groups(layers, self.blocks_per_layer))
        names = {id(p): n for n, p in model.named_parameters()}
        summary = OrderedDict()
        for group in groups:
            (param, ) = group['params']
            name = names[id(param)]
            if name.startswith(backbone_prefix):
                layer_id = replknet_layer_id(name[len(backbone_prefix):], layers,
                                             self.blocks_per_layer)
            else:
                layer_id = LayerId(num_layers + 1, num_layers)
            scale = layer_decay_scale(layer_id, self.layer_decay_rate)
            group['lr'] = group.get('lr', self.base_lr) * scale
            group['lr_scale'] = scale
            group['layer_id'] = layer_id.layer
            summary.setdefault(layer_id.layer, [scale, 0])[1] += 1
        lines = [f'  layer {i:2d}: lr x {scale:.4g} ({count} tensors)'
                 for i, (scale, count) in sorted(summary.items())]
        print_log(f'RepLKNet layer-wise lr decay (rate {self.layer_decay_rate}, '
                  f'{num_layers} backbone layers + stem; head and other modules are layer '
                  f'{num_layers + 1}):\n' + '\n'.join(lines), logger='current')
