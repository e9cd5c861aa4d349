"""The UniRepLKNet configs (configs/unireplknet): one per image result of the official README,
each with its metafile entry, following the official recipe item by item (restated below from
AILab-CVC/UniRepLKNet segmentation/configs/ade20k, detection/configs/coco, datasets.py and
mmcv_custom/unireplknet_layer_decay_optimizer_constructor.py), building the models the
released checkpoints fit, with the official layer-wise lr decay and weight-decay rule."""
import copy
import functools
import glob
import importlib
import os.path as osp

import numpy as np
import pytest
import torch
from fast_test_helpers import cached_package_metafiles, one_torch_thread
from mmengine.registry import DefaultScope, init_default_scope

from replk_mm.apis import load_config
from replk_mm.utils.metafile import load_model_index

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
INDEX = load_model_index(osp.join(REPO, 'model-index.yml'))
METAFILE = 'configs/metafile_unireplknet.yml'
MODELS = {m.name: m for m in INDEX if osp.relpath(m.metafile, REPO) == METAFILE}
CONFIG_DIR = osp.join(REPO, 'configs', 'unireplknet')

WIDTHS = {'A': 320, 'F': 384, 'P': 512, 'N': 640, 'T': 640, 'S': 768, 'B': 1024, 'L': 1536,
          'XL': 2048}
STAGE_CHANNELS = {a: [w // 8, w // 4, w // 2, w] for a, w in WIDTHS.items()}
PRETRAINED = {'T': 'unireplknet_t_in1k_224_acc83.21.pth',
              'S': 'unireplknet_s_in1k_224_acc83.91.pth',
              'S22': 'unireplknet_s_in22k_to_in1k_384_acc86.44.pth',
              'B22': 'unireplknet_b_in22k_to_in1k_384_acc87.40.pth',
              'L22': 'unireplknet_l_in22k_to_in1k_384_acc87.88.pth',
              'XL22': 'unireplknet_xl_in22k_to_in1k_384_acc87.96.pth'}

# segmentation/configs/ade20k/upernet_unireplknet_*_160k_ade20k.py: arch, drop_path_rate,
# with_cp, decay_rate, num_layers, crop, init checkpoint. XL: no official config (the L recipe).
_SEG = 'upernet_unireplknet-{}_8xb2-160k_ade20k-{}x{}'
SEG = {
    _SEG.format('t', 512, 512): dict(arch='T', drop=0.2, cp=False, rate=1.0, layers=9,
                                     crop=512, pre='T'),
    _SEG.format('s', 512, 512): dict(arch='S', drop=0.3, cp=True, rate=0.9, layers=12,
                                     crop=512, pre='S'),
    _SEG.format('s_in22k-pre', 512, 512): dict(arch='S', drop=0.3, cp=True, rate=0.9,
                                               layers=12, crop=512, pre='S22'),
    _SEG.format('s_in22k-pre', 640, 640): dict(arch='S', drop=0.3, cp=True, rate=0.9,
                                               layers=12, crop=640, pre='S22'),
    _SEG.format('b_in22k-pre', 640, 640): dict(arch='B', drop=0.3, cp=True, rate=0.9,
                                               layers=12, crop=640, pre='B22'),
    _SEG.format('l_in22k-pre', 640, 640): dict(arch='L', drop=0.4, cp=True, rate=0.85,
                                               layers=12, crop=640, pre='L22'),
    _SEG.format('xl_in22k-pre', 640, 640): dict(arch='XL', drop=0.4, cp=True, rate=0.85,
                                                layers=12, crop=640, pre='XL22'),
}
# detection/configs/coco/casc_mask_rcnn_unireplknet_*_fpn_3x_coco.py: arch, drop_path_rate,
# decay_rate (num_layers 12 in all, T's too), ExpMomentumEMAHook or not, init checkpoint (empty
# in the official configs: the segmentation configs' files).
_DET = 'cascade-mask-rcnn_unireplknet-{}_fpn_8xb2-ms-crop-3x_coco'
DET = {
    _DET.format('t'): dict(arch='T', drop=0.3, rate=0.8, ema=False, pre='T'),
    _DET.format('s'): dict(arch='S', drop=0.5, rate=0.8, ema=False, pre='S'),
    _DET.format('s_in22k-pre'): dict(arch='S', drop=0.5, rate=0.8, ema=True, pre='S22'),
    _DET.format('b_in22k-pre'): dict(arch='B', drop=0.6, rate=0.8, ema=True, pre='B22'),
    _DET.format('l_in22k-pre'): dict(arch='L', drop=0.7, rate=0.7, ema=True, pre='L22'),
    _DET.format('xl_in22k-pre'): dict(arch='XL', drop=0.7, rate=0.7, ema=True, pre='XL22'),
}
# README "ImageNet-1K Pretrained Weights" (224) and "Pretrained on ImageNet-22K then finetuned
# on ImageNet-1K" (384); datasets.py: resize to size / 0.875 + centre crop below 384, warp at 384.
CLS = {f'unireplknet-{a.lower()}_in1k': dict(arch=a, size=224) for a in 'AFPNTS'}
CLS.update({f'unireplknet-{a.lower()}_in22k-pre_in1k-384px': dict(arch=a, size=384)
            for a in ('S', 'B', 'L', 'XL')})
RECIPES = {**SEG, **DET, **CLS}


@functools.lru_cache(maxsize=None)
def _config(name):
    """The parsed config (parsed once per test run; do not modify)."""
    with cached_package_metafiles():
        return load_config(osp.join(CONFIG_DIR, name + '.py'))


def official_layer_id(name, num_layers):
    """The official `get_layer_id` (mmcv_custom/unireplknet_layer_decay_optimizer_constructor.py,
    layer_wise), restated: ``name`` is a parameter name of the whole model."""
    parts = name.split('.')
    if name.startswith('backbone.downsample_layers'):
        return (0, 2, 3, num_layers)[int(parts[2])]
    if name.startswith('backbone.stages'):
        stage, block = int(parts[2]), int(parts[3])
        return (1, 2, 3 + block // 3, num_layers)[stage]
    return num_layers + 1


def official_weight_decay(name, param, weight_decay):
    return 0. if param.ndim == 1 or name.endswith('.bias') else weight_decay


def test_one_config_and_one_entry_per_official_result():
    configs = {osp.splitext(osp.basename(p))[0]
               for p in glob.glob(osp.join(CONFIG_DIR, '*.py'))}
    assert configs == set(MODELS) == set(RECIPES)
    assert len(SEG) == 7 and len(DET) == 6 and len(CLS) == 10
    for name, entry in MODELS.items():
        assert entry.config == f'configs/unireplknet/{name}.py'
        meta = entry.metadata
        arch = RECIPES[name]['arch']
        assert meta['Backbone'] == f'UniRepLKNet-{arch}'
        assert meta['Parameters (M)'] > 0 and meta['FLOPs (G)'] > 0
        if name in SEG:
            assert entry.metric('mIoU(ms)') >= entry.metric('mIoU') > 40
            crop = SEG[name]['crop']
            assert meta['FLOPs Input (HxW)'] == f'{crop}x{4 * crop}'
            assert meta['Batch Size'] == 16 and meta['Iterations'] == 160000
        elif name in DET:
            assert entry.metric('box AP') > entry.metric('mask AP') > 40
            assert meta['FLOPs Input (HxW)'] == '800x1280'
            assert meta['Batch Size'] == 16 and meta['Epochs'] == 36
        else:
            size = CLS[name]['size']
            assert meta['FLOPs Input (HxW)'] == f'{size}x{size}'
            assert 75 < entry.metric('Top 1 Accuracy') < 90
        # the released model: a named file, or the README link when no file name is published
        assert entry.weights or meta['Official Weights URL'].startswith('https://')


@pytest.mark.parametrize('name', sorted(SEG))
def test_segmentation_recipe(name):
    recipe, meta = SEG[name], MODELS[name].metadata
    cfg = _config(name)
    assert cfg.default_scope == 'mmseg'
    assert {'replk_mm', 'replk_mm.engine.schedulers', 'replk_mm.engine.optimizers'} <= \
        set(cfg.custom_imports['imports'])
    backbone = cfg.model.backbone
    assert backbone.type == 'UniRepLKNet' and backbone.arch == recipe['arch']
    assert backbone.drop_path_rate == recipe['drop'] and backbone.with_cp is recipe['cp']
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert backbone.norm_cfg.type == 'SyncBN'  # official UniRepLKNetBackbone: use_sync_bn=True
    assert backbone.init_cfg.type == 'Pretrained'
    assert osp.basename(backbone.init_cfg.checkpoint) == PRETRAINED[recipe['pre']] == \
        meta['Pretrained Weights']
    channels = STAGE_CHANNELS[recipe['arch']]
    assert cfg.model.decode_head.in_channels == channels
    assert cfg.model.auxiliary_head.in_channels == channels[2]
    assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 150
    assert cfg.model.decode_head.channels == 512 and cfg.model.auxiliary_head.channels == 256

    optim = cfg.optim_wrapper
    assert optim.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                                   weight_decay=0.05)
    assert optim.paramwise_cfg.layer_decay_rate == recipe['rate']
    assert optim.paramwise_cfg.num_layers == recipe['layers']
    assert optim.get('clip_grad') is None
    (sched, ) = cfg.param_scheduler
    assert sched == dict(type='WarmupPolyLR', power=1.0, eta_min=0.0, warmup='linear',
                         warmup_iters=1500, warmup_ratio=1e-6, by_epoch=False)
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_cfg.val_interval == 4000
    assert cfg.default_hooks.checkpoint.interval == 4000
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 20
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 16

    crop = recipe['crop']
    scale = (4 * crop, crop)
    assert cfg.crop_size == (crop, crop) and cfg.model.data_preprocessor['size'] == (crop, crop)
    train = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResize']['scale'] == scale
    assert train['RandomResize']['ratio_range'] == (0.5, 2.0)
    assert train['RandomCrop']['crop_size'] == (crop, crop)
    assert train['RandomCrop']['cat_max_ratio'] == 0.75
    assert cfg.model.test_cfg.mode == 'whole'
    test = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert test[:3] == ['LoadImageFromFile', 'Resize', 'ResizeToMultiple']
    assert cfg.test_dataloader.dataset.pipeline[1]['scale'] == scale
    assert cfg.test_dataloader.dataset.pipeline[2]['size_divisor'] == 32
    # --tta: mmseg 0.x --aug-test on this test scale
    resizes = cfg.tta_pipeline[1].transforms[0]
    assert [r['scale'] for r in resizes] == [(int(scale[0] * r), int(scale[1] * r))
                                             for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]


@pytest.mark.parametrize('name', sorted(DET))
def test_detection_recipe(name):
    recipe, meta = DET[name], MODELS[name].metadata
    cfg = _config(name)
    assert cfg.default_scope == 'mmdet'
    assert 'replk_mm.engine.optimizers' in cfg.custom_imports['imports']
    backbone = cfg.model.backbone
    assert backbone.type == 'UniRepLKNet' and backbone.arch == recipe['arch']
    assert backbone.drop_path_rate == recipe['drop'] and backbone.with_cp is True
    assert backbone.norm_cfg.type == 'SyncBN'
    assert osp.basename(backbone.init_cfg.checkpoint) == PRETRAINED[recipe['pre']] == \
        meta['Pretrained Weights']
    assert 'small_kernel_merged' not in backbone  # the RepLKNet base's backbone is replaced
    assert cfg.model.neck.in_channels == STAGE_CHANNELS[recipe['arch']]
    heads = cfg.model.roi_head.bbox_head
    assert [h.num_shared_convs for h in heads] == [4, 4, 4]
    assert all(h.loss_bbox.type == 'GIoULoss' and h.reg_decoded_bbox for h in heads)

    optim = cfg.optim_wrapper
    assert optim.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                                   weight_decay=0.05)
    assert optim.paramwise_cfg.layer_decay_rate == recipe['rate']
    assert optim.paramwise_cfg.num_layers == 12
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end, warmup.by_epoch) == \
        ('LinearLR', 0.001, 501, False)
    assert (steps.type, steps.milestones, steps.gamma) == ('MultiStepLR', [27, 33], 0.1)
    assert cfg.train_cfg.max_epochs == 36
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 16
    hooks = cfg.get('custom_hooks') or []
    ema = [h for h in hooks if h['type'] == 'EMAHook']
    if recipe['ema']:
        assert ema == [dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001,
                            gamma=2000, update_buffers=True, priority=49)]
    else:
        assert not ema
    checkpoint = cfg.default_hooks.checkpoint
    assert (checkpoint.interval, checkpoint.max_keep_ckpts, checkpoint.save_last) == (1, 5, True)
    # the DETR-style augmentation and mmdet's 1333x800 test
    assert [t['type'] for t in cfg.train_dataloader.dataset.pipeline][2:4] == \
        ['RandomFlip', 'RandomChoice']
    assert cfg.test_dataloader.dataset.pipeline[1]['scale'] == (1333, 800)


@pytest.mark.parametrize('name', sorted(CLS))
def test_classifier_config(name):
    recipe = CLS[name]
    cfg = _config(name)
    assert cfg.default_scope == 'mmpretrain'
    backbone = cfg.model.backbone
    assert backbone.type == 'replk_mm.UniRepLKNet' and backbone.arch == recipe['arch']
    assert backbone.gap_before_final_norm is True and tuple(backbone.out_indices) == (3, )
    assert cfg.model.neck is None
    assert cfg.model.head.in_channels == WIDTHS[recipe['arch']]
    assert cfg.model.head.num_classes == 1000
    assert cfg.data_preprocessor['mean'] == [123.675, 116.28, 103.53]
    test = {t['type']: t for t in cfg.test_dataloader.dataset.pipeline}
    size = recipe['size']
    if size < 384:  # int(224 / 0.875) = 256, centre crop
        assert test['ResizeEdge']['scale'] == 256 and test['CenterCrop']['crop_size'] == 224
    else:  # warped, no crop
        assert test['Resize']['scale'] == (384, 384) and 'CenterCrop' not in test
    assert cfg.train_dataloader is None and cfg.optim_wrapper is None


def _build(cfg, scope, device='meta'):
    """The config's model, built in its scope on ``device`` (meta: shapes only, no memory)."""
    registry = importlib.import_module(f'{scope}.registry').MODELS
    init_default_scope(scope)
    with DefaultScope.overwrite_default_scope(scope), torch.device(device):
        return registry.build(cfg.model)


@pytest.fixture(scope='module')
def det_t():
    """The COCO UniRepLKNet-T detector (full size, on the meta device: shapes only)."""
    return _build(_config(_DET.format('t')), 'mmdet')


def test_layer_decay_ids_are_the_official_ones(det_t):
    """The backbone gives every parameter of the COCO UniRepLKNet-T detector the official
    layer id for the config's num_layers (12: stage 3 is layer 12 although T's stage 2 ends
    at layer 8)."""
    num_layers = _config(_DET.format('t')).optim_wrapper.paramwise_cfg.num_layers
    ids = {}
    for name, _ in det_t.named_parameters():
        got = det_t.backbone.get_layer_depth(name, 'backbone.', max_layer_id=num_layers)
        assert got == (official_layer_id(name, num_layers), num_layers + 2), name
        ids[got[0]] = ids.get(got[0], 0) + 1
    assert sorted(ids) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13]


def test_weight_decay_is_the_official_rule(det_t):
    """mmengine's multipliers in the configs' paramwise_cfg give every parameter the weight
    decay of the official constructor (none on 1-D parameters and `*.bias`)."""
    from mmengine.optim import DefaultOptimWrapperConstructor
    optim = _config(_DET.format('t')).optim_wrapper.to_dict()
    paramwise = {k: v for k, v in optim.pop('paramwise_cfg').items()
                 if k.endswith('_decay_mult')}
    optim.pop('constructor')
    wrapper = DefaultOptimWrapperConstructor(optim, paramwise)(det_t)
    names = {id(p): n for n, p in det_t.named_parameters()}
    checked = 0
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            name = names[id(param)]
            assert group['weight_decay'] == official_weight_decay(name, param, 0.05), name
            checked += 1
    assert checked == len(names)


@pytest.mark.parametrize('name', [_SEG.format('s', 512, 512), _DET.format('t')])
def test_configured_constructor_gives_the_official_learning_rates(name, det_t):
    """The config's optimizer gives every parameter the official lr (lr x rate ** (N + 1 -
    official id), N the config's num_layers) and weight decay. COCO UniRepLKNet-T's N is 12
    where T's depth gives 9, so the constructor must take the config's num_layers."""
    from mmengine.optim import build_optim_wrapper

    import replk_mm.engine.optimizers  # noqa: F401  (registers the constructor)
    cfg = _config(name)
    model = det_t if name in DET else _build(cfg, 'mmseg')
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr, wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    rate = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    num_layers = cfg.optim_wrapper.paramwise_cfg.num_layers
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            name = names[id(param)]
            scale = rate ** (num_layers + 1 - official_layer_id(name, num_layers))
            assert group['lr'] == pytest.approx(lr * scale), \
                f'{name}: lr x {group["lr"] / lr:.4g}, official x {scale:.4g}'
            assert group['weight_decay'] == official_weight_decay(name, param, wd), name


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_params_match_the_readme(name):
    """Every config's model, built at full size on the meta device in the re-parameterized
    form (the form the README counts: its ImageNet #params are the deploy form's), has the
    README's parameter count within 2% (all parameters, auxiliary head included)."""
    cfg = copy.deepcopy(_config(name))
    cfg.model.backbone.small_kernel_merged = True
    model = _build(cfg, cfg.default_scope)
    params = sum(p.numel() for p in model.parameters())
    paper = MODELS[name].metadata['Parameters (M)']
    assert abs(params / 1e6 / paper - 1) < 0.02, params


def test_segmentation_test_pipeline_sizes():
    """The official single-scale test: keep-ratio resize to the test scale, then to a
    multiple of 32 (mmseg 0.x ResizeToMultiple)."""
    from mmcv.transforms import Compose
    cfg = _config(_SEG.format('s_in22k-pre', 640, 640))
    with DefaultScope.overwrite_default_scope('mmseg'):
        import mmseg.datasets  # noqa: F401  (registers the transforms)
        resize = Compose(cfg.test_dataloader.dataset.pipeline[1:3])
    out = resize(dict(img=np.zeros((500, 700, 3), np.uint8), img_shape=(500, 700),
                      ori_shape=(500, 700)))
    h, w = out['img'].shape[:2]
    assert h % 32 == 0 and w % 32 == 0 and abs(h - 640) <= 16 and abs(w - 896) <= 16


def test_classifier_builds_and_takes_the_converted_official_layout():
    """UniRepLKNet-A's classifier: the state dict `convert_official_classifier` makes from
    the official layout is exactly the model's, and it classifies."""
    from replk_mm.models.backbones.unireplknet import convert_official_classifier
    with one_torch_thread():
        model = _build(_config('unireplknet-a_in1k'), 'mmpretrain', device='cpu')
        ours = model.state_dict()
        official = {}
        for key, value in ours.items():  # the official names, restated
            if key.startswith('head.fc.'):
                official['head.' + key[len('head.fc.'):]] = value
            elif key.startswith('backbone.norm3.'):
                official['norm.' + key[len('backbone.norm3.'):]] = value
            else:
                official[key[len('backbone.'):]] = value
        converted = convert_official_classifier(official)
        assert set(converted) == set(ours)
        model.load_state_dict(converted, strict=True)
        model.eval()
        with torch.no_grad():
            logits = model(torch.zeros(1, 3, 64, 64), mode='tensor')
        assert logits.shape == (1, 1000)
