"""Deprecated: the detection inference names earlier docs showed (``init_detector``,
``predict``, ``draw_predictions``), as thin wrappers over :mod:`replk_mm.apis.inference`.
The demo itself is ``tools/demo/det_demo.py``."""
import os.path as osp
import warnings

from ..apis.inference import draw_detection, inference_detector
from ..apis.inference import init_detector as _init_detector

warnings.warn('replk_mm.demo.det_demo is deprecated: use replk_mm.apis (init_detector, '
              'inference_detector, draw_detection)', DeprecationWarning, stacklevel=2)

__all__ = ['draw_predictions', 'init_detector', 'predict']


def init_detector(config, checkpoint, cfg_options=None, device='cpu'):
    return _init_detector(config, checkpoint, device=device, cfg_options=cfg_options)


def predict(model, cfg, image_paths):
    """DetDataSamples for image files (``cfg`` is unused: the model carries its config)."""
    return inference_detector(model, list(image_paths))


def draw_predictions(image_paths, results, classes=None, out_dir=None, score_thr=0.3, scale=1,
                     out_files=None, model=None):
    """Draw each image's predictions into ``out_files`` or ``out_dir/<name>_pred.png``."""
    if out_files is None:
        if out_dir is None:
            raise ValueError('give out_dir or out_files')
        out_files = [osp.join(out_dir, osp.splitext(osp.basename(p))[0] + '_pred.png')
                     for p in image_paths]
    if not len(out_files) == len(image_paths) == len(results):
        raise ValueError(f'{len(image_paths)} images, {len(results)} results and '
                         f'{len(out_files)} output files: they must match')
    meta = _Meta(classes) if model is None else model
    for path, result, out_file in zip(image_paths, results, out_files):
        draw_detection(meta, path, result, out_file=out_file, score_thr=score_thr, scale=scale)
    return list(out_files)


class _Meta:
    """What draw_detection reads from a model: its dataset_meta."""

    def __init__(self, classes):
        self.dataset_meta = dict(classes=tuple(classes), palette=None)
