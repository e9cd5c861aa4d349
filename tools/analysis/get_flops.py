"""Parameters and FLOPs (multiply-accumulates) of a RepLKNet backbone or a whole config.

    python tools/analysis/get_flops.py --arch 31B --shape 224 224
    python tools/analysis/get_flops.py configs/upernet_31b_ade20k.py --shape 512 512
"""
import argparse

import torch


class TensorForward(torch.nn.Module):
    """Traceable forward of a downstream model: the whole segmentor, or a detector's
    backbone + neck (its heads need image metadata that tracing cannot provide)."""

    def __init__(self, model, scope):
        super().__init__()
        self.model, self.scope = model, scope

    def forward(self, x):
        if self.scope == 'mmseg':
            return self.model(x, mode='tensor')
        return self.model.extract_feat(x)


def analyse(config=None, arch=None, shape=(224, 224), deploy=False):
    from replk_mm import RepLKNet, switch_to_deploy
    from replk_mm.analysis import count_flops, count_params
    if config:
        from replk_mm.apis.deploy import build_model
        from replk_mm.apis.runner import load_config
        cfg = load_config(config)
        model, scope = build_model(cfg), cfg.default_scope
        forward = TensorForward(model, scope)
        part = 'whole model' if scope == 'mmseg' else 'backbone + neck'
    else:
        model, forward, part = RepLKNet(arch), None, 'backbone'
    if deploy:
        switch_to_deploy(model.eval())
    params = count_params(model)
    flops = count_flops(model, (3, *shape), forward=forward)
    return dict(params=params, flops=flops, part=part)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', nargs='?', help='config file (or use --arch)')
    parser.add_argument('--arch', default='31B', help='backbone arch when no config is given')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    parser.add_argument('--deploy', action='store_true', help='count the re-parameterized form')
    args = parser.parse_args(argv)
    result = analyse(args.config, args.arch, tuple(args.shape), args.deploy)
    name = args.config or f'RepLKNet-{args.arch}'
    print(f'{name} @ {args.shape[0]}x{args.shape[1]}'
          f'{" (deploy form)" if args.deploy else ""}\n'
          f'  params: {result["params"] / 1e6:.2f} M (all parameters)\n'
          f'  FLOPs : {result["flops"] / 1e9:.2f} G multiply-accumulates ({result["part"]})')
    return result


if __name__ == '__main__':
    main()
