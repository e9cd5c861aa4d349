"""Every detection config loads, builds, matches the paper's parameter count (from
configs/metafile_det.yml, through model-index.yml) and the official recipe, including mmcv
1.x's warm-up."""
import glob
import os.path as osp

import pytest
import torch

pytest.importorskip('mmdet')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import replk_mm  # noqa: E402,F401
from replk_mm.utils.metafile import load_model_index  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'configs')
INDEX = load_model_index(osp.join(REPO, 'model-index.yml'))
MODELS = {m.name: m for m in INDEX if m.metafile.endswith('metafile_det.yml')}
FULL_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, 'cascade_mask_rcnn_*.py')) +
                      glob.glob(osp.join(CONFIG_DIR, 'fcos_*.py')))
DEMO_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, 'demo', 'cascade_mask_rcnn_*.py')) +
                      glob.glob(osp.join(CONFIG_DIR, 'demo', 'fcos_*.py')))
# The official configs (DingXiaoH/RepLKNet-pytorch, detection/configs): arch, drop path.
RECIPE = {
    'cascade_mask_rcnn_31b_3x_coco': ('31B', 0.6),
    'cascade_mask_rcnn_31b_in22k_3x_coco': ('31B', 0.4),
    'cascade_mask_rcnn_31l_in22k_3x_coco': ('31L', 0.7),
    'cascade_mask_rcnn_xl_megdata73m_3x_coco': ('XL', 0.5),
    'fcos_31b_2x_coco': ('31B', 0.5),
}


def mmcv1_warmup_factor(i, kind, warmup_iters, ratio):
    """mmcv 1.x LrUpdaterHook.get_warmup_lr: the factor on the regular lr before iteration i
    (mmcv/runner/hooks/lr_updater.py)."""
    if i >= warmup_iters:
        return 1.0
    if kind == 'linear':
        return 1 - (1 - i / warmup_iters) * (1 - ratio)
    assert kind == 'constant'
    return ratio


def name_of(path):
    return osp.splitext(osp.basename(path))[0]


def build_model(cfg):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


def test_the_five_configs_of_the_paper_exist():
    assert sorted(map(name_of, FULL_CONFIGS)) == sorted(RECIPE) == sorted(MODELS)
    assert len(DEMO_CONFIGS) == 2


@pytest.mark.parametrize('path', FULL_CONFIGS, ids=name_of)
def test_config_builds_with_the_paper_params(path):
    arch, drop_path = RECIPE[name_of(path)]
    meta = MODELS[name_of(path)]
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert 'replk_mm' in cfg.custom_imports.imports
    assert cfg.model.backbone.type == 'RepLKNet' and cfg.model.backbone.arch == arch
    assert cfg.model.backbone.drop_path_rate == drop_path
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    assert osp.basename(cfg.model.backbone.init_cfg.checkpoint) == \
        meta.metadata['Pretrained Weights']
    assert meta.weights_file.startswith(f'RepLKNet-{arch}_')
    assert cfg.auto_scale_lr.base_batch_size == meta.metadata['Batch Size']
    assert cfg.train_cfg.max_epochs == meta.metadata['Epochs']
    model = build_model(cfg)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    params_m = meta.metadata['Parameters (M)']
    assert abs(params - params_m) / params_m < 0.03, f'{params:.2f}M vs paper {params_m}M'


@pytest.mark.parametrize('path', [p for p in FULL_CONFIGS if 'cascade' in p], ids=name_of)
def test_cascade_recipe(path):
    cfg = Config.fromfile(path)
    model = cfg.model
    assert model.neck.in_channels == list(replk_mm.RepLKNet.parse_arch(
        model.backbone.arch)['channels'])
    assert model.backbone.norm_cfg.type == 'SyncBN'
    heads = model.roi_head.bbox_head
    assert len(heads) == 3
    for head in heads:
        assert head.type == 'ConvFCBBoxHead'
        assert (head.num_shared_convs, head.num_shared_fcs) == (4, 1)  # 4conv1fc
        assert head.norm_cfg.type == 'SyncBN'
        assert head.loss_bbox.type == 'GIoULoss' and head.reg_decoded_bbox
    assert [h.bbox_coder.target_stds[0] for h in heads] == [0.1, 0.05, 0.033]
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 4e-4, 0.05)
    assert 'momentum' not in optimizer
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0
    assert cfg.train_cfg.max_epochs == 36
    assert cfg.param_scheduler[-1].milestones == [27, 33]
    xl = model.backbone.arch == 'XL'
    assert cfg.train_dataloader.batch_size == (4 if xl else 1)
    assert cfg.auto_scale_lr.base_batch_size == 32
    assert bool(model.backbone.get('norm_intermediate_features')) == xl
    assert model.data_preprocessor.mean == ([127.5] * 3 if xl else [123.675, 116.28, 103.53])
    pipeline = cfg.train_dataloader.dataset.pipeline
    choice = [t for t in pipeline if t.type == 'RandomChoice'][0]
    assert [t.type for t in choice.transforms[1]] == \
        ['RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize']
    assert cfg.val_evaluator.metric == ['bbox', 'segm']


def test_fcos_recipe():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'fcos_31b_2x_coco.py'))
    assert cfg.model.neck.start_level == 1 and cfg.model.neck.add_extra_convs == 'on_output'
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 2e-4, 0.05)
    # the official file would merge SGD's momentum into AdamW: this config does not
    assert 'momentum' not in optimizer
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0
    assert cfg.optim_wrapper.clip_grad.max_norm == 35
    assert cfg.train_cfg.max_epochs == 24 and cfg.param_scheduler[-1].milestones == [16, 22]
    assert cfg.train_dataloader.batch_size == 2 and cfg.auto_scale_lr.base_batch_size == 16


def _iteration_lrs(scheduler_cfg, iters, lr=1.0):
    from mmengine.registry import PARAM_SCHEDULERS
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = PARAM_SCHEDULERS.build(dict(scheduler_cfg, optimizer=optimizer))
    lrs = []
    for _ in range(iters):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize('config,kind,ratio', [
    ('cascade_mask_rcnn_31b_3x_coco.py', 'linear', 0.001),
    ('fcos_31b_2x_coco.py', 'constant', 1.0 / 3),
])
def test_warmup_is_mmcv1(config, kind, ratio):
    """The iteration-based warm-up scheduler gives, before every one of the first 600
    iterations, the factor of the official mmcv 1.x warm-up (500 iterations)."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    warmup = cfg.param_scheduler[0]
    assert not warmup.by_epoch and cfg.param_scheduler[1].by_epoch  # steps are per epoch
    lrs = _iteration_lrs(warmup, 600)
    expected = [mmcv1_warmup_factor(i, kind, 500, ratio) for i in range(600)]
    assert lrs == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize('path', DEMO_CONFIGS, ids=name_of)
def test_demo_configs_build(path):
    cfg = Config.fromfile(path)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) < 6e6  # CPU-sized
    kernels = cfg.model.backbone.arch.large_kernel_sizes
    assert kernels == [31, 29, 27, 13]  # the real large kernels, only narrower


def test_full_config_runs_a_forward_pass_on_cpu():
    """The 31B detector (SyncBN turned into BN on CPU) predicts on a small image."""
    from mmdet.structures import DetDataSample

    from replk_mm.apis import adapt_to_device
    cfg = Config.fromfile(FULL_CONFIGS[0])
    adapt_to_device(cfg, 'none')
    model = build_model(cfg).eval()
    sample = DetDataSample(metainfo=dict(img_shape=(128, 160), ori_shape=(128, 160),
                                         scale_factor=(1., 1.), pad_shape=(128, 160)))
    with torch.no_grad():
        data = model.data_preprocessor(
            dict(inputs=[torch.randint(0, 255, (3, 128, 160), dtype=torch.uint8)],
                 data_samples=[sample]), False)
        result = model(**data, mode='predict')[0]
    assert 'masks' in result.pred_instances and 'bboxes' in result.pred_instances


def test_full_config_takes_a_training_step_on_cpu():
    """cascade_mask_rcnn_31b_3x_coco.py as users train it (gradient checkpointing, BN instead
    of SyncBN on a CPU, autotuned depth-wise conv) computes every loss and gradient."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    from replk_mm.apis import adapt_to_device
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'cascade_mask_rcnn_31b_3x_coco.py'))
    adapt_to_device(cfg, 'none')
    model = build_model(cfg).train()
    assert model.backbone.with_cp
    samples = []
    for _ in range(2):
        sample = DetDataSample(metainfo=dict(img_shape=(128, 160), ori_shape=(128, 160),
                                             scale_factor=(1., 1.), pad_shape=(128, 160)))
        mask = torch.zeros(1, 128, 160, dtype=torch.uint8)
        mask[:, 30:90, 40:120] = 1
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[40., 30., 120., 90.]]),
                                           labels=torch.tensor([3]),
                                           masks=BitmapMasks(mask.numpy(), 128, 160))
        samples.append(sample)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 128, 160), dtype=torch.uint8)] * 2,
             data_samples=samples), True)
    losses = model(**data, mode='loss')
    total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert torch.isfinite(total)
    assert {'s0.loss_cls', 's2.loss_bbox', 's2.loss_mask'} <= set(losses)
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
