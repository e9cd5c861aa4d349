"""One synthetic scene: filled shapes on a textured background (numpy and Pillow only).

The class of an object is its *shape* (circle, square or triangle). Colour, size, position and
tilt are random and every shape covers the same area on average, so a model has to learn
geometry, not colour or size. Every shape is drawn from a polygon (a circle is a 48-gon), so the
polygon is its exact annotation, and shapes never overlap, so every object is whole.
"""
import math
from dataclasses import dataclass
from typing import List, NamedTuple, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ('circle', 'square', 'triangle')

# Circumradius of each shape when its area equals that of a circle of radius 1.
EQUAL_AREA_RADIUS = {'circle': 1.0,
                     'square': math.sqrt(math.pi / 2),
                     'triangle': math.sqrt(math.pi / (3 * math.sqrt(3) / 4))}
# Angle of the first vertex of an upright shape (image y points down).
_UPRIGHT = {'square': math.pi / 4, 'triangle': -math.pi / 2}
_SIDES = {'circle': 48, 'square': 4, 'triangle': 3}
# The class colour of the outline band (SceneStyle.cue_width), far apart in RGB.
CUE_COLOURS = {'square': (230, 30, 30), 'triangle': (30, 210, 30), 'circle': (30, 60, 240)}


@dataclass(frozen=True)
class SceneStyle:
    """How a scene looks; every layout draws with the same code, in its own style.

    Args:
        max_shapes (int): 1 to this many shapes per image.
        size_range (tuple[float, float]): shape size, as the diameter of the circle of the same
            area, in pixels (``absolute=True``) or as a fraction of the image's short side.
        max_tilt (float): squares and triangles are rotated by up to +-max_tilt degrees from
            upright (180: any rotation).
        background_grain (float): std of the per-pixel noise on the background (0..255 scale).
        shape_grain (float): std of the per-pixel noise on the flat shape colours.
        max_strokes (int): 0 to this many thick random lines drawn under the shapes (clutter).
        blur (float): Gaussian blur radius applied to the finished image (0: none).
        margin (float): the least gap in pixels between the bounding circles of two shapes.
        cue_width (float): if > 0, a band this wide along the inside of each outline is drawn
            in its class's colour (``CUE_COLOURS``): the class shows at the outline only, and
            the interior has to learn it from there.
        each_shape_once (bool): draw every shape exactly once, in random order, instead of 1 to
            ``max_shapes`` random ones: each class is then in every image, so knowing which
            classes an image holds (e.g. from a globally pooled feature) does not tell which
            object is which.
    """
    max_shapes: int = 4
    size_range: Tuple[float, float] = (0.2, 0.4)
    absolute: bool = False
    max_tilt: float = 15.0
    background_grain: float = 40.0
    shape_grain: float = 8.0
    max_strokes: int = 0
    blur: float = 0.0
    margin: float = 2.0
    cue_width: float = 0.0
    each_shape_once: bool = False


class PlacedShape(NamedTuple):
    """A drawn object: its shape name, its polygon ((N, 2) x, y pixels) and its pixel mask."""
    shape: str
    polygon: np.ndarray
    mask: np.ndarray


class Scene(NamedTuple):
    """A rendered image (uint8 RGB (H, W, 3)), its objects, and the clutter strokes' mask."""
    image: np.ndarray
    shapes: List[PlacedShape]
    clutter: np.ndarray


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


def textured_background(rng, height, width, grain):
    """Random blotchy colours plus per-pixel grain: float32 (H, W, 3) in about 0..255."""
    base = _smooth_noise(rng, height, width, cells=int(rng.integers(2, 6))) * 255
    return base + rng.normal(0, grain, (height, width, 3)).astype(np.float32)


def shape_polygon(shape, cx, cy, size, tilt=0.0):
    """Vertices (N, 2) of a shape centred at (cx, cy) with the area of a circle of diameter
    ``size``, rotated by ``tilt`` radians from upright."""
    if shape not in _SIDES:
        raise ValueError(f'unknown shape {shape!r}; known shapes are {SHAPES}')
    radius = size / 2 * EQUAL_AREA_RADIUS[shape]
    sides = _SIDES[shape]
    theta = _UPRIGHT.get(shape, 0.0) + tilt + np.arange(sides) * 2 * math.pi / sides
    return np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], axis=1)


def polygon_area(points):
    """Shoelace area of a simple polygon given as (N, 2) points."""
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def polygon_mask(polygon, height, width):
    """Boolean (H, W) mask of a filled polygon."""
    canvas = Image.new('L', (width, height), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(canvas, dtype=bool)


def _stroke_mask(rng, height, width):
    canvas = Image.new('L', (width, height), 0)
    points = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(3)]
    ImageDraw.Draw(canvas).line(points, fill=1, width=int(rng.integers(3, 7)))
    return np.asarray(canvas, dtype=bool)


def render_scene(rng, background, style, shapes=SHAPES):
    """Draw clutter strokes, then non-overlapping random shapes, over ``background``.

    Args:
        rng (numpy.random.Generator): the only source of randomness.
        background (float32 ndarray (H, W, 3)): 0..255; modified in place.
        style (SceneStyle): counts, sizes, tilt, noise.
        shapes (Sequence[str]): the shapes to draw from.
    Returns:
        Scene
    """
    height, width = background.shape[:2]
    image = background
    clutter = np.zeros((height, width), bool)
    for _ in range(int(rng.integers(0, style.max_strokes + 1))):
        stroke = _stroke_mask(rng, height, width)
        image[stroke] = rng.uniform(0, 255, 3).astype(np.float32)
        clutter |= stroke
    low, high = style.size_range
    if not style.absolute:
        low, high = low * min(height, width), high * min(height, width)
    placed = []
    circles = []  # (cx, cy, bounding radius): shapes are whole and never occlude each other
    if style.each_shape_once:
        order = [shapes[int(i)] for i in rng.permutation(len(shapes))]
    count = len(shapes) if style.each_shape_once else int(rng.integers(1, style.max_shapes + 1))
    for index in range(count):
        # one draw per shape, between the other draws of that shape: the random sequence (and
        # so every dataset already generated) stays as it was
        shape = order[index] if style.each_shape_once else \
            shapes[int(rng.integers(len(shapes)))]
        size = float(rng.uniform(low, high))
        reach = size / 2 * EQUAL_AREA_RADIUS[shape]
        for _attempt in range(20):  # rejection sampling of a free position
            cx = float(rng.uniform(reach + 1, width - reach - 1))
            cy = float(rng.uniform(reach + 1, height - reach - 1))
            if all(math.hypot(cx - x, cy - y) > reach + r + style.margin
                   for x, y, r in circles):
                break
        else:
            continue
        circles.append((cx, cy, reach))
        tilt = math.radians(float(rng.uniform(-style.max_tilt, style.max_tilt)))
        polygon = shape_polygon(shape, cx, cy, size, tilt)
        mask = polygon_mask(polygon, height, width)
        # A flat random colour with mild grain: a shape stands out from the background, but
        # only its outline tells the classes apart.
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        image[mask] = colour + rng.normal(0, style.shape_grain,
                                          (int(mask.sum()), 3)).astype(np.float32)
        if style.cue_width > 0:
            # the polygon shrunk towards its centre by cue_width at the sides: what is left
            # of the mask is a band of that width along the outline
            inradius = size / 2 * EQUAL_AREA_RADIUS[shape] * math.cos(math.pi / _SIDES[shape])
            scale = max(0.0, 1 - style.cue_width / inradius)
            inner = polygon_mask((polygon - (cx, cy)) * scale + (cx, cy), height, width)
            band = mask & ~inner
            image[band] = np.asarray(CUE_COLOURS[shape], np.float32) + rng.normal(
                0, style.shape_grain, (int(band.sum()), 3)).astype(np.float32)
        placed.append(PlacedShape(shape, polygon, mask))
    image = np.clip(image, 0, 255).astype(np.uint8)
    if style.blur:  # soften aliased edges
        image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(style.blur)))
    return Scene(image, placed, clutter)
