"""Every segmentation config loads, builds, follows the official recipe, and its parameter
count is within 3% of the paper's (configs/metafile_seg.yml)."""
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

from replk_mm.apis import load_config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
METAFILE = osp.join(REPO, 'configs', 'metafile_seg.yml')
with open(METAFILE) as f:
    MODELS = {m['Name']: m for m in yaml.safe_load(f)['Models']}

# What the official configs use per run (DingXiaoH/RepLKNet-pytorch, segmentation/configs).
RECIPE = {
    'upernet_31b_ade20k': dict(arch='31B', drop=0.5, batch=2, warmup=400, classes=150),
    'upernet_31b_in22k_ade20k': dict(arch='31B', drop=0.3, batch=2, warmup=400, classes=150),
    'upernet_31l_in22k_ade20k': dict(arch='31L', drop=0.3, batch=1, warmup=800, classes=150),
    'upernet_xl_megdata73m_ade20k': dict(arch='XL', drop=0.5, batch=2, warmup=1500,
                                         classes=150),
    'upernet_31b_cityscapes': dict(arch='31B', drop=0.5, batch=2, warmup=400, classes=19),
}
STAGE3 = {'31B': 512, '31L': 768, 'XL': 1024}


def test_metafile_lists_every_config():
    configs = sorted(osp.basename(p) for p in __import__('glob').glob(
        osp.join(REPO, 'configs', 'upernet_*.py')))
    assert configs == sorted(f'{name}.py' for name in MODELS)
    assert set(RECIPE) == set(MODELS)
    for name, model in MODELS.items():
        assert model['Config'] == f'configs/{name}.py'
        assert model['Weights']['File'].endswith('.pth')
        assert model['Weights']['URL'].startswith('https://')
        metrics = model['Results'][0]['Metrics']
        assert metrics['mIoU(ms+flip)'] >= metrics['mIoU'] > 0
        # The config names the released checkpoint and the paper's numbers too.
        with open(osp.join(REPO, model['Config'])) as f:
            text = f.read()
        assert model['Weights']['File'] in text and model['Weights']['URL'] in text
        assert f"{metrics['mIoU']} single-scale / {metrics['mIoU(ms+flip)']} multi-scale" in text


@pytest.mark.parametrize('name', sorted(MODELS))
def test_config_follows_official_recipe(name):
    meta, recipe = MODELS[name], RECIPE[name]
    cfg = load_config(osp.join(REPO, meta['Config']))
    assert cfg.default_scope == 'mmseg'
    assert 'replk_mm' in cfg.custom_imports['imports']
    model = cfg.model
    backbone = model.backbone
    assert backbone.type == 'RepLKNet' and backbone.arch == recipe['arch']
    assert backbone.drop_path_rate == recipe['drop'] == meta['Metadata']['Drop Path']
    assert backbone.with_cp is True and backbone.norm_cfg.type == 'SyncBN'
    assert backbone.init_cfg.type == 'Pretrained'
    assert osp.basename(backbone.init_cfg.checkpoint) == meta['Metadata']['Pretrained Weights']
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

    crop = meta['Metadata']['Crop Size']
    assert tuple(model.data_preprocessor['size']) == (crop, crop)
    dataset = 'CheckedCityscapesDataset' if 'cityscapes' in name else 'CheckedADE20KDataset'
    for split in ('train', 'val', 'test'):
        assert cfg[f'{split}_dataloader'].dataset.type == dataset
    crops = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop']
    assert tuple(crops[0].crop_size) == (crop, crop)
    if crop == 640:
        assert model.test_cfg == dict(mode='slide', crop_size=(640, 640), stride=(426, 426))
    else:
        assert model.test_cfg.mode == 'whole'

    optim = cfg.optim_wrapper
    assert optim.optimizer.type == 'AdamW' and optim.optimizer.lr == 2e-4
    assert optim.optimizer.weight_decay == 0.05 and optim.paramwise_cfg.norm_decay_mult == 0
    warmup, poly = cfg.param_scheduler
    iters = meta['Metadata']['Iterations']
    assert warmup.type == 'LinearLR' and warmup.start_factor == 1e-6
    assert warmup.end == poly.begin == recipe['warmup']
    assert poly.type == 'PolyLR' and poly.power == 1.0 and poly.eta_min == 0
    assert poly.end == cfg.train_cfg.max_iters == iters
    assert cfg.train_dataloader.batch_size == recipe['batch']
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=meta['Metadata'][
        'Global Batch'])
    # multi-scale + flip testing for the ms numbers
    assert cfg.tta_model.type == 'SegTTAModel'
    assert any(t.type == 'TestTimeAug' for t in cfg.tta_pipeline)


def _count_params(cfg):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS as SEG_MODELS
    init_default_scope('mmseg')
    model = SEG_MODELS.build(cfg.model)  # no init_weights(): no checkpoint needed
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name', sorted(MODELS))
def test_built_model_matches_paper_params(name):
    meta = MODELS[name]
    cfg = Config.fromfile(osp.join(REPO, meta['Config']))
    params = _count_params(cfg) / 1e6
    paper = meta['Metadata']['Parameters (M)']
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
    import torch
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
