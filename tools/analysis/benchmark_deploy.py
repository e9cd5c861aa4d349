"""Deploy speed: images/s of the training form and the re-parameterized form, PyTorch eager and
onnxruntime, interleaved rounds, fastest round kept. Writes a Markdown table into
docs/deploy.md (between its benchmark markers) and the raw numbers to docs/deploy_benchmark.json.

    # the paper's comparison on this machine: RepLKNet-31B vs Swin-B and ConvNeXt-B
    python tools/analysis/benchmark_deploy.py CONFIG_31B \
        mmpretrain::swin_transformer/swin-base_16xb64_in1k.py \
        mmpretrain::convnext/convnext-base_32xb128_in1k.py \
        --labels RepLKNet-31B Swin-B ConvNeXt-B --shape 224 224 --batch 8

CONFIG: mmseg / mmdet / mmpretrain configs (paths or pkg::names); weights are the configs'
initial ones (speed does not depend on them). --device cuda times PyTorch on the GPU (and
onnxruntime with its CUDA provider if onnxruntime-gpu is installed).
"""
import argparse
import os.path as osp
import shlex
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOCS = osp.join(REPO, 'docs', 'deploy.md')
JSON = osp.join(REPO, 'docs', 'deploy_benchmark.json')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='+', metavar='CONFIG')
    parser.add_argument('--labels', nargs='+', help='model names (default: config names)')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                        help="input size (default: each config's test size)")
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--iters', type=int, default=3, help='calls per round')
    parser.add_argument('--threads', type=int, help='CPU threads (default: torch\'s)')
    parser.add_argument('--no-onnx', action='store_true', help='PyTorch eager only')
    parser.add_argument('--work-dir', help='keep the exported .onnx files here')
    parser.add_argument('--out', default=DOCS,
                        help='Markdown file to put the table in (default: docs/deploy.md); '
                             "'none' to skip")
    parser.add_argument('--json', default=JSON, help="raw numbers (default: "
                        "docs/deploy_benchmark.json); 'none' to skip")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from replk_mm.deploy.benchmark import benchmark_deploy, markdown_table, write_results
    try:
        result = benchmark_deploy(
            args.configs, device=args.device, batch=args.batch, shape=args.shape,
            rounds=args.rounds, iters=args.iters, threads=args.threads, onnx=not args.no_onnx,
            labels=args.labels, work_dir=args.work_dir,
            progress=lambda message: print(message, flush=True))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise SystemExit(f'benchmark_deploy.py: error: {exc}') from exc
    print(markdown_table(result))
    argv = sys.argv[1:] if argv is None else argv
    command = 'python tools/analysis/benchmark_deploy.py ' + ' '.join(map(shlex.quote, argv))
    markdown = None if args.out == 'none' else args.out
    json_file = None if args.json == 'none' else args.json
    write_results(result, markdown, json_file, command=command)
    for path in (markdown, json_file):
        if path:
            print(f'[bench] written to {path}')
    return result


if __name__ == '__main__':
    main()
