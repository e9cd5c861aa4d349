"""What every replk_mm backbone does the same way on the OpenMMLab side.

:class:`BackboneMixin` (first base of each backbone): unknown constructor arguments named with
the closest valid one, ``frozen_stages`` and ``norm_eval`` in ``train()``, the ``deployed``
property and ``get_layer_depth`` (layer-wise lr decay). Also: mmcv's norm layers as a
``norm_layer`` callable (:func:`mmcv_norm_layer`) and the checked ``Pretrained`` ``init_cfg``,
loaded by :meth:`BackboneMixin.init_pretrained` through the one checkpoint loader.

The arch tables themselves are parsed by :func:`replk_mm.layers.resolve_arch` (torch only, so
the RepLKNet trunk uses it too).
"""
import difflib
import inspect
import os.path as osp

from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...layers import is_deployed
from ..checkpoint import load_backbone_checkpoint

__all__ = ['BackboneMixin', 'DownsampleStagesMixin', 'check_arguments', 'check_frozen_stages',
           'mmcv_norm_layer', 'pretrained_init_cfg']

PRETRAINED_KEYS = frozenset({'type', 'checkpoint', 'prefix', 'map_location'})
FROZEN_STAGES_RULE = '-1: nothing, 0: the stem, k >= 1: the stem and stages 0..k-1'


def mmcv_norm_layer(norm_cfg, channels):
    """The norm module mmcv's ``build_norm_layer`` builds for ``norm_cfg`` and ``channels``
    (bind ``norm_cfg`` with ``functools.partial`` to get a ``norm_layer(channels)``)."""
    return build_norm_layer(norm_cfg, channels)[1]


def check_arguments(cls, kwargs):
    """Raise a TypeError naming the closest valid argument for each keyword argument that
    ``cls.__init__`` does not take; arch keys (``cls.arch_keys`` / ``cls.arch_defaults``) are
    suggested as ``arch=dict(key=...)``."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items()
                if n != 'self' and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in accepted]
    if not unknown:
        return
    arch_keys = list(getattr(cls, 'arch_keys', ())) + list(getattr(cls, 'arch_defaults', ()))
    hints = {name: name for name in accepted}
    hints.update({key: f'arch=dict({key}=...)' for key in arch_keys if key not in hints})
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(hints), n=1, cutoff=0.5)
        problems.append(f'{name!r}' + (f' (did you mean {hints[close[0]]}?)' if close else ''))
    raise TypeError(
        f'{cls.__name__} got unknown argument{"s" if len(unknown) > 1 else ""} '
        f'{", ".join(problems)}. Its arguments: {", ".join(accepted)}'
        + (f'; the arch dict keys: {", ".join(arch_keys)}' if arch_keys else '') + '.')


def check_frozen_stages(frozen_stages, num_stages):
    """``frozen_stages`` checked against the number of stages (see :class:`BackboneMixin`)."""
    if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int) \
            or not -1 <= frozen_stages <= num_stages:
        raise ValueError(f'frozen_stages must be an int in [-1, {num_stages}] '
                         f'({FROZEN_STAGES_RULE}), got {frozen_stages!r}')
    return frozen_stages


class BackboneMixin:
    """The OpenMMLab side every replk_mm backbone shares; list it first among the bases.

    * Unknown keyword arguments raise a TypeError naming the closest valid argument, arch keys
      included (``kernel_sizes`` on RepLKNet: ``arch=dict(large_kernel_sizes=...)``).
    * ``frozen_stages``, one convention for every backbone (mmpretrain's ResNet and
      MobileNetV2, mmseg's and mmdet's ResNet): -1 freezes nothing, 0 the stem, k >= 1 the
      stem and stages 0..k-1 with the down-sampling in front of each (RepLKNet's transitions,
      ConvNeXt's down-sampling layers). It is the convention of most OpenMMLab backbones and
      the only one where the stem alone can be frozen; mmpretrain's ConvNeXt counts the stem as
      part of stage 0 (its 0 freezes nothing), its k >= 1 freezes the same modules as here.
      Frozen modules stay in eval mode without gradients through ``train()``; with
      ``norm_eval`` every BN stays in eval mode. Subclasses set ``frozen_stages`` and
      ``norm_eval`` and implement :meth:`frozen_modules`.
    * ``deployed``: True once every re-parameterizable module is merged.
    * ``get_layer_depth(param_name, prefix='', max_layer_id=None)``: mmpretrain's layer-wise
      lr decay interface (``LearningRateDecayOptimWrapperConstructor``), with an optional
      official ``num_layers``; subclasses implement :meth:`layer_depth` and
      :meth:`max_layer_depth`.
    """

    def __new__(cls, *args, **kwargs):
        # Before __init__: Python's own error would name neither the close argument nor the
        # arch keys.
        check_arguments(cls, kwargs)
        return super().__new__(cls)

    @property
    def deployed(self):
        """True once every re-parameterizable module is merged (``switch_to_deploy``)."""
        return is_deployed(self)

    def frozen_modules(self):
        """The modules frozen by ``frozen_stages``, in any order."""
        raise NotImplementedError

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

    def layer_depth(self, name):
        """The layer depth of the backbone parameter ``name`` (relative to the backbone): 0
        for the stem up to :meth:`max_layer_depth`, or None for a parameter that belongs after
        the backbone's layers (an output norm). Raises ValueError for another name."""
        raise NotImplementedError

    def max_layer_depth(self):
        """The depth of the backbone's last layer."""
        raise NotImplementedError

    def get_layer_depth(self, param_name, prefix='', max_layer_id=None, **options):
        """The layer depth of a parameter and the number of depths, mmpretrain's interface for
        layer-wise lr decay (``mmpretrain.engine.LearningRateDecayOptimWrapperConstructor``
        gives depth ``d`` of ``n`` the lr scale ``rate ** (n - d - 1)``).

        Args:
            param_name (str): The parameter's name in the model, e.g.
                ``'backbone.stem.0.conv.weight'``.
            prefix (str): The backbone's prefix in the model (mmpretrain's classifiers pass
                ``'backbone.'``).
            max_layer_id (int, optional): The depth of the backbone's last layer when an
                official recipe sets it above :meth:`max_layer_depth` (its ``num_layers``;
                COCO UniRepLKNet-T: 12 where the depth gives 9): the last layer moves there,
                everything after the backbone one further, the other depths stay. None:
                :meth:`max_layer_depth`.
            **options: Options of the backbone's own layer grouping, passed to
                :meth:`layer_depth` and :meth:`max_layer_depth` (RepLKNet: ``blocks_per_layer``).

        Returns:
            tuple[int, int]: ``(depth, num_depths)``: the stem is depth 0, the backbone's
            layers 1 .. ``num_depths - 2``, and everything else (output norms, necks, heads)
            ``num_depths - 1``, which trains with the full lr.
        """
        natural = self.max_layer_depth(**options)
        last = natural if max_layer_id is None else max_layer_id
        if isinstance(last, bool) or not isinstance(last, int) or last < natural:
            raise ValueError(
                f'max_layer_id (num_layers) of {type(self).__name__} must be an int >= '
                f'{natural}, the depth of its last layer (the layers before it keep their '
                f'depths), got {max_layer_id!r}')
        if not param_name.startswith(prefix):
            return last + 1, last + 2
        depth = self.layer_depth(param_name[len(prefix):], **options)
        if depth is None:
            depth = last + 1
        elif depth == natural:
            depth = last
        return depth, last + 2


    def init_pretrained(self, missing_hint, *, strict=True, extra_keys=()):
        """What every backbone's ``init_weights`` does with its ``init_cfg``: a checked
        ``Pretrained`` dict (:func:`pretrained_init_cfg`) loads through the one checkpoint loader
        (``extra_keys`` go on to the backbone's ``checkpoint_filter``); anything else is
        ``BaseModule.init_weights``.

        Args:
            missing_hint (str): What to do when the local checkpoint does not exist.
            strict (bool): Every key of the model must be in the checkpoint.
            extra_keys (Iterable[str]): ``init_cfg`` keys this backbone's filter takes.
        """
        cfg = pretrained_init_cfg(self.init_cfg, type(self).__name__, missing_hint, extra_keys)
        if cfg is None:
            BaseModule.init_weights(self)
            return
        load_backbone_checkpoint(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                                 map_location=cfg.get('map_location', 'cpu'), strict=strict,
                                 **{key: cfg[key] for key in extra_keys if key in cfg})
        self._is_init = True


class DownsampleStagesMixin(BackboneMixin):
    """The ConvNeXt macro layout that LKConvNeXt and UniRepLKNet share: ``downsample_layers[i]``
    (index 0 is the stem) in front of ``stages[i]``, and an output norm ``norm{i}`` for each
    returned stage, applied after global average pooling with ``gap_before_final_norm`` (the
    classifier's final norm). A :class:`BackboneMixin` (the first base of such a backbone);
    needs ``out_indices``, ``gap_before_final_norm`` and ``frozen_stages`` set by it."""

    def forward(self, x):
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(self.downsample_layers[i](x))
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    outs.append(norm(x.mean((2, 3), keepdim=True)).flatten(1))
                else:
                    outs.append(norm(x))
        return tuple(outs)

    def frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        # the stem is downsample_layers[0]; stage i >= 1 has its down-sampling in front
        return (list(self.downsample_layers[:max(self.frozen_stages, 1)])
                + list(self.stages[:self.frozen_stages]))


def pretrained_init_cfg(init_cfg, backbone, missing_hint, extra_keys=()):
    """``init_cfg`` when it is a ``Pretrained`` dict whose keys and local file check out, else
    None (the caller falls back to ``BaseModule.init_weights``).

    Args:
        init_cfg: The backbone's ``init_cfg``.
        backbone (str): The backbone's name, for the messages.
        missing_hint (str): What to do when the local checkpoint does not exist.
        extra_keys (Iterable[str]): Keys this backbone accepts besides ``checkpoint``,
            ``prefix`` and ``map_location``.
    """
    if not (isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'):
        return None
    allowed = PRETRAINED_KEYS | set(extra_keys)
    unknown = set(init_cfg) - allowed
    if unknown or 'checkpoint' not in init_cfg:
        optional = sorted(allowed - {'type', 'checkpoint'})
        raise ValueError(f"{backbone}'s Pretrained init_cfg takes 'checkpoint' and optional "
                         f'{optional}; got {init_cfg}')
    checkpoint = init_cfg['checkpoint']
    if '://' not in str(checkpoint) and not osp.isfile(osp.expanduser(str(checkpoint))):
        raise FileNotFoundError(
            f'{backbone} pre-trained checkpoint {checkpoint} (init_cfg.checkpoint) does not '
            f'exist. {missing_hint} Or pass --cfg-options '
            'model.backbone.init_cfg.checkpoint=PATH_OR_URL, or model.backbone.init_cfg=None '
            'to train from scratch.')
    return init_cfg
