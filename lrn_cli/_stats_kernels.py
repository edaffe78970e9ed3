"""Private Numba kernels for :mod:`lrn_cli.stats`: the figures of a (outer, C, inner) view in
two passes (sums, then centred squares), float64 accumulators, NaN/Inf skipped and counted.

Each parallel chunk of the outer axis writes its own partial row; the caller merges rows in
order, so results do not depend on thread timing.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_OPTS = {"cache": True, "error_model": "numpy", "nogil": True}

# columns of the partial-sum table
N, NONFINITE, SUM, MIN, MAX, AMIN, AMAX, L1, L2SQ, M2, DOM_SUM, DOM_N = range(12)
NCOLS = 12


#: Lanes of the lane-wise accumulators: each lane sums every LANES-th value, so the loops
#: vectorise without reassociating anything (the order is fixed by the data's positions).
LANES = 16


# the lane-wise accumulator of `moments`: figure f of lane l at acc[f * LANES + l]
_LN, _LSUM, _LL1, _LL2, _LMIN, _LMAX, _LAMIN, _LAMAX = (f * LANES for f in range(8))


@njit(**_OPTS)
def _new_lanes(channels):
    acc = np.zeros((channels, 8 * LANES))
    for c in range(channels):
        acc[c, _LMIN:_LMIN + LANES] = np.inf
        acc[c, _LMAX:_LMAX + LANES] = -np.inf
        acc[c, _LAMIN:_LAMIN + LANES] = np.inf
        acc[c, _LAMAX:_LAMAX + LANES] = -np.inf
    return acc


@njit(**_OPTS)
def _row_sums(row, acc):
    """Add one channel row to the lane-wise accumulator ``acc`` (8 * LANES,): count, sum,
    sum of |x|, sum of squares, min, max, min |x|, max |x| of the finite values.

    Branch-free (non-finite values are selected out), and every figure at a constant offset
    of one array, so the compiler sees no aliasing and the loop vectorises.
    """
    inner = row.shape[0]
    full = inner // LANES * LANES
    zero = 0.0
    inf = np.inf
    for b in range(0, full, LANES):
        for lane in range(LANES):
            v = np.float64(row[b + lane])
            fin = np.isfinite(v)
            vz = v if fin else zero
            az = abs(vz)
            acc[_LN + lane] += 1.0 if fin else zero
            acc[_LSUM + lane] += vz
            acc[_LL1 + lane] += az
            acc[_LL2 + lane] += vz * vz
            v_lo = v if fin else inf
            v_hi = v if fin else -inf
            a_lo = az if fin else inf
            a_hi = az if fin else -inf
            acc[_LMIN + lane] = v_lo if v_lo < acc[_LMIN + lane] else acc[_LMIN + lane]
            acc[_LMAX + lane] = v_hi if v_hi > acc[_LMAX + lane] else acc[_LMAX + lane]
            acc[_LAMIN + lane] = a_lo if a_lo < acc[_LAMIN + lane] else acc[_LAMIN + lane]
            acc[_LAMAX + lane] = a_hi if a_hi > acc[_LAMAX + lane] else acc[_LAMAX + lane]
    for t in range(full, inner):  # the tail goes to lane 0
        v = np.float64(row[t])
        if np.isfinite(v):
            a = abs(v)
            acc[_LN] += 1.0
            acc[_LSUM] += v
            acc[_LL1] += a
            acc[_LL2] += v * v
            acc[_LMIN] = min(acc[_LMIN], v)
            acc[_LMAX] = max(acc[_LMAX], v)
            acc[_LAMIN] = min(acc[_LAMIN], a)
            acc[_LAMAX] = max(acc[_LAMAX], a)


@njit(**_OPTS)
def _lane_sum(acc, f):
    total = 0.0
    for lane in range(LANES):
        total += acc[f + lane]
    return total


@njit(**_OPTS)
def _row_pixels(row, amax_px, asum_px, ok_px):
    """Per-pixel partials of the channel dominance: running max and sum of |x| over the
    channels, and whether every channel so far was finite."""
    for t in range(row.shape[0]):
        v = np.float64(row[t])
        fin = np.isfinite(v)
        az = abs(v) if fin else 0.0
        asum_px[t] += az
        amax_px[t] = az if az > amax_px[t] else amax_px[t]
        ok_px[t] = ok_px[t] & fin


@njit(**_OPTS)
def _dominance(amax_px, asum_px, ok_px, lanes):
    """Lane-wise sum and count of ``max/sum`` over pixels that are all finite with a
    positive finite sum; ``lanes`` is (2, LANES)."""
    inner = amax_px.shape[0]
    full = inner // LANES * LANES
    for b in range(0, full, LANES):
        for lane in range(LANES):
            t = b + lane
            s = asum_px[t]
            good = ok_px[t] & (s > 0.0) & np.isfinite(s)
            ratio = amax_px[t] / (s if good else 1.0)
            lanes[0, lane] += ratio if good else 0.0
            lanes[1, lane] += 1.0 if good else 0.0
    for t in range(full, inner):
        s = asum_px[t]
        if ok_px[t] and s > 0.0 and np.isfinite(s):
            lanes[0, 0] += amax_px[t] / s
            lanes[1, 0] += 1.0


@njit(parallel=True, **_OPTS)
def moments(x, chunks):
    """Partial sums per (chunk of the outer axis, channel): see the column constants.

    Also the channel dominance partials (per pixel: max |x_c| / sum |x_c|, over pixels
    whose values are all finite and whose sum is positive), stored in channel 0's row.
    Within a chunk, values are summed in LANES lanes (value ``t`` of a row in lane
    ``t % LANES``), then the lanes in order: a fixed order, whatever the thread count.
    """
    outer, channels, inner = x.shape
    part = np.zeros((chunks, channels, NCOLS))
    step = (outer + chunks - 1) // chunks
    for ch in prange(chunks):
        o0 = ch * step
        o1 = min(outer, o0 + step)
        p = part[ch]
        acc = _new_lanes(channels)
        dom = np.zeros((2, LANES))
        amax_px = np.empty(inner)
        asum_px = np.empty(inner)
        ok_px = np.empty(inner, dtype=np.bool_)
        for o in range(o0, o1):
            amax_px[:] = 0.0
            asum_px[:] = 0.0
            ok_px[:] = True
            for c in range(channels):
                row = x[o, c]
                _row_sums(row, acc[c])
                if channels >= 2:
                    _row_pixels(row, amax_px, asum_px, ok_px)
            if channels >= 2:
                _dominance(amax_px, asum_px, ok_px, dom)
        for c in range(channels):
            a = acc[c]
            count = _lane_sum(a, _LN)
            p[c, N] = count
            p[c, NONFINITE] = (o1 - o0) * inner - count
            p[c, SUM] = _lane_sum(a, _LSUM)
            p[c, L1] = _lane_sum(a, _LL1)
            p[c, L2SQ] = _lane_sum(a, _LL2)
            p[c, MIN] = a[_LMIN:_LMIN + LANES].min()
            p[c, MAX] = a[_LMAX:_LMAX + LANES].max()
            p[c, AMIN] = a[_LAMIN:_LAMIN + LANES].min()
            p[c, AMAX] = a[_LAMAX:_LAMAX + LANES].max()
        if channels >= 2:
            ds = 0.0
            dn = 0.0
            for lane in range(LANES):
                ds += dom[0, lane]
                dn += dom[1, lane]
            part[ch, 0, DOM_SUM] = ds
            part[ch, 0, DOM_N] = dn
    return part


@njit(**_OPTS)
def _row_centred(row, mu, lanes):
    inner = row.shape[0]
    full = inner // LANES * LANES
    for b in range(0, full, LANES):
        for lane in range(LANES):
            v = np.float64(row[b + lane])
            d = v - mu
            lanes[lane] += d * d if np.isfinite(v) else 0.0
    for t in range(full, inner):
        v = np.float64(row[t])
        if np.isfinite(v):
            d = v - mu
            lanes[0] += d * d


@njit(parallel=True, **_OPTS)
def centred_squares(x, mean, chunks):
    """Partial sums of ``(x - mean[c])**2`` over the finite values, per chunk and channel
    (lane-wise within a chunk, as in :func:`moments`)."""
    outer, channels, inner = x.shape
    part = np.zeros((chunks, channels))
    step = (outer + chunks - 1) // chunks
    for ch in prange(chunks):
        o0 = ch * step
        o1 = min(outer, o0 + step)
        lanes = np.zeros((channels, LANES))
        for o in range(o0, o1):
            for c in range(channels):
                _row_centred(x[o, c], mean[c], lanes[c])
        for c in range(channels):
            total = 0.0
            for lane in range(LANES):
                total += lanes[c, lane]
            part[ch, c] = total
    return part


@njit(**_OPTS)
def _gain(v, mode, nb):
    """``v ** -beta`` for ``v > 0`` (closed forms for beta 0.75 and 0.5)."""
    if mode == 1:
        q = np.sqrt(v)
        return 1.0 / (q * np.sqrt(q))
    if mode == 2:
        return 1.0 / np.sqrt(v)
    return v ** nb


@njit(**_OPTS)
def _divisor_lanes(d, i0, i1, mode, nb, acc):
    """Lane-wise (n, sum, min, max, gain n, gain sum, gain min, gain max) of ``d[i0:i1]``
    into ``acc`` (8, LANES); branch-free so the loop over lanes vectorises."""
    zero = 0.0
    one = 1.0
    inf = np.inf
    for b in range(i0, i1 - LANES + 1, LANES):
        for lane in range(LANES):
            v = np.float64(d[b + lane])
            fin = np.isfinite(v)
            pos = fin & (v > 0.0)
            w = v if pos else one
            if mode == 1:
                q = np.sqrt(w)
                g = 1.0 / (q * np.sqrt(q))
            elif mode == 2:
                g = 1.0 / np.sqrt(w)
            else:
                g = w ** nb
            gok = pos & np.isfinite(g)
            acc[0, lane] += 1.0 if fin else zero
            acc[1, lane] += v if fin else zero
            lo = v if fin else inf
            hi = v if fin else -inf
            acc[2, lane] = lo if lo < acc[2, lane] else acc[2, lane]
            acc[3, lane] = hi if hi > acc[3, lane] else acc[3, lane]
            acc[4, lane] += 1.0 if gok else zero
            acc[5, lane] += g if gok else zero
            glo = g if gok else inf
            ghi = g if gok else -inf
            acc[6, lane] = glo if glo < acc[6, lane] else acc[6, lane]
            acc[7, lane] = ghi if ghi > acc[7, lane] else acc[7, lane]
    for i in range(i0 + (i1 - i0) // LANES * LANES, i1):  # the tail goes to lane 0
        v = np.float64(d[i])
        if np.isfinite(v):
            acc[0, 0] += 1.0
            acc[1, 0] += v
            acc[2, 0] = min(acc[2, 0], v)
            acc[3, 0] = max(acc[3, 0], v)
            if v > 0.0:
                g = _gain(v, mode, nb)
                if np.isfinite(g):
                    acc[4, 0] += 1.0
                    acc[5, 0] += g
                    acc[6, 0] = min(acc[6, 0], g)
                    acc[7, 0] = max(acc[7, 0], g)


@njit(parallel=True, **_OPTS)
def divisor_sums(d, beta, chunks):
    """Partial (n, sum, min, max) of finite ``d`` and of the gain ``d**-beta`` (d > 0).

    beta 0.75 and 0.5 use closed forms (``pow`` costs ~10x more).
    """
    size = d.shape[0]
    part = np.zeros((chunks, 8))
    step = (size + chunks - 1) // chunks
    nb = -beta
    mode = 1 if beta == 0.75 else 2 if beta == 0.5 else 0
    for ch in prange(chunks):
        i0 = ch * step
        i1 = min(size, i0 + step)
        acc = np.zeros((8, LANES))
        for r in (2, 6):
            acc[r, :] = np.inf
            acc[r + 1, :] = -np.inf
        if i1 > i0:
            if mode == 1:
                _divisor_lanes(d, i0, i1, 1, nb, acc)
            elif mode == 2:
                _divisor_lanes(d, i0, i1, 2, nb, acc)
            else:
                _divisor_lanes(d, i0, i1, 0, nb, acc)
        for r in (0, 1, 4, 5):
            total = 0.0
            for lane in range(LANES):
                total += acc[r, lane]
            part[ch, r] = total
        part[ch, 2] = acc[2].min()
        part[ch, 3] = acc[3].max()
        part[ch, 6] = acc[6].min()
        part[ch, 7] = acc[7].max()
    return part
