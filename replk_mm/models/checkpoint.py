"""Loading RepLKNet weights from the layouts users actually have.

* official ImageNet checkpoints: a plain state dict (or wrapped under ``model`` /
  ``state_dict``) with a classification ``norm`` and ``head`` that a backbone does not use;
* official downstream (mmseg 0.x / mmdet 2.x) checkpoints: ``state_dict`` with ``backbone.``;
* mmpretrain RepLKNet classifiers: ``backbone.`` keys, the final BN as
  ``backbone.stages.<last>.norm`` and the classifier as ``head.fc``.
"""
import re

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

CLASSIFIER_KEYS = re.compile(r'^(norm|head)\.')


def unwrap_state_dict(checkpoint):
    """The tensor dict inside a checkpoint (``state_dict`` / ``model`` / ``module`` / plain)."""
    if not isinstance(checkpoint, dict):
        raise TypeError(f'a checkpoint must be a dict, got {type(checkpoint).__name__}')
    for key in ('state_dict', 'model', 'module'):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if not checkpoint:
        raise ValueError('the checkpoint holds no weights (empty state dict)')
    if all(k.startswith('module.') for k in checkpoint):  # saved from a DDP-wrapped model
        checkpoint = {k[len('module.'):]: v for k, v in checkpoint.items()}
    return dict(checkpoint)


def is_mmpretrain_classifier(state_dict):
    return 'head.fc.weight' in state_dict and any(
        k.startswith('backbone.stem.') for k in state_dict)


def convert_mmpretrain_to_official(state_dict):
    """mmpretrain RepLKNet classifier -> official ImageNet layout (keys only, same tensors)."""
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


def select_prefix(state_dict, prefix):
    if not prefix:
        return state_dict
    if not prefix.endswith('.'):
        prefix += '.'
    selected = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not selected:
        sample = ', '.join(list(state_dict)[:5])
        raise ValueError(f'no key of the checkpoint starts with prefix {prefix!r} '
                         f'(first keys: {sample})')
    return selected


def to_backbone_state_dict(checkpoint, prefix=None, logger='current'):
    """Normalise any supported checkpoint to the official backbone layout."""
    state_dict = unwrap_state_dict(checkpoint)
    if is_mmpretrain_classifier(state_dict):
        print_log('replk_mm: converting an mmpretrain RepLKNet checkpoint to the official '
                  'layout', logger=logger)
        state_dict = convert_mmpretrain_to_official(state_dict)
        if prefix and prefix.rstrip('.') == 'backbone':
            prefix = None  # the conversion already removed it
    state_dict = select_prefix(state_dict, prefix)
    classifier = sorted(k for k in state_dict if CLASSIFIER_KEYS.match(k))
    if classifier:
        print_log(f'replk_mm: ignoring the classification keys {classifier}', logger=logger)
    return {k: v for k, v in state_dict.items() if not CLASSIFIER_KEYS.match(k)}


def load_backbone_state_dict(model, state_dict, strict=False, logger='current'):
    """Load into a RepLKNet, naming every missing, unexpected or mis-shaped key."""
    own = model.state_dict()
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                  for k, v in state_dict.items() if k in own and v.shape != own[k].shape]
    if mismatched:
        raise ValueError('checkpoint does not fit this RepLKNet (wrong arch?); shape '
                         'mismatches:\n  ' + '\n  '.join(mismatched[:20]))
    if not set(state_dict) & set(own):
        raise ValueError('no key of the checkpoint matches this RepLKNet (wrong prefix or '
                         f'not a RepLKNet checkpoint?); first keys: {list(state_dict)[:5]}')
    result = model.load_state_dict(state_dict, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f'missing keys in checkpoint: {result.missing_keys}')
    if result.unexpected_keys:
        problems.append(f'unexpected keys in checkpoint: {result.unexpected_keys}')
    deploy_hint = _deploy_form_hint(result.missing_keys, result.unexpected_keys)
    if deploy_hint:
        problems.append(deploy_hint)
    if problems:
        message = 'replk_mm: ' + '\n'.join(problems)
        if strict:
            raise RuntimeError(message)
        print_log(message, logger=logger, level=30)
    else:
        print_log(f'replk_mm: loaded all {len(state_dict)} backbone tensors', logger=logger)
    return result


def _deploy_form_hint(missing, unexpected):
    if any('lkb_reparam' in k for k in missing) and any('lkb_origin' in k for k in unexpected):
        return ('the checkpoint is in training form but the model was built with '
                'small_kernel_merged=True: build it with small_kernel_merged=False, load, then '
                'call switch_to_deploy()')
    if any('lkb_origin' in k for k in missing) and any('lkb_reparam' in k for k in unexpected):
        return ('the checkpoint is re-parameterized (deploy form): build the model with '
                'small_kernel_merged=True to load it')
    return None


def load_backbone_checkpoint(model, filename, prefix=None, map_location='cpu', strict=False,
                             logger='current'):
    print_log(f'replk_mm: loading {filename}' + (f' (prefix {prefix!r})' if prefix else ''),
              logger=logger)
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    state_dict = to_backbone_state_dict(checkpoint, prefix, logger)
    return load_backbone_state_dict(model, state_dict, strict=strict, logger=logger)
