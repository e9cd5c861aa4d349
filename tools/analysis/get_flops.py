"""Parameters and FLOPs (multiply-accumulates, the paper's "FLOPs") of a config or a backbone.

By default a config is counted the way the RepLKNet README counts it (see
replk_mm/analysis/complexity.py): UperNet at 2048x512 (512-crop models) or 2560x640 (640-crop
models), Cityscapes at 2048x1024, detectors at 1280x800 with mmdet's forward_dummy,
classifiers at their test size. If the config is listed in model-index.yml, the paper's
numbers are printed next to the measured ones.

    python tools/analysis/get_flops.py configs/upernet_31b_ade20k.py
    python tools/analysis/get_flops.py configs/upernet_31b_ade20k.py --shape 512 512
    python tools/analysis/get_flops.py --arch 31B                       # backbone at 224x224
    python tools/analysis/get_flops.py --all --json docs/flops.json     # every paper config
"""
import argparse
import json
import logging
import os.path as osp
import platform

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_INDEX = osp.join(REPO, 'model-index.yml')


def _log(msg):
    print(msg, flush=True)


def _paper(entry):
    """The paper's params / FLOPs / input size from a metafile entry (None where absent)."""
    from replk_mm.utils.metafile import parse_hw
    if entry is None:
        return None
    meta = entry.metadata
    shape = meta.get('FLOPs Input (HxW)')
    return dict(model=entry.name, metafile=osp.relpath(entry.metafile, REPO),
                params_m=meta.get('Parameters (M)'), flops_g=meta.get('FLOPs (G)'),
                input_shape=None if shape is None else list(parse_hw(shape)))


def count_config(config, shape=None, deploy=False, index=None):
    """Build ``config`` and count it; ``shape`` (H, W) defaults to the paper's convention."""
    from replk_mm import switch_to_deploy
    from replk_mm.analysis import model_complexity, paper_input_shape
    from replk_mm.apis.builder import build_model
    from replk_mm.apis.runner import load_config
    cfg = load_config(config)
    shape = tuple(shape) if shape else paper_input_shape(cfg)
    _log(f'{config}: building the model ({cfg.default_scope})')
    model = build_model(cfg)
    if deploy:
        switch_to_deploy(model.eval())
    result = model_complexity(model, shape, logger=_log)
    entry = index.find_config(config) if index is not None else None
    path = osp.abspath(config)
    name = osp.relpath(path, REPO) if path.startswith(REPO + osp.sep) else config
    row = dict(config=name, deploy=deploy, input_shape=list(result.input_shape),
               params=result.params, flops=result.flops, counted=result.counted,
               seconds=round(result.seconds, 1), paper=_paper(entry))
    aux = getattr(model, 'auxiliary_head', None)
    if aux is not None:  # papers differ on whether their #params include it (docs/flops.md)
        row['auxiliary_head_params'] = sum(p.numel() for p in aux.parameters())
    return row


def count_arch(arch, shape=(224, 224), deploy=False):
    from replk_mm import RepLKNet
    from replk_mm.analysis import model_complexity
    model = RepLKNet(arch)
    if deploy:
        model.eval().switch_to_deploy()
    result = model_complexity(model, shape, logger=_log)
    return dict(config=None, arch=arch, deploy=deploy, input_shape=list(result.input_shape),
                params=result.params, flops=result.flops, counted='backbone (no classifier)',
                seconds=round(result.seconds, 1), paper=None)


def report(result):
    name = result['config'] or f'RepLKNet-{result["arch"]}'
    h, w = result['input_shape']
    lines = [f'{name} @ {h}x{w} (HxW){" (deploy form)" if result["deploy"] else ""}',
             f'  params: {result["params"] / 1e6:.2f} M (all parameters)',
             f'  FLOPs : {result["flops"] / 1e9:.4g} G multiply-accumulates ({result["counted"]})']
    paper = result.get('paper')
    if paper and paper['flops_g'] is not None:
        note = ''
        if paper['input_shape'] and list(paper['input_shape']) != [h, w]:
            note = f' at {paper["input_shape"][0]}x{paper["input_shape"][1]}, not this size'
        else:
            note = f' ({100 * (result["flops"] / 1e9 / paper["flops_g"] - 1):+.1f}%)'
        lines.append(f'  paper : {paper["params_m"]} M params, {paper["flops_g"]} G FLOPs{note} '
                     f'[{paper["metafile"]}: {paper["model"]}]')
    return '\n'.join(lines)


def _key(result):
    return (result['config'], result.get('arch'), result['deploy'], tuple(result['input_shape']))


def write_json(path, results):
    """Write ``results`` to ``path``; rows of an existing file for other configs (or other
    sizes / forms) are kept, so the paper configs can be counted a few at a time."""
    rows = []
    if osp.isfile(path):
        with open(path) as f:
            rows = json.load(f)['results']
    new = {_key(r) for r in results}
    rows = [r for r in rows if _key(r) not in new] + list(results)
    with open(path, 'w') as f:
        json.dump(dict(tool='tools/analysis/get_flops.py', torch=torch.__version__,
                       python=platform.python_version(), results=rows), f, indent=1)
        f.write('\n')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='*', help='config file(s) (or --arch, or --all)')
    parser.add_argument('--arch', help='count a RepLKNet backbone (31B, 31L, XL) instead')
    parser.add_argument('--all', action='store_true',
                        help='count every config listed in model-index.yml')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="input size; default: the paper's for the task (224x224 for --arch)")
    parser.add_argument('--deploy', action='store_true', help='count the re-parameterized form')
    parser.add_argument('--json', help='write the results to this JSON file (rows of other '
                        'configs already in it are kept)')
    args = parser.parse_args(argv)
    if bool(args.config) + bool(args.arch) + args.all != 1:
        parser.error('give config file(s), --arch or --all (exactly one of them)')
    if args.shape and min(args.shape) < 1:
        parser.error(f'--shape must be two positive sizes H W, got {args.shape}')
    from replk_mm.utils.metafile import load_model_index
    index = load_model_index(MODEL_INDEX) if osp.isfile(MODEL_INDEX) else None
    if args.all:
        if index is None:
            parser.error(f'--all reads {MODEL_INDEX}, which does not exist')
        configs = [index.config_path(m) for m in index]
    else:
        configs = args.config
    missing = [c for c in configs if not osp.isfile(c)]
    if missing:
        parser.error(f'config file(s) not found: {", ".join(missing)}')
    logging.getLogger('mmengine').setLevel(logging.WARNING)
    results = []
    if args.arch:
        results.append(count_arch(args.arch, tuple(args.shape or (224, 224)), args.deploy))
        print(report(results[-1]))
    for i, config in enumerate(configs):
        if len(configs) > 1:
            _log(f'[{i + 1}/{len(configs)}]')
        results.append(count_config(config, args.shape, args.deploy, index))
        print(report(results[-1]), flush=True)
    if args.json:
        write_json(args.json, results)
        _log(f'wrote {args.json}')
    return results


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('get_flops.py'):  # expected errors: one line, no traceback
        main()
