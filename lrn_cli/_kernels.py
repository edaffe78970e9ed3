"""Private Numba kernels: one family serves every convention and both modes.

Each kernel takes the resolved constants (window offsets ``lo``/``hi``, ``a'``, ``k'``,
``beta``), never a convention, so there is one compiled variant per dtype and layout.

Design (see ``shared/performance-notes.md``):

* Window sums never subtract.  Short windows are summed directly; long ones use block
  prefix/suffix sums (van Herk/Gil-Werman for sums): ``S[i] = suffix[i] + prefix[i+m-1]``,
  O(1) per element whatever the size, with no cancellation.  Both sum in a fixed order that
  depends only on absolute positions along the summed axis.
* Work items are disjoint output blocks (``prange``), each with its own small scratch, so
  extra memory is a few blocks per thread, never a full-size temporary.
* ``D ** -beta`` has closed forms for the common betas (``pow`` costs ~10x the memory
  ceiling); each variant has its own loop because an ``if`` in the inner loop is not hoisted.
  They never form a power of ``D`` above 1 (``D^0.75`` is ``sqrt(D) * sqrt(sqrt(D))``, not
  ``sqrt(D * sqrt(D))``), so no intermediate overflows or underflows where the result does
  not: float32 inputs near 1e15, or tiny ones with ``k = 0``, stay exact.
* ``error_model="numpy"``: no zero-division checks (IEEE results, as the reference), and
  no fastmath, so NaN and Inf propagate exactly as in plain NumPy.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# the beta fast paths (gain = D ** -beta) are defined beside Variants, without Numba, so that
# lrn_cli.warmup can name them; core reads them here
from lrn_cli._jit import (  # noqa: F401
    BETA_0,
    BETA_025,
    BETA_05,
    BETA_075,
    BETA_1,
    BETA_2,
    BETA_15,
    BETA_GENERAL,
    Variants,
    beta_mode,
)

_OPTS = {"cache": True, "error_model": "numpy", "nogil": True}


# windows of at most ROW_KERNEL_TAPS taps (across) take the unrolled row kernels
from lrn_cli.dispatch import ROW_KERNEL_TAPS  # noqa: E402

# Compile-time constants of the kernels built with `Variants` (each variant sets its own;
# these defaults are never compiled): which outputs a kernel writes, and whether its window
# has at most 4 taps (the 4-term tree) rather than 5 to 8.
WANT_Y = True
WANT_D = False
TAPS4 = False
BMODE = BETA_GENERAL


# ----------------------------------------------------------------------------------------
# D ** -beta, one loop per closed form (an `if` inside the loop is not hoisted)


@njit(**_OPTS)
def _finish_row(acc, xc, yc, a, k, beta, mode):
    """``yc[t] = xc[t] * (k + a*acc[t]) ** -beta``; ``yc`` may be ``acc`` itself."""
    n = acc.shape[0]
    if mode == BETA_075:
        for t in range(n):
            q = np.sqrt(k + a * acc[t])
            yc[t] = xc[t] / (q * np.sqrt(q))
    elif mode == BETA_05:
        for t in range(n):
            yc[t] = xc[t] / np.sqrt(k + a * acc[t])
    elif mode == BETA_1:
        for t in range(n):
            yc[t] = xc[t] / (k + a * acc[t])
    elif mode == BETA_0:
        for t in range(n):
            yc[t] = xc[t]
    elif mode == BETA_025:
        for t in range(n):
            yc[t] = xc[t] / np.sqrt(np.sqrt(k + a * acc[t]))
    elif mode == BETA_15:
        for t in range(n):
            d = k + a * acc[t]
            yc[t] = xc[t] / np.sqrt(d) / d
    elif mode == BETA_2:
        for t in range(n):
            d = k + a * acc[t]
            yc[t] = xc[t] / d / d
    else:
        nb = -beta
        for t in range(n):
            yc[t] = xc[t] * (k + a * acc[t]) ** nb


@njit(**_OPTS)
def _divisor_row(acc, dc, a, k):
    """``dc[t] = k + a*acc[t]`` (the divisor, for users who plot it)."""
    for t in range(acc.shape[0]):
        dc[t] = k + a * acc[t]


@njit(**_OPTS)
def _gain_of(d, g, beta, mode):
    """``g[t] = d[t] ** -beta`` in float64 (backward)."""
    n = d.shape[0]
    if mode == BETA_075:
        for t in range(n):
            q = np.sqrt(d[t])
            g[t] = 1.0 / (q * np.sqrt(q))
    elif mode == BETA_05:
        for t in range(n):
            g[t] = 1.0 / np.sqrt(d[t])
    elif mode == BETA_1:
        for t in range(n):
            g[t] = 1.0 / d[t]
    elif mode == BETA_0:
        for t in range(n):
            g[t] = 1.0
    else:
        nb = -beta
        for t in range(n):
            g[t] = d[t] ** nb


# ----------------------------------------------------------------------------------------
# window sums along axis 0 of a 2-D block, vectorised along axis 1


@njit(**_OPTS)
def _wsum_rows_tree(src, dst, lo, hi):
    """Direct window sums of up to 8 taps in exactly the order of :func:`across_rows`
    (``_sum4``/``_sum8`` trees, zeros outside the axis), so both give the same bits."""
    length, width = src.shape
    taps = lo + hi + 1
    zero = np.zeros(width, dtype=src.dtype)
    for i in range(length):
        j = i - lo
        q0 = src[j] if 0 <= j < length else zero
        q1 = src[j + 1] if taps > 1 and 0 <= j + 1 < length else zero
        q2 = src[j + 2] if taps > 2 and 0 <= j + 2 < length else zero
        q3 = src[j + 3] if taps > 3 and 0 <= j + 3 < length else zero
        out = dst[i]
        if taps <= 4:
            for t in range(width):
                out[t] = (q0[t] + q1[t]) + (q2[t] + q3[t])
        else:
            q4 = src[j + 4] if 0 <= j + 4 < length else zero
            q5 = src[j + 5] if taps > 5 and 0 <= j + 5 < length else zero
            q6 = src[j + 6] if taps > 6 and 0 <= j + 6 < length else zero
            q7 = src[j + 7] if taps > 7 and 0 <= j + 7 < length else zero
            for t in range(width):
                out[t] = ((q0[t] + q1[t]) + (q2[t] + q3[t])) + ((q4[t] + q5[t]) + (q6[t] + q7[t]))


@njit(**_OPTS)
def _wsum_rows_direct(src, dst, lo, hi):
    """``dst[i] = sum(src[j] for j in [i-lo, i+hi] ∩ [0, L))``, summed in index order
    (up to 8 taps: in the order of the row kernel)."""
    length, width = src.shape
    if lo + hi + 1 <= ROW_KERNEL_TAPS:
        _wsum_rows_tree(src, dst, lo, hi)
        return
    for i in range(length):
        out = dst[i]
        first = src[max(0, i - lo)]
        for t in range(width):
            out[t] = first[t]
        for j in range(max(0, i - lo) + 1, min(length, i + hi + 1)):
            row = src[j]
            for t in range(width):
                out[t] += row[t]


@njit(**_OPTS)
def _block_prefix(src, pre, lo, b0, b1, first):
    """``pre[e]`` = sum of the padded rows ``b0..e`` (``first`` is the block's first row)."""
    length, width = src.shape
    for e in range(b0, b1):
        j = e - lo
        p = pre[e]
        inside = 0 <= j < length
        if e == first:
            if inside:
                row = src[j]
                for t in range(width):
                    p[t] = row[t]
            else:
                for t in range(width):
                    p[t] = 0.0
        else:
            prev = pre[e - 1]
            if inside:
                row = src[j]
                for t in range(width):
                    p[t] = prev[t] + row[t]
            else:
                for t in range(width):
                    p[t] = prev[t]


@njit(**_OPTS)
def _block_suffix(src, suf, lo, b0, b1):
    """``suf[e]`` = sum of the padded rows ``e..b1-1``."""
    length, width = src.shape
    for e in range(b1 - 1, b0 - 1, -1):
        j = e - lo
        q = suf[e]
        inside = 0 <= j < length
        if e == b1 - 1:
            if inside:
                row = src[j]
                for t in range(width):
                    q[t] = row[t]
            else:
                for t in range(width):
                    q[t] = 0.0
        else:
            nxt = suf[e + 1]
            if inside:
                row = src[j]
                for t in range(width):
                    q[t] = nxt[t] + row[t]
            else:
                for t in range(width):
                    q[t] = nxt[t]


@njit(**_OPTS)
def _wsum_rows_blocks(src, dst, lo, hi, pre, suf, base):
    """Same as :func:`_wsum_rows_direct` in O(1) per element (block prefix/suffix sums).

    Row ``j`` of ``src`` is row ``base + j`` of the whole axis.  Positions shift by ``lo``
    (``e = j + lo``) so the window of ``i`` is ``[i, i+m-1]``; blocks of ``m`` taps tile the
    axis from absolute position 0, and ``S[i] = suffix[i] + prefix[i+m-1]`` (one term when
    ``i`` starts a block).  Each term sums only rows of the window, in an order fixed by
    absolute positions, so any cut of the axis into overlapping pieces (strips, Dask chunks)
    gives bit-identical sums.  ``pre``/``suf`` hold at least ``L + m - 1`` rows; ``dst`` may
    be ``src``.
    """
    length, width = src.shape
    m = lo + hi + 1
    ext = length + m - 1
    first = (-base) % m  # first block boundary at or after e = 0
    b0 = 0
    b1 = min(ext, first) if first > 0 else min(ext, m)
    while b0 < ext:
        _block_prefix(src, pre, lo, b0, b1, b0)
        _block_suffix(src, suf, lo, b0, b1)
        b0 = b1
        b1 = min(ext, b0 + m)
    for i in range(length):
        out = dst[i]
        q = suf[i]
        if (i + base) % m == 0:
            for t in range(width):
                out[t] = q[t]
        else:
            p = pre[i + m - 1]
            for t in range(width):
                out[t] = q[t] + p[t]


@njit(**_OPTS)
def _wsum_rows(src, dst, lo, hi, blocks, pre, suf, base):
    """Window sums along axis 0; ``pre``/``suf`` are scratch for the block method."""
    if blocks:
        _wsum_rows_blocks(src, dst, lo, hi, pre, suf, base)
    else:
        _wsum_rows_direct(src, dst, lo, hi)


# ----------------------------------------------------------------------------------------
# across channels: arrays viewed as (outer, C, inner)


@njit(**_OPTS)
def _sum8(r0, r1, r2, r3, r4, r5, r6, r7, acc):
    for t in range(acc.shape[0]):
        acc[t] = ((r0[t] * r0[t] + r1[t] * r1[t]) + (r2[t] * r2[t] + r3[t] * r3[t])) + (
            (r4[t] * r4[t] + r5[t] * r5[t]) + (r6[t] * r6[t] + r7[t] * r7[t]))


@njit(**_OPTS)
def _sum4(r0, r1, r2, r3, acc):
    for t in range(acc.shape[0]):
        acc[t] = (r0[t] * r0[t] + r1[t] * r1[t]) + (r2[t] * r2[t] + r3[t] * r3[t])


@njit(**_OPTS)
def _fused8(r0, r1, r2, r3, r4, r5, r6, r7, xc, yc, acc, a, k, beta, mode):
    """``yc = xc * (k + a * sum of squares of 8 rows) ** -beta`` in one pass for the common
    betas (same tree and operations as ``_sum8`` + ``_finish_row``, so the same bits)."""
    n = xc.shape[0]
    if mode == BETA_075:
        for t in range(n):
            s = ((r0[t] * r0[t] + r1[t] * r1[t]) + (r2[t] * r2[t] + r3[t] * r3[t])) + (
                (r4[t] * r4[t] + r5[t] * r5[t]) + (r6[t] * r6[t] + r7[t] * r7[t]))
            q = np.sqrt(k + a * s)
            yc[t] = xc[t] / (q * np.sqrt(q))
    elif mode == BETA_05:
        for t in range(n):
            s = ((r0[t] * r0[t] + r1[t] * r1[t]) + (r2[t] * r2[t] + r3[t] * r3[t])) + (
                (r4[t] * r4[t] + r5[t] * r5[t]) + (r6[t] * r6[t] + r7[t] * r7[t]))
            yc[t] = xc[t] / np.sqrt(k + a * s)
    else:
        _sum8(r0, r1, r2, r3, r4, r5, r6, r7, acc)
        _finish_row(acc, xc, yc, a, k, beta, mode)


@njit(**_OPTS)
def _fused4(r0, r1, r2, r3, xc, yc, acc, a, k, beta, mode):
    """:func:`_fused8` for windows of at most 4 taps."""
    n = xc.shape[0]
    if mode == BETA_075:
        for t in range(n):
            s = (r0[t] * r0[t] + r1[t] * r1[t]) + (r2[t] * r2[t] + r3[t] * r3[t])
            q = np.sqrt(k + a * s)
            yc[t] = xc[t] / (q * np.sqrt(q))
    elif mode == BETA_05:
        for t in range(n):
            s = (r0[t] * r0[t] + r1[t] * r1[t]) + (r2[t] * r2[t] + r3[t] * r3[t])
            yc[t] = xc[t] / np.sqrt(k + a * s)
    else:
        _sum4(r0, r1, r2, r3, acc)
        _finish_row(acc, xc, yc, a, k, beta, mode)


def _across_rows(x, y, d, lo, hi, a, k, beta, tile):
    """LRN across axis 1 of ``x`` (outer, C, inner) for windows of at most 8 taps.

    The hot path: each output row reads its (up to 8) neighbour rows once and sums their
    squares in registers, in a fixed tree order; rows outside ``[0, C)`` are a zero row.
    Compiled per (``WANT_Y``, ``WANT_D``, ``TAPS4``): see :data:`across_rows`.
    """
    outer, channels, inner = x.shape
    taps = lo + hi + 1
    ntiles = (inner + tile - 1) // tile
    for item in prange(outer * ntiles):
        o = item // ntiles
        p0 = (item % ntiles) * tile
        p1 = min(inner, p0 + tile)
        zero = np.zeros(p1 - p0, dtype=x.dtype)
        acc = np.empty(p1 - p0, dtype=x.dtype)
        for c in range(channels):
            j = c - lo
            r0 = x[o, j, p0:p1] if 0 <= j < channels else zero
            r1 = x[o, j + 1, p0:p1] if taps > 1 and 0 <= j + 1 < channels else zero
            r2 = x[o, j + 2, p0:p1] if taps > 2 and 0 <= j + 2 < channels else zero
            r3 = x[o, j + 3, p0:p1] if taps > 3 and 0 <= j + 3 < channels else zero
            if TAPS4:
                if WANT_D:
                    _sum4(r0, r1, r2, r3, acc)
                    _divisor_row(acc, d[o, c, p0:p1], a, k)
                    if WANT_Y:
                        _finish_row(acc, x[o, c, p0:p1], y[o, c, p0:p1], a, k, beta, BMODE)
                else:
                    _fused4(r0, r1, r2, r3, x[o, c, p0:p1], y[o, c, p0:p1], acc, a, k, beta,
                            BMODE)
            else:
                r4 = x[o, j + 4, p0:p1] if 0 <= j + 4 < channels else zero
                r5 = x[o, j + 5, p0:p1] if taps > 5 and 0 <= j + 5 < channels else zero
                r6 = x[o, j + 6, p0:p1] if taps > 6 and 0 <= j + 6 < channels else zero
                r7 = x[o, j + 7, p0:p1] if taps > 7 and 0 <= j + 7 < channels else zero
                if WANT_D:
                    _sum8(r0, r1, r2, r3, r4, r5, r6, r7, acc)
                    _divisor_row(acc, d[o, c, p0:p1], a, k)
                    if WANT_Y:
                        _finish_row(acc, x[o, c, p0:p1], y[o, c, p0:p1], a, k, beta, BMODE)
                else:
                    _fused8(r0, r1, r2, r3, r4, r5, r6, r7, x[o, c, p0:p1], y[o, c, p0:p1],
                            acc, a, k, beta, BMODE)


#: ``across_rows(WANT_Y=..., WANT_D=..., TAPS4=...)``: :func:`_across_rows` compiled for
#: the outputs it writes (``y``, ``d`` or both) and its window class (at most 4 taps, or
#: 5 to 8), so a run compiles only the branch it takes.
across_rows = Variants(_across_rows, parallel=True, **_OPTS)


@njit(**_OPTS)
def _masked_sum8(v0, v1, v2, v3, v4, v5, v6, v7, ok, zero):
    """Sum of ``v0..v7``, those not flagged in ``ok`` counted as zero, in the fixed 8-term
    tree.  Every window sum of the short-window kernels (forward and backward, squares and
    the backward's mirrored sums) goes through this tree or :func:`_tree5`, so all of them
    agree bit for bit.  Small enough to be inlined into the vectorised loops."""
    k0, k1, k2, k3, k4, k5, k6, k7 = ok
    return (((v0 if k0 else zero) + (v1 if k1 else zero))
            + ((v2 if k2 else zero) + (v3 if k3 else zero))) + (
        ((v4 if k4 else zero) + (v5 if k5 else zero))
        + ((v6 if k6 else zero) + (v7 if k7 else zero)))


@njit(**_OPTS)
def _masked_tree8(w0, w1, w2, w3, w4, w5, w6, w7, ok, zero):
    """:func:`_masked_sum8` of the squares of ``w0..w7`` (squaring a masked-out value or
    masking its square both give +0: the same bits)."""
    return _masked_sum8(w0 * w0, w1 * w1, w2 * w2, w3 * w3, w4 * w4, w5 * w5, w6 * w6,
                        w7 * w7, ok, zero)


@njit(**_OPTS)
def _tree5(v0, v1, v2, v3, v4):
    """:func:`_masked_tree8` of five flagged values and three zeros (which add exact zeros:
    sums of squares are never -0, so the bits are the same)."""
    return ((v0 * v0 + v1 * v1) + (v2 * v2 + v3 * v3)) + v4 * v4


@njit(**_OPTS)
def _window_squares(rows, i, ok, t, one):
    """:func:`_masked_tree8` of ``rows[i_u, t]``, in ``one``'s dtype (values are widened by
    multiplying with it, which is exact and free)."""
    i0, i1, i2, i3, i4, i5, i6, i7 = i
    return _masked_tree8(rows[i0, t] * one, rows[i1, t] * one, rows[i2, t] * one,
                         rows[i3, t] * one, rows[i4, t] * one, rows[i5, t] * one,
                         rows[i6, t] * one, rows[i7, t] * one, ok, one - one)


@njit(**_OPTS)
def _inner_squares5(rows, j, t, one):
    """:func:`_tree5` of the 5 rows ``j..j+4`` (all inside the axis)."""
    return _tree5(rows[j, t] * one, rows[j + 1, t] * one, rows[j + 2, t] * one,
                  rows[j + 3, t] * one, rows[j + 4, t] * one)


@njit(**_OPTS)
def _span8(r0, r1, r2, r3, r4, r5, r6, r7, ok, xc, yc, a, k, mode):
    """``yc = xc * (k + a * S) ** -beta`` (beta 0.75 or 0.5), ``S`` the masked tree of the
    squares of ``r0..r7``: equal-length 1-D views, one per window row."""
    zero = xc.dtype.type(0)
    if mode == BETA_075:
        for t in range(xc.shape[0]):
            s = _masked_tree8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t], r7[t], ok, zero)
            q = np.sqrt(k + a * s)
            yc[t] = xc[t] / (q * np.sqrt(q))
    else:
        for t in range(xc.shape[0]):
            s = _masked_tree8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t], r7[t], ok, zero)
            yc[t] = xc[t] / np.sqrt(k + a * s)


@njit(**_OPTS)
def _span5(r0, r1, r2, r3, r4, xc, yc, a, k, mode):
    """:func:`_span8` for a window of five rows, all inside the axis (~8% faster: nothing
    to select)."""
    if mode == BETA_075:
        for t in range(xc.shape[0]):
            q = np.sqrt(k + a * _tree5(r0[t], r1[t], r2[t], r3[t], r4[t]))
            yc[t] = xc[t] / (q * np.sqrt(q))
    else:
        for t in range(xc.shape[0]):
            yc[t] = xc[t] / np.sqrt(k + a * _tree5(r0[t], r1[t], r2[t], r3[t], r4[t]))


@njit(**_OPTS)
def _interior_span(xf, yf, p0, p1, inner, lo, taps, a, k, mode):
    """Outputs ``p0..p1`` of one sample's flattened ``(C*inner)`` array, all in channels
    whose window lies inside the axis: the window row ``u`` of every output is the same
    array shifted by ``(u - lo) * inner``, so one long loop covers many channels (short
    rows such as 27x27 leave most of a row to the scalar remainder loop otherwise)."""
    xc = xf[p0:p1]
    yc = yf[p0:p1]
    if taps == 5:
        b = p0 - lo * inner
        e = p1 - lo * inner
        _span5(xf[b:e], xf[b + inner:e + inner], xf[b + 2 * inner:e + 2 * inner],
               xf[b + 3 * inner:e + 3 * inner], xf[b + 4 * inner:e + 4 * inner], xc, yc,
               a, k, mode)
        return
    # rows past the window repeat its last row (a valid load) and are masked out
    s = (min(0, taps - 1) - lo, min(1, taps - 1) - lo, min(2, taps - 1) - lo,
         min(3, taps - 1) - lo, min(4, taps - 1) - lo, min(5, taps - 1) - lo,
         min(6, taps - 1) - lo, min(7, taps - 1) - lo)
    s0, s1, s2, s3, s4, s5, s6, s7 = s
    ok = (True, taps > 1, taps > 2, taps > 3, taps > 4, taps > 5, taps > 6, taps > 7)
    _span8(xf[p0 + s0 * inner:p1 + s0 * inner], xf[p0 + s1 * inner:p1 + s1 * inner],
           xf[p0 + s2 * inner:p1 + s2 * inner], xf[p0 + s3 * inner:p1 + s3 * inner],
           xf[p0 + s4 * inner:p1 + s4 * inner], xf[p0 + s5 * inner:p1 + s5 * inner],
           xf[p0 + s6 * inner:p1 + s6 * inner], xf[p0 + s7 * inner:p1 + s7 * inner],
           ok, xc, yc, a, k, mode)


@njit(parallel=True, **_OPTS)
def across_rows_contiguous(x, y, lo, hi, a, k, mode, span):
    """:func:`across_rows` for C-contiguous ``x`` and ``y`` (outer, C, inner), windows of at
    most 8 taps and beta 0.75 or 0.5: the same tree of the same operations (so the same
    bits), faster.

    Channels whose whole window lies inside the axis are one contiguous run per sample,
    cut into pieces of ``span`` outputs (:func:`_interior_span`); the few edge channels
    go row by row with clamped, masked window rows.  A window of up to 4 taps uses the
    8-term tree with zeros, which adds exact zeros to the 4-term tree's value (sums of
    squares are never -0).
    """
    outer, channels, inner = x.shape
    taps = lo + hi + 1
    last = channels - 1
    first = lo  # first channel whose window lies inside the axis
    n_inside = max(0, last - hi - first + 1)
    start = first * inner
    length = n_inside * inner
    pieces = (length + span - 1) // span
    for item in prange(outer * pieces):
        o = item // pieces
        p0 = start + (item % pieces) * span
        p1 = min(start + length, p0 + span)
        _interior_span(x[o].reshape(channels * inner), y[o].reshape(channels * inner),
                       p0, p1, inner, lo, taps, a, k, mode)
    edges = channels - n_inside
    for item in prange(outer * edges):
        o = item // edges
        e = item % edges
        c = e if (n_inside == 0 or e < first) else e + n_inside
        i, ok = _window_rows(c - lo, taps, last)
        i0, i1, i2, i3, i4, i5, i6, i7 = i
        xo = x[o]
        _span8(xo[i0], xo[i1], xo[i2], xo[i3], xo[i4], xo[i5], xo[i6], xo[i7], ok, xo[c],
               y[o, c], a, k, mode)


@njit(parallel=True, **_OPTS)
def across_channels_last(x2, y2, d2, want_y, want_d, lo, hi, a, k, beta, bmode, block):
    """LRN across the last axis of C-contiguous ``x2`` (pixels, C), windows of at most 8
    taps: each pixel's channels are contiguous, so its window sums are a short stencil
    along its row; a block of pixels is then finished as one flat vector.

    Same tree and operations as :func:`across_rows` (zeros outside the axis come from the
    scratch's zero padding), hence the same bits as channels-first input.
    """
    pixels, channels = x2.shape
    taps = lo + hi + 1
    pad = 8
    nblocks = (pixels + block - 1) // block
    for item in prange(nblocks):
        p0 = item * block
        p1 = min(pixels, p0 + block)
        n = p1 - p0
        sq = np.zeros((n, channels + 2 * pad), dtype=x2.dtype)
        sums = np.empty((n, channels), dtype=x2.dtype)
        xb = x2[p0:p1]
        upad = np.uint64(pad)
        for i in range(np.uint64(n)):
            for c in range(np.uint64(channels)):
                v = xb[i, c]
                sq[i, upad + c] = v * v
        _padded_window_sums(sq, sums, n, channels, pad, lo, taps)
        flat = sums.reshape(n * channels)
        if want_d:
            _divisor_row(flat, d2[p0:p1].reshape(n * channels), a, k)
        if want_y:
            _finish_row(flat, xb.reshape(n * channels), y2[p0:p1].reshape(n * channels), a,
                        k, beta, bmode)


@njit(**_OPTS)
def _padded_window_sums(src, dst, n, channels, pad, first, taps):
    """``dst[i, c]`` = the 8-term tree of ``src[i, pad + c - first + u]`` for ``u < taps``
    (zero padded rows; unsigned indices so the loops vectorise)."""
    zero = src[0, 0]
    ok = (True, taps > 1, taps > 2, taps > 3, taps > 4, taps > 5, taps > 6, taps > 7)
    base = np.uint64(pad - first)
    for i in range(np.uint64(n)):
        for c in range(np.uint64(channels)):
            j = base + c  # j + 7 < channels + 2 * pad: every load is inside the row
            dst[i, c] = _masked_sum8(src[i, j], src[i, j + np.uint64(1)],
                                     src[i, j + np.uint64(2)], src[i, j + np.uint64(3)],
                                     src[i, j + np.uint64(4)], src[i, j + np.uint64(5)],
                                     src[i, j + np.uint64(6)], src[i, j + np.uint64(7)],
                                     ok, zero)


@njit(parallel=True, **_OPTS)
def across_channels_last_backward(x2, g2, dx2, lo, hi, a, k, beta, bmode, block, refine):
    """Gradient for C-contiguous ``x2``, ``g2``, ``dx2`` (pixels, C), windows of at most 8
    taps, float64 arithmetic: per block of pixels, padded rows of squares give ``D``, padded
    rows of ``t = g x D^(-b-1)`` give the mirrored sums (the same formula as the other
    backward kernels).  ``refine`` (float32 input, beta 0.75 or 0.5): the powers of ``D``
    come from :func:`_refined_powers` as in the channels-first kernel; a block where one
    ``D`` leaves their range is redone with exact roots."""
    pixels, channels = x2.shape
    taps = lo + hi + 1
    pad = 8
    c2 = 2.0 * beta * a
    nblocks = (pixels + block - 1) // block
    upad = np.uint64(pad)
    for item in prange(nblocks):
        p0 = item * block
        p1 = min(pixels, p0 + block)
        n = p1 - p0
        padded = np.zeros((n, channels + 2 * pad))
        d = np.empty((n, channels))
        gain = np.empty((n, channels))
        xb = x2[p0:p1]
        gb = g2[p0:p1]
        for i in range(np.uint64(n)):
            for c in range(np.uint64(channels)):
                v = np.float64(xb[i, c])
                padded[i, upad + c] = v * v
        _padded_window_sums(padded, d, n, channels, pad, lo, taps)
        flat_d = d.reshape(n * channels)
        flat_gain = gain.reshape(n * channels)
        for t in range(n * channels):
            flat_d[t] = k + a * flat_d[t]
        exact = not refine
        if refine:
            # flat_d becomes D^(-b-1): D itself is not needed again
            exact = _refined_powers(flat_d, flat_gain, bmode == BETA_075) > 0
            if exact:  # restore D for the exact roots
                _padded_window_sums(padded, d, n, channels, pad, lo, taps)
                for t in range(n * channels):
                    flat_d[t] = k + a * flat_d[t]
        if exact:
            _gain_of(flat_d, flat_gain, beta, bmode)
            for i in range(np.uint64(n)):
                for c in range(np.uint64(channels)):
                    padded[i, upad + c] = (np.float64(gb[i, c]) * np.float64(xb[i, c])
                                           * gain[i, c] / d[i, c])
        else:
            for i in range(np.uint64(n)):
                for c in range(np.uint64(channels)):
                    padded[i, upad + c] = (np.float64(gb[i, c]) * np.float64(xb[i, c])
                                           * d[i, c])
        _padded_window_sums(padded, d, n, channels, pad, hi, taps)  # d <- mirrored sums of t
        db = dx2[p0:p1]
        for i in range(np.uint64(n)):
            for c in range(np.uint64(channels)):
                db[i, c] = np.float64(gb[i, c]) * gain[i, c] - c2 * np.float64(xb[i, c]) * d[i, c]


@njit(**_OPTS)
def _sq8_f64(r0, r1, r2, r3, r4, r5, r6, r7, acc):
    """Sum of squares of up to 8 rows, in float64 (backward)."""
    for t in range(acc.shape[0]):
        v0 = np.float64(r0[t])
        v1 = np.float64(r1[t])
        v2 = np.float64(r2[t])
        v3 = np.float64(r3[t])
        v4 = np.float64(r4[t])
        v5 = np.float64(r5[t])
        v6 = np.float64(r6[t])
        v7 = np.float64(r7[t])
        acc[t] = ((v0 * v0 + v1 * v1) + (v2 * v2 + v3 * v3)) + (
            (v4 * v4 + v5 * v5) + (v6 * v6 + v7 * v7))


@njit(**_OPTS)
def _add8(r0, r1, r2, r3, r4, r5, r6, r7, acc):
    for t in range(acc.shape[0]):
        acc[t] = ((r0[t] + r1[t]) + (r2[t] + r3[t])) + ((r4[t] + r5[t]) + (r6[t] + r7[t]))


@njit(parallel=True, **_OPTS)
def across_rows_backward(x, gy, dx, lo, hi, a, k, beta, bmode, tile):
    """Gradient for windows of at most 8 taps, channel rows read in place (float64 maths).

    Pass 1 keeps ``t = g x D^(-b-1)`` and ``D^-b`` per channel row of the tile; pass 2 sums
    ``t`` over the mirrored window ``[c-hi, c+lo]``.
    """
    outer, channels, inner = x.shape
    ntiles = (inner + tile - 1) // tile
    c2 = 2.0 * beta * a
    for item in prange(outer * ntiles):
        o = item // ntiles
        p0 = (item % ntiles) * tile
        p1 = min(inner, p0 + tile)
        w = p1 - p0
        zx = np.zeros(w, dtype=x.dtype)
        zt = np.zeros(w, dtype=np.float64)
        acc = np.empty(w, dtype=np.float64)
        tt = np.empty((channels, w), dtype=np.float64)
        gain = np.empty((channels, w), dtype=np.float64)
        for c in range(channels):
            j = c - lo
            r0 = x[o, j, p0:p1] if 0 <= j < channels else zx
            r1 = x[o, j + 1, p0:p1] if hi + lo >= 1 and 0 <= j + 1 < channels else zx
            r2 = x[o, j + 2, p0:p1] if hi + lo >= 2 and 0 <= j + 2 < channels else zx
            r3 = x[o, j + 3, p0:p1] if hi + lo >= 3 and 0 <= j + 3 < channels else zx
            r4 = x[o, j + 4, p0:p1] if hi + lo >= 4 and 0 <= j + 4 < channels else zx
            r5 = x[o, j + 5, p0:p1] if hi + lo >= 5 and 0 <= j + 5 < channels else zx
            r6 = x[o, j + 6, p0:p1] if hi + lo >= 6 and 0 <= j + 6 < channels else zx
            r7 = x[o, j + 7, p0:p1] if hi + lo >= 7 and 0 <= j + 7 < channels else zx
            _sq8_f64(r0, r1, r2, r3, r4, r5, r6, r7, acc)
            for t in range(w):
                acc[t] = k + a * acc[t]
            gr = gain[c]
            _gain_of(acc, gr, beta, bmode)
            xr = x[o, c, p0:p1]
            g = gy[o, c, p0:p1]
            tr = tt[c]
            for t in range(w):
                tr[t] = np.float64(g[t]) * np.float64(xr[t]) * gr[t] / acc[t]
        for c in range(channels):
            j = c - hi
            q0 = tt[j] if 0 <= j < channels else zt
            q1 = tt[j + 1] if hi + lo >= 1 and 0 <= j + 1 < channels else zt
            q2 = tt[j + 2] if hi + lo >= 2 and 0 <= j + 2 < channels else zt
            q3 = tt[j + 3] if hi + lo >= 3 and 0 <= j + 3 < channels else zt
            q4 = tt[j + 4] if hi + lo >= 4 and 0 <= j + 4 < channels else zt
            q5 = tt[j + 5] if hi + lo >= 5 and 0 <= j + 5 < channels else zt
            q6 = tt[j + 6] if hi + lo >= 6 and 0 <= j + 6 < channels else zt
            q7 = tt[j + 7] if hi + lo >= 7 and 0 <= j + 7 < channels else zt
            _add8(q0, q1, q2, q3, q4, q5, q6, q7, acc)
            xr = x[o, c, p0:p1]
            g = gy[o, c, p0:p1]
            gr = gain[c]
            out = dx[o, c, p0:p1]
            for t in range(w):
                out[t] = np.float64(g[t]) * gr[t] - c2 * np.float64(xr[t]) * acc[t]


# Backward for C-contiguous float arrays: each work item sweeps its channels once, keeping
# the last 8 rows of t = g x D^(-b-1) and D^-b in small rings (they stay in cache), and
# finishes channel c - lo as soon as channel c is produced.  Rows are indexed directly
# (no per-row views) and typed C-contiguous, so every inner loop vectorises.


@njit(error_model="numpy", cache=True, nogil=True, fastmath={"afn", "arcp"})
def _seed_rsqrt(d32):
    """A float32 estimate of ``d ** -0.5`` (approximate ops allowed: it only seeds Newton)."""
    return np.float32(1.0) / np.sqrt(d32)


@njit(error_model="numpy", cache=True, nogil=True, fastmath={"afn", "arcp"})
def _seed_rsqrt4(d32):
    """A float32 estimate of ``d ** -0.25`` (approximate ops allowed: it only seeds Newton)."""
    return np.float32(1.0) / np.sqrt(np.sqrt(d32))


@njit(**_OPTS)
def _window_rows(j, taps, last):
    """Rows ``j..j+7``: indices clamped into ``[0, last]`` (every load valid) and flags
    saying which are inside the axis and the window (the others count as zero)."""
    i = (min(max(j, 0), last), min(max(j + 1, 0), last), min(max(j + 2, 0), last),
         min(max(j + 3, 0), last), min(max(j + 4, 0), last), min(max(j + 5, 0), last),
         min(max(j + 6, 0), last), min(max(j + 7, 0), last))
    ok = (0 <= j <= last, taps > 1 and 0 <= j + 1 <= last, taps > 2 and 0 <= j + 2 <= last,
          taps > 3 and 0 <= j + 3 <= last, taps > 4 and 0 <= j + 4 <= last,
          taps > 5 and 0 <= j + 5 <= last, taps > 6 and 0 <= j + 6 <= last,
          taps > 7 and 0 <= j + 7 <= last)
    return i, ok


@njit(**_OPTS)
def _refined_quarter(d):
    """``(D^-3/4, D^-7/4)`` from a float32 estimate of ``D^-1/4`` and one float64 Newton
    step (~1e-13 relative; valid for ``1e-30 < D < 1e30``)."""
    z = np.float64(_seed_rsqrt4(np.float32(d)))
    z2 = z * z
    z = z * (1.25 - 0.25 * d * (z2 * z2))  # Newton for z^-4 = D
    z2 = z * z
    gain = z2 * z
    return gain, gain * (z2 * z2)


@njit(**_OPTS)
def _refined_half(d):
    """``(D^-1/2, D^-3/2)`` from a float32 estimate of ``D^-1/2`` and one float64 Newton
    step (same accuracy and range as :func:`_refined_quarter`)."""
    z = np.float64(_seed_rsqrt(np.float32(d)))
    z = z * (1.5 - 0.5 * d * (z * z))  # Newton for z^-2 = D
    return z, z * (z * z)


@njit(**_OPTS)
def _seed_unusable(d):
    """1 where the float32 seed is unusable (``D`` outside ``(1e-30, 1e30)``, or NaN)."""
    return not ((d > 1e-30) & (d < 1e30))


@njit(**_OPTS)
def _refined_powers(d, gain, quarter):
    """In place: ``d <- D^(-b-1)``, ``gain <- D^-b`` for beta 0.75 (``quarter``) or 0.5, from
    a float32 seed and one float64 Newton step (:func:`_refined_quarter`).  Returns how many
    ``D`` lie outside ``(1e-30, 1e30)`` or are NaN: the caller then redoes them exactly."""
    bad = 0
    if quarter:
        for t in range(d.shape[0]):
            v = d[t]
            gain[t], d[t] = _refined_quarter(v)
            bad += _seed_unusable(v)
    else:
        for t in range(d.shape[0]):
            v = d[t]
            gain[t], d[t] = _refined_half(v)
            bad += _seed_unusable(v)
    return bad


@njit(**_OPTS)
def _bwd_refined_row(xo, go, tring, gring, c, i, ok, a, k, quarter):
    """Ring rows of channel ``c`` for float32 input and beta 0.75 (``quarter``) or 0.5.

    ``D`` is summed in float64 exactly as in :func:`_bwd_exact_row`; ``D^-1/4`` (or
    ``D^-1/2``) starts from a float32 estimate and one Newton step in float64 brings it to
    ~1e-13 relative, far below float32 rounding, for a fraction of the cost of float64
    ``sqrt`` and division.  Returns how many ``D`` fall outside ``(1e-30, 1e30)`` (or are
    NaN), where the float32 seed is unusable; the caller then redoes the row exactly.
    """
    slot = c & 7
    bad = 0
    if quarter:
        for t in range(xo.shape[1]):
            d = k + a * _window_squares(xo, i, ok, t, 1.0)
            gain, over_d = _refined_quarter(d)
            gring[slot, t] = gain
            tring[slot, t] = np.float64(go[c, t]) * np.float64(xo[c, t]) * over_d
            bad += _seed_unusable(d)
    else:
        for t in range(xo.shape[1]):
            d = k + a * _window_squares(xo, i, ok, t, 1.0)
            gain, over_d = _refined_half(d)
            gring[slot, t] = gain
            tring[slot, t] = np.float64(go[c, t]) * np.float64(xo[c, t]) * over_d
            bad += _seed_unusable(d)
    return bad


@njit(**_OPTS)
def _bwd_refined_row5(xo, go, tring, gring, c, j, a, k):
    """:func:`_bwd_refined_row` (beta 0.75) for a 5-tap window inside the axis: rows
    ``j..j+4``, no zero rows to select (adding them adds exact zeros: the same bits)."""
    slot = c & 7
    bad = 0
    for t in range(xo.shape[1]):
        d = k + a * _inner_squares5(xo, j, t, 1.0)
        gain, over_d = _refined_quarter(d)
        gring[slot, t] = gain
        tring[slot, t] = np.float64(go[c, t]) * np.float64(xo[c, t]) * over_d
        bad += _seed_unusable(d)
    return bad


@njit(**_OPTS)
def _bwd_finish_row5(xo, go, do, tring, gring, c, j, c2):
    """:func:`_bwd_finish_row` for a 5-tap mirrored window inside the axis."""
    s0, s1, s2, s3, s4 = j & 7, (j + 1) & 7, (j + 2) & 7, (j + 3) & 7, (j + 4) & 7
    g_slot = c & 7
    for t in range(xo.shape[1]):
        s = ((tring[s0, t] + tring[s1, t]) + (tring[s2, t] + tring[s3, t])) + tring[s4, t]
        do[c, t] = np.float64(go[c, t]) * gring[g_slot, t] - c2 * np.float64(xo[c, t]) * s


@njit(**_OPTS)
def _bwd_exact_row(xo, go, tring, gring, c, i, ok, a, k, beta, bmode):
    """Ring rows of channel ``c`` with float64 ``sqrt``/division/``pow`` (any beta, any D)."""
    slot = c & 7
    tr = tring[slot]
    gr = gring[slot]
    for t in range(xo.shape[1]):
        tr[t] = k + a * _window_squares(xo, i, ok, t, 1.0)
    _gain_of(tr, gr, beta, bmode)
    for t in range(xo.shape[1]):
        tr[t] = np.float64(go[c, t]) * np.float64(xo[c, t]) * gr[t] / tr[t]


@njit(**_OPTS)
def _bwd_finish_row(xo, go, do, tring, gring, c, j, ok, c2):
    """``dx[c] = g D^-b - c2 x (sum of t over the mirrored window)``; ``t`` of channel
    ``j + u`` sits in ring slot ``(j + u) & 7``."""
    s0, s1, s2, s3 = j & 7, (j + 1) & 7, (j + 2) & 7, (j + 3) & 7
    s4, s5, s6, s7 = (j + 4) & 7, (j + 5) & 7, (j + 6) & 7, (j + 7) & 7
    g_slot = c & 7
    zero = np.float64(0.0)
    for t in range(xo.shape[1]):
        s = _masked_sum8(tring[s0, t], tring[s1, t], tring[s2, t], tring[s3, t],
                         tring[s4, t], tring[s5, t], tring[s6, t], tring[s7, t], ok, zero)
        do[c, t] = np.float64(go[c, t]) * gring[g_slot, t] - c2 * np.float64(xo[c, t]) * s


@njit(parallel=True, **_OPTS)
def across_rows_backward_contiguous(x, gy, dx, lo, hi, a, k, beta, bmode, chunk, refine):
    """Gradient for C-contiguous ``x``, ``gy``, ``dx`` (outer, C, inner), windows of at
    most 8 taps, whole rows.

    A work item is ``chunk`` output channels of one outer index; it produces ``t`` and
    ``D^-b`` for channels ``[c0-hi, c1+lo)`` (the halo is recomputed, so any chunking gives
    the same bits) and finishes channel ``c - lo`` right after producing channel ``c``.
    ``refine``: float32 input with beta 0.75 or 0.5 (see :func:`_bwd_refined_row`).
    """
    outer, channels, inner = x.shape
    nchunks = (channels + chunk - 1) // chunk
    taps = lo + hi + 1
    last = channels - 1
    c2 = 2.0 * beta * a
    quarter = bmode == BETA_075
    five = quarter and taps == 5
    for item in prange(outer * nchunks):
        o = item // nchunks
        c0 = (item % nchunks) * chunk
        c1 = min(channels, c0 + chunk)
        xo = x[o]
        go = gy[o]
        do = dx[o]
        tring = np.empty((8, inner), dtype=np.float64)
        gring = np.empty((8, inner), dtype=np.float64)
        for c in range(max(0, c0 - hi), min(channels, c1 + lo) + lo):
            if c < min(channels, c1 + lo):
                j = c - lo
                i, ok = _window_rows(j, taps, last)
                if not refine:
                    _bwd_exact_row(xo, go, tring, gring, c, i, ok, a, k, beta, bmode)
                elif five and 0 <= j and j + 4 <= last:
                    if _bwd_refined_row5(xo, go, tring, gring, c, j, a, k):
                        _bwd_exact_row(xo, go, tring, gring, c, i, ok, a, k, beta, bmode)
                elif _bwd_refined_row(xo, go, tring, gring, c, i, ok, a, k, quarter):
                    _bwd_exact_row(xo, go, tring, gring, c, i, ok, a, k, beta, bmode)
            cc = c - lo
            if c0 <= cc < c1:
                j = cc - hi
                if taps == 5 and 0 <= j and j + 4 <= last:
                    _bwd_finish_row5(xo, go, do, tring, gring, cc, j, c2)
                else:
                    i, ok = _window_rows(j, taps, last)
                    _bwd_finish_row(xo, go, do, tring, gring, cc, j, ok, c2)


@njit(**_OPTS)
def _load_across(x, o, p0, buf, channel_fast):
    """Copy the block ``x[o, :, p0:p0+T]`` into ``buf`` (in its dtype)."""
    channels, tile = buf.shape
    if channel_fast:
        for t in range(tile):
            for c in range(channels):
                buf[c, t] = x[o, c, p0 + t]
    else:
        for c in range(channels):
            row = x[o, c, p0:p0 + tile]
            dst = buf[c]
            for t in range(tile):
                dst[t] = row[t]


@njit(**_OPTS)
def _store_across(out, o, p0, block, channel_fast):
    """Write the scratch ``block`` (C, T) to ``out[o, :, p0:p0+T]``."""
    channels, tile = block.shape
    if channel_fast:
        for t in range(tile):
            for c in range(channels):
                out[o, c, p0 + t] = block[c, t]
    else:
        for c in range(channels):
            row = out[o, c, p0:p0 + tile]
            src = block[c]
            for t in range(tile):
                row[t] = src[t]


@njit(**_OPTS)
def _square(src, dst):
    for r in range(src.shape[0]):
        s = src[r]
        q = dst[r]
        for t in range(src.shape[1]):
            q[t] = s[t] * s[t]


@njit(parallel=True, **_OPTS)
def across_forward(x, y, d, want_y, want_d, lo, hi, a, k, beta, bmode, tile, blocks, acc_dtype,
                   base):
    """LRN across axis 1 of ``x`` (outer, C, inner), any window and any strides.

    Each work item copies a (C, tile) block to scratch (transposing channels-last data),
    sums windows there (directly, or by blocks for long windows) and writes ``y``/``d``.
    ``acc_dtype`` is a zero-size array whose dtype is the accumulation dtype; channel 0
    of ``x`` is channel ``base`` of the whole array (it anchors the block sums).
    """
    outer, channels, inner = x.shape
    ntiles = (inner + tile - 1) // tile
    channel_fast = x.strides[1] < x.strides[2]
    ext = channels + lo + hi
    for item in prange(outer * ntiles):
        o = item // ntiles
        p0 = (item % ntiles) * tile
        width = min(inner, p0 + tile) - p0
        buf = np.empty((channels, width), dtype=acc_dtype.dtype)
        sq = np.empty((channels, width), dtype=acc_dtype.dtype)
        rows = ext if blocks else 0
        pre = np.empty((rows, width), dtype=acc_dtype.dtype)
        suf = np.empty((rows, width), dtype=acc_dtype.dtype)
        _load_across(x, o, p0, buf, channel_fast)
        _square(buf, sq)
        if blocks:
            _wsum_rows_blocks(sq, sq, lo, hi, pre, suf, base)
        else:
            s = np.empty((channels, width), dtype=acc_dtype.dtype)
            _wsum_rows_direct(sq, s, lo, hi)
            sq = s
        if want_d:
            out = np.empty((channels, width), dtype=acc_dtype.dtype)
            for c in range(channels):
                _divisor_row(sq[c], out[c], a, k)
            _store_across(d, o, p0, out, channel_fast)
        if want_y:
            for c in range(channels):
                _finish_row(sq[c], buf[c], buf[c], a, k, beta, bmode)
            _store_across(y, o, p0, buf, channel_fast)


@njit(parallel=True, **_OPTS)
def across_backward(x, gy, dx, lo, hi, a, k, beta, bmode, tile, blocks, base):
    """Gradient of :func:`across_forward` w.r.t. ``x`` (float64 scratch).

    ``dx_j = g_j D_j^-b - 2 b a x_j sum_{i in [j-hi, j+lo]} g_i x_i D_i^(-b-1)``.
    """
    outer, channels, inner = x.shape
    ntiles = (inner + tile - 1) // tile
    channel_fast = x.strides[1] < x.strides[2]
    ext = channels + lo + hi
    for item in prange(outer * ntiles):
        o = item // ntiles
        p0 = (item % ntiles) * tile
        width = min(inner, p0 + tile) - p0
        xb = np.empty((channels, width), dtype=np.float64)
        gb = np.empty((channels, width), dtype=np.float64)
        s = np.empty((channels, width), dtype=np.float64)
        gain = np.empty((channels, width), dtype=np.float64)
        rows = ext if blocks else 0
        pre = np.empty((rows, width), dtype=np.float64)
        suf = np.empty((rows, width), dtype=np.float64)
        _load_across(x, o, p0, xb, channel_fast)
        _load_across(gy, o, p0, gb, channel_fast)
        _square(xb, gain)
        _wsum_rows(gain, s, lo, hi, blocks, pre, suf, base)
        for c in range(channels):
            sr = s[c]
            gr = gain[c]
            xr = xb[c]
            br = gb[c]
            for t in range(width):
                sr[t] = k + a * sr[t]
            _gain_of(sr, gr, beta, bmode)
            for t in range(width):
                sr[t] = br[t] * xr[t] * gr[t] / sr[t]
        if blocks:
            _wsum_rows_blocks(s, s, hi, lo, pre, suf, base)
        else:
            u = np.empty((channels, width), dtype=np.float64)
            _wsum_rows_direct(s, u, hi, lo)
            s = u
        c2 = 2.0 * beta * a
        for c in range(channels):
            sr = s[c]
            gr = gain[c]
            xr = xb[c]
            br = gb[c]
            for t in range(width):
                sr[t] = br[t] * gr[t] - c2 * xr[t] * sr[t]
        _store_across(dx, o, p0, s, channel_fast)


# ----------------------------------------------------------------------------------------
# within a channel: arrays viewed as (planes, H, W); a work item is (plane, strip of rows)


@njit(**_OPTS)
def _group_box_sums(sq, planes, width, lo, hi, vert, trans, pre, suf, pret, suft, base_h,
                    base_w):
    """Box sums of ``planes`` strips laid side by side in ``sq`` (rows, planes*W).

    Down the columns into ``vert``, then transposed into ``trans`` (W, planes*rows) and
    along the original rows, so both passes run over long vectorisable rows even for small
    planes.  The result is ``trans[w, g*rows + r]``.
    """
    rows = sq.shape[0]
    _wsum_rows_blocks(sq, vert, lo, hi, pre, suf, base_h)
    for g in range(planes):
        for r in range(rows):
            v = vert[r, g * width:(g + 1) * width]
            col = g * rows + r
            for w in range(width):
                trans[w, col] = v[w]
    _wsum_rows_blocks(trans, trans, lo, hi, pret, suft, base_w)


@njit(**_OPTS)
def _load_group_squares(x, g0, planes, r0, sq):
    rows = sq.shape[0]
    width = x.shape[2]
    for g in range(planes):
        for r in range(rows):
            src = x[g0 + g, r0 + r]
            dst = sq[r, g * width:(g + 1) * width]
            for w in range(width):
                dst[w] = src[w] * src[w]


@njit(parallel=True, **_OPTS)
def within_forward(x, y, d, want_y, want_d, lo, hi, a, k, beta, bmode, group, strip,
                   acc_dtype, base_h, base_w):
    """LRN over a ``size x size`` box in each plane of ``x`` (planes, H, W).

    A work item is ``group`` planes (small planes) or a strip of one plane (large ones);
    O(1) per element whatever the size (block prefix/suffix sums on both axes).
    """
    planes, height, width = x.shape
    nstrips = (height + strip - 1) // strip
    ngroups = (planes + group - 1) // group
    m = lo + hi + 1
    for item in prange(ngroups * nstrips):
        g0 = (item // nstrips) * group
        gn = min(planes, g0 + group) - g0
        h0 = (item % nstrips) * strip
        h1 = min(height, h0 + strip)
        r0 = max(0, h0 - lo)
        rows = min(height, h1 + hi) - r0
        dt = acc_dtype.dtype
        sq = np.empty((rows, gn * width), dtype=dt)
        vert = np.empty((rows, gn * width), dtype=dt)
        trans = np.empty((width, gn * rows), dtype=dt)
        pre = np.empty((rows + m, gn * width), dtype=dt)
        suf = np.empty((rows + m, gn * width), dtype=dt)
        pret = np.empty((width + m, gn * rows), dtype=dt)
        suft = np.empty((width + m, gn * rows), dtype=dt)
        acc = np.empty(width, dtype=dt)
        _load_group_squares(x, g0, gn, r0, sq)
        _group_box_sums(sq, gn, width, lo, hi, vert, trans, pre, suf, pret, suft,
                        base_h + r0, base_w)
        for g in range(gn):
            for h in range(h0, h1):
                col = g * rows + h - r0
                for w in range(width):
                    acc[w] = trans[w, col]
                if want_d:
                    _divisor_row(acc, d[g0 + g, h], a, k)
                if want_y:
                    _finish_row(acc, x[g0 + g, h], y[g0 + g, h], a, k, beta, bmode)


@njit(parallel=True, **_OPTS)
def within_backward(x, gy, dx, lo, hi, a, k, beta, bmode, group, strip, base_h, base_w):
    """Gradient of :func:`within_forward` w.r.t. ``x``; the adjoint box is mirrored."""
    planes, height, width = x.shape
    nstrips = (height + strip - 1) // strip
    ngroups = (planes + group - 1) // group
    m = lo + hi + 1
    c2 = 2.0 * beta * a
    # rows [h0, h1) need t on rows [h0-hi, h1+lo), whose S needs x on [h0-hi-lo, h1+lo+hi)
    for item in prange(ngroups * nstrips):
        g0 = (item // nstrips) * group
        gn = min(planes, g0 + group) - g0
        h0 = (item % nstrips) * strip
        h1 = min(height, h0 + strip)
        r0 = max(0, h0 - lo - hi)
        rows = min(height, h1 + lo + hi) - r0
        sq = np.empty((rows, gn * width), dtype=np.float64)
        vert = np.empty((rows, gn * width), dtype=np.float64)
        trans = np.empty((width, gn * rows), dtype=np.float64)
        pre = np.empty((rows + m, gn * width), dtype=np.float64)
        suf = np.empty((rows + m, gn * width), dtype=np.float64)
        pret = np.empty((width + m, gn * rows), dtype=np.float64)
        suft = np.empty((width + m, gn * rows), dtype=np.float64)
        gain = np.empty((rows, gn * width), dtype=np.float64)
        acc = np.empty(width, dtype=np.float64)
        _load_group_squares(x, g0, gn, r0, sq)
        _group_box_sums(sq, gn, width, lo, hi, vert, trans, pre, suf, pret, suft,
                        base_h + r0, base_w)
        # sq <- t = g x D^-b / D and gain <- D^-b, for every row of the strip
        for g in range(gn):
            for r in range(rows):
                xr = x[g0 + g, r0 + r]
                gr = gy[g0 + g, r0 + r]
                col = g * rows + r
                for w in range(width):
                    acc[w] = k + a * trans[w, col]
                gn_row = gain[r, g * width:(g + 1) * width]
                _gain_of(acc, gn_row, beta, bmode)
                q = sq[r, g * width:(g + 1) * width]
                for w in range(width):
                    q[w] = gr[w] * xr[w] * gn_row[w] / acc[w]
        _group_box_sums(sq, gn, width, hi, lo, vert, trans, pre, suf, pret, suft,
                        base_h + r0, base_w)
        for g in range(gn):
            for h in range(h0, h1):
                r = h - r0
                col = g * rows + r
                xr = x[g0 + g, h]
                gr = gy[g0 + g, h]
                gn_row = gain[r, g * width:(g + 1) * width]
                out = dx[g0 + g, h]
                for w in range(width):
                    out[w] = gr[w] * gn_row[w] - c2 * xr[w] * trans[w, col]
