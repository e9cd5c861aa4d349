"""tools/demo/kernel_size_demo.py in a shortened run (2 iterations per model on a handful of
synthetic images): it trains both models, measures both ERFs and prints them side by side."""
import json
import os.path as osp

import pytest

from tools.demo import kernel_size_demo


def test_kernel_size_demo_prints_both_results(tmp_path, capsys, monkeypatch):
    # The flow is under test, not conv speed: skip the depth-wise conv autotuner's timings.
    monkeypatch.setenv('REPLK_DW_CONV_BACKEND', 'native')
    work_dir = tmp_path / 'work'
    small, large = kernel_size_demo.main([
        '--work-dir', str(work_dir), '--data-root', str(tmp_path / 'data'), '--iters', '2',
        '--num-train', '4', '--num-val', '2', '--erf-images', '2', '--erf-size', '64',
        '--workers', '0'])
    out = capsys.readouterr().out
    summary = out[out.index('[kernel-size demo] 3x3 vs large kernels'):]
    assert '3x3 (3-3-3-3)' in summary and 'large (31-29-27-13 + 5x5)' in summary
    for row in ('validation mIoU (%)', 'ERF area ratio t=20%', 'ERF area ratio t=30%',
                'ERF area ratio t=50%', 'ERF area ratio t=99%'):
        line = next(ln for ln in summary.splitlines() if ln.startswith(row))
        assert len(line[len(row):].split()) == 2, line  # one number per model
    assert f'{small.mIoU:.2f}' in summary and f'{large.mIoU:.2f}' in summary
    assert small.backbone_params < large.backbone_params  # 3x3 vs 31x31 depth-wise kernels
    with open(work_dir / 'summary.json') as f:
        saved = json.load(f)
    assert set(saved['results']) == {'small_3x3', 'large'}
    for result in saved['results'].values():
        assert 0 <= result['mIoU'] <= 100
        assert all(0 < r <= 1 for r in result['erf_area_ratio'].values())
        assert osp.isfile(result['checkpoint'])
    assert osp.isfile(work_dir / 'erf.png')


def test_kernel_size_demo_rejects_bad_options():
    with pytest.raises(SystemExit):
        kernel_size_demo.parse_args(['--erf-images', '60', '--num-val', '50'])
    with pytest.raises(SystemExit):
        kernel_size_demo.parse_args(['--iters', '0'])
