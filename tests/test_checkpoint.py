"""Official ImageNet, official downstream and mmpretrain checkpoints load into RepLKNet."""
import pytest
import torch
from conftest import TINY_ARCH, randomize_bn
from official_layout import imagenet_checkpoint, official_backbone_keys

from replk_mm import RepLKNet
from replk_mm.models import (
                             CheckpointMismatchError,
                             convert_mmpretrain_to_official,
                             load_backbone_checkpoint,
)


@pytest.mark.parametrize('arch, kwargs', [
    ('31B', {}), ('31L', {}), ('XL', dict(norm_intermediate_features=True))])
def test_state_dict_keys_follow_official_layout(arch, kwargs):
    model = RepLKNet(arch, **kwargs)
    settings = RepLKNet.arch_settings[arch]
    expected = official_backbone_keys(settings['layers'], settings['small_kernel'] is not None,
                                      kwargs.get('norm_intermediate_features', False))
    assert list(model.state_dict()) == expected


def _source_model():
    return randomize_bn(RepLKNet(TINY_ARCH), generator_seed=1).eval()


def _assert_same_outputs(a, b):
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for fa, fb in zip(a.eval()(x), b.eval()(x)):
            torch.testing.assert_close(fa, fb, rtol=0, atol=0)


@pytest.mark.parametrize('wrap', [None, 'model', 'state_dict'])
def test_official_imagenet_checkpoint_via_init_cfg(tmp_path, wrap, mmengine_log):
    source = _source_model()
    state = imagenet_checkpoint(source.state_dict())
    path = tmp_path / 'RepLKNet-tiny_ImageNet-1K_224.pth'
    torch.save({wrap: state} if wrap else state, path)
    model = RepLKNet(TINY_ARCH, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    _assert_same_outputs(model, source)
    log = mmengine_log()
    assert 'ignoring the classification keys' in log and "'head.weight'" in log
    assert 'missing keys' not in log and 'unexpected keys' not in log


def test_official_downstream_checkpoint_with_prefix(tmp_path):
    source = _source_model()
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state['decode_head.conv_seg.weight'] = torch.randn(150, 512, 1, 1)
    path = tmp_path / 'upernet.pth'
    torch.save({'state_dict': state, 'meta': {'mmseg_version': '0.20.2'}}, path)
    model = RepLKNet(TINY_ARCH, init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                              prefix='backbone.'))
    model.init_weights()
    _assert_same_outputs(model, source)


def test_missing_and_unexpected_keys_are_named(tmp_path, mmengine_log):
    state = _source_model().state_dict()
    del state['stem.0.conv.weight']
    state['stages.0.blocks.0.extra.weight'] = torch.zeros(1)
    torch.save(state, tmp_path / 'partial.pth')
    model = RepLKNet(TINY_ARCH)
    load_backbone_checkpoint(model, str(tmp_path / 'partial.pth'), strict=False)
    log = mmengine_log()
    assert "missing keys in checkpoint: ['stem.0.conv.weight']" in log
    assert "unexpected keys in checkpoint: ['stages.0.blocks.0.extra.weight']" in log
    with pytest.raises(CheckpointMismatchError, match='stem.0.conv.weight'):
        load_backbone_checkpoint(model, str(tmp_path / 'partial.pth'), strict=True)


def test_wrong_arch_wrong_prefix_and_deploy_mismatch_are_clear(tmp_path):
    torch.save(_source_model().state_dict(), tmp_path / 'tiny.pth')
    with pytest.raises(ValueError, match='shape mismatches'):
        load_backbone_checkpoint(RepLKNet(dict(TINY_ARCH, channels=[8, 16, 32, 128])),
                                 str(tmp_path / 'tiny.pth'))
    with pytest.raises(ValueError, match="prefix 'backbone.'"):
        load_backbone_checkpoint(RepLKNet(TINY_ARCH), str(tmp_path / 'tiny.pth'),
                                 prefix='backbone')
    with pytest.raises(CheckpointMismatchError, match='small_kernel_merged=False, load, then'):
        load_backbone_checkpoint(RepLKNet(TINY_ARCH, small_kernel_merged=True),
                                 str(tmp_path / 'tiny.pth'), strict=True)
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        load_backbone_checkpoint(RepLKNet(TINY_ARCH), str(tmp_path / 'nothere.pth'))


def test_mmpretrain_checkpoint_loads_with_equal_features(tmp_path):
    from mmengine.registry import DefaultScope
    from mmpretrain.models import build_classifier
    # Whatever scope an earlier in-process run left current (e.g. mmdet), build in mmpretrain's.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = build_classifier(dict(
            type='ImageClassifier',
            backbone=dict(type='mmpretrain.RepLKNet', arch=dict(TINY_ARCH, dw_ratio=1),
                          out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=64)))
    randomize_bn(classifier, generator_seed=2).eval()
    path = tmp_path / 'mmpretrain_replknet.pth'
    torch.save({'meta': {}, 'state_dict': classifier.state_dict()}, path)

    official = convert_mmpretrain_to_official(classifier.state_dict())
    assert {'norm.weight', 'head.weight', 'head.bias'} <= set(official)
    model = RepLKNet(TINY_ARCH, init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    model.init_weights()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        theirs = classifier.backbone(x)[-1]  # mmpretrain applies the final BN in the stage
        final_bn = torch.nn.BatchNorm2d(64).eval()
        final_bn.load_state_dict({k[5:]: v for k, v in official.items()
                                  if k.startswith('norm.')})
        ours = final_bn(model(x)[-1])
    torch.testing.assert_close(ours, theirs)


def test_missing_pretrained_checkpoint_says_how_to_fix_it(tmp_path):
    model = RepLKNet(TINY_ARCH, init_cfg=dict(type='Pretrained',
                                              checkpoint=str(tmp_path / 'missing.pth')))
    with pytest.raises(FileNotFoundError,
                       match=r'missing\.pth \(init_cfg.checkpoint\) does not exist.*'
                             r'init_cfg=None to train from scratch'):
        model.init_weights()
