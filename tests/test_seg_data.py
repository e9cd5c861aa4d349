"""Bad segmentation data gives errors that name the file (CheckedADE20KDataset and mmseg's own
classes), and the paper configs' pipelines read the synthetic data (the generator itself is
tested in test_synthetic_data.py)."""
import os
import os.path as osp
import shutil

import pytest
from conftest import ade_dataset

from replk_mm.datasets.synthetic import make_ade20k_demo, make_cityscapes_demo


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('seg_data') / 'ade')
    make_ade20k_demo(root, num_train=6, num_val=3, min_side=64, max_side=80)
    return root


@pytest.fixture(scope='module')
def cityscapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('seg_data') / 'cityscapes')
    make_cityscapes_demo(root, num_train=4, num_val=2, image_size=(48, 96))
    return root


@pytest.fixture(autouse=True)
def _mmseg_scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')  # pipelines resolve mmseg's transforms, as in a config


# ----------------------------------------------------------------- broken data names the file
@pytest.fixture
def broken_root(ade_root, tmp_path):
    root = str(tmp_path / 'broken')
    shutil.copytree(ade_root, root)
    return root


@pytest.mark.parametrize('checked', [False, True])
def test_corrupt_image_error_names_the_file(broken_root, checked):
    bad = osp.join(broken_root, 'images', 'training', 'ADE_train_00000002.jpg')
    with open(bad, 'wb') as f:
        f.write(b'this is not a jpeg')
    dataset = ade_dataset(broken_root, checked=checked)
    with pytest.raises(Exception, match='ADE_train_00000002.jpg'):
        dataset[1]


def test_corrupt_annotation_error_names_the_file(broken_root):
    from replk_mm.datasets.seg_checked import SampleLoadError
    bad = osp.join(broken_root, 'annotations', 'training', 'ADE_train_00000003.png')
    with open(bad, 'wb') as f:
        f.write(b'\x89PNG truncated')
    # mmseg's own class says only "cannot identify image file <_io.BytesIO ...>"
    dataset = ade_dataset(broken_root, checked=True)
    with pytest.raises(SampleLoadError, match=r'seg_map_path .*ADE_train_00000003\.png'):
        dataset[2]


@pytest.mark.parametrize('checked', [False, True])
def test_missing_annotation_error_names_the_file(broken_root, checked):
    os.remove(osp.join(broken_root, 'annotations', 'training', 'ADE_train_00000004.png'))
    dataset = ade_dataset(broken_root, checked=checked)
    with pytest.raises(FileNotFoundError, match='ADE_train_00000004.png'):
        dataset[3]


@pytest.mark.parametrize('checked', [False, True])
def test_missing_image_in_split_file_error_names_the_file(broken_root, checked):
    split = osp.join(broken_root, 'train.txt')
    with open(split, 'w') as f:
        f.write('ADE_train_00000001\nADE_train_00000099\n')
    dataset = ade_dataset(broken_root, checked=checked, ann_file='train.txt')
    assert len(dataset) == 2
    with pytest.raises(FileNotFoundError, match='ADE_train_00000099.jpg'):
        dataset[1]


def test_missing_dataset_says_where_and_how_to_point_at_it(tmp_path):
    from replk_mm.datasets.seg_checked import DatasetNotFoundError
    with pytest.raises(DatasetNotFoundError,
                       match=r'image folder .*images/training does not exist.*data_root'):
        ade_dataset(str(tmp_path / 'nowhere'), checked=True)
    with pytest.raises(FileNotFoundError):  # still a FileNotFoundError for callers
        ade_dataset(str(tmp_path / 'nowhere'), checked=True)


def test_empty_dataset_is_an_error_naming_the_suffixes(tmp_path):
    from replk_mm.datasets.seg_checked import DatasetNotFoundError
    for sub in ('images/training', 'annotations/training'):
        os.makedirs(tmp_path / 'empty' / sub)
    (tmp_path / 'empty' / 'images' / 'training' / 'a.png').write_bytes(b'')  # wrong suffix
    with pytest.raises(DatasetNotFoundError, match=r"no images ending in '\.jpg'"):
        ade_dataset(str(tmp_path / 'empty'), checked=True)


@pytest.mark.parametrize('config,layout', [('upernet_31b_ade20k.py', 'ade'),
                                           ('upernet_31b_in22k_ade20k.py', 'ade'),
                                           ('upernet_31b_cityscapes.py', 'cityscapes')])
def test_real_configs_pipelines_read_the_generated_data(config, layout, ade_root,
                                                        cityscapes_root):
    from mmengine.config import Config
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                                   'configs', config))
    root = ade_root if layout == 'ade' else cityscapes_root
    crop = cfg.model.data_preprocessor['size']
    for split in ('train', 'val'):
        dataset = DATASETS.build(dict(cfg[f'{split}_dataloader'].dataset, data_root=root))
        sample = dataset[0]
        inputs, gt = sample['inputs'], sample['data_samples'].gt_sem_seg.data
        if split == 'train':  # RandomResize + RandomCrop + PhotoMetricDistortion
            assert inputs.shape[1] <= crop[0] and inputs.shape[2] <= crop[1]
        assert gt.shape[1:] == inputs.shape[1:] or split == 'val'
        assert set(gt.unique().tolist()) <= set(range(len(dataset.metainfo['classes']))) | {255}
