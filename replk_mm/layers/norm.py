"""Channel LayerNorm of NCHW maps, torch only (the norm of ConvNeXt's and UniRepLKNet's stems,
down-sampling layers and output norms)."""
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['LayerNorm2d']


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (ConvNeXt's ``channels_first`` LN).

    A subclass of ``nn.LayerNorm`` (``weight`` / ``bias`` of shape ``(C, )``), so its state
    dict is that of the official ``LayerNorm(data_format='channels_first')``.
    """

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight,
                            self.bias, self.eps).permute(0, 3, 1, 2).contiguous()
