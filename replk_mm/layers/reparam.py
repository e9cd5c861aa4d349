"""Structural re-parameterization protocol and the generic ``switch_to_deploy``, torch only.

A module that has a training form (parallel branches, BNs) and an equivalent merged deploy form
subclasses :class:`ReparamModule` and implements ``merged`` and ``merge()``. Then
:func:`switch_to_deploy` merges it inside any model, whatever backbone it belongs to.
"""
import abc

import torch
import torch.nn as nn


class ReparamModule(nn.Module, abc.ABC):
    """Base class of every re-parameterizable module.

    Subclasses implement:

    * ``merged`` (property): True once the module is in its deploy form;
    * ``merge()``: replace the training-form branches by the equivalent deploy form, in place.
      It is only called while ``merged`` is False, under ``torch.no_grad()``, and must leave
      ``merged`` True. BNs are folded with their running statistics (eval-mode behaviour).
    """

    @property
    @abc.abstractmethod
    def merged(self):
        """True when the module is in its deploy (merged) form."""

    @abc.abstractmethod
    def merge(self):
        """Fold the training-form branches into the deploy form (in place)."""

    def switch_to_deploy(self):
        """Merge this module (idempotent). Returns True if it was merged by this call."""
        if self.merged:
            return False
        with torch.no_grad():
            self.merge()
        if not self.merged:
            raise RuntimeError(f'{type(self).__name__}.merge() left the module unmerged '
                               '(its `merged` property is still False)')
        return True


def reparam_modules(model):
    """Every :class:`ReparamModule` in ``model`` (itself included), parents before children."""
    if not isinstance(model, nn.Module):
        raise TypeError(f'expected an nn.Module, got {type(model).__name__}')
    return [m for m in model.modules() if isinstance(m, ReparamModule)]


def is_deployed(model):
    """True when ``model`` has re-parameterizable modules and all of them are merged."""
    modules = reparam_modules(model)
    return bool(modules) and all(m.merged for m in modules)


def switch_to_deploy(model):
    """Merge every re-parameterizable module in ``model`` in place (idempotent).

    Works on any model containing :class:`ReparamModule` s (RepLKNet blocks, or the large-kernel
    layers of other backbones), e.g. a whole segmentor or detector. Call ``model.eval()``
    first if you compare outputs: BNs are folded with their running statistics.

    Returns:
        int: The number of modules merged by this call (0 when all already were).

    Raises:
        ValueError: ``model`` contains no re-parameterizable module at all.
    """
    modules = reparam_modules(model)
    if not modules:
        raise ValueError(
            f'{type(model).__name__} contains no RepLKNet block or other re-parameterizable '
            'module (replk_mm.layers.ReparamModule) to merge; pass the model that contains '
            'the backbone (e.g. the segmentor or its .backbone)')
    # Children before parents: a module that merges its sub-modules sees them merged already.
    return sum(m.switch_to_deploy() for m in reversed(modules))
