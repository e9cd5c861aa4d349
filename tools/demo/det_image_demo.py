"""Draw a detector's predictions (boxes, labels, masks) on one image.

    python tools/demo/det_image_demo.py IMG CONFIG CHECKPOINT --out drawn.png
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='detector config')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', default='drawn.png', help='output image (default: %(default)s)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw predictions scoring at least this (default: %(default)s)')
    parser.add_argument('--scale', type=int, default=1,
                        help='enlarge small images by this factor before drawing')
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path, what in ((args.img, 'image'), (args.config, 'config'),
                       (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            sys.exit(f'det_image_demo: {what} {path} does not exist')
    import replk_mm  # noqa: F401  (RepLKNet, checkpoint loading under torch>=2.6)
    from replk_mm.demo.det_demo import draw_predictions, init_detector, predict
    model = init_detector(args.config, args.checkpoint, device=args.device)
    result = predict(model, model.cfg, [args.img])[0]
    draw_predictions([args.img], [result], model.dataset_meta['classes'],
                     score_thr=args.score_thr,
                     scale=args.scale, out_files=[args.out])
    keep = result.pred_instances.scores >= args.score_thr
    print(f'{int(keep.sum())} detections with score >= {args.score_thr} -> {args.out}')
    return result


if __name__ == '__main__':
    main()
