from .lk_convnext import LKConvNeXt
from .lk_mobilenet_v2 import LKMobileNetV2
from .replknet import RepLKNet
from .unireplknet import UniRepLKNet

__all__ = ['RepLKNet', 'LKConvNeXt', 'LKMobileNetV2', 'UniRepLKNet']
