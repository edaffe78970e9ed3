"""The across-channel backward kernels' 5-tap paths: the ring sweep that shares pair sums
(channels-first, C-contiguous) and the three-pass block kernel (channels last).

Both must give the float64 gradient rounded once to float32 (to the last bit but for rare
ties), the same bits as each other in any layout and chunking, and exact roots, element by
element, where the float32 seed of the refined powers is unusable.
"""

from __future__ import annotations

import numpy as np
import pytest

from lrn_cli import _kernels_backward as kb
from lrn_cli import lrn_backward
from lrn_cli._jit import BETA_05, BETA_075
from lrn_cli.reference import reference_lrn_backward


def _np_backward(x, g, lo, hi, a, k, beta):
    """The gradient in float64 NumPy for the window ``[c-lo, c+hi]`` along axis 1 of a 3-D
    array: ``dx_j = g_j D_j^-b - 2 b a x_j sum_{i in [j-hi, j+lo]} g_i x_i D_i^(-b-1)``."""
    x = x.astype(np.float64)
    g = g.astype(np.float64)
    c = x.shape[1]

    def window_sum(v, before, after):
        padded = np.zeros((v.shape[0], c + before + after, v.shape[2]))
        padded[:, before:before + c] = v
        return sum(padded[:, u:u + c] for u in range(before + after + 1))

    d = k + a * window_sum(x * x, lo, hi)
    t = g * x * d ** (-beta - 1)
    return g * d ** -beta - 2 * beta * a * x * window_sum(t, hi, lo)


def _assert_rounded_once(got, want):
    """``got`` (float32) is ``want`` (float64) rounded: within one float32 ulp everywhere,
    bit-equal to the rounding almost everywhere (refined powers are ~1e-13 relative)."""
    want32 = want.astype(np.float32)
    ulp = np.spacing(np.abs(want32))
    assert np.all(np.abs(got.astype(np.float64) - want) <= ulp), "more than one ulp off"
    assert np.mean(got == want32) >= 0.999


def _mixed(shape, rng):
    """float32 values of magnitudes 1e-2..1e2 side by side, both signs, some exact zeros."""
    x = rng.standard_normal(shape) * 10.0 ** rng.uniform(-2, 2, shape)
    x[rng.random(shape) < 0.03] = 0.0
    return x.astype(np.float32)


def _channels_first(x, g, lo, hi, a, k, beta, chunk):
    dx = np.empty_like(x)
    bmode = BETA_075 if beta == 0.75 else BETA_05
    kb.across_rows_backward_contiguous(x, g, dx, lo, hi, a, k, beta, bmode, chunk, True)
    return dx


def _channels_last(x, g, lo, hi, a, k, beta, block):
    """The channels-last kernel on ``x``, ``g`` (outer, C, inner) transposed to pixel rows;
    returned as (outer, C, inner)."""
    rows = [np.ascontiguousarray(v.transpose(0, 2, 1)).reshape(-1, v.shape[1]) for v in (x, g)]
    dx = np.empty_like(rows[0])
    bmode = BETA_075 if beta == 0.75 else BETA_05
    kb.across_channels_last_backward(rows[0], rows[1], dx, lo, hi, a, k, beta, bmode, block,
                                     True)
    return dx.reshape(x.shape[0], x.shape[2], x.shape[1]).transpose(0, 2, 1)


WINDOWS = [(2, 2), (1, 3), (3, 1), (0, 4), (4, 0)]


@pytest.mark.parametrize("beta", [0.75, 0.5])
@pytest.mark.parametrize("lo,hi", WINDOWS)
@pytest.mark.parametrize("shape", [(2, 1, 9), (3, 2, 5), (2, 4, 7), (2, 5, 3), (2, 9, 33),
                                   (1, 40, 17), (3, 13, 1)])
def test_five_tap_paths_round_the_float64_gradient_once(shape, lo, hi, beta):
    """Every window placement of 5 taps (any ``lo + hi = 4``), channel counts below, at and
    above the window, odd and even: both kernels against float64 NumPy, to the last bit but
    for rare ties; a wrong ring slot, pair or edge row would be off by far more."""
    rng = np.random.default_rng(shape[1] * 10 + lo)
    x = _mixed(shape, rng)
    g = rng.standard_normal(shape).astype(np.float32)
    a, k = 1e-2, 0.5
    want = _np_backward(x, g, lo, hi, a, k, beta)
    first = _channels_first(x, g, lo, hi, a, k, beta, shape[1])
    _assert_rounded_once(first, want)
    last = _channels_last(x, g, lo, hi, a, k, beta, 7)
    assert np.array_equal(last, first)


@pytest.mark.parametrize("lo,hi", WINDOWS)
@pytest.mark.parametrize("chunk", [1, 3, 16, 64])
def test_five_tap_sweep_chunks_give_the_same_bits(chunk, lo, hi):
    """Channel chunks recompute their halo of rows: any chunk size gives the bits of the
    whole sweep, and of the channels-last kernel in blocks of any size."""
    rng = np.random.default_rng(chunk)
    x = _mixed((2, 64, 11), rng)
    g = rng.standard_normal(x.shape).astype(np.float32)
    whole = _channels_first(x, g, lo, hi, 1e-2, 0.5, 0.75, 64)
    assert np.array_equal(_channels_first(x, g, lo, hi, 1e-2, 0.5, 0.75, chunk), whole)
    assert np.array_equal(_channels_last(x, g, lo, hi, 1e-2, 0.5, 0.75, chunk), whole)


@pytest.mark.parametrize("beta", [0.75, 0.5])
def test_five_tap_seed_fallback_is_per_element(beta):
    """``D`` outside the refined powers' range (k=1e-40 with all-zero windows, 1e30 values)
    and NaN: exactly those elements take exact roots, so channels-first (rows), channels-last
    (blocks) and chunked sweeps agree bit for bit, and the values match float64."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 24, 30)).astype(np.float32)
    x[0, :, 7] = 0.0  # every window of this pixel is zero: D = k
    x[1, 5, 3] = 1e30
    x[1, 9, 20] = np.nan
    x[0, 20:, 11] = 1e-25
    g = rng.standard_normal(x.shape).astype(np.float32)
    a, k = 1e-4, 1e-40
    whole = _channels_first(x, g, 2, 2, a, k, beta, 24)
    for other in (_channels_first(x, g, 2, 2, a, k, beta, 5),
                  _channels_last(x, g, 2, 2, a, k, beta, 4),
                  _channels_last(x, g, 2, 2, a, k, beta, 60)):
        assert np.array_equal(other, whole, equal_nan=True)
    with np.errstate(all="ignore"):
        want = _np_backward(x, g, 2, 2, a, k, beta)
    assert np.array_equal(np.isnan(whole), np.isnan(want))
    assert np.array_equal(np.isinf(whole), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(whole[fin], want[fin], rtol=1e-6,
                               atol=1e-6 * np.median(np.abs(want[fin])))
    # an ordinary pixel in a row that also holds unusable seeds keeps its refined bits
    clean = x.copy()
    clean[0, :, 7] = 1.0
    clean[1, 5, 3] = 1.0
    clean[1, 9, 20] = 1.0
    clean[0, 20:, 11] = 1.0
    ref = _channels_first(clean, g, 2, 2, a, k, beta, 24)
    untouched = np.ones(x.shape, bool)
    untouched[:, :, [3, 7, 11, 20]] = False
    assert np.array_equal(whole[untouched], ref[untouched])


@pytest.mark.parametrize("beta", [0.75, 0.5])
def test_refined_powers_do_not_depend_on_the_loop_position(beta):
    """Pixels with equal inputs get equal bits wherever they sit in a row (vector body or
    scalar remainder), in the channels-first sweep and the channels-last blocks, even where
    ``dx`` is pure rounding noise (one or two channels, ``k = 0``: it cancels to ~1e-14, so
    a power one bit off shows).  The float32 seeds are IEEE ``sqrt`` and division: with
    approximate ops (``afn``) LLVM may seed vector lanes by ``vrsqrtps`` and remainders by
    division (an 8-channel register-block prototype gave unequal bits in 6 of 400 such
    cases; these kernels happened to agree with ``afn`` too, so this guards the property)."""
    rng = np.random.default_rng(11)
    for _ in range(60):
        channels, width = int(rng.integers(1, 14)), int(rng.integers(17, 80))
        col = rng.standard_normal(channels).astype(np.float32)
        gcol = rng.standard_normal(channels).astype(np.float32)
        x = np.repeat(col[None, :, None], width, axis=2)
        g = np.repeat(gcol[None, :, None], width, axis=2)
        first = _channels_first(x, g, 2, 2, 0.4, 0.0, beta, channels)
        bits = first.view(np.uint32)
        assert np.all(bits == bits[..., :1]), (channels, width)
        last = _channels_last(x, g, 2, 2, 0.4, 0.0, beta, 7)
        assert np.array_equal(last, first), (channels, width)


@pytest.mark.parametrize("convention,size", [("default", 5), ("onednn", 6), ("alexnet", 4),
                                             ("tensorflow", 5)])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NCHW strided"])
def test_five_tap_gradient_through_lrn_backward(convention, size, layout):
    """Through the public call: every convention whose window has 5 taps takes the 5-tap
    paths for C-contiguous NCHW and NHWC float32 (beta 0.75); the results agree with the
    float64 reference to rounding and with each other bit for bit; a strided view (the
    row-view kernel) agrees to rounding."""
    rng = np.random.default_rng(size)
    x = _mixed((3, 20, 6, 7), rng)
    g = rng.standard_normal(x.shape).astype(np.float32)
    kw = dict(convention=convention)
    args = (size, 0.05, 0.75, 1.5)
    nchw = lrn_backward(x, g, *args, **kw)
    want = reference_lrn_backward(x.astype(np.float64), g.astype(np.float64), *args, **kw)
    _assert_rounded_once(nchw, want)
    if layout == "NHWC":
        xh, gh = (np.ascontiguousarray(v.transpose(0, 2, 3, 1)) for v in (x, g))
        got = lrn_backward(xh, gh, *args, channel_axis=-1, **kw).transpose(0, 3, 1, 2)
        assert np.array_equal(got, nchw)
    elif layout == "NCHW strided":
        xs, gs = (np.repeat(v, 2, axis=3)[..., ::2] for v in (x, g))
        got = lrn_backward(xs, gs, *args, **kw)
        np.testing.assert_allclose(got, nchw, rtol=2e-7, atol=1e-7 * np.abs(nchw).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [0.25, 1.5, 2.0, 1.0, 0.6])
@pytest.mark.parametrize("size", [3, 5])
def test_exact_gains_agree_in_every_layout(size, beta, dtype):
    """The float64-root gains (float64 input, or betas without refined powers): beta 0.25,
    1.5 and 2 take the forward pass's closed forms, not ``pow``, in every across kernel
    (rings, channels last, strided rows, scratch blocks), so all layouts give the same bits,
    and the float64 gradient matches the reference to ~1e-15."""
    rng = np.random.default_rng(int(beta * 100) + size)
    x = _mixed((2, 12, 5, 6), rng).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    args = (size, 0.05, beta, 1.5)
    nchw = lrn_backward(x, g, *args)
    xh, gh = (np.ascontiguousarray(v.transpose(0, 2, 3, 1)) for v in (x, g))
    nhwc = lrn_backward(xh, gh, *args, channel_axis=-1).transpose(0, 3, 1, 2)
    xs, gs = (np.repeat(v, 2, axis=3)[..., ::2] for v in (x, g))
    strided = lrn_backward(xs, gs, *args)
    xf, gf = (np.asfortranarray(v) for v in (x, g))
    fortran = lrn_backward(xf, gf, *args)
    for other in (nhwc, strided, fortran):
        assert np.array_equal(other, nchw)
    want = reference_lrn_backward(x.astype(np.float64), g.astype(np.float64), *args)
    if dtype == np.float64:
        np.testing.assert_allclose(nchw, want, rtol=1e-13, atol=1e-15 * np.abs(want).max())
    else:
        _assert_rounded_once(nchw, want)


@pytest.mark.parametrize("beta,gain", [(0.25, lambda d: 1.0 / np.sqrt(np.sqrt(d))),
                                       (1.5, lambda d: 1.0 / np.sqrt(d) / d),
                                       (2.0, lambda d: 1.0 / d / d)])
def test_exact_gains_are_the_closed_forms(beta, gain):
    """float64, 3-tap window: the kernels' operations replayed in NumPy (the tree
    ``(v0 + v1) + v2``, ``D = k + a S``, the closed-form gain, ``t = g x gain / D``,
    ``dx = g gain - (c2 x) s``) give the same bits; ``pow`` would differ in the last bits."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 9, 4, 5)) * 3
    g = rng.standard_normal(x.shape)
    a, k = 0.05 / 3, 1.5

    def tree3(v):
        p = np.zeros((v.shape[0], v.shape[1] + 2) + v.shape[2:])
        p[:, 1:-1] = v
        return (p[:, :-2] + p[:, 1:-1]) + p[:, 2:]

    d = k + a * tree3(x * x)
    gn = gain(d)
    want = g * gn - (2.0 * beta * a * x) * tree3(g * x * gn / d)
    assert np.array_equal(lrn_backward(x, g, 3, 0.05, beta, k), want)
    xh, gh = (np.ascontiguousarray(v.transpose(0, 2, 3, 1)) for v in (x, g))
    got = lrn_backward(xh, gh, 3, 0.05, beta, k, channel_axis=-1).transpose(0, 3, 1, 2)
    assert np.array_equal(got, want)
