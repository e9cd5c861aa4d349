from .dw_conv import DepthwiseConv2d, build_dw_conv, depthwise_conv2d

__all__ = ['DepthwiseConv2d', 'build_dw_conv', 'depthwise_conv2d']
