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
image's original size; its cost is a shape comparison. Beyond these checks the subclasses change
nothing.

Use with ``custom_imports = dict(imports=['replk_mm', 'replk_mm.datasets.seg_checked'])`` and
``dataset=dict(type='CheckedADE20KDataset', ...)`` (or ``CheckedCityscapesDataset``).
"""
import os.path as osp

from mmseg.datasets import ADE20KDataset, CityscapesDataset
from mmseg.registry import DATASETS

from .errors import DatasetNotFoundError, LabelSizeError, dataset_not_found

__all__ = ['CheckedADE20KDataset', 'CheckedCityscapesDataset', 'DatasetNotFoundError',
           'LabelSizeError', 'SampleLoadError', 'SegMapSizeCheck']

PATH_KEYS = ('img_path', 'seg_map_path')


class SampleLoadError(RuntimeError):
    """A sample could not be loaded; the message names its files."""


class SegMapSizeCheck:
    """Pipeline step after ``LoadAnnotations``: the label map must have its image's size."""

    def __call__(self, results):
        seg_map = results.get('gt_seg_map')
        shape = results.get('ori_shape')
        if seg_map is not None and shape is not None and \
                tuple(seg_map.shape[:2]) != tuple(shape[:2]):
            raise LabelSizeError(
                f"label map {results.get('seg_map_path')} is {seg_map.shape[1]}x"
                f"{seg_map.shape[0]} (WxH) but its image {results.get('img_path')} is "
                f'{shape[1]}x{shape[0]}: a label map must have the size of its image (re-export '
                'the annotation, or fix the file pairing)')
        return results

    def __repr__(self):
        return f'{type(self).__name__}()'


class NamedLoadErrorsMixin:

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        transforms = self.pipeline.transforms
        for index in reversed(range(len(transforms))):
            if type(transforms[index]).__name__.startswith('LoadAnnotations'):
                transforms.insert(index + 1, SegMapSizeCheck())

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
