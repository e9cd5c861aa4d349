"""Measured GPU cost constants shipped with the package (data only; see cost_model).

Generated from the GPU check's output (docs/benchmark_lk_conv.md, section "GPU: not measured
yet", says how); empty until that check has run on a GPU of each class. The format is the
one ``REPLK_DW_CONV_COSTS`` files use::

    {'version': 1,
     'classes': {'cuda:sm90': {'measured_on': 'NVIDIA H200, torch 2.11.0, 2026-..-..',
                               'tables': {'float32': {'native': {'fwd': {'small': [fixed_s,
                                                                                   s_per_unit],
                                                                         ...}}}}}}}
"""
GPU_TABLES = {'version': 1, 'classes': {}}
