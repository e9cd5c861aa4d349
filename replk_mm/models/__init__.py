from .backbones import RepLKNet
from .checkpoint import (
                         convert_mmpretrain_to_official,
                         load_backbone_checkpoint,
                         to_backbone_state_dict,
)
from .reparam import switch_to_deploy

__all__ = ['RepLKNet', 'switch_to_deploy', 'load_backbone_checkpoint',
           'to_backbone_state_dict', 'convert_mmpretrain_to_official']
