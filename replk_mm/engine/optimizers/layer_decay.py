"""Layer-wise learning-rate decay for models on a replk_mm backbone (mmseg, mmdet, mmpretrain).

The depth of each parameter is the backbone's: every replk_mm backbone has mmpretrain's
``get_layer_depth(param_name, prefix='')`` (RepLKNet: the layer ids of the official
``optim_factory.py``; LKConvNeXt: mmpretrain's ConvNeXt ids; see each class). In an mmpretrain
classifier, mmpretrain's own ``LearningRateDecayOptimWrapperConstructor`` therefore works as it
is (``ImageClassifier.get_layer_depth`` asks the backbone). This constructor is kept for what
that one cannot do:

* mmseg's segmentors and mmdet's detectors have no ``get_layer_depth`` (mmpretrain's
  constructor raises NotImplementedError for them): here the depth is asked of
  ``model.backbone`` with the prefix ``'backbone.'``;
* every ``paramwise_cfg`` option of mmengine's default constructor still applies (``lr_mult``
  in ``custom_keys``, ``dwconv_decay_mult``...; mmpretrain's takes weight-decay options only);
* it needs mmengine only, not mmpretrain.

For the same model and ``layer_decay_rate`` both give the same lr: a parameter at depth ``d``
of ``n`` trains with ``lr * rate ** (n - d - 1)`` (RepLKNet-31B: ``rate ** (13 - layer_id)``,
the official ``--layer_decay``).
"""
import functools
import inspect
from collections import OrderedDict

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


def layer_depth_function(model, num_layers=None, **options):
    """``get_layer_depth(param_name) -> (depth, num_depths)`` for ``model``'s parameter names:
    the backbone's (an mmseg segmentor, an mmdet detector, an mmpretrain classifier, whose own
    ``get_layer_depth`` asks its backbone the same) or the model's own (a bare backbone).
    ``num_layers``: an official recipe's depth of the backbone's last layer, passed as the
    backbone's ``max_layer_id``. ``options``: the backbone's own layer-grouping options (RepLKNet:
    ``blocks_per_layer``)."""
    kwargs = dict(options) if num_layers is None else dict(options, max_layer_id=num_layers)
    backbone = getattr(model, 'backbone', None)
    if callable(getattr(backbone, 'get_layer_depth', None)):
        target, kwargs = backbone, dict(kwargs, prefix='backbone.')
    elif callable(getattr(model, 'get_layer_depth', None)):
        target = model
    else:
        what = (f'its backbone {type(backbone).__name__} has' if backbone is not None
                else 'it has no `backbone` and')
        raise TypeError(
            f'layer-wise lr decay needs the layer depth of each parameter: '
            f'{type(model).__name__} has no get_layer_depth and {what} no '
            'get_layer_depth(param_name, prefix). Use a replk_mm backbone (RepLKNet, '
            "LKConvNeXt, LKMobileNetV2, UniRepLKNet) or one of mmpretrain's that has it, or "
            'the default constructor.')
    if num_layers is not None and \
            'max_layer_id' not in inspect.signature(target.get_layer_depth).parameters:
        raise TypeError(f'paramwise_cfg.num_layers needs get_layer_depth(..., max_layer_id) '
                        f'and {type(target).__name__} has none: use a replk_mm backbone or '
                        'drop num_layers')
    if options and 'options' in inspect.signature(target.get_layer_depth).parameters:
        taken = inspect.signature(target.layer_depth).parameters
        unknown = sorted(set(options) - set(taken))
        if unknown:
            raise TypeError(f'paramwise_cfg {unknown} is not a layer-grouping option of '
                            f'{type(target).__name__} (it takes '
                            f'{sorted(set(taken) - {"name"}) or "none"})')
    elif options:
        raise TypeError(f'paramwise_cfg {sorted(options)} needs a replk_mm backbone; '
                        f'{type(target).__name__} takes no layer-grouping options')
    return functools.partial(target.get_layer_depth, **kwargs)


LAYER_OPTIONS = ('blocks_per_layer', )


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class RepLKNetLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor plus layer-wise lr decay by the backbone's
    ``get_layer_depth`` (any replk_mm backbone; see the module docstring).

    Every ``paramwise_cfg`` option of ``DefaultOptimWrapperConstructor`` applies as usual
    (``norm_decay_mult``, ``bias_decay_mult``, ``flat_decay_mult``, ``custom_keys``...); the lr
    each parameter ends up with is then multiplied by its depth's scale. Registered in
    mmengine's root registry, so ``constructor='RepLKNetLayerDecayOptimWrapperConstructor'``
    works in mmpretrain, mmseg and mmdet configs, and reachable as
    ``'replk_mm.RepLKNetLayerDecayOptimWrapperConstructor'`` from any scope (replk_mm's
    registry scope, ``replk_mm.registry``).

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config (``optimizer`` needs ``lr``).
        paramwise_cfg (dict): Must hold ``layer_decay_rate`` (float > 0; the official RepLKNet
            fine-tunes use 0.7), optionally ``num_layers`` (an official recipe's depth of the
            backbone's last layer where it is not the backbone's own, e.g. COCO UniRepLKNet-T's
            12; passed to ``get_layer_depth`` as ``max_layer_id``), optionally
            ``blocks_per_layer`` (RepLKNet: RepLK blocks per layer id, official 2; the XL
            fine-tune's stage-wise decay: 18), plus mmengine's options.

    Each param group gets ``layer_id`` (the depth) and ``lr_scale`` keys (kept by torch
    optimizers), and the depths with their scales are logged.

    Example::

        optim_wrapper = dict(
            optimizer=dict(type='AdamW', lr=4e-4, weight_decay=1e-8),
            constructor='replk_mm.RepLKNetLayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.7, norm_decay_mult=0., bias_decay_mult=0.,
                               flat_decay_mult=0.))
    """

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
        # The key stays in paramwise_cfg: mmengine builds param groups only when it is not
        # empty, and ignores keys it does not know.
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        if self.base_lr is None:
            raise ValueError('layer-wise lr decay scales the optimizer lr: set optim_wrapper.'
                             'optimizer.lr')
        self.layer_decay_rate = float(rate)
        num_layers = paramwise_cfg.get('num_layers')
        if num_layers is not None and (isinstance(num_layers, bool)
                                       or not isinstance(num_layers, int) or num_layers < 1):
            raise ValueError(f'paramwise_cfg.num_layers must be an int >= 1 (the official '
                             f'recipes\' depth of the backbone\'s last layer), got '
                             f'{num_layers!r}')
        self.num_layers = num_layers
        # the backbone's own layer grouping, e.g. RepLKNet XL's stage-wise fine-tune:
        # blocks_per_layer=18 gives each stage one layer id (Appendix A, arXiv 2203.06717v1)
        self.layer_options = {k: paramwise_cfg[k] for k in LAYER_OPTIONS if k in paramwise_cfg}

    def add_params(self, params, module, prefix='', is_dcn_module=None):
        first = len(params)
        super().add_params(params, module, prefix=prefix, is_dcn_module=is_dcn_module)
        if prefix:
            return  # a recursive call: the top-level one scales every group at once
        self._scale_groups(params[first:], module)

    def _scale_groups(self, groups, model):
        get_layer_depth = layer_depth_function(model, self.num_layers, **self.layer_options)
        names = {id(p): n for n, p in model.named_parameters()}
        summary = OrderedDict()
        num_depths = None
        for group in groups:
            (param, ) = group['params']
            depth, num_depths = get_layer_depth(names[id(param)])
            scale = self.layer_decay_rate ** (num_depths - depth - 1)
            group['lr'] = group.get('lr', self.base_lr) * scale
            group['lr_scale'] = scale
            group['layer_id'] = depth
            summary.setdefault(depth, [scale, 0])[1] += 1
        lines = [f'  depth {i:2d}: lr x {scale:.4g} ({count} tensors)'
                 for i, (scale, count) in sorted(summary.items())]
        print_log(f'layer-wise lr decay (rate {self.layer_decay_rate}, {num_depths} depths: '
                  'stem 0, the last one after the backbone):\n' + '\n'.join(lines),
                  logger='current')
