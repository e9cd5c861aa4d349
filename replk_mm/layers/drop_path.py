"""Stochastic depth (drop path), torch only, and the per-block rates every backbone uses."""
import torch
import torch.nn as nn


def linear_drop_path_rates(max_rate, num_blocks):
    """Drop-path rates rising linearly from 0 (first block) to ``max_rate`` (last block), as
    ``torch.linspace(0, max_rate, num_blocks)`` of the official RepLKNet and ConvNeXt code.
    Plain Python, so a backbone also builds under ``torch.device('meta')``."""
    if num_blocks == 1:
        return [0.0]
    return [max_rate * i / (num_blocks - 1) for i in range(num_blocks)]


def drop_path(x, drop_prob=0., training=False):
    """Zero whole samples of a residual branch with probability ``drop_prob`` while training and
    scale the kept ones by ``1 / (1 - drop_prob)`` (Huang et al., 2016).

    Same semantics as ``mmcv.cnn.bricks.drop_path`` (one uniform draw per sample, the sample is
    kept when the draw is >= ``drop_prob``), so a seeded run draws the same masks.
    """
    if drop_prob == 0. or not training:
        return x
    keep_prob = 1. - drop_prob
    shape = (x.shape[0], ) + (1, ) * (x.ndim - 1)
    keep = torch.rand(shape, dtype=x.dtype, device=x.device) >= drop_prob
    return x.div(keep_prob) * keep.to(x.dtype)


class DropPath(nn.Module):
    """Drop path (stochastic depth) per sample, applied to the main path of a residual block.

    Args:
        drop_prob (float): Probability in [0, 1) that a sample's branch is zeroed.
    """

    def __init__(self, drop_prob=0.1):
        super().__init__()
        if not isinstance(drop_prob, (int, float)) or not 0 <= drop_prob < 1:
            raise ValueError(f'drop_prob must be a float in [0, 1), got {drop_prob!r}')
        self.drop_prob = float(drop_prob)

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self):
        return f'drop_prob={self.drop_prob}'
