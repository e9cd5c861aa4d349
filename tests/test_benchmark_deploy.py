"""Deploy-speed benchmark (replk_mm.deploy.benchmark, tools/analysis/benchmark_deploy.py): a
tiny smoke run of the whole path. No timing is asserted."""
import json

import pytest
from conftest import tiny_classifier_config

pytest.importorskip('onnxruntime')

REPLKNET = tiny_classifier_config()
CONVNEXT = """
default_scope = 'mmpretrain'
model = dict(type='ImageClassifier',
             backbone=dict(type='ConvNeXt', arch=dict(depths=[1, 1], channels=[8, 16]),
                           out_indices=(1, )),
             head=dict(type='LinearClsHead', num_classes=10, in_channels=16))
data_preprocessor = dict(mean=[127.5] * 3, std=[127.5] * 3)
"""


def test_benchmark_rows_markdown_and_json(tmp_path, capsys):
    from tools.analysis.benchmark_deploy import main
    configs = []
    for name, text in (('tiny_replknet', REPLKNET), ('convnext', CONVNEXT)):
        configs.append(str(tmp_path / f'{name}.py'))
        (tmp_path / f'{name}.py').write_text(text)
    docs = tmp_path / 'deploy.md'
    docs.write_text('# Deploy\n\nintro\n\n<!-- benchmark_deploy: begin -->\nold table\n'
                    '<!-- benchmark_deploy: end -->\n\n## after\n')
    out_json = tmp_path / 'bench.json'
    result = main(configs + ['--shape', '32', '32', '--batch', '2', '--rounds', '2',
                             '--iters', '1', '--threads', '1', '--out', str(docs), '--json',
                             str(out_json), '--labels', 'RepLK-tiny', 'ConvNeXt'])
    printed = capsys.readouterr().out
    forms = [(r.model, r.form, r.runtime) for r in result.rows]
    assert forms == [('RepLK-tiny', 'training', 'pytorch'),
                     ('RepLK-tiny', 'training', 'onnxruntime'),
                     ('RepLK-tiny', 'deploy', 'pytorch'), ('RepLK-tiny', 'deploy', 'onnxruntime'),
                     ('ConvNeXt', 'as is (no re-param)', 'pytorch'),
                     ('ConvNeXt', 'as is (no re-param)', 'onnxruntime')]
    for row in result.rows:
        assert row.images_per_s > 0 and len(row.round_images_per_s) == 2, row
        assert row.images_per_s == pytest.approx(max(row.round_images_per_s), rel=1e-3)
        assert min(row.round_images_per_s) <= row.median_images_per_s <= row.images_per_s + 1e-3
    # merging the 3x3 branches and BNs removes parameters
    assert result.rows[2].params < result.rows[0].params
    assert 'round 2/2' in printed and result.threads == 1
    text = docs.read_text()
    assert text.startswith('# Deploy\n\nintro\n\n') and text.endswith('\n\n## after\n')
    assert 'old table' not in text and '| RepLK-tiny | deploy |' in text
    assert '1 threads' in text and 'load average' in text
    saved = json.loads(out_json.read_text())
    assert saved['batch'] == 2 and len(saved['rows']) == 6 and 'benchmark_deploy.py' in \
        saved['command']


def test_benchmark_rejects_bad_input(tmp_path):
    import torch

    from replk_mm.deploy.benchmark import benchmark_deploy
    from tools.analysis.benchmark_deploy import main
    config = tmp_path / 'convnext.py'
    config.write_text(CONVNEXT)
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='no CUDA device'):
            main([str(config), '--device', 'cuda', '--out', 'none', '--json', 'none'])
    with pytest.raises(ValueError, match='one distinct label'):
        benchmark_deploy([str(config)], labels=['a', 'b'])
    with pytest.raises(ValueError, match='batch'):
        benchmark_deploy([str(config)], batch=0)
    with pytest.raises(SystemExit, match='does not exist'):
        main([str(tmp_path / 'missing.py'), '--out', 'none', '--json', 'none'])
