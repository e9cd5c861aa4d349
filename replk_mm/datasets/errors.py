"""Errors the checked datasets raise, free of mmseg/mmdet imports."""
from ..errors import UserError


class DatasetNotFoundError(FileNotFoundError, UserError):
    """A dataset's files are missing or hold no samples; the message says where."""


def dataset_not_found(dataset, problem, demo_tool, extra_options=()):
    """The error for ``dataset`` (a BaseDataset) whose files are not where its config says."""
    splits = ' '.join([f'{split}_dataloader.dataset.data_root=DIR'
                       for split in ('train', 'val', 'test')] + list(extra_options))
    return DatasetNotFoundError(
        f'{type(dataset).__name__}: {problem} (data_root={dataset.data_root!r}). Put the dataset '
        'there as the dataset preparation guide of mmseg/mmdet describes, or point the config at '
        f'it with --cfg-options {splits}. Synthetic data in the same layout: {demo_tool}')


class LabelSizeError(ValueError, UserError):
    """A segmentation label map does not have the size of its image; names both files."""


class LabelValueError(ValueError, UserError):
    """A segmentation label map holds ids outside the dataset's classes; names the file, the
    ids, their share of pixels and the fix."""


class MissingImagesError(FileNotFoundError, UserError):
    """Image files an annotation file lists are missing; names them and how to skip the check."""
