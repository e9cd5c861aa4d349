"""RepLKNet backbone (Ding et al., "Scaling Up Your Kernels to 31x31", CVPR 2022).

The network (arch table, validation, build, forward) is the torch-only
:class:`replk_mm.layers.RepLKNetTrunk`; this class adds the OpenMMLab side: registry,
``init_cfg`` checkpoint loading, mmcv norm configs, frozen stages and ``norm_eval``, and the
layer depths of layer-wise lr decay (``get_layer_depth``).
Module names follow the official checkpoint layout exactly (``stem.i``, ``stages.i.blocks.j``,
``transitions.i``, ``large_kernel.lkb_origin`` / ``small_conv`` / ``lkb_reparam``...), so the
authors' released ImageNet and downstream weights load unchanged.
"""
import copy
import functools
import re

from mmengine.logging import print_log
from mmengine.model import BaseModule

from ...layers import RepLKNetTrunk, fold_deploy_state_dict
from ...registry import MODELS
from .base import BackboneMixin, check_frozen_stages, mmcv_norm_layer

__all__ = ['RepLKNet', 'convert_mmpretrain_to_official', 'is_mmpretrain_classifier',
           'replknet_checkpoint_filter']


@MODELS.register_module()
class RepLKNet(BackboneMixin, RepLKNetTrunk, BaseModule):
    """RepLKNet backbone.

    Args:
        arch (str | dict): A name in ``arch_settings`` ('31B', '31L', 'XL'; a class attribute
            a subclass may override), or a dict with keys ``large_kernel_sizes``, ``layers``,
            ``channels`` (one entry per stage), ``small_kernel`` (int or None), and optionally
            ``dw_ratio`` (default 1) and ``ffn_ratio`` (default 4).
        in_channels (int): Input image channels.
        out_indices (Sequence[int]): Stages whose outputs are returned, in 0..num_stages-1.
        drop_path_rate (float): Stochastic depth rate, linearly increased over blocks.
        small_kernel_merged (bool): Build the deploy form: one ``lkb_reparam`` conv per block and
            every BN folded into its conv (what ``switch_to_deploy`` leaves).
        norm_intermediate_features (bool): Apply a BN (``stages.i.norm``) to each output; the
            official XL downstream models do. Only returned stages get one: with
            ``out_indices=(3, )`` it is the official classifier's final ``norm``.
        frozen_stages (int): -1 freezes nothing; 0 the stem; k >= 1 the stem, stages 0..k-1
            and the transitions between them (the convention of every replk_mm backbone, see
            :class:`~replk_mm.models.backbones.base.BackboneMixin`).
        norm_eval (bool): Keep BN layers in eval mode (frozen statistics) while training.
        with_cp (bool): Gradient checkpointing per block (saves memory, costs time).
        norm_cfg (dict): Norm layer config, e.g. ``dict(type='SyncBN', requires_grad=True)``.
        dw_conv_backend (str, optional): Force the depth-wise conv implementation
            ('native', 'padded', 'fft', 'triton', 'auto'); None follows
            ``replk_mm.ops.set_default_backend`` / ``REPLK_DW_CONV_BACKEND`` / auto.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=..., prefix=None)``
            loads official, downstream (``prefix='backbone.'``) or mmpretrain checkpoints and
            reports missing/unexpected keys by name (see :func:`replknet_checkpoint_filter`).

    Layer-wise lr decay (:meth:`get_layer_depth`) uses the layer ids of the official
    ``optim_factory.py`` (``get_num_layer_for_replknet``), generalised to any depth: the stem
    is depth 0; each stage's RepLK blocks (each with its ConvFFN) go two to a depth, numbered
    on over the stages; a transition shares the depth of the last group before it; the output
    norms (the classifier's final BN) come after the backbone. RepLKNet-31B / 31L / XL: 12
    depths after the stem, so ``layer_decay_rate ** (13 - depth)`` as the official
    ``--layer_decay``.
    """
    blocks_per_depth = 2  # official: 2 RepLK blocks + their 2 ConvFFNs per layer id

    def __init__(self, arch='31B', in_channels=3, out_indices=(0, 1, 2, 3), drop_path_rate=0.,
                 small_kernel_merged=False, norm_intermediate_features=False, frozen_stages=-1,
                 norm_eval=False, with_cp=False, norm_cfg=dict(type='BN'), dw_conv_backend=None,
                 init_cfg=None):
        check_frozen_stages(frozen_stages, len(self.parse_arch(arch)['channels']))
        super().__init__(
            arch=arch, in_channels=in_channels, out_indices=out_indices,
            drop_path_rate=drop_path_rate, small_kernel_merged=small_kernel_merged,
            norm_intermediate_features=norm_intermediate_features, with_cp=with_cp,
            norm_layer=functools.partial(mmcv_norm_layer, copy.deepcopy(norm_cfg)),
            dw_conv_backend=dw_conv_backend, init_cfg=init_cfg)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._freeze_stages()

    def frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        return ([self.stem] + list(self.stages[:self.frozen_stages])
                + list(self.transitions[:max(self.frozen_stages - 1, 0)]))

    def _depth_groups(self, blocks_per_layer=None):
        per = blocks_per_layer or self.blocks_per_depth
        if isinstance(per, bool) or not isinstance(per, int) or per < 1:
            raise ValueError(f'blocks_per_layer must be an int >= 1 (RepLK blocks per layer '
                             f'id; official: 2), got {blocks_per_layer!r}')
        return [-(-n // per) for n in self.arch['layers']]

    def max_layer_depth(self, blocks_per_layer=None):
        return sum(self._depth_groups(blocks_per_layer))

    def layer_depth(self, name, blocks_per_layer=None):
        groups = self._depth_groups(blocks_per_layer)
        per = blocks_per_layer or self.blocks_per_depth
        parts = name.split('.')

        def index(i, limit):
            if len(parts) > i and parts[i].isdigit() and int(parts[i]) < limit:
                return int(parts[i])
            raise ValueError(f'{name!r} is not a parameter of this RepLKNet (layers '
                             f'{self.arch["layers"]})')

        if parts[0] == 'stem':
            return 0
        if parts[0] == 'transitions':
            return sum(groups[:index(1, self.num_stages - 1) + 1])
        if parts[0] == 'stages' and len(parts) > 2:
            stage = index(1, self.num_stages)
            if parts[2] == 'norm':
                return None  # an output norm (the classifier's final BN): after the backbone
            if parts[2] == 'blocks':
                entry = index(3, 2 * self.arch['layers'][stage])  # RepLK, ConvFFN, RepLK, ...
                return 1 + sum(groups[:stage]) + entry // 2 // per
        raise ValueError(f'{name!r} is not a RepLKNet parameter (stem.*, stages.<i>.blocks.<j>.*, '
                         'stages.<i>.norm.* or transitions.<i>.*)')

    @staticmethod
    def checkpoint_filter(state_dict, model):
        """Official / mmpretrain RepLKNet keys -> the model's (replk_mm's checkpoint loader
        calls it; see :func:`replknet_checkpoint_filter`)."""
        return replknet_checkpoint_filter(state_dict, model)

    def init_weights(self):
        # not strict: an ImageNet checkpoint lacks e.g. the BNs of norm_intermediate_features
        self.init_pretrained('Download the weights the config names (its header has the link).',
                             strict=False)


def is_mmpretrain_classifier(state_dict):
    """Whether ``state_dict`` is an mmpretrain RepLKNet classifier's (``backbone.`` keys and
    ``head.fc``)."""
    return 'head.fc.weight' in state_dict and any(
        k.startswith('backbone.stem.') for k in state_dict)


def convert_mmpretrain_to_official(state_dict):
    """mmpretrain RepLKNet classifier -> official ImageNet layout (keys only, same tensors):
    ``backbone.`` removed, the last stage's BN as ``norm``, ``head.fc`` as ``head``."""
    stages = {int(m.group(1)) for k in state_dict
              if (m := re.match(r'backbone\.stages\.(\d+)\.', k))}
    last = max(stages) if stages else None
    converted = {}
    for key, value in state_dict.items():
        if key.startswith('head.fc.'):
            converted['head.' + key[len('head.fc.'):]] = value
        elif key.startswith(f'backbone.stages.{last}.norm.'):
            converted['norm.' + key[len(f'backbone.stages.{last}.norm.'):]] = value
        elif key.startswith('backbone.'):
            converted[key[len('backbone.'):]] = value
        elif not key.startswith('data_preprocessor.'):
            converted[key] = value
    return converted


def replknet_checkpoint_filter(state_dict, model):
    """Backbone keys of an official ImageNet / downstream or mmpretrain checkpoint -> ``model``'s.

    The module names follow the official layout, so only the classifier differs: the official
    final BN ``norm`` (mmpretrain: the last stage's ``norm``) is the model's last-stage norm when
    it has one (``norm_intermediate_features`` with the last stage returned) and is ignored
    otherwise, as is the classification ``head``; ignored keys are logged. An official
    deploy-form checkpoint (``lkb_reparam`` convs, the other BNs unfolded) is folded into
    replk_mm's deploy layout (:func:`replk_mm.layers.fold_deploy_state_dict`); a training-form
    checkpoint passes unchanged, and the loader names a form mismatch.
    """
    own = model.state_dict()
    last_norm = f'stages.{len(model.stages) - 1}.norm.'
    if any(k.startswith(last_norm) and k not in own for k in state_dict):
        print_log("replk_mm: converting an mmpretrain RepLKNet checkpoint to the official "
                  "layout (its last stage's BN is the classifier's final norm)",
                  logger='current')
        state_dict = {('norm.' + k[len(last_norm):] if k.startswith(last_norm) else k): v
                      for k, v in state_dict.items()}
    converted, ignored = {}, []
    for key, value in state_dict.items():
        if key.startswith('norm.') and last_norm + key[len('norm.'):] in own:
            converted[last_norm + key[len('norm.'):]] = value
        elif key.startswith(('norm.', 'head.')):
            ignored.append(key)
        else:
            converted[key] = value
    if ignored:
        print_log(f'replk_mm: ignoring the classification keys {sorted(ignored)}',
                  logger='current')
    return fold_deploy_state_dict(converted)
