from .backbones import RepLKNet
from .backbones.replknet import convert_mmpretrain_to_official
from .checkpoint import (
                         CheckpointMismatchError,
                         load_backbone_checkpoint,
                         load_checkpoint,
                         read_checkpoint,
)

__all__ = ['RepLKNet', 'CheckpointMismatchError', 'convert_mmpretrain_to_official',
           'load_backbone_checkpoint', 'load_checkpoint', 'read_checkpoint']
