"""The model index is the one source of paper results, released checkpoints and their links.

Generic over every metafile model-index.yml lists: each is well formed, each config it names
exists and points back to its entry, every paper config (configs/**/*.py outside `_base_`
folders and configs/demo/) is in a metafile, configs carry no copies of results or download
links, and the docs tables are the ones tools/docs/results_tables.py writes from the
metafiles."""
import glob
import numbers
import os.path as osp
import re

import pytest

from replk_mm.utils.metafile import MetafileError, load_model_index, parse_hw

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
INDEX = load_model_index(osp.join(REPO, 'model-index.yml'))
ENTRIES = list(INDEX)
POINTER = '# Paper results and weights: {metafile} ({name})'


def _rel(path):
    return osp.relpath(path, REPO)


def paper_configs():
    """Every config under configs/ except bases (any `_base_` folder) and the CPU demos."""
    configs = glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    return sorted(_rel(c) for c in configs
                  if not {'_base_', 'demo'} & set(_rel(c).split(osp.sep)[1:-1]))


def test_index_lists_every_metafile():
    found = sorted(_rel(p) for p in glob.glob(osp.join(REPO, 'configs', '**', 'metafile*.yml'),
                                              recursive=True))
    assert found and sorted(_rel(p) for p in INDEX.metafiles) == found


def test_every_paper_config_is_in_a_metafile():
    listed = {_rel(INDEX.config_path(m)) for m in ENTRIES}
    missing = [c for c in paper_configs() if c not in listed]
    assert not missing, f'configs without a metafile entry (add them to a metafile): {missing}'


@pytest.mark.parametrize('entry', ENTRIES, ids=[m.name for m in ENTRIES])
def test_entry_config_exists_and_points_back(entry):
    path = INDEX.config_path(entry)
    assert osp.isfile(path), f'{entry.name}: Config {entry.config} does not exist'
    assert entry.name == osp.splitext(osp.basename(entry.config))[0]
    with open(path) as f:
        head = f.read().split('_base_')[0]
    pointer = POINTER.format(metafile=_rel(entry.metafile), name=entry.name)
    assert pointer in head, f'{entry.config} must say, in its header: {pointer}'


@pytest.mark.parametrize('entry', ENTRIES, ids=[m.name for m in ENTRIES])
def test_entry_is_complete(entry):
    meta = entry.metadata
    # an entry may have no Results yet (an experiment whose number no source gives)
    for result in entry.results:
        assert result.metrics and all(isinstance(v, numbers.Real) for v in
                                      result.metrics.values()), result
    if entry.weights is not None:
        assert entry.weights.startswith('https://'), entry.weights
        assert entry.weights_file and entry.weights_file.endswith('.pth')
    if 'Parameters (M)' in meta:
        assert isinstance(meta['Parameters (M)'], numbers.Real)
    if 'FLOPs (G)' in meta:
        assert isinstance(meta['FLOPs (G)'], numbers.Real)
        h, w = parse_hw(meta['FLOPs Input (HxW)'])  # where the paper counted them
        assert h > 0 and w > 0


def test_model_names_are_unique_and_configs_distinct():
    assert len({m.name for m in ENTRIES}) == len(ENTRIES)
    assert len({INDEX.config_path(m) for m in ENTRIES}) == len(ENTRIES)


@pytest.mark.parametrize('config', paper_configs())
def test_configs_hold_no_copies_of_results(config):
    """Results, released names and links live in the metafiles; a config only points there."""
    with open(osp.join(REPO, config)) as f:
        text = f.read()
    assert 'https://' not in text, f'{config}: links belong in the metafile'
    for name in ('paper_results', 'released_checkpoint'):
        assert not re.search(rf'^{name}\s*=', text, re.M), f'{config} defines {name}'
    entry = INDEX.find_config(osp.join(REPO, config))
    if entry is not None and entry.weights_file:
        assert entry.weights_file not in text, f'{config}: the released name is the metafile\'s'


def test_paper_flops_input_is_what_get_flops_uses():
    """tools/analysis/get_flops.py's default input size for each paper config is the size at
    which its metafile says the paper counted FLOPs."""
    from mmengine.config import Config

    from replk_mm.analysis import paper_input_shape
    checked = 0
    for entry in ENTRIES:
        if 'FLOPs Input (HxW)' not in entry.metadata:
            continue
        # the size comes from the config's data only: no need to import its custom modules
        cfg = Config.fromfile(INDEX.config_path(entry), import_custom_modules=False)
        assert paper_input_shape(cfg) == parse_hw(entry.metadata['FLOPs Input (HxW)']), \
            entry.name
        checked += 1
    assert checked >= 10


def test_docs_tables_are_generated_from_the_metafiles():
    from tools.docs.results_tables import update
    stale = update(check=True)
    assert not stale, f'run `python tools/docs/results_tables.py`; out of date: {stale}'


def test_reader_reports_bad_metafiles(tmp_path):
    good = ('Collections:\n  - Name: C\nModels:\n  - Name: a\n    In Collection: C\n'
            '    Config: configs/a.py\n')
    (tmp_path / 'm1.yml').write_text(good)
    (tmp_path / 'm2.yml').write_text(good)
    (tmp_path / 'index.yml').write_text('Import:\n  - m1.yml\n  - m2.yml\n')
    with pytest.raises(MetafileError, match="'a' is used twice"):
        load_model_index(str(tmp_path / 'index.yml'))
    (tmp_path / 'index.yml').write_text('Import:\n  - missing.yml\n')
    with pytest.raises(FileNotFoundError, match='missing.yml'):
        load_model_index(str(tmp_path / 'index.yml'))
    (tmp_path / 'm1.yml').write_text(good.replace('In Collection: C', 'In Collection: D'))
    (tmp_path / 'index.yml').write_text('Import:\n  - m1.yml\n')
    with pytest.raises(MetafileError, match='does not define'):
        load_model_index(str(tmp_path / 'index.yml'))
    (tmp_path / 'm1.yml').write_text(good + '    Weights:\n      File: x.pth\n')
    with pytest.raises(MetafileError, match='Weights must be the checkpoint URL'):
        load_model_index(str(tmp_path / 'index.yml'))
    (tmp_path / 'm1.yml').write_text(good.replace('    Config: configs/a.py\n', ''))
    with pytest.raises(MetafileError, match="has no 'Config'"):
        load_model_index(str(tmp_path / 'index.yml'))


def test_metric_lookup_names_what_exists():
    entry = INDEX['upernet_31b_ade20k']
    assert entry.metric('mIoU') == 49.9
    with pytest.raises(KeyError, match="no metric 'box AP'.*mIoU"):
        entry.metric('box AP')
