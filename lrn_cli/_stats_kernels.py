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


@njit(parallel=True, **_OPTS)
def moments(x, chunks):
    """Partial sums per (chunk of the outer axis, channel): see the column constants.

    Also the channel dominance partials (per pixel: max |x_c| / sum |x_c|, over pixels
    whose values are all finite and whose sum is positive), stored in channel 0's row.
    """
    outer, channels, inner = x.shape
    part = np.zeros((chunks, channels, NCOLS))
    step = (outer + chunks - 1) // chunks
    for ch in prange(chunks):
        o0 = ch * step
        o1 = min(outer, o0 + step)
        p = part[ch]
        for c in range(channels):
            p[c, MIN] = np.inf
            p[c, MAX] = -np.inf
            p[c, AMIN] = np.inf
            p[c, AMAX] = -np.inf
        amax_px = np.empty(inner)
        asum_px = np.empty(inner)
        ok_px = np.empty(inner, dtype=np.bool_)
        for o in range(o0, o1):
            for t in range(inner):
                amax_px[t] = 0.0
                asum_px[t] = 0.0
                ok_px[t] = True
            for c in range(channels):
                row = x[o, c]
                n = 0
                bad = 0
                s = 0.0
                l1 = 0.0
                l2 = 0.0
                lo = p[c, MIN]
                hi = p[c, MAX]
                alo = p[c, AMIN]
                ahi = p[c, AMAX]
                for t in range(inner):
                    v = np.float64(row[t])
                    if np.isfinite(v):
                        a = abs(v)
                        n += 1
                        s += v
                        l1 += a
                        l2 += v * v
                        lo = min(lo, v)
                        hi = max(hi, v)
                        alo = min(alo, a)
                        ahi = max(ahi, a)
                        asum_px[t] += a
                        amax_px[t] = max(amax_px[t], a)
                    else:
                        bad += 1
                        ok_px[t] = False
                p[c, N] += n
                p[c, NONFINITE] += bad
                p[c, SUM] += s
                p[c, L1] += l1
                p[c, L2SQ] += l2
                p[c, MIN] = lo
                p[c, MAX] = hi
                p[c, AMIN] = alo
                p[c, AMAX] = ahi
            if channels >= 2:
                ds = 0.0
                dn = 0
                for t in range(inner):
                    if ok_px[t] and asum_px[t] > 0.0 and np.isfinite(asum_px[t]):
                        ds += amax_px[t] / asum_px[t]
                        dn += 1
                p[0, DOM_SUM] += ds
                p[0, DOM_N] += dn
    return part


@njit(parallel=True, **_OPTS)
def centred_squares(x, mean, chunks):
    """Partial sums of ``(x - mean[c])**2`` over the finite values, per chunk and channel."""
    outer, channels, inner = x.shape
    part = np.zeros((chunks, channels))
    step = (outer + chunks - 1) // chunks
    for ch in prange(chunks):
        o0 = ch * step
        o1 = min(outer, o0 + step)
        for o in range(o0, o1):
            for c in range(channels):
                row = x[o, c]
                mu = mean[c]
                acc = 0.0
                for t in range(inner):
                    v = np.float64(row[t])
                    if np.isfinite(v):
                        d = v - mu
                        acc += d * d
                part[ch, c] += acc
    return part


@njit(parallel=True, **_OPTS)
def divisor_sums(d, beta, chunks):
    """Partial (n, sum, min, max) of finite ``d`` and of the gain ``d**-beta`` (d > 0).

    beta 0.75 and 0.5 use closed forms (``pow`` costs ~10x more).
    """
    flat = d
    size = flat.shape[0]
    part = np.zeros((chunks, 8))
    step = (size + chunks - 1) // chunks
    nb = -beta
    for ch in prange(chunks):
        i0 = ch * step
        i1 = min(size, i0 + step)
        n = 0
        s = 0.0
        lo = np.inf
        hi = -np.inf
        gn = 0
        gs = 0.0
        glo = np.inf
        ghi = -np.inf
        for i in range(i0, i1):
            v = np.float64(flat[i])
            if np.isfinite(v):
                n += 1
                s += v
                lo = min(lo, v)
                hi = max(hi, v)
                if v > 0.0:
                    if beta == 0.75:
                        g = 1.0 / np.sqrt(v * np.sqrt(v))
                    elif beta == 0.5:
                        g = 1.0 / np.sqrt(v)
                    else:
                        g = v ** nb
                    if np.isfinite(g):
                        gn += 1
                        gs += g
                        glo = min(glo, g)
                        ghi = max(ghi, g)
        part[ch, 0] = n
        part[ch, 1] = s
        part[ch, 2] = lo
        part[ch, 3] = hi
        part[ch, 4] = gn
        part[ch, 5] = gs
        part[ch, 6] = glo
        part[ch, 7] = ghi
    return part
