"""LRN within a channel: box sums over arrays viewed as ``(planes, H, W)``.

Forward (:func:`within_forward`), windows of at most ``TREE_TAPS`` (8) taps per axis: one
fixed tree per axis, :func:`lrn_cli._kernel_parts._tree8` with zeros beyond the window (the
across kernels' tree), along the rows and then down the columns.  Whole C-contiguous planes
run each step as one loop over the flat plane (:func:`_planes_short`: out-of-row taps are
masked, rows above and below the plane are zero rows); other layouts stream down strips of
rows (:func:`_box_item_short`, a ring of the last rows' row sums).  Both add the same
numbers in the same order, and a direct tree depends on the window only, so every cut
(strips, chunks, slabs) gives the same bits.

Longer windows (:func:`_box_item`): each row is squared into a zero-padded scratch row and
summed by a fixed tree of pieces of 1, 2, 4, 8, ... taps (:func:`_row_sums`); the row sums
then stream through block prefix/suffix sums down the columns (O(1) per element whatever
the size), whose blocks are anchored to absolute rows (``base_h``), so any cut gives the
same bits.  Only two blocks of row sums are kept (a ring of ``2 x size`` rows).  Whole
C-contiguous planes take :func:`_planes_long` instead: the same trees and blocks, every
step a few long loops over all the group's rows (short per-row loops index with unsigned
offsets: slices and signed offsets there cost more than the sums), so the same bits.

A work item is ``group`` whole planes (small planes), or ``strip`` rows x ``cols`` columns
of one plane (large planes), or of all planes when they are interleaved (a channels-last
image viewed planar: each row of all planes is read and written as one contiguous span).

Backward (:func:`within_backward`): box sums down the columns, then transposed and along
the rows, both by block sums anchored to ``(base_h, base_w)``.  Which sizes run is decided
in :func:`lrn_cli.dispatch.within_work` / :func:`lrn_cli.dispatch.within_forward_work`.
Common parameters:

lo, hi : int
    The box of row (column) ``i`` spans ``[i - lo, i + hi]``, clipped to the plane.
a, k, beta, bmode
    The resolved constants and the closed form of ``D ** -beta`` (``lrn_cli._jit.BETA_*``).
group, strip, cols : int
    Planes per work item, output rows and columns per work item.
base_h, base_w : int
    Row 0 and column 0 of these planes are row ``base_h`` and column ``base_w`` of the
    whole array (they anchor the block sums of chunked callers).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from lrn_cli._jit import BETA_05, BETA_075
from lrn_cli._kernel_parts import (
    _OPTS,
    TREE_TAPS,
    _divisor_row,
    _finish_row,
    _gain_of,
    _masked_sum8,
    _scale_05,
    _scale_075,
    _tree4,
    _tree8,
    _wsum_rows_blocks,
)

#: Planes at least this wide take the strip kernel for short windows: the whole-plane
#: kernel's column masks are int32 (:func:`_planes_short`).
FLAT_SHORT_MAX_WIDTH = 2**31 - 2 * TREE_TAPS


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


# ----------------------------------------------------------------------------------------
# forward: row sums by a fixed tree, then block sums streamed down the columns


@njit(**_OPTS)
def _row_squares(x, x2, il, g0, gn, t, c0, cw, lo, m, q, one):
    """``q[g*sw + p] = (x[g0+g, t, c0+p-lo] * one) ** 2`` for the columns inside the plane
    (``sw = cw + m - 1``); the other entries of ``q`` (zero padding) are left as they are.
    ``il``: the planes are interleaved (a channels-last image, ``gn`` = all of them) and
    row ``t`` is read as the contiguous row ``x2[t]`` of ``W * gn`` values."""
    width = x.shape[2]
    sw = cw + m - 1
    a = c0 - lo
    p0 = min(sw, max(0, -a))
    p1 = max(p0, min(sw, width - a))
    if il:
        src2 = x2[t, (a + p0) * gn:(a + p1) * gn]
        for g in range(gn):
            dst = q[g * sw + p0:g * sw + p1]
            for p in range(p1 - p0):
                v = src2[p * gn + g] * one
                dst[p] = v * v
        return
    for g in range(gn):
        src = x[g0 + g, t, a + p0:a + p1]
        dst = q[g * sw + p0:g * sw + p1]
        for p in range(p1 - p0):
            v = src[p] * one
            dst[p] = v * v


@njit(**_OPTS)
def _emit_rows(acc_row, x, y, d, x2, y2, d2, il, ilbuf, want_y, want_d, g0, gn, h, c0, cw,
               sw, a, k, beta, bmode):
    """Finish output row ``h`` (columns ``c0 .. c0+cw``) of planes ``g0 .. g0+gn`` from the
    box sums ``acc_row[g*sw + p]``; interleaved planes (``il``) are finished as one
    contiguous span of ``x2[h]`` / ``y2[h]`` / ``d2[h]`` (the sums interleaved into
    ``ilbuf`` first)."""
    if il:
        for g in range(gn):
            src = acc_row[g * sw:g * sw + cw]
            for p in range(cw):
                ilbuf[p * gn + g] = src[p]
        acc = ilbuf[:cw * gn]
        lo_, hi_ = c0 * gn, (c0 + cw) * gn
        if want_d:
            _divisor_row(acc, d2[h, lo_:hi_], a, k)
        if want_y:
            _finish_row(acc, x2[h, lo_:hi_], y2[h, lo_:hi_], a, k, beta, bmode)
        return
    for g in range(gn):
        acc = acc_row[g * sw:g * sw + cw]
        if want_d:
            _divisor_row(acc, d[g0 + g, h, c0:c0 + cw], a, k)
        if want_y:
            _finish_row(acc, x[g0 + g, h, c0:c0 + cw], y[g0 + g, h, c0:c0 + cw], a, k, beta,
                        bmode)


@njit(**_OPTS)
def _sums4(a, b, unit, nn):
    """``b[p] = (a[p] + a[p+u]) + (a[p+2u] + a[p+3u])``, ``u = unit``, ``p < nn``."""
    u1 = np.uint64(unit)
    u2 = np.uint64(2 * unit)
    u3 = np.uint64(3 * unit)
    for p in range(np.uint64(nn)):
        b[p] = (a[p] + a[p + u1]) + (a[p + u2] + a[p + u3])


@njit(**_OPTS)
def _pieces_low(q, s4, r, low, cnt):
    """``r[p]`` = the pieces of 1, 2 and 4 taps of the low bits ``low`` (1..7) of the window
    starting at ``p``, added in that order, ``p < cnt`` (a piece of 4 is one sum of 4 taps,
    ``s4``).  Windows of 32 taps or more whose bits of 8 and 16 are clear start here."""
    c = np.uint64(cnt)
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    u3 = np.uint64(3)
    if low == 1:
        for p in range(c):
            r[p] = q[p]
    elif low == 2:
        for p in range(c):
            r[p] = q[p] + q[p + u1]
    elif low == 3:
        for p in range(c):
            r[p] = q[p] + (q[p + u1] + q[p + u2])
    elif low == 4:
        for p in range(c):
            r[p] = s4[p]
    elif low == 5:
        for p in range(c):
            r[p] = q[p] + s4[p + u1]
    elif low == 6:
        for p in range(c):
            r[p] = (q[p] + q[p + u1]) + s4[p + u2]
    else:
        for p in range(c):
            r[p] = (q[p] + (q[p + u1] + q[p + u2])) + s4[p + u3]


@njit(**_OPTS)
def _pieces_8(q, s4, r, low, cnt):
    """:func:`_pieces_low` (``low`` 0..7) then a piece of 8 taps (two sums of 4), in one
    pass: one load per sum of 4 and one store per value, where two passes (the low pieces
    stored, then read back) cost a store and a load more and were ~10% slower."""
    c = np.uint64(cnt)
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    u3 = np.uint64(3)
    o = np.uint64(low)
    o4 = np.uint64(low + 4)
    if low == 0:
        for p in range(c):
            r[p] = s4[p] + s4[p + o4]
    elif low == 1:
        for p in range(c):
            r[p] = q[p] + (s4[p + o] + s4[p + o4])
    elif low == 2:
        for p in range(c):
            r[p] = (q[p] + q[p + u1]) + (s4[p + o] + s4[p + o4])
    elif low == 3:
        for p in range(c):
            r[p] = (q[p] + (q[p + u1] + q[p + u2])) + (s4[p + o] + s4[p + o4])
    elif low == 4:
        for p in range(c):
            r[p] = s4[p] + (s4[p + o] + s4[p + o4])
    elif low == 5:
        for p in range(c):
            r[p] = (q[p] + s4[p + u1]) + (s4[p + o] + s4[p + o4])
    elif low == 6:
        for p in range(c):
            r[p] = ((q[p] + q[p + u1]) + s4[p + u2]) + (s4[p + o] + s4[p + o4])
    else:
        for p in range(c):
            r[p] = (((q[p] + (q[p + u1] + q[p + u2])) + s4[p + u3])
                    + (s4[p + o] + s4[p + o4]))


@njit(**_OPTS)
def _pieces_16(q, s4, r, low, cnt):
    """:func:`_pieces_low` (``low`` 0..7) then a piece of 16 taps (four sums of 4), in one
    pass (as :func:`_pieces_8`)."""
    c = np.uint64(cnt)
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    u3 = np.uint64(3)
    o = np.uint64(low)
    o4 = np.uint64(low + 4)
    o8 = np.uint64(low + 8)
    o12 = np.uint64(low + 12)
    if low == 0:
        for p in range(c):
            r[p] = (s4[p] + s4[p + o4]) + (s4[p + o8] + s4[p + o12])
    elif low == 1:
        for p in range(c):
            r[p] = q[p] + ((s4[p + o] + s4[p + o4]) + (s4[p + o8] + s4[p + o12]))
    elif low == 2:
        for p in range(c):
            r[p] = (q[p] + q[p + u1]) + ((s4[p + o] + s4[p + o4]) + (s4[p + o8] + s4[p + o12]))
    elif low == 3:
        for p in range(c):
            r[p] = ((q[p] + (q[p + u1] + q[p + u2]))
                    + ((s4[p + o] + s4[p + o4]) + (s4[p + o8] + s4[p + o12])))
    elif low == 4:
        for p in range(c):
            r[p] = s4[p] + ((s4[p + o] + s4[p + o4]) + (s4[p + o8] + s4[p + o12]))
    elif low == 5:
        for p in range(c):
            r[p] = ((q[p] + s4[p + u1])
                    + ((s4[p + o] + s4[p + o4]) + (s4[p + o8] + s4[p + o12])))
    elif low == 6:
        for p in range(c):
            r[p] = (((q[p] + q[p + u1]) + s4[p + u2])
                    + ((s4[p + o] + s4[p + o4]) + (s4[p + o8] + s4[p + o12])))
    else:
        for p in range(c):
            r[p] = (((q[p] + (q[p + u1] + q[p + u2])) + s4[p + u3])
                    + ((s4[p + o] + s4[p + o4]) + (s4[p + o8] + s4[p + o12])))


@njit(**_OPTS)
def _pieces_24(q, s4, r, low, cnt):
    """:func:`_pieces_low` (``low`` 0..7) then a piece of 8 and one of 16 taps, in one pass
    (as :func:`_pieces_8`)."""
    c = np.uint64(cnt)
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    u3 = np.uint64(3)
    o = np.uint64(low)
    o4 = np.uint64(low + 4)
    o8 = np.uint64(low + 8)
    o12 = np.uint64(low + 12)
    o16 = np.uint64(low + 16)
    o20 = np.uint64(low + 20)
    if low == 0:
        for p in range(c):
            r[p] = ((s4[p] + s4[p + o4])
                    + ((s4[p + o8] + s4[p + o12]) + (s4[p + o16] + s4[p + o20])))
    elif low == 1:
        for p in range(c):
            r[p] = ((q[p] + (s4[p + o] + s4[p + o4]))
                    + ((s4[p + o8] + s4[p + o12]) + (s4[p + o16] + s4[p + o20])))
    elif low == 2:
        for p in range(c):
            r[p] = (((q[p] + q[p + u1]) + (s4[p + o] + s4[p + o4]))
                    + ((s4[p + o8] + s4[p + o12]) + (s4[p + o16] + s4[p + o20])))
    elif low == 3:
        for p in range(c):
            r[p] = (((q[p] + (q[p + u1] + q[p + u2])) + (s4[p + o] + s4[p + o4]))
                    + ((s4[p + o8] + s4[p + o12]) + (s4[p + o16] + s4[p + o20])))
    elif low == 4:
        for p in range(c):
            r[p] = ((s4[p] + (s4[p + o] + s4[p + o4]))
                    + ((s4[p + o8] + s4[p + o12]) + (s4[p + o16] + s4[p + o20])))
    elif low == 5:
        for p in range(c):
            r[p] = (((q[p] + s4[p + u1]) + (s4[p + o] + s4[p + o4]))
                    + ((s4[p + o8] + s4[p + o12]) + (s4[p + o16] + s4[p + o20])))
    elif low == 6:
        for p in range(c):
            r[p] = ((((q[p] + q[p + u1]) + s4[p + u2]) + (s4[p + o] + s4[p + o4]))
                    + ((s4[p + o8] + s4[p + o12]) + (s4[p + o16] + s4[p + o20])))
    else:
        for p in range(c):
            r[p] = ((((q[p] + (q[p + u1] + q[p + u2])) + s4[p + u3]) + (s4[p + o] + s4[p + o4]))
                    + ((s4[p + o8] + s4[p + o12]) + (s4[p + o16] + s4[p + o20])))


@njit(**_OPTS)
def _add_level_piece(a, r, off, unit, pair, cnt, first):
    """``r[p] (+)= a[p+off]`` (a sum of ``unit`` taps), or ``a[p+off] + a[p+off+unit]``
    when ``pair``."""
    c = np.uint64(cnt)
    o = np.uint64(off)
    o2 = np.uint64(off + unit)
    if pair:
        if first:
            for p in range(c):
                r[p] = a[p + o] + a[p + o2]
        else:
            for p in range(c):
                r[p] = r[p] + (a[p + o] + a[p + o2])
    elif first:
        for p in range(c):
            r[p] = a[p + o]
    else:
        for p in range(c):
            r[p] = r[p] + a[p + o]


@njit(**_OPTS)
def _row_sums(lv, r, m):
    """``r[p] = sum(q[p:p+m])`` for ``p < len(q) - m + 1``, ``q = lv[0]``, by a fixed tree:
    ``m`` is cut into pieces of 1, 2, 4, 8, ... taps (its binary digits, lowest first,
    summed left to right), each piece a balanced tree.  The tree depends on ``m`` only, so
    every cut of a row gives the same bits.  One pass writes the sums of 4 taps (``lv[1]``);
    one more adds every piece below 32 taps (:func:`_pieces_8`, ...: a piece of 4 is one sum
    of 4, of 8 two, of 16 four, read at unsigned offsets); pieces of 32, 64, ... taps are
    added from the sums of 16, 64, ... taps (``lv[2]``, ``lv[1]``: rows of one 2-D array,
    arrays swapped in a loop defeat vectorisation), a piece of 32 being two sums of 16."""
    n = lv.shape[1]
    cnt = n - m + 1
    if m < 4:  # pieces of 1 and 2 taps only (the kernels take such windows elsewhere)
        q = lv[0]
        for p in range(cnt):
            r[p] = q[p] if m == 1 else (q[p] + q[p + 1] if m == 2 else q[p] + (q[p + 1] + q[p + 2]))
        return
    _sums4(lv[0], lv[1], 1, n - 3)
    low = m & 7
    first = False
    if m & 24 == 24:
        _pieces_24(lv[0], lv[1], r, low, cnt)
    elif m & 16:
        _pieces_16(lv[0], lv[1], r, low, cnt)
    elif m & 8:
        _pieces_8(lv[0], lv[1], r, low, cnt)
    elif low:
        _pieces_low(lv[0], lv[1], r, low, cnt)
    else:  # a multiple of 32: the first piece comes from the levels below
        first = True
    off = m & 31
    ia = 1  # lv[ia] holds the sums of `unit` taps
    unit = 4
    b = 5
    while (1 << b) <= m:  # pieces of 32, 64, 128, ... taps: one or two sums of 4**(b//2)
        while unit < (1 << (2 * (b // 2))):
            ib = 3 - ia
            _sums4(lv[ia], lv[ib], unit, n - 4 * unit + 1)
            unit *= 4
            ia = ib
        if m & (1 << b):
            _add_level_piece(lv[ia], r, off, unit, b & 1 == 1, cnt, first)
            first = False
            off += 1 << b
        b += 1


@njit(**_OPTS)
def _suffix(buf, i0, i1, nv):
    """``buf[i] <- buf[i1-1] + ... + buf[i]`` (summed from the end, in place), ``i0 <= i < i1``."""
    for i in range(i1 - 2, i0 - 1, -1):
        cur = buf[i, :nv]
        nxt = buf[i + 1, :nv]
        for p in range(nv):
            cur[p] = nxt[p] + cur[p]


@njit(**_OPTS)
def _box_item(x, y, d, want_y, want_d, flat, x1, y1, d1, il, x2, y2, d2, g0, gn, c0, cw,
              h0, h1, lo, hi, a, k, beta, bmode, base_h, acc_like, one):
    """One work item: output rows ``h0 .. h1``, columns ``c0 .. c0+cw`` of planes
    ``g0 .. g0+gn``.

    Rows ``u`` are grouped into blocks of ``m`` rows anchored at absolute rows:
    ``(u + base_h + lo) // m``.  The box of row ``h`` starts in block ``b = (h+base_h)//m``
    and is ``suffix_b(h - lo) + prefix_{b+1}(h + hi)`` (the suffix alone when it starts the
    block); rows outside the plane count as zero (they are skipped: adding zeros first or
    last changes no bits).  ``cur`` holds block b's suffix sums, ``nxt`` the row sums of
    block b+1 as they arrive, ``run`` their running prefix.  ``flat``: the sums go to a
    compact scratch and ``y``/``d`` are finished as one long span (``x1``, ``y1``, ``d1``
    flat views of C-contiguous arrays; whole planes only).
    """
    height = x.shape[1]
    m = lo + hi + 1
    sw = cw + m - 1
    n = gn * sw
    nv = n - m + 1  # positions of r that hold a window sum (the rest is padding)
    dt = acc_like.dtype
    cur = np.empty((m, n), dtype=dt)
    nxt = np.empty((m, n), dtype=dt)
    lv = np.zeros((3, n), dtype=dt)  # squares and the sums of 8, 64, ... taps of a row
    q = lv[0]  # its padding stays zero: rows only write the plane's columns
    run = np.empty(n, dtype=dt)
    s = np.zeros(n, dtype=dt)
    rows = h1 - h0
    sc = np.empty(gn * rows * cw if flat else 0, dtype=dt)
    ilbuf = np.empty(gn * cw if il else 0, dtype=dt)
    b = (h0 + base_h) // m
    start = b * m - lo - base_h  # local row of block b's first row
    t_lo = max(h0 - lo, start, 0)
    t_hi = min(start + m, height)
    for u in range(t_lo, t_hi):
        _row_squares(x, x2, il, g0, gn, u, c0, cw, lo, m, q, one)
        _row_sums(lv, cur[u - start], m)
    _suffix(cur, t_lo - start, t_hi - start, nv)
    cur_hi = t_hi
    h = h0
    while True:
        nstart = start + m
        filled = nstart
        have_run = False
        hend = min(h1, nstart + lo)
        for hh in range(h, hend):
            u0 = max(hh - lo, 0)
            has_suf = u0 < cur_hi
            if (hh + base_h) % m != 0:
                while filled <= hh + hi:
                    if 0 <= filled < height:
                        row = nxt[filled - nstart]
                        _row_squares(x, x2, il, g0, gn, filled, c0, cw, lo, m, q, one)
                        _row_sums(lv, row, m)
                        if have_run:
                            for p in range(nv):
                                run[p] = run[p] + row[p]
                        else:
                            for p in range(nv):
                                run[p] = row[p]
                            have_run = True
                    filled += 1
            sf = cur[u0 - start] if has_suf else s
            if flat:  # s is zeros: flat items never write it
                for g in range(gn):
                    o = (g * rows + hh - h0) * cw
                    dst = sc[o:o + cw]
                    u = sf[g * sw:g * sw + cw]
                    v = run[g * sw:g * sw + cw]
                    if has_suf and have_run:
                        for p in range(cw):
                            dst[p] = u[p] + v[p]
                    elif have_run:
                        for p in range(cw):
                            dst[p] = v[p]
                    else:
                        for p in range(cw):
                            dst[p] = u[p]
                continue
            if has_suf and have_run:
                for p in range(nv):
                    s[p] = sf[p] + run[p]
                acc_row = s
            elif have_run:
                acc_row = run
            elif has_suf:
                acc_row = sf
            else:  # the box holds no row of the plane
                s[:] = 0.0
                acc_row = s
            _emit_rows(acc_row, x, y, d, x2, y2, d2, il, ilbuf, want_y, want_d, g0, gn, hh,
                       c0, cw, sw, a, k, beta, bmode)
        if hend >= h1:
            break
        lo_row = max(nstart, 0)
        hi_row = min(nstart + m, height)
        for u in range(max(filled, lo_row), hi_row):
            _row_squares(x, x2, il, g0, gn, u, c0, cw, lo, m, q, one)
            _row_sums(lv, nxt[u - nstart], m)
        if lo_row < hi_row:
            _suffix(nxt, lo_row - nstart, hi_row - nstart, nv)
        cur, nxt = nxt, cur
        cur_hi = hi_row
        start = nstart
        h = hend
    if flat:
        span = gn * rows * cw
        o = g0 * height * cw
        if want_d:
            _divisor_row(sc, d1[o:o + span], a, k)
        if want_y:
            _finish_row(sc, x1[o:o + span], y1[o:o + span], a, k, beta, bmode)


#: Values of squares per band of rows of :func:`_planes_long` (its tree's three level rows
#: stay in L1).
BAND_ELEMS = 4096
#: ... and values of its row sums per work item at most (more: the ring of :func:`_box_item`).
FLAT_LONG_MAX = 1 << 20
#: Values per line of :func:`_planes_long`'s buffers: its rows are padded to whole lines and
#: its buffers start on one (64 bytes of float32), so the loops' stores and their unshifted
#: loads never straddle two cache lines (conv1, size 21, one thread, input in L3: 7% faster).
LINE = 16


@njit(**_OPTS)
def _aligned(n, like, zero):
    """``n`` values of ``like``'s dtype starting on a 64-byte boundary (NRT aligns arrays to
    32 bytes only), zeros if ``zero``."""
    dt = like.dtype
    b = np.zeros(n + LINE, dtype=dt) if zero else np.empty(n + LINE, dtype=dt)
    off = ((-b.ctypes.data) % 64) // b.itemsize
    return b[off:off + n]


@njit(**_OPTS)
def _emit_long(sc, rs, run, u, suf, pre, h, gn, height, width, gap, sp, lo, ln):
    """Output row ``h`` of :func:`_planes_long`'s planes, compactly into ``sc``: the suffix
    sums of row ``u`` of ``rs`` (if ``suf``) plus the running prefix ``run`` (if ``pre``)."""
    wu = np.uint64(width)
    for g in range(gn):
        c = gap + g * sp - lo
        do = np.uint64((g * height + h) * width)
        so = np.uint64(u * ln + c)
        po = np.uint64(c)
        if suf and pre:
            for w in range(wu):
                sc[do + w] = rs[so + w] + run[po + w]
        elif pre:
            for w in range(wu):
                sc[do + w] = run[po + w]
        else:
            for w in range(wu):
                sc[do + w] = rs[so + w]


@njit(**_OPTS)
def _planes_long(x1, y1, d1, want_y, want_d, g0, gn, height, width, lo, hi, a, k, beta,
                 bmode, base_h, acc_like, one):
    """:func:`_box_item` for whole C-contiguous planes ``g0 .. g0+gn`` (flat views), every
    step as a few long loops: the same trees and blocks, so the same bits.

    The planes' rows lie side by side, ``gap = max(lo, hi)`` zeros before each (and after
    the last): row ``h`` of the buffers is ``[gap zeros, plane g0's row h, gap zeros, ...]``,
    ``L`` values, so every window inside a row sees zeros beyond the plane.  The row sums
    (:func:`_row_sums`) run over bands of whole rows at once; then, block by block
    (anchored to absolute rows), the prefix sums go to ``pre`` and the suffix sums replace
    the row sums in ``rs``; each output row is ``suffix + prefix`` (or one of them), written
    compactly and finished as one span.
    """
    m = lo + hi + 1
    gap = max(lo, hi)
    sp = width + gap  # stride of the planes in a row
    ln = -(-(gn * sp + gap) // LINE) * LINE  # (more zeros after the last plane)
    hw = height * width
    o = g0 * hw
    band = max(1, min(height, BAND_ELEMS // ln))
    nbands = (height + band - 1) // band
    nq = -(-(band * ln + m - 1) // LINE) * LINE  # whole lines: the level rows aligned too
    # gaps stay zero: only data are written
    lv = _aligned(3 * nq, acc_like, True).reshape((3, nq))
    q = lv[0]
    nr = nq - m + 1  # the row sums of a band (up to LINE beyond its rows: the next band's)
    rs = _aligned(nbands * band * ln + LINE, acc_like, False)
    sc = _aligned(gn * hw, acc_like, False)
    for b0 in range(0, height, band):
        for r in range(min(band, height - b0)):
            for g in range(gn):
                s0 = np.uint64(o + (g * height + b0 + r) * width)
                t0 = np.uint64(r * ln + gap + g * sp)
                for w in range(np.uint64(width)):
                    v = x1[s0 + w] * one
                    q[t0 + w] = v * v
        _row_sums(lv, rs[b0 * ln:b0 * ln + nr], m)
    # blocks of m rows anchored at absolute rows: local row u is in block (u+base_h+lo)//m.
    # Block by block: the running prefix `run` of its row sums (each output row whose window
    # ends in it is written as it arrives: the previous block's suffix + run), then its
    # suffix sums in place in `rs` (and the rows whose window has no prefix part).
    run = _aligned(ln, acc_like, False)
    bs = ((base_h + lo) // m) * m - lo - base_h
    while bs < height:
        u0 = max(bs, 0)
        u1 = min(bs + m, height)
        for v in range(u0, u1):
            row = rs[v * ln:(v + 1) * ln]
            if v == u0:
                for p in range(ln):
                    run[p] = row[p]
            else:
                for p in range(ln):
                    run[p] = run[p] + row[p]
            h = v - hi
            if h >= 0 and (h + base_h) % m != 0:
                _emit_long(sc, rs, run, max(h - lo, 0), bs > 0, True, h, gn, height, width,
                           gap, sp, lo, ln)
        if u1 == height:  # windows reaching below the plane: their prefix ends here
            for h in range(max(0, height - hi), height):
                if (h + base_h) % m != 0 and ((h + base_h) // m + 1) * m - lo - base_h == bs:
                    _emit_long(sc, rs, run, max(h - lo, 0), bs > 0, True, h, gn, height,
                               width, gap, sp, lo, ln)
        for u in range(u1 - 2, u0 - 1, -1):
            cur = rs[u * ln:(u + 1) * ln]
            nxt = rs[(u + 1) * ln:(u + 2) * ln]
            for p in range(ln):
                cur[p] = nxt[p] + cur[p]
        # windows starting in this block without a prefix part: the one the block is, and
        # all of them when the next block starts below the plane
        for h in range(max(0, bs + lo), min(height, bs + lo + m)):
            if h == bs + lo or bs + m >= height:
                _emit_long(sc, rs, run, max(h - lo, 0), True, False, h, gn, height, width,
                           gap, sp, lo, ln)
        bs += m
    span = gn * hw
    if want_d:
        _divisor_row(sc, d1[o:o + span], a, k)
    if want_y:
        _finish_row(sc, x1[o:o + span], y1[o:o + span], a, k, beta, bmode)


# ----------------------------------------------------------------------------------------
# forward, windows of at most TREE_TAPS taps per axis: one fixed tree per axis


@njit(**_OPTS)
def _col4(rb, i, wu, k1, k2, k3, z):
    """Column tree of output ``i`` (rows ``wu`` apart in ``rb``), at most 4 taps."""
    return _tree4(rb[i], rb[i + wu] if k1 else z, rb[i + np.uint64(2) * wu] if k2 else z,
                  rb[i + np.uint64(3) * wu] if k3 else z)


@njit(**_OPTS)
def _col5(rb, i, wu):
    """Column tree of output ``i``, 5 taps: :func:`_tree8` with three zeros, not added."""
    return ((rb[i] + rb[i + wu]) + (rb[i + np.uint64(2) * wu] + rb[i + np.uint64(3) * wu])
            + rb[i + np.uint64(4) * wu])


@njit(**_OPTS)
def _col8(rb, i, wu, k5, k6, k7, z):
    """Column tree of output ``i``, 6 to 8 taps."""
    return _tree8(rb[i], rb[i + wu], rb[i + np.uint64(2) * wu], rb[i + np.uint64(3) * wu],
                  rb[i + np.uint64(4) * wu], rb[i + np.uint64(5) * wu] if k5 else z,
                  rb[i + np.uint64(6) * wu] if k6 else z, rb[i + np.uint64(7) * wu] if k7 else z)


@njit(**_OPTS)
def _columns_finish(rb, sc, xs, ys, ds, want_y, want_d, hw, wu, m, a, k, beta, bmode, z):
    """The column trees of :func:`_plane_short` and the finish: in one pass for the common
    betas when only ``y`` is wanted (the same operations as the column trees into ``sc``
    then :func:`_finish_row`, so the same bits), else through ``sc``.  One loop per tree
    and closed form (a branch inside the loop is not hoisted)."""
    k1, k2, k3, k5, k6, k7 = m > 1, m > 2, m > 3, m > 5, m > 6, m > 7
    n = np.uint64(hw)
    fused = want_y and not want_d
    if fused and bmode == BETA_075:
        if m <= 4:
            for i in range(n):
                ys[i] = _scale_075(xs[i], k + a * _col4(rb, i, wu, k1, k2, k3, z))
        elif m == 5:
            for i in range(n):
                ys[i] = _scale_075(xs[i], k + a * _col5(rb, i, wu))
        else:
            for i in range(n):
                ys[i] = _scale_075(xs[i], k + a * _col8(rb, i, wu, k5, k6, k7, z))
        return
    if fused and bmode == BETA_05:
        if m <= 4:
            for i in range(n):
                ys[i] = _scale_05(xs[i], k + a * _col4(rb, i, wu, k1, k2, k3, z))
        elif m == 5:
            for i in range(n):
                ys[i] = _scale_05(xs[i], k + a * _col5(rb, i, wu))
        else:
            for i in range(n):
                ys[i] = _scale_05(xs[i], k + a * _col8(rb, i, wu, k5, k6, k7, z))
        return
    if m <= 4:
        for i in range(n):
            sc[i] = _col4(rb, i, wu, k1, k2, k3, z)
    elif m == 5:
        for i in range(n):
            sc[i] = _col5(rb, i, wu)
    else:
        for i in range(n):
            sc[i] = _col8(rb, i, wu, k5, k6, k7, z)
    acc = sc[:hw]
    if want_d:
        _divisor_row(acc, ds, a, k)
    if want_y:
        _finish_row(acc, xs, ys, a, k, beta, bmode)


@njit(**_OPTS)
def _plane_short(x1, y1, d1, want_y, want_d, o, height, width, lo, m, a, k, beta, bmode,
                 col, qm, rb, sc, one, zero_acc):
    """One C-contiguous plane ``x1[o:o+H*W]`` (a window of ``m <= TREE_TAPS`` taps per
    axis), every loop over the whole plane: squares, the row trees (columns outside the
    row masked to zero; ``col[i] = i % W - lo`` as int32), the column trees over rows of
    ``rb`` (zero rows above and below the plane) and the finish."""
    hw = height * width
    xs = x1[o:o + hw]
    dst = qm[lo:lo + hw]  # qm[i + j] is column (i % W) + j - lo of row i // W
    for i in range(hw):
        v = xs[i] * one
        dst[i] = v * v
    z = zero_acc
    rows = rb[lo * width:lo * width + hw]
    # tap j of output i is column col[i] + j of the row: inside it when uint32(col[i] + j)
    # < lim_j (lim_j = 0 masks the taps beyond the window).  int32 columns and a uint32
    # comparison keep the masks as wide as the float32 lanes (uint64 halved them: 1.7x
    # slower row trees)
    lim = np.zeros(TREE_TAPS, dtype=np.uint32)
    lim[:m] = width
    l0, l1, l2, l3, l4, l5, l6, l7 = lim[0], lim[1], lim[2], lim[3], lim[4], lim[5], lim[6], lim[7]
    j1, j2, j3, j4 = np.int32(1), np.int32(2), np.int32(3), np.int32(4)
    j5, j6, j7 = np.int32(5), np.int32(6), np.int32(7)
    u1, u2, u3, u4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    u5, u6, u7 = np.uint64(5), np.uint64(6), np.uint64(7)
    if m <= 4:
        for i in range(np.uint64(hw)):
            c = col[i]
            rows[i] = _tree4(qm[i] if np.uint32(c) < l0 else z,
                             qm[i + u1] if np.uint32(c + j1) < l1 else z,
                             qm[i + u2] if np.uint32(c + j2) < l2 else z,
                             qm[i + u3] if np.uint32(c + j3) < l3 else z)
    elif m == 5:  # the common size: _tree8 with three zeros, without adding them
        for i in range(np.uint64(hw)):
            c = col[i]
            rows[i] = (((qm[i] if np.uint32(c) < l0 else z)
                        + (qm[i + u1] if np.uint32(c + j1) < l1 else z))
                       + ((qm[i + u2] if np.uint32(c + j2) < l2 else z)
                          + (qm[i + u3] if np.uint32(c + j3) < l3 else z))
                       + (qm[i + u4] if np.uint32(c + j4) < l4 else z))
    else:
        for i in range(np.uint64(hw)):
            c = col[i]
            rows[i] = _tree8(qm[i] if np.uint32(c) < l0 else z,
                             qm[i + u1] if np.uint32(c + j1) < l1 else z,
                             qm[i + u2] if np.uint32(c + j2) < l2 else z,
                             qm[i + u3] if np.uint32(c + j3) < l3 else z,
                             qm[i + u4] if np.uint32(c + j4) < l4 else z,
                             qm[i + u5] if np.uint32(c + j5) < l5 else z,
                             qm[i + u6] if np.uint32(c + j6) < l6 else z,
                             qm[i + u7] if np.uint32(c + j7) < l7 else z)
    _columns_finish(rb, sc, xs, y1[o:o + hw], d1[o:o + hw] if want_d else d1, want_y, want_d,
                    hw, np.uint64(width), m, a, k, beta, bmode, z)


@njit(**_OPTS)
def _planes_short(x1, y1, d1, want_y, want_d, g0, gn, height, width, lo, hi, a, k, beta,
                  bmode, acc_like, one):
    """Whole C-contiguous planes ``g0 .. g0+gn``, window of at most TREE_TAPS taps (planes
    narrower than :data:`FLAT_SHORT_MAX_WIDTH`: the masks' columns are int32)."""
    m = lo + hi + 1
    hw = height * width
    dt = acc_like.dtype
    # col[i] = (i % W) - lo: tap j of i is inside the row when uint32(col[i] + j) < W
    # (columns left of the row wrap around to huge numbers)
    col = np.empty(hw, dtype=np.int32)
    for h in range(height):
        for w in range(width):
            col[h * width + w] = w - lo
    qm = np.zeros(hw + TREE_TAPS, dtype=dt)
    rb = np.zeros((height + TREE_TAPS) * width, dtype=dt)
    sc = np.zeros(hw, dtype=dt)
    zero_acc = np.zeros(1, dtype=dt)[0]
    for g in range(gn):
        _plane_short(x1, y1, d1, want_y, want_d, (g0 + g) * hw, height, width, lo, m, a, k,
                     beta, bmode, col, qm, rb, sc, one, zero_acc)


@njit(**_OPTS)
def _row_tree(q, r, m, cnt, z):
    """``r[p]`` = the tree of ``q[p .. p+m-1]`` (:func:`_masked_sum8`, ``m <= TREE_TAPS``;
    ``q`` holds ``TREE_TAPS - 1`` values beyond ``cnt + m - 1``)."""
    ok = (True, m > 1, m > 2, m > 3, m > 4, m > 5, m > 6, m > 7)
    u1 = np.uint64(1)
    for p in range(np.uint64(cnt)):
        r[p] = _masked_sum8(q[p], q[p + u1], q[p + np.uint64(2)], q[p + np.uint64(3)],
                            q[p + np.uint64(4)], q[p + np.uint64(5)], q[p + np.uint64(6)],
                            q[p + np.uint64(7)], ok, z)


@njit(**_OPTS)
def _box_item_short(x, y, d, want_y, want_d, il, x2, y2, d2, g0, gn, c0, cw, h0, h1, lo,
                    hi, a, k, beta, bmode, acc_like, one):
    """:func:`_box_item` for windows of at most TREE_TAPS taps: the row trees of the last
    ``m`` rows in a ring of TREE_TAPS rows (slot TREE_TAPS is a zero row), the column tree
    over them; the same trees as :func:`_planes_short`, so the same bits."""
    height = x.shape[1]
    m = lo + hi + 1
    sw = cw + m - 1
    n = gn * sw
    nv = n - m + 1
    dt = acc_like.dtype
    ring = np.zeros((TREE_TAPS + 1, n), dtype=dt)
    q = np.zeros(n + TREE_TAPS, dtype=dt)
    s = np.empty(n, dtype=dt)
    ilbuf = np.empty(gn * cw if il else 0, dtype=dt)
    ok = (True, m > 1, m > 2, m > 3, m > 4, m > 5, m > 6, m > 7)
    z = np.zeros(1, dtype=dt)[0]
    sl = np.empty(TREE_TAPS, dtype=np.int64)
    nxt = max(0, h0 - lo)  # next row to sum
    for hh in range(h0, h1):
        last = min(height - 1, hh + hi)
        while nxt <= last:
            _row_squares(x, x2, il, g0, gn, nxt, c0, cw, lo, m, q, one)
            _row_tree(q, ring[nxt % TREE_TAPS], m, nv, z)
            nxt += 1
        sl[:] = TREE_TAPS
        for j in range(m):
            u = hh - lo + j
            if 0 <= u < height:
                sl[j] = u % TREE_TAPS
        r0, r1, r2, r3 = ring[sl[0]], ring[sl[1]], ring[sl[2]], ring[sl[3]]
        r4, r5, r6, r7 = ring[sl[4]], ring[sl[5]], ring[sl[6]], ring[sl[7]]
        for p in range(nv):
            s[p] = _masked_sum8(r0[p], r1[p], r2[p], r3[p], r4[p], r5[p], r6[p], r7[p], ok, z)
        _emit_rows(s, x, y, d, x2, y2, d2, il, ilbuf, want_y, want_d, g0, gn, hh, c0, cw, sw,
                   a, k, beta, bmode)


@njit(**_OPTS)
def _item_bounds(item, nstrips, ncols, group, strip, cols, planes, height, width):
    """Work item ``item``: ``(g0, gn, h0, h1, c0, cw)``."""
    g0 = (item // (nstrips * ncols)) * group
    h0 = ((item // ncols) % nstrips) * strip
    c0 = (item % ncols) * cols
    return (g0, min(planes, g0 + group) - g0, h0, min(height, h0 + strip), c0,
            min(width, c0 + cols) - c0)


# Three drivers, so that a first run compiles only the one its input takes: whole
# C-contiguous planes with a short window (the common case), other layouts with a short
# window, and long windows.


@njit(parallel=True, **_OPTS)
def _forward_flat_short(x1, y1, d1, want_y, want_d, planes, height, width, lo, hi, a, k,
                        beta, bmode, group, acc_dtype, one):
    """Whole C-contiguous planes (flat views ``x1``, ``y1``, ``d1``), <= TREE_TAPS taps."""
    ngroups = (planes + group - 1) // group
    for item in prange(ngroups):
        g0 = item * group
        _planes_short(x1, y1, d1, want_y, want_d, g0, min(planes, g0 + group) - g0, height,
                      width, lo, hi, a, k, beta, bmode, acc_dtype, one)


@njit(parallel=True, **_OPTS)
def _forward_short(x, y, d, want_y, want_d, il, x2, y2, d2, lo, hi, a, k, beta, bmode, group,
                   strip, cols, acc_dtype, one):
    """Any layout, <= TREE_TAPS taps (``il``: interleaved planes, rows ``x2``...)."""
    planes, height, width = x.shape
    nstrips = (height + strip - 1) // strip
    ncols = (width + cols - 1) // cols
    for item in prange(((planes + group - 1) // group) * nstrips * ncols):
        g0, gn, h0, h1, c0, cw = _item_bounds(item, nstrips, ncols, group, strip, cols, planes,
                                              height, width)
        _box_item_short(x, y, d, want_y, want_d, il, x2, y2, d2, g0, gn, c0, cw, h0, h1, lo,
                        hi, a, k, beta, bmode, acc_dtype, one)


@njit(parallel=True, **_OPTS)
def _forward_long(x, y, d, want_y, want_d, flat, x1, y1, d1, il, x2, y2, d2, lo, hi, a, k,
                  beta, bmode, group, strip, cols, acc_dtype, base_h, one, whole):
    """More than TREE_TAPS taps: row sums by pieces, block sums down the columns
    (``whole``: flat items take :func:`_planes_long`)."""
    planes, height, width = x.shape
    nstrips = (height + strip - 1) // strip
    ncols = (width + cols - 1) // cols
    for item in prange(((planes + group - 1) // group) * nstrips * ncols):
        g0, gn, h0, h1, c0, cw = _item_bounds(item, nstrips, ncols, group, strip, cols, planes,
                                              height, width)
        if whole:
            _planes_long(x1, y1, d1, want_y, want_d, g0, gn, height, width, lo, hi, a, k,
                         beta, bmode, base_h, acc_dtype, one)
        else:
            _box_item(x, y, d, want_y, want_d, flat, x1, y1, d1, il, x2, y2, d2, g0, gn, c0,
                      cw, h0, h1, lo, hi, a, k, beta, bmode, base_h, acc_dtype, one)


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
        As in the module docstring (``a``, ``k``, ``beta`` in the accumulation dtype).  The
        row sums need no anchor (their tree depends on the window only), so ``base_w`` is
        not used; the columns per work item are
        :func:`lrn_cli.dispatch.within_cols` of the shape.
    acc_dtype : ndarray
        A zero-size array whose dtype is the accumulation dtype (float64 beyond
        ``lrn_cli.dispatch.ACC32_TAPS_WITHIN`` taps); squares are formed in ``x``'s dtype.
    """
    from lrn_cli.dispatch import interleaved_planes, within_cols

    planes, height, width = x.shape
    il = group >= planes and interleaved_planes(x, y if want_y else None,
                                                d if want_d else None)
    cols = within_cols((planes, height, width), lo + hi + 1, acc_dtype.dtype.itemsize,
                       planes if il else 1)
    # whole planes of C-contiguous arrays: finish each work item as one long span
    flat = (strip >= height and cols >= width and x.flags.c_contiguous
            and (not want_y or y.flags.c_contiguous) and (not want_d or d.flags.c_contiguous))
    empty = np.empty(0, dtype=x.dtype)
    x1 = x.reshape(-1) if flat else empty
    y1 = y.reshape(-1) if flat and want_y else empty
    d1 = d.reshape(-1) if flat and want_d else empty
    # interleaved planes (a channels-last image): rows of W * planes contiguous values
    empty2 = np.empty((0, 0), dtype=x.dtype)

    def rows2(v):
        return np.reshape(v.transpose(1, 2, 0), (height, width * planes), copy=False)

    x2 = rows2(x) if il else empty2
    y2 = rows2(y) if il and want_y else empty2
    d2 = rows2(d) if il and want_d else empty2
    one = x.dtype.type(1)
    if lo + hi + 1 > TREE_TAPS:
        # whole planes go through _planes_long unless its scratch (row sums of the group's
        # rows, gaps included) would be far larger than the ring's: same bits either way
        gap = max(lo, hi)
        whole = flat and height * (group * (width + gap) + gap) <= FLAT_LONG_MAX
        _forward_long(x, y, d, want_y, want_d, flat, x1, y1, d1, il, x2, y2, d2, lo, hi, a, k,
                      beta, bmode, group, strip, cols, acc_dtype, base_h, one, whole)
    elif flat and width < FLAT_SHORT_MAX_WIDTH:
        _forward_flat_short(x1, y1, d1, want_y, want_d, planes, height, width, lo, hi, a, k,
                            beta, bmode, group, acc_dtype, one)
    else:
        _forward_short(x, y, d, want_y, want_d, il, x2, y2, d2, lo, hi, a, k, beta, bmode,
                       group, strip, cols, acc_dtype, one)


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
