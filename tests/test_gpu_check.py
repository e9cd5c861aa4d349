"""The GPU check (tools/analysis/gpu_check.sh) runs end to end in its dry mode on the CPU (tiny
sizes, Triton in its interpreter), in a process where every OpenMMLab import fails: what it
writes is complete and its fitted cost tables are valid for the cost model."""
import json
import os
import subprocess
import sys

import pytest
from conftest import BLOCK_OPENMMLAB, REPO

from replk_mm.ops import cost_model

pytest.importorskip('triton')

def test_gpu_check_dry_run(tmp_path):
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'sitecustomize.py').write_text(BLOCK_OPENMMLAB)  # imported at interpreter start
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(site))
    for var in ('TRITON_INTERPRET', 'REPLK_DW_CONV_BACKEND', 'REPLK_DW_CONV_CACHE'):
        env.pop(var, None)
    proc = subprocess.run(['bash', 'tools/analysis/gpu_check.sh', str(out), '--dry-run'],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / 'gpu_check.json').read_text())
    assert results['dry_run'] and not results.get('errors'), results.get('errors')
    assert results['environment']['triton_interpret'] == '1'

    corr = results['correctness']
    assert corr['failures'] == []
    checked = {(e['backend'], e['dtype']) for e in corr['summary']}
    assert checked == {(b, d) for b in ('native', 'padded', 'fft', 'triton', 'auto')
                       for d in ('float32', 'bfloat16')}
    assert all(e['max_err']['dw'] > 0 for e in corr['summary'])  # errors were really computed

    rows = results['table1']['rows']
    assert {(r['mode'], r['k']) for r in rows} == {(m, k) for m in ('fwd', 'fwd+bwd')
                                                   for k in (3, 5)}
    assert all(set(r['ms']) == {'cudnn', 'native', 'padded', 'fft', 'triton', 'auto'}
               for r in rows)
    assert 'ratio_big_over_small' in results['targets']

    e2e = results['e2e']
    assert e2e['train_step_s']['auto'] > 0 and e2e['deploy_inference_s']['auto'] > 0

    costs = json.loads((out / 'dw_conv_costs.json').read_text())
    (entry, ) = cost_model.check_tables(costs, 'dw_conv_costs.json').values()
    assert {'native', 'fft', 'triton'} <= set(entry['tables']['float32'])

    report = (out / 'gpu_check.md').read_text()
    for heading in ('Correctness against cuDNN', 'Table 1 setting', 'Targets', 'end to end',
                    'Cost-model constants'):
        assert heading in report, heading
    assert (out / 'gpu_check.log').stat().st_size > 0
