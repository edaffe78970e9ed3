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
    TREE_TAPS,
    _divisor_row,
    _finish_row,
    _load_window_sums,
    _masked_tree8,
    _scale_05,
    _scale_075,
    _squares4,
    _squares8,
    _store_across,
    _tile_item,
    _tile_scratch,
    _tiling,
    _tree5,
    _tree8,
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
def _shifts(lo, taps):
    """Offsets of the 8 window rows of the masked tree from an output's own row, and which
    are in the window: rows past the window repeat its last row (a valid load) and are
    masked out.  ``ok`` has the type of :func:`_window_rows`'s (the two feed one loop)."""
    s = (min(0, taps - 1) - lo, min(1, taps - 1) - lo, min(2, taps - 1) - lo,
         min(3, taps - 1) - lo, min(4, taps - 1) - lo, min(5, taps - 1) - lo,
         min(6, taps - 1) - lo, min(7, taps - 1) - lo)
    ok = (taps > 0, taps > 1, taps > 2, taps > 3, taps > 4, taps > 5, taps > 6, taps > 7)
    return s, ok


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


def _across_rows_contiguous(x, y, d, lo, hi, a, k, mode, span):
    """:func:`across_rows` for C-contiguous arrays and windows of at most 8 taps: the same
    tree of the same operations (so the same bits), faster.  Compiled per variant, see
    :data:`across_rows_contiguous`.

    Channels whose whole window lies inside the axis are one contiguous run per sample,
    cut into pieces of ``span`` outputs (:func:`_interior_span`): the window row ``u`` of
    every output of a run is the same flat array shifted by ``(u - lo) * inner``.  The few
    edge channels go row by row with clamped, masked window rows.  A window of up to 4 taps
    uses the 8-term tree with zeros, which adds exact zeros to the 4-term tree's value (sums
    of squares are never -0).  The divisor, when wanted, is written in the same pass: the
    value the result is divided by (one loop per work item, the interior pieces and the edge
    rows alike).

    Parameters
    ----------
    x, y, d : ndarray, (outer, C, inner), C-contiguous
        Input, result and divisor; None where the variant does not write it (``WANT_Y``,
        ``WANT_D`` false).
    lo, hi, a, k
        As in the module docstring.
    mode : int
        The result alone: ``BETA_075`` or ``BETA_05`` (with the divisor the variant's
        ``BMODE`` is the closed form; the divisor alone takes any beta).
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
    edges = channels - n_inside
    flat = channels * inner
    if not WANT_D:
        for item in prange(outer * pieces):
            o = item // pieces
            p0 = start + (item % pieces) * span
            p1 = min(start + length, p0 + span)
            _interior_span(x[o].reshape(flat), y[o].reshape(flat), p0, p1, inner, lo, taps,
                           a, k, mode)
        for item in prange(outer * edges):
            o = item // edges
            e = item % edges
            c = e if (n_inside == 0 or e < first) else e + n_inside
            i, ok = _window_rows(c - lo, taps, last)
            i0, i1, i2, i3, i4, i5, i6, i7 = i
            xo = x[o]
            _span8(xo[i0], xo[i1], xo[i2], xo[i3], xo[i4], xo[i5], xo[i6], xo[i7], ok, xo[c],
                   y[o, c], a, k, mode)
        return
    # the divisor (and the result): each work item, an interior piece or an edge row, is
    # the 8 window rows, their flags and the output rows, then one loop
    sh, inside = _shifts(lo, taps)
    s0, s1, s2, s3, s4, s5, s6, s7 = sh
    zero = x.dtype.type(0)
    per = pieces + edges
    for item in prange(outer * per):
        o = item // per
        e = item % per
        xo = x[o]
        if e < pieces:
            p0 = start + e * span
            p1 = min(start + length, p0 + span)
            xf = xo.reshape(flat)
            r0 = xf[p0 + s0 * inner:p1 + s0 * inner]
            r1 = xf[p0 + s1 * inner:p1 + s1 * inner]
            r2 = xf[p0 + s2 * inner:p1 + s2 * inner]
            r3 = xf[p0 + s3 * inner:p1 + s3 * inner]
            r4 = xf[p0 + s4 * inner:p1 + s4 * inner]
            r5 = xf[p0 + s5 * inner:p1 + s5 * inner]
            r6 = xf[p0 + s6 * inner:p1 + s6 * inner]
            r7 = xf[p0 + s7 * inner:p1 + s7 * inner]
            ok = inside
            xc = xf[p0:p1]
            dc = d[o].reshape(flat)[p0:p1]
            if WANT_Y:
                yc = y[o].reshape(flat)[p0:p1]
        else:
            e -= pieces
            c = e if (n_inside == 0 or e < first) else e + n_inside
            i, ok = _window_rows(c - lo, taps, last)
            i0, i1, i2, i3, i4, i5, i6, i7 = i
            r0, r1, r2, r3 = xo[i0], xo[i1], xo[i2], xo[i3]
            r4, r5, r6, r7 = xo[i4], xo[i5], xo[i6], xo[i7]
            xc = xo[c]
            dc = d[o, c]
            if WANT_Y:
                yc = y[o, c]
        if WANT_Y:
            for t in range(xc.shape[0]):
                dv = k + a * _masked_tree8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t],
                                           r7[t], ok, zero)
                dc[t] = dv
                if BMODE == BETA_075:
                    yc[t] = _scale_075(xc[t], dv)
                else:
                    yc[t] = _scale_05(xc[t], dv)
        else:
            for t in range(xc.shape[0]):
                dc[t] = k + a * _masked_tree8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t],
                                              r7[t], ok, zero)


#: ``across_rows_contiguous(WANT_Y=..., WANT_D=..., BMODE=...)``:
#: :func:`_across_rows_contiguous` compiled for the outputs it writes (the result, the
#: divisor or both) and, with both, the closed form of the gain (``BMODE``, 0.75 or 0.5;
#: ``BETA_GENERAL`` for the other two variants, which do not compile it in).
across_rows_contiguous = Variants(_across_rows_contiguous, parallel=True, **_OPTS)


# ----------------------------------------------------------------------------------------
# channels last: each pixel's channels contiguous


def _across_channels_last(x2, y2, d2, lo, hi, a, k, beta, mode, block):
    """LRN across the last axis of C-contiguous ``x2`` (pixels, C), windows of at most 8
    taps.  Compiled per variant, see :data:`across_channels_last`.

    A run of whole pixels is one flat array, and the window value ``u`` of every output
    is that array shifted by ``u - lo`` (as the channel rows of
    :func:`_across_rows_contiguous` are shifted by rows): one long loop, whatever the
    channel count.  The shifted loads that fall in a neighbouring pixel (edge channels) are
    masked out by a periodic pattern of tap flags, one byte per output (bit ``u``: tap ``u``
    is inside the axis and the window).  Pixels whose shifted loads would leave the array
    (the first and last) are copied between zeros first.  Same tree and operations as
    :func:`across_rows` (a 5-tap window sums the 5-term tree, which equals the masked
    8-term tree with zeros), hence the same bits as channels-first input.

    Parameters
    ----------
    x2, y2, d2 : ndarray, (pixels, C), C-contiguous
        Input, result and divisor; None where the variant does not write it.
    lo, hi, a, k, beta
        As in the module docstring.
    mode : int
        The closed form of the gain for variants with ``BMODE = BETA_GENERAL`` (they sum
        windows into scratch, then finish with :func:`_finish_row`); 0.75 and 0.5 are
        compiled into their variants' one loop.
    block : int
        Pixels per work item (``lrn_cli.dispatch.pixel_block``).
    """
    pixels, channels = x2.shape
    total = pixels * channels
    taps = lo + hi + 1
    pad = TREE_TAPS  # zeros each side of a copied pixel: every shifted load stays inside
    width = min(block, pixels) * channels
    bits = np.empty(width, dtype=np.uint8)
    for t in range(width):
        c = t % channels
        m = 0
        for u in range(taps):
            if 0 <= c - lo + u < channels:
                m |= 1 << u
        bits[t] = m
    sh, _ = _shifts(lo, taps)
    s0, s1, s2, s3, s4, s5, s6, s7 = sh
    head = min(pixels, (lo + channels - 1) // channels)  # loads before the array
    tail = max(head, pixels - (hi + channels - 1) // channels)  # loads past its end
    xf = x2.reshape(total)
    zero = x2.dtype.type(0)
    nblocks = (pixels + block - 1) // block
    for item in prange(nblocks):
        p0 = item * block
        p1 = min(pixels, p0 + block)
        q0 = min(max(p0, head), p1)
        q1 = max(min(p1, tail), q0)
        row = np.zeros(channels + 2 * pad, dtype=x2.dtype)
        if WANT_Y and BMODE == BETA_GENERAL:
            acc = np.empty(width, dtype=x2.dtype)
        # part 0: the pixels q0..q1 in place; then those before q0 and from q1, one by one
        for part in range(1 + (q0 - p0) + (p1 - q1)):
            if part == 0:
                if q1 == q0:
                    continue
                src = xf
                f0 = q0 * channels
                f1 = q1 * channels
                if WANT_Y:
                    yc = y2.reshape(total)[f0:f1]
                if WANT_D:
                    dc = d2.reshape(total)[f0:f1]
            else:
                i = p0 + part - 1 if part - 1 < q0 - p0 else q1 + part - 1 - (q0 - p0)
                row[pad:pad + channels] = x2[i]
                src = row
                f0 = pad
                f1 = pad + channels
                if WANT_Y:
                    yc = y2[i]
                if WANT_D:
                    dc = d2[i]
            n = f1 - f0
            mb = bits[:n]
            xc = src[f0:f1]
            r0 = src[f0 + s0:f1 + s0]
            r1 = src[f0 + s1:f1 + s1]
            r2 = src[f0 + s2:f1 + s2]
            r3 = src[f0 + s3:f1 + s3]
            r4 = src[f0 + s4:f1 + s4]
            if WANT_Y and BMODE == BETA_GENERAL:
                sums = acc[:n]
            if taps == 5:
                for t in range(n):
                    m = mb[t]
                    v = _tree5(r0[t] if m & 1 else zero, r1[t] if m & 2 else zero,
                               r2[t] if m & 4 else zero, r3[t] if m & 8 else zero,
                               r4[t] if m & 16 else zero)
                    if WANT_Y and BMODE == BETA_GENERAL:
                        sums[t] = v
                    else:
                        dv = k + a * v
                        if WANT_D:
                            dc[t] = dv
                        if WANT_Y:
                            if BMODE == BETA_075:
                                yc[t] = _scale_075(xc[t], dv)
                            else:
                                yc[t] = _scale_05(xc[t], dv)
            else:
                r5 = src[f0 + s5:f1 + s5]
                r6 = src[f0 + s6:f1 + s6]
                r7 = src[f0 + s7:f1 + s7]
                for t in range(n):
                    m = mb[t]
                    w0, w1, w2, w3 = r0[t], r1[t], r2[t], r3[t]
                    w4, w5, w6, w7 = r4[t], r5[t], r6[t], r7[t]
                    v = _tree8(w0 * w0 if m & 1 else zero, w1 * w1 if m & 2 else zero,
                               w2 * w2 if m & 4 else zero, w3 * w3 if m & 8 else zero,
                               w4 * w4 if m & 16 else zero, w5 * w5 if m & 32 else zero,
                               w6 * w6 if m & 64 else zero, w7 * w7 if m & 128 else zero)
                    if WANT_Y and BMODE == BETA_GENERAL:
                        sums[t] = v
                    else:
                        dv = k + a * v
                        if WANT_D:
                            dc[t] = dv
                        if WANT_Y:
                            if BMODE == BETA_075:
                                yc[t] = _scale_075(xc[t], dv)
                            else:
                                yc[t] = _scale_05(xc[t], dv)
            if WANT_Y and BMODE == BETA_GENERAL:
                if WANT_D:
                    _divisor_row(sums, dc, a, k)
                _finish_row(sums, xc, yc, a, k, beta, mode)


#: ``across_channels_last(WANT_Y=..., WANT_D=..., BMODE=...)``:
#: :func:`_across_channels_last` compiled for the outputs it writes and the closed form of
#: the gain (0.75 or 0.5 in one loop; ``BETA_GENERAL``: any beta, through scratch sums;
#: the divisor alone is always ``BETA_GENERAL`` and needs no gain).
across_channels_last = Variants(_across_channels_last, parallel=True, **_OPTS)


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
