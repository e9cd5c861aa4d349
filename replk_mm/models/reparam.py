"""Structural re-parameterization for any model that contains RepLKNet blocks."""
from .backbones.replknet import ReparamLargeKernelConv


def switch_to_deploy(model):
    """Merge every RepLKNet large-kernel branch in `model` (in place; idempotent).

    Returns the number of branches that were merged by this call.
    """
    branches = [m for m in model.modules() if isinstance(m, ReparamLargeKernelConv)]
    if not branches:
        raise ValueError(f'{type(model).__name__} contains no RepLKNet large-kernel block '
                         'to re-parameterize')
    merged = 0
    for branch in branches:
        if not branch.merged:
            branch.switch_to_deploy()
            merged += 1
    return merged
