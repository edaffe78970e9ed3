"""LRN across channels, forward: the drivers for arrays viewed as ``(outer, C, inner)``.

Which one runs for which input is decided in :mod:`lrn_cli.dispatch`; all four give the
same bits for the same values.  Common parameters of the drivers:

x : ndarray, (outer, C, inner)
    The input (float32 or float64); channels on axis 1.
y, d : ndarray, same shape and dtype as ``x``
    Where the result and the divisor ``D = k + a*S`` go.
lo, hi : int
    The window of channel ``c`` is ``[c - lo, c + hi]`` (taps ``lo + hi + 1``), clipped to
    the axis (channels outside count as zeros).
a, k, beta : float
    The resolved constants ``a'``, ``k'`` and the power, in ``x``'s dtype (``across_forward``:
    in the accumulation dtype).
bmode : int
    The closed form of ``D ** -beta`` (``lrn_cli._jit.BETA_*``), chosen outside the loops.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from lrn_cli._jit import BETA_05, BETA_075, BETA_GENERAL, Variants
from lrn_cli._kernel_parts import (
    _OPTS,
    _divisor_row,
    _finish_row,
    _load_window_sums,
    _masked_tree8,
    _padded_window_sums,
    _scale_05,
    _scale_075,
    _squares4,
    _squares8,
    _store_across,
    _tile_item,
    _tile_scratch,
    _tiling,
    _tree5,
    _window_rows,
)

# Compile-time constants of the kernels built with `Variants` (each variant sets its own;
# these defaults are never compiled): which outputs a kernel writes, whether its window
# has at most 4 taps (the 4-term tree) rather than 5 to 8, and the closed form of the gain.
WANT_Y = True
WANT_D = False
TAPS4 = False
BMODE = BETA_GENERAL


# ----------------------------------------------------------------------------------------
# the unrolled row kernel (any strides with channel rows, short windows)


@njit(**_OPTS)
def _sum8(r0, r1, r2, r3, r4, r5, r6, r7, acc):
    for t in range(acc.shape[0]):
        acc[t] = _squares8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t], r7[t])


@njit(**_OPTS)
def _sum4(r0, r1, r2, r3, acc):
    for t in range(acc.shape[0]):
        acc[t] = _squares4(r0[t], r1[t], r2[t], r3[t])


@njit(**_OPTS)
def _fused8(r0, r1, r2, r3, r4, r5, r6, r7, xc, yc, acc, a, k, beta, mode):
    """``yc = xc * (k + a * sum of squares of 8 rows) ** -beta`` in one pass for the common
    betas (same tree and operations as ``_sum8`` + ``_finish_row``, so the same bits)."""
    n = xc.shape[0]
    if mode == BETA_075:
        for t in range(n):
            s = _squares8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t], r7[t])
            yc[t] = _scale_075(xc[t], k + a * s)
    elif mode == BETA_05:
        for t in range(n):
            s = _squares8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t], r7[t])
            yc[t] = _scale_05(xc[t], k + a * s)
    else:
        _sum8(r0, r1, r2, r3, r4, r5, r6, r7, acc)
        _finish_row(acc, xc, yc, a, k, beta, mode)


@njit(**_OPTS)
def _fused4(r0, r1, r2, r3, xc, yc, acc, a, k, beta, mode):
    """:func:`_fused8` for windows of at most 4 taps."""
    n = xc.shape[0]
    if mode == BETA_075:
        for t in range(n):
            yc[t] = _scale_075(xc[t], k + a * _squares4(r0[t], r1[t], r2[t], r3[t]))
    elif mode == BETA_05:
        for t in range(n):
            yc[t] = _scale_05(xc[t], k + a * _squares4(r0[t], r1[t], r2[t], r3[t]))
    else:
        _sum4(r0, r1, r2, r3, acc)
        _finish_row(acc, xc, yc, a, k, beta, mode)


def _across_rows(x, y, d, lo, hi, a, k, beta, tile):
    """LRN across axis 1 of ``x`` for windows of at most 8 taps, channel rows read in place.

    The hot path of strided input and of the divisor: each output row reads its (up to 8)
    neighbour rows once and sums their squares in registers, in a fixed tree order; rows
    outside ``[0, C)`` are a zero row.  Compiled per variant, see :data:`across_rows`.

    Parameters
    ----------
    x : ndarray, (outer, C, inner)
        Input with ``strides[1] >= strides[2]`` (each channel a row).
    y, d : ndarray or None
        Result and divisor; None where the variant does not write it (``WANT_Y``,
        ``WANT_D`` false).
    lo, hi, a, k, beta
        As in the module docstring (``x``'s dtype).
    tile : int
        Pixels per work item (whole rows, or tiles of long ones).
    """
    outer, channels, inner = x.shape
    taps = lo + hi + 1
    ntiles = (inner + tile - 1) // tile
    for item in prange(outer * ntiles):
        o, p0, width = _tile_item(item, ntiles, tile, inner)
        p1 = p0 + width
        zero = np.zeros(width, dtype=x.dtype)
        acc = np.empty(width, dtype=x.dtype)
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


#: ``across_rows(WANT_Y=..., WANT_D=..., TAPS4=..., BMODE=...)``: :func:`_across_rows`
#: compiled for the outputs it writes (``y``, ``d`` or both; the other is None), its window
#: class (at most 4 taps, or 5 to 8) and the closed form of the gain, so a run compiles
#: only the branch it takes.
across_rows = Variants(_across_rows, parallel=True, **_OPTS)


# ----------------------------------------------------------------------------------------
# C-contiguous rows: interior channels as one long span


@njit(**_OPTS)
def _span8(r0, r1, r2, r3, r4, r5, r6, r7, ok, xc, yc, a, k, mode):
    """``yc = xc * (k + a * S) ** -beta`` (beta 0.75 or 0.5), ``S`` the masked tree of the
    squares of ``r0..r7``: equal-length 1-D views, one per window row."""
    zero = xc.dtype.type(0)
    if mode == BETA_075:
        for t in range(xc.shape[0]):
            s = _masked_tree8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t], r7[t], ok, zero)
            yc[t] = _scale_075(xc[t], k + a * s)
    else:
        for t in range(xc.shape[0]):
            s = _masked_tree8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t], r7[t], ok, zero)
            yc[t] = _scale_05(xc[t], k + a * s)


@njit(**_OPTS)
def _span5(r0, r1, r2, r3, r4, xc, yc, a, k, mode):
    """:func:`_span8` for a window of five rows, all inside the axis (~8% faster: nothing
    to select)."""
    if mode == BETA_075:
        for t in range(xc.shape[0]):
            yc[t] = _scale_075(xc[t], k + a * _tree5(r0[t], r1[t], r2[t], r3[t], r4[t]))
    else:
        for t in range(xc.shape[0]):
            yc[t] = _scale_05(xc[t], k + a * _tree5(r0[t], r1[t], r2[t], r3[t], r4[t]))


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
    """:func:`across_rows` for C-contiguous ``x`` and ``y``, the result only, windows of at
    most 8 taps and beta 0.75 or 0.5: the same tree of the same operations (so the same
    bits), faster.

    Channels whose whole window lies inside the axis are one contiguous run per sample,
    cut into pieces of ``span`` outputs (:func:`_interior_span`); the few edge channels
    go row by row with clamped, masked window rows.  A window of up to 4 taps uses the
    8-term tree with zeros, which adds exact zeros to the 4-term tree's value (sums of
    squares are never -0).

    Parameters
    ----------
    x, y : ndarray, (outer, C, inner), C-contiguous
        Input and result.
    lo, hi, a, k
        As in the module docstring.
    mode : int
        ``BETA_075`` or ``BETA_05``.
    span : int
        Outputs per work item of the interior run (``lrn_cli.dispatch.SPAN``).
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


# ----------------------------------------------------------------------------------------
# channels last: each pixel's channels contiguous


@njit(parallel=True, **_OPTS)
def across_channels_last(x2, y2, d2, want_y, want_d, lo, hi, a, k, beta, bmode, block):
    """LRN across the last axis of C-contiguous ``x2`` (pixels, C), windows of at most 8
    taps: each pixel's channels are contiguous, so its window sums are a short stencil
    along its row; a block of pixels is then finished as one flat vector.

    Same tree and operations as :func:`across_rows` (zeros outside the axis come from the
    scratch's zero padding), hence the same bits as channels-first input.

    Parameters
    ----------
    x2, y2, d2 : ndarray, (pixels, C), C-contiguous
        Input, result and divisor (an unwanted output is an empty array: one compiled
        variant serves ``lrn``, ``lrn_divisor`` and both).
    want_y, want_d : bool
        Which outputs to write.
    lo, hi, a, k, beta, bmode
        As in the module docstring.
    block : int
        Pixels per work item (``lrn_cli.dispatch.pixel_block``).
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


# ----------------------------------------------------------------------------------------
# any window, any strides: (C, tile) scratch blocks


@njit(parallel=True, **_OPTS)
def across_forward(x, y, d, want_y, want_d, lo, hi, a, k, beta, bmode, tile, blocks, acc_dtype,
                   base):
    """LRN across axis 1 of ``x``, any window and any strides.

    Each work item copies a (C, tile) block to scratch (transposing channels-last data),
    sums windows there (directly, or by blocks for long windows) and writes ``y``/``d``.

    Parameters
    ----------
    x, y, d : ndarray, (outer, C, inner)
        Input, result and divisor, any strides (an unwanted output is an empty array: one
        compiled variant serves every combination).
    want_y, want_d : bool
        Which outputs to write.
    lo, hi, a, k, beta, bmode
        As in the module docstring (``a``, ``k``, ``beta`` in the accumulation dtype).
    tile : int
        Pixels per scratch block (``lrn_cli.dispatch.scratch_tile``).
    blocks : bool
        Block prefix/suffix sums (long windows) instead of direct sums.
    acc_dtype : ndarray
        A zero-size array whose dtype is the accumulation dtype.
    base : int
        Channel 0 of ``x`` is channel ``base`` of the whole array (anchors the block sums).
    """
    outer, channels, inner, ntiles, channel_fast = _tiling(x, tile)
    for item in prange(outer * ntiles):
        o, p0, width = _tile_item(item, ntiles, tile, inner)
        buf, sq, s = _tile_scratch(channels, width, acc_dtype)
        _load_window_sums(x, o, p0, lo, hi, blocks, base, buf, sq, s, channel_fast)
        if want_d:
            for c in range(channels):
                _divisor_row(s[c], sq[c], a, k)  # sq is free again: the divisor
            _store_across(d, o, p0, sq, channel_fast)
        if want_y:
            for c in range(channels):
                _finish_row(s[c], buf[c], buf[c], a, k, beta, bmode)
            _store_across(y, o, p0, buf, channel_fast)
