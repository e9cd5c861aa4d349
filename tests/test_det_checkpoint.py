"""Official RepLKNet detection checkpoints (mmdet 2.x layout) load into the mmdet 3.x configs.

The expected keys are written out from mmdet 2.x's module naming (ConvFCBBoxHead
``shared_convs.i.conv/bn``, ``shared_fcs.0``, ``fc_cls``, ``fc_reg``; FCNMaskHead ``convs``,
``upsample``, ``conv_logits``; RPNHead ``rpn_conv/rpn_cls/rpn_reg``; FPN ``lateral_convs`` /
``fpn_convs``; FCOSHead ``cls_convs.i.conv/gn``, ``scales.i.scale``), with the backbone in the
official RepLKNet layout - independently of how mmdet 3.x or replk_mm name things.
"""
import os.path as osp

import pytest
import torch

pytest.importorskip('mmdet')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from official_layout import BN, official_backbone_keys  # noqa: E402

import replk_mm  # noqa: E402,F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CASCADE = {
    '31B': 'cascade_mask_rcnn_31b_3x_coco.py',
    '31L': 'cascade_mask_rcnn_31l_in22k_3x_coco.py',
    'XL': 'cascade_mask_rcnn_xl_megdata73m_3x_coco.py',
}
FCOS = 'fcos_31b_2x_coco.py'
LAYERS = [2, 2, 18, 2]


def _conv(prefix, bias=True):
    return [f'{prefix}.weight'] + ([f'{prefix}.bias'] if bias else [])


def mmdet2_backbone_keys(arch):
    xl = arch == 'XL'
    return ['backbone.' + k for k in official_backbone_keys(
        LAYERS, small_kernel=not xl, norm_intermediate=xl)]


def mmdet2_cascade_mask_rcnn_keys(arch, num_stages=3):
    keys = mmdet2_backbone_keys(arch)
    for i in range(4):
        keys += _conv(f'neck.lateral_convs.{i}.conv') + _conv(f'neck.fpn_convs.{i}.conv')
    keys += _conv('rpn_head.rpn_conv') + _conv('rpn_head.rpn_cls') + _conv('rpn_head.rpn_reg')
    for s in range(num_stages):
        box = f'roi_head.bbox_head.{s}'
        for j in range(4):  # 4conv1fc: conv (no bias) + SyncBN, saved as `bn`
            keys += _conv(f'{box}.shared_convs.{j}.conv', bias=False)
            keys += [f'{box}.shared_convs.{j}.bn.{k}' for k in BN]
        keys += _conv(f'{box}.shared_fcs.0') + _conv(f'{box}.fc_cls') + _conv(f'{box}.fc_reg')
        mask = f'roi_head.mask_head.{s}'
        for j in range(4):
            keys += _conv(f'{mask}.convs.{j}.conv')
        keys += _conv(f'{mask}.upsample') + _conv(f'{mask}.conv_logits')
    return keys


def mmdet2_fcos_keys():
    keys = mmdet2_backbone_keys('31B')
    for i in range(3):  # start_level=1: laterals for stages 2-4
        keys += _conv(f'neck.lateral_convs.{i}.conv')
    for i in range(5):  # 3 outputs + 2 extra levels convolved from P5's output
        keys += _conv(f'neck.fpn_convs.{i}.conv')
    for branch in ('cls_convs', 'reg_convs'):
        for j in range(4):  # conv (no bias) + GN
            keys += _conv(f'bbox_head.{branch}.{j}.conv', bias=False)
            keys += [f'bbox_head.{branch}.{j}.gn.weight', f'bbox_head.{branch}.{j}.gn.bias']
    keys += _conv('bbox_head.conv_cls') + _conv('bbox_head.conv_reg') + \
        _conv('bbox_head.conv_centerness')
    keys += [f'bbox_head.scales.{i}.scale' for i in range(5)]
    return keys


def build(config):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def model_31b():
    return build(CASCADE['31B'])


@pytest.mark.parametrize('arch', sorted(CASCADE))
def test_cascade_configs_have_the_mmdet2_official_layout(arch, model_31b):
    model = model_31b if arch == '31B' else build(CASCADE[arch])
    expected = mmdet2_cascade_mask_rcnn_keys(arch)
    assert len(expected) == len(set(expected))
    own = set(model.state_dict())
    assert sorted(own - set(expected)) == []  # nothing the official checkpoint lacks
    assert sorted(set(expected) - own) == []  # nothing the model would ignore


def test_fcos_config_has_the_mmdet2_official_layout():
    own = set(build(FCOS).state_dict())
    expected = set(mmdet2_fcos_keys())
    assert sorted(own - expected) == [] and sorted(expected - own) == []


def test_official_31b_checkpoint_file_loads_strictly(tmp_path, model_31b):
    """A released-style file (mmdet 2.x meta, `state_dict`) loads into the 31B config the way
    tools/test.py loads it, with no missing or unexpected key and every tensor in place."""
    from mmengine.runner import load_checkpoint
    model = model_31b
    own = model.state_dict()
    state = {}
    for i, key in enumerate(mmdet2_cascade_mask_rcnn_keys('31B')):
        like = own[key]  # a KeyError here would be an unexpected key
        if like.dtype.is_floating_point:  # half precision keeps the file small
            state[key] = torch.full(like.shape, (i % 97) / 97, dtype=torch.float16)
        else:
            state[key] = torch.full(like.shape, i % 5, dtype=like.dtype)
    meta = dict(mmdet_version='2.11.0', CLASSES=('person', ) * 80, epoch=36, iter=0,
                config='model = dict(type="CascadeRCNN")  # mmdet 2.x keeps the text')
    path = tmp_path / 'RepLKNet-31B_ImageNet-1K_CascMaskRCNN_COCO.pth'
    torch.save(dict(meta=meta, state_dict=state), path)
    del state
    load_checkpoint(model, str(path), map_location='cpu', strict=True)  # raises on a mismatch
    loaded = model.state_dict()
    keys = mmdet2_cascade_mask_rcnn_keys('31B')
    for i in (0, 1, len(keys) // 2, len(keys) - 1):
        value = loaded[keys[i]]
        if value.dtype.is_floating_point:
            assert torch.all(value == torch.tensor((i % 97) / 97, dtype=torch.float16).float())
