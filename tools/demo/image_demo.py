"""Segment one image with a segmentation config and write the prediction over it.

    python tools/demo/image_demo.py IMG CONFIG CHECKPOINT --out overlay.png

Training-form and re-parameterized (deploy-form) checkpoints both work with the same config.
The picture is drawn by mmseg's SegLocalVisualizer (class colours and names).
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
    parser.add_argument('config', help='segmentation config file')
    parser.add_argument('checkpoint', help='checkpoint file (training or deploy form)')
    parser.add_argument('--out', default='overlay.png', help='output image (default: %(default)s)')
    parser.add_argument('--device', default=None, help='cpu, cuda:0, ... (default: cuda:0 if '
                        'available, else cpu)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the class colours, in (0, 1]')
    parser.add_argument('--no-legend', action='store_true',
                        help='do not write the class names on the segments')
    parser.add_argument('--min-size', type=int, default=0,
                        help='draw images with a shorter side enlarged to at least this')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    args = parser.parse_args(argv)
    if not 0 < args.opacity <= 1:
        parser.error(f'--opacity must be in (0, 1], got {args.opacity}')
    if args.min_size < 0:
        parser.error(f'--min-size must be >= 0, got {args.min_size}')
    return args


def main(argv=None):
    args = parse_args(argv)
    from replk_mm.apis import draw_segmentation, inference_segmentor, init_segmentor, read_image
    try:
        read_image(args.img)  # fail on a bad image before building the model
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f'image_demo: {exc}')
    model = init_segmentor(args.config, args.checkpoint, device=args.device,
                           cfg_options=args.cfg_options)
    result = inference_segmentor(model, args.img)
    draw_segmentation(model, args.img, result, out_file=args.out, opacity=args.opacity,
                      with_labels=not args.no_legend, min_size=args.min_size)
    pred = result.pred_sem_seg.data[0].cpu().numpy()
    classes = model.dataset_meta['classes']
    shares = {classes[c]: float((pred == c).mean()) for c in sorted(set(pred.flat))}
    print(f'wrote {args.out}; predicted classes (share of pixels): ' +
          ', '.join(f'{name.strip()} {share:.1%}' for name, share in shares.items()))
    return pred


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('image_demo.py'):  # expected errors: one line, no traceback
        main()
