"""Triton depth-wise conv kernels (imported only when the Triton backend runs).

One program computes a BH x BW output tile of one (sample, channel) plane by walking the kernel
taps; masked loads supply the zero padding, so any (top, left) offset works. The same kernel
gives the input gradient (flipped kernel, offset k-1-pad). The weight gradient kernel computes
one kernel row (BJ taps) of one channel per program, reducing over rows and column tiles of the
output gradient and over a slice of the batch; slices are summed on the host.
"""
import triton
import triton.language as tl


@triton.jit
def dw_conv_fwd_kernel(x_ptr, w_ptr, b_ptr, y_ptr, C, H, W, HO, WO, KH, KW, PT, PL,
                       sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                       HAS_BIAS: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
                       ACC: tl.constexpr):
    pid = tl.program_id(0)
    n = (pid // C).to(tl.int64)
    c = pid % C
    oh = tl.program_id(1) * BH + tl.arange(0, BH)
    ow = tl.program_id(2) * BW + tl.arange(0, BW)
    x_base = x_ptr + n * sxn + c.to(tl.int64) * sxc
    w_base = w_ptr + c * KH * KW
    acc = tl.zeros([BH, BW], dtype=ACC)
    for i in range(KH):
        ih = oh + (i - PT)
        row_ok = (ih >= 0) & (ih < H)
        for j in range(KW):
            iw = ow + (j - PL)
            m = row_ok[:, None] & ((iw >= 0) & (iw < W))[None, :]
            xv = tl.load(x_base + ih[:, None] * sxh + iw[None, :] * sxw, mask=m, other=0.0)
            acc += xv.to(ACC) * tl.load(w_base + i * KW + j).to(ACC)
    if HAS_BIAS:
        acc += tl.load(b_ptr + c).to(ACC)
    out = y_ptr + n * syn + c.to(tl.int64) * syc + oh[:, None] * syh + ow[None, :] * syw
    tl.store(out, acc.to(y_ptr.dtype.element_ty),
             mask=(oh < HO)[:, None] & (ow < WO)[None, :])


@triton.jit
def dw_conv_wgrad_kernel(x_ptr, g_ptr, dw_ptr, N, C, H, W, HO, WO, KH, KW, PT, PL, NSPLIT,
                         sxn, sxc, sxh, sxw, sgn, sgc, sgh, sgw,
                         BJ: tl.constexpr, BX: tl.constexpr, ACC: tl.constexpr):
    pid = tl.program_id(0)
    c = pid // KH
    i = pid % KH
    js = tl.program_id(1) * BJ + tl.arange(0, BJ)
    split = tl.program_id(2)
    # only output rows whose input row y + i - PT lies inside the map contribute
    y_lo = tl.maximum(PT - i, 0)
    y_hi = tl.minimum(HO, H + PT - i)
    acc = tl.zeros([BJ, BX], dtype=ACC)
    # 64-bit pointers advanced by NSPLIT samples per step (no int32 n * stride overflow)
    x_base = x_ptr + split.to(tl.int64) * sxn + c.to(tl.int64) * sxc
    g_base = g_ptr + split.to(tl.int64) * sgn + c.to(tl.int64) * sgc
    for _ in range(split, N, NSPLIT):
        for y in range(y_lo, y_hi):
            ih = y + i - PT
            for x0 in range(0, WO, BX):
                ox = x0 + tl.arange(0, BX)
                col_ok = ox < WO
                gv = tl.load(g_base + y * sgh + ox * sgw, mask=col_ok, other=0.0)
                iw = ox[None, :] + js[:, None] - PL
                m = col_ok[None, :] & (iw >= 0) & (iw < W) & (js[:, None] < KW)
                xv = tl.load(x_base + ih * sxh + iw * sxw, mask=m, other=0.0)
                acc += xv.to(ACC) * gv.to(ACC)[None, :]
        x_base += NSPLIT * sxn
        g_base += NSPLIT * sgn
    tl.store(dw_ptr + split * (C * KH * KW) + c * (KH * KW) + i * KW + js,
             tl.sum(acc, axis=1), mask=js < KW)
