"""Effective receptive field (ERF), measured as the RepLKNet paper measures it.

The method of the official ``erf/visualize_erf.py`` and ``erf/analyze_erf.py``
(https://github.com/DingXiaoH/RepLKNet-pytorch, MIT), method ``'official'`` (the default):

* the probed feature map is the last stage's output *before* the final norm (RepLKNet's
  ``forward_features``; a ResNet's ``layer4``);
* per image, the scalar ``sum_c ReLU(F[c, h // 2, w // 2])`` (the ReLU of the centre response
  of every channel) is differentiated w.r.t. the input image, and the ReLU of that gradient
  (its positive part, not its absolute value) is summed over the colour channels;
* these maps are *averaged* over the images (an image whose map holds NaN is skipped); the
  official script uses the first 50 images of the ImageNet validation folder, each resized to
  1024x1024 (bicubic) and normalized with the ImageNet mean / std (:func:`load_erf_images`);
* for display and for the area ratio the matrix becomes ``log10(x + 1)`` divided by its
  maximum (:func:`normalize_erf`); the *high-contribution area ratio* at threshold t is the
  area of the smallest centred square, of side 3, 5, 7..., whose share of the total is above
  t, divided by the image area (:func:`high_contribution_area_ratio`).

"""
import glob
import json
import os
import os.path as osp
import re
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ERF_METHOD = 'official'  # recorded with each result
THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's ImageFolder extensions (the official script reads ImageNet through it)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def default_erf_layer(backbone):
    """Name of the module whose output is the last stage before the final norm: the last of
    ``stages`` (RepLKNet, ConvNeXt-style backbones) or of ``res_layers`` (OpenMMLab ResNets);
    None when neither exists (the backbone's last output is then used)."""
    stages = getattr(backbone, 'stages', None)
    if isinstance(stages, (nn.ModuleList, nn.Sequential)) and len(stages):
        return f'stages.{len(stages) - 1}'
    res_layers = getattr(backbone, 'res_layers', None)
    if isinstance(res_layers, (list, tuple)) and res_layers \
            and isinstance(getattr(backbone, res_layers[-1], None), nn.Module):
        return res_layers[-1]
    return None


def _as_feature_map(out, stage, where):
    if isinstance(out, (tuple, list)):
        out = out[stage]
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise ValueError(f'{where} must give an N x C x H x W feature map, got '
                         f'{type(out).__name__}' + (f' of shape {tuple(out.shape)}'
                                                    if isinstance(out, torch.Tensor) else ''))
    return out


def probe_features(backbone, images, stage=-1, layer=None):
    """The probed feature map of ``backbone`` on ``images``: the output of the sub-module
    named ``layer`` (a forward hook), else ``backbone(images)[stage]``."""
    if layer is None:
        return _as_feature_map(backbone(images), stage, 'the backbone')
    try:
        module = backbone.get_submodule(layer)
    except AttributeError as exc:
        raise ValueError(f'{type(backbone).__name__} has no sub-module {layer!r} to probe') \
            from exc
    captured = []
    handle = module.register_forward_hook(lambda m, args, out: captured.append(out))
    try:
        backbone(images)
    finally:
        handle.remove()
    return _as_feature_map(captured[-1], -1, f'module {layer!r}')


def contribution_maps(backbone, images, stage=-1, layer=None):
    """Per-image contribution maps of a batch (N, 3, H, W) -> (N, H, W) float64 array."""
    images = images.detach().clone().requires_grad_(True)
    features = probe_features(backbone, images, stage, layer)
    h, w = features.shape[-2:]
    centre = F.relu(features[:, :, h // 2, w // 2])
    # The images are independent in eval mode, so the batch sum gives each image's gradient.
    grad, = torch.autograd.grad(centre.sum(), images)
    return F.relu(grad).sum(dim=1).cpu().double().numpy()


def erf_of_batch(backbone, images, stage=-1, layer=None):
    """Contribution map of a batch (N, 3, H, W), summed over its images -> (H, W) array."""
    return contribution_maps(backbone, images, stage, layer).sum(axis=0)


@contextmanager
def _frozen_eval(module):
    """Eval mode (BN statistics and drop path fixed) and no parameter gradients, restored
    afterwards."""
    training = module.training
    requires = [(p, p.requires_grad) for p in module.parameters()]
    module.eval()
    for p, _ in requires:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in requires:
            p.requires_grad_(flag)
        module.train(training)


def compute_erf(backbone, images, stage=-1, batch_size=1, progress=None, layer=None):
    """ERF (contribution-score matrix) of ``backbone`` over (3, H, W) image tensors.

    Args:
        backbone (nn.Module): Returns a feature map or a tuple of them.
        images (Iterable[Tensor]): Normalized images, all of one size.
        stage (int): Which output of the backbone is probed when ``layer`` is None.
        batch_size (int): Images per forward/backward pass (results do not depend on it:
            the model is in eval mode).
        progress (Callable[[int, int], None], optional): Called after each batch with the
            images done and the total.
        layer (str, optional): Probe this sub-module's output instead (e.g. the value of
            :func:`default_erf_layer`).

    Returns:
        np.ndarray: (H, W) float64. The backbone's mode and ``requires_grad`` flags are
        restored afterwards.
    """
    images = list(images)
    if not images:
        raise ValueError('compute_erf needs at least one image')
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
    total, used, skipped = None, 0, 0
    with _frozen_eval(backbone):
        for start in range(0, len(images), batch_size):
            batch = torch.stack(images[start:start + batch_size])
            for contribution in contribution_maps(backbone, batch, stage, layer):
                if np.isnan(contribution).any():
                    skipped += 1
                    continue
                total = contribution if total is None else total + contribution
                used += 1
            if progress:
                progress(min(start + batch_size, len(images)), len(images))
    if total is None:
        raise ValueError(f'every one of the {len(images)} images gave a NaN contribution map')
    if skipped:
        warnings.warn(f'compute_erf: {skipped} of {len(images)} images gave NaN maps and were '
                      'skipped (as the official script does)')
    return total / used


def normalize_erf(erf):
    """``log10(erf + 1)`` scaled to [0, 1], as the paper shows and measures it."""
    erf = np.log10(np.asarray(erf, dtype=np.float64) + 1)
    return erf / erf.max() if erf.max() > 0 else erf


def high_contribution_area_ratio(erf, threshold):
    """Share of the image taken by the smallest centred square holding more than
    ``threshold`` of the (normalized) ERF.

    Squares of side 3, 5, ... (the official ``get_rectangle``), a share strictly above t;
    where no such square fits inside the image the answer is 1.0 (the whole image; the
    official script fails there).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f'threshold must be in (0, 1], got {threshold}')
    data = normalize_erf(erf)
    total = data.sum()
    if not total > 0:
        raise ValueError('the ERF is zero everywhere: no contribution to measure')
    h, w = data.shape
    cy, cx = h // 2, w // 2
    for i in range(1, h // 2):
        window = data[max(cy - i, 0):cy + i + 1, max(cx - i, 0):cx + i + 1]
        if window.sum() / total > threshold:
            return window.size / data.size
    return 1.0


def area_ratios(erf, thresholds=THRESHOLDS):
    """``{threshold: area ratio}`` for each threshold."""
    return {t: high_contribution_area_ratio(erf, t) for t in thresholds}


def erf_colormap(data):
    """The official heat map's colours: seaborn's ``RdYlGn`` with ``center=0`` over data in
    [0, 1] uses only the colour map's upper half (yellow to green)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    vmin, vmax = float(np.min(data)), float(np.max(data))
    vrange = max(vmax, -vmin) or 1.0
    low, high = (vmin + vrange) / (2 * vrange), (vmax + vrange) / (2 * vrange)
    return ListedColormap(colormaps['RdYlGn'](np.linspace(low, high, 256)))


def plot_erf(erfs, out_file, titles=None, thresholds=THRESHOLDS, table=True):
    """One heat map per ERF (normalized as the paper shows them), side by side, with the
    area-ratio table underneath. Returns ``out_file``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    erfs = list(erfs) if isinstance(erfs, (list, tuple)) else [erfs]
    titles = list(titles) if titles else [f'model {i + 1}' for i in range(len(erfs))]
    if len(titles) != len(erfs):
        raise ValueError(f'{len(titles)} titles for {len(erfs)} ERFs')
    ratios = [area_ratios(erf, thresholds) for erf in erfs]
    n = len(erfs)
    height = 4.2 + (0.3 * (len(thresholds) + 1) if table else 0)
    fig = plt.figure(figsize=(max(3.6 * n, 5), height))
    grid = fig.add_gridspec(2 if table else 1, n,
                            height_ratios=[4, 0.3 * (len(thresholds) + 1)] if table else [1])
    for i, (erf, title) in enumerate(zip(erfs, titles)):
        ax = fig.add_subplot(grid[0, i])
        data = normalize_erf(erf)
        ax.imshow(data, cmap=erf_colormap(data), vmin=data.min(), vmax=data.max(),
                  interpolation='nearest')
        ax.set_title(title, fontsize=10)
        ax.axis('off')
    if table:
        ax = fig.add_subplot(grid[1, :])
        ax.axis('off')
        cells = [[f'{r[t]:.4f}' if r[t] < 0.1 else f'{r[t]:.3f}' for r in ratios]
                 for t in thresholds]
        grid_table = ax.table(cellText=cells, rowLabels=[f't = {t:.0%}' for t in thresholds],
                              colLabels=titles, loc='center', cellLoc='center')
        grid_table.auto_set_font_size(False)
        grid_table.set_fontsize(8)
        ax.set_title('high-contribution area ratio', fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=120)
    plt.close(fig)
    return out_file


def list_images(folder):
    """Image files of ``folder`` in torchvision ImageFolder order when it has class
    sub-folders (sorted classes, sorted files), else its sorted image files."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'image folder {folder} does not exist')

    def images_in(directory):
        return sorted(p for p in glob.glob(osp.join(directory, '*'))
                      if osp.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS))

    classes = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
    files = [p for c in classes for p in sorted(
        q for q in glob.glob(osp.join(folder, c, '**', '*'), recursive=True)
        if osp.isfile(q) and q.lower().endswith(IMAGE_EXTENSIONS))] if classes else []
    files = files or images_in(folder)
    if not files:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {folder} or '
                                'its class sub-folders')
    return files


def load_erf_images(folder, num_images=50, size=1024, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The first ``num_images`` images of ``folder`` as the official script feeds them: RGB,
    resized to ``size`` x ``size`` with PIL's bicubic filter, scaled to [0, 1] and normalized
    with ``mean`` / ``std`` (ImageNet's by default). Returns (3, size, size) tensors."""
    from PIL import Image
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f'num_images must be a positive int, got {num_images!r}')
    if not isinstance(size, int) or size < 32:
        raise ValueError(f'size must be an int >= 32, got {size!r}')
    files = list_images(folder)
    if len(files) < num_images:
        warnings.warn(f'{folder} holds {len(files)} images, fewer than the {num_images} asked '
                      'for: using all of them')
    mean = torch.tensor(mean).view(3, 1, 1)
    std = torch.tensor(std).view(3, 1, 1)
    images = []
    for path in files[:num_images]:
        try:
            with Image.open(path) as image:
                image = image.convert('RGB').resize((size, size), Image.BICUBIC)
        except OSError as exc:
            raise ValueError(f'cannot read image {path}: {exc}') from exc
        array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
        images.append((array.permute(2, 0, 1) - mean) / std)
    return images


def noise_images(num_images, size, seed=0):
    """Standard-normal 'images' (structure-only ERF, not the paper's method)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(3, size, size, generator=generator) for _ in range(num_images)]


@dataclass
class ErfModel:
    """A model to measure: its label, backbone and the layer probed (None: last output)."""
    label: str
    backbone: nn.Module
    layer: Optional[str] = None
    source: str = ''


@dataclass
class ErfResult:
    label: str
    source: str
    layer: Optional[str]
    method: str
    num_images: int
    size: int
    area_ratio: Dict[str, float]
    npy: Optional[str] = None
    erf: np.ndarray = field(default=None, repr=False)


def slug(label):
    return re.sub(r'[^A-Za-z0-9._-]+', '_', label).strip('_') or 'model'


# The official script's two RepLKNets: 31B and the same network with 13x13 kernels.
ERF_ARCHS = {
    'RepLKNet-31B': '31B',
    'RepLKNet-13': dict(large_kernel_sizes=[13] * 4, layers=[2, 2, 18, 2],
                        channels=[128, 256, 512, 1024], small_kernel=5),
}


def replknet_arch(spec):
    """The RepLKNet arch of an ERF model spec ('RepLKNet-31B', 'RepLKNet-13', or an arch name
    of ``RepLKNet.arch_settings``), or None when ``spec`` is not one."""
    from ..layers import ARCH_SETTINGS
    if spec in ERF_ARCHS:
        return ERF_ARCHS[spec]
    if spec in ARCH_SETTINGS:
        return spec
    return None


def build_erf_model(spec, checkpoint=None, label=None, layer='auto', kernel_size=None):
    """An :class:`ErfModel` from a spec.

    Args:
        spec (str): 'RepLKNet-31B', 'RepLKNet-13' (the official script's names), a RepLKNet
            arch name ('31B', '31L', 'XL'), or an mmseg / mmdet / mmpretrain config (path or
            ``pkg::`` name, e.g. ``mmpretrain::resnet/resnet101_8xb32_in1k.py``) whose
            ``model.backbone`` is measured.
        checkpoint (str, optional): For an arch: backbone weights in any layout RepLKNet's
            ``init_cfg`` reads (official, mmpretrain); for a config: a whole-model checkpoint
            of it (strict). None: the initial (random) weights.
        label (str, optional): Name in the figure and files (default from ``spec``).
        layer (str | None): Probed sub-module; 'auto' = :func:`default_erf_layer`; None = the
            backbone's last output.
        kernel_size (int, optional): For an arch: every large kernel this size and no small
            kernel (the same network with small kernels).
    """
    arch = replknet_arch(spec)
    if arch is not None:
        from ..layers import parse_arch
        from ..models import RepLKNet
        settings = dict(parse_arch(arch))
        name = spec if spec.startswith('RepLKNet') else f'RepLKNet-{spec}'
        if kernel_size is not None:
            settings.update(large_kernel_sizes=[kernel_size] * len(settings['channels']),
                            small_kernel=None)
            name = f'{name} ({kernel_size}x{kernel_size} kernels)'
        init = dict(type='Pretrained', checkpoint=checkpoint) if checkpoint else None
        backbone = RepLKNet(settings, init_cfg=init)
        if checkpoint:
            backbone.init_weights()
        source = name + (f' + {checkpoint}' if checkpoint else ' (random init)')
    else:
        if kernel_size is not None:
            raise ValueError('kernel_size applies to RepLKNet arch specs only, not to '
                             f'{spec!r}')
        if not (spec.endswith('.py') or '::' in spec):
            from ..layers import ARCH_SETTINGS
            raise ValueError(f'unknown ERF model {spec!r}: give {sorted(ERF_ARCHS)}, a RepLKNet '
                             f'arch {sorted(ARCH_SETTINGS)}, or a config file (.py or pkg::)')
        from ..apis.builder import build_model
        from ..deploy.models import load_checkpoint_strict, load_deploy_config
        model = build_model(load_deploy_config(spec))
        if checkpoint:
            load_checkpoint_strict(model, checkpoint)
        backbone = getattr(model, 'backbone', None)
        if backbone is None:
            raise ValueError(f'{spec}: the model has no backbone to measure')
        name = osp.splitext(osp.basename(spec.split('::')[-1]))[0]
        source = spec + (f' + {checkpoint}' if checkpoint else ' (random init)')
    if layer == 'auto':
        layer = default_erf_layer(backbone)
    return ErfModel(label=label or name, backbone=backbone, layer=layer, source=source)


def compare_erfs(models, images, out_file, thresholds=THRESHOLDS, batch_size=1, progress=print,
                 stage=-1):
    """Measure each :class:`ErfModel` on ``images``, write the figure ``out_file``, the raw
    matrices next to it (``<stem>.<label>.npy``) and the ratios (``<stem>.json``).

    Returns:
        list[ErfResult]
    """
    images = list(images)
    if not models:
        raise ValueError('compare_erfs needs at least one model')
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f'model labels must be unique, got {labels}')
    stem = osp.splitext(out_file)[0]
    size = int(images[0].shape[-1]) if images else 0
    results = []
    for index, model in enumerate(models, start=1):
        def report(done, total, label=model.label, index=index):
            progress(f'[erf] model {index}/{len(models)} {label}: {done}/{total} images')

        erf = compute_erf(model.backbone, images, stage=stage, batch_size=batch_size,
                          progress=report, layer=model.layer)
        npy = f'{stem}.{slug(model.label)}.npy'
        os.makedirs(osp.dirname(osp.abspath(npy)), exist_ok=True)
        np.save(npy, erf)
        ratios = {f'{t:g}': r for t, r in area_ratios(erf, thresholds).items()}
        progress(f'[erf] {model.label}: high-contribution area ratio '
                 + ', '.join(f't={float(t):.0%}: {r:.4f}' for t, r in ratios.items()))
        results.append(ErfResult(label=model.label, source=model.source, layer=model.layer,
                                 method=ERF_METHOD, num_images=len(images), size=size,
                                 area_ratio=ratios, npy=npy, erf=erf))
    plot_erf([r.erf for r in results], out_file, labels, thresholds)
    with open(f'{stem}.json', 'w') as f:
        json.dump([{k: v for k, v in asdict(r).items() if k != 'erf'} for r in results], f,
                  indent=2)
    progress(f'[erf] figure {out_file}, ratios {stem}.json, matrices {stem}.<label>.npy')
    return results


def erf_table(results: List[ErfResult]):
    """The area ratios as a Markdown table (one row per threshold, one column per model)."""
    thresholds = list(results[0].area_ratio)
    lines = ['| t | ' + ' | '.join(r.label for r in results) + ' |',
             '|---|' + '---|' * len(results)]
    for t in thresholds:
        lines.append(f'| {float(t):.0%} | ' + ' | '.join(f'{r.area_ratio[t]:.4f}'
                                                         for r in results) + ' |')
    return '\n'.join(lines)


__all__ = ['ERF_METHOD', 'THRESHOLDS', 'default_erf_layer', 'probe_features',
           'contribution_maps', 'erf_of_batch',
           'compute_erf', 'normalize_erf', 'high_contribution_area_ratio', 'area_ratios',
           'plot_erf', 'list_images', 'load_erf_images', 'noise_images', 'ErfModel',
           'ErfResult', 'ERF_ARCHS', 'replknet_arch', 'build_erf_model', 'compare_erfs',
           'erf_table']
