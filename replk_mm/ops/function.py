"""One autograd function whose forward, input gradient and weight gradient may each use a
different backend (the plan), e.g. a padded direct forward with an FFT weight gradient."""
from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from .backends import BACKENDS


class Plan(NamedTuple):
    """The backend of each phase."""
    fwd: str
    dx: str
    dw: str


NATIVE_PLAN = Plan('native', 'native', 'native')


class DepthwiseConvFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, w, b, geom, plan):
        ctx.geom, ctx.plan, ctx.state = geom, plan, {}
        ctx.save_for_backward(x, w)
        return BACKENDS[plan.fwd].fwd(x, w, b, geom, ctx.state)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        geom, plan, state = ctx.geom, ctx.plan, ctx.state
        need_dx, need_dw, need_db = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        if need_dx and need_dw and plan.dx == plan.dw and hasattr(BACKENDS[plan.dx], 'dx_dw'):
            gx, gw = BACKENDS[plan.dx].dx_dw(x, g, w, geom, state)
        else:
            if need_dx:
                gx = BACKENDS[plan.dx].dx(x, g, w, geom, state)
            if need_dw:
                gw = BACKENDS[plan.dw].dw(x, g, w, geom, state)
        if need_db:
            gb = g.sum((0, 2, 3))
        ctx.state = None
        return gx, gw, gb, None, None
