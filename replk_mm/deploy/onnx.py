"""ONNX export of re-parameterized models, checked by onnxruntime against PyTorch.

The exporter is torch's default one (``torch.onnx.export(..., dynamo=True)``, built on
``torch.export``); the TorchScript exporter is deprecated and cannot export a pyramid pooling
head with dynamic shapes at all. Under export, ``replk_mm.ops`` runs every depth-wise conv as
plain ``F.conv2d`` (``torch.compiler.is_compiling()`` is true under ``torch.export``), so the
graph holds standard ``Conv`` nodes: no custom op, no autotuning, no backend choice.

With ``dynamic=True`` batch, height and width are symbolic (``torch.export.Dim``), and every
``nn.AdaptiveAvgPool2d`` is replaced by :class:`ExportableAdaptiveAvgPool2d` in the exported
copy (see its module for why).

The check: PyTorch's outputs (the training form and the re-parameterized form) and
onnxruntime's on a random batch at the export size, a second random batch at another size and
batch when dynamic, and a real image when given. The difference of two outputs is
``max |a - b| / max |b|`` (relative to the reference's largest magnitude: element-wise
relative errors are meaningless near zero); it must stay below ``rtol``
(:data:`DEFAULT_RTOL`).
"""
import copy
import os
import os.path as osp
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..apis.builder import reparameterize
from .adaptive_pool import replace_adaptive_avg_pools
from .models import as_outputs, image_to_input, load_deploy_model, output_names, random_input

# float32 through ~30 layers of 31x31 convs, with merged BNs and another summation order in
# onnxruntime: a tolerance above the differences seen (docs/deploy.md), far below a wrong graph.
DEFAULT_RTOL = 1e-4
INSTALL_HINT = ("install the onnx extra: pip install 'replk_mm[onnx]' (onnx, onnxruntime, "
                'onnxscript); tools/setup_env.sh installs it')
STANDARD_DOMAINS = ('', 'ai.onnx')
CONTROL_FLOW_OPS = ('If', 'Loop', 'Scan')
INPUT_NAME = 'input'


class ExportCheckError(RuntimeError):
    """The exported graph is not plain ONNX or its outputs differ from PyTorch's."""


def require_onnx():
    """Import onnx, onnxruntime and onnxscript, or raise an ImportError saying how to
    install them."""
    modules = {}
    for name in ('onnx', 'onnxruntime', 'onnxscript'):
        try:
            modules[name] = __import__(name)
        except ImportError as exc:
            raise ImportError(f'{name} is not installed ({exc}); {INSTALL_HINT}') from exc
    return modules


@dataclass
class GraphReport:
    """What an exported ONNX graph holds.

    Attributes:
        op_counts: ``domain::op`` -> number of nodes ('' domain written as the op alone).
        custom_ops: nodes outside the standard ONNX domain.
        control_flow: If / Loop / Scan nodes.
        convs: (kernel_h, kernel_w, depthwise) -> number of Conv nodes.
        input_dims: the input's dims (ints, or names of symbolic dims).
    """
    op_counts: Dict[str, int]
    custom_ops: List[str]
    control_flow: List[str]
    convs: Dict[Tuple[int, int, bool], int]
    input_dims: List[object]

    @property
    def plain(self):
        return not self.custom_ops and not self.control_flow

    def large_depthwise(self, min_kernel=5):
        """Depth-wise Conv nodes with a kernel side >= ``min_kernel``: kernel -> count."""
        return {k[:2]: n for k, n in sorted(self.convs.items())
                if k[2] and max(k[:2]) >= min_kernel}


def _node_attribute(node, name, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            return attribute
    return default


def inspect_onnx(path):
    """A :class:`GraphReport` of the ONNX file ``path`` (weights are not loaded)."""
    onnx = require_onnx()['onnx']
    model = onnx.load(path, load_external_data=False)
    graph = model.graph
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    ops, custom, control, convs = Counter(), [], [], Counter()
    for node in graph.node:
        key = node.op_type if node.domain in STANDARD_DOMAINS else f'{node.domain}::{node.op_type}'
        ops[key] += 1
        if node.domain not in STANDARD_DOMAINS:
            custom.append(key)
        if node.op_type in CONTROL_FLOW_OPS:
            control.append(node.op_type)
        if node.op_type == 'Conv' and node.domain in STANDARD_DOMAINS:
            weight = shapes.get(node.input[1])
            kernel = _node_attribute(node, 'kernel_shape')
            kernel = list(kernel.ints) if kernel is not None else (weight or [0, 0, 0, 0])[2:]
            group = _node_attribute(node, 'group')
            group = group.i if group is not None else 1
            depthwise = group > 1 and weight is not None and weight[1] == 1
            convs[(int(kernel[0]), int(kernel[1]), bool(depthwise))] += 1
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    return GraphReport(dict(ops), custom, control, dict(convs), dims)


def executed_convs(graph, example):
    """The ``nn.Conv2d`` calls of one forward, ``{(kernel_h, kernel_w, depthwise): count}``,
    and that forward's output."""
    calls = Counter()

    def hook(module, args, output):
        depthwise = module.groups > 1 and module.groups == module.in_channels
        calls[(*module.kernel_size, depthwise)] += 1

    handles = [m.register_forward_hook(hook) for m in graph.modules()
               if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            out = graph(example)
    finally:
        for handle in handles:
            handle.remove()
    return dict(calls), out


def export_onnx(graph, example, out, *, dynamic=False, output_names=None, opset=None,
                metadata=None):
    """Export ``graph`` (an eval-mode module with one tensor input) to the ONNX file ``out``.

    Args:
        graph (nn.Module): The module to export (not modified: a copy is adapted when dynamic).
        example (Tensor): An input (N x 3 x H x W) to trace with.
        out (str): The .onnx path; weights go to ``out + '.data'`` only above 2 GB.
        dynamic (bool): Symbolic batch, height and width.
        output_names (list[str], optional): Names of the graph outputs.
        opset (int, optional): ONNX opset (default: the exporter's).
        metadata (dict, optional): Strings stored in the model's ``metadata_props``.

    Returns:
        str: ``out``.
    """
    require_onnx()
    graph = graph.eval()
    dynamic_shapes = None
    if dynamic:
        graph = copy.deepcopy(graph)
        replace_adaptive_avg_pools(graph)
        dim = torch.export.Dim
        dynamic_shapes = {'inputs': {0: dim('batch', min=1, max=1024),
                                     2: dim('height', min=32, max=16384),
                                     3: dim('width', min=32, max=16384)}}
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    program = torch.onnx.export(
        graph, (example, ), dynamo=True, input_names=[INPUT_NAME], output_names=output_names,
        dynamic_shapes=dynamic_shapes, opset_version=opset, verbose=False)
    for key, value in (metadata or {}).items():
        program.model.metadata_props[str(key)] = str(value)
    program.save(out)
    return out


class OnnxRunner:
    """An onnxruntime session on an exported graph (CPU unless ``providers`` say otherwise)."""

    def __init__(self, path, threads=None, providers=('CPUExecutionProvider', )):
        ort = require_onnx()['onnxruntime']
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=list(providers))
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, inputs):
        array = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else inputs
        return tuple(self.session.run(None, {self.input_name: np.ascontiguousarray(array)}))


@dataclass
class Difference:
    """Largest difference between two sets of outputs, over all outputs."""
    max_abs: float
    max_rel: float  # max |a - b| / max |b|, the worst output

    def __str__(self):
        return f'max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}'


def difference(actual, reference):
    """:class:`Difference` of ``actual`` to ``reference`` (tuples of arrays / tensors)."""
    actual, reference = as_outputs(actual), as_outputs(reference)
    if len(actual) != len(reference):
        raise ExportCheckError(f'{len(actual)} outputs vs {len(reference)} in PyTorch')
    max_abs = max_rel = 0.0
    for a, b in zip(actual, reference):
        a = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, np.float64)
        b = np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, np.float64)
        if a.shape != b.shape:
            raise ExportCheckError(f'output shape {a.shape} vs {b.shape} in PyTorch')
        abs_diff = float(np.abs(a - b).max()) if a.size else 0.0
        scale = float(np.abs(b).max()) if b.size else 0.0
        max_abs = max(max_abs, abs_diff)
        max_rel = max(max_rel, abs_diff / scale if scale > 0 else abs_diff)
    return Difference(max_abs, max_rel)


@dataclass
class CheckResult:
    """One input of the check: onnxruntime vs the deploy form and vs the training form."""
    name: str
    shape: Tuple[int, ...]
    vs_deploy: Difference
    vs_training: Difference


@dataclass
class ExportReport:
    """What :func:`export_and_check` did."""
    out: str
    task: str
    input_shape: Tuple[int, int]
    dynamic: bool
    merged: int
    output_names: List[str]
    graph: GraphReport
    torch_convs: Dict[Tuple[int, int, bool], int]
    checks: List[CheckResult] = field(default_factory=list)
    rtol: float = DEFAULT_RTOL

    @property
    def worst(self):
        return max((max(c.vs_deploy.max_rel, c.vs_training.max_rel) for c in self.checks),
                   default=0.0)

    @property
    def passed(self):
        return self.graph.plain and self.convs_match and self.worst <= self.rtol

    @property
    def convs_match(self):
        return self.graph.convs == self.torch_convs

    def summary(self):
        lines = [f'{self.out}: {self.task}, input {INPUT_NAME} {self.graph.input_dims} '
                 f'({"dynamic" if self.dynamic else "static"}), outputs {self.output_names}',
                 f'merged {self.merged} re-parameterizable modules; ops '
                 + ', '.join(f'{k} {v}' for k, v in sorted(self.graph.op_counts.items())),
                 'large depth-wise Conv nodes (kernel: count): '
                 + (', '.join(f'{h}x{w}: {n}' for (h, w), n in
                              self.graph.large_depthwise().items()) or 'none')]
        for check in self.checks:
            lines.append(f'{check.name} {list(check.shape)}: onnxruntime vs PyTorch deploy form '
                         f'{check.vs_deploy}; vs training form {check.vs_training}')
        lines.append(f'{"PASSED" if self.passed else "FAILED"}: worst relative difference '
                     f'{self.worst:.3g} (tolerance {self.rtol:g})')
        return '\n'.join(lines)

    def problems(self):
        found = []
        if self.graph.custom_ops:
            found.append(f'custom ops {sorted(set(self.graph.custom_ops))}')
        if self.graph.control_flow:
            found.append(f'control flow {sorted(set(self.graph.control_flow))}')
        if not self.convs_match:
            found.append(f'Conv nodes {self.graph.convs} differ from the convs PyTorch runs '
                         f'{self.torch_convs}')
        if self.worst > self.rtol:
            found.append(f'relative difference {self.worst:.3g} above the tolerance '
                         f'{self.rtol:g}')
        return found


def second_shape(shape):
    """Another input size for the dynamic check: both sides changed, aspect changed."""
    h, w = shape
    return h + 32, w + 64


def export_and_check(config, checkpoint, out, *, shape=None, dynamic=False, image=None,
                     det_output='neck', rtol=DEFAULT_RTOL, threads=None, cfg_options=None,
                     progress=print):
    """Export the re-parameterized model of ``config`` + ``checkpoint`` to ``out`` and check
    it with onnxruntime (see the module docstring).

    Args:
        config (str): mmseg / mmdet / mmpretrain config (path or ``pkg::`` name).
        checkpoint (str | None): Whole-model checkpoint (training or deploy form as the
            config builds it); None exports the initial weights.
        out (str): The .onnx file.
        shape (tuple[int, int], optional): (H, W); default the config's test size.
        dynamic (bool): Symbolic batch / height / width, checked at a second size too.
        image (str, optional): A real image to check on as well.
        det_output (str): 'neck' or 'head' (single-stage detectors only), for detectors.
        rtol (float): Largest allowed ``max |onnx - torch| / max |torch|``.
        threads (int, optional): onnxruntime threads.
        cfg_options (dict, optional): Config overrides.
        progress (Callable[[str], None]): Receives progress lines.

    Returns:
        ExportReport (``passed`` tells the verdict).

    Raises:
        ExportCheckError: the graph is not plain ONNX or differs from PyTorch above ``rtol``
            (the message holds the whole report).
    """
    require_onnx()
    if not rtol > 0:
        raise ValueError(f'rtol must be positive, got {rtol!r}')
    start = time.perf_counter()
    say = progress

    def progress(message):
        say(f'{message} [{time.perf_counter() - start:.0f} s]')

    if image is not None and not osp.isfile(image):
        raise FileNotFoundError(f'image {image} does not exist')
    progress(f'[export] building {config}')
    deploy = load_deploy_model(config, checkpoint, shape, det_output, cfg_options,
                               reparam=False)
    shape, graph = deploy.input_shape, deploy.graph
    inputs = [('random', random_input(shape))]
    if dynamic:
        inputs.append(('random (2nd size)', random_input(second_shape(shape), batch=2,
                                                         seed=1)))
    if image:
        inputs.append((f'image {osp.basename(image)}',
                       image_to_input(image, shape, deploy.preprocess)))
    progress('[export] PyTorch outputs of the training form')
    with torch.no_grad():
        training = [as_outputs(graph(x)) for _, x in inputs]
    names = output_names(graph, training[0])
    merged = reparameterize(deploy.model)
    progress(f'[export] re-parameterized: {merged} modules merged')
    torch_convs, first = executed_convs(graph, inputs[0][1])
    with torch.no_grad():
        deployed = [as_outputs(first)] + [as_outputs(graph(x)) for _, x in inputs[1:]]
    pre = deploy.preprocess
    metadata = dict(task=deploy.task, scope=deploy.scope, config=str(config),
                    checkpoint=str(checkpoint), input_channel_order=pre.channel_order,
                    mean=list(pre.mean), std=list(pre.std), input_shape=list(shape),
                    dynamic=dynamic, producer='replk_mm')
    progress(f'[export] exporting to {out} ({"dynamic" if dynamic else "static"} '
             f'{shape[0]}x{shape[1]}; torch.onnx dynamo exporter)')
    export_onnx(graph, inputs[0][1], out, dynamic=dynamic, output_names=names,
                metadata=metadata)
    report = ExportReport(out=out, task=deploy.task, input_shape=shape, dynamic=dynamic,
                          merged=merged, output_names=names,
                          graph=inspect_onnx(out), torch_convs=torch_convs, rtol=rtol)
    progress('[export] running the graph with onnxruntime')
    runner = OnnxRunner(out, threads=threads)
    for (name, x), train_out, deploy_out in zip(inputs, training, deployed):
        got = runner(x)
        report.checks.append(CheckResult(name, tuple(x.shape), difference(got, deploy_out),
                                         difference(got, train_out)))
    say(report.summary())
    if not report.passed:
        raise ExportCheckError(f'{out}: the export check failed: '
                               + '; '.join(report.problems()) + '\n' + report.summary())
    return report


__all__ = ['DEFAULT_RTOL', 'INSTALL_HINT', 'ExportCheckError', 'require_onnx', 'GraphReport',
           'inspect_onnx', 'executed_convs', 'export_onnx', 'OnnxRunner', 'Difference',
           'difference', 'CheckResult', 'ExportReport', 'export_and_check', 'second_shape']
