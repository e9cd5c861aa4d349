"""From a config and a checkpoint to the re-parameterized network that deployment runs.

Works for any mmseg segmentor, mmdet detector or mmpretrain classifier config (``pkg::`` names
of the packages' own configs included) whose model contains RepLKNet blocks, the large-kernel
ConvNeXt, or no re-parameterizable module at all (then nothing is merged).

The exported network takes the *pre-processed* batch (what the config's data pre-processor
produces: channels in the model's order, normalized, N x 3 x H x W float) and returns:

* segmentors: the whole-image logits at the input size (``encode_decode``, N x classes x H x W);
* detectors: the backbone + neck features (one output per level), or, for single-stage
  detectors, the raw outputs of the dense head (decoding and NMS stay in mmdet);
* classifiers: the logits (N x classes).
"""
import os.path as osp
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn as nn

TASKS = {'mmseg': 'segmentation', 'mmdet': 'detection', 'mmpretrain': 'classification'}
DET_OUTPUTS = ('neck', 'head')
MIN_SIDE = 32  # every supported backbone downsamples by 32


@dataclass
class Preprocess:
    """What the exported graph expects of its input (from the config's data pre-processor).

    ``rgb``: channels in RGB order (else BGR, the order mmcv reads images in).
    """
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    rgb: bool

    @property
    def channel_order(self):
        return 'RGB' if self.rgb else 'BGR'


@dataclass
class DeployModel:
    """A built model and what deployment needs to know about it.

    Attributes:
        model: the full mmseg / mmdet / mmpretrain model, in eval mode.
        graph: the module that is exported (see the module docstring for its outputs).
        task: 'segmentation', 'detection' or 'classification'.
        scope: the config's default scope.
        input_shape: (H, W) the config tests at (or the one given).
        preprocess: normalization and channel order of the graph's input.
    """
    model: nn.Module
    graph: nn.Module
    task: str
    scope: str
    input_shape: Tuple[int, int]
    preprocess: Preprocess


def resolve_config(config):
    """A config path; ``pkg::path/in/configs.py`` names a config shipped with an installed
    OpenMMLab package (e.g. ``mmpretrain::swin_transformer/swin-base_16xb64_in1k.py``)."""
    config = str(config)
    if '::' not in config:
        return config
    package, relative = config.split('::', 1)
    from mmengine.utils import get_installed_path, is_installed
    if not is_installed(package):
        raise FileNotFoundError(f'{config}: package {package!r} is not installed')
    path = osp.join(get_installed_path(package), '.mim', 'configs', relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{config}: no config {relative} in {package} '
                                f'(looked for {path})')
    return path


def load_deploy_config(config, cfg_options=None):
    """Parse ``config`` (a path or ``pkg::`` name) with replk_mm's config checks."""
    from ..apis.runner import load_config
    return load_config(resolve_config(config), cfg_options)


def load_checkpoint_strict(model, checkpoint):
    """Load a whole-model checkpoint through replk_mm's loader (weights-only reading, every
    key must fit)."""
    from ..models.checkpoint import load_checkpoint
    return load_checkpoint(
        model, checkpoint, strict=True, source=checkpoint,
        partial_hint='The checkpoint must be one trained with this config (a whole-model '
                     'checkpoint, training or deploy form as the config builds it).')


def preprocess_of(cfg):
    """The :class:`Preprocess` of the config's data pre-processor."""
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    mean, std = pre.get('mean'), pre.get('std')
    if mean is None or std is None:
        raise ValueError('the config has no data_preprocessor mean/std: the exported graph '
                         'takes normalized input, so they must be known')
    rgb = bool(pre.get('bgr_to_rgb', pre.get('to_rgb', False)))
    return Preprocess(tuple(float(m) for m in mean), tuple(float(s) for s in std), rgb)


def _pair(value):
    if isinstance(value, int):
        return value, value
    return tuple(value)


def default_input_shape(cfg, task):
    """(H, W) the config tests at: a classifier's crop, a segmentor's crop size, a detector's
    test scale padded to its size divisor. None when the config does not say."""
    from ..apis.builder import eval_crop_size, eval_pipeline, eval_resize_scale
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    if task == 'segmentation' and pre.get('size'):
        return _pair(pre['size'])
    if task == 'classification':
        size = eval_crop_size(cfg)
        if size is not None:
            return size
    found = eval_resize_scale(cfg)
    if found is not None:
        (w, h), keep_ratio = found  # mmcv scales are (w, h)
        if keep_ratio:  # the long side bounds both
            h, w = min(h, w), max(h, w)
        divisor = pre.get('pad_size_divisor') or pre.get('size_divisor') or 1
        return -(-h // divisor) * divisor, -(-w // divisor) * divisor
    for step in eval_pipeline(cfg):
        if step.get('type') == 'ResizeEdge' and step.get('scale'):
            return step['scale'], step['scale']
    return None


def check_input_shape(shape):
    """``shape`` as an (H, W) pair of ints >= 32, or a ValueError naming the problem."""
    try:
        h, w = shape
        valid = all(isinstance(s, int) and not isinstance(s, bool) for s in (h, w))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f'input shape must be two ints H W, got {shape!r}')
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f'input shape {h}x{w}: both sides must be at least {MIN_SIDE} '
                         '(the backbones downsample by 32)')
    return h, w


class SegmentorLogits(nn.Module):
    """Whole-image segmentation logits at the input size (mmseg's ``encode_decode``)."""

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, inputs):
        # torch.Size img_shape: mmseg resizes to it as given (no padding crop), so the size
        # stays symbolic under dynamic-shape export.
        metas = [dict(img_shape=inputs.shape[2:])]
        return self.segmentor.encode_decode(inputs, metas)


class DetectorFeatures(nn.Module):
    """A detector's backbone + neck features, one tensor per level."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, inputs):
        return tuple(self.detector.extract_feat(inputs))


class DetectorHeadOutputs(nn.Module):
    """A single-stage detector's raw dense-head outputs, flattened to one tensor each
    (output ``k * levels + l`` is the head's k-th output at level l)."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, inputs):
        outputs = self.detector.bbox_head(self.detector.extract_feat(inputs))
        return tuple(t for per_level in outputs for t in per_level)


class ClassifierLogits(nn.Module):
    """A classifier's logits (mmpretrain's ``mode='tensor'``)."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, inputs):
        return self.classifier(inputs, mode='tensor')


def graph_module(model, task, det_output='neck'):
    """The :mod:`torch.nn` module that deployment exports for ``model`` (see module doc)."""
    if task == 'segmentation':
        return SegmentorLogits(model)
    if task == 'classification':
        return ClassifierLogits(model)
    if det_output not in DET_OUTPUTS:
        raise ValueError(f'det_output must be one of {DET_OUTPUTS}, got {det_output!r}')
    if det_output == 'neck':
        return DetectorFeatures(model)
    from mmdet.models.detectors import SingleStageDetector
    if not isinstance(model, SingleStageDetector):
        raise ValueError(
            f'{type(model).__name__} is not a single-stage detector: its head needs RPN '
            'proposals, NMS and RoI ops (mmcv custom ops, data-dependent shapes) that plain '
            "ONNX cannot express; export det_output='neck' (backbone + neck) and run the "
            'heads in PyTorch')
    return DetectorHeadOutputs(model)


def output_names(graph, outputs):
    """One name per output of ``graph`` (``outputs``: what it returned)."""
    outputs = as_outputs(outputs)
    if isinstance(graph, (ClassifierLogits, SegmentorLogits)):
        return ['logits'] if len(outputs) == 1 else [f'logits{i}' for i in range(len(outputs))]
    if isinstance(graph, DetectorHeadOutputs):
        strides = getattr(getattr(graph.detector.bbox_head, 'prior_generator', None),
                          'strides', None)
        levels = len(strides) if strides else 0
        if levels and len(outputs) % levels == 0:
            return [f'head{i // levels}_level{i % levels}' for i in range(len(outputs))]
        return [f'head_out{i}' for i in range(len(outputs))]
    return [f'feat{i}' for i in range(len(outputs))]


def load_deploy_model(config, checkpoint=None, shape=None, det_output='neck',
                      cfg_options=None, reparam=True):
    """Build ``config``, load ``checkpoint`` strictly (if given) and re-parameterize.

    Args:
        config (str): Config path or ``pkg::`` name (mmseg, mmdet or mmpretrain scope).
        checkpoint (str, optional): Whole-model checkpoint of that config; None keeps the
            initial weights (speed measurements).
        shape (tuple[int, int], optional): (H, W); default: the config's test size.
        det_output (str): 'neck' or 'head' (single-stage detectors), for detectors.
        cfg_options (dict, optional): Config overrides.
        reparam (bool): Merge the re-parameterizable modules (the deploy form).

    Returns:
        DeployModel
    """
    cfg = load_deploy_config(config, cfg_options)
    task = TASKS[cfg.default_scope]
    if shape is None:
        shape = default_input_shape(cfg, task)
        if shape is None:
            raise ValueError(f'{config}: cannot tell the input size from the config (no crop '
                             'size or test Resize scale); pass the shape (--shape H W)')
    shape = check_input_shape(tuple(shape))
    from ..apis.builder import build_model, reparameterize
    model = build_model(cfg)
    if checkpoint is not None:
        load_checkpoint_strict(model, checkpoint)
    if reparam:
        reparameterize(model)
    graph = graph_module(model, task, det_output).eval()
    return DeployModel(model=model, graph=graph, task=task, scope=cfg.default_scope,
                       input_shape=shape, preprocess=preprocess_of(cfg))


def image_to_input(image, shape, preprocess):
    """Read ``image`` (a path), resize it to ``shape`` (H, W) and normalize it the way the
    graph expects: a 1 x 3 x H x W float tensor."""
    import mmcv
    if not osp.isfile(image):
        raise FileNotFoundError(f'image {image} does not exist')
    array = mmcv.imread(image)  # BGR
    if array is None:
        raise ValueError(f'cannot read {image} as an image')
    h, w = shape
    array = mmcv.imresize(array, (w, h))
    if preprocess.rgb:
        array = array[:, :, ::-1]
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float()
    mean = torch.tensor(preprocess.mean).view(3, 1, 1)
    std = torch.tensor(preprocess.std).view(3, 1, 1)
    return ((tensor - mean) / std).unsqueeze(0)


def random_input(shape, batch=1, seed=0):
    """A reproducible standard-normal batch (N x 3 x H x W): already-normalized statistics."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *shape, generator=generator)


def as_outputs(out) -> Tuple[torch.Tensor, ...]:
    """A graph's output as a tuple of tensors."""
    return (out, ) if isinstance(out, torch.Tensor) else tuple(out)


__all__ = ['TASKS', 'DET_OUTPUTS', 'Preprocess', 'DeployModel', 'resolve_config',
           'load_deploy_config', 'load_checkpoint_strict', 'preprocess_of',
           'default_input_shape', 'check_input_shape', 'graph_module', 'load_deploy_model',
           'output_names', 'image_to_input', 'random_input', 'as_outputs', 'SegmentorLogits',
           'DetectorFeatures', 'DetectorHeadOutputs', 'ClassifierLogits']
