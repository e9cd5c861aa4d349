"""UniRepLKNet: layers and re-parameterization, the backbone (every size, arguments, frozen
stages, layer depth), the official checkpoint layouts through ``checkpoint_filter`` against a
reference written here, the mmpretrain classifier and the registries."""
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import REPO, randomize_bn
from fast_test_helpers import one_torch_thread

from replk_mm.apis.inference import is_deploy_form
from replk_mm.layers import (
                             DILATED_BRANCHES,
                             GRN,
                             DilatedReparamBlock,
                             UniRepLKNetBlock,
                             switch_to_deploy,
)
from replk_mm.layers.unireplknet import dilate_kernel
from replk_mm.models.backbones import UniRepLKNet
from replk_mm.models.backbones.unireplknet import checkpoint_filter, convert_official_classifier

# A tiny arch with every kind of block: 0 (no depth-wise conv), 3, 5 and Dilated Reparam
# Blocks of 7 and 13.
TINY = dict(depths=(1, 1, 2, 1), channels=(8, 16, 24, 32),
            kernel_sizes=((3, ), (5, ), (13, 0), (7, )))


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def randomize(model, seed=0):
    """Random weights everywhere (GRN / layer scale start at 0 / 1e-6: make them count)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.3 if name.endswith(('gamma', 'beta')) else 1 / max(p[0].numel(), 1) ** .5
            p.copy_(torch.randn(p.shape, generator=g) * scale + (1 if name.endswith(
                ('norm.weight', 'bn.weight')) else 0))
    return randomize_bn(model, seed)


# ---------------------------------------------------------------------------------------------
# A reference UniRepLKNet written from the paper (Ding et al., CVPR 2024, Sec. 3-4) with the
# module names of the official unireplknet.py (AILab-CVC/UniRepLKNet), so its state dicts have
# the official keys: ImageNet classifier (``norm`` / ``head``), mmseg / mmdet backbone
# (``norm0`` .. ``norm3``) and, after reparameterize(), the deploy form.
# ---------------------------------------------------------------------------------------------
class RefLayerNorm(nn.Module):
    def __init__(self, c, channels_first=True):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))
        self.channels_first = channels_first

    def forward(self, x):
        if not self.channels_first:
            return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, 1e-6)
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return (x - mean) / (var + 1e-6).sqrt() * self.weight[:, None, None] + \
            self.bias[:, None, None]


class Permute(nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class RefGRN(nn.Module):
    def __init__(self, c, bias=True):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, c))
        if bias:
            self.beta = nn.Parameter(torch.zeros(1, 1, 1, c))

    def forward(self, x):
        g = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        y = (self.gamma * n + 1) * x
        return y + self.beta if hasattr(self, 'beta') else y


class RefSE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.down, self.up = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        s = torch.sigmoid(self.up(F.relu(self.down(x.mean((2, 3), keepdim=True)))))
        return x * s


def fold(weight, bias, bn):
    std = (bn.running_var + bn.eps).sqrt()
    shape = (-1, ) + (1, ) * (weight.dim() - 1)
    return weight * (bn.weight / std).view(shape), bn.bias + (bias - bn.running_mean) * \
        bn.weight / std


class RefDilated(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.k, self.branches = k, DILATED_BRANCHES[k]
        self.lk_origin = nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False)
        self.origin_bn = nn.BatchNorm2d(c)
        for kk, r in self.branches:
            setattr(self, f'dil_conv_k{kk}_{r}', nn.Conv2d(
                c, c, kk, padding=r * (kk - 1) // 2, dilation=r, groups=c, bias=False))
            setattr(self, f'dil_bn_k{kk}_{r}', nn.BatchNorm2d(c))

    def forward(self, x):
        if not hasattr(self, 'origin_bn'):
            return self.lk_origin(x)
        y = self.origin_bn(self.lk_origin(x))
        for kk, r in self.branches:
            y = y + getattr(self, f'dil_bn_k{kk}_{r}')(getattr(self, f'dil_conv_k{kk}_{r}')(x))
        return y

    def reparameterize(self):
        c = self.lk_origin.out_channels
        w, b = fold(self.lk_origin.weight, torch.zeros(c), self.origin_bn)
        for kk, r in self.branches:
            bw, bb = fold(getattr(self, f'dil_conv_k{kk}_{r}').weight, torch.zeros(c),
                          getattr(self, f'dil_bn_k{kk}_{r}'))
            # a dilated kernel = a transposed conv of it with stride r over a 1x1 one
            dense = F.conv_transpose2d(bw, torch.ones(1, 1, 1, 1), stride=r)
            p = (self.k - dense.shape[-1]) // 2
            w, b = w + F.pad(dense, [p] * 4), b + bb
            delattr(self, f'dil_conv_k{kk}_{r}')
            delattr(self, f'dil_bn_k{kk}_{r}')
        del self.origin_bn
        self.lk_origin = nn.Conv2d(c, c, self.k, padding=self.k // 2, groups=c)
        self.lk_origin.weight.data, self.lk_origin.bias.data = w, b


class RefBlock(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        if k == 0:
            self.dwconv, self.norm = nn.Identity(), nn.Identity()
        else:
            self.dwconv = RefDilated(c, k) if k >= 7 else \
                nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False)
            self.norm = nn.BatchNorm2d(c)
        self.se = RefSE(c)
        self.pwconv1 = nn.Sequential(Permute(0, 2, 3, 1), nn.Linear(c, 4 * c))
        self.act = nn.Sequential(nn.GELU(), RefGRN(4 * c))
        self.pwconv2 = nn.Sequential(nn.Linear(4 * c, c, bias=False), Permute(0, 3, 1, 2),
                                     nn.BatchNorm2d(c))
        self.gamma = nn.Parameter(torch.full((c, ), 1e-6))

    def forward(self, x):
        y = self.pwconv2(self.act(self.pwconv1(self.se(self.norm(self.dwconv(x))))))
        return x + (y if self.gamma is None else self.gamma.view(1, -1, 1, 1) * y)

    def reparameterize(self):
        c = self.gamma.numel()
        if isinstance(self.dwconv, RefDilated):
            self.dwconv.reparameterize()
        if isinstance(self.norm, nn.BatchNorm2d):
            conv = self.dwconv.lk_origin if isinstance(self.dwconv, RefDilated) else self.dwconv
            bias = conv.bias if conv.bias is not None else torch.zeros(c)
            w, b = fold(conv.weight, bias, self.norm)
            new = nn.Conv2d(c, c, conv.kernel_size, padding=conv.padding, groups=c)
            new.weight.data, new.bias.data = w, b
            if isinstance(self.dwconv, RefDilated):
                self.dwconv.lk_origin = new
            else:
                self.dwconv = new
            self.norm = nn.Identity()
        lin, bn, grn = self.pwconv2[0], self.pwconv2[2], self.act[1]
        w, b = fold(lin.weight, lin.weight @ grn.beta.flatten(), bn)
        del grn.beta
        new = nn.Linear(lin.in_features, c)
        new.weight.data, new.bias.data = w * self.gamma[:, None], b * self.gamma
        self.pwconv2 = nn.Sequential(new, Permute(0, 3, 1, 2))
        self.gamma = None


class RefUniRepLKNet(nn.Module):
    """``classifier``: the official ImageNet model (``norm`` + ``head``); else the official
    downstream backbone (``norm0`` .. ``norm3``)."""

    def __init__(self, depths, channels, kernel_sizes, classifier=True, num_classes=10):
        super().__init__()
        c = channels
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(3, c[0] // 2, 3, 2, 1), RefLayerNorm(c[0] // 2), nn.GELU(),
            nn.Conv2d(c[0] // 2, c[0], 3, 2, 1), RefLayerNorm(c[0]))])
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(nn.Conv2d(c[i], c[i + 1], 3, 2, 1),
                                                        RefLayerNorm(c[i + 1])))
        self.stages = nn.ModuleList(nn.Sequential(*[RefBlock(c[i], k) for k in kernel_sizes[i]])
                                    for i in range(4))
        self.classifier = classifier
        if classifier:
            self.norm = nn.LayerNorm(c[-1], eps=1e-6)
            self.head = nn.Linear(c[-1], num_classes)
        else:
            for i in range(4):
                self.add_module(f'norm{i}', RefLayerNorm(c[i]))

    def forward(self, x):
        outs = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            if not self.classifier:
                outs.append(getattr(self, f'norm{i}')(x))
        return self.head(self.norm(x.mean((2, 3)))) if self.classifier else outs

    def reparameterize(self):
        for m in self.modules():
            if isinstance(m, RefBlock):
                m.reparameterize()


def reference(classifier, seed=0):
    ref = RefUniRepLKNet(**TINY, classifier=classifier)
    return randomize(ref, seed).eval()


def tiny(**kwargs):
    return UniRepLKNet(arch=dict(TINY), **kwargs).eval()


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------
def test_dilate_kernel_equals_dilated_conv():
    w = torch.randn(4, 1, 3, 3)
    x = torch.randn(1, 4, 15, 15)
    dense = dilate_kernel(w, 3)
    assert dense.shape[-1] == 7
    torch.testing.assert_close(F.conv2d(x, dense, padding=3, groups=4),
                               F.conv2d(x, w, padding=3, dilation=3, groups=4))


@pytest.mark.parametrize('kernel', sorted(DILATED_BRANCHES))
def test_dilated_reparam_block_merges_into_one_dense_kernel(kernel):
    block = randomize(DilatedReparamBlock(4, kernel)).eval()
    x = torch.randn(2, 4, 11, 11)
    with torch.no_grad():
        expected = block(x)
        switch_to_deploy(block)
        got = block(x)
    assert block.merged and set(block.state_dict()) == {'lk_origin.weight', 'lk_origin.bias'}
    assert rel_err(got, expected) < 1e-5


@pytest.mark.parametrize('kernel', [0, 3, 5, 7, 13, 17])
def test_block_reparameterization_is_exact(kernel):
    block = randomize(UniRepLKNetBlock(8, kernel)).eval()
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        expected = block(x)
        assert switch_to_deploy(block) == 1 + (kernel >= 7)
        got = block(x)
    assert block.merged and block.gamma is None and block.act[1].beta is None
    assert rel_err(got, expected) < 1e-5
    # the deploy form built directly has the same keys and shapes
    built = UniRepLKNetBlock(8, kernel, deployed=True)
    assert {k: v.shape for k, v in built.state_dict().items()} == \
        {k: v.shape for k, v in block.state_dict().items()}


def test_grn_and_block_arguments():
    x = torch.randn(2, 3, 4, 6)
    assert torch.equal(GRN(6)(x), x)  # gamma = beta = 0 at init: the identity
    with pytest.raises(ValueError, match='kernel size is one of'):
        UniRepLKNetBlock(8, 11 + 8)
    with pytest.raises(ValueError, match='branch settings for kernel sizes'):
        DilatedReparamBlock(8, 19)


def test_block_with_cp_same_gradients():
    torch.manual_seed(0)
    block = randomize(UniRepLKNetBlock(8, 7, drop_path=0.)).train()
    x = torch.randn(2, 8, 9, 9, requires_grad=True)
    block(x).sum().backward()
    grads = [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    block.with_cp = True
    block(x).sum().backward()
    for g, p in zip(grads, block.parameters()):
        torch.testing.assert_close(p.grad, g)


# ---------------------------------------------------------------------------------------------
# backbone
# ---------------------------------------------------------------------------------------------
# Params of the ImageNet-1K classifiers, official README (AILab-CVC/UniRepLKNet, tables
# "ImageNet-1K Pretrained Weights" for A-S and "ImageNet-22K Pretrained then 1K Finetuned" for
# B-XL): A 4.4M, F 6.2M, P 10.7M, N 18.3M, T 31M, S 56M, B 98M, L 218M, XL 386M. They count the
# deploy-form classifier (backbone + final norm + 1000-class head): the training form has
# 2-3% more (BNs, dilated branches, GRN bias, layer scale).
README_PARAMS_M = dict(A=4.4, F=6.2, P=10.7, N=18.3, T=31, S=56, B=98, L=218, XL=386)


@pytest.mark.parametrize('arch', list(README_PARAMS_M))
def test_params_of_every_size_match_the_readme(arch):
    with torch.device('meta'):
        model = UniRepLKNet(arch, out_indices=(3, ), gap_before_final_norm=True)
        deployed = UniRepLKNet(arch, out_indices=(3, ), gap_before_final_norm=True,
                               small_kernel_merged=True)
    head = model.channels[-1] * 1000 + 1000
    params = (sum(p.numel() for p in deployed.parameters()) + head) / 1e6
    expected = README_PARAMS_M[arch]
    # the README gives 1 decimal below 20M, whole millions above
    assert abs(params - expected) <= (0.05 if expected < 20 else 0.01 * expected), params
    assert deployed.deployed and not model.deployed
    assert sum(p.numel() for p in model.parameters()) + head > params * 1e6
    assert len(model.stages[2]) == UniRepLKNet.arch_settings[arch]['depths'][2]


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="unknown UniRepLKNet arch 'q'"):
        UniRepLKNet('q')
    with pytest.raises(ValueError, match=r'stage 2 has 2 blocks but got kernel_sizes\[2\]'):
        UniRepLKNet(arch=dict(TINY, kernel_sizes=((3, ), (5, ), (13, ), (7, ))))
    with pytest.raises(ValueError, match='one sequence per stage'):
        UniRepLKNet('A', kernel_sizes=13)
    with pytest.raises(ValueError, match=r'kernel_sizes\[1\] has \[4\]'):
        UniRepLKNet(arch=dict(TINY, kernel_sizes=((3, ), (4, ), (13, 0), (7, ))))
    with pytest.raises(ValueError, match='4 stages'):
        UniRepLKNet(arch=dict(depths=(1, 1), channels=(8, 16), kernel_sizes=((3, ), (3, ))))
    with pytest.raises(ValueError, match='frozen_stages'):
        UniRepLKNet('A', frozen_stages=5)
    with pytest.raises(ValueError, match='out_indices'):
        UniRepLKNet('A', out_indices=(4, ))


def test_frozen_stages_norm_eval_and_layer_depth():
    model = tiny(frozen_stages=2, norm_eval=True).train()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(re.match(r'(downsample_layers|stages)\.[01]\.', n) for n in frozen)
    assert not model.stages[0].training and model.stages[2].training
    assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))

    with torch.device('meta'):
        t, s = UniRepLKNet('T'), UniRepLKNet('S')
    depth = t.get_layer_depth
    # the official constructor's ids with num_layers=9 (segmentation T), + 2 groups
    assert depth('backbone.downsample_layers.0.0.weight', 'backbone.') == (0, 11)
    assert depth('backbone.stages.0.1.gamma', 'backbone.') == (1, 11)
    assert depth('backbone.downsample_layers.1.0.weight', 'backbone.') == (2, 11)
    assert depth('backbone.stages.2.17.se.up.weight', 'backbone.') == (8, 11)
    assert depth('backbone.stages.3.0.gamma', 'backbone.') == (9, 11)
    assert depth('backbone.norm3.weight', 'backbone.') == (10, 11)
    assert depth('decode_head.conv_seg.weight', 'backbone.') == (10, 11)
    # COCO T's num_layers=12: stage 3 and what follows move, stage 2 keeps the official ids
    assert depth('backbone.stages.3.0.gamma', 'backbone.', max_layer_id=12) == (12, 14)
    assert depth('backbone.downsample_layers.3.0.weight', 'backbone.', max_layer_id=12) == \
        (12, 14)
    assert depth('backbone.stages.2.17.se.up.weight', 'backbone.', max_layer_id=12) == (8, 14)
    assert depth('backbone.norm0.weight', 'backbone.', max_layer_id=12) == (13, 14)
    assert s.get_layer_depth('stages.3.0.gamma') == (12, 14)
    with pytest.raises(ValueError, match='max_layer_id .* must be an int >= 9'):
        depth('backbone.stages.3.0.gamma', 'backbone.', max_layer_id=8)
    with pytest.raises(ValueError, match='not a parameter of this UniRepLKNet'):
        depth('backbone.stages.0.3.gamma', 'backbone.')


def test_layer_decay_constructor_takes_the_recipe_num_layers():
    """The official lr of every parameter, with the config's num_layers above the depth's
    (COCO UniRepLKNet-T: 12 where T gives 9): layer i trains with lr x rate ** (N + 1 - i)."""
    from replk_mm.engine.optimizers import RepLKNetLayerDecayOptimWrapperConstructor
    detector = nn.Module()
    detector.backbone, detector.neck = tiny(), nn.Conv2d(32, 4, 1)
    assert detector.backbone.max_layer_depth() == 4  # stage 2 has 2 blocks: 3, then 4
    rate, lr = 0.8, 1e-4
    wrapper = RepLKNetLayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=lr)),
        dict(layer_decay_rate=rate, num_layers=12))(detector)
    official = {'backbone.downsample_layers.0.': 0, 'backbone.stages.0.': 1,
                'backbone.downsample_layers.1.': 2, 'backbone.stages.1.': 2,
                'backbone.downsample_layers.2.': 3, 'backbone.stages.2.': 3,
                'backbone.downsample_layers.3.': 12, 'backbone.stages.3.': 12,
                'backbone.norm': 13, 'neck.': 13}
    names = {id(p): n for n, p in detector.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        name = names[id(group['params'][0])]
        layer_id, = (i for prefix, i in official.items() if name.startswith(prefix))
        assert group['lr'] == pytest.approx(lr * rate ** (12 + 1 - layer_id)), name
    with pytest.raises(ValueError, match='num_layers must be an int'):
        RepLKNetLayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=lr)), dict(layer_decay_rate=rate,
                                                            num_layers='12'))


# ---------------------------------------------------------------------------------------------
# official checkpoints through checkpoint_filter
# ---------------------------------------------------------------------------------------------
def load_filtered(model, state_dict):
    model.load_state_dict(checkpoint_filter(dict(state_dict), model), strict=True)
    return model


def test_official_downstream_layout_training_and_deploy_form():
    ref = reference(classifier=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref(x)
        ours = load_filtered(tiny(), ref.state_dict())
        for got, exp in zip(ours(x), expected):
            assert rel_err(got, exp) < 1e-5
        # our re-parameterization = the official one: same deploy keys, same outputs
        assert not is_deploy_form({f'backbone.{k}': v for k, v in ours.state_dict().items()})
        switch_to_deploy(ours)
        ref.reparameterize()
        assert set(ours.state_dict()) == set(ref.state_dict())
        # the inferencers build the deploy form for such a checkpoint
        assert is_deploy_form({f'backbone.{k}': v for k, v in ours.state_dict().items()})
        deployed = load_filtered(tiny(small_kernel_merged=True), ref.state_dict())
        for a, b, exp in zip(ours(x), deployed(x), expected):
            assert rel_err(a, exp) < 1e-5 and rel_err(b, exp) < 1e-5


def test_official_imagenet_classifier_layout():
    ref = reference(classifier=True)
    x = torch.randn(2, 3, 64, 64)
    ours = load_filtered(tiny(out_indices=(3, ), gap_before_final_norm=True), ref.state_dict())
    head = nn.Linear(32, 10)
    head.load_state_dict({'weight': ref.head.weight, 'bias': ref.head.bias})
    with torch.no_grad():
        assert rel_err(head(ours(x)[0]), ref(x)) < 1e-5
        # a feature-map backbone from the ImageNet file: its norms start at the identity
        features = load_filtered(tiny(), ref.state_dict())
        assert torch.equal(features.norm3.weight, torch.ones(32))
        ref.reparameterize()
        deployed = load_filtered(tiny(out_indices=(3, ), gap_before_final_norm=True,
                                      small_kernel_merged=True), ref.state_dict())
        assert rel_err(head(deployed(x)[0]), ref(x)) < 1e-5


def test_mismatched_checkpoints_raise():
    ref, ref_deploy = reference(classifier=False), reference(classifier=False)
    ref_deploy.reparameterize()
    with pytest.raises(ValueError, match='deploy-form UniRepLKNet .* build the backbone with '
                       'small_kernel_merged=True'):
        checkpoint_filter(ref_deploy.state_dict(), tiny())
    with pytest.raises(ValueError, match='training-form .* small_kernel_merged=False, load, then'):
        checkpoint_filter(ref.state_dict(), tiny(small_kernel_merged=True))
    with pytest.raises(ValueError, match='not a UniRepLKNet checkpoint'):
        checkpoint_filter({'stem.0.weight': torch.zeros(1)}, tiny())


def test_init_cfg_loads_a_downstream_file_strictly(tmp_path):
    from replk_mm.models.checkpoint import CheckpointMismatchError
    ref = reference(classifier=False)
    state = {f'backbone.{k}': v for k, v in ref.state_dict().items()}
    state['decode_head.conv_seg.weight'] = torch.zeros(2, 2)
    path = tmp_path / 'upernet.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    model = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert rel_err(model.eval()(x)[2], ref(x)[2]) < 1e-5
    # another size's checkpoint: the strict loader names the mis-shaped keys
    other = UniRepLKNet(arch=dict(TINY, channels=(8, 16, 24, 40)),
                        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError, match=r'stages\.3\.0'):
        other.init_weights()


# ---------------------------------------------------------------------------------------------
# OpenMMLab: registries and the mmpretrain classifier
# ---------------------------------------------------------------------------------------------
def test_registered_in_the_downstream_scopes():
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS

    from replk_mm.registry import MODELS
    assert MODELS.get('UniRepLKNet') is UniRepLKNet
    assert SEG_MODELS.get('UniRepLKNet') is UniRepLKNet
    assert DET_MODELS.get('UniRepLKNet') is UniRepLKNet


def test_mmpretrain_classifier_loads_the_official_imagenet_file():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    ref = reference(classifier=True)
    cfg = dict(type='ImageClassifier',
               backbone=dict(type='replk_mm.UniRepLKNet', arch=dict(TINY), out_indices=(3, ),
                             gap_before_final_norm=True),
               head=dict(type='LinearClsHead', num_classes=10, in_channels=32))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = MODELS.build(cfg).eval()
    classifier.load_state_dict(convert_official_classifier(ref.state_dict()), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert rel_err(classifier(x, mode='tensor'), ref(x)) < 1e-5


# ---------------------------------------------------------------------------------------------
# deploy (ONNX) and the demo config
# ---------------------------------------------------------------------------------------------
CLS_CONFIG = f"""
default_scope = 'mmpretrain'
custom_imports = dict(imports=['replk_mm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='replk_mm.UniRepLKNet', arch={dict(TINY)!r}, out_indices=(3, ),
                  gap_before_final_norm=True),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=32))
data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
"""


def test_deploy_form_classifier_exports_to_onnx(tmp_path):
    pytest.importorskip('onnxruntime')
    from replk_mm.apis.builder import build_model
    from replk_mm.deploy import export_and_check
    from replk_mm.deploy.models import load_deploy_config
    config = tmp_path / 'uni_cls.py'
    config.write_text(CLS_CONFIG)
    model = randomize(build_model(load_deploy_config(str(config))))
    checkpoint = tmp_path / 'uni_cls.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    report = export_and_check(str(config), str(checkpoint), str(tmp_path / 'uni_cls.onnx'),
                              shape=(64, 64), progress=lambda m: None)
    assert report.passed and report.task == 'classification' and report.worst < 1e-4
    # every Dilated Reparam Block is one plain dense conv in the graph
    assert report.graph.large_depthwise(min_kernel=7) == {(13, 13): 1, (7, 7): 1}
    assert report.graph.plain



SEG_CONFIG = """
_base_ = {base!r}
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(out_indices=(2, 3), arch=dict(depths=[1, 1, 1, 1], channels=[8, 8, 16, 16],
                                                kernel_sizes=[[3], [3], [13], [7]])),
    decode_head=dict(in_channels=[16, 16], in_index=[0, 1], channels=8),
    auxiliary_head=dict(in_channels=16, in_index=1, channels=8))
"""


def test_deploy_form_upernet_exports_to_onnx(tmp_path):
    """The tiny UperNet demo model re-parameterized, exported with dynamic shapes and checked
    by onnxruntime at two sizes (the tool's own check) as the classifier above."""
    pytest.importorskip('onnxruntime')
    from replk_mm.apis.builder import build_model
    from replk_mm.deploy import export_and_check
    from replk_mm.deploy.models import load_deploy_config
    config = tmp_path / 'uni_seg.py'
    config.write_text(SEG_CONFIG.format(base=str(
        osp.join(REPO, 'configs/demo/upernet_unireplknet_tiny_demo_ade20k.py'))))
    model = randomize(build_model(load_deploy_config(str(config))))
    checkpoint = tmp_path / 'uni_seg.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    report = export_and_check(str(config), str(checkpoint), str(tmp_path / 'uni_seg.onnx'),
                              shape=(64, 64), dynamic=True, progress=lambda m: None)
    assert report.passed and report.task == 'segmentation' and report.worst < 1e-4
    assert report.graph.large_depthwise(min_kernel=7) == {(13, 13): 1, (7, 7): 1}
    assert report.graph.plain

DEMO_CONFIG = """
_base_ = {base!r}
data_root = {root!r}
crop_size = (64, 64)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=4e-3))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
train_cfg = dict(max_iters={iters}, val_interval=1000)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1000))
log_processor = dict(window_size=1)
"""


def test_demo_config_learns(tmp_path):
    import json
    import os.path as osp
    from glob import glob

    from conftest import REPO

    from replk_mm.datasets.synthetic import make_ade20k_demo
    from tools.train import main
    root = str(tmp_path / 'data')
    make_ade20k_demo(root, num_train=4, num_val=1, min_side=64, max_side=72)
    config = tmp_path / 'demo.py'
    iters = 6
    config.write_text(DEMO_CONFIG.format(
        base=osp.join(REPO, 'configs/demo/upernet_unireplknet_tiny_demo_ade20k.py'), root=root,
        iters=iters))
    runner = main([str(config), '--work-dir', str(tmp_path / 'work')])
    assert isinstance(runner.model.backbone, UniRepLKNet)
    scalars, = glob(str(tmp_path / 'work' / '*' / 'vis_data' / 'scalars.json'))
    with open(scalars) as f:
        losses = [r['loss'] for r in map(json.loads, f) if 'loss' in r]
    assert len(losses) == iters
    assert sum(losses[-3:]) / 3 < 0.85 * sum(losses[:3]) / 3, losses
