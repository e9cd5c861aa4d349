"""An adaptive average pooling that exports to ONNX for any input size, torch only.

ONNX has no adaptive pooling. For a fixed input size torch's exporters lower
``nn.AdaptiveAvgPool2d`` to pooling windows computed from that size, so a graph exported with
dynamic height/width silently pools the wrong windows at another size (onnxruntime then fails
or returns wrong values; UPerNet's and PSPNet's pyramid pooling module is the case that
matters here). :class:`ExportableAdaptiveAvgPool2d` computes the same windows from the runtime
shape with tensor ops (``arange``, comparisons, two matrix products), so the exported graph
stays exact at every size.
"""
import torch
import torch.nn as nn


def pooling_matrix(in_size, out_size, dtype, device):
    """``(out_size, in_size)`` matrix whose row ``i`` averages PyTorch's adaptive window ``i``:
    input positions ``[floor(i * in / out), ceil((i + 1) * in / out))``."""
    index = torch.arange(out_size, device=device)
    start = torch.div(index * in_size, out_size, rounding_mode='floor')
    end = torch.div((index + 1) * in_size + out_size - 1, out_size, rounding_mode='floor')
    position = torch.arange(in_size, device=device)
    inside = (position[None, :] >= start[:, None]) & (position[None, :] < end[:, None])
    return inside.to(dtype) / (end - start).to(dtype)[:, None]


class ExportableAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` as ``P_h @ x @ P_w^T`` with windows from the runtime shape.

    Args:
        output_size (int | tuple[int | None, int | None]): As for ``nn.AdaptiveAvgPool2d``;
            None keeps that dimension's input size.
    """

    def __init__(self, output_size):
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        output_size = tuple(output_size)
        if len(output_size) != 2 or any(
                s is not None and (not isinstance(s, int) or s < 1) for s in output_size):
            raise ValueError(f'output_size must be a positive int or a pair of positive ints '
                             f'or None, got {output_size!r}')
        self.output_size = output_size

    def forward(self, x):
        out_h, out_w = self.output_size
        if out_h == 1 and out_w == 1:  # exports as a (shape-independent) global mean
            return x.mean(dim=(-2, -1), keepdim=True)
        if out_h is not None:
            x = torch.matmul(pooling_matrix(x.shape[-2], out_h, x.dtype, x.device), x)
        if out_w is not None:
            x = torch.matmul(x, pooling_matrix(x.shape[-1], out_w, x.dtype, x.device).t())
        return x

    def extra_repr(self):
        return f'output_size={self.output_size}'


def replace_adaptive_avg_pools(model):
    """Replace every ``nn.AdaptiveAvgPool2d`` in ``model`` (in place) by
    :class:`ExportableAdaptiveAvgPool2d`; returns how many were replaced.

    A ``F.adaptive_avg_pool2d`` call inside some ``forward`` is not a module and is not
    replaced; :func:`replk_mm.deploy.export_and_check` catches what that bakes in (it runs
    the exported graph at a second input size).
    """
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.AdaptiveAvgPool2d:
                setattr(parent, name, ExportableAdaptiveAvgPool2d(child.output_size))
                replaced += 1
    return replaced

