"""The official RepLKNet checkpoint key layout, written out independently of replk_mm."""
import torch

BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def _conv_bn(prefix):
    return [f'{prefix}.conv.weight'] + [f'{prefix}.bn.{k}' for k in BN]


def official_backbone_keys(layers, small_kernel=True, norm_intermediate=False, deploy=False):
    keys = []
    for i in range(4):
        keys += _conv_bn(f'stem.{i}')
    for s, n in enumerate(layers):
        for j in range(n):
            lk = f'stages.{s}.blocks.{2 * j}'
            keys += _conv_bn(f'{lk}.pw1') + _conv_bn(f'{lk}.pw2')
            if deploy:
                keys += [f'{lk}.large_kernel.lkb_reparam.weight',
                         f'{lk}.large_kernel.lkb_reparam.bias']
            else:
                keys += _conv_bn(f'{lk}.large_kernel.lkb_origin')
                if small_kernel:
                    keys += _conv_bn(f'{lk}.large_kernel.small_conv')
            keys += [f'{lk}.prelkb_bn.{k}' for k in BN]
            ffn = f'stages.{s}.blocks.{2 * j + 1}'
            keys += [f'{ffn}.preffn_bn.{k}' for k in BN] + _conv_bn(f'{ffn}.pw1') + \
                _conv_bn(f'{ffn}.pw2')
        if norm_intermediate:
            keys += [f'stages.{s}.norm.{k}' for k in BN]
    for s in range(len(layers) - 1):
        keys += _conv_bn(f'transitions.{s}.0') + _conv_bn(f'transitions.{s}.1')
    return keys


def imagenet_checkpoint(backbone_state, num_classes=10, seed=0):
    """An official ImageNet-style state dict: backbone + final BN `norm` + linear `head`."""
    g = torch.Generator().manual_seed(seed)
    channels = backbone_state['transitions.2.1.conv.weight'].shape[0]
    state = dict(backbone_state)
    state.update({'norm.weight': torch.rand(channels, generator=g) + 0.5,
                  'norm.bias': torch.randn(channels, generator=g),
                  'norm.running_mean': torch.randn(channels, generator=g),
                  'norm.running_var': torch.rand(channels, generator=g) + 0.5,
                  'norm.num_batches_tracked': torch.tensor(7),
                  'head.weight': torch.randn(num_classes, channels, generator=g),
                  'head.bias': torch.randn(num_classes, generator=g)})
    return state
