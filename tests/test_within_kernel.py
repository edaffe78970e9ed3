"""The within-channel forward kernel: row sums by a fixed tree, block sums streamed down the
columns (``lrn_cli._kernels_within.within_forward``).

Every work-item cut (planes per group, row strips, column strips), every layout and the
flat (whole C-contiguous planes) and row-by-row finishes must give the same bits, and the
results must match the float64 reference over sizes odd and even, larger than the planes,
and long enough to take the sums of 4, 16 and 64 taps.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lrn_cli import dispatch, lrn, lrn_divisor, reference_divisor, reference_lrn
from lrn_cli.core import _lrn_at

#: (planes, H, W) of the kernel's view: grouped small planes, planes with one row or one
#: column, and planes large enough (> dispatch.WITHIN_PLANE_MAX values) to be cut into
#: column strips.
SHAPES = [(5, 7, 9), (3, 1, 11), (4, 13, 1), (2, 6, 6), (2, 140, 130)]
SIZES = [1, 2, 3, 4, 5, 8, 9, 21, 33, 70]


def _x(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    # lognormal magnitudes with signs: sums of very different squares
    x = rng.standard_normal(shape) * np.exp(rng.standard_normal(shape))
    return x.astype(dtype)


def _cut(monkeypatch, group=None, strip=None, cols=None):
    """Force the work items of ``within_forward`` (planes per group, rows, columns)."""
    real = dispatch.within_forward_work

    def work(shape, taps, acc_itemsize, threads=None, interleaved=False):
        g, s, c = real(shape, taps, acc_itemsize, threads, interleaved)
        return (group or g, strip or s, cols or c)

    monkeypatch.setattr(dispatch, "within_forward_work", work)
    if cols is not None:
        monkeypatch.setattr(dispatch, "within_cols", lambda *args: cols)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_the_reference(shape, size, dtype):
    x = _x((1,) + shape, dtype, seed=size)
    alpha, beta, k = 3.0, 0.75, 0.5
    y, d = lrn(x, size, alpha, beta, k, mode="within", return_divisor=True)
    want_d = reference_divisor(x, size, alpha, beta, k, mode="within")
    want_y = reference_lrn(x, size, alpha, beta, k, mode="within")
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(d, want_d, rtol=tol)
    np.testing.assert_allclose(y, want_y, rtol=2 * tol, atol=tol * np.abs(want_y).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [2, 3, 5, 9, 21, 70])
def test_every_cut_gives_the_same_bits(size, dtype, monkeypatch):
    """Groups of planes, row strips (each reading a halo) and column strips (a halo of
    columns): the row sums' tree depends on the window only and the column blocks are
    anchored to absolute rows, so every cut adds the same numbers in the same order."""
    x = _x((3, 40, 37), dtype, seed=size)
    whole_y, whole_d = lrn(x, size, 2.0, 0.75, 1.0, mode="within", channel_axis=0,
                           return_divisor=True)
    for group, strip, cols in itertools.product([1, 2], [1, 3, 16, 40], [1, 5, 16, 37]):
        with monkeypatch.context() as mp:
            _cut(mp, group, strip, cols)
            y, d = lrn(x, size, 2.0, 0.75, 1.0, mode="within", channel_axis=0,
                       return_divisor=True)
            d_only = lrn_divisor(x, size, 2.0, 0.75, 1.0, mode="within", channel_axis=0)
            y_only = lrn(x, size, 2.0, 0.75, 1.0, mode="within", channel_axis=0)
        assert np.array_equal(y, whole_y), (group, strip, cols)
        assert np.array_equal(d, whole_d), (group, strip, cols)
        assert np.array_equal(d_only, whole_d), (group, strip, cols)
        assert np.array_equal(y_only, whole_y), (group, strip, cols)


@pytest.mark.parametrize("size", [3, 5, 8, 21])
def test_layouts_and_the_flat_finish_give_the_same_bits(size):
    """C-contiguous planes are finished as one long span, other layouts row by row; a HWC
    image, a Fortran array and strided views take the row-by-row path."""
    x = _x((2, 3, 30, 41), np.float32, seed=size)
    want_y, want_d = lrn(x, size, 1.0, 0.75, 2.0, mode="within", return_divisor=True)
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y, d = lrn(nhwc, size, 1.0, 0.75, 2.0, mode="within", channel_axis=-1,
               return_divisor=True)
    assert np.array_equal(y.transpose(0, 3, 1, 2), want_y)
    assert np.array_equal(d.transpose(0, 3, 1, 2), want_d)
    fortran = np.asfortranarray(x)
    assert np.array_equal(lrn(fortran, size, 1.0, 0.75, 2.0, mode="within"), want_y)
    wide = np.zeros((2, 3, 30, 82), np.float32)
    wide[..., ::2] = x
    assert np.array_equal(lrn(wide[..., ::2], size, 1.0, 0.75, 2.0, mode="within"), want_y)
    # a C-contiguous input with a strided out: row by row into the out
    out = np.zeros((2, 3, 30, 82), np.float32)
    lrn(x, size, 1.0, 0.75, 2.0, mode="within", out=out[..., ::2])
    assert np.array_equal(out[..., ::2], want_y)


@pytest.mark.parametrize("size", [5, 21])
def test_large_hwc_image_column_strips(size):
    """An HWC image viewed planar (channel stride 1 element), large enough to be cut into
    column strips and row strips, against its planar copy and the reference."""
    x = _x((40, 7000, 3), np.float32, seed=size)
    planar = np.ascontiguousarray(x.transpose(2, 0, 1))
    plan = dispatch.plans(x, size, mode="within", channel_axis=-1, threads=2)[0]
    assert plan.params["cols"] < 7000  # the wide planes are cut into column strips
    y = lrn(x, size, 1.0, 0.75, 2.0, mode="within", channel_axis=-1)
    yp = lrn(planar, size, 1.0, 0.75, 2.0, mode="within", channel_axis=0)
    assert np.array_equal(y.transpose(2, 0, 1), yp)
    want = reference_lrn(planar, size, 1.0, 0.75, 2.0, mode="within", channel_axis=0)
    np.testing.assert_allclose(yp, want, rtol=2e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("size", [4, 5, 21])
def test_chunks_anchored_to_absolute_rows(size):
    """A block of rows (with a halo) computed at its origin gives the whole array's bits on
    its interior: the column blocks are anchored to absolute rows, whatever the origin."""
    x = _x((2, 60, 23), np.float32, seed=size)
    kw = dict(size=size, alpha=1.0, beta=0.75, k=2.0, mode="within", convention="default",
              channel_axis=0)
    whole = lrn(x, size, 1.0, 0.75, 2.0, mode="within", channel_axis=0)
    halo = size
    for r0 in (0, 1, 7, 13, 29):
        r1 = min(60, r0 + 17)
        a0 = max(0, r0 - halo)
        a1 = min(60, r1 + halo)
        part = _lrn_at(np.ascontiguousarray(x[:, a0:a1]), (0, a0, 0), **kw)
        assert np.array_equal(part[:, r0 - a0:r1 - a0], whole[:, r0:r1]), r0


def _tree_sum(vals, m):
    """The row sums' tree in Python: ``m`` cut into pieces of its binary digits, lowest
    first, each a balanced tree, summed left to right (float32 arithmetic)."""
    def balanced(v):
        while len(v) > 1:
            v = [np.float32(v[i] + v[i + 1]) for i in range(0, len(v), 2)]
        return v[0]

    total = None
    off = 0
    bit = 1
    while bit <= m:
        if m & bit:
            piece = balanced(list(vals[off:off + bit]))
            total = piece if total is None else np.float32(total + piece)
            off += bit
        bit *= 2
    return total


def _tree8_sum(vals):
    """The short windows' tree (``_tree8`` with zeros for the taps beyond the window)."""
    v = [np.float32(t) for t in vals] + [np.float32(0)] * (8 - len(vals))
    f = np.float32
    return f(f(f(v[0] + v[1]) + f(v[2] + v[3])) + f(f(v[4] + v[5]) + f(v[6] + v[7])))


@pytest.mark.parametrize("m", [1, 2, 3, 5, 7, 8, 9, 15, 21, 24, 63, 64, 65, 100, 130])
def test_row_sums_follow_the_documented_tree(m):
    """The row sums give exactly the bits of the documented trees (so their order depends on
    the window only): ``_tree8`` up to 8 taps, pieces of 1, 2, 4, 8, ... taps beyond (sums
    of 4, 16 and 64 taps: pieces of 8 and 16 from sums of 4, of 32 and more from levels)."""
    from lrn_cli._kernels_within import _row_sums, _row_tree

    rng = np.random.default_rng(m)
    n = m + 40
    lv = np.zeros((3, n + 8), np.float32)
    lv[0, :n] = (rng.standard_normal(n) * np.exp(2 * rng.standard_normal(n))).astype(np.float32)
    r = np.zeros(n, np.float32)
    if m <= 8:
        _row_tree(lv[0], r, m, n - m + 1, np.float32(0))
        want = [_tree8_sum(lv[0, p:p + m]) for p in range(n - m + 1)]
    else:
        _row_sums(lv[:, :n], r, m)
        want = [_tree_sum(lv[0, p:p + m], m) for p in range(n - m + 1)]
    assert np.array_equal(r[:n - m + 1], np.array(want, np.float32))


def test_nan_and_inf_stay_in_their_boxes():
    x = _x((1, 2, 20, 30), np.float32)
    x[0, 0, 5, 7] = np.nan
    x[0, 1, 12, 20] = np.inf
    for size in (3, 5, 21):
        y = lrn(x, size, 1.0, 0.75, 2.0, mode="within").astype(np.float64)
        want = reference_lrn(x, size, 1.0, 0.75, 2.0, mode="within")
        assert np.array_equal(np.isnan(y), np.isnan(want)), size
        assert np.array_equal(np.isinf(y), np.isinf(want)), size
        fin = np.isfinite(want)
        np.testing.assert_allclose(y[fin], want[fin], rtol=2e-6, atol=1e-30)


@pytest.mark.parametrize("size", [3, 5, 9, 21])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interleaved_planes_give_the_planar_bits(size, dtype, monkeypatch):
    """A channels-last image (H, W, C) viewed planar has its planes interleaved: the kernel
    takes them together and reads / writes each row as one span.  Every cut of it, the
    output alone, the divisor alone and both, give the planar copy's bits."""
    x = _x((40, 37, 3), dtype, seed=size)
    planar = np.ascontiguousarray(x.transpose(2, 0, 1))
    kw = dict(size=size, alpha=2.0, beta=0.75, k=1.0, mode="within")
    want_y, want_d = lrn(planar, **kw, channel_axis=0, return_divisor=True)
    view = x.transpose(2, 0, 1)
    assert dispatch.interleaved_planes(view)
    for group, strip, cols in [(None, None, None), (3, 3, 5), (3, 16, 1), (3, 40, 37)]:
        with monkeypatch.context() as mp:
            if group is not None:
                _cut(mp, group, strip, cols)
            y, d = lrn(x, **kw, channel_axis=-1, return_divisor=True)
            y_only = lrn(x, **kw, channel_axis=-1)
            d_only = lrn_divisor(x, **kw, channel_axis=-1)
        for got, want in ((y, want_y), (d, want_d), (y_only, want_y), (d_only, want_d)):
            assert np.array_equal(got.transpose(2, 0, 1), want), (group, strip, cols)


def test_whole_planes_past_the_scratch_bound_take_the_ring(monkeypatch):
    """Whole planes whose row-sum scratch would exceed ``FLAT_LONG_MAX`` values stream through
    the ring of rows instead (:func:`_box_item`, its flat finish): the same bits."""
    from lrn_cli import _kernels_within as kern

    x = _x((3, 40, 37), np.float32, seed=3)
    want_y, want_d = lrn(x, 21, 2.0, 0.75, 1.0, mode="within", channel_axis=0,
                         return_divisor=True)
    monkeypatch.setattr(kern, "FLAT_LONG_MAX", 0)
    y, d = lrn(x, 21, 2.0, 0.75, 1.0, mode="within", channel_axis=0, return_divisor=True)
    assert np.array_equal(y, want_y)
    assert np.array_equal(d, want_d)


@pytest.mark.parametrize("beta", [0.75, 0.5, 0.6, 1.0])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_column_finish_gives_the_unfused_bits(size, beta, dtype):
    """Whole planes wanting only ``y`` take the column trees and the gain in one pass for
    beta 0.75 and 0.5 (``_columns_finish``); with the divisor wanted too, or another beta,
    through the column sums' scratch.  Both, and the strip kernel (a Fortran array), give
    the same bits, NaN and inf included, and match the reference."""
    x = _x((3, 4, 17, 23), dtype, seed=size)
    x[0, 1, 3, 5] = np.nan
    x[1, 2, 16, 0] = np.inf
    kw = dict(size=size, alpha=2.0, beta=beta, k=1.5, mode="within")
    fused = lrn(x, **kw)
    unfused, _ = lrn(x, **kw, return_divisor=True)
    strips = lrn(np.asfortranarray(x), **kw)
    assert np.array_equal(fused, unfused, equal_nan=True)
    assert np.array_equal(fused, strips, equal_nan=True)
    want = reference_lrn(x, **kw)
    assert np.array_equal(np.isnan(fused), np.isnan(want))
    ok = np.isfinite(want)
    np.testing.assert_allclose(fused[ok], want[ok], rtol=2e-6 if dtype == np.float32 else 1e-13,
                               atol=0)


def test_planes_too_wide_for_int32_columns_take_the_strips(monkeypatch):
    """Planes at least ``FLAT_SHORT_MAX_WIDTH`` wide do not take the whole-plane kernel (its
    column masks are int32): the strip kernel's bits, and the flat driver is not called."""
    from lrn_cli import _kernels_within as kern

    x = _x((2, 3, 9, 40), np.float32, seed=7)
    want = lrn(x, 5, 2.0, 0.75, 1.0, mode="within")
    calls = []
    real = kern._forward_flat_short
    monkeypatch.setattr(kern, "_forward_flat_short",
                        lambda *a: calls.append(1) or real(*a))
    assert np.array_equal(lrn(x, 5, 2.0, 0.75, 1.0, mode="within"), want)
    assert calls, "a 40-wide plane should take the whole-plane kernel"
    calls.clear()
    monkeypatch.setattr(kern, "FLAT_SHORT_MAX_WIDTH", 40)
    assert np.array_equal(lrn(x, 5, 2.0, 0.75, 1.0, mode="within"), want)
    assert not calls
