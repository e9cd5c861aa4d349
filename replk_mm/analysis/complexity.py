"""Parameters and FLOPs of RepLKNet models, counted the way the paper's numbers were.

The RepLKNet README quotes multiply-accumulates ("FLOPs", as mmcv 1.x's counter and Swin call
them) of one forward pass:

* classification: the classifier at its test size (RepLKNet-31B: 15.3G at 224x224);
* UperNet: ``forward_dummy`` of mmseg 0.x, i.e. backbone + decode head (no auxiliary head)
  at 2048x512 for 512-crop (ImageNet-1K) models and 2560x640 for 640-crop (22K, MegData)
  models, "following Swin"; Cityscapes at mmseg's default 2048x1024;
* detection: ``forward_dummy`` of mmdet 2.x at 1280x800, i.e. backbone, neck, dense heads and,
  for two-stage detectors, every RoI head on 1000 proposals (mask heads on the first 100).

:func:`paper_input_shape` gives that input size for a config and :func:`model_complexity`
counts a built model that way, with mmengine's ``FlopAnalyzer`` (a traced forward pass:
convolutions, linear layers, matrix products, norms, upsampling and adaptive pooling; not
element-wise additions or activations). replk_mm's depth-wise convs run as plain
``F.conv2d`` while traced, so the count does not depend on the backend that would run them.
"""
import time
from dataclasses import dataclass, field
from typing import Mapping, Tuple

import torch
import torch.nn as nn

from ..apis.builder import count_params, eval_crop_size, eval_resize_scale

# mmdet 2.x's forward_dummy: random proposals for the RoI heads, the first 100 for masks
DUMMY_PROPOSALS = 1000
DUMMY_MASK_ROIS = 100
DETECTION_INPUT = (800, 1280)  # (H, W): "FLOPs is computed with 1280x800"
NETWORK_STRIDE = 32


@dataclass(frozen=True)
class Complexity:
    """What :func:`model_complexity` counted.

    ``flops`` are multiply-accumulates (the paper's "FLOPs"); ``params`` counts every
    parameter of the model (auxiliary heads included, as the paper's #params do).
    """
    params: int
    flops: int
    input_shape: Tuple[int, int]  # (H, W)
    counted: str  # which forward pass was counted
    seconds: float
    by_operator: Mapping[str, int] = field(default_factory=dict)


class _Forward(nn.Module):
    """A traceable ``forward(x)`` over a model: what is counted is ``fn(model, x)``."""

    def __init__(self, model, fn):
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, x):
        return self.fn(self.model, x)


def _analyze(module, inputs):
    from mmengine.analysis import FlopAnalyzer
    analyzer = FlopAnalyzer(module, (inputs, ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analyzer


def count_flops(model, input_shape=(3, 224, 224), forward=None):
    """Multiply-accumulates of one forward pass of ``model`` on a zero image of
    ``input_shape`` (C, H, W), batch 1.

    ``forward`` (optional) is a module wrapping the model (e.g. a detector's backbone + neck);
    :func:`model_complexity` picks the paper's forward pass for downstream models.
    """
    module = forward if forward is not None else model
    inputs = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _analyze(module, inputs).total()
    finally:
        model.train(was_training)


def _random_boxes(num, height, width, device):
    """``num`` valid (x1, y1, x2, y2) boxes inside the image, the same every call. (mmdet 2.x
    used ``torch.randn(num, 4)``, which mmcv's CPU RoIAlign rejects as negative-sized; the
    boxes do not change the count.)"""
    g = torch.Generator().manual_seed(0)
    u = torch.rand(num, 4, generator=g)
    x1, y1 = u[:, 0] * width / 2, u[:, 1] * height / 2
    x2, y2 = x1 + 8 + u[:, 2] * width / 2, y1 + 8 + u[:, 3] * height / 2
    return torch.stack([x1, y1, x2, y2], dim=1).to(device)


def _roi_head_dummy(roi_head, feats, image_size, num_proposals, num_mask_rois):
    """mmdet 2.x's ``roi_head.forward_dummy``: every stage's box head on ``num_proposals``
    boxes, every mask head on the first ``num_mask_rois`` of them."""
    proposals = _random_boxes(num_proposals, *image_size, feats[0].device)
    rois = torch.cat([proposals.new_zeros(num_proposals, 1), proposals], dim=1)
    stages = [(s, ) for s in range(roi_head.num_stages)] if hasattr(roi_head, 'num_stages') \
        else [()]
    for name in ('_bbox_forward', '_mask_forward'):
        if not hasattr(roi_head, name):
            raise TypeError(f'{type(roi_head).__name__} has no {name}(); counting the RoI head '
                            'of this detector is not supported (mmdet 3.x Standard/Cascade '
                            'RoI heads are)')
    outs = []
    if roi_head.with_bbox:
        for stage in stages:
            result = roi_head._bbox_forward(*stage, feats, rois)
            outs += [result['cls_score'], result['bbox_pred']]
    if roi_head.with_mask:
        for stage in stages:
            outs.append(roi_head._mask_forward(*stage, feats, rois[:num_mask_rois])['mask_preds'])
    return tuple(outs)


def _forward_fn(model, num_proposals, num_mask_rois):
    """The paper's counted forward pass for ``model`` and a description of it."""
    if hasattr(model, 'decode_head') and hasattr(model, 'extract_feat'):  # mmseg segmentor
        return (lambda m, x: m.decode_head(m.extract_feat(x)),
                'backbone + decode head (mmseg forward_dummy; no auxiliary head)')
    if hasattr(model, 'rpn_head') and hasattr(model, 'roi_head'):  # mmdet two-stage

        def two_stage(m, x):
            feats = m.extract_feat(x)
            return m.rpn_head(feats), _roi_head_dummy(m.roi_head, feats, x.shape[2:],
                                                      num_proposals, num_mask_rois)

        return (two_stage, f'backbone + neck + RPN + RoI heads on {num_proposals} proposals '
                f'(masks on {num_mask_rois}) (mmdet forward_dummy)')
    if hasattr(model, 'bbox_head') and hasattr(model, 'extract_feat'):  # mmdet single-stage
        return (lambda m, x: m.bbox_head(m.extract_feat(x)),
                'backbone + neck + head (mmdet forward_dummy)')
    if hasattr(model, 'head') and hasattr(model, 'extract_feat'):  # mmpretrain classifier
        return (lambda m, x: m(x, mode='tensor'), 'classifier (backbone + neck + head)')
    return (lambda m, x: m(x), f'{type(model).__name__} forward')


def model_complexity(model, input_shape, num_proposals=DUMMY_PROPOSALS,
                     num_mask_rois=DUMMY_MASK_ROIS, logger=None):
    """Params and FLOPs of ``model`` on one ``input_shape`` (H, W) image, the paper's way.

    Works for mmseg segmentors, mmdet detectors, mmpretrain classifiers and plain modules
    (a backbone). The model is counted in eval mode; it is left in the mode it came in.
    ``logger`` (optional, a callable taking a string) reports progress.
    """
    if len(input_shape) != 2 or min(input_shape) < 1:
        raise ValueError(f'input_shape must be (H, W) with positive sizes, got {input_shape!r}')
    fn, counted = _forward_fn(model, num_proposals, num_mask_rois)
    h, w = (int(s) for s in input_shape)
    if logger is not None:
        logger(f'counting {type(model).__name__} at {h}x{w} (H x W): one traced forward pass '
               f'of {counted}')
    start = time.perf_counter()
    inputs = torch.zeros(1, 3, h, w, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analyzer = _analyze(_Forward(model, fn), inputs)
            flops = analyzer.total()
            by_operator = dict(analyzer.by_operator())
    finally:
        model.train(was_training)
    return Complexity(params=count_params(model), flops=flops, input_shape=(h, w),
                      counted=counted, seconds=time.perf_counter() - start,
                      by_operator=by_operator)


def _test_scale(cfg):
    found = eval_resize_scale(cfg)
    return found[0] if found else None


def _crop_size(cfg):
    size = cfg.get('crop_size') or cfg.model.get('data_preprocessor', {}).get('size')
    if size is None:
        return None
    return (size, size) if isinstance(size, int) else tuple(size)


def paper_input_shape(cfg):
    """The input size (H, W) the paper quotes FLOPs at, for a downstream or classification
    config (an mmengine ``Config``).

    * mmseg: the test scale (long, short) enlarged so that its short side is at least the
      training crop: 512-crop ADE20K -> 512x2048, 640-crop -> 640x2560 (Swin's convention,
      which the README follows); Cityscapes (test scale 2049x1025) -> 1024x2048. Sizes are
      rounded down to a multiple of the network stride (32).
    * mmdet: 800x1280.
    * mmpretrain: the test crop (e.g. 224x224).
    """
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        return DETECTION_INPUT
    if scope == 'mmseg':
        scale, crop = _test_scale(cfg), _crop_size(cfg)
        if scale is None:
            raise ValueError('cannot infer the FLOPs input size: the config has no test '
                             "pipeline `Resize(scale=...)`; pass the shape (--shape H W)")
        long, short = max(scale), min(scale)
        factor = max(1.0, min(crop) / short) if crop else 1.0
        h = int(short * factor) // NETWORK_STRIDE * NETWORK_STRIDE
        w = int(long * factor) // NETWORK_STRIDE * NETWORK_STRIDE
        return (h, w)
    if scope == 'mmpretrain':
        size = eval_crop_size(cfg)
        if size is None:
            raise ValueError('cannot infer the FLOPs input size: the config has no test '
                             'pipeline crop or resize; pass the shape (--shape H W)')
        return tuple(int(s) for s in size)
    raise ValueError(f"cannot infer the FLOPs input size for default_scope {scope!r} "
                     "(expected 'mmseg', 'mmdet' or 'mmpretrain'); pass the shape")

