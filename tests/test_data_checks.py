"""The checked datasets catch silent data problems when they happen: a label map whose size
differs from its image or that holds ids outside the classes (training and test pipelines; the
id check skippable), and COCO image files that are missing (reported when the dataset is built,
skippable)."""
import os
import os.path as osp

import pytest
from mmengine.registry import DefaultScope
from PIL import Image
from robustness_helpers import write_ade20k, write_coco


@pytest.fixture
def ade(tmp_path):
    """ADE20K layout whose second training and first validation label maps are half size."""
    root = write_ade20k(str(tmp_path / 'ade'), num_train=3, num_val=2)
    for split, name in (('training', 'ADE_train_00000001'), ('validation', 'ADE_valid_00000000')):
        path = osp.join(root, 'annotations', split, name + '.png')
        Image.open(path).resize((40, 32)).save(path)
    return root


def _seg_dataset(root, split, pipeline):
    from mmseg.registry import DATASETS

    import replk_mm.datasets.seg_checked  # noqa: F401 (registers the checked datasets)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(dict(
            type='CheckedADE20KDataset', data_root=root,
            data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
            pipeline=pipeline))


TRAIN_PIPELINE = [dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', reduce_zero_label=True),
                  dict(type='RandomResize', scale=(96, 64), ratio_range=(0.75, 1.5),
                       keep_ratio=True),
                  dict(type='RandomCrop', crop_size=(32, 32)),
                  dict(type='PackSegInputs')]
TEST_PIPELINE = [dict(type='LoadImageFromFile'),
                 dict(type='Resize', scale=(96, 64), keep_ratio=True),
                 dict(type='LoadAnnotations', reduce_zero_label=True),
                 dict(type='PackSegInputs')]


@pytest.mark.parametrize('split, pipeline, index, name', [
    ('training', TRAIN_PIPELINE, 1, 'ADE_train_00000001'),
    ('validation', TEST_PIPELINE, 0, 'ADE_valid_00000000')])
def test_label_map_of_another_size_names_both_files(ade, split, pipeline, index, name):
    from replk_mm.datasets.seg_checked import LabelSizeError
    dataset = _seg_dataset(ade, split, pipeline)
    dataset[1 - index]  # the pair of equal sizes loads
    with pytest.raises(LabelSizeError) as info:
        dataset[index]
    message = str(info.value)
    assert osp.join(ade, 'annotations', split, name + '.png') in message
    assert osp.join(ade, 'images', split, name + '.jpg') in message
    assert '40x32 (WxH)' in message and 'is 80x64' in message


def _coco_dataset(root, **kwargs):
    from mmdet.registry import DATASETS

    import replk_mm.datasets.coco_checked  # noqa: F401 (registers CheckedCocoDataset)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(dict(
            type='CheckedCocoDataset', data_root=root,
            ann_file='annotations/instances_train2017.json', data_prefix=dict(img='train2017/'),
            metainfo=dict(classes=('square', )), pipeline=[], **kwargs))


def test_missing_coco_images_are_reported_when_the_dataset_is_built(tmp_path):
    from replk_mm.datasets.errors import MissingImagesError
    root = str(tmp_path / 'coco')
    write_coco(root, num_images=4)
    os.remove(osp.join(root, 'train2017', '000000000002.jpg'))
    with pytest.raises(MissingImagesError) as info:
        _coco_dataset(root)
    message = str(info.value)
    assert '1 of the 4 image files it lists do not exist' in message
    assert osp.join(root, 'train2017', '000000000002.jpg') in message
    assert 'check_image_files=False' in message
    assert len(_coco_dataset(root, check_image_files=False)) == 4  # the documented way out


def test_missing_files_lists_each_folder_once(tmp_path, monkeypatch):
    from replk_mm.datasets import coco_checked
    (tmp_path / 'a').mkdir()
    (tmp_path / 'a' / 'x.jpg').write_bytes(b'')
    paths = [str(tmp_path / 'a' / 'x.jpg'), str(tmp_path / 'a' / 'y.jpg'),
             str(tmp_path / 'gone' / 'z.jpg')]
    listed = []
    listdir = os.listdir

    def counting_listdir(folder):
        listed.append(folder)
        return listdir(folder)

    monkeypatch.setattr(coco_checked.os, 'listdir', counting_listdir)
    assert coco_checked.missing_files(paths) == paths[1:]
    assert sorted(listed) == sorted({str(tmp_path / 'a'), str(tmp_path / 'gone')})


@pytest.fixture
def ade_bad_ids(tmp_path):
    """ADE20K layout whose second training and first validation label maps hold file id 201
    (class 200 after reduce_zero_label; ADE20K has 150) in their top 8 rows of 64."""
    import numpy as np
    root = write_ade20k(str(tmp_path / 'ade'), num_train=2, num_val=2)
    for split, name in (('training', 'ADE_train_00000001'), ('validation', 'ADE_valid_00000000')):
        path = osp.join(root, 'annotations', split, name + '.png')
        label = np.array(Image.open(path))
        label[:8] = 201
        Image.fromarray(label).save(path)
    return root


@pytest.mark.parametrize('split, pipeline, index, name', [
    ('training', TRAIN_PIPELINE, 1, 'ADE_train_00000001'),
    ('validation', TEST_PIPELINE, 0, 'ADE_valid_00000000')])
def test_label_ids_outside_the_classes_name_the_file_ids_and_fix(ade_bad_ids, split, pipeline,
                                                                  index, name):
    from replk_mm.datasets.seg_checked import LabelValueError
    dataset = _seg_dataset(ade_bad_ids, split, pipeline)
    dataset[1 - index]  # ids 0-3 (255, 0, 1, 2 after reduce_zero_label) are valid
    with pytest.raises(LabelValueError) as info:
        dataset[index]
    message = str(info.value)
    assert osp.join(ade_bad_ids, 'annotations', split, name + '.png') in message
    assert 'outside the 150 classes of CheckedADE20KDataset (valid: 0-149 and ignore_index ' \
           '255, after reduce_zero_label=True): 200 (12.50%)' in message
    for fix in ('ignore_index', 'decode_head.num_classes', 'reduce_zero_label',
                'check_label_values=False'):
        assert fix in message
    # the opt-out (the test pipeline: no crop can cut the bad rows off)
    from mmseg.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmseg'):
        unchecked = DATASETS.build(dict(
            type='CheckedADE20KDataset', data_root=ade_bad_ids, check_label_values=False,
            data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
            pipeline=TEST_PIPELINE))
    assert (unchecked[index]['data_samples'].gt_sem_seg.data == 200).any()


def test_label_value_check_sees_ids_after_reduce_zero_label():
    import numpy as np

    from replk_mm.datasets.seg_checked import LabelValueError, SegMapCheck
    check = SegMapCheck(num_classes=4, ignore_index=255)
    seg = np.array([[0, 3], [255, 255]], np.uint8)
    assert check(dict(gt_seg_map=seg, ori_shape=(2, 2))) is not None
    seg[0, 0] = 4
    with pytest.raises(LabelValueError, match=r'4 \(25\.00%\).*with reduce_zero_label=False file '
                                              r'ids are class ids'):
        check(dict(gt_seg_map=seg, ori_shape=(2, 2), seg_map_path='a.png',
                   reduce_zero_label=False))
