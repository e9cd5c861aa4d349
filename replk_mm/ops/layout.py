"""Memory layouts of an (N, C, H, W) tensor, by one name each.

``NCHW``: contiguous (also what strided inputs are treated as); ``NHWC``: channels_last
(``torch.channels_last``) and not also contiguous.
"""
import torch

NCHW = 'nchw'
NHWC = 'nhwc'


def memory_layout(x):
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return NHWC
    return NCHW


def like_input_layout(out, x):
    """F.conv2d returns channels_last for channels_last inputs; do the same."""
    if memory_layout(x) == NHWC:
        return out.contiguous(memory_format=torch.channels_last)
    return out.contiguous()
