"""The validating CheckedCocoDataset on synthetic COCO-layout data (the generator itself is
tested in test_synthetic_data.py)."""
import copy
import io
import json
import logging
import os.path as osp

import pytest

pytest.importorskip('mmdet')
pytest.importorskip('pycocotools')

from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

import replk_mm.datasets.coco_checked  # noqa: E402,F401  (registers CheckedCocoDataset)
from replk_mm.datasets.synthetic import COCO_CLASSES as CLASSES  # noqa: E402
from replk_mm.datasets.synthetic import make_coco_demo  # noqa: E402

MASK_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs'),
]


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo_coco'))
    make_coco_demo(root, num_train=12, num_val=6, image_size=(96, 128), object_sizes=(16, 40),
                   seed=3)
    return root


def build_dataset(root, split='train2017', ann_file=None, pipeline=MASK_PIPELINE,
                  dataset_type='CheckedCocoDataset', **kwargs):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    return DATASETS.build(dict(
        type=dataset_type, data_root=root,
        ann_file=ann_file or f'annotations/instances_{split}.json',
        data_prefix=dict(img=f'{split}/'), metainfo=dict(classes=CLASSES),
        pipeline=pipeline, **kwargs))


def instance_counts(dataset):
    return [len(dataset.get_data_info(i)['instances']) for i in range(len(dataset))]


def write_variant(root, tmp_path, edit):
    """A copy of the train annotation file with `edit(coco_dict)` applied."""
    with open(osp.join(root, 'annotations', 'instances_train2017.json')) as f:
        coco = json.load(f)
    edit(coco)
    path = tmp_path / 'instances_bad.json'
    path.write_text(json.dumps(coco))
    return str(path)


def test_checked_dataset_accepts_valid_files_like_cocodataset(coco_root):
    checked = build_dataset(coco_root)
    plain = build_dataset(coco_root, dataset_type='CocoDataset')
    assert checked.needs_masks
    assert instance_counts(checked) == instance_counts(plain)
    assert sum(instance_counts(checked)) == len(COCO(checked.ann_file).getAnnIds())


def _first_ann(coco):
    return coco['annotations'][0]


def _bad_box_outside(coco):
    ann = _first_ann(coco)
    ann['bbox'] = [500.0, 400.0, 20.0, 20.0]


def _bad_empty_polygon(coco):
    _first_ann(coco)['segmentation'] = []


def _bad_tiny_box(coco):
    _first_ann(coco)['bbox'][2] = 0.5


@pytest.mark.parametrize('edit, message', [
    (_bad_box_outside, r'lies outside the 128x96 image'),
    (_bad_empty_polygon, r'has no usable mask'),
    (_bad_tiny_box, r'under 1 pixel'),
])
def test_degenerate_annotation_is_a_clear_error(coco_root, tmp_path, edit, message):
    ann_file = write_variant(coco_root, tmp_path, edit)
    with open(ann_file) as f:
        ann = json.load(f)['annotations'][0]
    with pytest.raises(ValueError, match=message) as info:
        build_dataset(coco_root, ann_file=ann_file)
    text = str(info.value)
    assert f"annotation id {ann['id']}" in text and f"image id {ann['image_id']}" in text
    assert ann_file in text and "invalid_annotations='skip'" in text


def test_degenerate_annotations_are_skipped_with_a_warning(coco_root, tmp_path):
    def edit(coco):
        _bad_box_outside(coco)
        coco['annotations'][1]['segmentation'] = [[]]
    ann_file = write_variant(coco_root, tmp_path, edit)
    plain = build_dataset(coco_root)
    logger = MMLogger.get_current_instance()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        dataset = build_dataset(coco_root, ann_file=ann_file, invalid_annotations='skip')
    finally:
        logger.removeHandler(handler)
    log = stream.getvalue()
    assert sum(instance_counts(dataset)) == sum(instance_counts(plain)) - 2
    assert '2 invalid annotation(s)' in log and 'lies outside' in log and 'skipped' in log
    # Every remaining sample loads (masks included).
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        assert len(sample.gt_instances.masks) == len(sample.gt_instances)


def test_box_only_pipeline_does_not_need_masks(coco_root, tmp_path):
    ann_file = write_variant(coco_root, tmp_path, _bad_empty_polygon)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='PackDetInputs')]
    dataset = build_dataset(coco_root, ann_file=ann_file, pipeline=pipeline)
    assert not dataset.needs_masks
    assert sum(instance_counts(dataset)) == sum(instance_counts(build_dataset(coco_root)))


def test_plain_cocodataset_crashes_late_on_an_empty_polygon(coco_root, tmp_path):
    """Why CheckedCocoDataset exists: mmdet 3.3 fails inside LoadAnnotations, naming nothing."""
    ann_file = write_variant(coco_root, tmp_path, _bad_empty_polygon)
    dataset = build_dataset(coco_root, ann_file=ann_file, dataset_type='CocoDataset')
    with open(ann_file) as f:
        image_id = json.load(f)['annotations'][0]['image_id']
    index = [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))].index(image_id)
    with pytest.raises(KeyError, match='mask'):
        dataset.prepare_data(index)


@pytest.mark.parametrize('edit, message', [
    (lambda c: _first_ann(c).pop('area'), r"'area' must be a finite number"),
    (lambda c: _first_ann(c).update(category_id=99), r'category_id 99 is not declared'),
    (lambda c: _first_ann(c).update(bbox=[1, 2, 3]), r"'bbox' must be 4 finite numbers"),
    (lambda c: _first_ann(c).update(bbox=[1, 2, float('nan'), 3]),
     r"'bbox' must be 4 finite numbers"),
    (lambda c: _first_ann(c).update(segmentation=[['a', 'b']]), r'flat list of numbers'),
    (lambda c: _first_ann(c).update(segmentation=dict(counts='x', size=[1, 1])),
     r'RLE size \[1, 1\]'),
    (lambda c: c['images'][0].pop('height'), r"image entry has no 'height'"),
    (lambda c: _first_ann(c).pop('id'), r'not a valid COCO annotation file'),
])
def test_malformed_annotation_always_raises(coco_root, tmp_path, edit, message):
    ann_file = write_variant(coco_root, tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        build_dataset(coco_root, ann_file=ann_file, invalid_annotations='skip')


def test_missing_annotation_file_says_where_and_how_to_point_at_it(tmp_path):
    from replk_mm.datasets.errors import DatasetNotFoundError
    with pytest.raises(DatasetNotFoundError, match=r'annotation file .*instances_train2017\.json '
                       r'does not exist.*data_root=DIR.*make_demo_coco'):
        build_dataset(str(tmp_path / 'nowhere'))


def test_invalid_mode_is_rejected(coco_root):
    with pytest.raises(ValueError, match='invalid_annotations must be one of'):
        build_dataset(coco_root, invalid_annotations='ignore')


def test_full_config_train_pipeline_runs_on_generated_data(coco_root):
    """The DETR-style multi-scale + crop pipeline of the COCO configs, masks included."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(osp.dirname(osp.dirname(__file__)), 'configs',
                                   'cascade_mask_rcnn_31b_3x_coco.py'))
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    assert dataset_cfg.type == 'CheckedCocoDataset'
    dataset = build_dataset(coco_root, pipeline=dataset_cfg.pipeline,
                            invalid_annotations=dataset_cfg.invalid_annotations)
    for i in range(4):
        sample = dataset[i]['data_samples']
        h, w = sample.img_shape
        assert 384 <= min(h, w) <= 800
        assert sample.gt_instances.masks.masks.shape[1:] == (h, w)
