"""Write the results tables of the docs from the metafiles (model-index.yml) and the measured
FLOPs (docs/flops.json, written by `tools/analysis/get_flops.py --all --json docs/flops.json`).

Each table sits between two markers in its page and is replaced as a whole; the rest of the
page is left alone:

    <!-- BEGIN GENERATED TABLE NAME (tools/docs/results_tables.py) -->
    ...
    <!-- END GENERATED TABLE NAME -->

    python tools/docs/results_tables.py            # rewrite the tables
    python tools/docs/results_tables.py --check    # exit 1 and name the stale tables
"""
import argparse
import json
import os.path as osp
import sys
from dataclasses import dataclass
from typing import Callable

from replk_mm.utils.metafile import load_model_index, parse_hw

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_INDEX = osp.join(REPO, 'model-index.yml')
FLOPS_JSON = osp.join(REPO, 'docs', 'flops.json')
BEGIN = '<!-- BEGIN GENERATED TABLE {} (tools/docs/results_tables.py) -->'
END = '<!-- END GENERATED TABLE {} -->'


@dataclass(frozen=True)
class Table:
    name: str  # the marker name
    doc: str  # page, relative to the repository
    render: Callable  # (index, measured) -> markdown lines


def _num(value, fmt='{}'):
    return '-' if value is None else fmt.format(value)


def _link_config(entry, doc):
    path = osp.relpath(osp.join(REPO, entry.config), osp.dirname(osp.join(REPO, doc)))
    return f'[{osp.basename(entry.config)}]({path})'


def _weights(entry):
    if not entry.weights:
        return '-'
    return f'[`{entry.weights_file or "download"}`]({entry.weights})'


def _of(index, metafile):
    return [m for m in index if osp.relpath(m.metafile, REPO) == metafile]


def _seg_rows(index, measured, doc='docs/segmentation.md'):
    lines = ['| config | backbone | pretrain | dataset | crop | test | paper mIoU ss / ms | '
             'paper params | paper FLOPs | released checkpoint |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for m in _of(index, 'configs/metafile_seg.yml'):
        meta = m.metadata
        lines.append(
            f'| {_link_config(m, doc)} | {meta["Backbone"]} | {meta["Pretrain"]} | '
            f'{m.results[0].dataset} | {meta["Crop Size"]} | {meta["Test Mode"]} | '
            f'{m.metric("mIoU")} / {m.metric("mIoU(ms)")} | {meta["Parameters (M)"]}M | '
            f'{_num(meta.get("FLOPs (G)"), "{}G")} | {_weights(m)} |')
    return lines


def _det_rows(index, measured, doc='docs/detection.md'):
    lines = ['| config | method | backbone | pretrain | paper AP box / mask | paper params | '
             'paper FLOPs | released checkpoint |',
             '|---|---|---|---|---|---|---|---|']
    for m in _of(index, 'configs/metafile_det.yml'):
        meta = m.metadata
        mask = m.metric('mask AP') if m.has_metric('mask AP') else '-'
        lines.append(
            f'| {_link_config(m, doc)} | {meta["Method"]} {meta["Epochs"] // 12}x | '
            f'{meta["Backbone"]} | {meta["Pretrain"]} | {m.metric("box AP")} / {mask} | '
            f'{meta["Parameters (M)"]}M | {_num(meta.get("FLOPs (G)"), "{}G")} | '
            f'{_weights(m)} |')
    return lines


UNIREPLKNET = 'configs/metafile_unireplknet.yml'


def _released(entry):
    """The released model: its file name and link, or the link alone where the official docs
    do not name the file (``Official Weights URL``)."""
    if entry.weights:
        return _weights(entry)
    url = entry.metadata.get('Official Weights URL')
    return f'[download]({url})' if url else '-'


def _uni_rows(index, doc, metric, middle):
    """One row per UniRepLKNet entry with ``metric``: config, backbone and pretrain, then the
    ``middle`` columns (``(header, cell(entry))`` pairs), then the paper's params and FLOPs and
    the released checkpoint."""
    columns = [('config', lambda m: _link_config(m, doc)),
               ('backbone', lambda m: m.metadata['Backbone']),
               ('pretrain', lambda m: m.metadata['Pretrain']),
               *middle,
               ('paper params', lambda m: f'{m.metadata["Parameters (M)"]}M'),
               ('paper FLOPs', lambda m: f'{m.metadata["FLOPs (G)"]}G'),
               ('released checkpoint', _released)]
    lines = ['| ' + ' | '.join(header for header, _ in columns) + ' |',
             '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(str(cell(m)) for _, cell in columns) + ' |'
              for m in _of(index, UNIREPLKNET) if m.has_metric(metric)]
    return lines


def _uni_seg_rows(index, measured, doc='docs/unireplknet.md'):
    return _uni_rows(index, doc, 'mIoU', [
        ('crop', lambda m: m.metadata['Crop Size']),
        ('test', lambda m: m.metadata['Test Mode']),
        ('paper mIoU ss / ms', lambda m: f'{m.metric("mIoU")} / {m.metric("mIoU(ms)")}')])


def _uni_det_rows(index, measured, doc='docs/unireplknet.md'):
    return _uni_rows(index, doc, 'box AP', [
        ('paper AP box / mask', lambda m: f'{m.metric("box AP")} / {m.metric("mask AP")}')])


def _uni_imagenet_rows(index, measured, doc='docs/unireplknet.md'):
    return _uni_rows(index, doc, 'Top 1 Accuracy', [
        ('resolution', lambda m: m.metadata['Resolution']),
        ('paper top-1', lambda m: m.metric('Top 1 Accuracy'))])


def _flops_rows(index, measured, doc='docs/flops.md'):
    lines = ['| config | input (HxW) | params built / paper (M) | FLOPs counted / paper (G) | '
             'FLOPs difference | counted |',
             '|---|---|---|---|---|---|']
    for m in index:
        meta = m.metadata
        paper_flops = meta.get('FLOPs (G)')
        shape = meta.get('FLOPs Input (HxW)')
        # the form the paper counted: training by default; `Counted Form: deploy` where the
        # paper's numbers are those of the re-parameterized model (UniRepLKNet)
        deploy = meta.get('Counted Form') == 'deploy'
        got = measured.get(m.config, {}).get('deploy' if deploy else 'train')
        if got is None and paper_flops is None:
            continue  # nothing to compare
        if got is None:
            lines.append(f'| {_link_config(m, doc)} | {_num(shape)} | - / '
                         f'{_num(meta.get("Parameters (M)"))} | not measured / '
                         f'{_num(paper_flops)} | - | - |')
            continue
        h, w = got['input_shape']
        flops = got['flops'] / 1e9
        same_input = shape is None or parse_hw(shape) == (h, w)
        diff = f'{100 * (flops / paper_flops - 1):+.1f}%' if paper_flops and same_input \
            else '-'
        lines.append(
            f'| {_link_config(m, doc)} | {h}x{w} | {got["params"] / 1e6:.4g} / '
            f'{_num(meta.get("Parameters (M)"))} | {flops:.4g} / {_num(paper_flops)} | {diff} | '
            f'{got["counted"]}{" (deploy form)" if deploy else ""} |')
    return lines


def _source(entry):
    return entry.extra.get('Results Source', '-')


def _count(row, fmt):
    return '-' if row is None else fmt(row)


def _vs(ours, paper):
    """``ours`` beside ``paper`` with the difference, e.g. ``79.53 (+0.3%)``."""
    if ours is None:
        return 'not counted'
    if paper is None:
        return f'{ours:.4g}'
    return f'{ours:.4g} ({100 * (ours / paper - 1):+.1f}%)'


def _kernel_ablation_rows(index, measured, doc='docs/kernel_ablation.md'):
    lines = ['| config | kernels | paper top-1 / mIoU | paper params (M) | ours, deploy form | '
             'ours, training form | paper FLOPs (G) | ours, deploy form | ours, training form '
             '| source |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for m in _of(index, 'configs/metafile_kernel_ablation.yml'):
        meta = m.metadata
        rows = measured.get(m.config, {})
        paper_p, paper_f = meta.get('Parameters (M)'), meta.get('FLOPs (G)')
        metric = m.metric('Top 1 Accuracy') if m.has_metric('Top 1 Accuracy') \
            else m.metric('mIoU')

        def ours(form, key, scale):
            row = rows.get(form)
            if row is None:
                return None
            value = row[key]
            if key == 'params':  # Table 5 counts UperNet without its auxiliary head
                value -= row.get('auxiliary_head_params', 0)
            return value / scale

        lines.append(
            f'| {_link_config(m, doc)} | {meta["Large Kernels"]} | {metric:.2f} | '
            f'{_num(paper_p)} | {_vs(ours("deploy", "params", 1e6), paper_p)} | '
            f'{_vs(ours("train", "params", 1e6), paper_p)} | {_num(paper_f)} @ '
            f'{meta["FLOPs Input (HxW)"]} | {_vs(ours("deploy", "flops", 1e9), paper_f)} | '
            f'{_vs(ours("train", "flops", 1e9), paper_f)} | {_source(m)} |')
    return lines


def _lk_mobilenet_v2_rows(index, measured, doc='docs/lk_mobilenet_v2.md'):
    lines = ['| config | width | depth-wise kernels | 3x3 re-param | shortcuts | paper top-1 / '
             'Cityscapes mIoU | paper params (M) / FLOPs (G) | ours, deploy form: params (M) '
             '/ FLOPs (G) | source |',
             '|---|---|---|---|---|---|---|---|---|']
    for m in _of(index, 'configs/metafile_lk_mobilenet_v2.yml'):
        meta = m.metadata
        if m.has_metric('Top 1 Accuracy'):
            metric = f'{m.metric("Top 1 Accuracy"):.2f}'
        elif m.has_metric('mIoU'):
            metric = f'{m.metric("mIoU"):.2f}'
        else:
            metric = 'not reported'
        paper = '-' if 'Parameters (M)' not in meta else \
            f'{meta["Parameters (M)"]} / {meta["FLOPs (G)"]}'
        rows = measured.get(m.config, {})
        # a dilated model has nothing to merge: its training form is its deploy form
        row = rows.get('deploy') or (rows.get('train') if 'Dilation' in meta else None)
        ours = '-' if row is None else f'{row["params"] / 1e6:.3f} / {row["flops"] / 1e9:.4f}'
        lines.append(
            f'| {_link_config(m, doc)} | {meta["Backbone"].split()[-1]} | '
            f'{meta["Depth-wise Kernels"]} | {"3x3" if meta["Small Kernel"] == 3 else "-"} | '
            f'{meta["Shortcuts"]} | {metric} | {paper} | {ours} | {_source(m)} |')
    return lines


TABLES = (
    Table('seg-results', 'docs/segmentation.md', _seg_rows),
    Table('det-results', 'docs/detection.md', _det_rows),
    Table('flops', 'docs/flops.md', _flops_rows),
    Table('kernel-ablation', 'docs/kernel_ablation.md', _kernel_ablation_rows),
    Table('lk-mobilenet-v2', 'docs/lk_mobilenet_v2.md', _lk_mobilenet_v2_rows),
    Table('unireplknet-seg', 'docs/unireplknet.md', _uni_seg_rows),
    Table('unireplknet-det', 'docs/unireplknet.md', _uni_det_rows),
    Table('unireplknet-imagenet', 'docs/unireplknet.md', _uni_imagenet_rows),
)


def load_measured(path=FLOPS_JSON):
    """config (as in the metafiles) -> {'train': row, 'deploy': row}: the get_flops.py results
    at the paper's input size (the training form, and the re-parameterized form where it was
    counted with --deploy)."""
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        results = json.load(f)['results']
    measured = {}
    for r in results:
        paper = r.get('paper') or {}
        if not r.get('config') or (paper.get('input_shape') and
                                   list(paper['input_shape']) != list(r['input_shape'])):
            continue
        measured.setdefault(r['config'], {})['deploy' if r.get('deploy') else 'train'] = r
    return measured


def render(text, table, lines, doc):
    begin, end = BEGIN.format(table.name), END.format(table.name)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f'{doc} must contain the markers\n{begin}\n{end}\nonce each, in this '
                         'order, where the table goes')
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return head + begin + '\n' + '\n'.join(lines) + '\n' + end + tail


def update(check=False, index_path=MODEL_INDEX, measured_path=FLOPS_JSON, repo=REPO):
    """Rewrite (or with ``check`` only compare) every table; returns the stale pages."""
    index = load_model_index(index_path)
    measured = load_measured(measured_path)
    stale = []
    for table in TABLES:
        path = osp.join(repo, table.doc)
        with open(path) as f:
            text = f.read()
        new = render(text, table, table.render(index, measured), table.doc)
        if new != text:
            stale.append(f'{table.doc} ({table.name})')
            if not check:
                with open(path, 'w') as f:
                    f.write(new)
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 if a table differs from the metafiles')
    args = parser.parse_args(argv)
    stale = update(check=args.check)
    if args.check and stale:
        print('out of date (run `python tools/docs/results_tables.py`): ' + ', '.join(stale))
        return 1
    print(('rewrote: ' + ', '.join(stale)) if stale else 'all tables up to date')
    return 0


if __name__ == '__main__':
    sys.exit(main())
