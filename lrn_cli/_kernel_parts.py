"""The pieces every LRN kernel is built from: the closed forms of the gain, the fixed
summation trees, window sums along an axis, and the loads and stores of scratch blocks.

Every window sum of the short-window kernels goes through :func:`_tree8` (or the 4- and
5-term trees that equal it when the missing terms are zeros), and every gain through one
``_scale_*`` helper per closed form, so all drivers give the same bits.  The helpers are
scalar and tiny: LLVM inlines them into the callers' loops, which still vectorise.  The
closed form is chosen *outside* each loop (one loop per form): an ``if`` inside the inner
loop is not hoisted and costs ~3x.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from lrn_cli._jit import BETA_0, BETA_025, BETA_05, BETA_075, BETA_1, BETA_2, BETA_15
from lrn_cli._kernel_cache import drop_stale_caches
from lrn_cli._vector_width import install as _install_vector_width

#: Options of every kernel (IEEE results, no zero-division checks, cached, GIL released).
_OPTS: dict[str, Any] = {"cache": True, "error_model": "numpy", "nogil": True}

#: Taps one fixed tree of the short-window kernels holds (8 rows in registers).  A kernel
#: constant, not a dispatch threshold: Numba's cache does not see a change of another
#: module's constant.  ``lrn_cli.dispatch.ROW_KERNEL_TAPS`` may not exceed it (a test checks).
TREE_TAPS = 8


# ----------------------------------------------------------------------------------------
# x * D ** -beta, one helper per closed form.  They never form a power of D above 1
# (D^0.75 is sqrt(D) * sqrt(sqrt(D))), so no intermediate overflows where the result does not


@njit(**_OPTS)
def _scale_075(x, d):
    """``x * d ** -0.75``."""
    q = np.sqrt(d)
    return x / (q * np.sqrt(q))


@njit(**_OPTS)
def _scale_05(x, d):
    """``x * d ** -0.5``."""
    return x / np.sqrt(d)


@njit(**_OPTS)
def _scale_1(x, d):
    """``x * d ** -1``."""
    return x / d


@njit(**_OPTS)
def _scale_025(x, d):
    """``x * d ** -0.25``."""
    return x / np.sqrt(np.sqrt(d))


@njit(**_OPTS)
def _scale_15(x, d):
    """``x * d ** -1.5``."""
    return x / np.sqrt(d) / d


@njit(**_OPTS)
def _scale_2(x, d):
    """``x * d ** -2``."""
    return x / d / d


@njit(**_OPTS)
def _scale_pow(x, d, nb):
    """``x * d ** nb`` (any beta: ``nb = -beta``; ``pow`` costs ~10x the closed forms)."""
    return x * d ** nb


@njit(**_OPTS)
def _finish_row(acc, xc, yc, a, k, beta, mode):
    """``yc[t] = xc[t] * (k + a*acc[t]) ** -beta``; ``yc`` may be ``acc`` itself."""
    n = acc.shape[0]
    if mode == BETA_075:
        for t in range(n):
            yc[t] = _scale_075(xc[t], k + a * acc[t])
    elif mode == BETA_05:
        for t in range(n):
            yc[t] = _scale_05(xc[t], k + a * acc[t])
    elif mode == BETA_1:
        for t in range(n):
            yc[t] = _scale_1(xc[t], k + a * acc[t])
    elif mode == BETA_0:
        for t in range(n):
            yc[t] = xc[t]
    elif mode == BETA_025:
        for t in range(n):
            yc[t] = _scale_025(xc[t], k + a * acc[t])
    elif mode == BETA_15:
        for t in range(n):
            yc[t] = _scale_15(xc[t], k + a * acc[t])
    elif mode == BETA_2:
        for t in range(n):
            yc[t] = _scale_2(xc[t], k + a * acc[t])
    else:
        nb = -beta
        for t in range(n):
            yc[t] = _scale_pow(xc[t], k + a * acc[t], nb)


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
            g[t] = _scale_075(1.0, d[t])
    elif mode == BETA_05:
        for t in range(n):
            g[t] = _scale_05(1.0, d[t])
    elif mode == BETA_1:
        for t in range(n):
            g[t] = _scale_1(1.0, d[t])
    elif mode == BETA_0:
        for t in range(n):
            g[t] = 1.0
    else:
        nb = -beta
        for t in range(n):
            g[t] = d[t] ** nb


# ----------------------------------------------------------------------------------------
# the summation trees


@njit(**_OPTS)
def _tree8(v0, v1, v2, v3, v4, v5, v6, v7):
    """The fixed 8-term tree ``((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7))``: every short
    window sum (forward and backward, squares and the backward's mirrored sums)."""
    return ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7))


@njit(**_OPTS)
def _tree4(v0, v1, v2, v3):
    """The 4-term tree: :func:`_tree8` with four zeros (which add exact zeros)."""
    return (v0 + v1) + (v2 + v3)


@njit(**_OPTS)
def _squares8(v0, v1, v2, v3, v4, v5, v6, v7):
    """:func:`_tree8` of the squares."""
    return _tree8(v0 * v0, v1 * v1, v2 * v2, v3 * v3, v4 * v4, v5 * v5, v6 * v6, v7 * v7)


@njit(**_OPTS)
def _squares4(v0, v1, v2, v3):
    """:func:`_tree4` of the squares."""
    return _tree4(v0 * v0, v1 * v1, v2 * v2, v3 * v3)


@njit(**_OPTS)
def _tree5(v0, v1, v2, v3, v4):
    """:func:`_masked_tree8` of five flagged values and three zeros (which add exact zeros:
    sums of squares are never -0, so the bits are the same)."""
    return ((v0 * v0 + v1 * v1) + (v2 * v2 + v3 * v3)) + v4 * v4


@njit(**_OPTS)
def _masked_sum8(v0, v1, v2, v3, v4, v5, v6, v7, ok, zero):
    """:func:`_tree8` of ``v0..v7``, those not flagged in ``ok`` counted as ``zero``.
    Small enough to be inlined into the vectorised loops."""
    k0, k1, k2, k3, k4, k5, k6, k7 = ok
    return _tree8(v0 if k0 else zero, v1 if k1 else zero, v2 if k2 else zero,
                  v3 if k3 else zero, v4 if k4 else zero, v5 if k5 else zero,
                  v6 if k6 else zero, v7 if k7 else zero)


@njit(**_OPTS)
def _masked_tree8(w0, w1, w2, w3, w4, w5, w6, w7, ok, zero):
    """:func:`_masked_sum8` of the squares of ``w0..w7`` (squaring a masked-out value or
    masking its square both give +0: the same bits)."""
    return _masked_sum8(w0 * w0, w1 * w1, w2 * w2, w3 * w3, w4 * w4, w5 * w5, w6 * w6,
                        w7 * w7, ok, zero)


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


# ----------------------------------------------------------------------------------------
# window sums along axis 0 of a 2-D block, vectorised along axis 1


@njit(**_OPTS)
def _wsum_rows_tree(src, dst, lo, hi):
    """Direct window sums of up to 8 taps in exactly the order of the row kernels
    (:func:`_tree4` / :func:`_tree8`, zeros outside the axis), so both give the same bits."""
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
                out[t] = _tree4(q0[t], q1[t], q2[t], q3[t])
        else:
            q4 = src[j + 4] if 0 <= j + 4 < length else zero
            q5 = src[j + 5] if taps > 5 and 0 <= j + 5 < length else zero
            q6 = src[j + 6] if taps > 6 and 0 <= j + 6 < length else zero
            q7 = src[j + 7] if taps > 7 and 0 <= j + 7 < length else zero
            for t in range(width):
                out[t] = _tree8(q0[t], q1[t], q2[t], q3[t], q4[t], q5[t], q6[t], q7[t])


@njit(**_OPTS)
def _wsum_rows_direct(src, dst, lo, hi):
    """``dst[i] = sum(src[j] for j in [i-lo, i+hi] ∩ [0, L))``, summed in index order
    (up to 8 taps: in the order of the row kernel)."""
    length, width = src.shape
    if lo + hi + 1 <= TREE_TAPS:
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
def _block_scan(src, out, lo, start, stop, step):
    """``out[e]`` = sum of the padded rows from ``start`` to ``e``, for ``e`` from ``start``
    towards ``stop`` (excluded) by ``step``: prefix sums of a block (``step = 1``) or its
    suffix sums (``step = -1``).  Row ``e`` of the padded axis is row ``e - lo`` of ``src``
    (zero outside it); each sum is the previous one plus the new row."""
    length, width = src.shape
    for e in range(start, stop, step):
        j = e - lo
        p = out[e]
        inside = 0 <= j < length
        if e == start:
            if inside:
                row = src[j]
                for t in range(width):
                    p[t] = row[t]
            else:
                for t in range(width):
                    p[t] = 0.0
        else:
            prev = out[e - step]
            if inside:
                row = src[j]
                for t in range(width):
                    p[t] = prev[t] + row[t]
            else:
                for t in range(width):
                    p[t] = prev[t]


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
        _block_scan(src, pre, lo, b0, b1, 1)
        _block_scan(src, suf, lo, b1 - 1, b0 - 1, -1)
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
# scratch blocks of the general across kernels: (C, tile) copies of (outer, C, inner) arrays


@njit(**_OPTS)
def _tiling(x, tile):
    """``(outer, C, inner, ntiles, channel_fast)`` of the (C, tile) blocks of ``x``."""
    outer, channels, inner = x.shape
    return outer, channels, inner, (inner + tile - 1) // tile, x.strides[1] < x.strides[2]


@njit(**_OPTS)
def _tile_scratch(channels, width, like):
    """Three (C, width) scratch blocks in ``like``'s dtype."""
    dt = like.dtype
    return (np.empty((channels, width), dtype=dt), np.empty((channels, width), dtype=dt),
            np.empty((channels, width), dtype=dt))


@njit(**_OPTS)
def _load_window_sums(x, o, p0, lo, hi, blocks, base, buf, sq, s, channel_fast):
    """``buf`` <- the block ``x[o, :, p0:p0+T]``, ``sq`` <- its squares, ``s`` <- their
    window sums (directly or by blocks); returns the block sums' scratch ``(pre, suf)``
    (empty for direct sums) for a second pass."""
    channels, width = buf.shape
    rows = channels + lo + hi if blocks else 0
    pre = np.empty((rows, width), dtype=buf.dtype)
    suf = np.empty((rows, width), dtype=buf.dtype)
    _load_across(x, o, p0, buf, channel_fast)
    _square(buf, sq)
    _wsum_rows(sq, s, lo, hi, blocks, pre, suf, base)
    return pre, suf


@njit(**_OPTS)
def _tile_item(item, ntiles, tile, inner):
    """Work item ``item`` of ``outer * ntiles`` (C, tile) blocks: ``(o, p0, width)``."""
    o = item // ntiles
    p0 = (item % ntiles) * tile
    return o, p0, min(inner, p0 + tile) - p0


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


# Before any kernel of these modules is loaded from Numba's cache (see lrn_cli._kernel_cache).
drop_stale_caches(getattr(getattr(_scale_075, "stats", None), "cache_path", None))
_install_vector_width()  # before any kernel compiles: see lrn_cli._vector_width
