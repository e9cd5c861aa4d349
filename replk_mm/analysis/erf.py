"""Effective receptive field (ERF), measured the way the RepLKNet paper does.

For each image, the gradient of the centre pixel of a stage's output (summed over channels)
w.r.t. the input is taken, its absolute value summed over colour channels, and accumulated over
images. The paper shows ``log10(erf + 1)`` rescaled to [0, 1], and reports the "high-contribution
area ratio": the smallest centred square that holds a fraction t of the total contribution,
as a share of the image area.
"""
import numpy as np
import torch


def erf_of_batch(backbone, images, stage=-1):
    """Accumulated |d centre / d input| over `images` (N, 3, H, W) -> (H, W) numpy array."""
    images = images.clone().requires_grad_(True)
    out = backbone(images)[stage]
    h, w = out.shape[-2:]
    out[:, :, h // 2, w // 2].sum().backward()
    return images.grad.abs().sum(dim=(0, 1)).cpu().numpy()


def compute_erf(backbone, images, stage=-1, batch_size=1, progress=None):
    """ERF of `backbone` over an iterable of (3, H, W) image tensors.

    The backbone is put in eval mode (BN statistics fixed) and its parameters get no
    gradients; `progress(i, n)` is called after each batch.
    """
    backbone.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    images = list(images)
    if not images:
        raise ValueError('compute_erf needs at least one image')
    total = None
    for start in range(0, len(images), batch_size):
        batch = torch.stack(images[start:start + batch_size])
        erf = erf_of_batch(backbone, batch, stage)
        total = erf if total is None else total + erf
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    return total


def normalize_erf(erf):
    """log10(erf + 1) scaled to [0, 1], as displayed in the paper."""
    erf = np.log10(erf + 1)
    return erf / erf.max() if erf.max() > 0 else erf


def high_contribution_area_ratio(erf, threshold):
    """Share of the image taken by the smallest centred square holding `threshold` of the ERF."""
    if not 0 < threshold <= 1:
        raise ValueError(f'threshold must be in (0, 1], got {threshold}')
    erf = normalize_erf(erf)
    total = erf.sum()
    h, w = erf.shape
    cy, cx = h // 2, w // 2
    for r in range(max(h, w)):
        window = erf[max(cy - r, 0):cy + r + 1, max(cx - r, 0):cx + r + 1]
        if window.sum() >= threshold * total:
            return window.size / erf.size
    return 1.0


def plot_erf(erfs, out_file, titles=None, thresholds=(0.2, 0.3, 0.5, 0.99)):
    """Heatmaps of one or more ERFs side by side, with their area ratios in the titles."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    erfs = erfs if isinstance(erfs, (list, tuple)) else [erfs]
    titles = titles or [''] * len(erfs)
    fig, axes = plt.subplots(1, len(erfs), figsize=(4.2 * len(erfs), 4.6), squeeze=False)
    for ax, erf, title in zip(axes[0], erfs, titles):
        ratios = ', '.join(f'{t:.0%}: {high_contribution_area_ratio(erf, t):.3f}'
                           for t in thresholds)
        ax.imshow(normalize_erf(erf), cmap='RdYlGn', vmin=0, vmax=1)
        ax.set_title(f'{title}\narea ratio {ratios}', fontsize=8)
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)
    return out_file
