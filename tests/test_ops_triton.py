"""The Triton depth-wise conv kernels, run on CPU tensors by Triton's interpreter.

TRITON_INTERPRET must be set before triton is imported, so the checks run in a subprocess.
The interpreter is slow: shapes stay tiny (C <= 3, maps <= 9x9, kernels 3..11).
"""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('triton')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from replk_mm.ops import depthwise_conv2d, dispatch_cache_info
    from replk_mm.ops.backends import triton_dw

    assert triton_dw.available(torch.device('cpu'))[0]
    torch.manual_seed(0)
    # (kernel, batch, channels, h, w, padding, bias, channels_last, dtype)
    cases = [(3, 2, 3, 9, 7, 1, True, False, torch.float64),
             (5, 1, 2, 4, 6, 2, False, True, torch.float64),    # map smaller than the kernel
             (7, 2, 2, 9, 9, 3, True, True, torch.float64),
             (9, 1, 3, 9, 11, 0, True, False, torch.float64),   # 'valid'
             (11, 1, 2, 5, 5, 5, False, False, torch.float64),  # cropped to 9x9
             (7, 2, 3, 8, 8, 3, True, False, torch.float32)]
    for k, n, c, h, w, pad, bias, cl, dtype in cases:
        x = torch.randn(n, c, h, w, dtype=dtype)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_()
        wt = (torch.randn(c, 1, k, k, dtype=dtype) / k).requires_grad_()
        b = torch.randn(c, dtype=dtype, requires_grad=True) if bias else None
        params = [x, wt] + ([b] if bias else [])
        ref = F.conv2d(x, wt, b, 1, pad, 1, c)
        g = torch.randn_like(ref)
        ref_grads = torch.autograd.grad(ref, params, g)
        out = depthwise_conv2d(x, wt, b, 1, pad, backend='triton')
        grads = torch.autograd.grad(out, params, g)
        tol = 1e-10 if dtype == torch.float64 else 1e-5
        for name, o, r in zip(['out', 'dx', 'dw', 'db'], [out, *grads], [ref, *ref_grads]):
            err = ((o - r).abs().max() / r.abs().max().clamp_min(1)).item()
            assert o.dtype == dtype and err < tol, (k, n, c, h, w, pad, name, err)
        if cl:
            assert out.is_contiguous(memory_format=torch.channels_last)
    # a forced backend that runs does not touch the auto cache
    assert dispatch_cache_info()['misses'] == 0
    print('TRITON-OK', len(cases))
''')


def test_triton_kernels_in_interpreter():
    env = dict(os.environ, TRITON_INTERPRET='1', PYTHONPATH=REPO)
    env.pop('REPLK_DW_CONV_BACKEND', None)
    proc = subprocess.run([sys.executable, '-c', SCRIPT], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and 'TRITON-OK' in proc.stdout, proc.stdout + proc.stderr


COMPILE_SCRIPT = textwrap.dedent('''
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile
    from replk_mm.ops.backends import _triton_kernels as K

    def signature(fn, pointers, constexprs):
        return {n: 'constexpr' if n in constexprs else pointers.get(n, 'i32')
                for n in fn.arg_names}

    for dt in ('fp32', 'bf16'):
        c = dict(HAS_BIAS=True, BH=8, BW=64, ACC=tl.float32)
        p = {n: '*' + dt for n in ('x_ptr', 'w_ptr', 'b_ptr', 'y_ptr')}
        k = compile(ASTSource(K.dw_conv_fwd_kernel, signature(K.dw_conv_fwd_kernel, p, c), c),
                    target=GPUTarget('cuda', 90, 32))
        assert '.entry' in k.asm['ptx']
        c = dict(BJ=32, BX=64, ACC=tl.float32)
        p = {'x_ptr': '*' + dt, 'g_ptr': '*' + dt, 'dw_ptr': '*fp32'}
        k = compile(ASTSource(K.dw_conv_wgrad_kernel, signature(K.dw_conv_wgrad_kernel, p, c), c),
                    target=GPUTarget('cuda', 90, 32))
        assert '.entry' in k.asm['ptx']
    print('COMPILE-OK')
''')


def test_triton_kernels_compile_for_a_gpu(tmp_path):
    """Ahead-of-time compilation for sm_90 (no GPU needed) catches what the interpreter
    does not check: types, loop bounds, layouts."""
    env = dict(os.environ, PYTHONPATH=REPO, TRITON_CACHE_DIR=str(tmp_path))
    env.pop('TRITON_INTERPRET', None)
    proc = subprocess.run([sys.executable, '-c', COMPILE_SCRIPT], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and ('ImportError' in proc.stderr or 'ptxas' in proc.stderr):
        pytest.skip('this triton cannot compile for CUDA here: ' + proc.stderr[-300:])
    assert proc.returncode == 0 and 'COMPILE-OK' in proc.stdout, proc.stdout + proc.stderr
