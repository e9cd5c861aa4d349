"""Small synthetic datasets in the real ADE20K, Cityscapes and COCO layouts.

Nothing has to be downloaded to see a RepLKNet model train: one scene generator
(:mod:`.scene`: filled circles, squares and triangles on textured backgrounds, the class being
the shape) and one writer per layout, each producing the files, label values and annotation
format that mmseg's ``ADE20KDataset`` / ``CityscapesDataset`` and mmdet's ``CocoDataset`` read
unchanged. Every writer checks its arguments, reuses a dataset already generated with the same
arguments (a record file in the root says so), and refuses to write into a non-empty folder it
did not make. Command line: ``tools/dataset_converters/make_demo_data.py``.

    >>> from replk_mm.datasets.synthetic import make_demo_dataset
    >>> data = make_demo_dataset('coco', 'data/demo_coco', num_train=200, num_val=50)
    >>> data.reused, data.classes, data.split('val2017').objects
"""
from .coco import COCO_CLASSES, make_coco_demo
from .record import RECORD_FILE, DemoDataset, SplitInfo, read_record
from .scene import SHAPES, SceneStyle, render_scene, shape_polygon, textured_background
from .seg_layouts import (
    ADE20K_DEMO_CLASSES,
    ADE20K_IGNORE,
    ADE20K_LABELS,
    ADE20K_SHAPES,
    CITYSCAPES_DEMO_CLASSES,
    CITYSCAPES_IGNORE,
    CITYSCAPES_LABELS,
    CITYSCAPES_SHAPES,
    make_ade20k_demo,
    make_cityscapes_demo,
)

LAYOUTS = {'ade20k': make_ade20k_demo, 'cityscapes': make_cityscapes_demo,
           'coco': make_coco_demo}


def make_demo_dataset(layout, root, **kwargs):
    """Write (or reuse) the synthetic dataset of ``layout`` in ``root``; see the writers for
    the keyword arguments. Returns a ``DemoDataset``."""
    if layout not in LAYOUTS:
        raise ValueError(f'unknown layout {layout!r}; choose from {sorted(LAYOUTS)}')
    return LAYOUTS[layout](root, **kwargs)


__all__ = ['ADE20K_DEMO_CLASSES', 'ADE20K_IGNORE', 'ADE20K_LABELS', 'ADE20K_SHAPES',
           'CITYSCAPES_DEMO_CLASSES', 'CITYSCAPES_IGNORE', 'CITYSCAPES_LABELS',
           'CITYSCAPES_SHAPES', 'COCO_CLASSES', 'DemoDataset', 'LAYOUTS', 'RECORD_FILE',
           'SHAPES', 'SceneStyle', 'SplitInfo', 'make_ade20k_demo', 'make_cityscapes_demo',
           'make_coco_demo', 'make_demo_dataset', 'read_record', 'render_scene',
           'shape_polygon', 'textured_background']
