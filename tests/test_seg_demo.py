"""The README's main job (tools/run_demo.sh -> tools/demo/seg_demo.py), shortened: every phase
of the shared demo driver runs (data, tools/train.py, evaluation, re-parameterization,
evaluation, overlays). The detection demo runs in test_det_train.py."""
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
    assert 'generated 8 training + 2 validation images' in out
    assert '[seg demo] summary' in out and 'mIoU' in out and 'pictures: ' in out
    assert summary.metrics_deploy['mIoU'] == pytest.approx(summary.metrics['mIoU'], abs=0.05)
    assert osp.isfile(summary.deploy_checkpoint)
    assert [osp.relpath(p, tmp_path / 'work') for p in summary.pictures] == [
        'overlays/ADE_val_00000001_overlay.png']
    assert osp.isfile(tmp_path / 'data' / 'replk_demo_meta.json')


def test_seg_demo_rejects_bad_arguments(capsys):
    from tools.demo.seg_demo import parse_args
    for bad, message in ((['--iters', '0'], '--iters must be positive'),
                         (['--threads', 'many'], "--threads must be a positive int or 'auto'")):
        with pytest.raises(SystemExit):
            parse_args(bad)
        assert message in capsys.readouterr().err


def test_thread_choice(monkeypatch):
    from tools.demo import demo_driver
    assert demo_driver.choose_threads(3)[0] == 3
    assert demo_driver.choose_threads(None)[0] is None
    monkeypatch.setattr(demo_driver.os, 'cpu_count', lambda: 2)
    monkeypatch.setattr(demo_driver.os, 'getloadavg', lambda: (1.5, 0, 0))
    assert demo_driver.choose_threads('auto')[0] == 1  # busy: one thread
    monkeypatch.setattr(demo_driver.os, 'getloadavg', lambda: (0.2, 0, 0))
    assert demo_driver.choose_threads('auto')[0] is None  # idle: one per core
    with pytest.raises(ValueError, match="threads must be a positive int, None or 'auto'"):
        demo_driver.choose_threads(0)
