"""mmseg's ``ADE20KDataset`` / ``CityscapesDataset`` with loading errors that name the files.

A corrupt annotation png makes mmseg 1.2.2 fail with ``cannot identify image file
<_io.BytesIO object at 0x...>`` deep inside a data-loader worker: nothing says which of 20k
files is broken. These subclasses change nothing but that: when the pipeline fails on a sample
whose error message does not already name its files, the error is re-raised as
``SampleLoadError`` naming the image and annotation paths (the original exception is chained).

Use with ``custom_imports = dict(imports=['replk_mm', 'replk_mm.datasets.seg_checked'])`` and
``dataset=dict(type='CheckedADE20KDataset', ...)`` (or ``CheckedCityscapesDataset``).
"""
from mmseg.datasets import ADE20KDataset, CityscapesDataset
from mmseg.registry import DATASETS

PATH_KEYS = ('img_path', 'seg_map_path')


class SampleLoadError(RuntimeError):
    """A sample could not be loaded; the message names its files."""


class NamedLoadErrorsMixin:

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
