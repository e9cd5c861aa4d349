"""Writers for the real ADE20K and Cityscapes semantic-segmentation layouts.

ADE20K (``ADEChallengeData2016``)::

    <root>/images/{training,validation}/ADE_{train,val}_00000001.jpg
    <root>/annotations/{training,validation}/ADE_{train,val}_00000001.png

    uint8 label = ADE20K class index + 1; 0 = "other" (ignored with ``reduce_zero_label``).
    wall (1) = the textured background, box (42) = square, tent (115) = triangle,
    ball (120) = circle; thick random strokes under the shapes are labelled 0 (unlabelled
    clutter, like ADE20K's "other" pixels).

Cityscapes::

    <root>/leftImg8bit/{train,val}/<city>/<city>_000000_000019_leftImg8bit.png
    <root>/gtFine/{train,val}/<city>/<city>_000000_000019_gtFine_labelTrainIds.png

    uint8 train id; 255 = void (ignored). sky (10) above a random horizon, road (0) below it,
    building (2) = square, vegetation (8) = triangle, traffic sign (7) = circle; random strokes
    are void.

Because the label values are the real datasets' ids, a config selects the demo's classes with
``metainfo=dict(classes=ADE20K_DEMO_CLASSES)`` and mmseg's own ``ADE20KDataset`` /
``CityscapesDataset`` label map does the rest.
"""
import os
import os.path as osp

import numpy as np
from PIL import Image

from .record import (
    SplitInfo,
    check_count,
    check_image_size,
    check_root,
    check_side,
    dataset_from_record,
    prepare_root,
    write_record,
)
from .scene import SceneStyle, render_scene, textured_background

# ADE20K: class name -> label value in the annotation png (index in ADE20K's 150 classes + 1).
ADE20K_LABELS = {'wall': 1, 'box': 42, 'tent': 115, 'ball': 120}
ADE20K_SHAPES = {'square': 'box', 'triangle': 'tent', 'circle': 'ball'}
ADE20K_DEMO_CLASSES = ('wall', 'box', 'tent', 'ball')
ADE20K_IGNORE = 0

# Cityscapes: class name -> train id.
CITYSCAPES_LABELS = {'road': 0, 'building': 2, 'traffic sign': 7, 'vegetation': 8, 'sky': 10}
CITYSCAPES_SHAPES = {'square': 'building', 'triangle': 'vegetation', 'circle': 'traffic sign'}
CITYSCAPES_DEMO_CLASSES = ('road', 'building', 'traffic sign', 'vegetation', 'sky')
CITYSCAPES_IGNORE = 255
CITYSCAPES_CITIES = {'train': ('synthtown', 'synthville'), 'val': ('synthburg', )}


SCENES = ('shapes', 'context')


def seg_style(max_objects, scene='shapes'):
    """The look of a segmentation scene.

    ``'shapes'``: shapes of 0.2-0.4 x the short side, upright +-15 degrees, up to two ignored
    strokes; a shape is recognisable from local evidence (a corner, an edge's slant) that a
    3x3 network already sees.

    ``'context'``: each of the three shapes once per image (``max_objects`` is not used), of
    0.28-0.36 x the short side, at any rotation, no strokes. Every class has the same interior
    (a flat random colour with grain), no edge direction tells the classes apart and every
    image holds every class, so most pixels of an object can only be classified from its
    outline, tens of pixels away: the kernel-size demo's data, made to need context.
    """
    if scene not in SCENES:
        raise ValueError(f'unknown scene {scene!r}; choose from {SCENES}')
    if scene == 'context':
        return SceneStyle(max_shapes=max_objects, size_range=(0.28, 0.36), absolute=False,
                          max_tilt=180.0, background_grain=40.0, shape_grain=8.0,
                          max_strokes=0, margin=4.0, cue_width=4.0,
                          each_shape_once=True)
    return SceneStyle(max_shapes=max_objects, size_range=(0.2, 0.4), absolute=False,
                      max_tilt=15.0, background_grain=40.0, shape_grain=8.0, max_strokes=2)


def _label_map(scene, label, shape_labels, ignore):
    label[scene.clutter] = ignore
    for placed in scene.shapes:
        label[placed.mask] = shape_labels[placed.shape]
    return label


def make_ade20k_demo(root, num_train=300, num_val=50, min_side=128, max_side=192,
                     max_objects=4, seed=0, scene='shapes', overwrite=False):
    """Write an ADE20K-layout dataset to ``root``, or reuse the one already there.

    Image sides are drawn uniformly from [min_side, max_side]; ``scene`` picks the look
    (:func:`seg_style`: ``'shapes'`` or ``'context'``). Returns a ``DemoDataset``.
    """
    root = check_root(root)
    check_count('num_train', num_train)
    check_count('num_val', num_val)
    check_count('max_objects', max_objects)
    check_side('min_side', min_side)
    check_side('max_side', max_side)
    if max_side < min_side:
        raise ValueError(f'max_side ({max_side}) < min_side ({min_side})')
    style = seg_style(max_objects, scene)
    args = dict(num_train=num_train, num_val=num_val, min_side=min_side, max_side=max_side,
                max_objects=max_objects, seed=seed, scene=scene)
    data_dirs = ['images', 'annotations']
    record = prepare_root(root, 'ade20k', args, data_dirs, overwrite)
    if record is not None:
        return dataset_from_record(root, record, reused=True)
    shape_labels = {shape: ADE20K_LABELS[name] for shape, name in ADE20K_SHAPES.items()}
    splits = []
    for index, (split, prefix, count) in enumerate((('training', 'ADE_train', num_train),
                                                    ('validation', 'ADE_val', num_val))):
        img_dir, ann_dir = osp.join('images', split), osp.join('annotations', split)
        os.makedirs(osp.join(root, img_dir))
        os.makedirs(osp.join(root, ann_dir))
        rng = np.random.default_rng([seed, index])  # splits independent of each other's size
        objects = 0
        for i in range(1, count + 1):
            height, width = (int(v) for v in rng.integers(min_side, max_side + 1, 2))
            scene = render_scene(rng, textured_background(rng, height, width,
                                                          style.background_grain), style)
            label = _label_map(scene, np.full((height, width), ADE20K_LABELS['wall'], np.uint8),
                               shape_labels, ADE20K_IGNORE)
            name = f'{prefix}_{i:08d}'
            Image.fromarray(scene.image).save(osp.join(root, img_dir, name + '.jpg'),
                                              quality=95)
            Image.fromarray(label).save(osp.join(root, ann_dir, name + '.png'))
            objects += len(scene.shapes)
        splits.append(SplitInfo(split, count, objects, img_dir, ann_dir))
    record = write_record(root, 'ade20k', args, data_dirs, ADE20K_DEMO_CLASSES, splits,
                          extra=dict(label_values=ADE20K_LABELS, shapes=ADE20K_SHAPES,
                                     ignore_label=ADE20K_IGNORE))
    return dataset_from_record(root, record, reused=False)


def make_cityscapes_demo(root, num_train=200, num_val=30, image_size=(128, 256),
                         max_objects=4, seed=0, overwrite=False):
    """Write a Cityscapes-layout dataset (``gtFine`` train ids) to ``root``, or reuse the one
    already there. ``image_size`` is (height, width). Returns a ``DemoDataset``."""
    root = check_root(root)
    check_count('num_train', num_train)
    check_count('num_val', num_val)
    check_count('max_objects', max_objects)
    height, width = check_image_size(image_size)
    args = dict(num_train=num_train, num_val=num_val, image_size=[height, width],
                max_objects=max_objects, seed=seed)
    data_dirs = ['leftImg8bit', 'gtFine']
    record = prepare_root(root, 'cityscapes', args, data_dirs, overwrite)
    if record is not None:
        return dataset_from_record(root, record, reused=True)
    style = seg_style(max_objects)
    shape_labels = {shape: CITYSCAPES_LABELS[name] for shape, name in CITYSCAPES_SHAPES.items()}
    splits = []
    for index, (split, count) in enumerate((('train', num_train), ('val', num_val))):
        rng = np.random.default_rng([seed, index])
        cities = CITYSCAPES_CITIES[split]
        img_dir, ann_dir = osp.join('leftImg8bit', split), osp.join('gtFine', split)
        objects = 0
        for i in range(count):
            city = cities[i % len(cities)]
            os.makedirs(osp.join(root, img_dir, city), exist_ok=True)
            os.makedirs(osp.join(root, ann_dir, city), exist_ok=True)
            # Smooth sky above a random horizon, grainy road below; shapes drawn over both.
            horizon = int(rng.uniform(0.3, 0.6) * height)
            background = textured_background(rng, height, width, style.background_grain)
            background[:horizon] = textured_background(rng, horizon, width, grain=4.0)
            label = np.full((height, width), CITYSCAPES_LABELS['road'], np.uint8)
            label[:horizon] = CITYSCAPES_LABELS['sky']
            scene = render_scene(rng, background, style)
            label = _label_map(scene, label, shape_labels, CITYSCAPES_IGNORE)
            stem = f'{city}_{i // len(cities):06d}_000019'
            Image.fromarray(scene.image).save(
                osp.join(root, img_dir, city, stem + '_leftImg8bit.png'))
            Image.fromarray(label).save(
                osp.join(root, ann_dir, city, stem + '_gtFine_labelTrainIds.png'))
            objects += len(scene.shapes)
        splits.append(SplitInfo(split, count, objects, img_dir, ann_dir))
    record = write_record(root, 'cityscapes', args, data_dirs, CITYSCAPES_DEMO_CLASSES, splits,
                          extra=dict(label_values=CITYSCAPES_LABELS, shapes=CITYSCAPES_SHAPES,
                                     ignore_label=CITYSCAPES_IGNORE))
    return dataset_from_record(root, record, reused=False)

