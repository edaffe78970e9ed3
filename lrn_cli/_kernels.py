"""Private Numba kernels: one family serves every convention and both modes.

Each kernel takes the resolved constants (window offsets ``lo``/``hi``, ``a'``, ``k'``,
``beta``), never a convention, so there is one compiled variant per dtype and layout.

Design (see ``shared/performance-notes.md``):

* Window sums never subtract.  Short windows are summed directly; long ones use block
  prefix/suffix sums (van Herk/Gil-Werman for sums): ``S[i] = suffix[i] + prefix[i+m-1]``,
  O(1) per element whatever the size, with no cancellation.  Both sum in a fixed order that
  depends only on absolute positions along the summed axis.
* Work items are disjoint output blocks (``prange``), each with its own small scratch, so
  extra memory is a few blocks per thread, never a full-size temporary.
* ``D ** -beta`` has closed forms for the common betas (``pow`` costs ~10x the memory
  ceiling); each variant has its own loop because an ``if`` in the inner loop is not hoisted.
* ``error_model="numpy"``: no zero-division checks (IEEE results, as the reference), and
  no fastmath, so NaN and Inf propagate exactly as in plain NumPy.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_OPTS = {"cache": True, "error_model": "numpy", "nogil": True}

# beta fast paths: gain = D ** -beta
BETA_GENERAL, BETA_075, BETA_05, BETA_1, BETA_0, BETA_025, BETA_15, BETA_2 = range(8)


def beta_mode(beta: float) -> int:
    """Pick the closed form for ``D ** -beta`` (exact same maths, far cheaper than pow)."""
    return {0.75: BETA_075, 0.5: BETA_05, 1.0: BETA_1, 0.0: BETA_0, 0.25: BETA_025,
            1.5: BETA_15, 2.0: BETA_2}.get(float(beta), BETA_GENERAL)


@njit(**_OPTS)
def _gain_row(s, a, k, beta, mode):
    """In place: ``s[t] <- (k + a*s[t]) ** -beta`` (one loop per closed form).

    ``a``, ``k`` and ``beta`` must have the dtype of ``s`` so the loop stays in it.
    """
    n = s.shape[0]
    one = k - k + 1
    if mode == BETA_075:
        for t in range(n):
            d = k + a * s[t]
            s[t] = one / np.sqrt(d * np.sqrt(d))
    elif mode == BETA_05:
        for t in range(n):
            s[t] = one / np.sqrt(k + a * s[t])
    elif mode == BETA_1:
        for t in range(n):
            s[t] = one / (k + a * s[t])
    elif mode == BETA_0:
        for t in range(n):
            s[t] = one
    elif mode == BETA_025:
        for t in range(n):
            s[t] = one / np.sqrt(np.sqrt(k + a * s[t]))
    elif mode == BETA_15:
        for t in range(n):
            d = k + a * s[t]
            s[t] = one / (d * np.sqrt(d))
    elif mode == BETA_2:
        for t in range(n):
            d = k + a * s[t]
            s[t] = one / (d * d)
    else:
        nb = -beta
        for t in range(n):
            s[t] = (k + a * s[t]) ** nb


@njit(**_OPTS)
def _wsum_rows_direct(src, dst, lo, hi):
    """``dst[i] = sum(src[j] for j in [i-lo, i+hi] ∩ [0, L))``, summed in index order."""
    length, width = src.shape
    for i in range(length):
        out = dst[i]
        for t in range(width):
            out[t] = 0.0
        for j in range(max(0, i - lo), min(length, i + hi + 1)):
            row = src[j]
            for t in range(width):
                out[t] += row[t]


@njit(**_OPTS)
def _wsum_rows_blocks(src, dst, lo, hi, pre, suf):
    """Same as :func:`_wsum_rows_direct` in O(1) per element (block prefix/suffix sums).

    Positions are shifted by ``lo`` so the window of ``i`` is ``[i, i+m-1]`` in the padded
    axis; blocks of ``m`` taps tile that axis.  ``pre``/``suf`` are scratch rows of length
    ``L + m - 1``.  Only additions of non-negative terms when ``src`` is squares.
    """
    length, width = src.shape
    m = lo + hi + 1
    ext = length + m - 1
    for e in range(ext):
        j = e - lo
        p = pre[e]
        if e % m == 0:
            if 0 <= j < length:
                row = src[j]
                for t in range(width):
                    p[t] = row[t]
            else:
                for t in range(width):
                    p[t] = 0.0
        else:
            prev = pre[e - 1]
            if 0 <= j < length:
                row = src[j]
                for t in range(width):
                    p[t] = prev[t] + row[t]
            else:
                for t in range(width):
                    p[t] = prev[t]
    for e in range(ext - 1, -1, -1):
        j = e - lo
        q = suf[e]
        if e % m == m - 1 or e == ext - 1:
            if 0 <= j < length:
                row = src[j]
                for t in range(width):
                    q[t] = row[t]
            else:
                for t in range(width):
                    q[t] = 0.0
        else:
            nxt = suf[e + 1]
            if 0 <= j < length:
                row = src[j]
                for t in range(width):
                    q[t] = nxt[t] + row[t]
            else:
                for t in range(width):
                    q[t] = nxt[t]
    for i in range(length):
        out = dst[i]
        q = suf[i]
        if i % m == 0:
            for t in range(width):
                out[t] = q[t]
        else:
            p = pre[i + m - 1]
            for t in range(width):
                out[t] = q[t] + p[t]


@njit(**_OPTS)
def _wsum_rows(src, dst, lo, hi, blocks):
    """Window sums along axis 0 of a 2-D scratch block, vectorised along axis 1."""
    if blocks:
        ext = src.shape[0] + lo + hi
        pre = np.empty((ext, src.shape[1]), dtype=src.dtype)
        suf = np.empty((ext, src.shape[1]), dtype=src.dtype)
        _wsum_rows_blocks(src, dst, lo, hi, pre, suf)
    else:
        _wsum_rows_direct(src, dst, lo, hi)


@njit(**_OPTS)
def _wsum_cols(src, dst, lo, hi, blocks):
    """Window sums along axis 1 (within each row) of a 2-D scratch block."""
    length, width = src.shape
    if blocks:
        m = lo + hi + 1
        ext = width + m - 1
        pre = np.empty(ext, dtype=src.dtype)
        suf = np.empty(ext, dtype=src.dtype)
        for r in range(length):
            row = src[r]
            out = dst[r]
            acc = 0.0
            for e in range(ext):
                j = e - lo
                v = row[j] if 0 <= j < width else 0.0
                acc = v if e % m == 0 else acc + v
                pre[e] = acc
            acc = 0.0
            for e in range(ext - 1, -1, -1):
                j = e - lo
                v = row[j] if 0 <= j < width else 0.0
                acc = v if (e % m == m - 1 or e == ext - 1) else acc + v
                suf[e] = acc
            for i in range(width):
                out[i] = suf[i] if i % m == 0 else suf[i] + pre[i + m - 1]
    else:
        for r in range(length):
            row = src[r]
            out = dst[r]
            for i in range(width):
                out[i] = 0.0
            for off in range(-lo, hi + 1):
                # out[i] += row[i + off] for every i with 0 <= i + off < width
                i0 = max(0, -off)
                i1 = min(width, width - off)
                for i in range(i0, i1):
                    out[i] += row[i + off]


# ----------------------------------------------------------------------------------------
# across channels: arrays viewed as (outer, C, inner); a work item is (outer, inner tile)


@njit(**_OPTS)
def _load_sq_across(x, o, p0, buf, sq, channel_fast):
    """Copy the block ``x[o, :, p0:p0+T]`` into ``buf`` (acc dtype) and its squares into ``sq``."""
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
    for c in range(channels):
        b = buf[c]
        s = sq[c]
        for t in range(tile):
            s[t] = b[t] * b[t]


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


@njit(parallel=True, **_OPTS)
def across_forward(x, y, d, want_y, want_d, lo, hi, a, k, beta, bmode, tile, blocks, acc_dtype):
    """LRN across axis 1 of the 3-D view ``x`` (outer, C, inner) into ``y`` and/or ``d``.

    ``d`` receives the divisor ``k + a*S`` when ``want_d``.  ``acc_dtype`` is a zero-size
    array whose dtype is the accumulation dtype.
    """
    outer, channels, inner = x.shape
    ntiles = (inner + tile - 1) // tile
    channel_fast = x.strides[1] < x.strides[2]
    for item in prange(outer * ntiles):
        o = item // ntiles
        p0 = (item % ntiles) * tile
        width = min(inner, p0 + tile) - p0
        buf = np.empty((channels, width), dtype=acc_dtype.dtype)
        sq = np.empty((channels, width), dtype=acc_dtype.dtype)
        s = np.empty((channels, width), dtype=acc_dtype.dtype)
        _load_sq_across(x, o, p0, buf, sq, channel_fast)
        _wsum_rows(sq, s, lo, hi, blocks)
        if want_d:
            for c in range(channels):
                r = s[c]
                q = sq[c]
                for t in range(width):
                    q[t] = k + a * r[t]
            _store_across(d, o, p0, sq, channel_fast)
        if want_y:
            for c in range(channels):
                g = s[c]
                _gain_row(g, a, k, beta, bmode)
                b = buf[c]
                for t in range(width):
                    g[t] = b[t] * g[t]
            _store_across(y, o, p0, s, channel_fast)


@njit(parallel=True, **_OPTS)
def across_backward(x, gy, dx, lo, hi, a, k, beta, tile, blocks):
    """Gradient of :func:`across_forward` w.r.t. ``x`` (float64 scratch).

    ``dx_j = g_j D_j^-b - 2 b a x_j sum_{i in [j-hi, j+lo]} g_i x_i D_i^(-b-1)``.
    """
    outer, channels, inner = x.shape
    ntiles = (inner + tile - 1) // tile
    channel_fast = x.strides[1] < x.strides[2]
    for item in prange(outer * ntiles):
        o = item // ntiles
        p0 = (item % ntiles) * tile
        width = min(inner, p0 + tile) - p0
        xb = np.empty((channels, width), dtype=np.float64)
        gb = np.empty((channels, width), dtype=np.float64)
        sq = np.empty((channels, width), dtype=np.float64)
        s = np.empty((channels, width), dtype=np.float64)
        _load_sq_across(x, o, p0, xb, sq, channel_fast)
        _load_sq_across(gy, o, p0, gb, s, channel_fast)
        _wsum_rows(sq, s, lo, hi, blocks)
        for c in range(channels):
            sr = s[c]
            tr = sq[c]
            xr = xb[c]
            gr = gb[c]
            for t in range(width):
                dv = k + a * sr[t]
                gain = dv ** -beta
                sr[t] = gain
                tr[t] = gr[t] * xr[t] * gain / dv
        u = np.empty((channels, width), dtype=np.float64)
        _wsum_rows(sq, u, hi, lo, blocks)
        for c in range(channels):
            ur = u[c]
            sr = s[c]
            xr = xb[c]
            gr = gb[c]
            for t in range(width):
                ur[t] = gr[t] * sr[t] - 2.0 * beta * a * xr[t] * ur[t]
        _store_across(dx, o, p0, u, channel_fast)


# ----------------------------------------------------------------------------------------
# within a channel: arrays viewed as (planes, H, W); a work item is (plane, strip of rows)


@njit(**_OPTS)
def _load_rows(x, p, r0, buf):
    rows, width = buf.shape
    for r in range(rows):
        src = x[p, r0 + r]
        dst = buf[r]
        for w in range(width):
            dst[w] = src[w]


@njit(**_OPTS)
def _box_sums(src, dst, lo, hi, blocks, tmp):
    """``dst`` = box sums of ``src`` over ``[-lo, hi]`` on both axes (along rows, then
    columns); ``tmp`` is scratch and must differ from both (``dst`` may be ``src``)."""
    _wsum_cols(src, tmp, lo, hi, blocks)
    _wsum_rows(tmp, dst, lo, hi, blocks)


@njit(parallel=True, **_OPTS)
def within_forward(x, y, d, want_y, want_d, lo, hi, a, k, beta, bmode, strip, blocks,
                   acc_dtype):
    """LRN over a ``size x size`` box in each plane of the 3-D view ``x`` (planes, H, W)."""
    planes, height, width = x.shape
    nstrips = (height + strip - 1) // strip
    for item in prange(planes * nstrips):
        p = item // nstrips
        h0 = (item % nstrips) * strip
        h1 = min(height, h0 + strip)
        r0 = max(0, h0 - lo)
        r1 = min(height, h1 + hi)
        rows = r1 - r0
        buf = np.empty((rows, width), dtype=acc_dtype.dtype)
        sq = np.empty((rows, width), dtype=acc_dtype.dtype)
        hs = np.empty((rows, width), dtype=acc_dtype.dtype)
        _load_rows(x, p, r0, buf)
        for r in range(rows):
            b = buf[r]
            q = sq[r]
            for w in range(width):
                q[w] = b[w] * b[w]
        _box_sums(sq, sq, lo, hi, blocks, hs)
        # sq now holds the box sums S for rows r0..r1 (hs held the row sums)
        for h in range(h0, h1):
            r = h - r0
            sr = sq[r]
            if want_d:
                dr = d[p, h]
                for w in range(width):
                    dr[w] = k + a * sr[w]
            if want_y:
                _gain_row(sr, a, k, beta, bmode)
                b = buf[r]
                yr = y[p, h]
                for w in range(width):
                    yr[w] = b[w] * sr[w]


@njit(parallel=True, **_OPTS)
def within_backward(x, gy, dx, lo, hi, a, k, beta, strip, blocks):
    """Gradient of :func:`within_forward` w.r.t. ``x``; the adjoint box is mirrored."""
    planes, height, width = x.shape
    nstrips = (height + strip - 1) // strip
    # the gradient of rows [h0, h1) needs t_i on rows [h0-hi, h1+lo), whose S needs
    # x on rows [h0-hi-lo, h1+lo+hi)
    for item in prange(planes * nstrips):
        p = item // nstrips
        h0 = (item % nstrips) * strip
        h1 = min(height, h0 + strip)
        r0 = max(0, h0 - lo - hi)
        r1 = min(height, h1 + lo + hi)
        rows = r1 - r0
        xb = np.empty((rows, width), dtype=np.float64)
        gb = np.empty((rows, width), dtype=np.float64)
        sq = np.empty((rows, width), dtype=np.float64)
        s = np.empty((rows, width), dtype=np.float64)
        tmp = np.empty((rows, width), dtype=np.float64)
        _load_rows(x, p, r0, xb)
        _load_rows(gy, p, r0, gb)
        for r in range(rows):
            xr = xb[r]
            q = sq[r]
            for w in range(width):
                q[w] = xr[w] * xr[w]
        _box_sums(sq, s, lo, hi, blocks, tmp)
        for r in range(rows):
            sr = s[r]
            tr = sq[r]
            xr = xb[r]
            gr = gb[r]
            for w in range(width):
                dv = k + a * sr[w]
                gain = dv ** -beta
                sr[w] = gain
                tr[w] = gr[w] * xr[w] * gain / dv
        # rows outside [h0-hi, h1+lo) hold t computed from a truncated S: they are never
        # read for the rows we write, because the mirrored box of row h spans [h-hi, h+lo]
        u = np.empty((rows, width), dtype=np.float64)
        _box_sums(sq, u, hi, lo, blocks, tmp)
        for h in range(h0, h1):
            r = h - r0
            ur = u[r]
            sr = s[r]
            xr = xb[r]
            gr = gb[r]
            dr = dx[p, h]
            for w in range(width):
                dr[w] = gr[w] * sr[w] - 2.0 * beta * a * xr[w] * ur[w]
