"""Deploy speed: images/s of the training form and the re-parameterized form of each model, in
PyTorch eager and in onnxruntime.

Every (model, form, runtime) is warmed up (the first eager calls also let ``replk_mm.ops``
choose its conv backends), then all of them are timed in turn, round after round
(interleaved, so that a change of machine load hits all alike), and each keeps its fastest
round (``min`` of the per-round times). Models without re-parameterizable modules (Swin,
ConvNeXt...) have one form. Weights are the configs' initial ones: speed does not depend on
them.
"""
import copy
import json
import os
import os.path as osp
import platform
import re
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

import torch

from ..apis.builder import count_params, reparameterize
from .models import load_deploy_model

RUNTIMES = ('pytorch', 'onnxruntime')
DEVICES = ('cpu', 'cuda')
MARK_BEGIN = '<!-- benchmark_deploy: begin (written by tools/analysis/benchmark_deploy.py) -->'
MARK_END = '<!-- benchmark_deploy: end -->'
MARKED = re.compile(r'<!-- benchmark_deploy: begin.*?-->.*?<!-- benchmark_deploy: end -->',
                    re.DOTALL)


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
    info = dict(platform=platform.platform(), python=platform.python_version(),
                torch=torch.__version__, threads=threads, cpus=os.cpu_count())
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
    if device == 'cuda':
        torch.cuda.synchronize()


def _pytorch_runner(graph, inputs, device):
    def run():
        with torch.inference_mode():
            out = graph(inputs)
        _sync(device)
        return out
    return run


def _onnx_runner(graph, inputs, path, device, threads):
    from .onnx import OnnxRunner, export_onnx, require_onnx
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
                start = time.perf_counter()
                for _ in range(iters):
                    runner.run()
                seconds = (time.perf_counter() - start) / iters
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


def write_results(result, markdown_file=None, json_file=None, command=''):
    """Write the JSON and put the Markdown section into ``markdown_file``: in place of the
    section between the ``benchmark_deploy`` begin / end markers if the file has them (the rest
    is kept), else appended."""
    if json_file:
        os.makedirs(osp.dirname(osp.abspath(json_file)), exist_ok=True)
        with open(json_file, 'w') as f:
            json.dump(dict(asdict(result), command=command), f, indent=2)
    if markdown_file:
        section = f'{MARK_BEGIN}\n{markdown_section(result, command)}\n{MARK_END}'
        text = ''
        if osp.isfile(markdown_file):
            with open(markdown_file) as f:
                text = f.read()
        found = MARKED.search(text)
        if found:
            text = text[:found.start()] + section + text[found.end():]
        else:
            text = (text.rstrip('\n') + '\n\n' if text else '') + section + '\n'
        os.makedirs(osp.dirname(osp.abspath(markdown_file)), exist_ok=True)
        with open(markdown_file, 'w') as f:
            f.write(text)
    return markdown_file, json_file


__all__ = ['SpeedRow', 'BenchmarkResult', 'benchmark_deploy', 'markdown_table',
           'markdown_section', 'write_results', 'machine_info']
