"""Per-image cost of the checked seg datasets' label-map checks (replk_mm/datasets/seg_checked.py).

    python tools/analysis/benchmark_label_check.py [--repeat 200]

Times ``SegMapCheck`` (the size check alone, and size + label values) on label maps of ADE20K's
and Cityscapes' typical sizes, with and without ignore-index pixels (with them, the value check
takes its three-comparison path), next to what the pipeline step before it costs: decoding the
label png (mmseg's ``LoadAnnotations`` with the default cv2 backend). Prints one markdown table
row per case (median of ``--repeat`` runs, one thread).
"""
import argparse
import os.path as osp
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

# name, (H, W), classes, reduce_zero_label (ADE20K: file id 0 becomes the ignore index)
CASES = (('ADE20K val (512x683)', (512, 683), 150),
         ('Cityscapes (1024x2048)', (1024, 2048), 19))


def label_map(shape, num_classes, ignore_share, seed=0):
    """Blocky class ids (as real maps: long runs), ``ignore_share`` of the pixels 255."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, num_classes, (shape[0] // 16 + 1, shape[1] // 16 + 1))
    seg = np.kron(blocks, np.ones((16, 16), np.int64))[:shape[0], :shape[1]].astype(np.uint8)
    if ignore_share:
        seg[:int(shape[0] * ignore_share)] = 255
    return np.ascontiguousarray(seg)


def median_seconds(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeat', type=int, default=200)
    args = parser.parse_args(argv)
    import cv2
    import mmcv
    import torch
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from replk_mm.datasets.seg_checked import SegMapCheck

    print(f'# {platform.processor() or platform.machine()}, numpy {np.__version__}, '
          f'{args.repeat} runs each, median')
    print('| label map | ignore pixels | decode png | size check | size + value check | '
          'value check / decode |')
    print('|---|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape, classes in CASES:
            for ignore_share in (0.0, 0.1):
                seg = label_map(shape, classes, ignore_share)
                path = osp.join(tmp, 'label.png')
                cv2.imwrite(path, seg)
                with open(path, 'rb') as f:
                    data = f.read()
                results = dict(gt_seg_map=seg, ori_shape=shape, seg_map_path=path,
                               reduce_zero_label=False)
                size_only, full = SegMapCheck(None), SegMapCheck(classes)
                decode = median_seconds(
                    lambda: mmcv.imfrombytes(data, flag='unchanged').squeeze().astype(np.uint8),
                    args.repeat)
                size = median_seconds(lambda: size_only(results), args.repeat)
                value = median_seconds(lambda: full(results), args.repeat)
                print(f'| {name} | {ignore_share:.0%} | {decode * 1e3:.2f} ms | '
                      f'{size * 1e6:.1f} us | {value * 1e6:.1f} us | {value / decode:.1%} |')


if __name__ == '__main__':
    main()
