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

float32 input with beta 0.75 or 0.5 takes refined powers (a float32 seed and one float64
Newton step, ~1e-13 relative), with exact roots for each element whose ``D`` the seed cannot
take; 5-tap windows then take one-pass paths that share the pair sums of their summation
tree (:func:`_five_sweep` channels first, :func:`_channels_last_five` channels last).  Every
path sums in the same tree order, so all layouts, chunks and blocks give the same bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from lrn_cli._jit import BETA_025, BETA_075, BETA_2, BETA_15, Variants
from lrn_cli._kernel_parts import (
    _OPTS,
    _gain_of,
    _load_across,
    _load_window_sums,
    _masked_sum8,
    _padded_window_sums,
    _scale_025,
    _scale_05,
    _scale_075,
    _scale_2,
    _scale_15,
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

# Compile-time constants of the kernels built with `Variants` (each variant sets its own;
# these defaults are never compiled): refined powers (float32 input, beta 0.75 or 0.5), the
# 5-tap paths, and which refined power (beta 0.75 rather than 0.5).  Passed on to the
# helpers as literal arguments, so only the branches a run takes are compiled.
REFINE = False
FIVE = False
QUARTER = False


def _variant(refine, lo, hi, bmode):
    """The compile-time constants of the backward variant for these runtime parameters."""
    refine = bool(refine)
    return {"REFINE": refine, "FIVE": refine and lo + hi == 4,
            "QUARTER": refine and bmode == BETA_075}


def across_channels_last_backward(x2, g2, dx2, lo, hi, a, k, beta, bmode, block, refine):
    """Run the variant of :func:`_channels_last_backward` for these parameters."""
    _channels_last_variants(**_variant(refine, lo, hi, bmode))(x2, g2, dx2, lo, hi, a, k,
                                                                beta, bmode, block, refine)


def _channels_last_backward(x2, g2, dx2, lo, hi, a, k, beta, bmode, block, refine):
    """Gradient for C-contiguous ``x2``, ``g2``, ``dx2`` (pixels, C), windows of at most 8
    taps, float64 arithmetic: per block of pixels, padded rows of squares give ``D``, padded
    rows of ``t = g x D^(-b-1)`` give the mirrored sums (the same formula as the other
    backward kernels).  ``refine`` (float32 input, beta 0.75 or 0.5): the powers of ``D``
    come from :func:`_refined_powers` as in the channels-first kernel; each ``D`` outside
    their range is redone with exact roots (per element, as there: the same bits).

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
        if FIVE:
            _channels_last_five(xb, gb, dx2[p0:p1], lo, hi, a, k, c2, QUARTER)
            continue
        for i in range(np.uint64(n)):
            for c in range(np.uint64(channels)):
                v = np.float64(xb[i, c])
                padded[i, upad + c] = v * v
        _padded_window_sums(padded, d, n, channels, pad, lo, taps)
        flat_d = d.reshape(n * channels)
        flat_gain = gain.reshape(n * channels)
        for t in range(n * channels):
            flat_d[t] = k + a * flat_d[t]
        if REFINE:
            # flat_d becomes D^(-b-1): D itself is only needed again where a seed was unusable
            bad = _refined_powers(flat_d, flat_gain, QUARTER)
            dd = d
            if bad:
                dd = np.empty((n, channels))
                _padded_window_sums(padded, dd, n, channels, pad, lo, taps)
            for i in range(np.uint64(n)):
                for c in range(np.uint64(channels)):
                    padded[i, upad + c] = (np.float64(gb[i, c]) * np.float64(xb[i, c])
                                           * d[i, c])
            if bad:  # exact roots for those elements only (the same bits in any layout)
                for i in range(n):
                    for c in range(channels):
                        v = k + a * dd[i, c]
                        if _seed_unusable(v):
                            gain[i, c] = _exact_gain(v, QUARTER)
                            padded[i, pad + c] = (np.float64(gb[i, c]) * np.float64(xb[i, c])
                                                  * gain[i, c] / v)
        else:
            _backward_gain(flat_d, flat_gain, beta, bmode)
            for i in range(np.uint64(n)):
                for c in range(np.uint64(channels)):
                    padded[i, upad + c] = (np.float64(gb[i, c]) * np.float64(xb[i, c])
                                           * gain[i, c] / d[i, c])
        _padded_window_sums(padded, d, n, channels, pad, hi, taps)  # d <- mirrored sums of t
        db = dx2[p0:p1]
        for i in range(np.uint64(n)):
            for c in range(np.uint64(channels)):
                db[i, c] = np.float64(gb[i, c]) * gain[i, c] - c2 * np.float64(xb[i, c]) * d[i, c]




#: ``_channels_last_variants(REFINE=..., FIVE=..., QUARTER=...)``: the channels-last
#: gradient compiled for one combination (see :func:`_variant`).
_channels_last_variants = Variants(_channels_last_backward, parallel=True, **_OPTS)


@njit(**_OPTS)
def _tree5_at(rows, i, j):
    """``((r[j] + r[j+1]) + (r[j+2] + r[j+3])) + r[j+4]`` along row ``i`` (unsigned ``j``):
    the tree of the 5-tap ring sweep, whose pair sums are these pairs."""
    return (((rows[i, j] + rows[i, j + np.uint64(1)])
             + (rows[i, j + np.uint64(2)] + rows[i, j + np.uint64(3)]))
            + rows[i, j + np.uint64(4)])


@njit(**_OPTS)
def _channels_last_five(xb, gb, db, lo, hi, a, k, c2, quarter):
    """:func:`across_channels_last_backward` for a 5-tap window and refined powers, one
    block of pixels in three passes: squares; ``D``, its powers, ``t`` and ``u = g D^-b``;
    the mirrored sums of ``t`` and ``dx``.  Rows are zero padded, and every sum is the tree
    of :func:`_five_step` (whose pairs it shares), so the bits are the channels-first
    kernel's."""
    n, channels = xb.shape
    pad = 8
    upad = np.uint64(pad)
    sq = np.zeros((n, channels + 2 * pad))
    tp = np.zeros((n, channels + 2 * pad))
    u = np.empty((n, channels))
    for i in range(np.uint64(n)):
        for c in range(np.uint64(channels)):
            v = np.float64(xb[i, c])
            sq[i, upad + c] = v * v
    first = np.uint64(pad - lo)
    bad = 0
    for i in range(np.uint64(n)):
        for c in range(np.uint64(channels)):
            d = k + a * _tree5_at(sq, i, first + c)
            gain, over = _refined(d, quarter)
            g = np.float64(gb[i, c])
            u[i, c] = g * gain
            tp[i, upad + c] = g * np.float64(xb[i, c]) * over
            bad += _seed_unusable(d)
    if bad:  # exact roots where the seed is unusable (per element, as channels-first)
        for i in range(np.uint64(n)):
            for c in range(np.uint64(channels)):
                d = k + a * _tree5_at(sq, i, first + c)
                if _seed_unusable(d):
                    gain = _exact_gain(d, quarter)
                    g = np.float64(gb[i, c])
                    u[i, c] = g * gain
                    tp[i, upad + c] = g * np.float64(xb[i, c]) * gain / d
    first = np.uint64(pad - hi)
    for i in range(np.uint64(n)):
        for c in range(np.uint64(channels)):
            s = _tree5_at(tp, i, first + c)
            db[i, c] = u[i, c] - c2 * np.float64(xb[i, c]) * s


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


@njit(**_OPTS)
def _backward_gain(d, g, beta, mode):
    """``g[t] = d[t] ** -beta`` in float64: :func:`lrn_cli._kernel_parts._gain_of` plus the
    forward pass's other closed forms (beta 0.25, 1.5, 2), so ``pow`` (~10x their cost) is
    left to the betas without one.  Every across backward kernel takes its gains here."""
    n = d.shape[0]
    if mode == BETA_025:
        for t in range(n):
            g[t] = _scale_025(1.0, d[t])
    elif mode == BETA_15:
        for t in range(n):
            g[t] = _scale_15(1.0, d[t])
    elif mode == BETA_2:
        for t in range(n):
            g[t] = _scale_2(1.0, d[t])
    else:
        _gain_of(d, g, beta, mode)


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
            _backward_gain(acc, gr, beta, bmode)
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
# the last 8 rows of t = g x D^(-b-1), u = g D^-b (and, for 5-tap windows, pair sums) in
# small rings (they stay in cache), and finishes channel c - lo as soon as channel c is
# produced.  Rows are indexed directly (no per-row views) and typed C-contiguous, so every
# inner loop vectorises.


@njit(**_OPTS)
def _seed_rsqrt(d32):
    """A float32 estimate of ``d ** -0.5``: IEEE float32 ``sqrt`` and division, correctly
    rounded, so every kernel and every loop position (vector lanes, scalar remainders) gets
    the same seed, whatever the compiler vectorises.  With approximate ops (``afn``) LLVM may
    seed vector lanes by ``vrsqrtps`` (whose bits also differ between CPU vendors) and
    remainders by division, and the Newton step carries the difference into the last bits."""
    return np.float32(1.0) / np.sqrt(d32)


@njit(**_OPTS)
def _seed_rsqrt4(d32):
    """A float32 estimate of ``d ** -0.25`` (IEEE float32 ops, as :func:`_seed_rsqrt`)."""
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
def _refined(d, quarter):
    """:func:`_refined_quarter` (beta 0.75, ``quarter``) or :func:`_refined_half` of ``d``.
    ``quarter`` is a compile-time constant of the variant, so each loop compiles one."""
    if quarter:
        return _refined_quarter(d)
    return _refined_half(d)


@njit(**_OPTS)
def _seed_unusable(d):
    """1 where the float32 seed is unusable (``D`` outside ``(1e-30, 1e30)``, or NaN)."""
    return not ((d > 1e-30) & (d < 1e30))


@njit(**_OPTS)
def _exact_gain(d, quarter):
    """``D^-b`` in float64 roots (beta 0.75 or 0.5), where the refined powers cannot go;
    the same operations as :func:`lrn_cli._kernel_parts._gain_of`."""
    return _scale_075(1.0, d) if quarter else _scale_05(1.0, d)


@njit(**_OPTS)
def _refined_powers(d, gain, quarter):
    """In place: ``d <- D^(-b-1)``, ``gain <- D^-b`` for beta 0.75 (``quarter``) or 0.5, from
    a float32 seed and one float64 Newton step (:func:`_refined_quarter`).  Returns how many
    ``D`` lie outside ``(1e-30, 1e30)`` or are NaN: the caller then redoes them exactly."""
    bad = 0
    for t in range(d.shape[0]):
        v = d[t]
        gain[t], d[t] = _refined(v, quarter)
        bad += _seed_unusable(v)
    return bad


@njit(**_OPTS)
def _bwd_refined_row(xo, go, tring, uring, c, i, ok, a, k, quarter):
    """Ring rows of channel ``c`` for float32 input and beta 0.75 (``quarter``) or 0.5:
    ``t = g x D^(-b-1)`` and ``u = g D^-b``.

    ``D`` is summed in float64 exactly as in :func:`_bwd_exact_row`; ``D^-1/4`` (or
    ``D^-1/2``) starts from a float32 estimate and one Newton step in float64 brings it to
    ~1e-13 relative, far below float32 rounding, for a fraction of the cost of float64
    ``sqrt`` and division.  Each ``D`` outside ``(1e-30, 1e30)`` (or NaN), where the float32
    seed is unusable, is then redone with exact roots (per element: which kernel, layout or
    work item computes it does not change its bits).
    """
    slot = c & 7
    tr = tring[slot]
    ur = uring[slot]
    bad = 0
    for t in range(xo.shape[1]):
        d = k + a * _window_squares(xo, i, ok, t, 1.0)
        gain, over = _refined(d, quarter)
        g = np.float64(go[c, t])
        ur[t] = g * gain
        tr[t] = g * np.float64(xo[c, t]) * over
        bad += _seed_unusable(d)
    if bad:
        for t in range(xo.shape[1]):
            d = k + a * _window_squares(xo, i, ok, t, 1.0)
            if _seed_unusable(d):
                gain = _exact_gain(d, quarter)
                g = np.float64(go[c, t])
                ur[t] = g * gain
                tr[t] = g * np.float64(xo[c, t]) * gain / d


@njit(**_OPTS)
def _bwd_exact_row(xo, go, tring, uring, c, i, ok, a, k, beta, bmode):
    """Ring rows of channel ``c`` with float64 ``sqrt``/division/``pow`` (any beta, any D)."""
    slot = c & 7
    tr = tring[slot]
    ur = uring[slot]
    for t in range(xo.shape[1]):
        tr[t] = k + a * _window_squares(xo, i, ok, t, 1.0)
    _backward_gain(tr, ur, beta, bmode)
    for t in range(xo.shape[1]):
        g = np.float64(go[c, t])
        gain = ur[t]
        ur[t] = g * gain
        tr[t] = g * np.float64(xo[c, t]) * gain / tr[t]


@njit(**_OPTS)
def _bwd_finish_row(xo, do, tring, uring, c, j, ok, c2):
    """``dx[c] = u - c2 x (sum of t over the mirrored window)``; ``t`` of channel ``j + u``
    sits in ring slot ``(j + u) & 7``."""
    s0, s1, s2, s3 = j & 7, (j + 1) & 7, (j + 2) & 7, (j + 3) & 7
    s4, s5, s6, s7 = (j + 4) & 7, (j + 5) & 7, (j + 6) & 7, (j + 7) & 7
    u_slot = c & 7
    zero = np.float64(0.0)
    for t in range(xo.shape[1]):
        s = _masked_sum8(tring[s0, t], tring[s1, t], tring[s2, t], tring[s3, t],
                         tring[s4, t], tring[s5, t], tring[s6, t], tring[s7, t], ok, zero)
        do[c, t] = uring[u_slot, t] - c2 * np.float64(xo[c, t]) * s


# The 5-tap sweep: the tree ((v0+v1) + (v2+v3)) + v4 of every window sum shares its pairs
# with the window two channels on, so each step forms one new pair of squares (ring ``P``,
# slot ``j & 3`` = rows j, j+1) and one new pair of t (ring ``TP``, slot ``j & 3``): two
# additions per sum instead of four, and the same bits.  ``t`` needs two slots (``c & 1``),
# ``u`` eight (``c & 7``): 18 float64 rows in all, L2-sized for 3025-pixel rows.  Rows
# outside the axis are zeros (t of a channel outside it is 0, as the masked trees count it).
# :func:`_five_step`'s pass compiles to one packed loop (AVX-512 here: 32 elements per
# iteration, the seeds by vsqrtps/vdivps on 8 float32 lanes, the rest on zmm); scalar
# vsqrtsd/vdivsd appear only in the exact fallback.  Measured slower, 1 thread: powers first
# into ring rows then the rest (+10-50%), P rebuilt from x instead of ring P (+3%), pixel
# tiles (+25-50%), software prefetch of the next rows (+5-12%), and (session 11) register
# blocks of 6-8 channels per pass (benchmarks/README.md).


@njit(**_OPTS)
def _sq(xo, j, t, last):
    """``x[j, t]**2`` in float64 (0 outside the axis)."""
    v = np.float64(xo[min(max(j, 0), last), t])
    return v * v if 0 <= j <= last else 0.0


@njit(**_OPTS)
def _pairs5(xo, pring, n, last):
    """Ring ``P`` slot ``(n-1) & 3`` <- squares of rows ``n-1`` and ``n`` summed."""
    pr = pring[(n - 1) & 3]
    for t in range(xo.shape[1]):
        pr[t] = _sq(xo, n - 1, t, last) + _sq(xo, n, t, last)


@njit(**_OPTS)
def _five_d(pring, xo, n, t, last, a, k):
    """``D`` of channel ``n - hi``: ``k + a ((P[n-4] + P[n-2]) + x[n]^2)``."""
    return k + a * ((pring[(n - 4) & 3, t] + pring[(n - 2) & 3, t]) + _sq(xo, n, t, last))


@njit(**_OPTS)
def _five_tu(xo, go, pring, tring, tpring, uring, n, c, last, a, k, quarter):
    """Channel ``c = n - hi`` (inside the axis) into the rings: ``t``, ``u`` and the pair
    ``TP[c-1] = t[c-1] + t[c]``, refined powers with exact ones where they cannot go."""
    su, sc, sc1, sp = c & 7, c & 1, (c - 1) & 1, (c - 1) & 3
    bad = 0
    for t in range(xo.shape[1]):
        d = _five_d(pring, xo, n, t, last, a, k)
        gain, over = _refined(d, quarter)
        g = np.float64(go[c, t])
        tc = g * np.float64(xo[c, t]) * over
        uring[su, t] = g * gain
        tpring[sp, t] = tring[sc1, t] + tc
        tring[sc, t] = tc
        bad += _seed_unusable(d)
    if bad:
        for t in range(xo.shape[1]):
            d = _five_d(pring, xo, n, t, last, a, k)
            if _seed_unusable(d):
                gain = _exact_gain(d, quarter)
                g = np.float64(go[c, t])
                tc = g * np.float64(xo[c, t]) * gain / d
                uring[su, t] = g * gain
                tpring[sp, t] = tring[sc1, t] + tc
                tring[sc, t] = tc


@njit(**_OPTS)
def _five_zero(tring, tpring, c):
    """Channel ``c`` outside the axis: ``t = 0`` (and its pair with ``c - 1``)."""
    sc, sc1, sp = c & 1, (c - 1) & 1, (c - 1) & 3
    for t in range(tring.shape[1]):
        tpring[sp, t] = tring[sc1, t] + 0.0
        tring[sc, t] = 0.0


@njit(**_OPTS)
def _five_finish(xo, do, tring, tpring, uring, c, cc, c2):
    """``dx[cc] = u - c2 x ((TP[c-4] + TP[c-2]) + t[c])``, ``c = cc + lo``."""
    s4, s2, sc, su = (c - 4) & 3, (c - 2) & 3, c & 1, cc & 7
    for t in range(xo.shape[1]):
        s = (tpring[s4, t] + tpring[s2, t]) + tring[sc, t]
        do[cc, t] = uring[su, t] - c2 * np.float64(xo[cc, t]) * s


@njit(**_OPTS)
def _five_step(xo, go, do, pring, tring, tpring, uring, n, lo, a, k, c2, quarter):
    """One interior step of the 5-tap sweep in one pass: the pair of squares of rows
    ``n-1, n``, channel ``c = n - hi`` into the rings and ``dx`` of channel ``c - lo``
    (every row inside the axis).  The same operations as :func:`_pairs5`,
    :func:`_five_tu` and :func:`_five_finish` in turn, so the same bits."""
    c = n - (4 - lo)
    cc = c - lo
    sp1, sp4, sp2 = (n - 1) & 3, (n - 4) & 3, (n - 2) & 3  # P and TP slots
    sq1, sq4, sq2 = (c - 1) & 3, (c - 4) & 3, (c - 2) & 3
    sc, sc1, su, scc = c & 1, (c - 1) & 1, c & 7, cc & 7  # t and u slots
    bad = 0
    for t in range(xo.shape[1]):
        v = np.float64(xo[n, t])
        q = v * v
        m = np.float64(xo[n - 1, t])
        pring[sp1, t] = m * m + q
        d = k + a * ((pring[sp4, t] + pring[sp2, t]) + q)
        gain, over = _refined(d, quarter)
        g = np.float64(go[c, t])
        tc = g * np.float64(xo[c, t]) * over
        uring[su, t] = g * gain
        tpring[sq1, t] = tring[sc1, t] + tc
        tring[sc, t] = tc
        s = (tpring[sq4, t] + tpring[sq2, t]) + tc
        do[cc, t] = uring[scc, t] - c2 * np.float64(xo[cc, t]) * s
        bad += _seed_unusable(d)
    if bad:  # redo the elements whose seed was unusable, then their dx
        last = xo.shape[0] - 1
        for t in range(xo.shape[1]):
            d = _five_d(pring, xo, n, t, last, a, k)
            if _seed_unusable(d):
                gain = _exact_gain(d, quarter)
                g = np.float64(go[c, t])
                tc = g * np.float64(xo[c, t]) * gain / d
                uring[su, t] = g * gain
                tpring[sq1, t] = tring[sc1, t] + tc
                tring[sc, t] = tc
                s = (tpring[sq4, t] + tpring[sq2, t]) + tc
                do[cc, t] = uring[scc, t] - c2 * np.float64(xo[cc, t]) * s


@njit(**_OPTS)
def _five_sweep(xo, go, do, pring, tring, tpring, uring, c0, c1, lo, hi, a, k, c2, quarter):
    """Output channels ``[c0, c1)`` of one sample, 5-tap window, refined powers.

    Step ``n`` brings in row ``n``: the pair ``P[n-1]``, then channel ``c = n - hi`` (for
    ``c`` in ``[c0-hi, c1+lo)``), then ``dx`` of channel ``c - lo`` (in ``[c0, c1)``).
    Steps with every row inside the axis take the one-pass :func:`_five_step`."""
    last = xo.shape[0] - 1
    for n in range(c0 - 3, c1 + 4):
        c = n - hi
        cc = c - lo
        if c0 <= cc and 0 <= cc and n <= last:
            _five_step(xo, go, do, pring, tring, tpring, uring, n, lo, a, k, c2, quarter)
            continue
        _pairs5(xo, pring, n, last)
        if c0 - hi <= c:
            if 0 <= c <= last:
                _five_tu(xo, go, pring, tring, tpring, uring, n, c, last, a, k, quarter)
            else:
                _five_zero(tring, tpring, c)
            if c0 <= cc < c1 and 0 <= cc <= last:
                _five_finish(xo, do, tring, tpring, uring, c, cc, c2)


def across_rows_backward_contiguous(x, gy, dx, lo, hi, a, k, beta, bmode, chunk, refine):
    """Run the variant of :func:`_rows_backward_contiguous` for these parameters."""
    _ring_variants(**_variant(refine, lo, hi, bmode))(x, gy, dx, lo, hi, a, k, beta, bmode,
                                                      chunk, refine)


def _rows_backward_contiguous(x, gy, dx, lo, hi, a, k, beta, bmode, chunk, refine):
    """Gradient for C-contiguous ``x``, ``gy``, ``dx`` (outer, C, inner), windows of at
    most 8 taps, whole rows.

    A work item is ``chunk`` output channels of one outer index; it produces ``t`` and
    ``u = g D^-b`` for channels ``[c0-hi, c1+lo)`` (the halo is recomputed, so any chunking
    gives the same bits) and finishes channel ``c - lo`` right after producing channel
    ``c``.  A 5-tap window with refined powers takes :func:`_five_sweep` (shared pair sums,
    one pass per channel); the others produce and finish rows in turn.

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
    for item in prange(outer * nchunks):
        o = item // nchunks
        c0 = (item % nchunks) * chunk
        c1 = min(channels, c0 + chunk)
        xo = x[o]
        go = gy[o]
        do = dx[o]
        uring = np.zeros((8, inner), dtype=np.float64)
        if FIVE:
            tring = np.zeros((2, inner), dtype=np.float64)
            pring = np.zeros((4, inner), dtype=np.float64)
            tpring = np.zeros((4, inner), dtype=np.float64)
            _five_sweep(xo, go, do, pring, tring, tpring, uring, c0, c1, lo, hi, a, k, c2,
                        QUARTER)
            continue
        tring = np.zeros((8, inner), dtype=np.float64)
        for c in range(max(0, c0 - hi), min(channels, c1 + lo) + lo):
            if c < min(channels, c1 + lo):
                i, ok = _window_rows(c - lo, taps, last)
                if REFINE:
                    _bwd_refined_row(xo, go, tring, uring, c, i, ok, a, k, QUARTER)
                else:
                    _bwd_exact_row(xo, go, tring, uring, c, i, ok, a, k, beta, bmode)
            cc = c - lo
            if c0 <= cc < c1:
                j = cc - hi
                i, ok = _window_rows(j, taps, last)
                _bwd_finish_row(xo, do, tring, uring, cc, j, ok, c2)


#: ``_ring_variants(REFINE=..., FIVE=..., QUARTER=...)``: the C-contiguous gradient
#: compiled for one combination (see :func:`_variant`).
_ring_variants = Variants(_rows_backward_contiguous, parallel=True, **_OPTS)


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
            _backward_gain(sr, gr, beta, bmode)
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


