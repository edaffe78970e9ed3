"""Private Numba kernels for :mod:`lrn_cli.stats`: the figures of a (outer, C, inner) view in
one pass, per fixed block, float64 accumulators, NaN/Inf skipped and counted; and those of
the divisor.

Each block (or chunk) writes its own partial row; the caller merges rows in a fixed order,
so results do not depend on the thread count or timing.  The kernels are serial functions
of a range of blocks, run on Numba's thread count by :func:`_in_threads` (they release the
GIL): compiled with ``parallel=True`` (a ``prange`` over the chunks) the same code took
twice as long to compile, and a first run pays that compile.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from lrn_cli._intrinsics import PREFETCH_AHEAD, _prefetch
from lrn_cli._jit import KERNEL_OPTIONS as _OPTS
from lrn_cli._jit import Variants
from lrn_cli._kernel_cache import drop_stale_caches
from lrn_cli._stats_common import BLOCK_TILE
from lrn_cli._vector_width import install as _install_vector_width

#: Lanes of the lane-wise accumulators: each lane sums every LANES-th value, so the loops
#: vectorise without reassociating anything (the order is fixed by the data's positions).
LANES = 16


@intrinsic
def _stack_f64(typingctx, size):
    """A pointer to ``size`` (a compile-time integer) float64 values on the stack of the
    function that calls it (an ``alloca`` in its entry block): see the comment below."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    n = size.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(types.float64), size=n)

    return types.CPointer(types.float64)(size), codegen


# Why the lane loops keep their accumulators on the stack: LLVM vectorises a loop over
# lanes only if it can prove that the accumulators' memory does not overlap the data the
# loop reads, and it cannot for two NumPy arrays, so lanes held in an array stayed scalar
# loads and stores (the divisor figures of conv1: scalar vsqrtsd/vdivsd).  The memory of
# an ``alloca`` is the function's own: LLVM keeps such lanes in vector registers for the
# whole loop (12 zmm registers for the six moment figures of _fast_row: a row in cache at
# ~0.16 ns per value on one thread, 3x the array-held lanes), with the same additions in
# the same order, hence the same bits.  The buffer must be created in the function that
# runs the loop (LLVM sees it only there, or where that function is inlined): each lane
# loop copies its lanes in and out.  (_dominance, on float64 partials, still compiles to
# scalar vdivsd: LLVM leaves it scalar; it runs once per pixel, not per value.)

# ----------------------------------------------------------------------------------------
# the moments of an array: one pass, in fixed blocks

# columns of the per-block table `moments` fills: per (block, channel) the count of finite
# values and of the others, the shift (a finite value of the block's channel), the sums of
# (x - shift) and of its squares, min and max, min |x| and the sum of |x|
N, NONFINITE, SHIFT, S1, S2, MIN, MAX, AMIN, L1 = range(9)
NCOLS = 9

#: How a view's rows reach the lane loops (the ``how`` argument of :func:`_moments_blocks`):
#: each channel's pixels contiguous, read in place; gathered from a stride into scratch;
#: pixels with interleaved channels, transposed a tile at a time into scratch.
ROWS, GATHER, TRANSPOSE = 0, 1, 2

# The lane-wise accumulators of one channel: figure f of lane l at acc[f + l] (f a multiple
# of LANES), every figure at a constant offset of one array, so the compiler sees no
# aliasing between them and the loops over lanes vectorise.  The offsets are NumPy
# integers, not Python ints: Numba compiles a helper again for every distinct Python int
# literal passed to it, NumPy integers are typed int64 and share one compiled helper.
_AS1, _AS2, _AMIN_, _AMAX_, _AL1, _AAMIN = (np.int64(f * LANES) for f in range(6))
_ACC = 6 * LANES
_LANE0 = np.int64(0)
_DOM_N = np.int64(LANES)  # the dominance's count of pixels, after its sums
#: Longest tile of the moments kernel: the dominance's per-pixel partials are held on the
#: stack at this size.
TILE_MAX = BLOCK_TILE


@njit(**_OPTS)
def _acc_reset(acc):
    """Sums 0, minima +inf, maxima -inf (loops, not slice assignments: each of those is
    another implementation to compile)."""
    for lane in range(LANES):
        acc[_AS1 + lane] = 0.0
        acc[_AS2 + lane] = 0.0
        acc[_AL1 + lane] = 0.0
        acc[_AMIN_ + lane] = np.inf
        acc[_AMAX_ + lane] = -np.inf
        acc[_AAMIN + lane] = np.inf


@njit(**_OPTS)
def _fast_lane(acc, lane, v, k):
    """Add ``v`` (finite or not: the caller checks the sums afterwards) to lane ``lane``."""
    d = v - k
    acc[_AS1 + lane] += d
    acc[_AS2 + lane] += d * d
    acc[_AMIN_ + lane] = v if v < acc[_AMIN_ + lane] else acc[_AMIN_ + lane]
    acc[_AMAX_ + lane] = v if v > acc[_AMAX_ + lane] else acc[_AMAX_ + lane]
    a = abs(v)
    acc[_AL1 + lane] += a
    acc[_AAMIN + lane] = a if a < acc[_AAMIN + lane] else acc[_AAMIN + lane]


@njit(**_OPTS)
def _fast_row(row, k, out):
    """Value ``t`` of ``row`` into lane ``t % LANES`` of ``out``, shifted by ``k``."""
    acc = carray(_stack_f64(_ACC), _ACC)  # see _stack_f64's comment
    for i in range(_ACC):
        acc[i] = out[i]
    inner = row.shape[0]
    full = inner // LANES * LANES
    for b in range(0, full, LANES):
        _prefetch(row, b + PREFETCH_AHEAD)  # as _divisor_fast does
        for lane in range(LANES):
            _fast_lane(acc, lane, np.float64(row[b + lane]), k)
    for t in range(full, inner):
        _fast_lane(acc, t - full, np.float64(row[t]), k)
    for i in range(_ACC):
        out[i] = acc[i]


@njit(**_OPTS)
def _row_step(row, c, shift, count, acc, scratch):
    """One row of channel ``c`` of a block into its accumulator ``acc``.

    Its shift is the block's first finite value of the channel (``count[c] < 0`` until one
    is found).  The row goes through the branch-free loop into ``scratch``; if its sums came
    out non-finite (a NaN or an infinity in the row) it is summed again, value by value,
    skipping them."""
    n = row.shape[0]
    if count[c] < 0.0:
        for t in range(n):
            v = np.float64(row[t])
            if np.isfinite(v):
                shift[c] = v
                count[c] = 0.0
                break
    k = shift[c]
    _acc_reset(scratch)
    _fast_row(row, k, scratch)
    check = 0.0
    for i in range(2 * LANES):
        check += scratch[i]
    if np.isfinite(check):
        for lane in range(LANES):
            acc[_AS1 + lane] += scratch[_AS1 + lane]
            acc[_AS2 + lane] += scratch[_AS2 + lane]
            acc[_AL1 + lane] += scratch[_AL1 + lane]
            acc[_AMIN_ + lane] = min(acc[_AMIN_ + lane], scratch[_AMIN_ + lane])
            acc[_AMAX_ + lane] = max(acc[_AMAX_ + lane], scratch[_AMAX_ + lane])
            acc[_AAMIN + lane] = min(acc[_AAMIN + lane], scratch[_AAMIN + lane])
        count[c] += n
    else:
        for t in range(n):
            v = np.float64(row[t])
            if np.isfinite(v):
                count[c] += 1.0
                _fast_lane(acc, t % LANES, v, k)


@njit(**_OPTS)
def _pixel_partials(src, s0, step, rows, n, amax_px, asum_px):
    """Add ``rows`` rows of ``n`` values, ``src[s0 + r * step + t]``, to the dominance's
    per-pixel partials: running max and sum of ``|x|`` (a non-finite value makes the sum
    non-finite: :func:`_dominance` leaves the pixel out), row after row.

    Eight rows per pass over the partials, each pixel's eight values added in row order in
    registers: the same additions as one pass per row, with an eighth of the partials'
    loads and stores (which bounded the one-row loop, its max a masked store)."""
    r = 0
    while r + 8 <= rows:
        b = s0 + r * step  # rows as slices: indices from range() need no wraparound (gathers)
        r0 = src[b:b + n]
        r1 = src[b + step:b + step + n]
        r2 = src[b + 2 * step:b + 2 * step + n]
        r3 = src[b + 3 * step:b + 3 * step + n]
        r4 = src[b + 4 * step:b + 4 * step + n]
        r5 = src[b + 5 * step:b + 5 * step + n]
        r6 = src[b + 6 * step:b + 6 * step + n]
        r7 = src[b + 7 * step:b + 7 * step + n]
        for t in range(n):
            a0 = abs(np.float64(r0[t]))
            a1 = abs(np.float64(r1[t]))
            a2 = abs(np.float64(r2[t]))
            a3 = abs(np.float64(r3[t]))
            a4 = abs(np.float64(r4[t]))
            a5 = abs(np.float64(r5[t]))
            a6 = abs(np.float64(r6[t]))
            a7 = abs(np.float64(r7[t]))
            asum_px[t] = asum_px[t] + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7
            m = amax_px[t]
            m = a0 if a0 > m else m
            m = a1 if a1 > m else m
            m = a2 if a2 > m else m
            m = a3 if a3 > m else m
            m = a4 if a4 > m else m
            m = a5 if a5 > m else m
            m = a6 if a6 > m else m
            amax_px[t] = a7 if a7 > m else m
        r += 8
    while r < rows:
        row = src[s0 + r * step:s0 + r * step + n]
        for t in range(n):
            a = abs(np.float64(row[t]))
            asum_px[t] += a
            amax_px[t] = a if a > amax_px[t] else amax_px[t]
        r += 1


@njit(**_OPTS)
def _dominance_lane(acc, lane, top, s):
    """``top / s`` into lane ``lane`` if the pixel's sum ``s`` is positive and finite
    (branch-free); returns 1 if it is, else 0."""
    good = (s > 0.0) & np.isfinite(s)
    ratio = top / (s if good else 1.0)
    acc[lane] += ratio if good else 0.0
    return 1 if good else 0


@njit(**_OPTS)
def _dominance(amax_px, asum_px, inner, lanes):
    """Lane-wise sum (``lanes[:LANES]``) of ``max/sum`` over pixels ``[0, inner)`` whose
    sum is positive and finite (branch-free), pixel ``t`` in lane ``t % LANES``, and their
    number added to ``lanes[LANES]`` (a count: exact in any order)."""
    acc = carray(_stack_f64(LANES), LANES)  # see _stack_f64's comment
    for lane in range(LANES):
        acc[lane] = lanes[lane]
    good = 0
    full = inner // LANES * LANES
    for b in range(0, full, LANES):  # whole lane rows: a loop of constant length
        for lane in range(LANES):
            good += _dominance_lane(acc, lane, amax_px[b + lane], asum_px[b + lane])
    for t in range(full, inner):
        good += _dominance_lane(acc, t - full, amax_px[t], asum_px[t])
    for lane in range(LANES):
        lanes[lane] = acc[lane]
    lanes[_DOM_N] += good


@njit(**_OPTS)
def _deinterleave3(seg, r0, r1, r2):
    """RGB pixels to three planar rows (a loop the compiler vectorises)."""
    for t in range(r0.shape[0]):
        r0[t] = seg[3 * t]
        r1[t] = seg[3 * t + 1]
        r2[t] = seg[3 * t + 2]


@njit(**_OPTS)
def _dominance3_lane(acc, lane, v0, v1, v2):
    """:func:`_dominance_lane` of one pixel of three channels."""
    a0 = abs(np.float64(v0))
    a1 = abs(np.float64(v1))
    a2 = abs(np.float64(v2))
    s = a0 + a1 + a2
    m = a1 if a1 > a0 else a0
    m = a2 if a2 > m else m
    return _dominance_lane(acc, lane, m, s)


@njit(**_OPTS)
def _dominance3(r0, r1, r2, lanes):
    """:func:`_dominance` of three channels' rows read directly (pictures: the same
    arithmetic as summing them into per-pixel partials, without those)."""
    acc = carray(_stack_f64(LANES), LANES)  # see _stack_f64's comment
    for lane in range(LANES):
        acc[lane] = lanes[lane]
    good = 0
    inner = r0.shape[0]
    full = inner // LANES * LANES
    for b in range(0, full, LANES):
        for lane in range(LANES):
            good += _dominance3_lane(acc, lane, r0[b + lane], r1[b + lane], r2[b + lane])
    for t in range(full, inner):
        good += _dominance3_lane(acc, t - full, r0[t], r1[t], r2[t])
    for lane in range(LANES):
        lanes[lane] = acc[lane]
    lanes[_DOM_N] += good


@njit(**_OPTS)
def _moments_blocks(flat, how, outer, channels, inner, so, sc, si, group, tile, b0, b1,
                    part, dom):
    """Per-block figures (see the column constants) of the (outer, C, inner) view of
    ``flat`` with element strides (so, sc, si), for blocks ``[b0, b1)``.

    Block ``b`` covers ``group`` consecutive outer indices and ``tile`` consecutive inner
    ones (block ``b // ntiles`` of the outer axis, tile ``b % ntiles``), all channels:
    blocks depend on the shape only, and each is summed alone in a fixed order, so the
    figures do not depend on which thread took which block.  Each channel's values are
    shifted by the first finite one of the block (the sum of squares then cannot lose more
    than ``log10(n)`` digits to cancellation, ``n`` the values of a block).  The channel
    dominance's sum and count per block go to ``dom``.
    """
    ntiles = (inner + tile - 1) // tile
    acc = np.empty((channels, _ACC))
    scratch = np.empty(_ACC)
    shift = np.empty(channels)
    count = np.empty(channels)
    # the dominance's per-pixel partials, on this function's stack: see _stack_f64's comment
    # (held in arrays, their update loop over each row compiled to scalar code)
    amax_px = carray(_stack_f64(TILE_MAX), TILE_MAX)
    asum_px = carray(_stack_f64(TILE_MAX), TILE_MAX)
    lanes = np.empty(2 * LANES)
    per_pixel = channels >= 2 and channels != 3  # three channels: _dominance3, no partials
    buf = np.empty((channels if how != ROWS else 1, tile), dtype=flat.dtype)
    bflat = buf.reshape(buf.size)
    for b in range(b0, b1):
        g = b // ntiles
        t0 = (b - g * ntiles) * tile
        n = min(inner, t0 + tile) - t0
        o0 = g * group
        o1 = min(outer, o0 + group)
        for c in range(channels):
            _acc_reset(acc[c])
            shift[c] = 0.0
            count[c] = -1.0
        for i in range(2 * LANES):
            lanes[i] = 0.0
        for o in range(o0, o1):
            if per_pixel:  # the partials _pixel_partials adds to
                for t in range(n):
                    amax_px[t] = 0.0
                    asum_px[t] = 0.0
            if how == TRANSPOSE:  # interleaved pixels to planar rows
                start = o * so + t0 * si
                if channels == 3:
                    _deinterleave3(flat[start:start + 3 * n], buf[0, :n], buf[1, :n],
                                   buf[2, :n])
                else:
                    for c in range(channels):
                        for t in range(n):
                            buf[c, t] = flat[start + t * channels + c]
            for c in range(channels):
                start = o * so + c * sc + t0 * si
                if how == ROWS:
                    row = flat[start:start + n]
                else:
                    if how == GATHER:
                        for t in range(n):
                            buf[c, t] = flat[start + t * si]
                    row = buf[c, :n]
                _row_step(row, c, shift, count, acc[c], scratch)
                if per_pixel and (c % 8 == 7 or c == channels - 1):
                    c0 = c // 8 * 8  # the rows c0..c, while they are in cache
                    if how == ROWS:
                        _pixel_partials(flat, o * so + c0 * sc + t0 * si, sc, c + 1 - c0, n,
                                        amax_px, asum_px)
                    else:
                        _pixel_partials(bflat, c0 * tile, tile, c + 1 - c0, n, amax_px,
                                        asum_px)
            if channels == 3:
                if how == ROWS:
                    start = o * so + t0 * si
                    _dominance3(flat[start:start + n], flat[start + sc:start + sc + n],
                                flat[start + 2 * sc:start + 2 * sc + n], lanes)
                else:  # the rows are in buf
                    _dominance3(buf[0, :n], buf[1, :n], buf[2, :n], lanes)
            elif per_pixel:
                _dominance(amax_px, asum_px, n, lanes)
        total = (o1 - o0) * n
        for c in range(channels):
            a = acc[c]
            found = max(count[c], 0.0)
            part[b, c, N] = found
            part[b, c, NONFINITE] = total - found
            part[b, c, SHIFT] = shift[c]
            part[b, c, S1] = _lane_sum(a, _AS1)
            part[b, c, S2] = _lane_sum(a, _AS2)
            part[b, c, MIN] = _lane_min(a, _AMIN_)
            part[b, c, MAX] = _lane_max(a, _AMAX_)
            part[b, c, AMIN] = _lane_min(a, _AAMIN)
            part[b, c, L1] = _lane_sum(a, _AL1)
        dom[b, 0] = _lane_sum(lanes, _LANE0)
        dom[b, 1] = _lane_sum(lanes, _DOM_N)


def moments(flat, how, shape, strides, group, tile):
    """The per-block table (blocks, C, NCOLS) and dominance (blocks, 2) of the view of
    ``flat`` (a 1-D C-contiguous float32/float64 array) of ``shape`` (outer, C, inner) and
    element ``strides``; see :func:`_moments_blocks`."""
    outer, channels, inner = shape
    if tile > TILE_MAX:
        raise ValueError(f"tile {tile} > TILE_MAX {TILE_MAX}")
    blocks = -(-outer // group) * -(-inner // tile)
    part = np.empty((blocks, channels, NCOLS))
    dom = np.empty((blocks, 2))
    _in_threads(_moments_blocks, blocks, flat, how, outer, channels, inner, *strides,
                group, tile, part=(part, dom))
    return part, dom


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


# ----------------------------------------------------------------------------------------
# the divisor

# lane-wise (count, sum, min, max) groups of the divisor kernel
_LN = np.int64(0)
_GAIN = np.int64(4 * LANES)  # the divisor's gain figures, after those of D
_DIV_ACC = 8 * LANES


@njit(**_OPTS)
def _divisor_reset(acc):
    """Zero counts and sums, minima +inf and maxima -inf, for D and for the gain."""
    for f in range(2):
        base = f * _GAIN
        for lane in range(LANES):
            acc[base + lane] = 0.0
            acc[base + LANES + lane] = 0.0
            acc[base + 2 * LANES + lane] = np.inf
            acc[base + 3 * LANES + lane] = -np.inf


@njit(**_OPTS)
def _chunk_range(ch, chunks, n):
    """Items ``[i0, i1)`` of chunk ``ch`` when ``n`` items are cut into ``chunks`` chunks
    of ``ceil(n / chunks)``: the last chunks may be empty (``i0 == i1 == n``), never
    reversed (a reversed range made the non-finite count negative)."""
    step = (n + chunks - 1) // chunks
    i0 = min(n, ch * step)
    return i0, min(n, i0 + step)


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
def _lane_gain(raw, v, mode, nb):
    """The gain of ``v = float64(raw)`` the divisor's sums add: :func:`_gain`, or for a
    float32 ``raw`` (modes 3 and 4, beta 0.75 and 0.5) its float32 closed form refined in
    float64 by the series of ``(1 - e) ** -beta`` to ``e**2``, ``e`` the estimate's residual
    (within ~1 ulp of the exact power: closer than the float64 closed form's ~2 ulp).  The
    float64 square roots and division of the closed forms are what bounded the divisor's
    figures on cores with a slow float64 divider; float32 roots and multiplications are
    cheap."""
    if mode == 3:
        q = np.sqrt(np.float32(raw))
        g = np.float64(np.float32(1.0) / (q * np.sqrt(q)))
        g2 = g * g
        e = 1.0 - v * v * v * (g2 * g2)  # v**3 * g**4 = 1 - e
        return g + g * (e * (0.25 + e * 0.15625))  # g * (1 - e)**-(1/4)
    if mode == 4:
        g = np.float64(np.float32(1.0) / np.sqrt(np.float32(raw)))
        e = 1.0 - v * (g * g)  # v * g**2 = 1 - e
        return g + g * (e * (0.5 + e * 0.375))  # g * (1 - e)**-(1/2)
    return _gain(v, mode, nb)


@njit(**_OPTS)
def _divisor_fast_lane(acc, lane, raw, mode, nb):
    """Sum, min and max of ``v = float64(raw)`` and the sum of its gain, assuming both
    finite (no masks); with ``pow`` also the gain's min and max (see
    :func:`_divisor_fast`)."""
    v = np.float64(raw)
    g = _lane_gain(raw, v, mode, nb)
    acc[LANES + lane] += v
    acc[2 * LANES + lane] = v if v < acc[2 * LANES + lane] else acc[2 * LANES + lane]
    acc[3 * LANES + lane] = v if v > acc[3 * LANES + lane] else acc[3 * LANES + lane]
    acc[_GAIN + LANES + lane] += g
    if mode == 0:
        lo = acc[_GAIN + 2 * LANES + lane]
        hi = acc[_GAIN + 3 * LANES + lane]
        acc[_GAIN + 2 * LANES + lane] = g if g < lo else lo
        acc[_GAIN + 3 * LANES + lane] = g if g > hi else hi


@njit(**_OPTS)
def _divisor_fast(d, i0, i1, mode, nb, out):
    """Lane-wise divisor and gain figures of ``d[i0:i1]`` into ``out`` (8 * LANES,) without
    masks (the loop over lanes vectorises), for a chunk whose values are all finite and
    positive with finite gains; returns False (``out`` is then to be discarded) if they
    are not.

    The closed forms of the gain (modes 1 and 2) are monotone decreasing: square roots,
    products of positive values and divisions rounded correctly are monotone, so the
    smallest gain is exactly the gain of the largest D and the largest that of the
    smallest.  Their lanes are not tracked (the caller takes the gains of D's extremes);
    ``pow`` is not known to round monotonically and keeps them."""
    acc = carray(_stack_f64(_DIV_ACC), _DIV_ACC)  # see _stack_f64's comment
    for i in range(_DIV_ACC):
        acc[i] = out[i]
    seg = d[i0:i1]  # a view from 0: d[i0 + t] would be read by gathers (see _fast_row)
    n = i1 - i0
    full = n // LANES * LANES
    # the loop's roots set its pace, too slow for the hardware prefetchers to keep d
    # coming from memory (2x slower when d is not in the cache): it asks for the line
    # PREFETCH_AHEAD values ahead itself
    for b in range(0, full, LANES):
        _prefetch(seg, b + PREFETCH_AHEAD)
        for lane in range(LANES):
            _divisor_fast_lane(acc, lane, seg[b + lane], mode, nb)
    for t in range(full, n):
        _divisor_fast_lane(acc, _LANE0, seg[t], mode, nb)
    for i in range(_DIV_ACC):
        out[i] = acc[i]
    total = _lane_sum(out, LANES) + _lane_sum(out, _GAIN + LANES)
    if not (np.isfinite(total) and _lane_min(out, 2 * LANES) > 0.0):
        return False
    out[0] = i1 - i0
    out[_GAIN] = i1 - i0
    return True


#: The closed form of ``d ** -beta`` a variant of :func:`_divisor_sums` is compiled for:
#: 1 for beta 0.75, 2 for 0.5, 0 for ``pow`` (a default, never compiled); 3 and 4 for
#: beta 0.75 and 0.5 of a float32 ``d``, summing refined float32 estimates (see
#: :func:`_lane_gain`; the extremes still come from the closed forms 1 and 2).
GAIN_MODE = 0


def _divisor_chunks(d, beta, chunks, c0, c1, part):
    """Partial (n, sum, min, max) of finite ``d`` and of the gain ``d**-beta`` (d > 0), with
    the gain's closed form ``GAIN_MODE`` (see :func:`divisor_sums`), for chunks ``c0..c1``.

    A chunk holding NaN, inf or D <= 0 (or infinite gains) gets ``-1`` as its count, for
    the caller to sum it with NumPy: masks cost time in the loop and compiling a second
    loop costs a first run more than NumPy on such rare chunks."""
    size = d.shape[0]
    nb = -beta
    acc = np.empty(_DIV_ACC)
    for ch in range(c0, c1):
        i0, i1 = _chunk_range(ch, chunks, size)
        _divisor_reset(acc)
        if i1 > i0 and not _divisor_fast(d, i0, i1, GAIN_MODE, nb, acc):
            part[ch, 0] = -1.0  # for the caller to sum with NumPy
            continue
        for f in range(2):
            base = f * _GAIN
            part[ch, 4 * f] = _lane_sum(acc, base)
            part[ch, 4 * f + 1] = _lane_sum(acc, base + LANES)
            part[ch, 4 * f + 2] = _lane_min(acc, base + 2 * LANES)
            part[ch, 4 * f + 3] = _lane_max(acc, base + 3 * LANES)
        if GAIN_MODE != 0 and i1 > i0:  # monotone: the closed form's gains of D's extremes
            closed = GAIN_MODE - 2 if GAIN_MODE > 2 else GAIN_MODE
            part[ch, 6] = _gain(part[ch, 3], closed, nb)
            part[ch, 7] = _gain(part[ch, 2], closed, nb)


_divisor_chunks_for = Variants(_divisor_chunks, **_OPTS)


def divisor_sums(d, beta, chunks):
    """Partial (n, sum, min, max) of finite ``d`` and of the gain ``d**-beta`` (d > 0).

    beta 0.75 and 0.5 use closed forms (``pow`` costs ~10x more), refined float32
    estimates for a float32 ``d``; only the kernel of the form ``beta`` needs is compiled.
    """
    mode = 1 if beta == 0.75 else 2 if beta == 0.5 else 0
    if mode and d.dtype == np.float32:
        mode += 2  # float32 estimates refined in float64 (see _lane_gain)
    part = np.zeros((chunks, 8))
    _in_threads(_divisor_chunks_for(GAIN_MODE=mode), chunks, d, float(beta), chunks, part=part)
    return part


def chunk_bounds(ch, chunks, n):
    """:func:`_chunk_range` in Python: the items of chunk ``ch``."""
    step = (n + chunks - 1) // chunks
    i0 = min(n, ch * step)
    return i0, min(n, i0 + step)


_POOLS: dict[int, Any] = {}  # helper count -> ThreadPoolExecutor

#: Ranges of work per thread :func:`_in_threads` cuts: a thread that finishes early takes
#: the next (another process may hold a core, a helper may wake late).  The figures do not
#: depend on it.
_RANGES_PER_THREAD = 4


def _in_threads(kernel, chunks, *args, part) -> None:
    """``kernel(*args, c0, c1, *part)`` (``part`` an array or a tuple of them) over chunks
    ``[0, chunks)``, cut into contiguous ranges run by Numba's thread count
    (``lrn_cli.set_threads``) of threads: the kernels release the GIL, so they run in
    parallel (as ``prange`` would cut them).

    The calling thread takes ranges too, beside ``threads - 1`` helpers that take them from
    the same queue: it starts at once, and a helper that is slow to wake (a sleeping vCPU
    took milliseconds on session 13's VM, for every call) only takes fewer ranges.  Every
    range writes its own rows of ``part``, so who runs it changes nothing."""
    import threading

    import numba

    outs = part if isinstance(part, tuple) else (part,)
    threads = max(1, min(numba.get_num_threads(), chunks))
    if threads == 1:
        kernel(*args, 0, chunks, *outs)
        return
    helpers = threads - 1
    pool = _POOLS.get(helpers)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor

        pool = _POOLS[helpers] = ThreadPoolExecutor(helpers, thread_name_prefix="lrn-stats")
    ranges = min(chunks, threads * _RANGES_PER_THREAD)
    bounds = [chunks * i // ranges for i in range(ranges + 1)]
    todo = iter([(*args, c0, c1, *outs)
                 for c0, c1 in zip(bounds[:-1], bounds[1:], strict=True)])
    lock = threading.Lock()  # each range is taken once (without relying on the GIL)

    def drain() -> None:
        while True:
            with lock:
                call = next(todo, None)
            if call is None:
                return
            kernel(*call)

    futures = [pool.submit(drain) for _ in range(helpers)]
    try:
        drain()
    finally:  # the helpers finish (or fail) before part is read or the error raised
        for future in futures:
            future.result()


# Before any kernel of this module is loaded from Numba's cache (see lrn_cli._kernel_cache:
# its kernels compile in lrn_cli._intrinsics' prefetch and lrn_cli._stats_common's tile).
drop_stale_caches(getattr(getattr(_chunk_range, "stats", None), "cache_path", None))
_install_vector_width()  # before any kernel compiles: see lrn_cli._vector_width
