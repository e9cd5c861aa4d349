"""A checkpoint saved by the official mmseg 0.x RepLKNet + UperNet training (the layout of the
released `RepLKNet-31B_ImageNet-1K_UperNet_ADE20K.pth`) loads into configs/upernet_31b_ade20k.py
with no missing or unexpected keys, through the same loader tools/test.py uses."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from official_layout import official_backbone_keys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def _conv_module(prefix):
    # mmcv ConvModule with a norm layer: conv without bias + `bn`
    return [f'{prefix}.conv.weight'] + [f'{prefix}.bn.{k}' for k in BN]


def mmseg0x_upernet_keys():
    """Head keys of mmseg 0.x's UPerHead + FCNHead (as in its saved state dicts)."""
    keys = []
    for i in range(4):  # PPM: Sequential(AdaptiveAvgPool2d, ConvModule) per pool scale
        keys += _conv_module(f'decode_head.psp_modules.{i}.1')
    keys += _conv_module('decode_head.bottleneck')
    for i in range(3):
        keys += _conv_module(f'decode_head.lateral_convs.{i}')
        keys += _conv_module(f'decode_head.fpn_convs.{i}')
    keys += _conv_module('decode_head.fpn_bottleneck')
    keys += ['decode_head.conv_seg.weight', 'decode_head.conv_seg.bias']
    keys += _conv_module('auxiliary_head.convs.0')
    keys += ['auxiliary_head.conv_seg.weight', 'auxiliary_head.conv_seg.bias']
    return keys


def test_official_mmseg0x_checkpoint_loads_without_missing_or_unexpected_keys(tmp_path):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'upernet_31b_ade20k.py'))
    cfg.model.backbone.norm_cfg = cfg.model.decode_head.norm_cfg = \
        cfg.model.auxiliary_head.norm_cfg = dict(type='BN', requires_grad=True)
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    model = MODELS.build(cfg.model)  # no init_weights(): the ImageNet file is not needed
    own = model.state_dict()

    keys = ['backbone.' + k for k in official_backbone_keys([2, 2, 18, 2])]
    keys += mmseg0x_upernet_keys()
    g = torch.Generator().manual_seed(0)
    # Shapes come from the model; a key it lacks gets a dummy and must surface as unexpected.
    state_dict = {k: (torch.randn(own[k].shape, generator=g) if own[k].is_floating_point()
                      else torch.tensor(5)) if k in own else torch.zeros(1) for k in keys}
    checkpoint = dict(
        meta=dict(mmseg_version='0.21.1+', iter=40000, epoch=1,
                  CLASSES=tuple(f'class{i}' for i in range(150)),
                  PALETTE=[[i, i, i] for i in range(150)], config='<mmcv 1.x config text>'),
        state_dict=state_dict,
        optimizer=dict(state={}, param_groups=[]))
    path = str(tmp_path / 'RepLKNet-31B_ImageNet-1K_UperNet_ADE20K.pth')
    torch.save(checkpoint, path)
    del checkpoint

    missing = set(own) - set(keys)
    unexpected = set(keys) - set(own)
    assert not missing and not unexpected, (sorted(missing)[:10], sorted(unexpected)[:10])
    load_checkpoint(model, path, map_location='cpu', strict=True)  # raises on any mismatch
    loaded = model.state_dict()
    for key in ('backbone.stages.2.blocks.34.large_kernel.lkb_origin.conv.weight',
                'backbone.stages.3.blocks.3.pw2.bn.running_var',
                'decode_head.fpn_bottleneck.conv.weight', 'auxiliary_head.conv_seg.bias'):
        torch.testing.assert_close(loaded[key], state_dict[key])


def test_official_key_layout_also_covers_31l():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'upernet_31l_in22k_ade20k.py'))
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    model = MODELS.build(cfg.model)
    keys = ['backbone.' + k for k in official_backbone_keys([2, 2, 18, 2])]
    keys += mmseg0x_upernet_keys()
    assert set(model.state_dict()) == set(keys)


def test_official_key_layout_covers_xl_with_intermediate_norms():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'upernet_xl_megdata73m_ade20k.py'))
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    model = MODELS.build(cfg.model)
    keys = ['backbone.' + k for k in official_backbone_keys(
        [2, 2, 18, 2], small_kernel=False, norm_intermediate=True)] + mmseg0x_upernet_keys()
    assert set(model.state_dict()) == set(keys)
