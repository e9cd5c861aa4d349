"""The kernel-size study (configs/kernel_ablation): five kernel settings at RepLKNet-31B width
and depth, each an ImageNet config (the RepLKNet-31B recipe for 120 epochs) and an UperNet
ADE20K config (the RepLKNet-31B ADE20K setup) that starts from the ImageNet run's checkpoint."""
import copy
import os.path as osp

import pytest
import torch
from conftest import randomize_bn
from fast_test_helpers import one_torch_thread

from replk_mm.apis import load_config
from replk_mm.apis.builder import build_model
from replk_mm.utils.metafile import load_model_index

pytestmark = pytest.mark.usefixtures('fast_config_parsing')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
INDEX = load_model_index(osp.join(REPO, 'model-index.yml'))
MODELS = {m.name: m for m in INDEX if m.metafile.endswith('metafile_kernel_ablation.yml')}
IMAGENET_31B = 'configs/imagenet/replknet-31B_32xb64_in1k.py'
UPERNET_31B = 'configs/upernet_31b_ade20k.py'

# The paper's settings (issue 9 / paper): large kernels per stage; RepLKNet-31B's 5x5
# re-parameterization branch wherever it fits into the large kernels.
SETTINGS = {'3-3-3-3': None, '7-7-7-7': 5, '13-13-13-13': 5, '25-25-25-13': 5,
            '31-29-27-13': 5}
LAYERS, CHANNELS = [2, 2, 18, 2], [128, 256, 512, 1024]
RELEASED_31B = [31, 29, 27, 13]


def imagenet_name(kernels):
    return f'replknet-31B-k{kernels}_32xb64_in1k-120e'


def upernet_name(kernels):
    return f'upernet_replknet-31B-k{kernels}_ade20k'


def config(name, options=None):
    return load_config(INDEX.config_path(MODELS[name]), options)


def kernel_params_change(kernels, small_kernel):
    """Parameters a setting has more than RepLKNet-31B: each RepLK block's depth-wise large
    kernel (C x k^2) and, without a small kernel, no 5x5 conv (C x 25) and its BN (2C)."""
    change = 0
    for n, c, k, k31 in zip(LAYERS, CHANNELS, kernels, RELEASED_31B):
        change += n * c * (k * k - k31 * k31)
        if small_kernel is None:
            change -= n * c * (5 * 5 + 2)
    return change


@pytest.fixture
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope='module')
def reference():
    """RepLKNet-31B's classifier and UperNet paper configs and their parameter counts."""
    found = {}
    for path in (IMAGENET_31B, UPERNET_31B):
        cfg = load_config(osp.join(REPO, path))
        with torch.device('meta'):
            model = build_model(cfg)
        found[path] = (cfg, sum(p.numel() for p in model.parameters()))
    return found


def meta_params(cfg):
    with torch.device('meta'):
        return sum(p.numel() for p in build_model(cfg).parameters())


def test_every_setting_has_both_configs_in_the_metafile():
    assert set(MODELS) == {f(k) for k in SETTINGS for f in (imagenet_name, upernet_name)}
    for kernels, small in SETTINGS.items():
        for name in (imagenet_name(kernels), upernet_name(kernels)):
            meta = MODELS[name].metadata
            assert meta['Large Kernels'] == kernels
            assert meta['Small Kernel'] == (small if small else 'none')
        assert MODELS[imagenet_name(kernels)].metadata['Epochs'] == 120


@pytest.mark.parametrize('kernels', sorted(SETTINGS))
def test_imagenet_config_is_the_31b_recipe_for_120_epochs(kernels, reference):
    cfg = config(imagenet_name(kernels))
    reference, reference_params = copy.deepcopy(reference[IMAGENET_31B][0]), \
        reference[IMAGENET_31B][1]
    expected_arch = dict(large_kernel_sizes=[int(k) for k in kernels.split('-')],
                         layers=LAYERS, channels=CHANNELS, small_kernel=SETTINGS[kernels])
    assert cfg.model.backbone.arch == expected_arch
    assert meta_params(cfg) == reference_params + kernel_params_change(
        expected_arch['large_kernel_sizes'], SETTINGS[kernels])
    assert cfg.train_cfg.max_epochs == 120 and reference.train_cfg.max_epochs == 300
    # everything else is RepLKNet-31B's ImageNet recipe
    cfg.model.backbone.arch = reference.model.backbone.arch
    cfg.train_cfg.max_epochs = reference.train_cfg.max_epochs
    assert cfg.to_dict() == reference.to_dict()


@pytest.mark.parametrize('kernels', sorted(SETTINGS))
def test_upernet_config_starts_from_the_imagenet_run(kernels, reference):
    cfg = config(upernet_name(kernels))
    reference, reference_params = copy.deepcopy(reference[UPERNET_31B][0]), \
        reference[UPERNET_31B][1]
    assert meta_params(cfg) == reference_params + kernel_params_change(
        [int(k) for k in kernels.split('-')], SETTINGS[kernels])
    backbone = cfg.model.backbone
    assert backbone.arch == config(imagenet_name(kernels)).model.backbone.arch
    assert backbone.init_cfg == dict(
        type='Pretrained', checkpoint=f'work_dirs/{imagenet_name(kernels)}/epoch_120.pth')
    # tools/train.py's default work_dir and mmengine's last checkpoint of a 120-epoch run
    backbone.arch = reference.model.backbone.arch
    backbone.init_cfg = reference.model.backbone.init_cfg
    cfg.pop('pretrained'), reference.pop('pretrained')
    assert cfg.to_dict() == reference.to_dict()  # otherwise the RepLKNet-31B ADE20K setup


def test_imagenet_checkpoint_initialises_the_upernet_backbone(tmp_path, mmengine_log,
                                                              one_thread):
    """The (a) -> (b) hand-over for the 3x3 setting (no small kernel), shrunk: what the
    ImageNet run saves (state_dict = EMA weights, plus ema_state_dict) loads into the UperNet
    backbone with every backbone key, converted from the mmpretrain layout."""
    tiny = dict(_delete_=True, large_kernel_sizes=[3, 3, 3, 3], layers=[1, 1, 2, 1],
                channels=[8, 16, 32, 64], small_kernel=None)
    classifier = randomize_bn(build_model(config(imagenet_name('3-3-3-3'), {
        'model.backbone.arch': tiny, 'model.backbone.norm_cfg': dict(type='BN'),
        'model.head.in_channels': 64})), 5)
    state = classifier.state_dict()
    path = tmp_path / 'epoch_120.pth'
    torch.save({'meta': {'epoch': 120}, 'state_dict': state,
                'ema_state_dict': {'module.' + k: v for k, v in state.items()}}, path)
    segmentor = build_model(config(upernet_name('3-3-3-3'), {
        'model.backbone.arch': tiny, 'model.backbone.norm_cfg': dict(type='BN'),
        'model.backbone.with_cp': False, 'model.backbone.init_cfg.checkpoint': str(path),
        'model.decode_head.in_channels': [8, 16, 32, 64], 'model.decode_head.channels': 16,
        'model.decode_head.norm_cfg': dict(type='BN'), 'model.auxiliary_head.in_channels': 32,
        'model.auxiliary_head.channels': 16, 'model.auxiliary_head.norm_cfg': dict(type='BN')}))
    segmentor.backbone.init_weights()
    log = mmengine_log()
    assert 'converting an mmpretrain RepLKNet checkpoint' in log
    assert 'missing keys' not in log and 'unexpected keys' not in log
    ours = segmentor.backbone.state_dict()
    assert all(torch.equal(v, state['backbone.' + k]) for k, v in ours.items())
    with torch.no_grad():  # the same features as the classifier's trunk before its final BN
        x = torch.randn(1, 3, 64, 64)
        segmentor.eval(), classifier.eval()
        classifier.backbone.stages[3].norm = torch.nn.Identity()
        torch.testing.assert_close(segmentor.backbone(x)[3], classifier.backbone(x)[0])


def test_a_small_kernel_larger_than_the_large_ones_is_refused():
    cfg = config(imagenet_name('3-3-3-3'), {'model.backbone.arch.small_kernel': 5})
    with pytest.raises(ValueError, match=r'small_kernel \(5\) is larger than the smallest '
                                         r'large kernel \(3\)'):
        build_model(cfg)
