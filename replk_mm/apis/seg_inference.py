"""Single-image semantic segmentation with a replk_mm config, and prediction overlays.

Thin layer over ``mmseg.apis``: it also runs GPU configs on a CPU (SyncBN -> BN), accepts
re-parameterized (deploy-form) checkpoints without a separate config, loads weights strictly
(a checkpoint that does not fit the config is an error, not a silent random init), and takes
class names and colours from the config's dataset when the checkpoint does not carry them.
"""
import os
import os.path as osp

import numpy as np
import torch
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint_to_model

from .runner import _replace_sync_bn, load_config


def _is_deploy_form(state_dict):
    return any('lkb_reparam' in k for k in state_dict)


def _dataset_meta_from_config(cfg):
    """classes/palette of the config's test set (lazy: no file is read)."""
    from mmseg.registry import DATASETS
    dataset_cfg = dict(cfg.test_dataloader.dataset, lazy_init=True)
    return dict(DATASETS.build(dataset_cfg).metainfo)


def init_segmentor(config, checkpoint=None, device=None, cfg_options=None):
    """Build the segmentor of an mmseg config and load ``checkpoint`` (strictly).

    A deploy-form checkpoint (``lkb_reparam`` keys, see ``replk_mm.switch_to_deploy``) makes
    the backbone build with ``small_kernel_merged=True``.
    """
    from mmseg.apis import init_model

    cfg = load_config(config, cfg_options)
    if cfg.default_scope != 'mmseg':
        raise ValueError(f"{config} is a {cfg.default_scope} config; segmentation inference "
                         "needs an mmseg config (default_scope='mmseg')")
    if device is None:
        device = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    if not str(device).startswith('cuda'):
        _replace_sync_bn(cfg.model)
    ckpt = None
    if checkpoint is not None:
        if not (str(checkpoint).startswith(('http://', 'https://')) or osp.isfile(checkpoint)):
            raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
        ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        state_dict = ckpt.get('state_dict', ckpt)
        if _is_deploy_form(state_dict):
            cfg.model.backbone.small_kernel_merged = True
    model = init_model(cfg, None, device='cpu')
    if ckpt is not None:
        try:
            _load_checkpoint_to_model(model, ckpt, strict=True)
        except RuntimeError as exc:
            raise RuntimeError(f'checkpoint {checkpoint} does not fit {config}: {exc}') from exc
    meta = (ckpt or {}).get('meta', {}).get('dataset_meta')
    model.dataset_meta = meta or _dataset_meta_from_config(cfg)
    return model.to(device).eval()


def read_image(path):
    """BGR uint8 image; errors name the file."""
    import mmcv
    if not osp.isfile(path):
        raise FileNotFoundError(f'image {path} does not exist')
    image = mmcv.imread(path)
    if image is None:
        raise ValueError(f'could not decode image {path} (corrupt or not an image)')
    return image


def predict(model, image):
    """(H, W) int64 class map for a BGR uint8 image (ndarray) or an image path."""
    from mmseg.apis import inference_model
    if isinstance(image, (str, os.PathLike)):
        image = read_image(str(image))
    result = inference_model(model, image)
    return result.pred_sem_seg.data[0].cpu().numpy()


def overlay(image, pred, palette, opacity=0.5, classes=None):
    """Blend the class colours of ``pred`` over a BGR image (returns BGR uint8).

    With ``classes``, a legend strip naming the predicted classes is added underneath.
    """
    import cv2
    if not 0 < opacity <= 1:
        raise ValueError(f'opacity must be in (0, 1], got {opacity}')
    if pred.shape != image.shape[:2]:
        raise ValueError(f'prediction {pred.shape} and image {image.shape[:2]} differ in size')
    palette = np.asarray(palette, dtype=np.float32)[:, ::-1]  # RGB palette -> BGR
    valid = (pred >= 0) & (pred < len(palette))
    out = image.astype(np.float32)
    out[valid] = (1 - opacity) * out[valid] + opacity * palette[pred[valid]]
    out = out.clip(0, 255).astype(np.uint8)
    if classes is None:
        return out
    present = [int(c) for c in np.unique(pred[valid])]
    row_h = 14
    legend = np.full((row_h * max(len(present), 1) + 4, out.shape[1], 3), 255, np.uint8)
    for row, cls in enumerate(present):
        y = 2 + row * row_h
        cv2.rectangle(legend, (2, y), (12, y + row_h - 4), palette[cls].tolist(), -1)
        cv2.putText(legend, str(classes[cls]).strip(), (16, y + row_h - 4),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([out, legend], axis=0)


def save_overlay(model, image_path, out_file, opacity=0.5, legend=True, min_size=0):
    """Segment ``image_path`` and write the coloured prediction over it to ``out_file``.

    Images whose short side is under ``min_size`` are drawn enlarged (integer factor), so a
    small image still gets a readable picture; the prediction is made at the original size.
    """
    import mmcv
    image = read_image(image_path)
    pred = predict(model, image)
    short = min(image.shape[:2])
    if short < min_size:
        factor = -(-min_size // short)
        image = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
        pred_drawn = np.repeat(np.repeat(pred, factor, axis=0), factor, axis=1)
    else:
        pred_drawn = pred
    meta = model.dataset_meta
    drawn = overlay(image, pred_drawn, meta['palette'], opacity,
                    classes=meta['classes'] if legend else None)
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    if not mmcv.imwrite(drawn, out_file):
        raise OSError(f'could not write {out_file}')
    return pred
