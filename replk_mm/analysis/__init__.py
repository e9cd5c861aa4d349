from .complexity import Complexity, count_flops, count_params, model_complexity, paper_input_shape
from .erf import (
                  area_ratios,
                  compare_erfs,
                  compute_erf,
                  high_contribution_area_ratio,
                  normalize_erf,
                  plot_erf,
)
from .shape_bias import evaluate_shape_bias, plot_shape_bias

__all__ = ['Complexity', 'count_flops', 'count_params', 'model_complexity', 'paper_input_shape',
           'compute_erf', 'high_contribution_area_ratio', 'normalize_erf', 'plot_erf']
# ERF comparisons and shape bias (erf.py, shape_bias.py)
__all__ += ['area_ratios', 'compare_erfs', 'evaluate_shape_bias', 'plot_shape_bias']
