"""mmseg's ``ADE20KDataset`` / ``CityscapesDataset`` with loading errors that name the files.

A dataset that is not where the config says (or is empty) fails before training starts with a
message naming the folder and how to point the config elsewhere, instead of an ``os.scandir``
traceback (or, for an empty folder, a sampler error about zero samples).

A corrupt annotation png makes mmseg 1.2.2 fail with ``cannot identify image file
<_io.BytesIO object at 0x...>`` deep inside a data-loader worker: nothing says which of 20k
files is broken. Here, when the pipeline fails on a sample whose error message does not already
name its files, the error is re-raised as ``SampleLoadError`` naming the image and annotation
paths (the original exception is chained). Beyond these two checks the subclasses change
nothing.

Use with ``custom_imports = dict(imports=['replk_mm', 'replk_mm.datasets.seg_checked'])`` and
``dataset=dict(type='CheckedADE20KDataset', ...)`` (or ``CheckedCityscapesDataset``).
"""
import os.path as osp

from mmseg.datasets import ADE20KDataset, CityscapesDataset
from mmseg.registry import DATASETS

from .errors import DatasetNotFoundError, dataset_not_found

__all__ = ['CheckedADE20KDataset', 'CheckedCityscapesDataset', 'DatasetNotFoundError',
           'SampleLoadError']

PATH_KEYS = ('img_path', 'seg_map_path')


class SampleLoadError(RuntimeError):
    """A sample could not be loaded; the message names its files."""


class NamedLoadErrorsMixin:

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
