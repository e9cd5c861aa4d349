"""A small synthetic instance-segmentation dataset in the real COCO layout.

    <root>/annotations/instances_train2017.json
    <root>/annotations/instances_val2017.json
    <root>/train2017/000000000001.jpg ...
    <root>/val2017/...

Each image holds a few non-overlapping filled shapes (circle, square, triangle) on a textured
background. The class is the *shape*: colours, sizes, rotations and the background are random,
so a detector has to learn geometry, not colour. Every object is annotated with a polygon (the
exact polygon it was drawn from), its area and its box, so mmdet's ``CocoDataset`` reads it and
``CocoMetric`` evaluates bbox and segm AP on it like on COCO.

Only numpy and Pillow are used for drawing.
"""
import inspect
import json
import math
import os
import os.path as osp

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ('circle', 'square', 'triangle')
SPLITS = ('train2017', 'val2017')


def _regular_polygon(num_vertices, cx, cy, radius, angle):
    """Vertices (N, 2) of a regular polygon, float pixel coordinates."""
    theta = angle + np.arange(num_vertices) * 2 * math.pi / num_vertices
    return np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], axis=1)


def shape_polygon(shape, cx, cy, size, angle):
    """Polygon of a shape whose bounding circle has diameter ~``size``."""
    if shape == 'circle':
        return _regular_polygon(32, cx, cy, size / 2, 0.0)
    if shape == 'square':
        return _regular_polygon(4, cx, cy, size / 2, angle)
    if shape == 'triangle':
        return _regular_polygon(3, cx, cy, size / 2, angle)
    raise ValueError(f'unknown shape {shape!r}; known shapes are {CLASSES}')


def polygon_area(points):
    """Shoelace area of a simple polygon given as (N, 2) points."""
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _background(rng, height, width):
    """Smooth random colour field plus mild noise: texture, but no class information."""
    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
    image = np.asarray(image).astype(np.int16)
    image = image + rng.integers(-12, 13, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _boxes_overlap(box, boxes, margin):
    x1, y1, x2, y2 = box
    return any(x1 < b[2] + margin and b[0] < x2 + margin and y1 < b[3] + margin
               and b[1] < y2 + margin for b in boxes)


def make_image(rng, height, width, max_objects, min_size, max_size, classes=CLASSES):
    """One image (H, W, 3) uint8 and its objects as ``(class index, polygon)``."""
    image = Image.fromarray(_background(rng, height, width))
    draw = ImageDraw.Draw(image)
    objects, boxes = [], []
    wanted = int(rng.integers(1, max_objects + 1))
    for _ in range(wanted * 20):  # rejection sampling of non-overlapping placements
        if len(objects) == wanted:
            break
        label = int(rng.integers(len(classes)))
        size = float(rng.uniform(min_size, max_size))
        cx = float(rng.uniform(size / 2 + 1, width - size / 2 - 1))
        cy = float(rng.uniform(size / 2 + 1, height - size / 2 - 1))
        polygon = shape_polygon(classes[label], cx, cy, size, float(rng.uniform(0, 2 * math.pi)))
        box = (*polygon.min(axis=0), *polygon.max(axis=0))
        if _boxes_overlap(box, boxes, margin=2):
            continue
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.polygon([tuple(p) for p in polygon], fill=colour)
        objects.append((label, polygon))
        boxes.append(box)
    image = image.filter(ImageFilter.GaussianBlur(radius=0.6))  # soften aliased edges
    return np.asarray(image), objects


def _annotation(ann_id, image_id, category_id, polygon):
    x1, y1 = polygon.min(axis=0)
    x2, y2 = polygon.max(axis=0)
    return dict(id=ann_id, image_id=image_id, category_id=category_id, iscrowd=0,
                segmentation=[[round(float(v), 2) for v in polygon.reshape(-1)]],
                area=round(polygon_area(polygon), 2),
                bbox=[round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2),
                      round(float(y2 - y1), 2)])


def _check_args(num_images, image_size, max_objects, min_size, max_size):
    for split, n in num_images.items():
        if not isinstance(n, int) or n < 1:
            raise ValueError(f'number of {split} images must be a positive int, got {n!r}')
    height, width = image_size
    if not (isinstance(height, int) and isinstance(width, int)) or min(height, width) < 32:
        raise ValueError(f'image_size must be (height, width) ints >= 32, got {image_size!r}')
    if not isinstance(max_objects, int) or max_objects < 1:
        raise ValueError(f'max_objects must be a positive int, got {max_objects!r}')
    if not 4 <= min_size <= max_size <= min(height, width) - 4:
        raise ValueError(f'need 4 <= min_size <= max_size <= min(image_size) - 4, got '
                         f'min_size={min_size}, max_size={max_size}, image_size={image_size}')


def make_demo_coco(root, num_train=200, num_val=50, image_size=(160, 160), max_objects=4,
                   min_size=24, max_size=64, seed=0, classes=CLASSES):
    """Write the dataset under ``root`` and return a summary dict.

    Images are numbered across splits (like COCO, an id identifies an image in either split).
    The same arguments always give the same files.
    """
    num_images = {'train2017': num_train, 'val2017': num_val}
    _check_args(num_images, tuple(image_size), max_objects, min_size, max_size)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or not classes:
        raise ValueError(f'classes must be a non-empty subset of {CLASSES}, got {classes!r}')
    height, width = image_size
    args = dict(num_train=num_train, num_val=num_val, image_size=[height, width],
                max_objects=max_objects, min_size=min_size, max_size=max_size, seed=seed,
                classes=list(classes))
    rng = np.random.default_rng(seed)
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(classes)]
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    summary = dict(root=osp.abspath(root), classes=tuple(classes))
    image_id = ann_id = 0
    for split in SPLITS:
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for _ in range(num_images[split]):
            image_id += 1
            pixels, objects = make_image(rng, height, width, max_objects, min_size, max_size,
                                         classes)
            file_name = f'{image_id:012d}.jpg'
            Image.fromarray(pixels).save(osp.join(root, split, file_name), quality=95)
            images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
            for label, polygon in objects:
                ann_id += 1
                annotations.append(_annotation(ann_id, image_id, label + 1, polygon))
        coco = dict(info=dict(description='replk_mm synthetic shapes (COCO layout)',
                              generator_args=args),
                    licenses=[], images=images, annotations=annotations,
                    categories=categories)
        ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
        with open(ann_file, 'w') as f:
            json.dump(coco, f)
        summary[split] = dict(images=len(images), instances=len(annotations),
                              ann_file=ann_file)
    return summary


def is_demo_coco(root, **generator_args):
    """Whether ``root`` holds a complete generated dataset made with these arguments.

    Arguments not given take ``make_demo_coco``'s defaults, so a dataset made with other
    settings is not mistaken for the requested one.
    """
    expected = {name: param.default for name, param in
                inspect.signature(make_demo_coco).parameters.items() if name != 'root'}
    unknown = set(generator_args) - set(expected)
    if unknown:
        raise TypeError(f'unknown generator arguments {sorted(unknown)}')
    expected.update(generator_args)
    expected['image_size'] = list(expected['image_size'])
    expected['classes'] = list(expected['classes'])
    for split in SPLITS:
        ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
        if not osp.isfile(ann_file):
            return False
        try:
            with open(ann_file) as f:
                coco = json.load(f)
        except ValueError:  # truncated by an interrupted run
            return False
        if coco.get('info', {}).get('generator_args') != expected:
            return False
        if not all(osp.isfile(osp.join(root, split, im['file_name'])) for im in coco['images']):
            return False
    return True
