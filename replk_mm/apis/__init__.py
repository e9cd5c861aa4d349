from .inference import (
    draw_detection,
    draw_segmentation,
    inference_detector,
    inference_segmentor,
    init_detector,
    init_segmentor,
    read_image,
)
from .runner import (
                     adapt_to_device,
                     close_distributed,
                     exit_if_distributed,
                     load_config,
                     test_runner,
                     train_runner,
)

__all__ = ['adapt_to_device', 'close_distributed', 'exit_if_distributed', 'load_config',
           'test_runner', 'train_runner']
# inference (apis/inference.py)
__all__ += ['draw_detection', 'draw_segmentation', 'inference_detector', 'inference_segmentor',
            'init_detector', 'init_segmentor', 'read_image', 'RepLKDetInferencer',
            'RepLKSegInferencer']


def __getattr__(name):
    # mmseg's / mmdet's inferencer subclasses: made on first use (see apis/inference.py).
    if name in ('RepLKSegInferencer', 'RepLKDetInferencer'):
        from . import inference
        return getattr(inference, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
