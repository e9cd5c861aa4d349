"""Re-parameterize a trained downstream checkpoint into the deploy form."""
import copy
import inspect

import torch
from mmengine.logging import print_log

from ..layers import reparam_modules
from ..models.checkpoint import load_checkpoint
from .builder import build_model, reparameterize
from .runner import load_config


def _deploy_capable(type_name):
    """Whether a config ``type`` names a replk_mm backbone with a deploy form."""
    from ..models import backbones
    name = str(type_name).split('.')[-1]
    cls = getattr(backbones, name, None) if name in backbones.__all__ else None
    return cls is not None and 'small_kernel_merged' in inspect.signature(cls).parameters


def mark_deploy_form(node):
    """Build every re-parameterizable replk_mm backbone (RepLKNet, LKConvNeXt, ...) of a model
    config (dict, in place) in deploy form, without its pre-trained ``init_cfg``; returns how
    many were found."""
    found = 0
    if isinstance(node, dict):
        if _deploy_capable(node.get('type', '')):
            node['small_kernel_merged'] = True
            node.pop('init_cfg', None)  # the deploy checkpoint carries the weights
            found += 1
        for value in node.values():
            found += mark_deploy_form(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            found += mark_deploy_form(value)
    return found


def reparameterize_checkpoint(config, checkpoint, out, deploy_config=None, allow_partial=False):
    """Load `checkpoint` into the model of `config`, merge the kernels and save to `out`.

    Also writes the matching deploy config (backbones built with ``small_kernel_merged=True``)
    to `deploy_config` when given. Returns the number of merged branches. The checkpoint is
    read weights-only and must fit the model (the error lists the keys and the likely cause)
    unless `allow_partial`.
    """
    cfg = load_config(config)
    model = build_model(cfg)
    if not reparam_modules(model):
        raise ValueError(f'{config}: the model has no re-parameterizable module (no RepLKNet '
                         'block, LKConvNeXt or LKMobileNetV2 with a small kernel): nothing to '
                         'merge')
    loaded = load_checkpoint(model, checkpoint, strict=not allow_partial, source=checkpoint,
                             partial_hint='To convert only what fits, pass --allow-partial.')
    merged = reparameterize(model)
    # keep the original meta (dataset_meta gives inferencers their class names)
    meta = dict(loaded.get('meta', {}), replk_mm_deploy=True)
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, out)
    print_log(f'merged {merged} large-kernel branches; saved {out}', logger='current')
    if deploy_config:
        deploy_cfg = copy.deepcopy(cfg)
        if not mark_deploy_form(deploy_cfg.model):
            raise ValueError(f'{config} has no re-parameterizable replk_mm backbone')
        deploy_cfg.dump(deploy_config)
        print_log(f'deploy config written to {deploy_config}', logger='current')
    return merged
