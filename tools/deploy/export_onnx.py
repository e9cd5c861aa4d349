"""Export a trained model to ONNX (re-parameterized, plain Conv nodes) and check it with
onnxruntime against PyTorch.

    python tools/deploy/export_onnx.py CONFIG CKPT OUT.onnx [--shape H W] [--dynamic] \
        [--image IMG] [--det-output neck|head] [--rtol 1e-4]

CONFIG: an mmseg segmentor, mmdet detector or mmpretrain classifier config (path or pkg::name);
CKPT: its checkpoint in training form (merged before export) or in the deploy form the config
builds. The graph takes the normalized N x 3 x H x W batch (mean / std / channel order are
stored in the file's metadata) and returns segmentation logits at the input size, a
detector's neck features (or a single-stage detector's raw head outputs), or class logits.
Fails (exit 1) if onnxruntime's outputs differ from PyTorch's by more than --rtol
(max |onnx - torch| / max |torch|) or the graph holds anything but standard ONNX ops.
Details: docs/deploy.md.
"""
import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='mmseg / mmdet / mmpretrain config (path or pkg::name)')
    parser.add_argument('checkpoint', help='whole-model checkpoint of that config')
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument('--shape', nargs='+', type=int, metavar='H W',
                        help='input height and width (default: the config\'s test size)')
    parser.add_argument('--dynamic', action='store_true',
                        help='symbolic batch, height and width (checked at two sizes)')
    parser.add_argument('--image', help='also check on this image (resized to the shape)')
    parser.add_argument('--det-output', choices=('neck', 'head'), default='neck',
                        help='detectors: backbone + neck features (default), or the raw '
                             'dense-head outputs of a single-stage detector')
    parser.add_argument('--rtol', type=float, default=None,
                        help='largest max|onnx - torch| / max|torch| (default: 1e-4)')
    parser.add_argument('--threads', type=int, help='onnxruntime threads')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.shape is not None and len(args.shape) != 2:
        raise SystemExit(f'export_onnx.py: error: --shape takes H W (two ints), got '
                         f'{args.shape}')
    from replk_mm.deploy.onnx import DEFAULT_RTOL, ExportCheckError, export_and_check
    try:
        return export_and_check(
            args.config, args.checkpoint, args.out, shape=args.shape, dynamic=args.dynamic,
            image=args.image, det_output=args.det_output,
            rtol=DEFAULT_RTOL if args.rtol is None else args.rtol, threads=args.threads,
            progress=lambda message: print(message, flush=True))
    except (ExportCheckError, ImportError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f'export_onnx.py: error: {exc}') from exc


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('export_onnx.py'):  # expected errors: one line, no traceback
        main()
