"""The README's main job (tools/run_demo.sh -> tools/demo/seg_demo.py), shortened: every phase
runs (data, tools/train.py, evaluation, re-parameterization, evaluation, overlays)."""
import os.path as osp

import pytest


def test_seg_demo_runs_every_phase(tmp_path, capsys):
    from tools.demo.seg_demo import main
    summary = main(['--work-dir', str(tmp_path / 'work'), '--data-root', str(tmp_path / 'data'),
                    '--iters', '2', '--num-train', '8', '--num-val', '2', '--overlays', '1',
                    '--threads', '1'])
    out = capsys.readouterr().out
    for step in range(1, 6):
        assert f'[seg demo {step}/5]' in out
    assert 'compute threads: 1 (as requested)' in out
    assert summary['miou_deploy'] == pytest.approx(summary['miou'], abs=0.05)
    assert osp.isfile(summary['deploy_checkpoint'])
    assert [osp.basename(p) for p in summary['overlays']] == ['ADE_val_00000001_overlay.png']
    assert osp.isfile(tmp_path / 'data' / 'replk_demo_meta.json')


def test_seg_demo_rejects_bad_arguments(capsys):
    from tools.demo.seg_demo import parse_args
    for bad, message in ((['--iters', '0'], '--iters must be positive'),
                         (['--threads', 'many'], "--threads must be a positive int or 'auto'")):
        with pytest.raises(SystemExit):
            parse_args(bad)
        assert message in capsys.readouterr().err
