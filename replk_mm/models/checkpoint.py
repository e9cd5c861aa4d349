"""The one checkpoint loader of replk_mm: every tool, API and ``init_cfg`` loads through it.

What it does for every checkpoint, whatever the model:

* reads the file safely (:func:`replk_mm.fileio.read_checkpoint`: weights-only unpickling, errors
  that name the file);
* unwraps it (``state_dict`` / ``model`` / ``module`` entries, the ``module.`` prefix of a
  DDP-wrapped model) and drops ``data_preprocessor.`` keys (normalisation constants, never
  weights);
* for a backbone (:func:`load_backbone_checkpoint`, the ``Pretrained`` ``init_cfg`` of every
  replk_mm backbone): selects the backbone's keys (``prefix``, or ``backbone.`` found by itself),
  then hands them to the backbone class's ``checkpoint_filter(state_dict, model, **options)``,
  which maps the layouts it knows (official, mmpretrain, deploy form, smaller kernels) to the
  model's keys or raises ValueError naming the layout problem; a backbone without a filter
  loads the keys as they are;
* loads strictly (:func:`load_model_state_dict` for whole models): every missing, unexpected or
  mis-shaped key is named in a :class:`KeyReport`, with the likely cause, in one error type,
  :class:`CheckpointMismatchError`.
"""
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, NamedTuple

from mmengine.logging import print_log

from ..errors import UserError
from ..fileio import read_checkpoint

__all__ = ['CheckpointMismatchError', 'KeyReport', 'backbone_state_dict', 'group_keys',
           'load_backbone_checkpoint', 'load_checkpoint', 'load_model_state_dict',
           'load_state_dict_checked', 'read_checkpoint', 'select_prefix', 'unwrap_state_dict']

IGNORED_PREFIXES = ('data_preprocessor.', )


class CheckpointMismatchError(ValueError, UserError):
    """A checkpoint does not fit the model; the message lists the keys and the likely cause."""


def unwrap_state_dict(checkpoint):
    """The tensor dict inside a checkpoint (``state_dict`` / ``model`` / ``module`` / plain),
    without a DDP ``module.`` prefix and without ``data_preprocessor.`` keys."""
    if not isinstance(checkpoint, dict):
        raise TypeError(f'a checkpoint must be a dict, got {type(checkpoint).__name__}')
    for key in ('state_dict', 'model', 'module'):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if not checkpoint:
        raise CheckpointMismatchError('the checkpoint holds no weights (empty state dict)')
    state_dict = OrderedDict()
    for key, value in checkpoint.items():
        key = key[len('module.'):] if key.startswith('module.') else key
        if not key.startswith(IGNORED_PREFIXES):
            state_dict[key] = value
    metadata = getattr(checkpoint, '_metadata', None)
    if metadata is not None:  # module versions, read by e.g. BN's loading hook
        state_dict._metadata = OrderedDict(
            (k[len('module.'):] if k.startswith('module.') else k, v)
            for k, v in metadata.items())
    return state_dict


def group_keys(keys):
    """``'head.* (2), neck.* (4)'``: ``keys`` counted by their first component."""
    counts = {}
    for k in keys:
        top = k.split('.')[0] + '.*'
        counts[top] = counts.get(top, 0) + 1
    return ', '.join(f'{top} ({n})' for top, n in sorted(counts.items()))


def select_prefix(state_dict, prefix, logger='current'):
    """The keys under ``prefix`` (e.g. ``'backbone.'``), without it; the others are logged."""
    if not prefix:
        return state_dict
    if not prefix.endswith('.'):
        prefix += '.'
    selected = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    outside = [k for k in state_dict if not k.startswith(prefix)]
    if not selected:
        raise CheckpointMismatchError(
            f'no key of the checkpoint starts with prefix {prefix!r} (keys: '
            f'{group_keys(outside)}); pass the prefix of the sub-model to load, or none')
    if outside:
        print_log(f'replk_mm: ignoring the keys outside {prefix!r}: {group_keys(outside)}',
                  logger=logger)
    return selected


def _top_names(model):
    return {k.split('.')[0] for k in model.state_dict()}


def backbone_state_dict(checkpoint, model, prefix=None, source=None, logger='current',
                        **options):
    """The state dict for backbone ``model`` from any checkpoint its class knows.

    ``prefix`` picks a sub-model; when None and no key belongs to the backbone but some start
    with ``backbone.`` (a classifier, a segmentor, a detector), ``backbone.`` is used. The keys
    then go through ``type(model).checkpoint_filter(state_dict, model, **options)`` when the
    class has one; its ValueError becomes a :class:`CheckpointMismatchError` naming ``source``.
    """
    state_dict = unwrap_state_dict(checkpoint)
    if prefix is None and not _top_names(model) & {k.split('.')[0] for k in state_dict} and \
            any(k.startswith('backbone.') for k in state_dict):
        prefix = 'backbone.'
    where = f'{source}: ' if source else ''
    try:
        state_dict = select_prefix(state_dict, prefix, logger=logger)
    except CheckpointMismatchError as exc:
        raise CheckpointMismatchError(f'{where}{exc}') from None
    checkpoint_filter = getattr(type(model), 'checkpoint_filter', None)
    if checkpoint_filter is None:
        if options:
            raise TypeError(f'{type(model).__name__} has no checkpoint_filter, so it takes no '
                            f'checkpoint options; got {sorted(options)}')
        return state_dict
    try:
        return checkpoint_filter(state_dict, model, **options)
    except CheckpointMismatchError:
        raise
    except ValueError as exc:
        raise CheckpointMismatchError(f'{where}{exc}') from exc


def load_backbone_checkpoint(model, filename, prefix=None, strict=True, map_location='cpu',
                             logger='current', **options):
    """Load ``filename`` (path or URL) into the backbone ``model``; returns the KeyReport.

    See :func:`backbone_state_dict` for the keys taken; ``options`` go to the backbone's
    ``checkpoint_filter`` (e.g. LKConvNeXt's ``embed_smaller_kernels``). Mis-shaped keys and a
    checkpoint in the other form (deploy vs training) are errors whatever ``strict`` says: a
    backbone loaded that way would train on random weights. Missing / unexpected keys are
    errors with ``strict=True`` (the default) and warnings otherwise.
    """
    print_log(f'replk_mm: loading {filename}' + (f' (prefix {prefix!r})' if prefix else ''),
              logger=logger)
    checkpoint = read_checkpoint(filename, map_location=map_location)
    state_dict = backbone_state_dict(checkpoint, model, prefix, source=filename, logger=logger,
                                     **options)
    name = type(model).__name__
    report = load_state_dict_checked(model, state_dict, source=filename)
    where = f'{filename}: '
    if report.mismatched:
        raise CheckpointMismatchError(
            f'{where}the checkpoint does not fit this {name} (another arch or width?); '
            + report.describe())
    if report.form_hint():
        raise CheckpointMismatchError(f'{where}{report.form_hint()}\n' + report.describe())
    if not report.fits:
        message = f'the checkpoint does not fit this {name}:\n' + report.describe()
        if strict:
            raise CheckpointMismatchError(where + message)
        print_log(f'replk_mm: {where}{message}', logger=logger, level=30)
    else:
        print_log(f'replk_mm: loaded all {len(state_dict)} tensors of {name}', logger=logger)
    return report


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
    missing = [k for k in result.missing_keys if k not in skip and not
               k.endswith('num_batches_tracked') and not k.startswith(IGNORED_PREFIXES)]
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


def load_checkpoint(model, checkpoint, *, strict=True, source=None, partial_hint='',
                    map_location='cpu', logger='current'):
    """Load a whole-model checkpoint (a path / URL, or a checkpoint dict already read) into
    ``model`` strictly (see :func:`load_model_state_dict`). Returns the checkpoint dict (its
    ``meta`` holds e.g. the class names)."""
    if not isinstance(checkpoint, dict):
        source = source or str(checkpoint)
        checkpoint = read_checkpoint(checkpoint, map_location=map_location)
    load_model_state_dict(model, unwrap_state_dict(checkpoint), strict=strict, source=source,
                          partial_hint=partial_hint, logger=logger)
    return checkpoint
