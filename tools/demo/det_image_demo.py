"""Draw a detector's predictions (boxes, class names, scores, masks) on one image.

    python tools/demo/det_image_demo.py IMG CONFIG CHECKPOINT --out drawn.png

Training-form and re-parameterized (deploy-form) checkpoints both work with the same config.
The picture is drawn by mmdet's DetLocalVisualizer.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='detector config')
    parser.add_argument('checkpoint', help='checkpoint file (training or deploy form)')
    parser.add_argument('--out', default='drawn.png', help='output image (default: %(default)s)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw predictions scoring at least this (default: %(default)s)')
    parser.add_argument('--scale', type=int, default=1,
                        help='enlarge small images by this factor before drawing')
    parser.add_argument('--device', default=None, help='cpu, cuda:0, ... (default: cuda:0 if '
                        'available, else cpu)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error(f'--scale must be >= 1, got {args.scale}')
    return args


def main(argv=None):
    args = parse_args(argv)
    for path, what in ((args.img, 'image'), (args.config, 'config'),
                       (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            sys.exit(f'det_image_demo: {what} {path} does not exist')
    from replk_mm.apis import draw_detection, inference_detector, init_detector
    model = init_detector(args.config, args.checkpoint, device=args.device,
                          cfg_options=args.cfg_options)
    result = inference_detector(model, args.img)
    draw_detection(model, args.img, result, out_file=args.out, score_thr=args.score_thr,
                   scale=args.scale)
    keep = result.pred_instances.scores >= args.score_thr
    print(f'{int(keep.sum())} detections with score >= {args.score_thr} -> {args.out}')
    return result


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('det_image_demo.py'):  # expected errors: one line, no traceback
        main()
