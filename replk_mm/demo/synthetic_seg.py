"""Small synthetic semantic-segmentation datasets in the real ADE20K and Cityscapes layouts.

Nothing has to be downloaded to see a RepLKNet + UperNet model train: these generators write a
few hundred images whose classes are *shapes*: one to four whole, non-overlapping circles,
squares and triangles (upright +-15 degrees, the same area on average) of random flat colour,
size and position on a grainy background of random blotchy colours. Colour says nothing about
the class, so a model has to learn geometry. The files follow the real layouts and label
conventions, so mmseg's own ``ADE20KDataset`` / ``CityscapesDataset`` and pipelines read them
unchanged:

ADE20K (``ADEChallengeData2016``)::

    <root>/images/{training,validation}/ADE_{train,val}_00000001.jpg
    <root>/annotations/{training,validation}/ADE_{train,val}_00000001.png

    uint8 label = ADE20K class index + 1; 0 = "other" (ignored, ``reduce_zero_label``).
    wall (1) textured background, box (42) = square, tent (115) = triangle, ball (120) = circle;
    thick random strokes under the shapes are labelled 0 (unlabelled clutter, like ADE20K's
    "other" pixels).

Cityscapes::

    <root>/leftImg8bit/{train,val}/<city>/<city>_000000_000019_leftImg8bit.png
    <root>/gtFine/{train,val}/<city>/<city>_000000_000019_gtFine_labelTrainIds.png

    uint8 train id; 255 = void (ignored). sky (10) above a random horizon, road (0) below it,
    building (2) = square, vegetation (8) = triangle, traffic sign (7) = circle; random strokes
    are void.

Because the label values are the real datasets' ids, a config selects the demo's classes with
``metainfo=dict(classes=ADE20K_DEMO_CLASSES)`` and mmseg's label map does the rest.
"""
import json
import math
import os
import os.path as osp

import numpy as np
from PIL import Image, ImageDraw

GENERATOR_VERSION = 2
META_FILE = 'replk_demo_meta.json'

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


# ----------------------------------------------------------------------------------- drawing
def _smooth_noise(rng, height, width, cells, channels=3):
    """Low-frequency random field in [0, 1]: a coarse grid upsampled bilinearly."""
    coarse = rng.random((cells + 1, cells + 1, channels)).astype(np.float32)
    ys = np.linspace(0, cells, height, dtype=np.float32)
    xs = np.linspace(0, cells, width, dtype=np.float32)
    y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def textured_background(rng, height, width, grain=40.0):
    """Random blotchy colours plus strong per-pixel grain, float32 (H, W, 3) in 0..255."""
    base = _smooth_noise(rng, height, width, cells=int(rng.integers(2, 6))) * 255
    return base + rng.normal(0, grain, (height, width, 3)).astype(np.float32)


# Circumradius of a square / triangle with the area of a circle of radius 1: the classes
# cover the same number of pixels on average.
EQUAL_AREA_RADIUS = {'square': math.sqrt(math.pi / 2),
                     'triangle': math.sqrt(math.pi / (3 * math.sqrt(3) / 4))}
# Angle of the first vertex of an upright shape (image y points down).
UPRIGHT = {'square': math.pi / 4, 'triangle': -math.pi / 2}


def shape_mask(shape, height, width, cx, cy, size, tilt=0.0):
    """Boolean mask of a filled circle, or an upright square / triangle tilted by ``tilt``
    radians, with the area of a circle of diameter ``size``."""
    canvas = Image.new('L', (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    radius = size / 2
    if shape == 'circle':
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=1)
    elif shape in ('square', 'triangle'):
        sides = 4 if shape == 'square' else 3
        theta = UPRIGHT[shape] + tilt + np.arange(sides) * 2 * math.pi / sides
        radius *= EQUAL_AREA_RADIUS[shape]
        draw.polygon(list(zip(cx + radius * np.cos(theta), cy + radius * np.sin(theta))),
                     fill=1)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected 'circle', 'square' or 'triangle'")
    return np.asarray(canvas, dtype=bool)


def stroke_mask(rng, height, width):
    """A thick random polyline: clutter that the annotation marks as ignored."""
    canvas = Image.new('L', (width, height), 0)
    points = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(3)]
    ImageDraw.Draw(canvas).line(points, fill=1, width=int(rng.integers(3, 7)))
    return np.asarray(canvas, dtype=bool)


def render_scene(rng, image, label, shape_labels, ignore_label, max_shapes=4, max_strokes=2,
                 grain=8.0, max_tilt=15.0):
    """Draw clutter strokes, then non-overlapping random shapes, over a background, in place.

    Args:
        image (float32 ndarray (H, W, 3)): the background, 0..255.
        label (uint8 ndarray (H, W)): the background's labels.
        shape_labels (dict): shape name -> label value.
        max_tilt (float): squares and triangles are upright up to +-max_tilt degrees.
    Returns:
        (uint8 RGB image (H, W, 3), uint8 label map (H, W))
    """
    height, width = label.shape
    for _ in range(int(rng.integers(0, max_strokes + 1))):
        mask = stroke_mask(rng, height, width)
        image[mask] = rng.uniform(0, 255, 3).astype(np.float32)
        label[mask] = ignore_label
    shapes = sorted(shape_labels)
    short = min(height, width)
    placed = []  # (cx, cy, bounding radius): shapes are whole and do not occlude each other
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        shape = shapes[int(rng.integers(len(shapes)))]
        size = rng.uniform(0.2, 0.4) * short
        reach = size / 2 * EQUAL_AREA_RADIUS.get(shape, 1.0)
        for _attempt in range(20):
            cx, cy = rng.uniform(reach, width - reach), rng.uniform(reach, height - reach)
            if all(math.hypot(cx - x, cy - y) > reach + r + 2 for x, y, r in placed):
                break
        else:
            continue
        placed.append((cx, cy, reach))
        mask = shape_mask(shape, height, width, cx, cy, size,
                          math.radians(rng.uniform(-max_tilt, max_tilt)))
        # Every shape is a flat random colour with the same mild grain (the background is
        # grainier): a shape stands out from the background, but only its outline tells
        # the classes apart.
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        image[mask] = colour + rng.normal(0, grain, (int(mask.sum()), 3)).astype(np.float32)
        label[mask] = shape_labels[shape]
    return np.clip(image, 0, 255).astype(np.uint8), label


# ------------------------------------------------------------------------------- datasets
def _check_args(root, num_train, num_val, sizes):
    if not isinstance(root, (str, os.PathLike)) or not str(root):
        raise ValueError(f'root must be a directory path, got {root!r}')
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 32:
            raise ValueError(f'{name} must be an int >= 32 (pixels), got {value!r}')


def read_meta(root):
    """The generator's record in ``root`` (dict), or None if ``root`` holds no demo dataset."""
    path = osp.join(root, META_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _prepare_root(root, meta, overwrite):
    """True if ``root`` already holds exactly this dataset; refuse to mix with foreign files."""
    existing = read_meta(root)
    if existing == meta and not overwrite:
        return True
    if existing is None and osp.isdir(root) and os.listdir(root):
        raise FileExistsError(f'{root} exists and is not a replk_mm demo dataset (no '
                              f'{META_FILE}); choose an empty or new directory')
    if existing is not None:
        os.remove(osp.join(root, META_FILE))  # regenerate: invalidate until complete
    os.makedirs(root, exist_ok=True)
    return False


def _write_meta(root, meta):
    # Written last: its presence means the dataset is complete.
    with open(osp.join(root, META_FILE), 'w') as f:
        json.dump(meta, f, indent=2)


def make_ade20k_demo(root, num_train=300, num_val=50, min_size=128, max_size=192, seed=0,
                     overwrite=False):
    """Write an ADE20K-layout demo dataset to ``root`` (skipped if already there).

    Image sides are drawn uniformly from [min_size, max_size]. Returns the metadata dict.
    """
    _check_args(root, num_train, num_val, dict(min_size=min_size, max_size=max_size))
    if max_size < min_size:
        raise ValueError(f'max_size ({max_size}) < min_size ({min_size})')
    meta = dict(generator='replk_mm.demo.synthetic_seg', version=GENERATOR_VERSION,
                layout='ade20k', num_train=num_train, num_val=num_val, min_size=min_size,
                max_size=max_size, seed=seed, classes=list(ADE20K_DEMO_CLASSES),
                label_values=ADE20K_LABELS, shapes=ADE20K_SHAPES, ignore_label=ADE20K_IGNORE)
    if _prepare_root(root, meta, overwrite):
        return meta
    shape_labels = {shape: ADE20K_LABELS[name] for shape, name in ADE20K_SHAPES.items()}
    for split, prefix, count, offset in (('training', 'ADE_train', num_train, 0),
                                         ('validation', 'ADE_val', num_val, 1)):
        img_dir = osp.join(root, 'images', split)
        ann_dir = osp.join(root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        rng = np.random.default_rng([seed, offset])  # splits independent of each other's size
        for i in range(1, count + 1):
            height, width = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
            image, label = render_scene(
                rng, textured_background(rng, height, width),
                np.full((height, width), ADE20K_LABELS['wall'], np.uint8), shape_labels,
                ADE20K_IGNORE)
            name = f'{prefix}_{i:08d}'
            Image.fromarray(image).save(osp.join(img_dir, name + '.jpg'), quality=95)
            Image.fromarray(label).save(osp.join(ann_dir, name + '.png'))
    _write_meta(root, meta)
    return meta


def make_cityscapes_demo(root, num_train=200, num_val=30, width=256, height=128, seed=0,
                         overwrite=False):
    """Write a Cityscapes-layout demo dataset (``gtFine`` train ids) to ``root``."""
    _check_args(root, num_train, num_val, dict(width=width, height=height))
    meta = dict(generator='replk_mm.demo.synthetic_seg', version=GENERATOR_VERSION,
                layout='cityscapes', num_train=num_train, num_val=num_val, width=width,
                height=height, seed=seed, classes=list(CITYSCAPES_DEMO_CLASSES),
                label_values=CITYSCAPES_LABELS, shapes=CITYSCAPES_SHAPES,
                ignore_label=CITYSCAPES_IGNORE)
    if _prepare_root(root, meta, overwrite):
        return meta
    shape_labels = {shape: CITYSCAPES_LABELS[name] for shape, name in CITYSCAPES_SHAPES.items()}
    for split, count, offset in (('train', num_train, 0), ('val', num_val, 1)):
        rng = np.random.default_rng([seed, offset])
        cities = CITYSCAPES_CITIES[split]
        for i in range(count):
            city = cities[i % len(cities)]
            img_dir = osp.join(root, 'leftImg8bit', split, city)
            ann_dir = osp.join(root, 'gtFine', split, city)
            os.makedirs(img_dir, exist_ok=True)
            os.makedirs(ann_dir, exist_ok=True)
            # Smooth sky above a random horizon, grainy road below; shapes drawn over both.
            horizon = int(rng.uniform(0.3, 0.6) * height)
            background = textured_background(rng, height, width)
            background[:horizon] = textured_background(rng, horizon, width, grain=4.0)
            label = np.full((height, width), CITYSCAPES_LABELS['road'], np.uint8)
            label[:horizon] = CITYSCAPES_LABELS['sky']
            image, label = render_scene(rng, background, label, shape_labels,
                                        CITYSCAPES_IGNORE)
            stem = f'{city}_{i // len(cities):06d}_000019'
            Image.fromarray(image).save(osp.join(img_dir, stem + '_leftImg8bit.png'))
            Image.fromarray(label).save(osp.join(ann_dir, stem + '_gtFine_labelTrainIds.png'))
    _write_meta(root, meta)
    return meta


LAYOUTS = {'ade20k': make_ade20k_demo, 'cityscapes': make_cityscapes_demo}


def make_demo_dataset(layout, root, **kwargs):
    if layout not in LAYOUTS:
        raise ValueError(f'unknown layout {layout!r}; choose from {sorted(LAYOUTS)}')
    return LAYOUTS[layout](root, **kwargs)
