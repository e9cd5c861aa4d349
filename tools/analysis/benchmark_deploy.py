"""Deploy speed: images/s of the training form and the re-parameterized form of each model, in
PyTorch eager and in onnxruntime; and the paper's Table 6 throughput setting beside the paper's
own numbers. Writes a Markdown section into docs/deploy.md (between its markers) and the raw
numbers to docs/deploy_benchmark.json.

    # the paper's comparison on this machine: RepLKNet-31B vs Swin-B and ConvNeXt-B
    python tools/analysis/benchmark_deploy.py CONFIG_31B \
        mmpretrain::swin_transformer/swin-base_16xb64_in1k.py \
        mmpretrain::convnext/convnext-base_32xb128_in1k.py \
        --labels RepLKNet-31B Swin-B ConvNeXt-B --shape 224 224 --batch 8
    # Table 6's setting (FP32, batch 64, 224 and 384 inputs, RepLKNet-31B and Swin-B), the
    # paper's 2080Ti numbers printed beside ours (a GPU run: add --device cuda)
    python tools/analysis/benchmark_deploy.py --paper-table6 --device cuda

CONFIG: mmseg / mmdet / mmpretrain configs (paths or pkg::names); weights are the configs'
initial ones (speed does not depend on them). --device cuda times PyTorch on the GPU (and
onnxruntime with its CUDA provider if onnxruntime-gpu is installed).

How it measures: every (model, form, runtime) is warmed up (the first eager calls also let
``replk_mm.ops`` choose its conv backends), then all of them are timed in turn, round after
round (interleaved, so that a change of machine load hits all alike), and each keeps its
fastest round (``min`` of the per-round times; the median is reported beside it). Models
without re-parameterizable modules (Swin, ConvNeXt...) have one form. Everything runs in FP32.
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import re
import shlex
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from time import perf_counter
from typing import Callable, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
DOCS = osp.join(REPO, 'docs', 'deploy.md')
JSON = osp.join(REPO, 'docs', 'deploy_benchmark.json')

RUNTIMES = ('pytorch', 'onnxruntime')
DEVICES = ('cpu', 'cuda')
# docs sections this tool rewrites: the general table and the Table 6 comparison
SECTIONS = ('benchmark_deploy', 'benchmark_deploy_table6')

# RepLKNet arXiv 2203.06717v1, Table 6: throughput (examples/s) "tested with FP32 and a batch
# size of 64 on 2080Ti", by (model, input side).
PAPER_TABLE6_SOURCE = 'RepLKNet arXiv 2203.06717v1, Table 6 (FP32, batch 64, one 2080Ti)'
PAPER_TABLE6 = {('RepLKNet-31B', 224): 295.5, ('Swin-B', 224): 226.2,
                ('RepLKNet-31B', 384): 97.0, ('Swin-B', 384): 67.9}
PAPER_TABLE6_BATCH = 64
# The models of Table 6 at each input side: (label, config). Swin-B at 384 is the 384px model
# (window 12), as in the Swin paper the table compares against.
TABLE6_MODELS = {
    224: (('RepLKNet-31B', 'configs/imagenet/replknet-31B_32xb64_in1k.py'),
          ('Swin-B', 'mmpretrain::swin_transformer/swin-base_16xb64_in1k.py')),
    384: (('RepLKNet-31B', 'configs/imagenet/replknet-31B_32xb32_in1k-384px.py'),
          ('Swin-B', 'mmpretrain::swin_transformer/swin-base_16xb64_in1k-384px.py')),
}


def _markers(section):
    begin = f'<!-- {section}: begin (written by tools/analysis/benchmark_deploy.py) -->'
    end = f'<!-- {section}: end -->'
    found = re.compile(rf'<!-- {section}: begin.*?-->.*?<!-- {section}: end -->', re.DOTALL)
    return begin, end, found


@dataclass
class SpeedRow:
    """One (model, form, runtime): its best images/s, or why it was not measured."""
    model: str
    form: str
    runtime: str
    params: int
    images_per_s: Optional[float] = None
    median_images_per_s: Optional[float] = None
    round_images_per_s: List[float] = field(default_factory=list)
    note: str = ''


@dataclass
class BenchmarkResult:
    rows: List[SpeedRow]
    device: str
    batch: int
    shapes: dict
    rounds: int
    iters: int
    threads: int
    machine: dict


@dataclass
class _Runner:
    row: SpeedRow
    run: Callable[[], object]
    best: float = float('inf')


def machine_info(device, threads):
    """What the numbers depend on: CPU / GPU, threads, versions, load."""
    import torch
    info = dict(platform=platform.platform(), python=platform.python_version(),
                torch=torch.__version__, threads=threads, cpus=os.cpu_count(),
                cpu_capability=torch.backends.cpu.get_cpu_capability())
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        info['cpu'] = names[0] if names else platform.processor()
    except OSError:
        info['cpu'] = platform.processor()
    if hasattr(os, 'getloadavg'):
        info['load_before'] = [round(x, 2) for x in os.getloadavg()]
    if device == 'cuda':
        info['gpu'] = torch.cuda.get_device_name()
    try:
        import onnxruntime
        info['onnxruntime'] = onnxruntime.__version__
    except ImportError:
        info['onnxruntime'] = None
    return info


def _sync(device):
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def _pytorch_runner(graph, inputs, device):
    import torch

    def run():
        with torch.inference_mode():
            out = graph(inputs)
        _sync(device)
        return out
    return run


def _onnx_runner(graph, inputs, path, device, threads):
    from replk_mm.deploy import OnnxRunner, export_onnx, require_onnx
    ort = require_onnx()['onnxruntime']
    providers = ['CPUExecutionProvider']
    if device == 'cuda':
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise RuntimeError('onnxruntime has no CUDAExecutionProvider here (install '
                               'onnxruntime-gpu)')
        providers.insert(0, 'CUDAExecutionProvider')
    export_onnx(copy.deepcopy(graph).cpu(), inputs.cpu(), path)
    runner = OnnxRunner(path, threads=threads, providers=providers)
    array = inputs.cpu().numpy()
    return lambda: runner(array)


def _label(config):
    return osp.splitext(osp.basename(str(config).split('::')[-1]))[0]


def benchmark_deploy(configs, *, device='cpu', batch=1, shape=None, rounds=5, iters=3,
                     threads=None, onnx=True, labels=None, work_dir=None, progress=print):
    """Measure images/s of each config's model, training vs deploy form, PyTorch vs
    onnxruntime.

    Args:
        configs (list[str]): mmseg / mmdet / mmpretrain configs (paths or ``pkg::`` names).
        device (str): 'cpu' or 'cuda' (PyTorch on that device; onnxruntime with its CUDA
            provider there, if installed).
        batch (int): Images per call.
        shape (tuple[int, int], optional): (H, W); default each config's test size.
        rounds (int): Timed rounds (the fastest counts).
        iters (int): Calls per round and measurement.
        threads (int, optional): torch and onnxruntime CPU threads (default: torch's).
        onnx (bool): Also measure onnxruntime (exports each form to ``work_dir``).
        labels (list[str], optional): Model names (default from the config file names).
        work_dir (str, optional): Where the .onnx files go (default: a temporary folder).
        progress (Callable[[str], None]): Receives progress lines.

    Returns:
        BenchmarkResult
    """
    import torch

    from replk_mm.apis.builder import count_params, reparameterize
    from replk_mm.deploy import load_deploy_model
    if device not in DEVICES:
        raise ValueError(f'device must be one of {DEVICES}, got {device!r}')
    if device == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda: no CUDA device is available to torch here')
    for name, value in (('batch', batch), ('rounds', rounds), ('iters', iters)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    if not configs:
        raise ValueError('benchmark_deploy needs at least one config')
    labels = list(labels) if labels else [_label(c) for c in configs]
    if len(labels) != len(configs) or len(set(labels)) != len(labels):
        raise ValueError(f'need one distinct label per config, got {labels} for {configs}')
    previous_threads = torch.get_num_threads()
    threads = threads or previous_threads
    torch.set_num_threads(threads)
    temporary = None
    if onnx and work_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix='replk_bench_')
        work_dir = temporary.name
    try:
        machine = machine_info(device, threads)
        runners, shapes = [], {}
        for config, label in zip(configs, labels):
            progress(f'[bench] {label}: building {config}')
            deploy = load_deploy_model(config, None, shape, reparam=False)
            shapes[label] = list(deploy.input_shape)
            inputs = torch.randn(batch, 3, *deploy.input_shape, device=device)
            forms = [('training', deploy.graph.to(device))]
            deployed = copy.deepcopy(deploy.graph)
            if reparameterize(deployed):
                forms.append(('deploy', deployed))
            else:
                forms = [('as is (no re-param)', forms[0][1])]
            for form, graph in forms:
                params = count_params(graph)
                row = SpeedRow(label, form, 'pytorch', params)
                runners.append(_Runner(row, _pytorch_runner(graph.eval(), inputs, device)))
                if not onnx:
                    continue
                row = SpeedRow(label, form, 'onnxruntime', params)
                path = osp.join(work_dir, f'{label}.{form.split()[0]}.onnx')
                progress(f'[bench] {label} ({form}): exporting to ONNX')
                try:
                    runners.append(_Runner(row, _onnx_runner(graph, inputs, path, device,
                                                             threads)))
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    row.note = f'not measured: {type(exc).__name__}: {str(exc)[:200]}'
                    progress(f'[bench] {label} ({form}) onnxruntime {row.note}')
                    runners.append(_Runner(row, None))
        for runner in runners:
            if runner.run is not None:
                progress(f'[bench] warm-up {runner.row.model} ({runner.row.form}, '
                         f'{runner.row.runtime})')
                for _ in range(2):
                    runner.run()
        for r in range(1, rounds + 1):
            for runner in runners:
                if runner.run is None:
                    continue
                start = perf_counter()
                for _ in range(iters):
                    runner.run()
                seconds = (perf_counter() - start) / iters
                runner.best = min(runner.best, seconds)
                speed = batch / seconds
                runner.row.round_images_per_s.append(round(speed, 3))
                progress(f'[bench] round {r}/{rounds} {runner.row.model} ({runner.row.form}, '
                         f'{runner.row.runtime}): {speed:.2f} img/s')
        for runner in runners:
            if runner.run is not None:
                runner.row.images_per_s = batch / runner.best
                runner.row.median_images_per_s = statistics.median(
                    runner.row.round_images_per_s)
        if hasattr(os, 'getloadavg'):
            machine['load_after'] = [round(x, 2) for x in os.getloadavg()]
        return BenchmarkResult(rows=[r.row for r in runners], device=device, batch=batch,
                               shapes=shapes, rounds=rounds, iters=iters, threads=threads,
                               machine=machine)
    finally:
        torch.set_num_threads(previous_threads)
        if temporary is not None:
            temporary.cleanup()


def markdown_table(result):
    """The result as a Markdown table, one row per model and form."""
    keyed = {(r.model, r.form, r.runtime): r for r in result.rows}
    lines = ['| model | form | params (M) | input | PyTorch eager (img/s) | onnxruntime '
             '(img/s) |', '|---|---|---|---|---|---|']
    # cells: the fastest round (what counts), the median of the rounds in brackets
    seen = []
    for row in result.rows:
        if (row.model, row.form) in seen:
            continue
        seen.append((row.model, row.form))
        cells = []
        for runtime in RUNTIMES:
            cell = keyed.get((row.model, row.form, runtime))
            if cell is None:
                cells.append('not measured')
            elif cell.images_per_s is None:
                cells.append(cell.note or 'not measured')
            else:
                cells.append(f'{cell.images_per_s:.2f} ({cell.median_images_per_s:.2f})')
        h, w = result.shapes[row.model]
        lines.append(f'| {row.model} | {row.form} | {row.params / 1e6:.2f} | {h}x{w} | '
                     + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def markdown_section(result, command=''):
    """The table with the conditions it was measured under."""
    m = result.machine
    where = m.get('gpu') if result.device == 'cuda' else m.get('cpu')
    lines = [f'Measured with `{command}`' if command else 'Measured',
             f'on {where} ({result.device}, {result.threads} threads, {m.get("cpus")} CPUs), '
             f'batch {result.batch}, fastest of {result.rounds} interleaved rounds of '
             f'{result.iters} calls; torch {m.get("torch")}, onnxruntime '
             f'{m.get("onnxruntime")}; load average (1/5/15 min) {m.get("load_before")} before,'
             f' {m.get("load_after")} after. Images/s of the fastest round (median of the '
             'rounds in brackets).', '', markdown_table(result)]
    return '\n'.join(lines)


def table6_rows(results):
    """Table 6's comparison: one row per (model, form) measured with PyTorch, the paper's
    number beside it where Table 6 has one for that label and input side. Returns a list of
    (model, side, form, measured images/s or None, paper images/s or None)."""
    rows = []
    for result in results:
        for row in result.rows:
            if row.runtime != 'pytorch':
                continue
            side = result.shapes[row.model][0]
            rows.append((row.model, side, row.form, row.images_per_s,
                         PAPER_TABLE6.get((row.model, side))))
    return rows


def device_name(result):
    """The device the numbers were measured on, in words."""
    m = result.machine
    if result.device == 'cuda':
        return f"{m.get('gpu')} (cuda)"
    return f"{m.get('cpu')} (cpu, {result.threads} threads)"


def table6_markdown(results):
    """Table 6's comparison as a Markdown table, the device named in the header."""
    where = device_name(results[0])
    batch = results[0].batch
    lines = [f'| model | input | form | measured, {where}, batch {batch} (img/s) | '
             f'paper, 2080Ti, batch {PAPER_TABLE6_BATCH} (img/s) |',
             '|---|---|---|---|---|']
    for model, side, form, measured, paper in table6_rows(results):
        lines.append(f"| {model} | {side}x{side} | {form} | "
                     f"{'not measured' if measured is None else f'{measured:.2f}'} | "
                     f"{'-' if paper is None else f'{paper:.1f}'} |")
    return '\n'.join(lines)


def table6_section(results, command=''):
    """The Table 6 comparison with its conditions and the paper's source."""
    first = results[0]
    m = first.machine
    lines = [f'Measured with `{command}`' if command else 'Measured',
             f'on {device_name(first)}, FP32, batch {first.batch}, fastest of {first.rounds} '
             f'interleaved rounds of {first.iters} calls; torch {m.get("torch")}; load average '
             f'(1/5/15 min) {m.get("load_before")} before. Paper: {PAPER_TABLE6_SOURCE}.',
             '', table6_markdown(results)]
    return '\n'.join(lines)


def replace_section(markdown_file, section, body):
    """Put ``body`` into ``markdown_file`` between the ``section`` begin / end markers (the
    rest of the file is kept), or append it with its markers."""
    begin, end, found_re = _markers(section)
    block = f'{begin}\n{body}\n{end}'
    text = ''
    if osp.isfile(markdown_file):
        with open(markdown_file) as f:
            text = f.read()
    found = found_re.search(text)
    if found:
        text = text[:found.start()] + block + text[found.end():]
    else:
        text = (text.rstrip('\n') + '\n\n' if text else '') + block + '\n'
    os.makedirs(osp.dirname(osp.abspath(markdown_file)), exist_ok=True)
    with open(markdown_file, 'w') as f:
        f.write(text)


def write_results(results, markdown_file=None, json_file=None, command='', table6=False):
    """Write the JSON (one entry per input size) and the Markdown section (the tables, or
    Table 6's comparison with ``table6``) into ``markdown_file``."""
    if json_file:
        os.makedirs(osp.dirname(osp.abspath(json_file)), exist_ok=True)
        with open(json_file, 'w') as f:
            json.dump(dict(command=command, table6=table6,
                           results=[asdict(r) for r in results]), f, indent=2)
    if markdown_file:
        if table6:
            replace_section(markdown_file, SECTIONS[1], table6_section(results, command))
        else:
            body = '\n\n'.join(markdown_section(r, command) for r in results)
            replace_section(markdown_file, SECTIONS[0], body)
    return markdown_file, json_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='*', metavar='CONFIG',
                        help='configs to measure (with --paper-table6, default: its models)')
    parser.add_argument('--labels', nargs='+', help='model names (default: config names)')
    parser.add_argument('--device', choices=DEVICES, default='cpu')
    parser.add_argument('--batch', type=int,
                        help=f'images per call (default: 1; {PAPER_TABLE6_BATCH} with '
                        '--paper-table6)')
    parser.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                        help="input size (default: each config's test size; with "
                        '--paper-table6: 224x224, then 384x384)')
    parser.add_argument('--paper-table6', action='store_true',
                        help="Table 6's setting: FP32, batch 64, 224 and 384 inputs, PyTorch "
                        'eager, RepLKNet-31B and Swin-B (or CONFIGs), the paper\'s numbers '
                        'printed beside the measured ones')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--iters', type=int, default=3, help='calls per round')
    parser.add_argument('--threads', type=int, help='CPU threads (default: torch\'s)')
    parser.add_argument('--no-onnx', action='store_true', help='PyTorch eager only')
    parser.add_argument('--work-dir', help='keep the exported .onnx files here')
    parser.add_argument('--out', default=DOCS,
                        help='Markdown file to put the table in (default: docs/deploy.md); '
                             "'none' to skip")
    parser.add_argument('--json', default=JSON, help="raw numbers (default: "
                        "docs/deploy_benchmark.json); 'none' to skip")
    args = parser.parse_args(argv)
    if args.paper_table6:
        if args.shape:
            parser.error('--paper-table6 measures at 224x224 and 384x384, the sizes of '
                         'Table 6; drop --shape')
        if args.configs and args.labels is None:
            parser.error('--paper-table6 with CONFIGs needs --labels (the paper\'s numbers '
                         "are found by label: 'RepLKNet-31B', 'Swin-B')")
        if args.batch is None:
            args.batch = PAPER_TABLE6_BATCH
    elif not args.configs:
        parser.error('give at least one CONFIG, or --paper-table6')
    if args.batch is None:
        args.batch = 1
    return args


def runs(args):
    """(shape, configs, labels) per benchmark run the arguments ask for."""
    if not args.paper_table6:
        return [(args.shape, args.configs, args.labels)]
    plan = []
    for side, models in TABLE6_MODELS.items():
        if args.configs:
            configs, labels = args.configs, args.labels
        else:
            labels = [label for label, _ in models]
            configs = [osp.join(REPO, config) if not config.startswith('mmpretrain::')
                       else config for _, config in models]
        plan.append(((side, side), configs, labels))
    return plan


def main(argv=None):
    args = parse_args(argv)
    results = []
    try:
        for shape, configs, labels in runs(args):
            results.append(benchmark_deploy(
                configs, device=args.device, batch=args.batch, shape=shape,
                rounds=args.rounds, iters=args.iters, threads=args.threads,
                onnx=not (args.no_onnx or args.paper_table6), labels=labels,
                work_dir=args.work_dir, progress=lambda message: print(message, flush=True)))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise SystemExit(f'benchmark_deploy.py: error: {exc}') from exc
    for result in results:
        print(markdown_table(result))
    if args.paper_table6:
        print(f'\nTable 6 setting, measured on {device_name(results[0])} beside '
              f'{PAPER_TABLE6_SOURCE}:')
        print(table6_markdown(results))
    argv = sys.argv[1:] if argv is None else argv
    command = 'python tools/analysis/benchmark_deploy.py ' + ' '.join(map(shlex.quote, argv))
    markdown = None if args.out == 'none' else args.out
    json_file = None if args.json == 'none' else args.json
    write_results(results, markdown, json_file, command=command, table6=args.paper_table6)
    for path in (markdown, json_file):
        if path:
            print(f'[bench] written to {path}')
    return results


if __name__ == '__main__':
    main()
