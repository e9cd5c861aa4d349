"""Deploy-speed benchmark (tools/analysis/benchmark_deploy.py): the whole path on tiny models,
the fastest-round / median arithmetic against a clock whose readings are known, and the
paper's Table 6 setting. No speed is asserted."""
import json
import os.path as osp

import pytest
from conftest import REPO, tiny_classifier_config

from tools.analysis import benchmark_deploy as bench

REPLKNET = tiny_classifier_config()
CONVNEXT = """
default_scope = 'mmpretrain'
model = dict(type='ImageClassifier',
             backbone=dict(type='ConvNeXt', arch=dict(depths=[1, 1], channels=[8, 16]),
                           out_indices=(1, )),
             head=dict(type='LinearClsHead', num_classes=10, in_channels=16))
data_preprocessor = dict(mean=[127.5] * 3, std=[127.5] * 3)
"""


@pytest.fixture(autouse=True)
def native_convs(monkeypatch):
    # The flow is under test, not conv speed: skip the depth-wise conv autotuner's timings.
    monkeypatch.setenv('REPLK_DW_CONV_BACKEND', 'native')


def _write(tmp_path, name, text):
    path = tmp_path / f'{name}.py'
    path.write_text(text)
    return str(path)


def test_benchmark_rows_markdown_and_json(tmp_path, capsys):
    pytest.importorskip('onnxruntime')
    configs = [_write(tmp_path, 'tiny_replknet', REPLKNET), _write(tmp_path, 'convnext', CONVNEXT)]
    docs = tmp_path / 'deploy.md'
    docs.write_text('# Deploy\n\nintro\n\n<!-- benchmark_deploy: begin -->\nold table\n'
                    '<!-- benchmark_deploy: end -->\n\n## after\n')
    out_json = tmp_path / 'bench.json'
    [result] = bench.main(configs + ['--shape', '32', '32', '--batch', '2', '--rounds', '2',
                                     '--iters', '1', '--threads', '1', '--out', str(docs),
                                     '--json', str(out_json), '--labels', 'RepLK-tiny',
                                     'ConvNeXt'])
    printed = capsys.readouterr().out
    forms = [(r.model, r.form, r.runtime) for r in result.rows]
    assert forms == [('RepLK-tiny', 'training', 'pytorch'),
                     ('RepLK-tiny', 'training', 'onnxruntime'),
                     ('RepLK-tiny', 'deploy', 'pytorch'), ('RepLK-tiny', 'deploy', 'onnxruntime'),
                     ('ConvNeXt', 'as is (no re-param)', 'pytorch'),
                     ('ConvNeXt', 'as is (no re-param)', 'onnxruntime')]
    assert all(row.images_per_s > 0 and len(row.round_images_per_s) == 2 for row in result.rows)
    # merging the small-kernel branches and BNs removes parameters
    assert result.rows[2].params < result.rows[0].params
    assert 'round 2/2' in printed and result.threads == 1
    text = docs.read_text()
    assert text.startswith('# Deploy\n\nintro\n\n') and text.endswith('\n\n## after\n')
    assert 'old table' not in text and '| RepLK-tiny | deploy |' in text
    assert '1 threads' in text and 'load average' in text
    saved = json.loads(out_json.read_text())
    assert saved['results'][0]['batch'] == 2 and len(saved['results'][0]['rows']) == 6
    assert 'benchmark_deploy.py' in saved['command'] and saved['table6'] is False


def test_fastest_round_and_median_from_known_clock(tmp_path, monkeypatch):
    # The clock reads 0, then advances by these durations (2 calls each): round by round,
    # training form then deploy form.
    durations = iter([0.4, 0.2, 0.2, 0.8, 1.0, 0.1])
    now = [0.0]
    calls = [0]

    def clock():
        calls[0] += 1
        if calls[0] % 2 == 0:  # the end of a timed round
            now[0] += next(durations)
        return now[0]

    monkeypatch.setattr(bench, 'perf_counter', clock)
    result = bench.benchmark_deploy([_write(tmp_path, 'tiny', REPLKNET)], batch=2,
                                    shape=(32, 32), rounds=3, iters=2, threads=1, onnx=False,
                                    progress=lambda message: None)
    training, deploy = result.rows
    # per call: training 0.2, 0.1, 0.5 s -> 10, 20, 4 img/s; deploy 0.1, 0.4, 0.05 s
    assert training.round_images_per_s == pytest.approx([10, 20, 4])
    assert (training.images_per_s, training.median_images_per_s) == pytest.approx((20, 10))
    assert deploy.round_images_per_s == pytest.approx([20, 5, 40])
    assert (deploy.images_per_s, deploy.median_images_per_s) == pytest.approx((40, 20))
    assert '| tiny | deploy | ' in bench.markdown_table(result)
    assert '| 40.00 (20.00) |' in bench.markdown_table(result)


def test_paper_table6_setting(tmp_path, capsys):
    args = bench.parse_args(['--paper-table6'])
    assert args.batch == 64 and not args.configs
    plan = bench.runs(args)
    assert [shape for shape, _, _ in plan] == [(224, 224), (384, 384)]
    for _, configs, labels in plan:
        assert labels == ['RepLKNet-31B', 'Swin-B']
        assert osp.isfile(configs[0]) and configs[0].startswith(REPO)
    assert plan[1][1][1].endswith('swin-base_16xb64_in1k-384px.py')
    with pytest.raises(SystemExit):
        bench.parse_args(['--paper-table6', '--shape', '224', '224'])
    with pytest.raises(SystemExit):
        bench.parse_args(['--paper-table6', 'some_config.py'])  # no labels to match the paper

    docs = tmp_path / 'deploy.md'
    results = bench.main(['--paper-table6', _write(tmp_path, 'tiny', REPLKNET), '--labels',
                          'RepLKNet-31B', '--batch', '2', '--rounds', '1', '--iters', '1',
                          '--threads', '1', '--out', str(docs), '--json', 'none'])
    printed = capsys.readouterr().out
    assert [r.shapes['RepLKNet-31B'] for r in results] == [[224, 224], [384, 384]]
    assert all(row.runtime == 'pytorch' for r in results for row in r.rows)
    rows = bench.table6_rows(results)
    assert [(model, side, form, paper) for model, side, form, _, paper in rows] == [
        ('RepLKNet-31B', 224, 'training', 295.5), ('RepLKNet-31B', 224, 'deploy', 295.5),
        ('RepLKNet-31B', 384, 'training', 97.0), ('RepLKNet-31B', 384, 'deploy', 97.0)]
    deploy_384 = results[1].rows[1].images_per_s
    assert f'| RepLKNet-31B | 384x384 | deploy | {deploy_384:.2f} | 97.0 |' in printed
    device = bench.device_name(results[0])
    assert 'cpu, 1 threads' in device and f'measured, {device}, batch 2' in printed
    text = docs.read_text()
    assert '<!-- benchmark_deploy_table6: begin' in text and 'Table 6 (FP32, batch 64' in text
    assert '| RepLKNet-31B | 224x224 | training |' in text


def test_benchmark_rejects_bad_input(tmp_path):
    import torch
    config = _write(tmp_path, 'convnext', CONVNEXT)
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='no CUDA device'):
            bench.main([config, '--device', 'cuda', '--out', 'none', '--json', 'none'])
    with pytest.raises(ValueError, match='one distinct label'):
        bench.benchmark_deploy([config], labels=['a', 'b'])
    with pytest.raises(ValueError, match='batch'):
        bench.benchmark_deploy([config], batch=0)
    with pytest.raises(SystemExit, match='does not exist'):
        bench.main([str(tmp_path / 'missing.py'), '--out', 'none', '--json', 'none'])
    with pytest.raises(SystemExit):
        bench.parse_args([])  # neither a config nor --paper-table6


def test_profile_deploy_runs_models_and_can_route_every_linear_through_onednn(tmp_path, capsys):
    """tools/analysis/profile_deploy.py on two tiny classifiers; with --onednn-linear every
    nn.Linear (mmpretrain ConvNeXt's point-wise layers, both heads) runs oneDNN's matmul and
    the outputs stay those of nn.Linear."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from tools.analysis import profile_deploy

    configs = [_write(tmp_path, 'tiny_replknet', REPLKNET), _write(tmp_path, 'convnext', CONVNEXT)]
    profile_deploy.main(configs + ['--labels', 'RepLK', 'CNX', '--batch', '1', '--shape', '64',
                                   '64', '--threads', '1', '--rounds', '2', '--onednn-linear'])
    out = capsys.readouterr().out
    assert "every nn.Linear through oneDNN's matmul" in out
    assert '| RepLK | contiguous |' in out and '| CNX | contiguous |' in out

    class Ops(TorchDispatchMode):
        names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    plain = profile_deploy.build(configs[1], (64, 64), True, 'contiguous')
    onednn = profile_deploy.build(configs[1], (64, 64), True, 'contiguous', onednn_linear=True)
    onednn.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), Ops() as ops:
        out = onednn(x)
    assert '_linear_pointwise' in ops.names and 'addmm' not in ops.names
    with torch.no_grad():
        torch.testing.assert_close(out, plain(x), rtol=1e-4, atol=1e-5)
