"""Private Numba kernels for :mod:`lrn_cli.stats`: the figures of a (outer, C, inner) view in
two passes (sums, then centred squares), float64 accumulators, NaN/Inf skipped and counted.

Each chunk of the outer axis writes its own partial row; the caller merges rows in order,
so results do not depend on thread timing.  The kernels are serial functions of a range of
chunks, run on Numba's thread count by :func:`_in_threads` (they release the GIL): compiled
with ``parallel=True`` (a ``prange`` over the chunks) the same code took twice as long to
compile, and a first run pays that compile.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from lrn_cli._jit import KERNEL_OPTIONS as _OPTS
from lrn_cli._jit import Variants

# columns of the partial-sum table
N, NONFINITE, SUM, MIN, MAX, AMIN, AMAX, L1, L2SQ, M2, DOM_SUM, DOM_N = range(12)
NCOLS = 12


#: Lanes of the lane-wise accumulators: each lane sums every LANES-th value, so the loops
#: vectorise without reassociating anything (the order is fixed by the data's positions).
LANES = 16


# The lane-wise accumulators: figure f of lane l at acc[f + l] (f a multiple of LANES).
# Every figure at a constant offset of one array, so the compiler sees no aliasing between
# them and the loops over lanes vectorise.  `moments` keeps, in this order, count, sum, min
# and max of the finite values, then sum of |x|, sum of squares, min |x| and max |x|.
# The offsets (and the tail's lane 0) are NumPy integers, not Python ints: Numba compiles a
# helper again for every distinct Python int literal passed to it, NumPy integers are typed
# int64 and share one compiled helper.
_LN, _LSUM, _LMIN, _LMAX, _LL1, _LL2, _LAMIN, _LAMAX = (np.int64(f * LANES) for f in range(8))
_LANE0 = np.int64(0)
_GAIN = np.int64(4 * LANES)  # the divisor's gain figures, after those of D


@njit(**_OPTS)
def _new_lanes(rows, blocks):
    """Zeroed accumulators of ``blocks`` (count, sum, min, max) groups per row, with the
    minima at +inf and the maxima at -inf."""
    acc = np.zeros((rows, 4 * blocks * LANES))
    for r in range(rows):
        for b in range(blocks):
            f = 4 * b * LANES
            acc[r, f + 2 * LANES:f + 3 * LANES] = np.inf
            acc[r, f + 3 * LANES:f + 4 * LANES] = -np.inf
    return acc


@njit(**_OPTS)
def _lane_add(acc, f, lane, v, ok):
    """Count, sum, min and max (at ``f``, ``f + LANES``, ...) of ``v`` when ``ok``; else
    adds nothing (branch-free)."""
    acc[f + lane] += 1.0 if ok else 0.0
    acc[f + LANES + lane] += v if ok else 0.0
    lo = v if ok else np.inf
    hi = v if ok else -np.inf
    acc[f + 2 * LANES + lane] = lo if lo < acc[f + 2 * LANES + lane] else acc[f + 2 * LANES + lane]
    acc[f + 3 * LANES + lane] = hi if hi > acc[f + 3 * LANES + lane] else acc[f + 3 * LANES + lane]


@njit(**_OPTS)
def _moments_lane(acc, lane, v):
    fin = np.isfinite(v)
    az = abs(v) if fin else 0.0
    _lane_add(acc, _LN, lane, v, fin)
    acc[_LL1 + lane] += az
    acc[_LL2 + lane] += az * az
    a_lo = az if fin else np.inf
    a_hi = az if fin else -np.inf
    acc[_LAMIN + lane] = a_lo if a_lo < acc[_LAMIN + lane] else acc[_LAMIN + lane]
    acc[_LAMAX + lane] = a_hi if a_hi > acc[_LAMAX + lane] else acc[_LAMAX + lane]


@njit(**_OPTS)
def _row_sums(row, acc):
    """Add one channel row to the lane-wise accumulator ``acc`` (8 * LANES,) of `moments`
    (value ``t`` in lane ``t % LANES``, the tail of the row in lane 0)."""
    inner = row.shape[0]
    full = inner // LANES * LANES
    for b in range(0, full, LANES):
        for lane in range(LANES):
            _moments_lane(acc, lane, np.float64(row[b + lane]))
    for t in range(full, inner):
        _moments_lane(acc, _LANE0, np.float64(row[t]))


@njit(**_OPTS)
def _chunk_range(ch, chunks, n):
    """Items ``[i0, i1)`` of chunk ``ch`` when ``n`` items are cut into ``chunks`` chunks
    of ``ceil(n / chunks)``: the last chunks may be empty (``i0 == i1 == n``), never
    reversed (a reversed range made the non-finite count negative)."""
    step = (n + chunks - 1) // chunks
    i0 = min(n, ch * step)
    return i0, min(n, i0 + step)


@njit(**_OPTS)
def _lane_sum(acc, f):
    total = 0.0
    for lane in range(LANES):
        total += acc[f + lane]
    return total


@njit(**_OPTS)
def _lane_min(acc, f):
    """The smallest of the lanes at ``f`` (never NaN: lanes hold finite values or inf)."""
    low = acc[f]
    for lane in range(1, LANES):
        v = acc[f + lane]
        low = v if v < low else low
    return low


@njit(**_OPTS)
def _lane_max(acc, f):
    """The largest of the lanes at ``f``."""
    high = acc[f]
    for lane in range(1, LANES):
        v = acc[f + lane]
        high = v if v > high else high
    return high


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
def _dominance_lane(amax_px, asum_px, ok_px, lanes, lane, t):
    """Add pixel ``t``'s ``max/sum`` to lane ``lane`` when it counts (branch-free)."""
    s = asum_px[t]
    good = ok_px[t] & (s > 0.0) & np.isfinite(s)
    ratio = amax_px[t] / (s if good else 1.0)
    lanes[0, lane] += ratio if good else 0.0
    lanes[1, lane] += 1.0 if good else 0.0


@njit(**_OPTS)
def _dominance(amax_px, asum_px, ok_px, lanes):
    """Lane-wise sum and count of ``max/sum`` over pixels that are all finite with a
    positive finite sum; ``lanes`` is (2, LANES), the tail of the row in lane 0."""
    inner = amax_px.shape[0]
    full = inner // LANES * LANES
    for b in range(0, full, LANES):
        for lane in range(LANES):
            _dominance_lane(amax_px, asum_px, ok_px, lanes, lane, b + lane)
    for t in range(full, inner):
        _dominance_lane(amax_px, asum_px, ok_px, lanes, _LANE0, t)


@njit(**_OPTS)
def _moments_chunks(x, chunks, c0, c1, part):
    """Partial sums per (chunk of the outer axis, channel): see the column constants.

    Also the channel dominance partials (per pixel: max |x_c| / sum |x_c|, over pixels
    whose values are all finite and whose sum is positive), stored in channel 0's row.
    Within a chunk, values are summed in LANES lanes (value ``t`` of a row in lane
    ``t % LANES``), then the lanes in order: a fixed order, whatever the thread count.
    """
    outer, channels, inner = x.shape
    for ch in range(c0, c1):
        o0, o1 = _chunk_range(ch, chunks, outer)
        p = part[ch]
        acc = _new_lanes(channels, 2)
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
            p[c, MIN] = _lane_min(a, _LMIN)
            p[c, MAX] = _lane_max(a, _LMAX)
            p[c, AMIN] = _lane_min(a, _LAMIN)
            p[c, AMAX] = _lane_max(a, _LAMAX)
        if channels >= 2:
            part[ch, 0, DOM_SUM] = _lane_sum(dom[0], _LANE0)
            part[ch, 0, DOM_N] = _lane_sum(dom[1], _LANE0)


def moments(x, chunks):
    """Partial sums per (chunk of the outer axis, channel) of ``x`` (outer, C, inner): see
    the column constants and :func:`_moments_chunks`."""
    part = np.zeros((chunks, x.shape[1], NCOLS))
    _in_threads(_moments_chunks, chunks, x, chunks, part=part)
    return part


@njit(**_OPTS)
def _centred_lane(lanes, lane, v, mu):
    """Add ``(v - mu)**2`` to lane ``lane`` when ``v`` is finite (branch-free)."""
    d = v - mu
    lanes[lane] += d * d if np.isfinite(v) else 0.0


@njit(**_OPTS)
def _row_centred(row, mu, lanes):
    """Add one channel row to the lane-wise ``(x - mu)**2`` sums (the tail in lane 0)."""
    inner = row.shape[0]
    full = inner // LANES * LANES
    for b in range(0, full, LANES):
        for lane in range(LANES):
            _centred_lane(lanes, lane, np.float64(row[b + lane]), mu)
    for t in range(full, inner):
        _centred_lane(lanes, _LANE0, np.float64(row[t]), mu)


@njit(**_OPTS)
def _centred_chunks(x, mean, chunks, c0, c1, part):
    """Partial sums of ``(x - mean[c])**2`` over the finite values, per chunk and channel
    (lane-wise within a chunk, as in :func:`moments`)."""
    outer, channels, inner = x.shape
    for ch in range(c0, c1):
        o0, o1 = _chunk_range(ch, chunks, outer)
        lanes = np.zeros((channels, LANES))
        for o in range(o0, o1):
            for c in range(channels):
                _row_centred(x[o, c], mean[c], lanes[c])
        for c in range(channels):
            part[ch, c] = _lane_sum(lanes[c], _LANE0)


def centred_squares(x, mean, chunks):
    """Partial sums of ``(x - mean[c])**2`` over the finite values, per chunk and channel."""
    part = np.zeros((chunks, x.shape[1]))
    _in_threads(_centred_chunks, chunks, x, mean, chunks, part=part)
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
def _divisor_lane(acc, lane, v, mode, nb):
    """Count, sum, min, max of finite ``v`` (at 0) and of its finite gain (at 4 * LANES)."""
    fin = np.isfinite(v)
    pos = fin & (v > 0.0)
    g = _gain(v if pos else 1.0, mode, nb)
    _lane_add(acc, _LN, lane, v, fin)
    _lane_add(acc, _GAIN, lane, g, pos & np.isfinite(g))


@njit(**_OPTS)
def _divisor_lanes(d, i0, i1, mode, nb, acc):
    """Lane-wise divisor and gain figures of ``d[i0:i1]`` into ``acc`` (8 * LANES,),
    branch-free so the loop over lanes vectorises; the tail goes to lane 0."""
    full = i0 + (i1 - i0) // LANES * LANES
    for b in range(i0, full, LANES):
        for lane in range(LANES):
            _divisor_lane(acc, lane, np.float64(d[b + lane]), mode, nb)
    for i in range(full, i1):
        _divisor_lane(acc, _LANE0, np.float64(d[i]), mode, nb)


#: The closed form of ``d ** -beta`` a variant of :func:`_divisor_sums` is compiled for:
#: 1 for beta 0.75, 2 for 0.5, 0 for ``pow`` (a default, never compiled).
GAIN_MODE = 0


def _divisor_chunks(d, beta, chunks, c0, c1, part):
    """Partial (n, sum, min, max) of finite ``d`` and of the gain ``d**-beta`` (d > 0), with
    the gain's closed form ``GAIN_MODE`` (see :func:`divisor_sums`), for chunks ``c0..c1``."""
    size = d.shape[0]
    nb = -beta
    for ch in range(c0, c1):
        i0, i1 = _chunk_range(ch, chunks, size)
        acc = _new_lanes(1, 2)[0]
        if i1 > i0:
            _divisor_lanes(d, i0, i1, GAIN_MODE, nb, acc)
        for f in range(2):
            base = f * _GAIN
            part[ch, 4 * f] = _lane_sum(acc, base)
            part[ch, 4 * f + 1] = _lane_sum(acc, base + LANES)
            part[ch, 4 * f + 2] = _lane_min(acc, base + 2 * LANES)
            part[ch, 4 * f + 3] = _lane_max(acc, base + 3 * LANES)


_divisor_chunks_for = Variants(_divisor_chunks, **_OPTS)


def divisor_sums(d, beta, chunks):
    """Partial (n, sum, min, max) of finite ``d`` and of the gain ``d**-beta`` (d > 0).

    beta 0.75 and 0.5 use closed forms (``pow`` costs ~10x more); only the kernel of the
    form ``beta`` needs is compiled.
    """
    mode = 1 if beta == 0.75 else 2 if beta == 0.5 else 0
    part = np.zeros((chunks, 8))
    _in_threads(_divisor_chunks_for(GAIN_MODE=mode), chunks, d, float(beta), chunks, part=part)
    return part


_POOLS: dict[int, Any] = {}  # thread count -> ThreadPoolExecutor


def _in_threads(kernel, chunks, *args, part) -> None:
    """``kernel(*args, c0, c1, part)`` over chunks ``[0, chunks)``, cut into one contiguous
    range per Numba thread (``lrn_cli.set_threads``), each in its own thread: the kernels
    release the GIL, so they run in parallel (as ``prange`` would cut them)."""
    import numba

    threads = max(1, min(numba.get_num_threads(), chunks))
    if threads == 1:
        kernel(*args, 0, chunks, part)
        return
    pool = _POOLS.get(threads)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor

        pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="lrn-stats")
    bounds = [chunks * i // threads for i in range(threads + 1)]
    calls = [(*args, c0, c1, part) for c0, c1 in zip(bounds[:-1], bounds[1:], strict=True)]
    futures = [pool.submit(kernel, *call) for call in calls]
    for future in futures:
        future.result()
