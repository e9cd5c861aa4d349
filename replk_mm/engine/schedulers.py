"""mmcv 1.x's poly learning-rate policy with warm-up, as an mmengine parameter scheduler.

The official RepLKNet segmentation configs (mmseg 0.x) train with
``lr_config = dict(policy='poly', warmup='linear', warmup_iters=W, warmup_ratio=r, power=p,
min_lr=m, by_epoch=False)``. In mmcv 1.x (``PolyLrUpdaterHook`` + ``LrUpdaterHook``) the poly
curve spans the whole run and the warm-up factor multiplies it; mmengine's ``LinearLR`` +
``PolyLR(begin=W)`` instead restarts the poly curve after the warm-up, and both of them
count ``end - begin - 1`` steps where mmcv counts ``max_iters`` and ``W``.
"""
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS

WARMUP_TYPES = ('linear', 'constant', 'exp')


@PARAM_SCHEDULERS.register_module()
class WarmupPolyLR(_ParamScheduler):
    """Poly decay over the whole run, multiplied by a warm-up factor (mmcv 1.x semantics).

    At step ``i`` (counted from ``begin``; ``T = end - begin``, which the runner sets to
    ``train_cfg.max_iters`` when ``end`` is not given)::

        lr(i) = ((base_lr - eta_min) * (1 - i / T) ** power + eta_min) * w(i)
        w(i) = 1                                        for i >= warmup_iters, else
               1 - (1 - i / warmup_iters) * (1 - warmup_ratio)   'linear'
               warmup_ratio                                      'constant'
               warmup_ratio ** (1 - i / warmup_iters)            'exp'

    which is what mmcv 1.x's ``PolyLrUpdaterHook`` (``min_lr`` = ``eta_min``) and the warm-up
    of ``LrUpdaterHook`` set before iteration ``i``. The value is computed in closed form from
    each parameter group's initial lr, so this scheduler is meant to be the only lr scheduler
    of a run.

    Args:
        optimizer (Optimizer | OptimWrapper): the optimizer.
        power (float): poly exponent. Defaults to 1.0.
        eta_min (float): the lr the poly curve ends at (mmcv's ``min_lr``). Defaults to 0.
        warmup (str | None): 'linear', 'constant', 'exp' or None (no warm-up, the default).
        warmup_iters (int): warm-up length in iterations (> 0 with a warm-up). Defaults to 0.
        warmup_ratio (float): the warm-up factor at step 0, in (0, 1]. Defaults to 0.1.
        begin (int): first step. Defaults to 0.
        end (int): the step at which the poly curve reaches ``eta_min``; the runner fills in
            ``train_cfg.max_iters``.
        last_step (int): for resuming without a state dict. Defaults to -1.
        by_epoch (bool): must be False: the official schedules count iterations.
        verbose (bool): print every update. Defaults to False.
    """

    def __init__(self, optimizer, power=1.0, eta_min=0.0, warmup=None, warmup_iters=0,
                 warmup_ratio=0.1, begin=0, end=INF, last_step=-1, by_epoch=False,
                 verbose=False):
        if by_epoch:
            raise ValueError('WarmupPolyLR counts iterations, as the mmcv 1.x schedules it '
                             'reproduces; set by_epoch=False')
        if end >= INF:
            raise ValueError('WarmupPolyLR needs `end`, the step at which the poly curve '
                             'reaches eta_min (the runner sets it to train_cfg.max_iters '
                             'when the config leaves it out)')
        if warmup is not None and warmup not in WARMUP_TYPES:
            raise ValueError(f'warmup must be one of {WARMUP_TYPES} or None, got {warmup!r}')
        if not isinstance(warmup_iters, int) or warmup_iters < 0:
            raise ValueError(f'warmup_iters must be a non-negative int, got {warmup_iters!r}')
        if warmup is not None and warmup_iters == 0:
            raise ValueError(f"warmup={warmup!r} needs warmup_iters > 0 (or warmup=None)")
        if warmup is not None and not 0 < warmup_ratio <= 1:
            raise ValueError(f'warmup_ratio must be in (0, 1], got {warmup_ratio!r}')
        if warmup_iters > end - begin:
            raise ValueError(f'warmup_iters ({warmup_iters}) is longer than the schedule '
                             f'(end - begin = {end - begin})')
        if power < 0:
            raise ValueError(f'power must be >= 0, got {power!r}')
        self.power = power
        self.eta_min = eta_min
        self.warmup = warmup
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.total_steps = end - begin
        super().__init__(optimizer, param_name='lr', begin=begin, end=end,
                         last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    def _warmup_factor(self, step):
        if self.warmup is None or step >= self.warmup_iters:
            return 1.0
        if self.warmup == 'linear':
            return 1 - (1 - step / self.warmup_iters) * (1 - self.warmup_ratio)
        if self.warmup == 'constant':
            return self.warmup_ratio
        return self.warmup_ratio ** (1 - step / self.warmup_iters)  # 'exp'

    def _get_value(self):
        step = self.last_step
        poly = (1 - step / self.total_steps) ** self.power
        warm = self._warmup_factor(step)
        return [((base - self.eta_min) * poly + self.eta_min) * warm
                for base in self.base_values]
