"""Deprecated. The demos moved to ``tools/demo/`` (the library knows nothing of the checkout),
inference to :mod:`replk_mm.apis.inference`, the synthetic data to
:mod:`replk_mm.datasets.synthetic`. ``replk_mm.demo.det_demo`` keeps the detection inference
names earlier docs showed."""
