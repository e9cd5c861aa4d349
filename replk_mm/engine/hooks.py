"""``AtomicCheckpointHook``: mmengine's ``CheckpointHook`` whose saves a kill cannot lose.

mmengine 0.10.7's hook, with ``max_keep_ckpts``, removes the oldest checkpoint *before* it
writes the new one, and writes it in place; ``save_best`` removes the previous best checkpoint
before writing the new best. A SIGKILL (OOM killer, pre-emption, Ctrl-\\) during a save then
leaves a truncated file and a ``last_checkpoint`` naming a removed one, and ``--resume``
cannot continue. Here every save

1. writes the checkpoint to a temporary name in the same folder (``.NAME.replk-tmp``), flushes
   it to disk and renames it into place (``os.replace`` is atomic on POSIX and Windows);
2. then replaces ``last_checkpoint`` the same way;
3. only then removes the checkpoints that fell out of ``max_keep_ckpts`` (and a replaced best
   checkpoint). Their names are recorded in the new checkpoint's message hub first, so a run
   killed before step 3 removes them when it resumes; leftover temporary files are removed
   then too.

A full disk: before each save the hook checks that the folder has room for the new checkpoint
(its size is estimated from the tensors to be saved, or taken from the last save of the same
kind). Writing before removing needs room for one more checkpoint than ``max_keep_ckpts``, even
with ``max_keep_ckpts=1``; when it does not fit, the run stops with ``DiskSpaceError`` naming
the folder, the bytes needed and free, and nothing is removed. A write that fails anyway
(``ENOSPC``, another writer filled the disk) removes its partial temporary file before it
raises. Temporary files a killed or failed save left are removed before anything else writes
in the work dir (``remove_interrupted_saves``, called by ``train_runner`` before the runner is
built), so a ``--resume`` on a full disk first gets their space back.

All ``CheckpointHook`` arguments keep their meaning. ``replk_mm.apis.train_runner`` (behind
``tools/train.py`` and ``dist_train.sh``) puts this hook in place of a config's
``CheckpointHook``. Storage backends other than the local file system (``backend_args`` /
``file_client_args`` with a remote ``out_dir``) cannot rename: there the order of steps 1-3 is
kept but the write itself is not atomic (a warning says so).
"""
import errno
import os
import os.path as osp
import re
import shutil

import torch
from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ..errors import UserError
from ..fileio import allow_mmengine_checkpoints

TMP_SUFFIX = '.replk-tmp'
TMP_PATTERN = re.compile(r'^\..+' + re.escape(TMP_SUFFIX) + '$')
# Message-hub key: checkpoint file names (relative to out_dir) still to be removed.
PENDING_REMOVAL = 'replk_mm_pending_removal'
# Beyond the tensors: the message hub, meta, pickle framing (a tiny model's checkpoint has
# ~20 kB of it).
OVERHEAD_BYTES = 1 << 20


class DiskSpaceError(OSError, UserError):
    """A checkpoint does not fit on the disk; names the folder, the bytes needed and free."""


def free_bytes(folder):
    return shutil.disk_usage(folder).free


def remove_interrupted_saves(folder, log=None):
    """Remove the temporary files (``.NAME.replk-tmp``) that a killed or failed save left in
    ``folder``; returns their names. Nothing else writes there between their save and this."""
    if not osp.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        if TMP_PATTERN.match(name):
            try:
                os.remove(osp.join(folder, name))
            except FileNotFoundError:  # another process of the run removed it first
                continue
            removed.append(name)
            if log is not None:
                log(f'removed {name}, left by an interrupted save')
    return removed


def _tensor_bytes(obj):
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(value) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(value) for value in obj)
    return 0


def _size(num_bytes):
    return f'{num_bytes} bytes ({num_bytes / 2**20:.1f} MiB)'


def temporary_name(filename):
    """Where ``filename`` is written before it is renamed into place."""
    folder, name = osp.split(filename)
    return osp.join(folder, f'.{name}{TMP_SUFFIX}')


def replace_file(tmp, final):
    """Flush ``tmp`` to disk and rename it to ``final`` atomically."""
    with open(tmp, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_folder(osp.dirname(final))


def write_text_atomically(path, text):
    tmp = temporary_name(path)
    try:
        with open(tmp, 'w') as f:
            f.write(text)
        replace_file(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _fsync_folder(folder):
    # Makes the rename itself durable on a power loss; not possible on every platform.
    try:
        fd = os.open(folder or '.', os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that writes each checkpoint atomically and removes old ones last.

    Takes exactly ``mmengine.hooks.CheckpointHook``'s arguments (``interval``, ``by_epoch``,
    ``max_keep_ckpts``, ``save_best``, ``rule``, ``save_last``, ``filename_tmpl``,
    ``published_keys``, ...); see the module docstring for the order of a save.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._atomic = True  # decided in before_train, once out_dir and its backend are known
        self._pending = []  # checkpoint names to remove once the next save is complete
        self._last_size = {}  # save_optimizer -> bytes of the last checkpoint of that kind
        self._resumable = None  # the checkpoint last_checkpoint names

    def before_train(self, runner):
        super().before_train(runner)
        self._resumable = self.last_ckpt  # CheckpointHook takes it from a resumed message hub
        self._atomic = isinstance(self.file_backend, LocalBackend) or (
            self.file_client_args is not None
            and isinstance(getattr(self.file_backend, 'client', None), LocalBackend))
        if not self._atomic:
            runner.logger.warning(
                f'AtomicCheckpointHook: {self.out_dir} is not on the local file system; '
                'checkpoints are written in place there (a kill during a save can truncate '
                'one), old ones are still removed only after the new one is written.')
        if is_main_process():
            self._clean_up(runner)

    def _clean_up(self, runner):
        """Finish what a killed run left: temporary files and pending removals."""
        if self._atomic:  # (train_runner has removed those of the work dir already)
            remove_interrupted_saves(self.out_dir, runner.logger.info)
        pending = runner.message_hub.get_info(PENDING_REMOVAL) or []
        if pending:
            self._remove_stale(runner, pending)
            runner.message_hub.update_info(PENDING_REMOVAL, [])

    # -- writing ---------------------------------------------------------------------------

    def _write_checkpoint(self, runner, filename, **kwargs):
        """``runner.save_checkpoint`` into ``out_dir/filename``, through a temporary file."""
        if not self._atomic:
            runner.save_checkpoint(
                self.out_dir, filename, self.file_client_args, backend_args=self.backend_args,
                **kwargs)
            return
        needed = None
        if is_main_process():  # the runner writes on the main process only
            needed = self._check_free_space(runner, filename, kwargs.get('save_optimizer'))
        tmp = temporary_name(filename)
        tmp_path, final = osp.join(self.out_dir, tmp), osp.join(self.out_dir, filename)
        try:
            runner.save_checkpoint(
                self.out_dir, tmp, self.file_client_args, backend_args=self.backend_args,
                **kwargs)
            if is_main_process():
                self._publish(tmp_path, final)
        except BaseException as exc:
            if is_main_process() and osp.exists(tmp_path):  # a partial file: free its space
                os.remove(tmp_path)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise self._no_space(filename, needed, 'the disk filled up while writing it; '
                                     'the partial file was removed') from exc
            raise
        if is_main_process():
            self._last_size[bool(kwargs.get('save_optimizer'))] = osp.getsize(final)

    def _check_free_space(self, runner, filename, save_optimizer):
        """Bytes the checkpoint needs; DiskSpaceError if the folder has less free."""
        state = {'model': runner.model.state_dict()}
        if save_optimizer and runner.optim_wrapper is not None:
            state['optimizer'] = runner.optim_wrapper.state_dict()
        needed = max(_tensor_bytes(state) + OVERHEAD_BYTES,
                     self._last_size.get(bool(save_optimizer), 0))
        if free_bytes(self.out_dir) < needed:
            raise self._no_space(filename, needed, 'checked before writing')
        return needed

    def _no_space(self, filename, needed, what):
        free = free_bytes(self.out_dir)
        last = self._resumable
        kept = (f'nothing was removed: the last checkpoint {last} is intact and --resume '
                'continues from it' if last else 'nothing was removed')
        return DiskSpaceError(
            f'no room for checkpoint {filename} in {self.out_dir} ({what}): it needs about '
            f'{_size(needed) if needed else "unknown bytes"}, {_size(free)} are free. Each '
            'save writes the new checkpoint before it removes an old one, so the folder needs '
            'room for one checkpoint more than max_keep_ckpts (two with max_keep_ckpts=1); '
            f'{kept}. Free some space or use a --work-dir on a larger disk.')

    def _publish(self, tmp, final):
        replace_file(tmp, final)

    def _write_last_checkpoint(self, runner):
        self._resumable = self.last_ckpt
        path = osp.join(runner.work_dir, 'last_checkpoint')
        if self._atomic:
            write_text_atomically(path, self.last_ckpt)
        else:
            with open(path, 'w') as f:
                f.write(self.last_ckpt)

    def _remove_stale(self, runner, names):
        for name in names:
            path = self.file_backend.join_path(self.out_dir, name)
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints are folders
                self.file_backend.rmtree(path)
            else:
                continue
            runner.logger.info(f'removed the old checkpoint {name}')

    # -- what CheckpointHook decides, in a safe order ---------------------------------------

    def _save_checkpoint_with_step(self, runner, step, meta):
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                self._pending.append(self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        stale = [name for name in self._pending if name != filename]
        # Recorded in this checkpoint: a run killed before the removal below resumes from it
        # and removes them then (before_train).
        runner.message_hub.update_info(PENDING_REMOVAL, stale)
        self._write_checkpoint(
            runner, filename, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            **self.args)
        self._pending = []
        runner.message_hub.update_info(PENDING_REMOVAL, [])
        if not is_main_process():
            return
        self._write_last_checkpoint(runner)
        self._remove_stale(runner, stale)

    def _save_best_checkpoint(self, runner, metrics):
        if not self.save_best:
            return
        step = runner.epoch if self.by_epoch else runner.iter
        unit = 'epoch' if self.by_epoch else 'iter'
        ckpt_filename = self.filename_tmpl.format(step)
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])
        single = len(self.key_indicators) == 1

        updated = False
        for key_indicator, rule in zip(self.key_indicators, self.rules):
            suffix = '' if single else f'_{key_indicator}'
            score_key, path_key = f'best_score{suffix}', f'best_ckpt{suffix}'
            previous = self.best_ckpt_path if single else self.best_ckpt_path_dict[key_indicator]
            best_score = runner.message_hub.runtime_info.get(score_key,
                                                             self.init_value_map[rule])
            score = metrics[key_indicator]
            if score is None or not self.is_better_than[key_indicator](score, best_score):
                continue
            updated = True
            runner.message_hub.update_info(score_key, score)
            name = f'best_{key_indicator}_{ckpt_filename}'.replace('/', '_')
            path = self.file_backend.join_path(self.out_dir, name)
            self._write_checkpoint(runner, name, save_optimizer=False,
                                   save_param_scheduler=False, meta=meta, by_epoch=False)
            if single:
                self.best_ckpt_path = path
            else:
                self.best_ckpt_path_dict[key_indicator] = path
            runner.message_hub.update_info(path_key, path)
            if previous and previous != path:
                self._pending.append(osp.basename(previous))
            runner.logger.info(f'The best checkpoint with {score:0.4f} {key_indicator} at '
                               f'{step} {unit} is saved to {name}.')

        if updated and self.last_ckpt is not None:
            # as CheckpointHook does: re-save the latest checkpoint so that its message hub
            # names the new best one; the replaced best is removed after that
            self._save_checkpoint_with_step(runner, step, meta)
        elif self._pending and is_main_process():
            self._remove_stale(runner, self._pending)
            self._pending = []

    def _publish_model(self, runner, ckpt_path):
        with allow_mmengine_checkpoints():  # reads the checkpoint back with weights_only
            return super()._publish_model(runner, ckpt_path)
