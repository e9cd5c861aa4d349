from .complexity import count_flops, count_params
from .erf import compute_erf, high_contribution_area_ratio, normalize_erf, plot_erf

__all__ = ['count_flops', 'count_params', 'compute_erf', 'high_contribution_area_ratio',
           'normalize_erf', 'plot_erf']
