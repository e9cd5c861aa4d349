"""The ImageNet configs (configs/imagenet): they build with the parameter count and state-dict
layout of mmpretrain's own RepLKNet classifiers, follow the official recipe (README commands,
main.py / datasets.py defaults, restated below), give the official model's logits for an
official checkpoint, and take a CPU training step on an ImageNet-layout folder."""
import importlib.util
import os.path as osp
import re

import mmpretrain
import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml
from conftest import TINY_ARCH, randomize_bn
from fast_test_helpers import one_torch_thread
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS, DefaultScope
from official_layout import imagenet_checkpoint, official_backbone_keys

from replk_mm.apis import load_config
from replk_mm.apis.builder import build_model
from replk_mm.fileio import read_checkpoint
from replk_mm.layers import RepLKNetTrunk
from replk_mm.models import convert_mmpretrain_to_official
from replk_mm.models.checkpoint import CheckpointMismatchError, load_model_state_dict
from replk_mm.utils.metafile import load_model_index

pytestmark = pytest.mark.usefixtures('fast_config_parsing')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
INDEX = load_model_index(osp.join(REPO, 'model-index.yml'))
MODELS = {m.name: m for m in INDEX if m.metafile.endswith('metafile_imagenet.yml')}
MMPRETRAIN = osp.dirname(mmpretrain.__file__)

IMAGENET_MEAN, IMAGENET_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
# The official commands (DingXiaoH/RepLKNet-pytorch README, "Training"; main.py defaults for
# what they do not set): arch, input size, --drop_path, --lr, --min_lr, --weight_decay,
# --epochs, --warmup_epochs, global batch (nodes x GPUs x --batch_size x --update_freq),
# mixup/cutmix on, --layer_decay. XL: RepLKNet arXiv 2203.06717v1, Appendix A (320x320, 30
# epochs, lr 1e-4, stage-wise lr decay 0.4), the rest the official fine-tune recipe (FT).
FT = dict(lr=4e-4, min_lr=1e-6, wd=1e-8, epochs=30, warmup=1, mixup=False, layer_decay=0.7)
RECIPE = {
    'replknet-31B_32xb64_in1k': dict(
        arch='31B', size=224, drop=0.5, lr=4e-3, min_lr=1e-6, wd=0.05, epochs=300, warmup=10,
        batch=4 * 8 * 64, mixup=True, layer_decay=None),
    'replknet-31B_32xb32_in1k-384px': dict(FT, arch='31B', size=384, drop=0.8,
                                           batch=4 * 8 * 32),
    'replknet-31B_in21k-pre_16xb32_in1k': dict(FT, arch='31B', size=224, drop=0.2,
                                               batch=2 * 8 * 32),
    'replknet-31B_in21k-pre_32xb16_in1k-384px': dict(FT, arch='31B', size=384, drop=0.3,
                                                     min_lr=3e-4, batch=4 * 8 * 16),
    'replknet-31L_in21k-pre_32xb16_in1k-384px': dict(FT, arch='31L', size=384, drop=0.3,
                                                     min_lr=3e-4, batch=4 * 8 * 16),
    'replknet-XL_meg73m-pre_in1k-320px': dict(FT, arch='XL', size=320, drop=0.2, lr=1e-4,
                                              layer_decay=0.4, batch=32 * 16),
}
ARCHS = {'31B': dict(layers=[2, 2, 18, 2], width=1024, small_kernel=True),
         '31L': dict(layers=[2, 2, 18, 2], width=1536, small_kernel=True),
         'XL': dict(layers=[2, 2, 18, 2], width=2048, small_kernel=False)}
TINY = dict(TINY_ARCH, _delete_=True)  # channels 8-16-32-64
# native depth-wise convs: no backend autotuning (measured on first use) in these short runs
TINY_OPTIONS = {'model.backbone.arch': TINY, 'model.backbone.norm_cfg': dict(type='BN'),
                'model.backbone.dw_conv_backend': 'native', 'model.head.in_channels': 64}


@pytest.fixture
def one_thread():
    with one_torch_thread():
        yield


def config_of(name, options=None):
    return load_config(INDEX.config_path(MODELS[name]), options)


def mmpretrain_parameters():
    """Weights URL -> parameter count, from mmpretrain's own RepLKNet metafile."""
    with open(osp.join(MMPRETRAIN, '.mim', 'configs', 'replknet', 'metafile.yml')) as f:
        models = yaml.safe_load(f)['Models']
    return {m['Weights']: m['Metadata']['Parameters'] for m in models}


def mmpretrain_layout(official_keys):
    """Official classifier keys as mmpretrain's replknet_to_mmpretrain.py renames them."""
    renamed = []
    for key in official_keys:
        if key.startswith('norm.'):
            renamed.append('backbone.stages.3.' + key)
        elif key.startswith('head.'):
            renamed.append('head.fc.' + key[len('head.'):])
        else:
            renamed.append('backbone.' + key)
    return renamed


def test_every_recipe_has_a_metafile_entry():
    assert set(RECIPE) == set(MODELS)
    for entry in MODELS.values():
        assert entry.metric('Top 1 Accuracy') > 80
        assert entry.weights_file == osp.basename(entry.weights)


@pytest.mark.parametrize('name', sorted(RECIPE))
def test_config_builds_mmpretrain_replknet_layout(name):
    cfg, arch = config_of(name), ARCHS[RECIPE[name]['arch']]
    with torch.device('meta'):
        model = build_model(cfg)
    official = official_backbone_keys(arch['layers'], arch['small_kernel']) + [
        f'norm.{k}' for k in ('weight', 'bias', 'running_mean', 'running_var',
                              'num_batches_tracked')] + ['head.weight', 'head.bias']
    assert sorted(model.state_dict()) == sorted(mmpretrain_layout(official))
    params = sum(p.numel() for p in model.parameters())
    assert params == mmpretrain_parameters()[MODELS[name].weights]
    # the README gives whole millions, rounded down (79.86M -> 79M, 172.67M -> 172M)
    assert int(params / 1e6) == MODELS[name].metadata['Parameters (M)']


@pytest.mark.parametrize('name', sorted(RECIPE))
def test_config_follows_official_recipe(name):
    cfg, recipe = config_of(name), RECIPE[name]
    assert cfg.default_scope == 'mmpretrain'
    assert {'replk_mm', 'replk_mm.engine.optimizers'} <= set(cfg.custom_imports.imports)
    backbone, head = cfg.model.backbone, cfg.model.head
    assert backbone.type == 'replk_mm.RepLKNet' and backbone.arch == recipe['arch']
    assert tuple(backbone.out_indices) == (3, ) and backbone.norm_intermediate_features
    assert backbone.drop_path_rate == recipe['drop'] and backbone.norm_cfg.type == 'SyncBN'
    assert head.in_channels == ARCHS[recipe['arch']]['width'] and head.num_classes == 1000
    assert head.loss == dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')

    # test transform (datasets.py): resize to size / 0.875 and centre-crop below 384, else warp
    size = recipe['size']
    test = [t for t in cfg.test_dataloader.dataset.pipeline if t.type not in
            ('LoadImageFromFile', 'PackInputs')]
    if size < 384:
        assert test == [dict(type='ResizeEdge', scale=int(size / 0.875), edge='short',
                             backend='pillow', interpolation='bicubic'),
                        dict(type='CenterCrop', crop_size=size)]
    else:
        assert test == [dict(type='Resize', scale=(size, size), backend='pillow',
                             interpolation='bicubic')]
    xl = recipe['arch'] == 'XL'  # README: mean = std = 0.5 for XL
    assert cfg.data_preprocessor.mean == ([127.5] * 3 if xl else IMAGENET_MEAN)
    assert cfg.data_preprocessor.std == ([127.5] * 3 if xl else IMAGENET_STD)
    assert cfg.data_preprocessor.to_rgb
    if xl:  # stage-wise decay: every stage of [2, 2, 18, 2] one layer id (stem 0 ... head 5)
        assert cfg.optim_wrapper.paramwise_cfg.blocks_per_layer == 18

    # timm create_transform with main.py's defaults
    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResizedCrop'].scale == size
    assert train['RandomResizedCrop'].interpolation == 'bicubic'
    assert train['RandomFlip'].prob == 0.5
    assert (train['RandAugment'].policies, train['RandAugment'].num_policies,
            train['RandAugment'].magnitude_level, train['RandAugment'].magnitude_std) == \
        ('timm_increasing', 2, 9, 0.5)  # rand-m9-mstd0.5-inc1
    assert (train['RandomErasing'].erase_prob, train['RandomErasing'].mode) == (0.25, 'rand')
    assert train['RandomErasing'].max_area_ratio == pytest.approx(1 / 3)
    assert 'ColorJitter' not in train  # timm applies none with RandAugment

    if xl:  # the batch is not in the paper: the authors' 384x384 fine-tunes' 32 x 16
        gpus, per_gpu = 32, 16
    else:
        gpus, per_gpu = (int(n) for n in re.search(r'_(\d+)xb(\d+)_', name).groups())
    assert cfg.train_dataloader.batch_size == per_gpu
    assert gpus * per_gpu == recipe['batch'] == cfg.auto_scale_lr.base_batch_size

    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay, optimizer.eps,
            tuple(optimizer.betas)) == ('AdamW', recipe['lr'], recipe['wd'], 1e-8, (0.9, 0.999))
    paramwise = cfg.optim_wrapper.paramwise_cfg
    assert paramwise.norm_decay_mult == paramwise.bias_decay_mult == \
        paramwise.flat_decay_mult == 0
    if recipe['layer_decay']:
        assert cfg.optim_wrapper.constructor == 'RepLKNetLayerDecayOptimWrapperConstructor'
        assert paramwise.layer_decay_rate == recipe['layer_decay']
    else:
        assert 'constructor' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.get('clip_grad') is None
    assert cfg.train_cfg.max_epochs == recipe['epochs']
    assert bool(cfg.model.get('train_cfg')) == recipe['mixup']
    if recipe['mixup']:
        assert cfg.model.train_cfg.augments == [dict(type='Mixup', alpha=0.8),
                                                dict(type='CutMix', alpha=1.0)]
    assert cfg.custom_hooks == [dict(type='EMAHook', momentum=1e-4, update_buffers=True,
                                     priority='ABOVE_NORMAL')]  # --model_ema_decay 0.9999
    if recipe['layer_decay']:
        checkpoint = cfg.model.init_cfg.checkpoint
        assert cfg.model.init_cfg.type == 'Pretrained' and checkpoint.startswith('checkpoints/')


def official_lr(base, final, epochs, niter, warmup_epochs):
    """utils.cosine_scheduler of the official code: linspace(0, base) over the warm-up
    iterations, then cosine from base to final over the rest, one value per iteration."""
    warmup = warmup_epochs * niter
    rest = epochs * niter - warmup
    return list(np.linspace(0, base, warmup)) + [
        final + 0.5 * (base - final) * (1 + np.cos(np.pi * i / rest)) for i in range(rest)]


def simulated_lr(cfg, niter, scales):
    """The lr of param groups with these layer scales at every iteration, stepping the config's
    schedulers as mmengine's runner does (epoch-based configs converted to iterations)."""
    base = cfg.optim_wrapper.optimizer.lr
    params = [nn.Parameter(torch.zeros(1)) for _ in scales]
    optimizer = torch.optim.SGD([dict(params=[p], lr=base * s) for p, s in zip(params, scales)],
                                lr=base)
    wrapper = OptimWrapper(optimizer)
    schedulers = []
    for scheduler in cfg.param_scheduler:
        kwargs = dict(scheduler)
        cls = PARAM_SCHEDULERS.get(kwargs.pop('type'))
        assert kwargs.pop('convert_to_iter_based')  # the official schedule is per iteration
        kwargs.setdefault('end', cfg.train_cfg.max_epochs)  # what the runner does
        schedulers.append(cls.build_iter_from_epoch(wrapper, epoch_length=niter, **kwargs))
    curve = []
    for _ in range(cfg.train_cfg.max_epochs * niter):
        curve.append([g['lr'] for g in optimizer.param_groups])
        for scheduler in schedulers:
            scheduler.step()
    return np.array(curve)


@pytest.mark.parametrize('name', ['replknet-31B_32xb64_in1k',
                                  'replknet-31B_in21k-pre_32xb16_in1k-384px'])
def test_lr_schedule_is_the_official_one(name):
    cfg, recipe = config_of(name), RECIPE[name]
    niter = 5
    # the head and, with layer decay, the stem (whose whole curve, floor included, is scaled)
    scales = [1.0, 0.7 ** 13] if recipe['layer_decay'] else [1.0]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ours = simulated_lr(cfg, niter, scales)
    theirs = np.array(official_lr(recipe['lr'], recipe['min_lr'], recipe['epochs'], niter,
                                  recipe['warmup']))
    warmup = recipe['warmup'] * niter
    for column, scale in enumerate(scales):
        # after the warm-up: identical; during it mmengine's LinearLR reaches the lr one
        # iteration later than the official linspace
        np.testing.assert_allclose(ours[warmup:, column], theirs[warmup:] * scale, rtol=1e-6)
        assert np.abs(ours[:warmup, column] - theirs[:warmup] * scale).max() <= \
            recipe['lr'] * scale / (warmup - 1) * 1.001


class OfficialClassifier(RepLKNetTrunk):
    """The official ImageNet model (replknet.py with num_classes): trunk, final BN `norm`,
    global average pooling, linear `head`, with the official state-dict keys."""

    def __init__(self, arch, num_classes):
        super().__init__(arch, out_indices=(len(arch['channels']) - 1, ))
        self.norm = nn.BatchNorm2d(arch['channels'][-1])
        self.head = nn.Linear(arch['channels'][-1], num_classes)

    def forward(self, x):
        x = self.norm(super().forward(x)[-1])
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def mmpretrain_converter():
    """mmpretrain's tools/model_converters/replknet_to_mmpretrain.py (installed with it)."""
    path = osp.join(MMPRETRAIN, '.mim', 'tools', 'model_converters',
                    'replknet_to_mmpretrain.py')
    spec = importlib.util.spec_from_file_location('replknet_to_mmpretrain', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.convert


def test_official_checkpoint_gives_official_logits(tmp_path, capsys, one_thread):
    official = randomize_bn(OfficialClassifier(TINY_ARCH, num_classes=10), 3).eval()
    state = imagenet_checkpoint(
        {k: v for k, v in official.state_dict().items() if not k.startswith(('norm.', 'head.'))})
    official.load_state_dict(state, strict=True)  # the official layout, key for key
    torch.save(state, tmp_path / 'official.pth')
    mmpretrain_converter()(str(tmp_path / 'official.pth'), str(tmp_path / 'converted.pth'))
    capsys.readouterr()  # the converter prints every key

    cfg = config_of('replknet-31B_32xb64_in1k', dict(TINY_OPTIONS, **{
        'model.head.num_classes': 10}))
    model = build_model(cfg).eval()
    with pytest.raises(CheckpointMismatchError, match='no key of the checkpoint matches'):
        load_model_state_dict(model, state, strict=True)  # the official file, unconverted
    converted = read_checkpoint(str(tmp_path / 'converted.pth'))
    load_model_state_dict(model, converted, strict=True)  # what tools/test.py does

    with DefaultScope.overwrite_default_scope('mmpretrain'):  # mmpretrain's own RepLKNet
        theirs = build_model(config_of('replknet-31B_32xb64_in1k', {
            'model.backbone': dict(type='mmpretrain.RepLKNet', arch=dict(TINY_ARCH, dw_ratio=1),
                                   out_indices=(3, ), _delete_=True),
            'model.head.in_channels': 64, 'model.head.num_classes': 10})).eval()
    theirs.load_state_dict(converted, strict=True)

    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = official(x)
        torch.testing.assert_close(model(x, mode='tensor'), expected)
        torch.testing.assert_close(theirs(x, mode='tensor'), expected)
    # and back: replk_mm's converter (backbone loading, mmpretrain2official.py) gives the
    # official file again
    back = convert_mmpretrain_to_official(model.state_dict())
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_finetune_init_loads_the_classifier_but_a_head_of_another_shape(tmp_path):
    source = randomize_bn(build_model(config_of('replknet-31B_32xb64_in1k', dict(
        TINY_OPTIONS, **{'model.head.num_classes': 7}))), 4)  # e.g. ImageNet-22K's head
    torch.save({'state_dict': source.state_dict(), 'meta': {}}, tmp_path / 'pre.pth')
    cfg = config_of('replknet-31B_in21k-pre_16xb32_in1k', dict(TINY_OPTIONS, **{
        'model.init_cfg.checkpoint': str(tmp_path / 'pre.pth')}))
    model = build_model(cfg)
    head_before = model.head.fc.weight.detach().clone()
    model.init_weights()
    theirs, ours = source.state_dict(), model.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if not k.startswith('head.'))
    assert torch.equal(model.head.fc.weight, head_before)  # 1000 classes: not loaded


def write_imagenet_folder(root, train=2, val=2, size=(40, 48)):
    """A tiny ImageNet in the mmpretrain layout: train/ and val/ images and meta/*.txt."""
    rng = np.random.default_rng(0)
    from PIL import Image
    (root / 'meta').mkdir(parents=True)
    for split, count in (('train', train), ('val', val)):
        lines = []
        for i in range(count):
            label = int(rng.integers(1000))
            rel = f'n{label:08d}/{split}_{i}.JPEG'
            (root / split / rel).parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / rel)
            lines.append(f'{rel} {label}\n')
        (root / 'meta' / f'{split}.txt').write_text(''.join(lines))


def test_layer_decay_finetune_trains_on_cpu(tmp_path, one_thread):
    """The 384x384 fine-tune (layer-wise lr decay, EMA, classifier init) on a synthetic
    ImageNet folder, shrunk to the tiny arch and 64x64 inputs."""
    from replk_mm.apis import train_runner
    write_imagenet_folder(tmp_path / 'imagenet')
    pre = build_model(config_of('replknet-31B_32xb64_in1k', TINY_OPTIONS))
    torch.save({'state_dict': pre.state_dict(), 'meta': {}}, tmp_path / 'pre.pth')
    data = dict(data_root=str(tmp_path / 'imagenet'))
    runner = train_runner(
        INDEX.config_path(MODELS['replknet-31B_32xb32_in1k-384px']),
        work_dir=str(tmp_path / 'work'), cfg_options=dict(TINY_OPTIONS, **{
            'model.init_cfg.checkpoint': str(tmp_path / 'pre.pth'),
            'train_dataloader.dataset': data, 'val_dataloader.dataset': data,
            'test_dataloader.dataset': data,
            'train_dataloader.batch_size': 2, 'val_dataloader.batch_size': 2,
            'train_dataloader.num_workers': 0, 'val_dataloader.num_workers': 0,
            'train_dataloader.persistent_workers': False,
            'val_dataloader.persistent_workers': False,
            'train_dataloader.dataset.pipeline.1.scale': 64,
            'val_dataloader.dataset.pipeline.1.scale': (64, 64),
            'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 2,
            'default_hooks.logger.interval': 1}))
    runner.train()
    groups = runner.optim_wrapper.optimizer.param_groups
    # tiny arch 1-1-2-1 blocks: stem 0, layers 1..4, head 5; lr x 0.7 ** (5 - id)
    head_lr = max(g['initial_lr'] for g in groups)
    for group in groups:
        assert group['initial_lr'] == pytest.approx(head_lr * 0.7 ** (5 - group['layer_id']))
    assert {g['layer_id'] for g in groups} == set(range(6))
    checkpoint = read_checkpoint(tmp_path / 'work' / 'epoch_2.pth')
    assert 'ema_state_dict' in checkpoint  # EMAHook ran; state_dict holds the EMA weights
    log = open(next((tmp_path / 'work').glob('*/*.log'))).read()
    losses = [float(v) for v in re.findall(r'\bloss: ([0-9.]+)', log)]
    assert losses and all(np.isfinite(losses))
    assert 'accuracy/top1' in log


def test_xl_finetune_decays_the_lr_per_stage():
    """Appendix A (RepLKNet arXiv 2203.06717v1): XL is fine-tuned with "stage-wise learning
    rate decay of 0.4": one layer id per stage (stem 0, stages 1-4, head 5), the lr of stage i
    is 1e-4 x 0.4 ** (5 - i), a transition shares the stage before it."""
    from mmengine.optim import build_optim_wrapper

    from replk_mm.layers import ARCH_SETTINGS
    from replk_mm.models.backbones import RepLKNet
    cfg = config_of('replknet-XL_meg73m-pre_in1k-320px')
    paramwise = cfg.optim_wrapper.paramwise_cfg
    assert (cfg.optim_wrapper.optimizer.lr, paramwise.layer_decay_rate) == (1e-4, 0.4)
    assert cfg.model.backbone.arch == 'XL' and ARCHS['XL']['layers'] == [2, 2, 18, 2]
    # the same layer grouping on a narrow XL-deep model (the ids depend on depths only)
    arch = dict(ARCH_SETTINGS['XL'], channels=[8, 8, 8, 8], large_kernel_sizes=[3, 3, 3, 3])
    backbone = RepLKNet(arch=arch)
    names = {'stem.0.conv.weight': 0, 'stages.0.blocks.0.pw1.conv.weight': 1,
             'stages.1.blocks.3.pw1.conv.weight': 2, 'stages.2.blocks.0.pw1.conv.weight': 3,
             'stages.2.blocks.35.pw1.conv.weight': 3, 'transitions.2.0.bn.bias': 3,
             'stages.3.blocks.0.pw1.conv.weight': 4}
    wrapper = build_optim_wrapper(backbone, dict(
        cfg.optim_wrapper, type='OptimWrapper', optimizer=dict(cfg.optim_wrapper.optimizer)))
    params = dict(backbone.named_parameters())
    lr_of = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    for name, stage in names.items():
        assert backbone.get_layer_depth(name, blocks_per_layer=18) == (stage, 6), name
        assert lr_of[id(params[name])] == pytest.approx(1e-4 * 0.4 ** (5 - stage)), name
