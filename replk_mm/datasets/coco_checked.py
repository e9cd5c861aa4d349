"""``CheckedCocoDataset``: mmdet's ``CocoDataset`` that validates every annotation first.

mmdet 3.3's ``CocoDataset`` silently drops some bad entries (a box with no overlap with the
image, a box under 1 pixel wide or high, ``area <= 0``) and crashes far from the cause on
others (an empty ``segmentation`` list raises ``KeyError: 'mask'`` inside ``LoadAnnotations``,
a missing ``area`` a bare ``KeyError``). This subclass checks each annotation against its image
and names the file, image and annotation id of every problem:

* malformed entries (missing or non-numeric fields, undeclared ``category_id``, an RLE whose
  size is not the image's) always raise a ``ValueError``;
* degenerate entries (box outside the image or under 1 px, ``area <= 0``, no usable polygon
  while the pipeline loads masks) raise by default (``invalid_annotations='error'``), or with
  ``invalid_annotations='skip'`` are dropped with one warning that lists them - mmdet's own
  behaviour for boxes, made visible. Full COCO needs ``'skip'``: it holds a few boxes under
  1 pixel.

A box that only partly leaves the image is valid: mmdet's ``Resize``/``RandomCrop`` clip it.

Image files the annotation file lists but that are missing are reported when the dataset is
built (``MissingImagesError``), not when the sampler first reaches one. The check lists each
image folder once (one ``os.listdir`` per folder, not one ``stat`` per image; its cost on
118k entries is in docs/robustness.md); ``check_image_files=False`` skips it, and remote
paths (``s3://``...) are not checked.

Use it with ``custom_imports = dict(imports=['replk_mm', 'replk_mm.datasets.coco_checked'])``
and ``dataset=dict(type='CheckedCocoDataset', ...)``.
"""
import math
import os
import os.path as osp

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .errors import MissingImagesError, dataset_not_found

MAX_LISTED = 10


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def pipeline_loads_masks(pipeline):
    """Whether a pipeline (config dicts or transform objects) loads instance masks."""
    for transform in pipeline or []:
        if isinstance(transform, dict):
            name = str(transform.get('type', '')).split('.')[-1]
            if name.startswith('LoadAnnotations') and transform.get('with_mask', False):
                return True
        elif type(transform).__name__.startswith('LoadAnnotations') and \
                getattr(transform, 'with_mask', False):
            return True
    return False


def missing_files(paths):
    """The paths of ``paths`` that do not exist, in their order; one listdir per folder (on a
    network file system one stat per image costs far more)."""
    present, missing = {}, []
    for path in paths:
        folder, _, name = path.rpartition(os.sep)
        names = present.get(folder)
        if names is None:
            try:
                names = present[folder] = set(os.listdir(folder or '.'))
            except (FileNotFoundError, NotADirectoryError):
                names = present[folder] = set()
        if name not in names:
            missing.append(path)
    return missing


class MalformedAnnotation(ValueError):
    pass


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """``CocoDataset`` with per-annotation validation (see the module docstring).

    Args:
        invalid_annotations (str): ``'error'`` (default) raises on degenerate annotations,
            ``'skip'`` drops them with a warning. Malformed annotations always raise.
        check_image_files (bool): report image files the annotation file lists but that do
            not exist when the dataset is built (default True); False skips the check.
        **kwargs: ``CocoDataset`` arguments.
    """
    MODES = ('error', 'skip')

    def __init__(self, *, invalid_annotations='error', check_image_files=True, **kwargs):
        if invalid_annotations not in self.MODES:
            raise ValueError(f'invalid_annotations must be one of {self.MODES}, '
                             f'got {invalid_annotations!r}')
        if not isinstance(check_image_files, bool):
            raise ValueError(f'check_image_files must be True or False, got '
                             f'{check_image_files!r}')
        self.invalid_annotations = invalid_annotations
        self.check_image_files = check_image_files
        self.needs_masks = pipeline_loads_masks(kwargs.get('pipeline'))
        super().__init__(**kwargs)

    def load_data_list(self):
        if '://' not in self.ann_file and not osp.isfile(self.ann_file):  # local files only
            raise dataset_not_found(
                self, f'annotation file {self.ann_file} does not exist',
                'tools/dataset_converters/make_demo_coco.py',
                # CocoMetric reads the ground truth itself
                [f'{split}_evaluator.ann_file=DIR/annotations/instances_val2017.json'
                 for split in ('val', 'test')])
        self._malformed, self._degenerate = [], []
        try:
            data_list = super().load_data_list()
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            # Raised by the COCO API / mmdet on a broken file layout (e.g. an annotation
            # without 'id' or 'image_id'); our own checks raise ValueError.
            raise ValueError(f'{self.ann_file}: not a valid COCO annotation file '
                             f'({type(exc).__name__}: {exc})') from exc
        if self._malformed:
            raise ValueError(self._report('malformed annotation', self._malformed))
        if self._degenerate:
            message = self._report('invalid annotation', self._degenerate)
            if self.invalid_annotations == 'error':
                raise ValueError(message + "\nFix them, or pass invalid_annotations='skip' "
                                 'to the dataset to drop them with a warning.')
            print_log(message + '\nThey are skipped (invalid_annotations=\'skip\').',
                      logger='current', level=30)
        if self.check_image_files:
            self._check_image_files(data_list)
        return data_list

    def _check_image_files(self, data_list):
        paths = [info['img_path'] for info in data_list
                 if info.get('img_path') and '://' not in str(info['img_path'])]
        missing = missing_files(paths)
        if not missing:
            return
        listed = '\n  '.join(missing[:MAX_LISTED])
        more = f'\n  ... and {len(missing) - MAX_LISTED} more' \
            if len(missing) > MAX_LISTED else ''
        raise MissingImagesError(
            f'{self.ann_file}: {len(missing)} of the {len(paths)} image files it lists do not '
            f"exist (data_prefix {self.data_prefix.get('img')!r}):\n  {listed}{more}\nPut the "
            'images there, point data_root / data_prefix.img at them, or pass '
            'check_image_files=False to the dataset to skip this check (e.g. --cfg-options '
            'train_dataloader.dataset.check_image_files=False).')

    def _report(self, kind, problems):
        listed = '\n  '.join(problems[:MAX_LISTED])
        more = f'\n  ... and {len(problems) - MAX_LISTED} more' \
            if len(problems) > MAX_LISTED else ''
        return f'{self.ann_file}: {len(problems)} {kind}(s):\n  {listed}{more}'

    def parse_data_info(self, raw_data_info):
        img = raw_data_info['raw_img_info']
        where = f"image id {img.get('img_id')}"
        for key in ('file_name', 'width', 'height'):
            if key not in img:
                self._malformed.append(f"{where}: image entry has no '{key}'")
                return dict(img_id=img.get('img_id'), instances=[])  # load_data_list raises
        if not (_is_number(img['width']) and _is_number(img['height'])
                and img['width'] > 0 and img['height'] > 0):
            self._malformed.append(f"{where} ({img['file_name']}): width/height must be "
                                   f"positive numbers, got {img['width']!r}x{img['height']!r}")
            return dict(img_id=img.get('img_id'), instances=[])
        kept = []
        for ann in raw_data_info['raw_ann_info']:
            if ann.get('ignore', False):  # mmdet skips these before looking at them
                kept.append(ann)
                continue
            prefix = f"annotation id {ann.get('id')} ({where}, {img['file_name']})"
            try:
                problem = self.check_annotation(ann, img)
            except MalformedAnnotation as exc:
                self._malformed.append(f'{prefix}: {exc}')
                continue
            if problem:
                self._degenerate.append(f'{prefix}: {problem}')
            else:
                kept.append(ann)
        return super().parse_data_info(dict(raw_data_info, raw_ann_info=kept))

    def check_annotation(self, ann, img):
        """None if ``ann`` is usable; a description if degenerate; raises if malformed."""
        width, height = img['width'], img['height']
        bbox = ann.get('bbox')
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4
                and all(_is_number(v) for v in bbox)):
            raise MalformedAnnotation(f"'bbox' must be 4 finite numbers [x, y, w, h], "
                                      f'got {bbox!r}')
        if ann.get('category_id') not in self.coco.cats:
            raise MalformedAnnotation(f"category_id {ann.get('category_id')!r} is not declared "
                                      f"in the file's 'categories' "
                                      f'({sorted(self.coco.cats)})')
        if not _is_number(ann.get('area')):
            raise MalformedAnnotation(f"'area' must be a finite number, got "
                                      f"{ann.get('area')!r}")
        usable_mask = self._check_segmentation(ann.get('segmentation'), width, height)

        x, y, w, h = bbox
        if w < 1 or h < 1:
            return f'box {list(bbox)} is under 1 pixel wide or high'
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            return f'box {list(bbox)} (x, y, w, h) lies outside the {width}x{height} image'
        if ann['area'] <= 0:
            return f"'area' is {ann['area']} (must be > 0)"
        if self.needs_masks and not usable_mask:
            return ("has no usable mask: 'segmentation' is missing or empty, or none of its "
                    'polygons has 3 or more points (the pipeline loads masks)')
        return None

    @staticmethod
    def _check_segmentation(segm, width, height):
        """Whether ``segm`` holds a usable mask; raises on a malformed one."""
        if segm is None:
            return False
        if isinstance(segm, dict):  # RLE
            if 'counts' not in segm or 'size' not in segm:
                raise MalformedAnnotation("an RLE 'segmentation' needs 'counts' and 'size'")
            if list(segm['size']) != [height, width]:
                raise MalformedAnnotation(f"RLE size {segm['size']} is not the image's "
                                          f'[height, width] = [{height}, {width}]')
            return True
        if not isinstance(segm, list):
            raise MalformedAnnotation(f"'segmentation' must be a list of polygons or an RLE "
                                      f'dict, got {type(segm).__name__}')
        usable = False
        for polygon in segm:
            if not isinstance(polygon, (list, tuple)) or \
                    not all(_is_number(v) for v in polygon):
                raise MalformedAnnotation('each polygon must be a flat list of numbers '
                                          f'[x1, y1, x2, y2, ...], got {polygon!r:.80}')
            # mmdet's LoadAnnotations ignores polygons that are odd-length or < 3 points.
            usable = usable or (len(polygon) % 2 == 0 and len(polygon) >= 6)
        return usable
