"""Effective receptive field heatmap of RepLKNet (or any config's backbone), paper-style.

    python tools/analysis/visualize_erf.py --arch 31B --images data/demo_ade20k/images/validation \
        --size 512 --num-images 10 --out erf_31b.png
    python tools/analysis/visualize_erf.py --arch 31B --compare-small-kernel 3 --out erf.png

Without --images, random-noise images are used (structure-only ERF of the given weights).
"""
import argparse
import glob
import os.path as osp

import torch

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def load_images(folder, num, size):
    import cv2
    files = sorted(glob.glob(osp.join(folder, '*.jpg')) + glob.glob(osp.join(folder, '*.png')))
    if not files:
        raise FileNotFoundError(f'no .jpg/.png images in {folder}')
    images = []
    for path in files[:num]:
        image = cv2.imread(path)
        if image is None:
            raise ValueError(f'cannot read image {path}')
        image = cv2.resize(image, (size, size))[:, :, ::-1].copy()
        images.append((torch.from_numpy(image).permute(2, 0, 1).float() - MEAN) / STD)
    return images


def build_backbone(arch, checkpoint=None, small_kernel_override=None):
    from replk_mm import RepLKNet
    settings = dict(RepLKNet.parse_arch(arch))
    if small_kernel_override:  # same network with every large kernel replaced by a small one
        settings['large_kernel_sizes'] = [small_kernel_override] * len(settings['channels'])
        settings['small_kernel'] = None
    init = dict(type='Pretrained', checkpoint=checkpoint) if checkpoint else None
    backbone = RepLKNet(settings, init_cfg=init)
    backbone.init_weights()
    return backbone


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--arch', default='31B')
    parser.add_argument('--checkpoint', help='backbone weights (official/mmpretrain layout)')
    parser.add_argument('--images', help='folder of images (default: random noise)')
    parser.add_argument('--num-images', type=int, default=8)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--stage', type=int, default=3, help='stage whose output is probed')
    parser.add_argument('--compare-small-kernel', type=int, metavar='K',
                        help='also plot the same net with KxK kernels everywhere')
    parser.add_argument('--out', default='erf.png')
    args = parser.parse_args(argv)
    from replk_mm.analysis import compute_erf, high_contribution_area_ratio, plot_erf

    if args.images:
        images = load_images(args.images, args.num_images, args.size)
    else:
        g = torch.Generator().manual_seed(0)
        images = [torch.randn(3, args.size, args.size, generator=g)
                  for _ in range(args.num_images)]
    variants = [(f'RepLKNet-{args.arch}', build_backbone(args.arch, args.checkpoint))]
    if args.compare_small_kernel:
        k = args.compare_small_kernel
        variants.append((f'same net, {k}x{k} kernels', build_backbone(args.arch, None, k)))
    erfs, titles = [], []
    for title, backbone in variants:
        def progress(i, n, title=title):
            print(f'[erf] {title}: {i}/{n} images', flush=True)
        erf = compute_erf(backbone, images, stage=args.stage, progress=progress)
        ratios = {t: high_contribution_area_ratio(erf, t) for t in (0.2, 0.3, 0.5, 0.99)}
        print(f'[erf] {title}: high-contribution area ratio ' +
              ', '.join(f't={t:.0%}: {r:.4f}' for t, r in ratios.items()), flush=True)
        erfs.append(erf)
        titles.append(title)
    plot_erf(erfs, args.out, titles)
    print(f'[erf] heatmap written to {args.out}')
    return erfs


if __name__ == '__main__':
    main()
