"""Keeping the config tests fast on a shared 2-core CPU.

* :func:`cached_package_metafiles`: for every ``mmpretrain::`` / ``mmseg::`` base, mmengine
  0.10.7 first looks the name up among the package's released configs, reading the package's
  whole model index each time (``mmengine.config.utils._get_cfg_metainfo``: 255 metafiles for
  mmpretrain, 155 for mmseg, about a second). Inside this context those YAML files are read
  once; parsing is otherwise unchanged.
* :func:`one_torch_thread`: tiny models run hundreds of small ops; on a busy 2-core machine
  two OpenMP threads wait on each other far longer than the ops take (a tiny RepLKNet step:
  2-9 s with two threads, 0.2 s with one). Results do not depend on it.
"""
import contextlib
import functools
import os.path as osp

import mmengine.config.utils as config_utils
import torch


@contextlib.contextmanager
def cached_package_metafiles():
    original = config_utils.load

    @functools.lru_cache(maxsize=None)
    def cached(path):
        return original(path)

    def load(file, *args, **kwargs):
        if not args and not kwargs and isinstance(file, str) and \
                osp.sep + '.mim' + osp.sep in file and file.endswith(('.yml', '.yaml')):
            return cached(file)
        return original(file, *args, **kwargs)

    config_utils.load = load
    try:
        yield
    finally:
        config_utils.load = original


@contextlib.contextmanager
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
