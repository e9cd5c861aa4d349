"""What every synthetic-dataset writer shares: argument checks, and the record that makes a
dataset folder recognisable ("already generated with these arguments: reuse it") and protects
folders that are not ours.

The record (``replk_demo_meta.json`` in the dataset root) is written last, so its presence
means the dataset is complete. A folder without a record that is not empty is never written to.
"""
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass
from typing import Dict, Tuple

RECORD_FILE = 'replk_demo_meta.json'
GENERATOR = 'replk_mm.datasets.synthetic'
# Bumped whenever the same arguments would give different files, so that older datasets are
# regenerated instead of reused.
VERSION = 3


@dataclass(frozen=True)
class SplitInfo:
    """One written split: its name, counts, and its image folder and annotation folder or file
    (both relative to the dataset root)."""
    name: str
    images: int
    objects: int
    image_dir: str
    annotations: str


@dataclass(frozen=True)
class DemoDataset:
    """A synthetic dataset on disk, as a writer returns it.

    Args:
        layout (str): 'ade20k', 'cityscapes' or 'coco'.
        root (str): the dataset root (absolute).
        classes (tuple[str]): the class names a config selects, in order.
        splits (tuple[SplitInfo]): training split first.
        args (dict): the generator arguments (what decides reuse).
        reused (bool): True if the files were already there and left untouched.
    """
    layout: str
    root: str
    classes: Tuple[str, ...]
    splits: Tuple[SplitInfo, ...]
    args: Dict
    reused: bool

    def split(self, name):
        for info in self.splits:
            if info.name == name:
                return info
        raise KeyError(f'{self.layout} dataset has no split {name!r}; it has '
                       f'{[s.name for s in self.splits]}')


def check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive int, got {value!r}')


def check_side(name, value, minimum=32):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f'{name} must be an int >= {minimum} (pixels), got {value!r}')


def check_image_size(image_size):
    """(height, width) as ints >= 32."""
    if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
        raise ValueError(f'image_size must be (height, width), got {image_size!r}')
    check_side('image height', image_size[0])
    check_side('image width', image_size[1])
    return int(image_size[0]), int(image_size[1])


def check_root(root):
    if not isinstance(root, (str, os.PathLike)) or not str(root):
        raise ValueError(f'root must be a directory path, got {root!r}')
    return osp.abspath(str(root))


def json_args(args):
    """``args`` as they read back from the record (tuples become lists)."""
    return json.loads(json.dumps(args))


def read_record(root):
    """The generator's record in ``root`` (dict), or None if ``root`` holds no complete
    synthetic dataset."""
    path = osp.join(root, RECORD_FILE)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
    except ValueError:  # cut short by an interrupted run: not a complete dataset
        return None
    return record if isinstance(record, dict) else None


def _own_dirs(record, data_dirs):
    """Top-level folders an earlier generator run wrote (never '..' or absolute paths)."""
    dirs = record.get('data_dirs') if isinstance(record.get('data_dirs'), list) else []
    return [d for d in set(dirs) | set(data_dirs)
            if isinstance(d, str) and d and osp.basename(d) == d and d not in ('.', '..')]


def prepare_root(root, layout, args, data_dirs, overwrite=False):
    """Get ``root`` ready for a dataset of ``layout`` made with ``args``.

    Returns the existing record if the same dataset is already there (and ``overwrite`` is
    False): the caller reuses it. Otherwise clears what an earlier run of a generator wrote
    there (its record and data folders) and returns None. Refuses a non-empty folder that no
    generator made: the files in it are someone else's.

    Args:
        data_dirs (list[str]): the top-level folders this layout writes.
    """
    record = read_record(root)
    wanted = dict(generator=GENERATOR, version=VERSION, layout=layout, args=json_args(args))
    if record is not None and not overwrite and \
            {k: record.get(k) for k in wanted} == wanted:
        return record
    if record is None and osp.isdir(root) and os.listdir(root):
        raise FileExistsError(f'{root} exists and is not a replk_mm demo dataset (no '
                              f'{RECORD_FILE}); choose an empty or new directory')
    if osp.isfile(osp.join(root, RECORD_FILE)):
        os.remove(osp.join(root, RECORD_FILE))  # invalid until the new dataset is complete
    # An earlier run's files would otherwise mix with the new ones (e.g. more images).
    for name in _own_dirs(record or {}, data_dirs):
        shutil.rmtree(osp.join(root, name), ignore_errors=True)
    os.makedirs(root, exist_ok=True)
    return None


def write_record(root, layout, args, data_dirs, classes, splits, extra=None):
    """Write the record (last: its presence means the dataset is complete)."""
    record = dict(generator=GENERATOR, version=VERSION, layout=layout, args=json_args(args),
                  data_dirs=sorted(data_dirs), classes=list(classes),
                  splits=[vars(s) for s in splits], **(extra or {}))
    with open(osp.join(root, RECORD_FILE), 'w') as f:
        json.dump(record, f, indent=2)
    return record


def dataset_from_record(root, record, reused):
    return DemoDataset(layout=record['layout'], root=root, classes=tuple(record['classes']),
                       splits=tuple(SplitInfo(**s) for s in record['splits']),
                       args=record['args'], reused=reused)
