"""Segmentation and detection inference, on mmseg's and mmdet's own APIs.

Running a model and drawing its predictions is mmseg's and mmdet's job, and they do it here:
``mmseg.apis.inference_model`` and ``mmdet.apis.inference_detector`` run the config's test
pipeline and the model, ``SegLocalVisualizer`` and ``DetLocalVisualizer`` draw the results, and
:class:`RepLKSegInferencer` / :class:`RepLKDetInferencer` are ``MMSegInferencer`` /
``DetInferencer`` (batches, folders, ``out_dir``, ``show``) with only their model loading
replaced. replk_mm adds exactly what those lack:

* **deploy-form checkpoints**: a checkpoint with ``lkb_reparam`` weights (written by
  ``switch_to_deploy`` or ``tools/deploy/reparameterize.py``) builds the RepLKNet backbone with
  ``small_kernel_merged=True``, so one config serves the training and the deploy form;
* **GPU configs on a CPU**: SyncBN layers are built as BN when the device is not CUDA;
* **class names that fit the checkpoint**: from its meta (``dataset_meta``, or mmseg 0.x /
  mmdet 2.x ``CLASSES``), else from the config's test set; never the silent fallbacks (mmseg's
  Cityscapes names, mmdet's 80 COCO names) that mislabel a converted or re-parameterized
  checkpoint without meta;
* **strict, safe loading**: the checkpoint is read with weights-only unpickling
  (:func:`replk_mm.engine.read_checkpoint`) and must fit the model exactly; a checkpoint that
  does not is an error naming the keys, not a warning over a partly random model;
* **readable pictures of small images**: ``scale`` / ``min_size`` draw them enlarged.
"""
import copy
import math
import os
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope, init_default_scope

from ..engine import read_checkpoint
from ..models.backbones.unireplknet import DEPLOY_KEY as UNIREPLKNET_DEPLOY_KEY
from ..models.checkpoint import load_model_state_dict, unwrap_state_dict
from .deploy import mark_deploy_form
from .runner import load_config

# (and RepLKSegInferencer, RepLKDetInferencer, made on first use: see __getattr__ below)
__all__ = ['init_segmentor', 'init_detector', 'inference_segmentor', 'inference_detector',
           'draw_segmentation', 'draw_detection', 'read_image', 'is_deploy_form']

_SCOPE_TASK = {'mmseg': 'segmentation', 'mmdet': 'detection'}


# ------------------------------------------------------------------------------- models
def is_deploy_form(state_dict):
    """Whether a state dict holds re-parameterized replk_mm blocks (``lkb_reparam`` keys, or
    UniRepLKNet blocks in their deploy form)."""
    return any('lkb_reparam' in key or UNIREPLKNET_DEPLOY_KEY.search(key) for key in state_dict)


def _config(config, cfg_options, scope):
    """A copy of ``config`` (path or Config) with ``cfg_options`` merged, checked for scope."""
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        name = config.filename or 'the config'
    else:
        cfg = load_config(os.fspath(config), cfg_options)
        name = config
    if cfg.get('default_scope') != scope:
        raise ValueError(f"{name} is a {cfg.get('default_scope')} config; "
                         f"{_SCOPE_TASK[scope]} inference needs an {scope} config "
                         f"(default_scope='{scope}')")
    return cfg, name


def _mark_deploy_form(cfg, checkpoint, config_name):
    if not mark_deploy_form(cfg.model):
        raise ValueError(f'checkpoint {checkpoint} holds re-parameterized weights '
                         f'(lkb_reparam), but {config_name} has no replk_mm backbone with a '
                         'deploy form')


def _class_meta(ckpt, cfg, scope, checkpoint, config_name):
    """classes and palette: the checkpoint's meta first, else the config's test set."""
    meta = (ckpt or {}).get('meta') or {}
    dataset_meta = {k.lower(): v for k, v in (meta.get('dataset_meta') or {}).items()}
    if dataset_meta.get('classes'):
        classes, palette = dataset_meta['classes'], dataset_meta.get('palette')
    elif meta.get('CLASSES'):  # mmseg 0.x / mmdet 2.x checkpoints
        classes, palette = meta['CLASSES'], meta.get('PALETTE')
    else:
        classes = palette = None
    if not classes or not palette:
        registry = __import__(f'{scope}.registry', fromlist=['DATASETS']).DATASETS
        dataset_cfg = cfg.get('test_dataloader', {}).get('dataset')
        if dataset_cfg is None and not classes:
            raise ValueError(f'neither checkpoint {checkpoint} (meta.dataset_meta) nor '
                             f'{config_name} (test_dataloader.dataset) names the classes')
        metainfo = {}
        if dataset_cfg is not None:
            # lazy_init: only the metainfo is needed, no annotation file is read
            with DefaultScope.overwrite_default_scope(scope):
                metainfo = registry.build(dict(dataset_cfg, lazy_init=True)).metainfo
        if not classes:
            classes = metainfo['classes']
            palette = metainfo.get('palette')
        elif tuple(metainfo.get('classes', ())) == tuple(classes):
            palette = metainfo.get('palette')
    if not palette or isinstance(palette, str) or len(palette) < len(classes):
        # as mmseg's datasets colour classes they have no palette for: seeded random colours
        palette = np.random.RandomState(42).randint(0, 255, size=(len(classes), 3)).tolist()
    return dict(classes=tuple(classes),
                palette=[tuple(int(c) for c in colour) for colour in palette[:len(classes)]])


def _init_model(config, checkpoint, device, cfg_options, scope):
    cfg, config_name = _config(config, cfg_options, scope)
    if device is None:
        device = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    ckpt = None
    if checkpoint is not None:
        # weights-only; a missing file, a non-checkpoint or one that could run code is named
        ckpt = read_checkpoint(os.fspath(checkpoint), map_location='cpu')
        state_dict = ckpt.get('state_dict', ckpt)
        if is_deploy_form(state_dict):
            _mark_deploy_form(cfg, checkpoint, config_name)
        backbone = cfg.model.get('backbone')
        if backbone is not None and 'init_cfg' in backbone:
            backbone.init_cfg = None  # the checkpoint has the weights: no pre-trained download
    cfg.model.pop('pretrained', None)
    init_default_scope(scope)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    if not str(device).startswith('cuda'):
        model = revert_sync_batchnorm(model)  # SyncBN needs CUDA
    if ckpt is not None:
        # strict: every missing, unexpected or mis-shaped key is named, with the likely cause
        load_model_state_dict(model, unwrap_state_dict(ckpt),
                              source=f'checkpoint {checkpoint} on {config_name}')
    else:
        print_log(f'no checkpoint given: the {_SCOPE_TASK[scope]} model of {config_name} '
                  'has random weights', logger='current', level=30)
    model.dataset_meta = _class_meta(ckpt, cfg, scope, checkpoint, config_name)
    model.cfg = cfg
    return model.to(device).eval()


def init_segmentor(config, checkpoint=None, device=None, cfg_options=None):
    """An mmseg segmentor in eval mode, with ``model.cfg`` and ``model.dataset_meta``
    (``classes``, ``palette``), for :func:`inference_segmentor` (``mmseg.apis.inference_model``).

    Like ``mmseg.apis.init_model`` plus what this module adds (see the module docstring):
    deploy-form checkpoints, SyncBN -> BN off CUDA, class names from the checkpoint's meta or
    the config's test set, strict weights-only loading.

    Args:
        config (str | Config): an mmseg config (``default_scope='mmseg'``).
        checkpoint (str, optional): training- or deploy-form checkpoint (path or URL). None:
            random weights (with a warning).
        device (str, optional): 'cpu', 'cuda:0', ...; default CUDA if available.
        cfg_options (dict, optional): config overrides, as ``--cfg-options``.
    """
    return _init_model(config, checkpoint, device, cfg_options, 'mmseg')


def init_detector(config, checkpoint=None, device=None, cfg_options=None):
    """An mmdet detector in eval mode, with ``model.cfg`` and ``model.dataset_meta``
    (``classes``, ``palette``), for :func:`inference_detector` (mmdet's ``inference_detector``).

    Like ``mmdet.apis.init_detector`` plus what this module adds (see the module docstring):
    deploy-form checkpoints, SyncBN -> BN off CUDA, class names from the checkpoint's meta or
    the config's test set (not mmdet's 80 COCO names), strict weights-only loading.

    Args: as :func:`init_segmentor`, with an mmdet config (``default_scope='mmdet'``).
    """
    return _init_model(config, checkpoint, device, cfg_options, 'mmdet')


# --------------------------------------------------------------------------- inference
def read_image(path):
    """A BGR uint8 image; errors name the file."""
    import mmcv
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path} does not exist')
    image = mmcv.imread(path)
    if image is None:
        raise ValueError(f'could not decode image {path} (corrupt or not an image)')
    return image


def _checked_images(images):
    for image in images if isinstance(images, (list, tuple)) else [images]:
        if isinstance(image, (str, os.PathLike)):
            read_image(image)  # a missing or broken file is named before the pipeline runs
        elif not isinstance(image, np.ndarray):
            raise TypeError(f'expected an image path or a BGR ndarray, got {type(image)}')


def _as_paths(images):
    if isinstance(images, (list, tuple)):
        return [os.fspath(i) if isinstance(i, os.PathLike) else i for i in images]
    return os.fspath(images) if isinstance(images, os.PathLike) else images


def _run_per_image(library_call, model, images):
    """Run ``library_call(model, image)`` for one image or each of a list.

    One image per call, on a copy of ``model.cfg``: mmseg's ``inference_model`` and mmdet's
    ``inference_detector`` edit the pipeline in ``model.cfg`` for ndarray inputs (so a later
    call with a path would fail) and expect one input type per list.
    """
    _checked_images(images)
    batch = isinstance(images, (list, tuple))
    results = []
    for image in _as_paths(images) if batch else [_as_paths(images)]:
        cfg = model.cfg
        model.cfg = copy.deepcopy(cfg)
        try:
            results.append(library_call(model, image))
        finally:
            model.cfg = cfg
    return results if batch else results[0]


def inference_segmentor(model, images):
    """``mmseg.apis.inference_model``: a SegDataSample (``pred_sem_seg``, ``seg_logits``) for
    one image (path or BGR ndarray), a list for a list."""
    from mmseg.apis import inference_model
    with DefaultScope.overwrite_default_scope('mmseg'):
        return _run_per_image(inference_model, model, images)


def inference_detector(model, images):
    """mmdet's ``inference_detector``: a DetDataSample (``pred_instances``: bboxes, scores,
    labels, masks) for one image (path or BGR ndarray), a list for a list."""
    from mmdet.apis import inference_detector as mmdet_inference
    with DefaultScope.overwrite_default_scope('mmdet'):
        return _run_per_image(mmdet_inference, model, images)


# ----------------------------------------------------------------------------- drawing
def enlargement(shape, scale=1, min_size=0):
    """The integer factor that draws an image of ``shape`` at least ``scale`` times larger
    and with a short side of at least ``min_size``."""
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f'scale must be a positive int, got {scale!r}')
    if min_size < 0:
        raise ValueError(f'min_size must be >= 0, got {min_size!r}')
    return max(scale, math.ceil(min_size / min(shape[:2])))


def _rgb(image):
    import mmcv
    if isinstance(image, (str, os.PathLike)):
        return mmcv.bgr2rgb(read_image(image))
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise TypeError(f'expected an image path or a BGR (H, W, 3) ndarray, got {type(image)}')
    return mmcv.bgr2rgb(image)


def _enlarge(image, factor):
    import mmcv
    return mmcv.imrescale(image, factor) if factor > 1 else image


def _enlarge_masks(masks, factor):
    """(N, H, W) or (1, H, W) masks/label maps, nearest neighbour."""
    return masks.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def _save(drawn, out_file):
    import mmcv
    if out_file is not None:
        os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
        if not mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file):
            raise OSError(f'could not write {out_file}')
    return drawn


def draw_segmentation(model, image, result, out_file=None, opacity=0.5, with_labels=True,
                      scale=1, min_size=0):
    """Draw ``result`` (a SegDataSample) over ``image`` with mmseg's ``SegLocalVisualizer``.

    Args:
        image (str | ndarray): the image (path or BGR) the result was predicted for.
        out_file (str, optional): where to write the picture.
        opacity (float): of the class colours, in (0, 1].
        with_labels (bool): write the class names on the segments.
        scale, min_size (int): draw small images enlarged (by an integer factor of at least
            ``scale``, to a short side of at least ``min_size``) so labels stay readable.
    Returns:
        ndarray: the RGB picture.
    """
    from mmseg.structures import SegDataSample
    from mmseg.visualization import SegLocalVisualizer
    if not 0 < opacity <= 1:
        raise ValueError(f'opacity must be in (0, 1], got {opacity}')
    rgb = _rgb(image)
    pred = result.pred_sem_seg.data
    if tuple(pred.shape[-2:]) != rgb.shape[:2]:
        raise ValueError(f'prediction {tuple(pred.shape[-2:])} and image {rgb.shape[:2]} '
                         'differ in size')
    factor = enlargement(rgb.shape, scale, min_size)
    drawn_result = SegDataSample()
    drawn_result.set_data(dict(pred_sem_seg=type(result.pred_sem_seg)(
        data=_enlarge_masks(pred, factor))))
    visualizer = SegLocalVisualizer.get_instance('replk_mm_seg_drawer')
    visualizer.set_dataset_meta(classes=model.dataset_meta['classes'],
                                palette=model.dataset_meta['palette'])
    visualizer.alpha = opacity
    visualizer.add_datasample('prediction', _enlarge(rgb, factor), drawn_result,
                              draw_gt=False, with_labels=with_labels)
    return _save(visualizer.get_image(), out_file)


def draw_detection(model, image, result, out_file=None, score_thr=0.3, scale=1, min_size=0):
    """Draw ``result`` (a DetDataSample: boxes, class names, scores, masks) on ``image`` with
    mmdet's ``DetLocalVisualizer``.

    Args: as :func:`draw_segmentation`; ``score_thr``: draw predictions scoring at least this.
    Returns:
        ndarray: the RGB picture.
    """
    from mmdet.visualization import DetLocalVisualizer
    rgb = _rgb(image)
    factor = enlargement(rgb.shape, scale, min_size)
    drawn_result = result.clone()
    if factor > 1:
        pred = drawn_result.pred_instances
        pred.bboxes = pred.bboxes * factor
        if 'masks' in pred:
            pred.masks = _enlarge_masks(torch.as_tensor(pred.masks), factor)
    visualizer = DetLocalVisualizer.get_instance('replk_mm_det_drawer')
    visualizer.dataset_meta = dict(model.dataset_meta)
    visualizer.add_datasample('prediction', _enlarge(rgb, factor), drawn_result,
                              draw_gt=False, pred_score_thr=score_thr)
    return _save(visualizer.get_image(), out_file)


# ------------------------------------------------------------------------- inferencers
_SEG_DOC = """``mmseg.apis.MMSegInferencer`` whose model is built by :func:`init_segmentor`
(deploy-form checkpoints, SyncBN -> BN off CUDA, class names from the checkpoint or the
config, strict weights-only loading); batching, folders, ``out_dir`` and drawing are mmseg's::

    inferencer = RepLKSegInferencer(CONFIG, CHECKPOINT, device='cpu')
    inferencer(['a.jpg', 'b.jpg'], out_dir='vis')
"""
_DET_DOC = """``mmdet.apis.DetInferencer`` whose model is built by :func:`init_detector`
(deploy-form checkpoints, SyncBN -> BN off CUDA, class names from the checkpoint or the
config, strict weights-only loading); batching, folders and drawing are mmdet's::

    inferencer = RepLKDetInferencer(CONFIG, CHECKPOINT, device='cpu')
    inferencer('a.jpg', out_dir='vis', pred_score_thr=0.5)
"""


def _inferencer_class(name):
    """Subclass mmseg's / mmdet's inferencer, replacing only how the model is built."""
    if name == 'RepLKSegInferencer':
        from mmseg.apis import MMSegInferencer as base
        init, doc = init_segmentor, _SEG_DOC
    else:
        from mmdet.apis import DetInferencer as base
        init, doc = init_detector, _DET_DOC

    def _init_model(self, cfg, weights, device='cpu'):
        model = init(cfg, weights, device=device)
        if getattr(self, 'palette', 'none') != 'none':  # DetInferencer(palette=...) wins
            model.dataset_meta['palette'] = self.palette
        return model

    return type(name, (base, ), dict(_init_model=_init_model, __doc__=doc,
                                     __module__=__name__, __qualname__=name))


def __getattr__(name):
    # The inferencers subclass mmseg's and mmdet's, which are slow to import and each
    # optional: the classes are made when first used, not when replk_mm.apis is imported.
    if name in ('RepLKSegInferencer', 'RepLKDetInferencer'):
        globals()[name] = _inferencer_class(name)
        return globals()[name]
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
