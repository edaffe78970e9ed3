"""LRN within a channel: box sums over arrays viewed as ``(planes, H, W)``.

A work item is ``group`` planes laid side by side (small planes, so rows are long enough
to vectorise) or a strip of rows of one plane (large planes, with a halo of window rows);
box sums are O(1) per element whatever the size (block prefix/suffix sums along both axes,
anchored to absolute positions, so any cut into strips or chunks gives the same bits).
Which sizes run is decided in :func:`lrn_cli.dispatch.within_work`.  Common parameters:

lo, hi : int
    The box of row (column) ``i`` spans ``[i - lo, i + hi]``, clipped to the plane.
a, k, beta, bmode
    The resolved constants and the closed form of ``D ** -beta`` (``lrn_cli._jit.BETA_*``).
group, strip : int
    Planes per work item and output rows per work item.
base_h, base_w : int
    Row 0 and column 0 of these planes are row ``base_h`` and column ``base_w`` of the
    whole array (they anchor the block sums of chunked callers).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from lrn_cli._kernel_parts import _OPTS, _divisor_row, _finish_row, _gain_of, _wsum_rows_blocks


@njit(**_OPTS)
def _strip_item(item, nstrips, group, strip, planes, height, before, after):
    """Work item ``item``: planes ``g0 .. g0+gn``, output rows ``h0 .. h1`` and the rows
    ``r0 .. r0+rows`` they read (``before`` / ``after`` rows of halo, clipped)."""
    g0 = (item // nstrips) * group
    gn = min(planes, g0 + group) - g0
    h0 = (item % nstrips) * strip
    h1 = min(height, h0 + strip)
    r0 = max(0, h0 - before)
    return g0, gn, h0, h1, r0, min(height, h1 + after) - r0


@njit(**_OPTS)
def _box_scratch(rows, planes, width, m, like):
    """Scratch of :func:`_group_box_sums` in ``like``'s dtype: ``(vert, trans, pre, suf,
    pret, suft)``."""
    dt = like.dtype
    return (np.empty((rows, planes * width), dtype=dt),
            np.empty((width, planes * rows), dtype=dt),
            np.empty((rows + m, planes * width), dtype=dt),
            np.empty((rows + m, planes * width), dtype=dt),
            np.empty((width + m, planes * rows), dtype=dt),
            np.empty((width + m, planes * rows), dtype=dt))


@njit(**_OPTS)
def _group_box_sums(sq, planes, width, lo, hi, scratch, base_h, base_w):
    """Box sums of ``planes`` strips laid side by side in ``sq`` (rows, planes*W).

    Down the columns into ``vert``, then transposed into ``trans`` (W, planes*rows) and
    along the original rows, so both passes run over long vectorisable rows even for small
    planes.  The result is ``trans[w, g*rows + r]`` (``scratch[1]``).
    """
    vert, trans, pre, suf, pret, suft = scratch
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
def _load_group_squares(x, g0, planes, r0, sq, one):
    """``sq[r, g*W + w] = (x[g0+g, r0+r, w] * one) ** 2``: squares in ``one``'s dtype
    (multiplying by one is exact: it widens, or changes nothing)."""
    rows = sq.shape[0]
    width = x.shape[2]
    for g in range(planes):
        for r in range(rows):
            src = x[g0 + g, r0 + r]
            dst = sq[r, g * width:(g + 1) * width]
            for w in range(width):
                v = src[w] * one
                dst[w] = v * v


@njit(parallel=True, **_OPTS)
def within_forward(x, y, d, want_y, want_d, lo, hi, a, k, beta, bmode, group, strip,
                   acc_dtype, base_h, base_w):
    """LRN over a ``size x size`` box in each plane of ``x``.

    Parameters
    ----------
    x, y, d : ndarray, (planes, H, W)
        Input, result and divisor (an unwanted output is an empty array: one compiled
        variant serves every combination).
    want_y, want_d : bool
        Which outputs to write.
    lo, hi, a, k, beta, bmode, group, strip, base_h, base_w
        As in the module docstring (``a``, ``k``, ``beta`` in the accumulation dtype).
    acc_dtype : ndarray
        A zero-size array whose dtype is the accumulation dtype (float64 beyond
        ``lrn_cli.dispatch.ACC32_TAPS_WITHIN`` taps); squares are formed in ``x``'s dtype.
    """
    planes, height, width = x.shape
    nstrips = (height + strip - 1) // strip
    ngroups = (planes + group - 1) // group
    m = lo + hi + 1
    one = np.ones(1, dtype=x.dtype)[0]
    for item in prange(ngroups * nstrips):
        g0, gn, h0, h1, r0, rows = _strip_item(item, nstrips, group, strip, planes, height,
                                               lo, hi)
        sq = np.empty((rows, gn * width), dtype=acc_dtype.dtype)
        scratch = _box_scratch(rows, gn, width, m, acc_dtype)
        trans = scratch[1]
        acc = np.empty(width, dtype=acc_dtype.dtype)
        _load_group_squares(x, g0, gn, r0, sq, one)
        _group_box_sums(sq, gn, width, lo, hi, scratch, base_h + r0, base_w)
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
    """Gradient of :func:`within_forward` w.r.t. ``x``; the adjoint box is mirrored.

    Every value is widened to float64 before it is squared or multiplied (as the across
    backward kernels do), so float32 input gets the float64 input's arithmetic exactly.

    Parameters
    ----------
    x, gy, dx : ndarray, (planes, H, W)
        Input, the output's gradient, the input's gradient.
    lo, hi, a, k, beta, bmode, group, strip, base_h, base_w
        As in the module docstring (``a``, ``k``, ``beta``: Python floats).
    """
    planes, height, width = x.shape
    nstrips = (height + strip - 1) // strip
    ngroups = (planes + group - 1) // group
    m = lo + hi + 1
    c2 = 2.0 * beta * a
    like = np.empty(0, dtype=np.float64)
    # rows [h0, h1) need t on rows [h0-hi, h1+lo), whose S needs x on [h0-hi-lo, h1+lo+hi)
    for item in prange(ngroups * nstrips):
        g0, gn, h0, h1, r0, rows = _strip_item(item, nstrips, group, strip, planes, height,
                                               lo + hi, lo + hi)
        sq = np.empty((rows, gn * width), dtype=np.float64)
        scratch = _box_scratch(rows, gn, width, m, like)
        trans = scratch[1]
        gain = np.empty((rows, gn * width), dtype=np.float64)
        acc = np.empty(width, dtype=np.float64)
        _load_group_squares(x, g0, gn, r0, sq, 1.0)
        _group_box_sums(sq, gn, width, lo, hi, scratch, base_h + r0, base_w)
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
                    q[w] = np.float64(gr[w]) * np.float64(xr[w]) * gn_row[w] / acc[w]
        _group_box_sums(sq, gn, width, hi, lo, scratch, base_h + r0, base_w)
        for g in range(gn):
            for h in range(h0, h1):
                r = h - r0
                col = g * rows + r
                xr = x[g0 + g, h]
                gr = gy[g0 + g, h]
                gn_row = gain[r, g * width:(g + 1) * width]
                out = dx[g0 + g, h]
                for w in range(width):
                    out[w] = (np.float64(gr[w]) * gn_row[w]
                              - c2 * np.float64(xr[w]) * trans[w, col])
