"""Writer for the real COCO instance-segmentation layout::

    <root>/annotations/instances_{train,val}2017.json
    <root>/{train,val}2017/000000000001.jpg ...

Categories are the shapes (``circle``, ``square``, ``triangle``, ids 1, 2, 3). Every object is
annotated with the polygon it was drawn from, its area and its box, so mmdet's ``CocoDataset``
reads it and ``CocoMetric`` scores bbox and segm AP on it as on COCO. Image ids run across
both splits (like COCO's, an id names one image).
"""
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

from .record import (
    SplitInfo,
    check_count,
    check_image_size,
    check_root,
    dataset_from_record,
    prepare_root,
    write_record,
)
from .scene import (
    EQUAL_AREA_RADIUS,
    SHAPES,
    SceneStyle,
    polygon_area,
    render_scene,
    textured_background,
)

COCO_CLASSES = SHAPES
COCO_SPLITS = ('train2017', 'val2017')
_DESCRIPTION = 'replk_mm synthetic shapes (COCO layout)'


def coco_style(max_objects, object_sizes):
    """Any rotation, no clutter, smooth background, softened edges."""
    return SceneStyle(max_shapes=max_objects, size_range=tuple(object_sizes), absolute=True,
                      max_tilt=180.0, background_grain=7.0, shape_grain=0.0, max_strokes=0,
                      blur=0.6)


def _annotation(ann_id, image_id, category_id, polygon):
    x1, y1 = polygon.min(axis=0)
    x2, y2 = polygon.max(axis=0)
    return dict(id=ann_id, image_id=image_id, category_id=category_id, iscrowd=0,
                segmentation=[[round(float(v), 2) for v in polygon.reshape(-1)]],
                area=round(polygon_area(polygon), 2),
                bbox=[round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2),
                      round(float(y2 - y1), 2)])


def _check_objects(classes, object_sizes, image_size):
    if not classes or len(set(classes)) != len(classes) or \
            any(c not in COCO_CLASSES for c in classes):
        raise ValueError(f'classes must be a non-empty subset of {COCO_CLASSES} without '
                         f'repeats, got {classes!r}')
    if not isinstance(object_sizes, (tuple, list)) or len(object_sizes) != 2:
        raise ValueError(f'object_sizes must be (smallest, largest) in pixels, got '
                         f'{object_sizes!r}')
    low, high = object_sizes
    widest = max(classes, key=EQUAL_AREA_RADIUS.get)
    span = high * EQUAL_AREA_RADIUS[widest]
    if not 4 <= low <= high or span > min(image_size) - 4:
        raise ValueError(
            f'object_sizes must satisfy 4 <= smallest <= largest, and the largest {widest} '
            f'({high} x {EQUAL_AREA_RADIUS[widest]:.2f} = {span:.0f} pixels across) must fit '
            f'the {image_size[0]}x{image_size[1]} image with 2 pixels to spare on each side; '
            f'got {tuple(object_sizes)}')


def make_coco_demo(root, num_train=200, num_val=50, image_size=(160, 160), max_objects=4,
                   object_sizes=(24, 64), classes=COCO_CLASSES, seed=0, overwrite=False):
    """Write a COCO-layout instance-segmentation dataset to ``root``, or reuse the one
    already there.

    Args:
        image_size (tuple[int, int]): (height, width) of every image.
        max_objects (int): 1 to this many objects per image.
        object_sizes (tuple[float, float]): object size range in pixels, as the diameter of
            the circle of the same area (all shapes cover the same area on average).
        classes (Sequence[str]): the shapes to draw, a subset of ``COCO_CLASSES``; category ids
            follow this order.
    Returns:
        DemoDataset
    """
    root = check_root(root)
    check_count('num_train', num_train)
    check_count('num_val', num_val)
    check_count('max_objects', max_objects)
    height, width = check_image_size(image_size)
    classes = tuple(classes)
    _check_objects(classes, object_sizes, (height, width))
    args = dict(num_train=num_train, num_val=num_val, image_size=[height, width],
                max_objects=max_objects, object_sizes=list(object_sizes),
                classes=list(classes), seed=seed)
    data_dirs = ['annotations', *COCO_SPLITS]
    record = prepare_root(root, 'coco', args, data_dirs, overwrite)
    if record is not None:
        return dataset_from_record(root, record, reused=True)
    style = coco_style(max_objects, object_sizes)
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(classes)]
    os.makedirs(osp.join(root, 'annotations'))
    splits = []
    image_id = ann_id = 0
    for index, (split, count) in enumerate(zip(COCO_SPLITS, (num_train, num_val))):
        os.makedirs(osp.join(root, split))
        rng = np.random.default_rng([seed, index])  # splits independent of each other's size
        images, annotations = [], []
        for _ in range(count):
            image_id += 1
            scene = render_scene(rng, textured_background(rng, height, width,
                                                          style.background_grain),
                                 style, shapes=classes)
            file_name = f'{image_id:012d}.jpg'
            Image.fromarray(scene.image).save(osp.join(root, split, file_name), quality=95)
            images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
            for placed in scene.shapes:
                ann_id += 1
                annotations.append(_annotation(ann_id, image_id,
                                               classes.index(placed.shape) + 1, placed.polygon))
        ann_file = osp.join('annotations', f'instances_{split}.json')
        with open(osp.join(root, ann_file), 'w') as f:
            json.dump(dict(info=dict(description=_DESCRIPTION), licenses=[], images=images,
                           annotations=annotations, categories=categories), f)
        splits.append(SplitInfo(split, count, len(annotations), split, ann_file))
    record = write_record(root, 'coco', args, data_dirs, classes, splits)
    return dataset_from_record(root, record, reused=False)
