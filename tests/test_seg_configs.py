"""Every segmentation config loads, builds, follows the official recipe (including mmcv 1.x's
warm-up + poly schedule and mmseg 0.x's `--aug-test`), and its parameter count is within 3%
of the paper's (paper numbers from configs/metafile_seg.yml, through model-index.yml)."""
import copy
import functools
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from replk_mm.apis import load_config
from replk_mm.utils.metafile import load_model_index

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
INDEX = load_model_index(osp.join(REPO, 'model-index.yml'))
MODELS = {m.name: m for m in INDEX if m.metafile.endswith('metafile_seg.yml')}

# What the official configs use per run (DingXiaoH/RepLKNet-pytorch, segmentation/configs):
# arch, drop path, images per GPU, warm-up iterations, classes, mmseg 0.x test scale.
RECIPE = {
    'upernet_31b_ade20k': dict(arch='31B', drop=0.5, batch=2, warmup=400, classes=150,
                               test_scale=(2048, 512)),
    'upernet_31b_in22k_ade20k': dict(arch='31B', drop=0.3, batch=2, warmup=400, classes=150,
                                     test_scale=(2048, 512)),
    'upernet_31l_in22k_ade20k': dict(arch='31L', drop=0.3, batch=1, warmup=800, classes=150,
                                     test_scale=(2048, 512)),
    'upernet_xl_megdata73m_ade20k': dict(arch='XL', drop=0.5, batch=2, warmup=1500,
                                         classes=150, test_scale=(2048, 512)),
    'upernet_31b_cityscapes': dict(arch='31B', drop=0.5, batch=2, warmup=400, classes=19,
                                   test_scale=(2049, 1025)),
}
STAGE3 = {'31B': 512, '31L': 768, 'XL': 1024}
# mmseg 0.x tools/test.py --aug-test: MultiScaleFlipAug img_ratios, flip=True
AUG_TEST_RATIOS = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


@functools.lru_cache(maxsize=None)
def _config(name):
    """The parsed config of a metafile entry (parsed once per test run; do not modify)."""
    return load_config(INDEX.config_path(MODELS[name]))


def mmcv1_poly_lr(base_lr, i, max_iters, warmup_iters, warmup_ratio, power=1.0, min_lr=0.0):
    """mmcv 1.x: PolyLrUpdaterHook.get_lr, then LrUpdaterHook's 'linear' warm-up of that
    regular lr, set before iteration i (mmcv/runner/hooks/lr_updater.py)."""
    regular = (base_lr - min_lr) * (1 - i / max_iters) ** power + min_lr
    if i >= warmup_iters:
        return regular
    k = (1 - i / warmup_iters) * (1 - warmup_ratio)
    return regular * (1 - k)


def test_every_recipe_has_a_metafile_entry():
    assert set(RECIPE) == set(MODELS)
    for name, model in MODELS.items():
        assert model.metric('mIoU(ms)') >= model.metric('mIoU') > 0
        assert model.results[0].task == 'Semantic Segmentation'


@pytest.mark.parametrize('name', sorted(RECIPE))
def test_config_follows_official_recipe(name):
    meta, recipe = MODELS[name], RECIPE[name]
    cfg = _config(name)
    assert cfg.default_scope == 'mmseg'
    assert 'replk_mm' in cfg.custom_imports['imports']
    model = cfg.model
    backbone = model.backbone
    assert backbone.type == 'RepLKNet' and backbone.arch == recipe['arch']
    assert backbone.drop_path_rate == recipe['drop']
    assert backbone.with_cp is True and backbone.norm_cfg.type == 'SyncBN'
    assert backbone.init_cfg.type == 'Pretrained'
    assert osp.basename(backbone.init_cfg.checkpoint) == meta.metadata['Pretrained Weights']
    assert backbone.get('norm_intermediate_features', False) == (recipe['arch'] == 'XL')
    mean = [127.5] * 3 if recipe['arch'] == 'XL' else [123.675, 116.28, 103.53]
    assert model.data_preprocessor['mean'] == mean

    head, aux = model.decode_head, model.auxiliary_head
    assert head.type == 'UPerHead' and head.channels == 512
    assert tuple(head.pool_scales) == (1, 2, 3, 6)
    assert aux.type == 'FCNHead' and aux.in_index == 2 and aux.in_channels == STAGE3[
        recipe['arch']]
    assert aux.loss_decode.loss_weight == 0.4
    assert head.num_classes == aux.num_classes == recipe['classes']
    assert head.norm_cfg.type == aux.norm_cfg.type == 'SyncBN'

    crop = meta.metadata['Crop Size']
    assert tuple(model.data_preprocessor['size']) == (crop, crop)
    dataset = 'CheckedCityscapesDataset' if 'cityscapes' in name else 'CheckedADE20KDataset'
    for split in ('train', 'val', 'test'):
        assert cfg[f'{split}_dataloader'].dataset.type == dataset
    train = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in train][:2] == ['LoadImageFromFile', 'LoadAnnotations']
    crops = [t for t in train if t.type == 'RandomCrop']
    assert tuple(crops[0].crop_size) == (crop, crop)
    test = cfg.test_dataloader.dataset.pipeline
    assert tuple([t for t in test if t.type == 'Resize'][0].scale) == recipe['test_scale']
    if crop == 640:
        assert model.test_cfg == dict(mode='slide', crop_size=(640, 640), stride=(426, 426))
    else:
        assert model.test_cfg.mode == 'whole'

    optim = cfg.optim_wrapper
    assert optim.optimizer.type == 'AdamW' and optim.optimizer.lr == 2e-4
    assert optim.optimizer.weight_decay == 0.05 and optim.paramwise_cfg.norm_decay_mult == 0
    assert len(cfg.param_scheduler) == 1
    sched = cfg.param_scheduler[0]
    assert sched.type == 'WarmupPolyLR' and sched.warmup == 'linear'
    assert (sched.warmup_iters, sched.warmup_ratio) == (recipe['warmup'], 1e-6)
    assert sched.power == 1.0 and sched.eta_min == 0 and not sched.by_epoch
    assert 'end' not in sched  # the runner makes it train_cfg.max_iters
    assert cfg.train_cfg.max_iters == meta.metadata['Iterations']
    assert cfg.train_dataloader.batch_size == recipe['batch']
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=meta.metadata['Batch Size'])


@pytest.mark.parametrize('name', sorted(RECIPE))
def test_tta_is_mmseg0_aug_test(name):
    """`--tta`: the test scale times 0.5 ... 1.75 (mmseg 0.x MultiScaleFlipAug: int(scale *
    ratio), Resize keep_ratio), each unflipped and flipped, annotations loaded unresized."""
    cfg = _config(name)
    assert cfg.tta_model.type == 'SegTTAModel'
    load, aug = cfg.tta_pipeline
    assert load.type == 'LoadImageFromFile' and aug.type == 'TestTimeAug'
    resizes, flips, annotations, pack = aug.transforms
    w, h = RECIPE[name]['test_scale']
    assert [(t.type, tuple(t.scale), t.keep_ratio) for t in resizes] == [
        ('Resize', (int(w * r), int(h * r)), True) for r in AUG_TEST_RATIOS]
    assert [(t.type, t.prob, t.direction) for t in flips] == [
        ('RandomFlip', 0., 'horizontal'), ('RandomFlip', 1., 'horizontal')]
    assert annotations[0].type == 'LoadAnnotations'
    assert annotations[0].get('reduce_zero_label', False) == ('ade20k' in name)
    assert pack[0].type == 'PackSegInputs'


def test_tta_pipeline_runs_with_mmseg_transforms(tmp_path):
    """The ADE20K tta_pipeline, run by mmseg's own transforms on one image, gives 12 views at
    the aug-test sizes (imrescale into each scale), half of them flipped."""
    import mmcv
    import numpy as np
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    cfg = _config('upernet_31b_ade20k')
    img = np.random.RandomState(0).randint(0, 255, (300, 400, 3), dtype=np.uint8)
    seg = np.random.RandomState(1).randint(0, 151, (300, 400), dtype=np.uint8)
    mmcv.imwrite(img, str(tmp_path / 'a.jpg'))
    mmcv.imwrite(seg, str(tmp_path / 'a.png'))
    views = Compose(cfg.tta_pipeline)(dict(img_path=str(tmp_path / 'a.jpg'),
                                           seg_map_path=str(tmp_path / 'a.png'),
                                           reduce_zero_label=True, seg_fields=[]))
    shapes = [tuple(s.img_shape) for s in views['data_samples']]
    # a 400x300 image fits into (2048 r, 512 r) with factor 512 r / 300
    expected = [(int(300 * 512 * r / 300 + 0.5), int(400 * 512 * r / 300 + 0.5))
                for r in AUG_TEST_RATIOS for _ in range(2)]
    assert shapes == expected
    assert [s.flip for s in views['data_samples']] == [False, True] * 6
    assert all(s.gt_sem_seg.data.shape[-2:] == (300, 400) for s in views['data_samples'])


def test_warmup_poly_lr_is_mmcv1_in_a_runner(tmp_path):
    """A real mmengine Runner with WarmupPolyLR (no `end`: the runner's max_iters) sets, before
    each iteration, the lr of mmcv 1.x's poly + linear warm-up for that iteration."""
    from mmengine.hooks import Hook
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    import replk_mm.engine.schedulers  # noqa: F401 (registers WarmupPolyLR)

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return dict(loss=(self.w * inputs).sum())

    class RecordLR(Hook):

        def __init__(self):
            self.lrs = []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.lrs.append(runner.optim_wrapper.param_groups[0]['lr'])

    max_iters, warmup = 60, 12
    record = RecordLR()
    runner = Runner(
        model=Toy(), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(1))] * 4, batch_size=1,
                              sampler=dict(type='InfiniteSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=2e-4)),
        param_scheduler=[dict(type='WarmupPolyLR', power=1.0, eta_min=0.0, warmup='linear',
                              warmup_iters=warmup, warmup_ratio=1e-6, by_epoch=False)],
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters + 1),
        default_hooks=dict(checkpoint=None, logger=None), custom_hooks=[record],
        default_scope='mmengine')
    runner.train()
    expected = [mmcv1_poly_lr(2e-4, i, max_iters, warmup, 1e-6) for i in range(max_iters)]
    assert record.lrs == pytest.approx(expected, rel=1e-12, abs=1e-18)
    # not poly restarted after the warm-up: at the end of the warm-up the lr is already decayed
    assert record.lrs[warmup] == pytest.approx(2e-4 * (1 - warmup / max_iters))


def test_config_schedule_is_mmcv1_at_its_own_length():
    """upernet_31b_ade20k.py's schedule over its 40k iterations matches mmcv 1.x's formula at
    the start, inside and at the end of the warm-up, in the middle and at the last step."""
    from mmengine.registry import PARAM_SCHEDULERS

    import replk_mm.engine.schedulers  # noqa: F401
    cfg = _config('upernet_31b_ade20k')
    max_iters = cfg.train_cfg.max_iters
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    scheduler = PARAM_SCHEDULERS.build(dict(cfg.param_scheduler[0], end=max_iters,
                                            optimizer=optimizer))
    checks = {0, 1, 199, 399, 400, 401, 20000, max_iters - 1}
    seen = {}
    for i in range(max_iters):
        if i in checks:
            seen[i] = optimizer.param_groups[0]['lr']
        optimizer.step()
        scheduler.step()
    for i in sorted(checks):
        assert seen[i] == pytest.approx(mmcv1_poly_lr(2e-4, i, max_iters, 400, 1e-6),
                                        rel=1e-12), i


def test_warmup_poly_lr_rejects_bad_arguments():
    from replk_mm.engine.schedulers import WarmupPolyLR
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match='needs `end`'):
        WarmupPolyLR(optimizer)
    with pytest.raises(ValueError, match='by_epoch=False'):
        WarmupPolyLR(optimizer, end=100, by_epoch=True)
    with pytest.raises(ValueError, match="warmup must be one of"):
        WarmupPolyLR(optimizer, end=100, warmup='cosine', warmup_iters=10)
    with pytest.raises(ValueError, match='warmup_ratio'):
        WarmupPolyLR(optimizer, end=100, warmup='linear', warmup_iters=10, warmup_ratio=0)
    with pytest.raises(ValueError, match='longer than the schedule'):
        WarmupPolyLR(optimizer, end=100, warmup='linear', warmup_iters=200)
    with pytest.raises(ValueError, match='needs warmup_iters > 0'):
        WarmupPolyLR(optimizer, end=100, warmup='linear')


@pytest.mark.parametrize('warmup', ['constant', 'exp', None])
def test_warmup_poly_lr_other_warmups(warmup):
    """mmcv 1.x's 'constant' (ratio) and 'exp' (ratio ** (1 - i / W)) warm-ups, and none."""
    from replk_mm.engine.schedulers import WarmupPolyLR
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = WarmupPolyLR(optimizer, power=0.9, eta_min=1e-4, warmup=warmup,
                             warmup_iters=10 if warmup else 0, warmup_ratio=0.25, end=50)
    for i in range(50):
        regular = (0.1 - 1e-4) * (1 - i / 50) ** 0.9 + 1e-4
        factor = 1.0 if warmup is None or i >= 10 else \
            0.25 if warmup == 'constant' else 0.25 ** (1 - i / 10)
        assert optimizer.param_groups[0]['lr'] == pytest.approx(regular * factor, rel=1e-12)
        optimizer.step()
        scheduler.step()


def _count_params(cfg):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS as SEG_MODELS
    init_default_scope('mmseg')
    model = SEG_MODELS.build(cfg.model)  # no init_weights(): no checkpoint needed
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name', sorted(MODELS))
def test_built_model_matches_paper_params(name):
    meta = MODELS[name]
    params = _count_params(copy.deepcopy(_config(name))) / 1e6
    paper = meta.metadata['Parameters (M)']
    assert abs(params - paper) / paper < 0.03, f'{name}: {params:.1f}M vs paper {paper}M'


def test_deploy_form_builds_with_the_same_heads():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'upernet_31b_ade20k.py'))
    train_params = _count_params(cfg)
    cfg.model.backbone.small_kernel_merged = True
    deploy_params = _count_params(cfg)
    assert deploy_params < train_params  # the 5x5 branches and their BNs are gone


def test_paper_config_takes_a_training_step_on_cpu():
    """upernet_31b_ade20k.py as users train it (gradient checkpointing, SyncBN built as BN on
    a CPU, the default autotuned depth-wise conv) computes a loss and gradients for every
    parameter; a small image keeps it at a few seconds."""
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.structures import SegDataSample

    from replk_mm.apis import adapt_to_device
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'upernet_31b_ade20k.py'))
    adapt_to_device(cfg, 'none')
    cfg.model.data_preprocessor.size = (64, 64)
    init_default_scope('mmseg')
    model = SEG_MODELS.build(cfg.model).train()
    assert model.backbone.with_cp
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                             pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64)))
        samples.append(sample)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 2,
             data_samples=samples), training=True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert torch.isfinite(total)
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, no_grad[:5]
