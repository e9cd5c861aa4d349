"""Deployment: the re-parameterized network of a config and its ONNX export checked by
onnxruntime (its speed is measured by tools/analysis/benchmark_deploy.py).

:mod:`.adaptive_pool` needs torch only; the rest builds models from OpenMMLab configs.
onnx / onnxruntime / onnxscript (the ``onnx`` extra) are imported when an export or an
onnxruntime run needs them, with an install hint when missing.
"""
from .adaptive_pool import ExportableAdaptiveAvgPool2d, replace_adaptive_avg_pools
from .models import (
                     DeployModel,
                     Preprocess,
                     check_input_shape,
                     default_input_shape,
                     graph_module,
                     image_to_input,
                     load_deploy_model,
                     resolve_config,
)
from .onnx import (
                   DEFAULT_RTOL,
                   ExportCheckError,
                   ExportReport,
                   GraphReport,
                   OnnxRunner,
                   difference,
                   export_and_check,
                   export_onnx,
                   inspect_onnx,
                   require_onnx,
)

__all__ = ['ExportableAdaptiveAvgPool2d', 'replace_adaptive_avg_pools', 'DeployModel',
           'Preprocess', 'check_input_shape', 'default_input_shape', 'graph_module',
           'image_to_input', 'load_deploy_model', 'resolve_config',
           'DEFAULT_RTOL', 'ExportCheckError', 'ExportReport', 'GraphReport', 'OnnxRunner',
           'difference', 'export_and_check', 'export_onnx', 'inspect_onnx', 'require_onnx']
