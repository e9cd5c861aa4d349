"""Fast depth-wise conv (replk_mm.ops): exactness of every backend, dispatch, module contract."""
import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import BLOCK_OPENMMLAB

from replk_mm.ops import (
    DepthwiseConv2d,
    _log,
    build_dw_conv,
    clear_dispatch_cache,
    config,
    cost_model,
    decision_cache,
    depthwise_conv2d,
    dispatch,
    dispatch_cache_info,
    get_default_backend,
    keys,
    set_default_backend,
    timing,
)
from replk_mm.ops.backends import BACKENDS, auto_candidates, fft
from replk_mm.ops.devices import device_class
from replk_mm.ops.function import NATIVE_PLAN
from replk_mm.ops.geometry import crop_geometry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_BACKENDS = ['native', 'padded', 'fft', 'auto']


@pytest.fixture(autouse=True)
def _isolated_dispatch(monkeypatch):
    """No disk cache, no environment override, a fresh decision cache per test."""
    for var in (config.ENV_BACKEND, config.ENV_CACHE, config.ENV_AUTOTUNE,
                config.ENV_TUNE_LIMIT, config.ENV_COSTS, 'TRITON_INTERPRET'):
        monkeypatch.delenv(var, raising=False)
    deterministic = torch.are_deterministic_algorithms_enabled()
    clear_dispatch_cache()
    with set_default_backend(None):
        yield
    clear_dispatch_cache()
    torch.use_deterministic_algorithms(deterministic)


def _cases():
    """Every odd kernel 3..31 on a map smaller and one larger than it; batch 1 and 2,
    channels_last, bias on/off and non-'same' padding spread over the cases."""
    cases = []
    for i, k in enumerate(range(3, 32, 2)):
        small = (max(1, k // 3), k // 2 + 2)
        large = (k + 3, k + 6)
        for j, (h, w) in enumerate((small, large)):
            pad = [k // 2, k // 2, 0, k // 2 + 2][(i + j) % 4]
            if h + 2 * pad < k or w + 2 * pad < k:
                pad = k // 2
            cases.append((k, 1 + (i + j) % 2, 2 + j, h, w, pad, (i + j) % 2 == 0, i % 3 == 0))
    return cases


def _run(fn, x, w, b, g):
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    b = None if b is None else b.detach().requires_grad_()
    out = fn(x, w, b)
    out.backward(g)
    return out.detach(), x.grad, w.grad, None if b is None else b.grad


def _inputs(k, n, c, h, w, bias, channels_last, dtype=torch.float64, scale=1.0):
    x = torch.randn(n, c, h, w, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c, 1, k, k, dtype=dtype) * scale
    b = torch.randn(c, dtype=dtype) if bias else None
    return x, weight, b


@pytest.mark.parametrize('backend', CPU_BACKENDS)
@pytest.mark.parametrize('case', _cases(),
                         ids=lambda c: 'k{}-n{}-c{}-{}x{}-p{}-b{}-cl{}'.format(*c))
def test_matches_conv2d_float64(backend, case):
    k, n, c, h, w, pad, bias, channels_last = case
    x, weight, b = _inputs(k, n, c, h, w, bias, channels_last)
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    g = torch.randn(n, c, ho, wo, dtype=torch.float64)
    ref = _run(lambda x, w, b: F.conv2d(x, w, b, 1, pad, 1, c), x, weight, b, g)
    out = _run(lambda x, w, b: depthwise_conv2d(x, w, b, 1, pad, backend=backend),
               x, weight, b, g)
    for name, r, o in zip(('out', 'dx', 'dw', 'db'), ref, out):
        if r is None:
            assert o is None
            continue
        assert o.shape == r.shape, name
        torch.testing.assert_close(o, r, rtol=1e-10, atol=1e-10, msg=name)
    if channels_last and min(ho, wo) > 1:
        assert out[0].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('backend', ['padded', 'fft', 'auto'])
@pytest.mark.parametrize('k,size', [(31, 20), (27, 14), (13, 7), (5, 16)])
def test_float32_realistic(backend, k, size):
    """fp32 against an fp64 reference, with kaiming-like weights (FFT rounding is global)."""
    x, weight, b = _inputs(k, 2, 8, size, size, True, False, scale=1 / k)
    g = torch.randn(2, 8, size, size, dtype=torch.float64)
    ref = _run(lambda x, w, b: F.conv2d(x, w, b, 1, k // 2, 1, 8), x, weight, b, g)
    out = _run(lambda x, w, b: depthwise_conv2d(x, w, b, 1, k // 2, backend=backend),
               x.float(), weight.float(), b.float(), g.float())
    for name, r, o in zip(('out', 'dx', 'dw', 'db'), ref, out):
        assert o.dtype == torch.float32
        err = (o.double() - r).abs().max() / r.abs().max()
        assert err < 2e-6, (name, err.item())


@pytest.mark.parametrize('backend', ['padded', 'fft', 'auto'])
@pytest.mark.parametrize('k,size', [(3, 4), (7, 3), (5, 6)])
def test_gradcheck(backend, k, size):
    x, weight, b = _inputs(k, 2, 2, size, size + 1, True, False)
    x.requires_grad_(), weight.requires_grad_(), b.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, w, b: depthwise_conv2d(x, w, b, 1, k // 2, backend=backend), (x, weight, b))


@pytest.mark.parametrize('name', ['native', 'padded', 'fft', 'native_nhwc'])
def test_phase_functions(name):
    """Each backend's phases on their own (the channels_last one has no weight gradient), with
    symmetric and asymmetric (cropped-kernel) padding."""
    from replk_mm.ops.geometry import Geometry
    backend = BACKENDS[name]
    x, w, b = _inputs(5, 2, 3, 7, 6, True, False)
    for geom in (Geometry(7, 6, 5, 5, 2, 2, 2, 2), Geometry(7, 6, 5, 5, 3, 1, 0, 4)):
        xp = F.pad(x, geom.pads).requires_grad_()
        wr = w.clone().requires_grad_()
        ref = F.conv2d(xp, wr, b, 1, 0, 1, 3)
        g = torch.randn_like(ref)
        ref_dx, ref_dw = torch.autograd.grad(ref, (xp, wr), g)
        ref_dx = ref_dx[:, :, geom.pt:geom.pt + 7, geom.pl:geom.pl + 6]
        torch.testing.assert_close(backend.fwd(x, w, b, geom), ref.detach())
        phases = getattr(backend, 'PHASES', ('fwd', 'dx', 'dw'))
        if 'dx' in phases:
            torch.testing.assert_close(backend.dx(x, g, w, geom), ref_dx)
        if 'dw' in phases:
            torch.testing.assert_close(backend.dw(x, g, w, geom), ref_dw)


def test_crop_is_exact_and_zero_grads_outside():
    assert crop_geometry(7, 7, 31, 31, 15, 15)[2].kh == 13  # 2 * 7 - 1
    assert crop_geometry(56, 56, 31, 31, 15, 15)[2].kh == 31  # nothing to crop
    row, col, geom = crop_geometry(3, 9, 11, 11, 5, 5)
    assert (row, geom.kh, geom.pt, geom.pb) == (3, 5, 2, 2)
    assert (col, geom.kw) == (0, 11)
    x, weight, _ = _inputs(31, 2, 3, 4, 5, False, False)
    weight.requires_grad_()
    depthwise_conv2d(x, weight, None, 1, 15, backend='fft').sum().backward()
    mask = torch.zeros(31, 31, dtype=torch.bool)
    mask[15 - 3:15 + 4, 15 - 4:15 + 5] = True
    assert weight.grad[:, :, ~mask].abs().max() == 0
    assert weight.grad[:, :, mask].abs().min() > 0


def test_no_grad_forward_and_unbatched():
    x, weight, b = _inputs(9, 1, 3, 12, 10, True, False)
    ref = F.conv2d(x, weight, b, 1, 4, 1, 3)
    for backend in CPU_BACKENDS:
        with torch.no_grad():
            torch.testing.assert_close(depthwise_conv2d(x, weight, b, 1, 4, backend=backend), ref)
        out = depthwise_conv2d(x[0], weight, b, 1, 4, backend=backend)
        torch.testing.assert_close(out, ref[0])


def test_stride_two_runs_natively():
    x, weight, b = _inputs(7, 2, 3, 11, 11, True, False)
    for backend in CPU_BACKENDS:
        out = depthwise_conv2d(x, weight, b, 2, 3, backend=backend)
        torch.testing.assert_close(out, F.conv2d(x, weight, b, 2, 3, 1, 3))


def test_autocast_bf16_like_conv2d():
    x, weight, _ = _inputs(13, 1, 4, 16, 16, False, False, torch.float32, scale=0.1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ref = F.conv2d(x, weight, None, 1, 6, 1, 4)
        out = depthwise_conv2d(x, weight, None, 1, 6, backend='fft')
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.float(), rtol=2e-2, atol=2e-2)


def test_export_and_trace_see_plain_conv2d():
    m = build_dw_conv(4, 7, backend='fft')
    x = torch.randn(2, 4, 9, 9)
    ref = F.conv2d(x, m.weight, None, 1, 3, 1, 4)
    graph = torch.export.export(m, (x, )).graph
    calls = [str(n.target) for n in graph.nodes if n.op == 'call_function']
    assert calls == ['aten.conv2d.default']
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch.jit.trace is deprecated in recent torch
        traced = torch.jit.trace(m, x)
    torch.testing.assert_close(traced(x), ref)


# ---------------------------------------------------------------------------- module contract
@pytest.mark.parametrize('bias', [False, True])
def test_module_is_a_conv2d_with_the_same_parameters(bias):
    m = build_dw_conv(6, 31, bias=bias, backend='fft')
    ref = nn.Conv2d(6, 6, 31, padding=15, groups=6, bias=bias)
    assert isinstance(m, nn.Conv2d)
    assert {k: v.shape for k, v in m.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()}
    ref.load_state_dict(m.state_dict())
    x = torch.randn(2, 6, 9, 9)
    torch.testing.assert_close(m(x), ref(x), rtol=1e-5, atol=1e-5)
    assert "backend='fft'" in repr(m)
    assert build_dw_conv(6, 3).backend is None
    assert DepthwiseConv2d(6, 5, padding=1).padding == (1, 1)


def test_clear_errors():
    with pytest.raises(ValueError, match='odd'):
        build_dw_conv(4, 4)
    with pytest.raises(ValueError, match='odd'):
        DepthwiseConv2d(4, 30)
    with pytest.raises(ValueError, match='odd'):
        depthwise_conv2d(torch.randn(1, 4, 8, 8), torch.randn(4, 1, 4, 4), padding=2)
    with pytest.raises(ValueError, match='not a depth-wise call'):
        depthwise_conv2d(torch.randn(1, 4, 8, 8), torch.randn(4, 2, 3, 3), padding=1)
    with pytest.raises(ValueError, match='not a depth-wise call'):
        depthwise_conv2d(torch.randn(1, 4, 8, 8), torch.randn(8, 1, 3, 3), padding=1)
    with pytest.raises(ValueError, match='unknown depth-wise conv backend'):
        build_dw_conv(4, 3, backend='cutlass')
    with pytest.raises(ValueError, match='unknown depth-wise conv backend'):
        set_default_backend('cudnn')


# ---------------------------------------------------------------------------- dispatch
def _spy(monkeypatch, name):
    calls = []
    original = BACKENDS[name].fwd

    def spy(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(BACKENDS[name], 'fwd', spy)
    return calls


def test_backend_precedence(monkeypatch):
    x, weight, _ = _inputs(7, 1, 2, 9, 9, False, False)
    calls = {name: _spy(monkeypatch, name) for name in ('padded', 'fft')}
    assert get_default_backend() == 'auto'
    monkeypatch.setenv(config.ENV_BACKEND, 'fft')
    assert get_default_backend() == 'fft'
    depthwise_conv2d(x, weight, padding=3)
    assert calls['fft'] and not calls['padded']
    with set_default_backend('padded'):  # code beats the environment
        depthwise_conv2d(x, weight, padding=3)
        assert calls['padded']
        calls['fft'].clear()
        build_dw_conv(2, 7, backend='fft').double()(x)  # an explicit backend beats both
        assert calls['fft']
    assert get_default_backend() == 'fft'
    monkeypatch.setenv(config.ENV_BACKEND, 'bogus')
    assert get_default_backend() == 'auto'


def test_auto_decisions_are_cached(monkeypatch):
    x, weight, _ = _inputs(11, 2, 3, 12, 12, False, False)
    weight.requires_grad_()
    depthwise_conv2d(x, weight, padding=5).sum().backward()
    info = dispatch_cache_info()
    assert (info['misses'], info['measured'], info['hits']) == (2, 2, 0)  # fwd and dw
    assert (info['routes'], info['route_hits']) == (1, 0)
    decisions = info['decisions']
    assert sorted(k.split('|')[0] for k in decisions) == ['dw', 'fwd']
    assert all(v in ('native', 'padded', 'fft', 'native_nhwc') for v in decisions.values())
    for _ in range(3):
        depthwise_conv2d(x, weight, padding=5).sum().backward()
    info = dispatch_cache_info()
    # the same signature: served by its route, the decision cache is not asked again
    assert (info['misses'], info['measured'], info['hits']) == (2, 2, 0)
    assert (info['routes'], info['route_hits']) == (1, 3)
    assert info['decisions'] == decisions
    with torch.no_grad():  # another signature: only the forward is decided, and it is a hit
        depthwise_conv2d(x, weight, padding=5)
    info = dispatch_cache_info()
    assert (info['hits'], info['routes'], info['route_hits']) == (1, 2, 3)
    depthwise_conv2d(x.contiguous(memory_format=torch.channels_last), weight, padding=5)
    assert dispatch_cache_info()['misses'] == 4  # the layout is part of the key


def _plan(x, k, need_dx=True, need_dw=True):
    """The plan 'auto' gives a 'same'-padded k x k conv of ``x``."""
    row, col, geom = crop_geometry(x.shape[2], x.shape[3], k, k, k // 2, k // 2)
    w = torch.zeros(x.shape[1], 1, geom.kh, geom.kw, dtype=x.dtype)
    return dispatch.plan_for('auto', x, w, None, geom, need_dx, need_dw, (k, k),
                             (k // 2, k // 2))


@pytest.fixture
def measured_cpu_constants(monkeypatch):
    """The cost model's CPU constants count as measured for this CPU (whatever it is)."""
    monkeypatch.setattr(cost_model, 'MEASURED_CPU_CLASSES',
                        (device_class(torch.device('cpu')), ))


@pytest.fixture
def unmeasured_cpu_constants(monkeypatch):
    monkeypatch.setattr(cost_model, 'MEASURED_CPU_CLASSES', ())


SHAPES = [(31, 56), (13, 7), (3, 28), (27, 14)]


def test_model_mode_is_deterministic(monkeypatch, measured_cpu_constants):
    monkeypatch.setenv(config.ENV_AUTOTUNE, 'model')
    seen = []
    for _ in range(2):
        clear_dispatch_cache()
        for k, size in SHAPES:
            x = torch.randn(2, 4, size, size, requires_grad=True)
            w = torch.randn(4, 1, k, k, requires_grad=True)
            depthwise_conv2d(x, w, padding=k // 2).sum().backward()
        info = dispatch_cache_info()
        assert info['measured'] == 0 and info['modelled'] == 12 and info['tune_seconds'] == 0
        assert info['decisions'] == {}  # untimed decisions are not cached as measured ones
        seen.append([_plan(torch.randn(2, 4, size, size), k) for k, size in SHAPES])
    assert seen[0] == seen[1]
    assert seen[0][0].dw == 'fft'  # oneDNN's 31x31 weight gradient is a slow gemm


def test_untimed_without_measured_constants_is_native(monkeypatch, unmeasured_cpu_constants):
    monkeypatch.setenv(config.ENV_AUTOTUNE, 'model')
    for k, size in SHAPES:
        assert _plan(torch.randn(2, 4, size, size), k) == NATIVE_PLAN
    info = dispatch_cache_info()
    assert info['measured'] == info['modelled'] == 0 and info['native_fallbacks'] == 12


@pytest.mark.parametrize('constants', ['measured', 'unmeasured'])
def test_tune_limit_then_untimed(monkeypatch, constants):
    monkeypatch.setattr(cost_model, 'MEASURED_CPU_CLASSES', (
        device_class(torch.device('cpu')), ) if constants == 'measured' else ())
    monkeypatch.setenv(config.ENV_TUNE_LIMIT, '1')
    x = torch.randn(1, 2, 10, 10)
    depthwise_conv2d(x, torch.randn(2, 1, 5, 5), padding=2)
    w = torch.randn(2, 1, 7, 7)
    torch.testing.assert_close(depthwise_conv2d(x, w, padding=3), F.conv2d(x, w, None, 1, 3, 1, 2))
    info = dispatch_cache_info()
    assert info['measured'] == 1 and info['size'] == 1 and info['tune_seconds'] > 0
    assert (info['modelled'], info['native_fallbacks']) == (
        (1, 0) if constants == 'measured' else (0, 1))


def test_deterministic_algorithms_never_time(monkeypatch, measured_cpu_constants):
    """With torch.use_deterministic_algorithms(True) (mmengine's deterministic=True) choices
    come from the cost model, never from timing, and ignore earlier measured decisions."""
    timed = []

    def fake_measure(phase, names, *args):
        timed.append(phase)
        return 'padded', {}, {}, 0.0

    monkeypatch.setattr(timing, 'measure_phase', fake_measure)
    monkeypatch.setattr(timing, 'mixed_plan_pays', lambda *args: True)
    x = torch.randn(2, 4, 56, 56)
    w = torch.randn(4, 1, 31, 31, requires_grad=True)
    depthwise_conv2d(x, w, padding=15).sum().backward()
    assert timed == ['fwd', 'dw'] and set(dispatch_cache_info()['decisions'].values()) == {
        'padded'}
    torch.use_deterministic_algorithms(True)
    calls = []
    for name in ('padded', 'fft', 'native'):
        monkeypatch.setattr(BACKENDS[name], 'dw', lambda *a, name=name, f=BACKENDS[name].dw:
                            calls.append(name) or f(*a))
    w.grad = None
    depthwise_conv2d(x, w, padding=15).sum().backward()
    assert timed == ['fwd', 'dw']  # nothing timed
    assert calls == ['fft']  # the cost model's choice, not the measured 'padded'
    info = dispatch_cache_info()
    assert info['measured'] == 2 and info['modelled'] == 2


def test_shape_buckets_bound_the_measurements(monkeypatch):
    """Multi-scale input: one measurement per (phase, shape bucket), not per input size."""
    timed = []
    monkeypatch.setattr(timing, 'measure_phase', lambda phase, names, x, *a: timed.append(
        tuple(x.shape)) or ('fft', {}, {}, 0.0))
    w = torch.randn(3, 1, 7, 7)
    sizes = [(h, w_) for h in range(40, 80, 3) for w_ in (44, 61, 70)]
    for h, wd in sizes:
        x = torch.randn(1, 3, h, wd)
        torch.testing.assert_close(depthwise_conv2d(x, w, padding=3),
                                   F.conv2d(x, w, None, 1, 3, 1, 3), rtol=1e-4, atol=1e-4)
    buckets = {(keys.bucket(h), keys.bucket(wd)) for h, wd in sizes}
    assert len(buckets) == 6 and len(timed) == len(buckets)
    info = dispatch_cache_info()
    assert info['measured'] == info['size'] == len(buckets) and info['routes'] == len(sizes)
    assert '|n1|c3|h39-53|w39-53|k7x7|p3,3' in ''.join(info['decisions'])


def test_buckets_cover_every_size_once():
    previous = keys.bucket(1)
    for v in range(1, 5000):
        b = keys.bucket(v)
        assert b.lo <= v < b.hi
        if v <= keys.EXACT_SIZE_UP_TO:
            assert (b.lo, b.hi) == (v, v + 1)
        else:
            assert b.hi / b.lo < 1.45
        if b != previous:
            assert b.lo == previous.hi  # contiguous, no overlap
            previous = b
    assert [str(keys.batch_bucket(n)) for n in (1, 2, 3, 5, 6, 16)] == [
        '1', '2', '3-5', '3-5', '6-11', '12-22']


def _cost_file(tmp_path, tables):
    path = tmp_path / 'costs.json'
    path.write_text(json.dumps(dict(version=cost_model.TABLE_VERSION, classes={
        'cuda:sm90': dict(measured_on='test', tables=tables)})))
    return str(path)


def test_measured_gpu_cost_tables(monkeypatch, tmp_path, caplog):
    cuda = torch.device('cuda')
    monkeypatch.setattr(cost_model, 'device_class', lambda device: 'cuda:sm90')
    assert not cost_model.has_measured_constants(cuda, 'float32')  # none shipped yet
    entry = {'small': [1e-5, 1e-12], 'medium': [1e-5, 1e-12], 'large': [1e-5, 1e-12]}
    slow = {kc: [1e-5, 1e-9] for kc in entry}
    tables = {'bfloat16': {'native': {'fwd': slow}, 'fft': {'fwd': entry},
                           'triton': {'fwd': slow}}}
    monkeypatch.setenv(config.ENV_COSTS, _cost_file(tmp_path, tables))
    assert cost_model.has_measured_constants(cuda, 'bfloat16')
    assert cost_model.has_measured_constants(cuda, 'float16')  # same element size stands in
    assert not cost_model.has_measured_constants(cuda, 'float32')
    geom = crop_geometry(32, 32, 31, 31, 15, 15)[2]
    call = cost_model.ConvCall(64, 384, 'bfloat16', 2, 'nchw', 'cuda', geom)
    assert cost_model.cheapest('fwd', ['native', 'fft', 'triton'], call, cuda) == 'fft'
    assert cost_model.cost('dw', 'fft', call, cuda) == float('inf')  # not measured: never
    bad = tmp_path / 'bad.json'
    bad.write_text('{"version": 1, "classes": {"cuda:sm90": {"tables": {"float32": '
                   '{"fft": {"fwd": {"huge": [1, 2]}}}}}}}')
    monkeypatch.setenv(config.ENV_COSTS, str(bad))
    _log.forget_logged()
    with caplog.at_level(logging.WARNING, logger='replk_mm.ops'):
        assert not cost_model.has_measured_constants(cuda, 'float32')
    assert 'bad entry cuda:sm90/float32/fft/fwd/huge' in caplog.text


def test_disk_cache(monkeypatch, tmp_path):
    path = tmp_path / 'sub' / 'autotune.json'
    monkeypatch.setenv(config.ENV_CACHE, str(path))
    x = torch.randn(1, 3, 10, 10, requires_grad=True)
    w = torch.randn(3, 1, 9, 9, requires_grad=True)
    depthwise_conv2d(x, w, padding=4).sum().backward()
    data = json.loads(path.read_text())
    assert data['version'] == decision_cache.CACHE_VERSION and len(data['entries']) == 3
    decisions = dispatch_cache_info()['decisions']
    clear_dispatch_cache()  # a new process, as far as the in-memory cache knows
    depthwise_conv2d(x, w, padding=4).sum().backward()
    info = dispatch_cache_info()
    assert info['measured'] == 0 and info['hits'] == 3 and info['decisions'] == decisions
    path.write_text('{"version": -1, "entries": {}}')  # another version: ignored, rewritten
    clear_dispatch_cache()
    depthwise_conv2d(x, w, padding=4).sum().backward()
    assert dispatch_cache_info()['measured'] == 3
    assert json.loads(path.read_text())['version'] == decision_cache.CACHE_VERSION


def test_unavailable_backend_falls_back_once(caplog):
    x, weight, b = _inputs(5, 1, 2, 8, 8, True, False)
    ref = F.conv2d(x, weight, b, 1, 2, 1, 2)
    _log.forget_logged()
    with caplog.at_level(logging.WARNING, logger='replk_mm.ops'):
        for _ in range(3):
            torch.testing.assert_close(depthwise_conv2d(x, weight, b, 1, 2, backend='triton'),
                                       ref)
    lines = [r for r in caplog.records if 'triton' in r.getMessage()]
    assert len(lines) == 1 and 'falling back' in lines[0].getMessage()


def test_bad_environment_values_are_named(monkeypatch, caplog):
    monkeypatch.setenv(config.ENV_AUTOTUNE, 'fast')
    monkeypatch.setenv(config.ENV_TUNE_LIMIT, 'many')
    _log.forget_logged()
    with caplog.at_level(logging.WARNING, logger='replk_mm.ops'):
        assert config.autotune_mode() == 'measure'
        assert config.tune_limit() == config.DEFAULT_TUNE_LIMIT
    assert "REPLK_DW_CONV_AUTOTUNE='fast'" in caplog.text
    assert "REPLK_DW_CONV_TUNE_LIMIT='many'" in caplog.text


def test_auto_never_picks_the_triton_interpreter_on_cpu(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    assert 'triton' not in auto_candidates(torch.device('cpu'))


def test_fast_fft_lengths():
    assert [fft.fast_len(n) for n in (1, 2, 71, 97, 143, 1000)] == [2, 2, 72, 98, 144, 1000]


def test_backbone_unchanged_by_backend():
    pytest.importorskip('mmcv')
    import copy

    from conftest import TINY_ARCH, randomize_bn

    from replk_mm.models.backbones.replknet import RepLKNet

    base = randomize_bn(RepLKNet(arch=TINY_ARCH, drop_path_rate=0.)).train()
    x = torch.randn(2, 3, 64, 64)

    def run(backend, deploy=False):
        model = copy.deepcopy(base)
        if deploy:
            model.switch_to_deploy()
            model.eval()
        with set_default_backend(backend):
            outs = model(x)
            if deploy:
                return [o.detach() for o in outs], []
            sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
        return [o.detach() for o in outs], [p.grad for p in model.parameters()]

    for deploy in (False, True):
        ref_outs, ref_grads = run('native', deploy)
        # some grads are zero in exact arithmetic (a BN bias before a conv and a train-mode BN):
        # judge every tensor against the largest gradient, not against its own round-off
        grad_scale = max([g.abs().max().item() for g in ref_grads], default=0)
        for backend in ('auto', 'padded', 'fft'):
            outs, grads = run(backend, deploy)
            for r, o in zip(ref_outs, outs):
                torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4 * r.abs().max().item())
            for r, o in zip(ref_grads, grads):
                torch.testing.assert_close(o, r, rtol=1e-3, atol=1e-4 * grad_scale)


def test_autotuning_inside_gradient_checkpointing():
    """The first forward of a with_cp backbone autotunes inside torch.utils.checkpoint; the
    recomputation in backward must see the same saved tensors (it used to fail with
    "Recomputed values ... have different metadata")."""
    pytest.importorskip('mmcv')
    from conftest import TINY_ARCH

    from replk_mm.models.backbones.replknet import RepLKNet

    plain = RepLKNet(arch=TINY_ARCH, drop_path_rate=0.).train()
    checkpointed = RepLKNet(arch=TINY_ARCH, drop_path_rate=0., with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with set_default_backend('auto'):
        assert dispatch_cache_info()['size'] == 0  # measuring happens under the checkpoint
        sum(o.sum() for o in checkpointed(x)).backward()
        assert dispatch_cache_info()['measured'] > 0
        sum(o.sum() for o in plain(x)).backward()
    for p, q in zip(plain.parameters(), checkpointed.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- torch only
TORCH_ONLY = BLOCK_OPENMMLAB + textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    import replk_mm
    from replk_mm.ops import DepthwiseConv2d, build_dw_conv, depthwise_conv2d, dispatch_cache_info

    torch.manual_seed(0)
    x = torch.randn(2, 4, 12, 12, requires_grad=True)
    w = torch.randn(4, 1, 9, 9, requires_grad=True)
    for backend in ('auto', 'native', 'padded', 'fft', None):
        out = depthwise_conv2d(x, w, None, 1, 4, backend=backend)
        gx, gw = torch.autograd.grad(out, (x, w), torch.ones_like(out))
        ref = F.conv2d(x, w, None, 1, 4, 1, 4)
        rx, rw = torch.autograd.grad(ref, (x, w), torch.ones_like(ref))
        for a, b in ((out, ref), (gx, rx), (gw, rw)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert dispatch_cache_info()['measured'] > 0  # 'auto' measured its decisions
    m = build_dw_conv(4, 9, bias=True)
    assert isinstance(m, DepthwiseConv2d)
    m(x).sum().backward()
    assert m.weight.grad is not None and m.bias.grad is not None
    try:
        replk_mm.RepLKNet
    except ImportError as e:
        assert 'mmengine' in str(e), e
    else:
        raise AssertionError('replk_mm.RepLKNet without mmengine should say what to install')
    loaded = sorted(n for n in sys.modules if n.split('.')[0] in OPENMMLAB)
    assert not loaded, loaded
    print('TORCH-ONLY-OK')
''')


def test_ops_work_with_torch_alone():
    """A process in which importing any OpenMMLab package fails runs the op (forward and
    backward, every CPU backend and auto), the module and the factory."""
    env = dict(os.environ, PYTHONPATH=REPO)
    for var in (config.ENV_BACKEND, config.ENV_CACHE, config.ENV_AUTOTUNE):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, '-c', TORCH_ONLY], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and 'TORCH-ONLY-OK' in proc.stdout, proc.stdout + proc.stderr
