"""``ReplkRunner``: mmengine's Runner, loading checkpoints safely and strictly.

What it changes when it loads a checkpoint:

* every checkpoint goes through replk_mm's loader (:mod:`replk_mm.models.checkpoint`):
  weights-only reading, unwrapping, the key report;
* ``load_from`` and ``tools/test.py``'s checkpoint load **strictly**: a checkpoint that does not
  fit is an error listing the missing / unexpected / mis-shaped keys and the likely cause.
  ``allow_partial_load = True`` in the config (``--allow-partial`` on the tools) loads what
  fits and warns about the rest;
* ``--resume`` from a checkpoint without training state (weights only, deploy form) says so and
  points to ``load_from`` / ``init_cfg``; one that does not fit the model says that resuming
  needs the same model and optimizer (partial loading is for ``load_from``); with nothing to
  resume it says that plainly, and a ``last_checkpoint`` naming a missing file is an error.

And for several runs in one process (a notebook, the demos, tests): each runner gets a logger,
message hub, default scope and visualizer of its own (see :meth:`ReplkRunner.__init__` and
:meth:`ReplkRunner.build_visualizer`).

``replk_mm.apis.train_runner`` / ``test_runner`` build it for every config without a
``runner_type``.
"""
import collections
import inspect
import os.path as osp
import re
from collections import OrderedDict

import torch
from mmengine.device import get_device
from mmengine.model import BaseTTAModel, is_model_wrapper, revert_sync_batchnorm
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.visualization import Visualizer

from ..errors import UserError
from ..fileio import read_checkpoint
from ..models.checkpoint import (
    CheckpointMismatchError,
    load_model_state_dict,
    unwrap_state_dict,
)

PARTIAL_LOAD_KEY = 'allow_partial_load'
PARTIAL_LOAD_HINT = (f'To load only what fits, pass --allow-partial (tools/train.py, '
                     f'tools/test.py) or set {PARTIAL_LOAD_KEY} = True in the config.')


RESUME_HINT = (
    '--resume continues the run that wrote {filename}: it needs the same model and optimizer '
    '(it restores the optimizer and scheduler states too), so --allow-partial does not apply. '
    'To start a new run from the weights that fit, use --cfg-options load_from={filename} '
    '(with --allow-partial to load only what fits) instead of --resume.')


class ResumeError(ValueError, UserError):
    """``--resume`` cannot continue from the given checkpoint; the message says what to do."""


def check_training_state(checkpoint, filename):
    """Raise ResumeError unless ``checkpoint`` holds what mmengine's resume reads."""
    meta = checkpoint.get('meta')
    missing = [key for key in ('meta', 'message_hub') if key not in checkpoint]
    if isinstance(meta, dict):
        missing += [f'meta.{key}' for key in ('epoch', 'iter') if key not in meta]
    if not missing:
        return
    kind = ('a deploy-form checkpoint (tools/deploy/reparameterize.py)'
            if isinstance(meta, dict) and meta.get('replk_mm_deploy') else
            'a weights-only checkpoint')
    raise ResumeError(
        f'{filename} holds no training state (no {", ".join(missing)}): it is {kind}. '
        '--resume continues a run from a checkpoint tools/train.py wrote. To start a new run '
        f'from these weights use --cfg-options load_from={filename} (the whole model) or '
        "model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH "
        '(the backbone).')


@RUNNERS.register_module()
class ReplkRunner(Runner):
    """mmengine's ``Runner`` with safe, strict checkpoint loading (see the module docstring).

    Takes ``Runner``'s arguments; reads ``allow_partial_load`` from ``cfg``.
    """

    _experiment_names = collections.Counter()  # per process: same order on every rank

    def __init__(self, *args, **kwargs):
        # mmengine names a run's logger, message hub and default scope after the config file
        # and the time in seconds, and returns an existing instance of a name: two runs of one
        # config started in the same second would share them (one log file, mixed scalars,
        # another task's scope). A config file name seen before in this process gets a count.
        bound = inspect.signature(Runner.__init__).bind(self, *args, **kwargs)
        name, cfg = bound.arguments.get('experiment_name'), bound.arguments.get('cfg')
        if name is None and cfg is not None and getattr(cfg, 'filename', None):
            name = osp.splitext(osp.basename(cfg.filename))[0]
        if name is not None:
            ReplkRunner._experiment_names[name] += 1
            count = ReplkRunner._experiment_names[name]
            bound.arguments['experiment_name'] = name if count == 1 else f'{name}_{count}'
        super().__init__(*bound.args[1:], **bound.kwargs)
        self._preloaded = {}  # resume() reads a checkpoint once; load_checkpoint() reuses it
        self._resuming = False  # load_checkpoint() inside resume(): always strict

    def build_visualizer(self, visualizer=None):
        """As mmengine's, but always a new instance. mmseg's, mmdet's and mmpretrain's default
        runtimes all name their visualizer ``'visualizer'``, and mmengine returns an existing
        instance of that name whatever its class, without making it the current one, which is
        what the visualization hooks draw with: a second run in the same process (seg after
        det, or after a plain mmengine run) would draw with another task's visualizer. A taken
        name gets the experiment name appended (and a counter if needed)."""
        if isinstance(visualizer, dict):
            visualizer = dict(visualizer)
            name = base = visualizer.get('name', self._experiment_name)
            count = 0
            while Visualizer.check_instance_created(name):
                count += 1
                name = f'{base}_{self._experiment_name}' + (f'_{count}' if count > 1 else '')
            visualizer['name'] = name
        return super().build_visualizer(visualizer)

    def build_model(self, model):
        """As mmengine's; without CUDA, SyncBN layers become BN (mmengine's
        ``revert_sync_batchnorm``): SyncBN needs CUDA, and in a CPU run (one process, or gloo)
        per-process BN is what the statistics can be."""
        model = super().build_model(model)
        if not torch.cuda.is_available() and \
                any('SyncBatchNorm' in type(m).__name__ for m in model.modules()):
            self.logger.info('replk_mm: no CUDA device: SyncBN layers are built as BN')
            model = revert_sync_batchnorm(model)
        return model

    @property
    def allow_partial_load(self):
        return bool(self.cfg.get(PARTIAL_LOAD_KEY, False))

    def load_or_resume(self):
        """As mmengine's, except for auto-resume (``resume='auto'``, or True without a
        ``load_from``): the latest checkpoint in ``work_dir`` if there is one, else
        ``load_from`` if set, each said plainly in the log."""
        auto = self._resume == 'auto' or (self._resume and self._load_from is None)
        if self._has_loaded or not auto:
            return super().load_or_resume()
        latest = self._latest_checkpoint()
        if latest is not None:
            self.logger.info(f'--resume: resuming from {latest}, the latest checkpoint in '
                             f'{self.work_dir}')
            self.resume(latest)
        elif self._load_from is not None:
            self.logger.info(f'--resume: nothing to resume in {self.work_dir} (no '
                             f'last_checkpoint file): loading load_from {self._load_from}, '
                             'training starts from iteration 0.')
            self.load_checkpoint(self._load_from)
        else:
            self.logger.info(f'--resume: nothing to resume in {self.work_dir} (no '
                             'last_checkpoint file): training starts from iteration 0.')
        return None

    def _latest_checkpoint(self):
        record = osp.join(self.work_dir, 'last_checkpoint')
        if not osp.isfile(record):
            return None
        with open(record) as f:
            latest = f.read().strip()
        if not latest:
            return None
        if '://' not in latest and not osp.isfile(latest):
            raise ResumeError(
                f'{record} names {latest}, which does not exist (removed, or written by a '
                'run that was killed while saving?). Pass --resume CHECKPOINT with a checkpoint '
                'of this run, or remove last_checkpoint to start from iteration 0.')
        return latest

    def resume(self, filename, resume_optimizer=True, resume_param_scheduler=True,
               map_location='default'):
        location = get_device() if map_location == 'default' else map_location
        checkpoint = read_checkpoint(filename, map_location=location)
        check_training_state(checkpoint, filename)
        self._preloaded[filename] = checkpoint
        self._resuming = True
        try:
            return super().resume(filename, resume_optimizer=resume_optimizer,
                                  resume_param_scheduler=resume_param_scheduler,
                                  map_location=location)
        finally:
            self._preloaded.pop(filename, None)
            self._resuming = False

    def load_checkpoint(self, filename, map_location='cpu', strict=None,
                        revise_keys=((r'^module\.', ''), )):
        """Load ``filename`` into the model; strict unless ``allow_partial_load`` (or
        ``strict=False`` from a caller) says otherwise. Returns the checkpoint."""
        checkpoint = self._preloaded.pop(filename, None)
        if checkpoint is None:
            checkpoint = read_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):  # as mmengine does
            model = model.module
        state_dict = checkpoint.get('state_dict', checkpoint)
        if not isinstance(state_dict, dict):
            raise CheckpointMismatchError(
                f"{filename}: 'state_dict' is a {type(state_dict).__name__}, expected a dict")
        state_dict = _revise_keys(unwrap_state_dict(checkpoint), revise_keys)
        if self._resuming:
            # the optimizer and scheduler states that follow only fit the same model
            try:
                load_model_state_dict(model, state_dict, strict=True, source=filename)
            except CheckpointMismatchError as exc:
                raise ResumeError(f'{exc}\n{RESUME_HINT.format(filename=filename)}') from None
        else:
            if strict is None:
                strict = not self.allow_partial_load
            load_model_state_dict(model, state_dict, strict=strict, source=filename,
                                  partial_hint=PARTIAL_LOAD_HINT)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint


def _revise_keys(state_dict, revise_keys):
    """mmengine's ``revise_keys`` (``(pattern, replacement)`` pairs) on the keys; the loader
    already removed ``module.``."""
    revise_keys = [r for r in revise_keys if tuple(r) != (r'^module\.', '')]
    if not revise_keys:
        return state_dict
    metadata = getattr(state_dict, '_metadata', None)
    for pattern, replacement in revise_keys:
        state_dict = OrderedDict((re.sub(pattern, replacement, k), v)
                                 for k, v in state_dict.items())
    if metadata is not None:
        state_dict._metadata = metadata
    return state_dict
