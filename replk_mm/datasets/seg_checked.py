"""mmseg's ``ADE20KDataset`` / ``CityscapesDataset`` with loading errors that name the files.

A dataset that is not where the config says (or is empty) fails before training starts with a
message naming the folder and how to point the config elsewhere, instead of an ``os.scandir``
traceback (or, for an empty folder, a sampler error about zero samples).

A corrupt annotation png makes mmseg 1.2.2 fail with ``cannot identify image file
<_io.BytesIO object at 0x...>`` deep inside a data-loader worker: nothing says which of 20k
files is broken. Here, when the pipeline fails on a sample whose error message does not already
name its files, the error is re-raised as ``SampleLoadError`` naming the image and annotation
paths (the original exception is chained).

A label map whose size differs from its image's is an error naming both files
(``LabelSizeError``), in the training and the test pipeline alike: mmseg would otherwise train
on labels rescaled or cropped out of line with the image (the geometric transforms resize both to
the same output size), and at test time fail inside ``IoUMetric`` without naming the file. The
check runs right after each top-level ``LoadAnnotations`` of the pipeline and compares with the
image's original size; its cost is a shape comparison.

A label id outside the dataset's classes (e.g. 200 in an ADE20K-layout map, not the ignore
index) is an error naming the file, the ids and their share of pixels (``LabelValueError``), in
training and evaluation alike: mmseg's ``IoUMetric`` silently skips such pixels (the scores
change, nothing is said) and training dies with ``IndexError: Target 199 is out of bounds``
naming neither file nor value. The same step checks the map ``LoadAnnotations`` has just
decoded, after ``reduce_zero_label`` and the dataset's ``label_map`` (no second read of the
file): valid are ``0 .. len(classes) - 1`` and ``ignore_index``. Its cost is one pass over the
map for the maximum, and two more when the map holds ids above the classes (the ignore index);
``tools/analysis/benchmark_label_check.py`` measures it per image (results in
``docs/robustness.md``: at most a few per cent of decoding the png).
``check_label_values=False`` on the dataset skips it.

Beyond these checks the subclasses change nothing.

Use with ``custom_imports = dict(imports=['replk_mm', 'replk_mm.datasets.seg_checked'])`` and
``dataset=dict(type='CheckedADE20KDataset', ...)`` (or ``CheckedCityscapesDataset``).
"""
import os.path as osp

import numpy as np
from mmseg.datasets import ADE20KDataset, CityscapesDataset
from mmseg.registry import DATASETS

from ..errors import UserError
from .errors import DatasetNotFoundError, LabelSizeError, LabelValueError, dataset_not_found

__all__ = ['CheckedADE20KDataset', 'CheckedCityscapesDataset', 'DatasetNotFoundError',
           'LabelSizeError', 'LabelValueError', 'SampleLoadError', 'SegMapCheck']

MAX_LISTED_IDS = 10

PATH_KEYS = ('img_path', 'seg_map_path')


class SampleLoadError(RuntimeError, UserError):
    """A sample could not be loaded; the message names its files."""


def invalid_label_ids(seg_map, num_classes, ignore_index):
    """``(ids, counts)`` of the values of ``seg_map`` that are neither a class id
    (``0 .. num_classes - 1``) nor ``ignore_index``; empty arrays when all are valid."""
    none = np.empty(0, seg_map.dtype), np.empty(0, np.int64)
    if seg_map.size == 0 or (seg_map.max() < num_classes and
                             (seg_map.dtype.kind == 'u' or seg_map.min() >= 0)):
        return none  # no ignore pixels: one pass
    if seg_map.dtype == np.uint8 and ignore_index == 255 and num_classes < 255:
        # (LoadAnnotations' dtype and mmseg's ignore index) the invalid ids are
        # num_classes..254: one wrapping subtraction and one comparison, 2-5x faster than
        # the general test below
        if not ((seg_map - np.uint8(num_classes)) < np.uint8(255 - num_classes)).any():
            return none
    bad = (seg_map >= num_classes) | (seg_map < 0)
    if ignore_index is not None:
        bad &= seg_map != ignore_index
    if not bad.any():
        return none
    return np.unique(seg_map[bad], return_counts=True)


class SegMapCheck:
    """Pipeline step after ``LoadAnnotations``: the label map must have its image's size and
    hold only class ids and ``ignore_index`` (unless ``num_classes`` is None)."""

    def __init__(self, num_classes=None, ignore_index=255, reduce_zero_label=False,
                 dataset='the dataset'):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reduce_zero_label = reduce_zero_label
        self.dataset = dataset

    def __call__(self, results):
        seg_map = results.get('gt_seg_map')
        if seg_map is None:
            return results
        shape = results.get('ori_shape')
        if shape is not None and tuple(seg_map.shape[:2]) != tuple(shape[:2]):
            raise LabelSizeError(
                f"label map {results.get('seg_map_path')} is {seg_map.shape[1]}x"
                f"{seg_map.shape[0]} (WxH) but its image {results.get('img_path')} is "
                f'{shape[1]}x{shape[0]}: a label map must have the size of its image (re-export '
                'the annotation, or fix the file pairing)')
        if self.num_classes is not None:
            ids, counts = invalid_label_ids(seg_map, self.num_classes, self.ignore_index)
            if len(ids):
                raise self._value_error(results, seg_map, ids, counts)
        return results

    def _value_error(self, results, seg_map, ids, counts):
        order = np.argsort(-counts)[:MAX_LISTED_IDS]
        listed = ', '.join(f'{ids[i]} ({counts[i] / seg_map.size:.2%})' for i in order)
        more = f' and {len(ids) - len(order)} more ids' if len(ids) > len(order) else ''
        share = counts.sum() / seg_map.size
        reduce = results.get('reduce_zero_label', self.reduce_zero_label)
        hint = ('reduce_zero_label=True maps file id 0 to the ignore index and id k to k-1: '
                'does this dataset number its classes from 0? Then set '
                'reduce_zero_label=False' if reduce else
                'with reduce_zero_label=False file ids are class ids: if id 0 means "other" in '
                'these files (the ADE20K layout), set reduce_zero_label=True')
        return LabelValueError(
            f"label map {results.get('seg_map_path')} holds ids outside the "
            f'{self.num_classes} classes of {self.dataset} (valid: 0-{self.num_classes - 1} '
            f'and ignore_index {self.ignore_index}, after reduce_zero_label={reduce}): '
            f'{listed}{more} (share of pixels); {share:.2%} of the pixels in all. mmseg would '
            'skip them in evaluation without a word and fail in training with "Target ... is '
            'out of bounds". Fix the data or the config: map those ids to ignore_index '
            f'({self.ignore_index}) in the label files or set the dataset\'s ignore_index to '
            'them; give the dataset (metainfo classes) and the model (decode_head.num_classes) '
            f'as many classes as the ids need; {hint}. To skip this check: '
            'check_label_values=False on the dataset')

    def __repr__(self):
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')


class NamedLoadErrorsMixin:

    def __init__(self, *args, check_label_values=True, **kwargs):
        super().__init__(*args, **kwargs)
        transforms = self.pipeline.transforms
        num_classes = len(self.metainfo['classes']) if check_label_values else None
        for index in reversed(range(len(transforms))):
            if type(transforms[index]).__name__.startswith('LoadAnnotations'):
                transforms.insert(index + 1, SegMapCheck(
                    num_classes, self.ignore_index,
                    getattr(transforms[index], 'reduce_zero_label', False), type(self).__name__))

    def load_data_list(self):
        img_dir = self.data_prefix.get('img_path', '')
        if not self.ann_file and not osp.isdir(img_dir):
            raise self._not_found(f'image folder {img_dir} does not exist')
        data_list = super().load_data_list()
        if not data_list:
            raise self._not_found(f'no images ending in {self.img_suffix!r} with annotations '
                                  f'ending in {self.seg_map_suffix!r} in {img_dir}')
        return data_list

    def _not_found(self, problem):
        return dataset_not_found(self, problem, 'tools/dataset_converters/make_demo_data.py')

    def prepare_data(self, idx):
        try:
            return super().prepare_data(idx)
        except Exception as exc:  # noqa: BLE001 - re-raised with the file names
            info = self.get_data_info(idx)
            paths = [str(info[k]) for k in PATH_KEYS if info.get(k)]
            if any(path in str(exc) for path in paths):
                raise  # already names its file (e.g. FileNotFoundError)
            files = ', '.join(f'{k} {info[k]}' for k in PATH_KEYS if info.get(k))
            raise SampleLoadError(f'could not load sample {idx} ({files}): '
                                  f'{type(exc).__name__}: {exc}') from exc


@DATASETS.register_module()
class CheckedADE20KDataset(NamedLoadErrorsMixin, ADE20KDataset):
    """``ADE20KDataset`` whose loading errors name the image and annotation files."""


@DATASETS.register_module()
class CheckedCityscapesDataset(NamedLoadErrorsMixin, CityscapesDataset):
    """``CityscapesDataset`` whose loading errors name the image and annotation files."""
