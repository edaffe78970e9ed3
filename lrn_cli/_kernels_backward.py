"""LRN across channels, backward: the gradient drivers, float64 arithmetic throughout.

Which one runs for which input is decided in :mod:`lrn_cli.dispatch`.  Every driver computes
``dx_j = g_j D_j^-b - 2 b a x_j sum_{i: j in W(i)} g_i x_i D_i^(-b-1)`` (the adjoint window
is the mirror of the forward one).  Common parameters:

lo, hi : int
    The forward window of channel ``c`` is ``[c - lo, c + hi]``, clipped to the axis.
a, k, beta : float
    The resolved constants ``a'``, ``k'`` and the power (Python floats: float64).
bmode : int
    The closed form of ``D ** -beta`` (``lrn_cli._jit.BETA_*``), chosen outside the loops.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from lrn_cli._jit import BETA_075
from lrn_cli._kernel_parts import (
    _OPTS,
    _gain_of,
    _inner_squares5,
    _load_across,
    _load_window_sums,
    _masked_sum8,
    _padded_window_sums,
    _squares8,
    _store_across,
    _tile_item,
    _tile_scratch,
    _tiling,
    _tree8,
    _window_rows,
    _window_squares,
    _wsum_rows_blocks,
    _wsum_rows_direct,
)


@njit(parallel=True, **_OPTS)
def across_channels_last_backward(x2, g2, dx2, lo, hi, a, k, beta, bmode, block, refine):
    """Gradient for C-contiguous ``x2``, ``g2``, ``dx2`` (pixels, C), windows of at most 8
    taps, float64 arithmetic: per block of pixels, padded rows of squares give ``D``, padded
    rows of ``t = g x D^(-b-1)`` give the mirrored sums (the same formula as the other
    backward kernels).  ``refine`` (float32 input, beta 0.75 or 0.5): the powers of ``D``
    come from :func:`_refined_powers` as in the channels-first kernel; a block where one
    ``D`` leaves their range is redone with exact roots.

    Parameters
    ----------
    x2, g2, dx2 : ndarray, (pixels, C), C-contiguous
        Input, the gradient of the output, and where the gradient of the input goes.
    lo, hi, a, k, beta, bmode
        As in the module docstring.
    block : int
        Pixels per work item (``lrn_cli.dispatch.pixel_block``).
    refine : bool
        Powers of ``D`` from a float32 seed and a float64 Newton step (float32 input,
        beta 0.75 or 0.5) instead of float64 roots.
    """
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
        acc[t] = _squares8(np.float64(r0[t]), np.float64(r1[t]), np.float64(r2[t]),
                           np.float64(r3[t]), np.float64(r4[t]), np.float64(r5[t]),
                           np.float64(r6[t]), np.float64(r7[t]))


@njit(**_OPTS)
def _add8(r0, r1, r2, r3, r4, r5, r6, r7, acc):
    for t in range(acc.shape[0]):
        acc[t] = _tree8(r0[t], r1[t], r2[t], r3[t], r4[t], r5[t], r6[t], r7[t])


@njit(parallel=True, **_OPTS)
def across_rows_backward(x, gy, dx, lo, hi, a, k, beta, bmode, tile):
    """Gradient for windows of at most 8 taps, channel rows read in place (float64 maths).

    Pass 1 keeps ``t = g x D^(-b-1)`` and ``D^-b`` per channel row of the tile; pass 2 sums
    ``t`` over the mirrored window ``[c-hi, c+lo]``.

    Parameters
    ----------
    x, gy, dx : ndarray, (outer, C, inner)
        Input, the output's gradient, the input's gradient; channel rows
        (``strides[1] >= strides[2]``).
    lo, hi, a, k, beta, bmode
        As in the module docstring.
    tile : int
        Pixels per work item (``lrn_cli.dispatch.backward_row_tile``).
    """
    outer, channels, inner = x.shape
    ntiles = (inner + tile - 1) // tile
    c2 = 2.0 * beta * a
    for item in prange(outer * ntiles):
        o, p0, w = _tile_item(item, ntiles, tile, inner)
        p1 = p0 + w
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
def _ring_put(tring, gring, slot, t, g, x, d, powers):
    """Ring slot ``slot``, position ``t``: ``D^-b`` and ``t = g x D^(-b-1)`` from
    ``powers = (D^-b, D^(-b-1))``; returns 1 where the seed of the powers is unusable."""
    gain, over_d = powers
    gring[slot, t] = gain
    tring[slot, t] = np.float64(g) * np.float64(x) * over_d
    return _seed_unusable(d)


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
            bad += _ring_put(tring, gring, slot, t, go[c, t], xo[c, t], d, _refined_quarter(d))
    else:
        for t in range(xo.shape[1]):
            d = k + a * _window_squares(xo, i, ok, t, 1.0)
            bad += _ring_put(tring, gring, slot, t, go[c, t], xo[c, t], d, _refined_half(d))
    return bad


@njit(**_OPTS)
def _bwd_refined_row5(xo, go, tring, gring, c, j, a, k):
    """:func:`_bwd_refined_row` (beta 0.75) for a 5-tap window inside the axis: rows
    ``j..j+4``, no zero rows to select (adding them adds exact zeros: the same bits)."""
    slot = c & 7
    bad = 0
    for t in range(xo.shape[1]):
        d = k + a * _inner_squares5(xo, j, t, 1.0)
        bad += _ring_put(tring, gring, slot, t, go[c, t], xo[c, t], d, _refined_quarter(d))
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

    Parameters
    ----------
    x, gy, dx : ndarray, (outer, C, inner), C-contiguous
        Input, the output's gradient, the input's gradient (``inner`` at most
        ``lrn_cli.dispatch.RING_ROW_MAX``: the rings stay in cache).
    lo, hi, a, k, beta, bmode
        As in the module docstring.
    chunk : int
        Output channels per work item (``lrn_cli.dispatch.channel_chunk``).
    refine : bool
        float32 input with beta 0.75 or 0.5: powers of ``D`` refined from a float32 seed
        (see :func:`_bwd_refined_row`).
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




@njit(parallel=True, **_OPTS)
def across_backward(x, gy, dx, lo, hi, a, k, beta, bmode, tile, blocks, base):
    """Gradient of :func:`lrn_cli._kernels_across.across_forward` w.r.t. ``x`` (float64
    scratch), any window and any strides.

    ``dx_j = g_j D_j^-b - 2 b a x_j sum_{i in [j-hi, j+lo]} g_i x_i D_i^(-b-1)``.

    Parameters
    ----------
    x, gy, dx : ndarray, (outer, C, inner)
        Input, the output's gradient, the input's gradient, any strides.
    lo, hi, a, k, beta, bmode
        As in the module docstring.
    tile : int
        Pixels per scratch block (``lrn_cli.dispatch.scratch_tile``).
    blocks : bool
        Block prefix/suffix sums (long windows) instead of direct sums.
    base : int
        Channel 0 of ``x`` is channel ``base`` of the whole array (anchors the block sums).
    """
    outer, channels, inner, ntiles, channel_fast = _tiling(x, tile)
    like = np.empty(0, dtype=np.float64)
    for item in prange(outer * ntiles):
        o, p0, width = _tile_item(item, ntiles, tile, inner)
        xb, gain, s = _tile_scratch(channels, width, like)
        pre, suf = _load_window_sums(x, o, p0, lo, hi, blocks, base, xb, gain, s,
                                     channel_fast)
        gb = np.empty((channels, width), dtype=np.float64)
        _load_across(gy, o, p0, gb, channel_fast)
        for c in range(channels):
            sr, gr, xr, br = s[c], gain[c], xb[c], gb[c]
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
            sr, gr, xr, br = s[c], gain[c], xb[c], gb[c]
            for t in range(width):
                sr[t] = br[t] * gr[t] - c2 * xr[t] * sr[t]
        _store_across(dx, o, p0, s, channel_fast)


