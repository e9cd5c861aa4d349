"""The segmentation inference names of earlier releases, kept for compatibility.

New code: :mod:`replk_mm.apis.inference` (``init_segmentor``, ``inference_segmentor``,
``draw_segmentation``, ``RepLKSegInferencer``), all exported from ``replk_mm.apis``.
"""
from .inference import draw_segmentation, inference_segmentor, init_segmentor, read_image

__all__ = ['init_segmentor', 'predict', 'read_image', 'save_overlay']


def predict(model, image):
    """(H, W) int64 class map for a BGR uint8 image (ndarray) or an image path."""
    return inference_segmentor(model, image).pred_sem_seg.data[0].cpu().numpy()


def save_overlay(model, image_path, out_file, opacity=0.5, legend=True, min_size=0):
    """Segment ``image_path``, draw the class colours (and names, with ``legend``) over it with
    mmseg's SegLocalVisualizer into ``out_file``, enlarged to a short side of at least
    ``min_size``; returns the (H, W) class map."""
    result = inference_segmentor(model, image_path)
    draw_segmentation(model, image_path, result, out_file=out_file, opacity=opacity,
                      with_labels=legend, min_size=min_size)
    return result.pred_sem_seg.data[0].cpu().numpy()
