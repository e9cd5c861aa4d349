"""The synthetic-scene generator (replk_mm.datasets.synthetic): each layout is read by mmseg's /
mmdet's own dataset classes with the real label conventions, generation is deterministic, a
dataset made with the same arguments is reused, a foreign folder is never written to, and bad
arguments are named."""
import os
import os.path as osp

import numpy as np
import pytest
from conftest import ade_dataset
from PIL import Image

from replk_mm.datasets import synthetic as syn
from replk_mm.datasets.synthetic.scene import EQUAL_AREA_RADIUS, polygon_area, shape_polygon

TINY = {  # the smallest datasets that still exercise every writer
    'ade20k': dict(num_train=4, num_val=2, min_side=64, max_side=80),
    'cityscapes': dict(num_train=4, num_val=2, image_size=(48, 96)),
    'coco': dict(num_train=6, num_val=4, image_size=(96, 128), object_sizes=(16, 40), seed=3),
}


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp('synthetic')
    return {layout: syn.make_demo_dataset(layout, str(base / layout), **kwargs)
            for layout, kwargs in TINY.items()}


def _files(root):
    return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


# ------------------------------------------------------------------------------- scenes
def test_shapes_have_equal_areas_and_exact_polygons():
    for shape in syn.SHAPES:
        polygon = shape_polygon(shape, 50, 50, size=40, tilt=0.3)
        # every class covers the area of a circle of diameter `size` (a 48-gon for circles)
        assert polygon_area(polygon) == pytest.approx(np.pi * 20 ** 2, rel=0.01), shape
        radius = np.hypot(*(polygon - 50).T)
        assert radius.max() == pytest.approx(20 * EQUAL_AREA_RADIUS[shape], rel=1e-6)
    with pytest.raises(ValueError, match="unknown shape 'hexagon'"):
        shape_polygon('hexagon', 0, 0, 10)


def test_rendered_shapes_are_whole_and_do_not_overlap():
    rng = np.random.default_rng(0)
    style = syn.SceneStyle(max_shapes=4, size_range=(0.25, 0.4), max_strokes=2)
    for _ in range(20):
        scene = syn.render_scene(rng, syn.textured_background(rng, 96, 128, 10.0), style)
        assert scene.image.shape == (96, 128, 3) and scene.image.dtype == np.uint8
        assert 1 <= len(scene.shapes) <= 4
        total = np.zeros((96, 128), int)
        for placed in scene.shapes:
            total += placed.mask
            # inside the image, and the mask is the rasterized polygon
            assert placed.polygon.min() >= 0 and placed.polygon[:, 0].max() <= 128
            assert abs(placed.mask.sum() - polygon_area(placed.polygon)) < \
                0.1 * polygon_area(placed.polygon) + 10
        assert total.max() == 1


# ------------------------------------------------------------------------------ ADE20K
def test_ade20k_layout_and_label_values(roots):
    root = roots['ade20k'].root
    for split, prefix, count in (('training', 'ADE_train', 4), ('validation', 'ADE_val', 2)):
        images = sorted(os.listdir(osp.join(root, 'images', split)))
        assert images == [f'{prefix}_{i:08d}.jpg' for i in range(1, count + 1)]
        assert sorted(os.listdir(osp.join(root, 'annotations', split))) == [
            name.replace('.jpg', '.png') for name in images]
    from mmseg.datasets import ADE20KDataset
    names = ADE20KDataset.METAINFO['classes']
    # The generator's label values are the real ADE20K ids (index + 1).
    assert {name: names.index(name) + 1 for name in syn.ADE20K_DEMO_CLASSES} == \
        syn.ADE20K_LABELS
    values = set()
    for png in os.listdir(osp.join(root, 'annotations', 'training')):
        values |= set(np.unique(np.array(Image.open(
            osp.join(root, 'annotations', 'training', png)))).tolist())
    assert values <= {0, 1, 42, 115, 120} and {1, 42, 115, 120} & values


def test_real_ade20k_dataset_reads_it(roots):
    root = roots['ade20k'].root
    dataset = ade_dataset(root)
    assert len(dataset) == 4 and len(dataset.metainfo['classes']) == 150
    sample = dataset[0]
    raw = np.array(Image.open(sample['seg_map_path']))
    gt = sample['gt_seg_map']
    assert gt.shape == raw.shape == sample['img'].shape[:2]
    # reduce_zero_label: 0 ("other") is ignored, id k becomes class k - 1
    assert (gt[raw == 0] == 255).all()
    assert (gt[raw != 0] == raw[raw != 0] - 1).all()
    # the demo config's metainfo selects the four classes, in order
    dataset = ade_dataset(root, metainfo=dict(classes=syn.ADE20K_DEMO_CLASSES))
    assert dataset.metainfo['classes'] == syn.ADE20K_DEMO_CLASSES == roots['ade20k'].classes
    for i in range(len(dataset)):
        sample = dataset[i]
        raw = np.array(Image.open(sample['seg_map_path']))
        for new_id, name in enumerate(syn.ADE20K_DEMO_CLASSES):
            assert (sample['gt_seg_map'][raw == syn.ADE20K_LABELS[name]] == new_id).all()


# --------------------------------------------------------------------------- Cityscapes
def test_real_cityscapes_dataset_reads_it(roots):
    from mmengine.registry import init_default_scope
    from mmseg.datasets import CityscapesDataset
    init_default_scope('mmseg')
    names = CityscapesDataset.METAINFO['classes']
    assert {n: names.index(n) for n in syn.CITYSCAPES_DEMO_CLASSES} == syn.CITYSCAPES_LABELS
    dataset = CityscapesDataset(
        data_root=roots['cityscapes'].root,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        metainfo=dict(classes=syn.CITYSCAPES_DEMO_CLASSES),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')])
    assert len(dataset) == 4
    sample = dataset[0]
    assert sample['img_path'].endswith('_leftImg8bit.png')
    assert sample['seg_map_path'].endswith('_gtFine_labelTrainIds.png')
    assert '/leftImg8bit/train/synth' in sample['img_path']
    raw = np.array(Image.open(sample['seg_map_path']))
    assert sample['img'].shape == (48, 96, 3)
    assert set(np.unique(raw)) <= set(syn.CITYSCAPES_LABELS.values()) | {255}
    for new_id, name in enumerate(syn.CITYSCAPES_DEMO_CLASSES):
        assert (sample['gt_seg_map'][raw == syn.CITYSCAPES_LABELS[name]] == new_id).all()
    assert (sample['gt_seg_map'][raw == 255] == 255).all()


# -------------------------------------------------------------------------------- COCO
def test_coco_layout_polygons_boxes_and_areas(roots):
    from pycocotools.coco import COCO
    data = roots['coco']
    for split, n in (('train2017', 6), ('val2017', 4)):
        info = data.split(split)
        coco = COCO(osp.join(data.root, info.annotations))
        assert len(coco.getImgIds()) == n == info.images
        assert len(coco.getAnnIds()) == info.objects
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(syn.COCO_CLASSES)
        for ann in coco.loadAnns(coco.getAnnIds()):
            image = coco.loadImgs(ann['image_id'])[0]
            assert osp.isfile(osp.join(data.root, split, image['file_name']))
            x, y, w, h = ann['bbox']
            assert 0 <= x and 0 <= y and x + w <= image['width'] and y + h <= image['height']
            polygon = np.array(ann['segmentation'][0]).reshape(-1, 2)
            assert np.allclose(polygon.min(0), [x, y], atol=0.01)
            # The rasterized polygon covers about the annotated area.
            assert abs(coco.annToMask(ann).sum() - ann['area']) < 0.15 * ann['area'] + 8


def test_mmdet_reads_coco_and_cocometric_scores_ground_truth_as_perfect(roots):
    """mmdet's own CocoDataset and CocoMetric: GT fed back as predictions gives AP 1."""
    import torch
    from mmdet.evaluation import CocoMetric
    from mmdet.registry import DATASETS
    from mmdet.structures.mask import BitmapMasks
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    root = roots['coco'].root
    dataset = DATASETS.build(dict(
        type='CocoDataset', data_root=root, ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'), metainfo=dict(classes=syn.COCO_CLASSES),
        test_mode=True, pipeline=[dict(type='LoadImageFromFile'),
                                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                                  dict(type='PackDetInputs')]))
    metric = CocoMetric(ann_file=osp.join(root, 'annotations', 'instances_val2017.json'),
                        metric=['bbox', 'segm'])
    metric.dataset_meta = dataset.metainfo
    total = 0
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        gt = sample.gt_instances
        total += len(gt)
        assert isinstance(gt.masks, BitmapMasks) and gt.masks.areas.min() > 0
        pred = dict(bboxes=gt.bboxes.tensor, labels=gt.labels,
                    scores=torch.ones(len(gt)), masks=torch.from_numpy(gt.masks.masks).bool())
        metric.process({}, [dict(pred_instances=pred, img_id=sample.img_id,
                                 ori_shape=sample.ori_shape)])
    assert total == roots['coco'].split('val2017').objects
    results = metric.compute_metrics(metric.results)
    assert results['bbox_mAP'] == pytest.approx(1.0, abs=1e-3)
    assert results['segm_mAP'] > 0.9  # polygon -> RLE rasterization is not pixel-identical


# ------------------------------------------------------------------- shared behaviour
@pytest.mark.parametrize('layout', ['ade20k', 'cityscapes', 'coco'])
def test_same_arguments_same_files_and_reuse(layout, roots, tmp_path):
    first = roots[layout]
    assert not first.reused and first.layout == layout
    again = syn.make_demo_dataset(layout, first.root, **TINY[layout])
    assert again.reused and again.splits == first.splits
    copy = syn.make_demo_dataset(layout, str(tmp_path / 'copy'), **TINY[layout])
    assert not copy.reused
    assert _files(copy.root) == _files(first.root)
    for rel in _files(first.root):
        if rel.endswith(('.jpg', '.png')):
            with open(osp.join(first.root, rel), 'rb') as a, \
                    open(osp.join(copy.root, rel), 'rb') as b:
                assert a.read() == b.read(), rel


@pytest.mark.parametrize('layout', ['ade20k', 'cityscapes', 'coco'])
def test_other_arguments_regenerate_without_stale_files(layout, tmp_path):
    root = str(tmp_path / 'data')
    syn.make_demo_dataset(layout, root, **dict(TINY[layout], num_train=5))
    small = syn.make_demo_dataset(layout, root, **dict(TINY[layout], num_train=2))
    train = small.splits[0]
    assert not small.reused and train.images == 2
    # the three extra images of the first run are gone, not read as part of the new dataset
    assert len(_files(osp.join(root, train.image_dir))) == 2
    assert syn.read_record(root)['args']['num_train'] == 2


@pytest.mark.parametrize('layout', ['ade20k', 'cityscapes', 'coco'])
def test_a_foreign_folder_is_never_written(layout, tmp_path):
    foreign = tmp_path / 'mine'
    foreign.mkdir()
    (foreign / 'thesis.tex').write_text('do not overwrite')
    with pytest.raises(FileExistsError, match='is not a replk_mm demo dataset'):
        syn.make_demo_dataset(layout, str(foreign), **TINY[layout])
    assert os.listdir(foreign) == ['thesis.tex']


@pytest.mark.parametrize('layout,kwargs,message', [
    ('ade20k', dict(num_train=0), 'num_train must be a positive int'),
    ('ade20k', dict(min_side=8), r'min_side must be an int >= 32'),
    ('ade20k', dict(min_side=64, max_side=40), r'max_side \(40\) < min_side \(64\)'),
    ('ade20k', dict(scene='blobs'), "unknown scene 'blobs'; choose from"),
    ('cityscapes', dict(image_size=(48, )), r'image_size must be \(height, width\)'),
    ('coco', dict(num_val=-1), 'num_val must be a positive int'),
    ('coco', dict(image_size=(64, 64), object_sizes=(24, 64)),
     r'the largest triangle .* must fit the 64x64 image'),
    ('coco', dict(classes=('hexagon', )), 'classes must be a non-empty subset'),
    ('coco', dict(max_objects=0), 'max_objects must be a positive int'),
    ('voc', {}, "unknown layout 'voc'"),
])
def test_bad_arguments_are_named(layout, kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        syn.make_demo_dataset(layout, str(tmp_path / 'x'), **kwargs)
    assert not (tmp_path / 'x').exists()


def test_make_demo_data_cli(tmp_path, capsys):
    from tools.dataset_converters.make_demo_coco import main as make_demo_coco
    from tools.dataset_converters.make_demo_data import main as make_demo_data
    data = make_demo_data(['cityscapes', str(tmp_path / 'cs'), '--num-train', '2',
                           '--num-val', '1', '--image-size', '48', '96'])
    assert data.layout == 'cityscapes' and data.split('train').images == 2
    assert 'cityscapes demo dataset' in capsys.readouterr().out
    data = make_demo_coco([str(tmp_path / 'coco'), '--num-train', '2', '--num-val', '1',
                           '--image-size', '96', '96', '--min-size', '16', '--max-size', '32'])
    assert data.args['object_sizes'] == [16.0, 32.0]
    assert 'train2017: 2 images' in capsys.readouterr().out
    for argv, message in ((['ade20k', str(tmp_path / 'bad'), '--num-train', '0'],
                           'num_train must be a positive int'),
                          (['ade20k', str(tmp_path / 'bad'), '--image-size', '64', '64'],
                           '--image-size applies to cityscapes, coco, not ade20k')):
        with pytest.raises(SystemExit):
            make_demo_data(argv)
        assert message in capsys.readouterr().err
