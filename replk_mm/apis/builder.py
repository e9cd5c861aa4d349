"""From a parsed config to a model, outside a Runner: the one model builder of replk_mm.

Deployment (``replk_mm.deploy``), inference (``replk_mm.apis.inference``), the
re-parameterization tool and the analyses (ERF, shape bias, FLOPs) all build here, and read
the test pipeline's input size here. Training and testing build through mmengine's Runner.
"""
import copy

import torch

from ..layers import reparam_modules, switch_to_deploy

__all__ = ['build_model', 'count_params', 'eval_pipeline', 'eval_resize_scale', 'reparameterize',
           'eval_crop_size']


def build_model(cfg, device=None):
    """Build ``cfg.model`` in the config's ``default_scope``, in eval mode, without loading
    weights (``init_cfg`` runs only in ``init_weights``).

    mmengine's root ``MODELS`` under ``init_default_scope`` builds with the scope's registry
    (mmseg, mmdet or mmpretrain). As mmengine's Runner does, a top-level ``data_preprocessor``
    (mmpretrain configs) is used when the model has none. Off CUDA (``device`` not ``cuda``, or
    no CUDA device when ``device`` is None) SyncBN layers become BN with mmengine's
    ``revert_sync_batchnorm`` (the same in eval mode; SyncBN needs CUDA and a process group).
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, DefaultScope, init_default_scope
    scope = cfg.get('default_scope')
    if scope is None:
        raise ValueError("the config has no default_scope ('mmseg', 'mmdet' or 'mmpretrain'): "
                         'it decides which package builds the model')
    init_default_scope(scope)
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('data_preprocessor') is None and cfg.get('data_preprocessor'):
        model_cfg['data_preprocessor'] = copy.deepcopy(cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg)
    on_cuda = torch.cuda.is_available() if device is None else str(device).startswith('cuda')
    if not on_cuda:
        model = revert_sync_batchnorm(model)
    return model.eval()


def reparameterize(model):
    """Merge every re-parameterizable module of ``model`` (eval mode); returns how many were
    merged, 0 when it has none (or all are merged already)."""
    model.eval()
    if not reparam_modules(model):
        return 0
    return switch_to_deploy(model)


def count_params(module):
    """The number of parameters of ``module`` (every one, trainable or frozen)."""
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------- the test pipeline's size
def _kind(step):
    kind = step.get('type', '') if isinstance(step, dict) else ''
    return (kind if isinstance(kind, str) else getattr(kind, '__name__', '')).split('.')[-1]


def eval_pipeline(cfg):
    """The test (else val) dataset's pipeline, looking through dataset wrappers, else the
    config's ``test_pipeline``; [] when there is none."""
    for split in ('test', 'val'):
        loader = cfg.get(f'{split}_dataloader') or {}
        dataset = loader.get('dataset', {}) if isinstance(loader, dict) else {}
        while isinstance(dataset, dict) and 'dataset' in dataset and 'pipeline' not in dataset:
            dataset = dataset['dataset']  # wrappers (RepeatDataset, ...)
        steps = dataset.get('pipeline') if isinstance(dataset, dict) else None
        if steps:
            return list(steps)
    return list(cfg.get('test_pipeline') or [])


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def eval_resize_scale(cfg):
    """``(scale, keep_ratio)`` of the first ``Resize`` / ``RandomResize`` of the test pipeline
    (``scale`` as mmcv writes it, (w, h)), or None."""
    for step in eval_pipeline(cfg):
        if _kind(step) in ('Resize', 'RandomResize') and step.get('scale'):
            return _pair(step['scale']), bool(step.get('keep_ratio'))
    return None


def eval_crop_size(cfg):
    """(H, W) a classifier's test pipeline crops to (``CenterCrop`` / ``RandomCrop`` /
    ``RandomResizedCrop``, else the ``Resize`` / ``ResizeEdge`` scale), or None. mmpretrain
    writes crop sizes and scales as (w, h)."""
    size = None
    for step in eval_pipeline(cfg):
        kind = _kind(step)
        if kind in ('CenterCrop', 'RandomCrop', 'RandomResizedCrop') and step.get('crop_size'):
            size = step['crop_size']
        elif kind in ('Resize', 'ResizeEdge') and size is None:
            size = step.get('scale')
    if size is None:
        return None
    w, h = _pair(size)
    return h, w
