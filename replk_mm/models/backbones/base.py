"""What every replk_mm backbone does the same way on the OpenMMLab side: frozen stages and
``norm_eval`` in ``train()``, and a checked ``Pretrained`` ``init_cfg``."""
import os.path as osp

from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['FreezeMixin', 'pretrained_init_cfg']

PRETRAINED_KEYS = frozenset({'type', 'checkpoint', 'prefix', 'map_location'})


class FreezeMixin:
    """``train()`` that keeps :meth:`frozen_modules` frozen (eval mode, no gradients) and, with
    ``self.norm_eval``, every BN in eval mode. Subclasses set ``norm_eval`` and implement
    :meth:`frozen_modules`."""

    def frozen_modules(self):
        """The modules frozen by ``frozen_stages``, in any order."""
        raise NotImplementedError

    def _freeze_stages(self):
        for module in self.frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


def pretrained_init_cfg(init_cfg, backbone, missing_hint, extra_keys=()):
    """``init_cfg`` when it is a ``Pretrained`` dict whose keys and local file check out, else
    None (the caller falls back to ``BaseModule.init_weights``).

    Args:
        init_cfg: The backbone's ``init_cfg``.
        backbone (str): The backbone's name, for the messages.
        missing_hint (str): What to do when the local checkpoint does not exist.
        extra_keys (Iterable[str]): Keys this backbone accepts besides ``checkpoint``,
            ``prefix`` and ``map_location``.
    """
    if not (isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'):
        return None
    allowed = PRETRAINED_KEYS | set(extra_keys)
    unknown = set(init_cfg) - allowed
    if unknown or 'checkpoint' not in init_cfg:
        optional = sorted(allowed - {'type', 'checkpoint'})
        raise ValueError(f"{backbone}'s Pretrained init_cfg takes 'checkpoint' and optional "
                         f'{optional}; got {init_cfg}')
    checkpoint = init_cfg['checkpoint']
    if '://' not in str(checkpoint) and not osp.isfile(osp.expanduser(str(checkpoint))):
        raise FileNotFoundError(
            f'{backbone} pre-trained checkpoint {checkpoint} (init_cfg.checkpoint) does not '
            f'exist. {missing_hint} Or pass --cfg-options '
            'model.backbone.init_cfg.checkpoint=PATH_OR_URL, or model.backbone.init_cfg=None '
            'to train from scratch.')
    return init_cfg
