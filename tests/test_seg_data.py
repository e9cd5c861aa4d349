"""The synthetic datasets are read by mmseg's real dataset classes and pipelines, and bad
data gives errors that name the file."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from replk_mm.demo import synthetic_seg as syn


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('seg_data') / 'ade')
    syn.make_ade20k_demo(root, num_train=6, num_val=3, min_size=64, max_size=80)
    return root


@pytest.fixture(scope='module')
def cityscapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('seg_data') / 'cityscapes')
    syn.make_cityscapes_demo(root, num_train=4, num_val=2, width=96, height=48)
    return root


@pytest.fixture(autouse=True)
def _mmseg_scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')  # pipelines resolve mmseg's transforms, as in a config


def _ade_dataset(root, split='training', checked=False, **kwargs):
    from mmseg.datasets import ADE20KDataset

    from replk_mm.datasets.seg_checked import CheckedADE20KDataset
    return (CheckedADE20KDataset if checked else ADE20KDataset)(
        data_root=root,
        data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', reduce_zero_label=True)],
        **kwargs)


def test_ade20k_layout_and_label_values(ade_root):
    for split, prefix, count in (('training', 'ADE_train', 6), ('validation', 'ADE_val', 3)):
        images = sorted(os.listdir(osp.join(ade_root, 'images', split)))
        assert images == [f'{prefix}_{i:08d}.jpg' for i in range(1, count + 1)]
        assert sorted(os.listdir(osp.join(ade_root, 'annotations', split))) == [
            name.replace('.jpg', '.png') for name in images]
    from mmseg.datasets import ADE20KDataset
    names = ADE20KDataset.METAINFO['classes']
    # The generator's label values are the real ADE20K ids (index + 1).
    assert {name: names.index(name) + 1 for name in syn.ADE20K_DEMO_CLASSES} == \
        syn.ADE20K_LABELS
    values = set()
    for png in os.listdir(osp.join(ade_root, 'annotations', 'training')):
        values |= set(np.unique(np.array(Image.open(
            osp.join(ade_root, 'annotations', 'training', png)))).tolist())
    assert values <= {0, 1, 42, 115, 120} and {1, 42, 115, 120} & values


def test_real_ade20k_dataset_reads_it_with_all_150_classes(ade_root):
    dataset = _ade_dataset(ade_root)
    assert len(dataset) == 6 and len(dataset.metainfo['classes']) == 150
    sample = dataset[0]
    raw = np.array(Image.open(sample['seg_map_path']))
    gt = sample['gt_seg_map']
    assert gt.shape == raw.shape == sample['img'].shape[:2]
    # reduce_zero_label: 0 ("other") is ignored, id k becomes class k - 1
    assert (gt[raw == 0] == 255).all()
    assert (gt[raw != 0] == raw[raw != 0] - 1).all()


def test_demo_classes_select_four_of_ade20k(ade_root):
    dataset = _ade_dataset(ade_root, metainfo=dict(classes=syn.ADE20K_DEMO_CLASSES))
    assert dataset.metainfo['classes'] == syn.ADE20K_DEMO_CLASSES
    assert len(dataset.metainfo['palette']) == 4
    for i in range(len(dataset)):
        sample = dataset[i]
        raw = np.array(Image.open(sample['seg_map_path']))
        gt = sample['gt_seg_map']
        for new_id, name in enumerate(syn.ADE20K_DEMO_CLASSES):
            assert (gt[raw == syn.ADE20K_LABELS[name]] == new_id).all()
        assert (gt[raw == 0] == 255).all()


def test_real_cityscapes_dataset_reads_it(cityscapes_root):
    from mmseg.datasets import CityscapesDataset
    names = CityscapesDataset.METAINFO['classes']
    assert {n: names.index(n) for n in syn.CITYSCAPES_DEMO_CLASSES} == syn.CITYSCAPES_LABELS
    dataset = CityscapesDataset(
        data_root=cityscapes_root,
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
    for new_id, name in enumerate(syn.CITYSCAPES_DEMO_CLASSES):
        assert (sample['gt_seg_map'][raw == syn.CITYSCAPES_LABELS[name]] == new_id).all()
    assert (sample['gt_seg_map'][raw == 255] == 255).all()


def test_generation_is_deterministic_and_reused(tmp_path):
    first = str(tmp_path / 'a')
    second = str(tmp_path / 'b')
    for root in (first, second):
        syn.make_ade20k_demo(root, num_train=2, num_val=1, min_size=40, max_size=48, seed=3)
    for rel in ('images/training/ADE_train_00000002.jpg',
                'annotations/validation/ADE_val_00000001.png'):
        with open(osp.join(first, rel), 'rb') as a, open(osp.join(second, rel), 'rb') as b:
            assert a.read() == b.read()
    stamp = os.path.getmtime(osp.join(first, 'images/training/ADE_train_00000001.jpg'))
    syn.make_ade20k_demo(first, num_train=2, num_val=1, min_size=40, max_size=48, seed=3)
    assert os.path.getmtime(osp.join(first, 'images/training/ADE_train_00000001.jpg')) == stamp


def test_generator_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match='num_train must be a positive int'):
        syn.make_ade20k_demo(str(tmp_path / 'x'), num_train=0)
    with pytest.raises(ValueError, match='min_size must be an int >= 32'):
        syn.make_ade20k_demo(str(tmp_path / 'x'), min_size=8)
    with pytest.raises(ValueError, match=r'max_size \(40\) < min_size \(64\)'):
        syn.make_ade20k_demo(str(tmp_path / 'x'), min_size=64, max_size=40)
    with pytest.raises(ValueError, match="unknown layout 'voc'"):
        syn.make_demo_dataset('voc', str(tmp_path / 'x'))
    foreign = tmp_path / 'mine'
    foreign.mkdir()
    (foreign / 'thesis.tex').write_text('do not overwrite')
    with pytest.raises(FileExistsError, match='is not a replk_mm demo dataset'):
        syn.make_ade20k_demo(str(foreign), num_train=1, num_val=1)
    assert (foreign / 'thesis.tex').read_text() == 'do not overwrite'


def test_make_demo_data_cli(tmp_path, capsys):
    from tools.dataset_converters.make_demo_data import main
    meta = main(['cityscapes', str(tmp_path / 'cs'), '--num-train', '2', '--num-val', '1'])
    assert meta['layout'] == 'cityscapes'
    assert 'cityscapes demo dataset' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(['ade20k', str(tmp_path / 'bad'), '--num-train', '0'])
    assert 'num_train must be a positive int' in capsys.readouterr().err


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
    dataset = _ade_dataset(broken_root, checked=checked)
    with pytest.raises(Exception, match='ADE_train_00000002.jpg'):
        dataset[1]


def test_corrupt_annotation_error_names_the_file(broken_root):
    from replk_mm.datasets.seg_checked import SampleLoadError
    bad = osp.join(broken_root, 'annotations', 'training', 'ADE_train_00000003.png')
    with open(bad, 'wb') as f:
        f.write(b'\x89PNG truncated')
    # mmseg's own class says only "cannot identify image file <_io.BytesIO ...>"
    dataset = _ade_dataset(broken_root, checked=True)
    with pytest.raises(SampleLoadError, match=r'seg_map_path .*ADE_train_00000003\.png'):
        dataset[2]


@pytest.mark.parametrize('checked', [False, True])
def test_missing_annotation_error_names_the_file(broken_root, checked):
    os.remove(osp.join(broken_root, 'annotations', 'training', 'ADE_train_00000004.png'))
    dataset = _ade_dataset(broken_root, checked=checked)
    with pytest.raises(FileNotFoundError, match='ADE_train_00000004.png'):
        dataset[3]


@pytest.mark.parametrize('checked', [False, True])
def test_missing_image_in_split_file_error_names_the_file(broken_root, checked):
    split = osp.join(broken_root, 'train.txt')
    with open(split, 'w') as f:
        f.write('ADE_train_00000001\nADE_train_00000099\n')
    dataset = _ade_dataset(broken_root, checked=checked, ann_file='train.txt')
    assert len(dataset) == 2
    with pytest.raises(FileNotFoundError, match='ADE_train_00000099.jpg'):
        dataset[1]


def test_missing_dataset_says_where_and_how_to_point_at_it(tmp_path):
    from replk_mm.datasets.seg_checked import DatasetNotFoundError
    with pytest.raises(DatasetNotFoundError,
                       match=r'image folder .*images/training does not exist.*data_root'):
        _ade_dataset(str(tmp_path / 'nowhere'), checked=True)
    with pytest.raises(FileNotFoundError):  # still a FileNotFoundError for callers
        _ade_dataset(str(tmp_path / 'nowhere'), checked=True)


def test_empty_dataset_is_an_error_naming_the_suffixes(tmp_path):
    from replk_mm.datasets.seg_checked import DatasetNotFoundError
    for sub in ('images/training', 'annotations/training'):
        os.makedirs(tmp_path / 'empty' / sub)
    (tmp_path / 'empty' / 'images' / 'training' / 'a.png').write_bytes(b'')  # wrong suffix
    with pytest.raises(DatasetNotFoundError, match=r"no images ending in '\.jpg'"):
        _ade_dataset(str(tmp_path / 'empty'), checked=True)


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
