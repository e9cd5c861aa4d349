"""Loading RepLKNet weights from the layouts users actually have.

* official ImageNet checkpoints: a plain state dict (or wrapped under ``model`` /
  ``state_dict``) with a classification ``norm`` and ``head`` that a backbone does not use;
* official downstream (mmseg 0.x / mmdet 2.x) checkpoints: ``state_dict`` with ``backbone.``;
* mmpretrain RepLKNet classifiers: ``backbone.`` keys, the final BN as
  ``backbone.stages.<last>.norm`` and the classifier as ``head.fc``.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, NamedTuple

from mmengine.logging import print_log

from ..engine.safe_load import read_checkpoint
from ..layers import fold_deploy_state_dict

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


def load_backbone_state_dict(model, state_dict, strict=False, logger='current', source=None):
    """Load into a RepLKNet, naming every missing, unexpected or mis-shaped key.

    Mis-shaped keys, a checkpoint with no matching key and a checkpoint in the other form
    (deploy vs training) are errors whatever ``strict`` says: a backbone loaded that way would
    train on random weights. Missing / unexpected keys are errors with ``strict=True`` and
    warnings otherwise (an ImageNet checkpoint lacks e.g. the BNs of
    ``norm_intermediate_features``).
    """
    where = f'{source}: ' if source else ''
    report = load_state_dict_checked(model, state_dict, source=source)
    cause = report.likely_cause()
    if report.mismatched:
        raise CheckpointMismatchError(
            f'{where}checkpoint does not fit this RepLKNet ({cause or "wrong arch?"}); '
            + report.describe_mismatched())
    if report.form_hint():
        raise CheckpointMismatchError(f'{where}{report.form_hint()}\n' + report.describe())
    if not report.fits:
        message = 'replk_mm: ' + report.describe()
        if strict:
            raise CheckpointMismatchError(where + message)
        print_log(message, logger=logger, level=30)
    else:
        print_log(f'replk_mm: loaded all {len(state_dict)} backbone tensors', logger=logger)
    return report.result


class CheckpointMismatchError(ValueError, RuntimeError):
    """A checkpoint does not fit the model; the message lists the keys and the likely cause.

    Both a ValueError and a RuntimeError: earlier versions raised either, depending on the
    problem."""


MAX_LISTED = 10


class ShapeMismatch(NamedTuple):
    key: str
    checkpoint: tuple
    model: tuple

    def __str__(self):
        return f'{self.key}: checkpoint {self.checkpoint} vs model {self.model}'


def shorten(items, max_listed=MAX_LISTED):
    """``[a, b, c]``, or the first ``max_listed`` and how many more."""
    items = list(items)
    if len(items) <= max_listed:
        return repr(items)
    return f'{items[:max_listed]!r} ... and {len(items) - max_listed} more'


# First key component -> the kind of model it belongs to (mmseg / mmdet / mmpretrain heads).
TASK_MODULES = {'decode_head': 'a segmentation model', 'auxiliary_head': 'a segmentation model',
                'rpn_head': 'a detector', 'roi_head': 'a detector', 'bbox_head': 'a detector',
                'head': 'a classifier'}


@dataclass
class KeyReport:
    """What loading a state dict into a model found. ``result`` is torch's
    ``_IncompatibleKeys`` (missing / unexpected after module hooks)."""
    missing: List[str]
    unexpected: List[str]
    mismatched: List[ShapeMismatch]
    model_keys: List[str]
    checkpoint_keys: List[str]
    result: object = None

    @property
    def fits(self):
        return not (self.missing or self.unexpected or self.mismatched)

    def describe_mismatched(self, max_listed=MAX_LISTED):
        lines = [str(m) for m in self.mismatched[:max_listed]]
        if len(self.mismatched) > max_listed:
            lines.append(f'... and {len(self.mismatched) - max_listed} more')
        return f'shape mismatches ({len(self.mismatched)}):\n  ' + '\n  '.join(lines)

    def describe(self, max_listed=MAX_LISTED):
        """One line per kind of problem (lists shortened), then the likely cause."""
        lines = []
        if self.missing:
            count = f' ({len(self.missing)})' if len(self.missing) > max_listed else ''
            lines.append(f'missing keys in checkpoint{count}: {shorten(self.missing, max_listed)}')
        if self.unexpected:
            count = f' ({len(self.unexpected)})' if len(self.unexpected) > max_listed else ''
            lines.append(f'unexpected keys in checkpoint{count}: '
                         f'{shorten(self.unexpected, max_listed)}')
        if self.mismatched:
            lines.append(self.describe_mismatched(max_listed))
        cause = self.likely_cause()
        if cause:
            lines.append(f'likely cause: {cause}')
        return '\n'.join(lines)

    def form_hint(self):
        """The fix when the checkpoint is in the other RepLKNet form (deploy vs training)."""
        missing, unexpected = self.missing, self.unexpected
        if any('lkb_reparam' in k for k in missing) and \
                any('lkb_origin' in k for k in unexpected):
            return ('the checkpoint is in training form but the model was built with '
                    'small_kernel_merged=True (deploy form): build it with '
                    'small_kernel_merged=False, load, then call switch_to_deploy() (or '
                    'convert the checkpoint with tools/deploy/reparameterize.py)')
        if any('lkb_origin' in k for k in missing) and \
                any('lkb_reparam' in k for k in unexpected):
            return ('the checkpoint is re-parameterized (deploy form) but the model is in '
                    'training form: build the model with small_kernel_merged=True to load it '
                    '(tools/deploy/reparameterize.py --deploy-config writes that config)')
        return None

    def likely_cause(self):
        """A short guess at why the checkpoint does not fit, or None."""
        hint = self.form_hint()
        if hint:
            return hint
        if not self.checkpoint_keys:
            return 'the checkpoint holds no weights'
        model_tops = {k.split('.')[0] for k in self.model_keys}
        ckpt_tops = {k.split('.')[0] for k in self.checkpoint_keys}
        if not set(self.model_keys) & set(self.checkpoint_keys):
            if 'backbone' in model_tops and {'stem', 'stages'} <= ckpt_tops:
                return ('a backbone checkpoint (e.g. ImageNet pre-training): load it with '
                        "model.backbone.init_cfg=dict(type='Pretrained', checkpoint=PATH)")
            return (f'no key matches: the checkpoint has {sorted(ckpt_tops)[:6]}, the model '
                    f'{sorted(model_tops)[:6]} (another model, or a wrong prefix?)')
        ckpt_kind = {TASK_MODULES[t] for t in ckpt_tops - model_tops if t in TASK_MODULES}
        model_kind = {TASK_MODULES[t] for t in model_tops - ckpt_tops if t in TASK_MODULES}
        if ckpt_kind and ckpt_kind != model_kind:
            built = f' but the config builds {sorted(model_kind)[0]}' if model_kind else ''
            return (f'a checkpoint of {sorted(ckpt_kind)[0]} '
                    f'({sorted(ckpt_tops - model_tops)} keys){built}: another task?')
        if self.mismatched:
            return ('the shapes differ: a checkpoint of another arch, width or number of '
                    'classes (e.g. a 31L checkpoint on a 31B config)?')
        if self.missing and self.unexpected:
            return 'another arch or model variant (keys differ on both sides)?'
        return None


def load_state_dict_checked(model, state_dict, source=None):
    """Load what fits of ``state_dict`` into ``model`` and report the rest (a KeyReport).

    Mis-shaped tensors are left out (torch would raise on them); missing / unexpected keys are
    as torch's ``load_state_dict`` sees them (after the modules' own loading hooks). A state
    dict without a single matching key is an error: loading it would change nothing.
    """
    own = model.state_dict()
    mismatched = [ShapeMismatch(k, tuple(v.shape), tuple(own[k].shape))
                  for k, v in state_dict.items()
                  if k in own and hasattr(v, 'shape') and v.shape != own[k].shape]
    if not set(state_dict) & set(own):
        report = KeyReport(list(own), list(state_dict), [], list(own), list(state_dict))
        where = f'{source}: ' if source else ''
        raise CheckpointMismatchError(
            f'{where}no key of the checkpoint matches the model ({report.likely_cause()}); '
            f'first checkpoint keys: {list(state_dict)[:5]}, first model keys: {list(own)[:5]}')
    skip = {m.key for m in mismatched}
    fitting = OrderedDict((k, v) for k, v in state_dict.items() if k not in skip)
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:  # module versions, read by e.g. BN's loading hook
        fitting._metadata = metadata
    result = model.load_state_dict(fitting, strict=False)
    # A mis-shaped key was left out above: it is reported as mis-shaped, not as missing. A
    # missing BN num_batches_tracked is not reported (as mmengine does): older checkpoints lack
    # it and it only matters for BN with momentum=None.
    missing = [k for k in result.missing_keys
               if k not in skip and not k.endswith('num_batches_tracked')]
    return KeyReport(missing=missing,
                     unexpected=list(result.unexpected_keys), mismatched=mismatched,
                     model_keys=list(own), checkpoint_keys=list(state_dict), result=result)


def load_model_state_dict(model, state_dict, strict=True, source=None, partial_hint='',
                          logger='current'):
    """Load a whole model's state dict (``load_from``, tools/test.py, deploy tools).

    Strict by default: a state dict that does not fit raises CheckpointMismatchError listing
    the missing / unexpected / mis-shaped keys (first few and a count) and the likely cause,
    followed by ``partial_hint`` (how the caller's user allows partial loading). With
    ``strict=False`` what fits is loaded and the rest is logged as a warning. Returns the
    KeyReport.
    """
    report = load_state_dict_checked(model, state_dict, source=source)
    where = f'{source}: ' if source else ''
    if report.fits:
        print_log(f'replk_mm: {where}loaded all {len(state_dict)} tensors of the model',
                  logger=logger)
        return report
    message = f'{where}the checkpoint does not fit the model.\n{report.describe()}'
    if strict:
        raise CheckpointMismatchError(message + (f'\n{partial_hint}' if partial_hint else ''))
    print_log(f'replk_mm: {message}\nPartial loading was asked for: the model keys listed keep '
              'their initial values.', logger=logger, level=30)
    return report


def load_backbone_checkpoint(model, filename, prefix=None, map_location='cpu', strict=False,
                             logger='current'):
    print_log(f'replk_mm: loading {filename}' + (f' (prefix {prefix!r})' if prefix else ''),
              logger=logger)
    checkpoint = read_checkpoint(filename, map_location=map_location)
    # an official deploy-form checkpoint keeps the BNs that replk_mm's deploy form folds
    state_dict = fold_deploy_state_dict(to_backbone_state_dict(checkpoint, prefix, logger))
    return load_backbone_state_dict(model, state_dict, strict=strict, logger=logger,
                                    source=filename)
