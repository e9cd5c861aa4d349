"""replk_mm.ops process state and its decision file (REPLK_DW_CONV_CACHE): one reset, counters
that count what they say, a file that is validated on read, merged under a lock and never
leaves temporaries, and an autotuner that checks every candidate's answer before timing it."""
import json
import logging
import multiprocessing
import os
import stat

import pytest
import torch
import torch.nn.functional as F

from replk_mm.ops import (
    _log,
    clear_dispatch_cache,
    config,
    decision_cache,
    depthwise_conv2d,
    dispatch_cache_info,
    get_default_backend,
    keys,
    set_default_backend,
)
from replk_mm.ops.backends import BACKENDS


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    for var in (config.ENV_BACKEND, config.ENV_CACHE, config.ENV_AUTOTUNE,
                config.ENV_TUNE_LIMIT, config.ENV_COSTS, 'TRITON_INTERPRET'):
        monkeypatch.delenv(var, raising=False)
    clear_dispatch_cache()
    yield
    clear_dispatch_cache()


def _cache_file(monkeypatch, tmp_path):
    path = tmp_path / 'autotune.json'
    monkeypatch.setenv(config.ENV_CACHE, str(path))
    return path


def _key(phase, x, k, pad):
    return f'torch{torch.__version__}|' + keys.decision_key(phase, x, (k, k), (pad, pad))


def _write(path, entries):
    path.write_text(json.dumps(dict(version=decision_cache.CACHE_VERSION, entries=entries)))


# ---------------------------------------------------------------------------- one state
def test_one_reset_resets_all_process_state(monkeypatch, tmp_path):
    set_default_backend('fft')
    x = torch.randn(1, 2, 9, 9, requires_grad=True)
    w = torch.randn(2, 1, 5, 5, requires_grad=True)
    depthwise_conv2d(x, w, padding=2, backend='auto').sum().backward()
    depthwise_conv2d(x, w, padding=2)
    info = dispatch_cache_info()
    assert info['measured'] == 3 and info['routes'] == 2 and info['tune_seconds'] > 0
    decision_cache.STATE.exclude('padded', 'cpu', 'test')
    clear_dispatch_cache()
    assert get_default_backend() == 'auto'
    assert dispatch_cache_info() == dict(
        hits=0, misses=0, measured=0, modelled=0, native_fallbacks=0, tune_seconds=0.0,
        check_seconds=0.0, size=0, routes=0, route_hits=0, excluded={}, decisions={})


# ---------------------------------------------------------------------------- issue 18, item 4
def test_failed_saves_remove_their_temporary(monkeypatch, tmp_path, caplog):
    folder = tmp_path / 'cache'
    folder.mkdir()
    taken = folder / 'autotune.json'
    taken.mkdir()  # the path is a directory: every write fails at the rename
    new = {'fwd|cpu:test:1t|float32|nchw|n1|c1|h9|w9|k3x3|p1,1': 'native'}
    _log.forget_logged()
    with caplog.at_level(logging.WARNING, logger='replk_mm.ops'):
        for _ in range(5):
            decision_cache.save_entries(str(taken), new)
    assert sorted(os.listdir(folder)) == ['autotune.json', 'autotune.json.lock']
    assert caplog.text.count('could not write') == 1
    path = folder / 'other.json'

    def full_disk(*args):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(decision_cache.os, 'replace', full_disk)
    decision_cache.save_entries(str(path), new)
    assert not [n for n in os.listdir(folder) if n.endswith('.tmp')]


def test_load_removes_temporaries_of_killed_writers(tmp_path):
    path = tmp_path / 'autotune.json'
    _write(path, {})
    stale = [tmp_path / '.autotune.json.123.0a1b2c3d.tmp', tmp_path / '.autotune.json.9.ff.tmp']
    for f in stale:
        f.write_text('{"vers')
    unrelated = tmp_path / 'notes.tmp'
    unrelated.write_text('mine')
    decision_cache.STATE.load(str(path))
    assert not any(f.exists() for f in stale) and unrelated.exists()


# ---------------------------------------------------------------------------- issue 18, item 5
def test_file_entries_are_validated_against_phase_and_device(monkeypatch, tmp_path, caplog):
    path = _cache_file(monkeypatch, tmp_path)
    x = torch.randn(1, 3, 10, 10, requires_grad=True)
    w = torch.randn(3, 1, 7, 7, requires_grad=True)
    _write(path, {_key('fwd', x, 7, 3): 'triton',  # no Triton candidate on a CPU
                  _key('dx', x, 7, 3): 'cudnn',  # no such backend
                  _key('dw', x, 7, 3): 'native_nhwc'})  # no weight gradient
    _log.forget_logged()
    with caplog.at_level(logging.WARNING, logger='replk_mm.ops'):
        out = depthwise_conv2d(x, w, padding=3)
        gx, gw = torch.autograd.grad(out.sum(), (x, w))
    ref = F.conv2d(x, w, None, 1, 3, 1, 3)
    rx, rw = torch.autograd.grad(ref.sum(), (x, w))
    for a, b in ((out, ref), (gx, rx), (gw, rw)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    info = dispatch_cache_info()
    assert info['measured'] == 3 and info['hits'] == 0  # all three measured again
    lines = [r.getMessage() for r in caplog.records if 'dropped' in r.getMessage()]
    assert len(lines) == 1 and 'dropped 3 entries' in lines[0] and str(path) in lines[0]
    saved = json.loads(path.read_text())['entries']
    assert set(saved.values()) <= {'native', 'padded', 'fft', 'native_nhwc'}


# ---------------------------------------------------------------------------- issue 18, item 6
def _save_many(path, worker, count):
    for i in range(count):
        decision_cache.save_entries(path, {
            f'fwd|cpu:test:1t|float32|nchw|n1|c{worker * 10000 + i}|h9|w9|k3x3|p1,1': 'native'})


def test_concurrent_saves_keep_every_entry_and_the_permissions(tmp_path):
    path = tmp_path / 'autotune.json'
    _write(path, {})
    os.chmod(path, 0o644)
    context = multiprocessing.get_context('fork' if hasattr(os, 'fork') else 'spawn')
    workers = [context.Process(target=_save_many, args=(str(path), k, 100)) for k in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
    assert [p.exitcode for p in workers] == [0, 0]
    assert len(json.loads(path.read_text())['entries']) == 200
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_lock_file_fallback_without_fcntl(monkeypatch, tmp_path):
    """Where fcntl is missing the lock is the lock file itself; one left by a crash is broken
    once it is older than the timeout."""
    monkeypatch.setattr(decision_cache, 'fcntl', None)
    path = tmp_path / 'autotune.json'
    lock = tmp_path / 'autotune.json.lock'
    lock.write_text('')
    old = os.path.getmtime(lock) - 2 * decision_cache.LOCK_TIMEOUT_S
    os.utime(lock, (old, old))
    _save_many(str(path), 0, 3)
    assert len(json.loads(path.read_text())['entries']) == 3 and not lock.exists()


# ---------------------------------------------------------------------------- issue 18, item 7
class WrongBackend:
    """Fast and wrong: zeros of the right shape for every phase."""
    calls = 0

    @staticmethod
    def available(device):
        return True, ''

    @staticmethod
    def auto_candidate(device, layout):
        return True

    @classmethod
    def fwd(cls, x, w, b, geom, state=None):
        cls.calls += 1
        return x.new_zeros(x.shape[0], x.shape[1], geom.ho, geom.wo)

    @classmethod
    def dx(cls, x, g, w, geom, state=None):
        cls.calls += 1
        return torch.zeros_like(x)

    @classmethod
    def dw(cls, x, g, w, geom, state=None):
        cls.calls += 1
        return torch.zeros_like(w)


def test_autotuner_never_picks_a_wrong_backend(monkeypatch, tmp_path, caplog):
    monkeypatch.setitem(BACKENDS, 'wrong', WrongBackend)
    path = _cache_file(monkeypatch, tmp_path)
    x = torch.randn(2, 4, 24, 24, requires_grad=True)
    w = torch.randn(4, 1, 15, 15, requires_grad=True)
    _log.forget_logged()
    with caplog.at_level(logging.WARNING, logger='replk_mm.ops'):
        out = depthwise_conv2d(x, w, padding=7)
        gx, gw = torch.autograd.grad(out.sum(), (x, w))
        tried = WrongBackend.calls
        x2 = torch.randn(1, 4, 40, 40, requires_grad=True)  # another bucket
        depthwise_conv2d(x2, w, padding=7).sum().backward()
    ref = F.conv2d(x, w, None, 1, 7, 1, 4)
    rx, rw = torch.autograd.grad(ref.sum(), (x, w))
    for a, b in ((out, ref), (gx, rx), (gw, rw)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    info = dispatch_cache_info()
    assert tried == 1 and WrongBackend.calls == 1  # checked once, then never run again
    assert list(info['excluded']) == ['wrong on cpu']
    assert 'wrong' not in info['decisions'].values()
    assert 'wrong' not in json.loads(path.read_text())['entries'].values()
    lines = [r.getMessage() for r in caplog.records if 'disagrees' in r.getMessage()]
    assert len(lines) == 1 and "'wrong'" in lines[0] and 'max |error| 1 ' in lines[0]


def test_non_finite_inputs_exclude_nothing():
    x = torch.randn(1, 2, 20, 20, requires_grad=True)
    with torch.no_grad():
        x[0, 0, 3, 3] = float('nan')
    w = torch.randn(2, 1, 9, 9, requires_grad=True)
    depthwise_conv2d(x, w, padding=4).sum().backward()
    info = dispatch_cache_info()
    assert info['measured'] == 3 and info['excluded'] == {}


def test_correct_backends_pass_the_check_in_every_dtype():
    """The tolerances leave room for each backend's rounding (FFT's is spread over the map)."""
    from replk_mm.ops import timing
    from replk_mm.ops.geometry import crop_geometry
    geom = crop_geometry(24, 24, 31, 31, 15, 15)[2]
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        x = torch.randn(2, 8, 24, 24).to(dtype)
        w = (torch.randn(8, 1, geom.kh, geom.kw) / geom.kh).to(dtype)
        g = torch.randn(2, 8, geom.ho, geom.wo).to(dtype)
        for phase in ('fwd', 'dx', 'dw'):
            ref = timing.phase_call(phase, 'native', x, w, None, g, geom)()
            for name in ('padded', 'fft'):
                out = timing.phase_call(phase, name, x, w, None, g, geom)()
                err = timing.disagreement(out, ref)
                assert err <= timing.tolerance(x) / 2, (dtype, phase, name, err)
