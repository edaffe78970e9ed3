"""Kernels vs the plain NumPy reference: conventions x modes x sizes x dtypes x layouts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lrn_cli import lrn, lrn_backward, lrn_divisor
from lrn_cli.conventions import CONVENTIONS, resolve
from lrn_cli.core import DtypeConversionWarning
from lrn_cli.errors import ParameterError
from lrn_cli.reference import reference_divisor, reference_lrn, reference_lrn_backward

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def max_rel_err(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(got - want) / np.abs(want)
    err = np.where(same, 0.0, err)
    return float(np.max(err)) if err.size else 0.0


def accepts(conv, mode, size):
    try:
        resolve(conv, mode, size, 1e-4, 0.75, 1.0)
    except ParameterError:
        return False
    return True


def mixed_input(shape, rng, dtype):
    """Values from 1e-4 to 1e4 side by side, both signs, with an all-zero slice."""
    mag = 10.0 ** rng.uniform(-4, 4, size=shape)
    x = mag * rng.choice([-1.0, 1.0], size=shape)
    if x.ndim >= 3 and shape[1] > 1:
        x[:, 0] = 0.0  # a whole channel of zeros
    return x.astype(dtype)


SIZES = [1, 2, 3, 4, 5, 7, 9, 13]  # 9 > C and 13 > H,W for the shapes below


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["across", "within"])
@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_every_convention_matches_reference(name, mode, dtype):
    conv = CONVENTIONS[name]
    if mode not in conv.modes:
        with pytest.raises(ParameterError, match="has no within"):
            lrn(np.ones((1, 2, 3, 3), dtype), 3, mode=mode, convention=name)
        return
    rng = np.random.default_rng(abs(hash((name, mode))) % 2**32)
    x = rng.standard_normal((2, 6, 5, 7)).astype(dtype) * 4
    for size in SIZES:
        if not accepts(name, mode, size):
            with pytest.raises(ParameterError):
                lrn(x, size, 1e-2, 0.75, 1.5, mode=mode, convention=name)
            continue
        for alpha, beta, k in [(1e-2, 0.75, 1.5), (1.0, 0.5, 2.0), (0.3, 0.6, 1e-4)]:
            got = lrn(x, size, alpha, beta, k, mode=mode, convention=name)
            want = reference_lrn(x, size, alpha, beta, k, mode=mode, convention=name)
            assert got.dtype == dtype
            assert max_rel_err(got, want) <= TOL[dtype], (size, alpha, beta, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["across", "within"])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7, 11, 21, 40])
def test_adversarial_values(size, mode, dtype):
    """Large next to small values, tiny k: where running sums cancel badly."""
    rng = np.random.default_rng(size)
    x = mixed_input((2, 17, 9, 23), rng, dtype)
    for k in (1e-4, 2.0):
        got = lrn(x, size, 1.0, 0.75, k, mode=mode)
        want = reference_lrn(x, size, 1.0, 0.75, k, mode=mode)
        assert max_rel_err(got, want) <= TOL[dtype], k


@pytest.mark.parametrize("mode", ["across", "within"])
def test_spike_then_small_values(mode):
    """A 1e4 spike followed by 1e-4 values: a float64 running sum loses them (spec, 3.7e-4)."""
    x = np.full((1, 64, 1, 64) if mode == "across" else (1, 1, 64, 64), 1e-4)
    x.flat[::17] = 1e4
    for size in (5, 11, 31):
        got = lrn(x, size, 1.0, 0.75, 1e-4, mode=mode)
        want = reference_lrn(x, size, 1.0, 0.75, 1e-4, mode=mode)
        assert max_rel_err(got, want) <= 1e-12


LAYOUTS = {
    # name: (shape, channel_axis)
    "NCHW": ((2, 5, 4, 6), 1),
    "NHWC": ((2, 4, 6, 5), 3),
    "CHW": ((5, 4, 6), 0),
    "HWC": ((4, 6, 5), -1),
    "NC": ((3, 7), 1),
    "NCDHW": ((2, 5, 3, 4, 3), 1),
    "C=1": ((2, 1, 4, 4), 1),
    "1x1 planes": ((3, 6, 1, 1), 1),
    "C only": ((9,), 0),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("mode", ["across", "within"])
def test_layouts(layout, mode, dtype):
    shape, axis = LAYOUTS[layout]
    if mode == "within" and len(shape) - 1 < 2:
        with pytest.raises(ParameterError, match="two spatial axes"):
            lrn(np.ones(shape, dtype), 3, mode=mode, channel_axis=axis)
        return
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    for size in (2, 3, 5, 8):
        got = lrn(x, size, 0.5, 0.75, 1.0, mode=mode, channel_axis=axis)
        want = reference_lrn(x, size, 0.5, 0.75, 1.0, mode=mode, channel_axis=axis)
        assert max_rel_err(got, want) <= TOL[dtype]


@pytest.mark.parametrize("mode", ["across", "within"])
def test_non_contiguous_and_byte_order(mode):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((3, 8, 9, 10))
    views = {
        "strided": base[:, ::2, 1:, ::-1],
        "fortran": np.asfortranarray(base),
        "transposed NHWC->NCHW": np.ascontiguousarray(base.transpose(0, 2, 3, 1)).transpose(
            0, 3, 1, 2
        ),
        "big-endian": base.astype(">f8"),
        "big-endian f4": base.astype(">f4"),
    }
    for name, x in views.items():
        got = lrn(x, 5, 0.5, 0.75, 1.0, mode=mode)
        want = reference_lrn(x, 5, 0.5, 0.75, 1.0, mode=mode)
        tol = 1e-5 if x.dtype.itemsize == 4 else 1e-12
        assert got.dtype == (np.float32 if x.dtype.itemsize == 4 else np.float64), name
        assert max_rel_err(got, want) <= tol, name


def test_out_non_contiguous_and_checked():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 5, 5)).astype(np.float32)
    out = np.zeros((2, 5, 5, 6), np.float32).transpose(0, 3, 1, 2)
    res = lrn(x, 3, out=out)
    assert res is out
    assert max_rel_err(out, reference_lrn(x, 3)) <= 1e-5
    with pytest.raises(ParameterError, match="dtype"):
        lrn(x, out=np.empty(x.shape, np.float64))
    with pytest.raises(ParameterError, match="shape"):
        lrn(x, out=np.empty((2, 6, 5), np.float32))
    with pytest.raises(ParameterError, match="overlaps"):
        lrn(x, out=x)


def test_dtypes():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 3, 3)) * 2
    y16 = lrn(x.astype(np.float16), 3)
    assert y16.dtype == np.float16
    want = reference_lrn(x.astype(np.float16), 3)
    np.testing.assert_allclose(y16.astype(np.float64), want, rtol=2e-3)
    for dt in (np.int8, np.uint8, np.int32, np.int64, np.bool_):
        xi = (np.abs(x) * 3).astype(dt)
        with pytest.warns(DtypeConversionWarning, match="converted to float32"):
            yi = lrn(xi, 3)
        assert yi.dtype == np.float32
        assert max_rel_err(yi, reference_lrn(xi.astype(np.float64), 3)) <= 1e-5
    with pytest.raises(ParameterError, match="complex"):
        lrn(x.astype(np.complex64), 3)
    with pytest.raises(ParameterError, match="object"):
        lrn(x.astype(object), 3)


def test_parameter_validation():
    x = np.ones((1, 4, 2, 2), np.float32)
    with pytest.raises(ParameterError, match="size must be >= 1"):
        lrn(x, 0)
    for bad in (float("nan"), float("inf")):
        for name in ("alpha", "beta", "k"):
            with pytest.raises(ParameterError, match=f"{name} must be finite"):
                lrn(x, 3, **{name: bad})
    with pytest.raises(ParameterError, match="Caffe LRN layer rejects even"):
        lrn(x, 4, convention="caffe")
    with pytest.raises(ParameterError, match="depth_radius"):
        lrn(x, 4, convention="tensorflow")
    with pytest.raises(ParameterError, match="lrnN|size <= 16"):
        lrn(x, 17, convention="cudnn")
    with pytest.raises(ParameterError, match="unknown convention"):
        lrn(x, 3, convention="keras")
    with pytest.raises(ParameterError, match="out of range"):
        lrn(x, 3, channel_axis=4)
    with pytest.raises(ParameterError, match="needs a channel axis"):
        lrn(x, 3, channel_axis=None)
    assert lrn(np.ones((0, 3, 2, 2), np.float32)).shape == (0, 3, 2, 2)


def test_depth_radius_is_tensorflow_size():
    rng = np.random.default_rng(6)
    x = rng.random((1, 3, 3, 8)).astype(np.float32)
    a = lrn(x, depth_radius=2, alpha=1.0, beta=0.5, k=1.0, convention="tensorflow",
            channel_axis=-1)
    b = lrn(x, 5, 1.0, 0.5, 1.0, convention="tensorflow", channel_axis=-1)
    np.testing.assert_array_equal(a, b)


def test_nan_and_inf_follow_ieee():
    x = np.array([[1.0, np.nan, 2.0, 3.0, np.inf, 0.5]]).reshape(1, 6, 1, 1)
    got = lrn(x, 3, 1.0, 0.75, 1.0)
    want = reference_lrn(x, 3, 1.0, 0.75, 1.0)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    assert max_rel_err(got[finite], want[finite]) <= 1e-12


def test_k_zero_all_zero_window_is_nan():
    """Documented: k=0 and a window of zeros gives 0 * 0**-beta = NaN, like the formula."""
    x = np.zeros((1, 4, 2, 2))
    x[0, 0] = 1.0
    y = lrn(x, 1, 1.0, 0.75, 0.0)
    assert np.isnan(y[0, 1:]).all()
    assert np.isfinite(y[0, 0]).all()


@pytest.mark.parametrize("mode", ["across", "within"])
def test_divisor_same_pass_and_alone(mode):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 6, 7)).astype(np.float32)
    y, d = lrn(x, 3, 0.5, 0.75, 2.0, mode=mode, return_divisor=True)
    d2 = lrn_divisor(x, 3, 0.5, 0.75, 2.0, mode=mode)
    np.testing.assert_array_equal(d, d2)
    np.testing.assert_array_equal(y, lrn(x, 3, 0.5, 0.75, 2.0, mode=mode))
    want = reference_divisor(x, 3, 0.5, 0.75, 2.0, mode=mode)
    assert max_rel_err(d, want) <= 1e-5
    # caffe within ignores k: the divisor starts at 1
    d3 = lrn_divisor(np.zeros((1, 2, 3, 3)), 3, 1.0, 0.75, 5.0, mode="within",
                     convention="caffe")
    assert (d3 == 1.0).all()


@pytest.mark.parametrize("mode", ["across", "within"])
@pytest.mark.parametrize("convention,size", [("default", 3), ("default", 4), ("onnx", 4),
                                             ("onednn", 4), ("caffe", 5), ("alexnet", 4),
                                             ("cuda-convnet", 2), ("default", 11)])
def test_backward_matches_reference_and_finite_differences(mode, convention, size):
    if mode not in CONVENTIONS[convention].modes:
        pytest.skip(f"{convention} has no {mode} mode")
    rng = np.random.default_rng(size)
    x = rng.standard_normal((2, 5, 4, 6))
    g = rng.standard_normal(x.shape)
    params = dict(mode=mode, convention=convention)
    got = lrn_backward(x, g, size, 0.7, 0.75, 1.3, **params)
    want = reference_lrn_backward(x, g, size, 0.7, 0.75, 1.3, **params)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    # central finite differences of sum(g * lrn(x)) in float64
    eps = 1e-6
    num = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp = x.copy()
        xm = x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (np.sum(g * reference_lrn(xp, size, 0.7, 0.75, 1.3, **params))
                    - np.sum(g * reference_lrn(xm, size, 0.7, 0.75, 1.3, **params))) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("mode", ["across", "within"])
def test_backward_dtypes_and_layouts(mode, dtype):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 6, 5, 7)).astype(dtype)
    g = rng.standard_normal((2, 6, 5, 7)).astype(dtype)
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    gh = np.ascontiguousarray(g.transpose(0, 2, 3, 1))
    got = lrn_backward(xh, gh, 4, 0.5, 0.75, 1.0, mode=mode, channel_axis=-1)
    assert got.dtype == dtype
    want = reference_lrn_backward(xh, gh, 4, 0.5, 0.75, 1.0, mode=mode, channel_axis=-1)
    tol = {np.float16: 2e-3, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol,
                               atol=tol * np.abs(want).max())


def test_integer_input_warns_once_and_converts():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = lrn(np.arange(24, dtype=np.int32).reshape(1, 6, 2, 2), 3)
    assert y.dtype == np.float32
    assert [w.category for w in caught] == [DtypeConversionWarning]


def test_large_window_over_many_channels():
    """size >> 9 takes the block prefix/suffix path; it must stay exact on lognormal data."""
    rng = np.random.default_rng(9)
    x = np.exp(rng.standard_normal((1, 600, 2, 3)) * 3).astype(np.float32)
    for size in (10, 64, 599, 1201):
        got = lrn(x, size, 1.0, 0.75, 1e-4)
        want = reference_lrn(x, size, 1.0, 0.75, 1e-4)
        assert max_rel_err(got, want) <= 1e-5, size


# ----------------------------------------------------------------------------------------
# the contiguous backward kernel: rings of t and D^-b, channel chunks, refined powers


def _float32_gradient_error(got, x, g, size, alpha, beta, k):
    """Error of a float32 gradient relative to the exact value rounded to float32 (plus a
    floor at 1e-6 of the largest magnitude, where float32 rounding itself is all there is)."""
    want = reference_lrn_backward(x.astype(np.float64), g.astype(np.float64), size, alpha,
                                  beta, k)
    floor = 1e-6 * np.abs(want).max()
    return float(np.max(np.abs(got.astype(np.float64) - want)
                        / np.maximum(np.abs(want), floor)))


def _backward_in_layout(x, g, layout, *args):
    """``lrn_backward`` of NCHW ``x``, ``g`` computed in ``layout`` (channels-last goes
    through the per-pixel kernel), returned as NCHW."""
    if layout == "channels-first":
        return lrn_backward(x, g, *args)
    xl, gl = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)) for a in (x, g))
    return lrn_backward(xl, gl, *args, channel_axis=-1).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("layout", ["channels-first", "channels-last"])
@pytest.mark.parametrize("beta", [0.75, 0.5, 0.6])
@pytest.mark.parametrize("size", [1, 2, 4, 5, 8])
@pytest.mark.parametrize("shape", [(1, 96, 7, 9), (5, 40, 3, 5), (2, 3, 4, 4), (1, 1, 2, 2)])
def test_contiguous_backward_on_wide_ranges(shape, size, beta, layout):
    """float32 input, magnitudes 1e-4..1e4 side by side and a tiny k: the refined powers
    (float32 seed + a float64 Newton step) stay as accurate as float64 arithmetic, in the
    channels-first ring kernel and the channels-last per-pixel kernel."""
    rng = np.random.default_rng(size)
    x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-4, 4, shape)).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    got = _backward_in_layout(x, g, layout, size, 1e-2, beta, 1e-3)
    assert got.dtype == np.float32
    assert _float32_gradient_error(got, x, g, size, 1e-2, beta, 1e-3) <= 1e-5


@pytest.mark.parametrize("layout", ["channels-first", "channels-last"])
def test_contiguous_backward_falls_back_where_the_seed_is_unusable(layout):
    """D outside float32's normal range (k=1e-40 and all-zero windows; huge values) and NaN:
    those rows (channels-last: those blocks of pixels) are recomputed exactly, so the result
    is the reference's.  The second input mixes a few such pixels into ordinary ones, so
    work items hold both."""
    small = np.zeros((2, 12, 3, 4), dtype=np.float32)
    small[0, 3] = 1e30  # D ~ 1e56
    small[1, 5, 1, 1] = np.nan
    small[1, 8] = 0.5
    mixed = np.random.default_rng(9).standard_normal((2, 12, 30, 40)).astype(np.float32)
    mixed[0, :, 5, 7] = 0.0  # every window of this pixel is zero: D = k = 1e-40
    mixed[1, 3, 10, 10] = 1e30
    mixed[1, 6, 20, 33] = np.nan
    for x, beta in ((small, 0.75), (small, 0.5), (mixed, 0.75), (mixed, 0.5)):
        g = np.ones_like(x)
        got = _backward_in_layout(x, g, layout, 5, 1e-4, beta, 1e-40)
        want = reference_lrn_backward(x.astype(np.float64), g.astype(np.float64), 5, 1e-4,
                                      beta, 1e-40)
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.array_equal(np.isinf(got), np.isinf(want))
        fin = np.isfinite(want)
        # values span 1e-30..1e30: an absolute floor at 1e-6 of the median, not of the max
        np.testing.assert_allclose(got[fin], want[fin], rtol=1e-5,
                                   atol=1e-6 * np.median(np.abs(want[fin])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_chunking_gives_the_same_bits(dtype):
    """One sample alone is split into channel chunks (recomputing halos); in a batch of 64
    each sample is one work item: the results agree bit for bit."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 200, 5, 6)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    whole = lrn_backward(x, g, 5, 1e-3, 0.75, 1.0)
    for i in (0, 37, 63):
        alone = lrn_backward(x[i:i + 1], g[i:i + 1], 5, 1e-3, 0.75, 1.0)
        assert np.array_equal(alone[0], whole[i])
    want = reference_lrn_backward(x[:2], g[:2], 5, 1e-3, 0.75, 1.0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(whole[:2], want, rtol=tol, atol=tol * np.abs(want).max())


def test_backward_non_contiguous_and_contiguous_agree():
    """The ring kernel (C-contiguous) and the row-view kernel (strided) match to rounding."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 30, 6, 8)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    a = lrn_backward(x, g, 5, 1e-3, 0.75, 1.0)
    xs = np.zeros((4, 30, 6, 16), np.float32)
    gs = np.zeros_like(xs)
    xs[..., ::2] = x
    gs[..., ::2] = g
    b = lrn_backward(xs[..., ::2], gs[..., ::2], 5, 1e-3, 0.75, 1.0)
    np.testing.assert_allclose(a, b, rtol=2e-7, atol=1e-7 * np.abs(a).max())


@pytest.mark.parametrize("size", [2, 3, 5, 9])
@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.6])
def test_within_backward_widens_float32_before_the_products(size, beta):
    """The within gradient of float32 input widens every value to float64 before squaring
    or multiplying (as the across kernels do): it is the float64 input's gradient rounded
    once, bit for bit, so as close to the float64 reference as a float32 result can be
    (it squared and multiplied in float32 before: up to ~1e-7 more relative error)."""
    rng = np.random.default_rng(size)
    x = mixed_input((2, 3, 13, 11), rng, np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    got = lrn_backward(x, g, size, 1e-2, beta, 1.0, mode="within")
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    wide = lrn_backward(x64, g64, size, 1e-2, beta, 1.0, mode="within")
    assert np.array_equal(got, wide.astype(np.float32))
    want = reference_lrn_backward(x64, g64, size, 1e-2, beta, 1.0, mode="within")
    # the float64 kernel's own error (<= 1e-12 relative to the largest gradient) plus the
    # final rounding to float32 (half an ulp)
    err = np.abs(got.astype(np.float64) - want)
    bound = np.abs(want) * 2.0**-24 * (1 + 1e-6) + 1e-12 * np.abs(want).max()
    assert (err <= bound).all()


@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.25, 1.5, 2.0, 0.6])
@pytest.mark.parametrize("mode", ["across", "within"])
def test_extreme_magnitudes_do_not_overflow_the_closed_forms(mode, beta):
    """float32 values near 1e15..1e18 (D near 1e30..1e36) and tiny ones with k = 0 (D near
    1e-28): every intermediate of the closed forms for D^-beta stays in range, so results
    are the reference's, not 0 or inf (results beyond float32's range excepted)."""
    rng = np.random.default_rng(11)
    tiny, huge = np.finfo(np.float32).tiny, np.finfo(np.float32).max
    for scale, k in ((1e15, 1.0), (1e18, 2.0), (1e-12, 0.0), (1e-9, 0.0)):
        x = (rng.uniform(0.5, 2.0, (2, 6, 5, 5)) * scale).astype(np.float32)
        x[0, 1] *= -1
        want = reference_lrn(x, 3, 1e-4, beta, k, mode=mode)
        got = lrn(x, 3, 1e-4, beta, k, mode=mode).astype(np.float64)
        fits = np.abs(want) < huge
        if not fits.any():  # beta 2 with k = 0: every result is beyond float32
            continue
        err = np.abs(got - want)[fits] / np.maximum(np.abs(want)[fits], tiny)
        assert err.max() <= 1e-5, (scale, k)
        if k > 0 and mode == "across":
            # gradients of the large inputs (with D ~ a'S the gradient is a difference of
            # nearly equal terms: within windows of 9 values and tiny inputs with k = 0
            # are too ill-conditioned for a relative comparison)
            g = rng.standard_normal(x.shape).astype(np.float32)
            gwant = reference_lrn_backward(x, g, 3, 1e-4, beta, k, mode=mode)
            ggot = lrn_backward(x, g, 3, 1e-4, beta, k, mode=mode).astype(np.float64)
            gerr = np.abs(ggot - gwant) / np.maximum(np.abs(gwant), tiny)
            assert gerr.max() <= 1e-5, (scale, k)


@pytest.mark.parametrize("span", [17, 64, 4096])
@pytest.mark.parametrize("channels", [1, 2, 4, 5, 6, 9, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_contiguous_across_kernel_gives_the_row_kernels_bits(span, channels, dtype, monkeypatch):
    """The C-contiguous across kernel runs the channels whose window lies inside the axis as
    one long span per sample, cut into pieces of ``dispatch.SPAN`` outputs (17 cuts pieces
    across channel boundaries), and the edge channels row by row.  A strided ``out`` takes
    the general row kernel: both must give the same bits for every window placement."""
    from lrn_cli import dispatch

    monkeypatch.setattr(dispatch, "SPAN", span)
    rng = np.random.default_rng(channels)
    x = mixed_input((3, channels, 5, 7), rng, dtype)
    # pytorch: extra tap before c for even sizes, onnx: after c, onednn: n-1 taps,
    # alexnet: n+1 taps
    cases = [(size, conv) for size in range(1, 9)
             for conv in ("pytorch", "onnx", "onednn", "alexnet")
             if accepts(conv, "across", size)]
    for size, conv in cases:
        for beta in (0.75, 0.5):
            got = lrn(x, size, 1e-2, beta, 1.0, convention=conv)
            strided = np.zeros(x.shape[:-1] + (14,), dtype)[..., ::2]
            lrn(x, size, 1e-2, beta, 1.0, convention=conv, out=strided)
            assert np.array_equal(got, strided, equal_nan=True), (size, conv, beta)
            want = reference_lrn(x, size, 1e-2, beta, 1.0, convention=conv)
            assert max_rel_err(got, want) <= TOL[dtype], (size, conv, beta)


@pytest.mark.parametrize("channels", [2, 3, 4, 64, 96])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size,beta", [(5, 0.75), (2, 0.5), (8, 0.6), (1, 1.0)])
def test_channels_last_paths_give_the_same_bits(channels, dtype, size, beta):
    """Channels-last input goes through the per-pixel kernel (contiguous channels) or, for a
    strided ``out``, planar copies of pixel slabs (C <= 64) or the general kernel: the same
    bits as the channels-first array everywhere, for the output and the divisor."""
    rng = np.random.default_rng(channels)
    nchw = rng.standard_normal((3, channels, 13, 17)).astype(dtype)
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
    y_first, d_first = lrn(nchw, size, 1e-2, beta, 1.0, return_divisor=True)
    y_last, d_last = lrn(nhwc, size, 1e-2, beta, 1.0, channel_axis=-1, return_divisor=True)
    assert np.array_equal(y_last, y_first.transpose(0, 2, 3, 1))
    assert np.array_equal(d_last, d_first.transpose(0, 2, 3, 1))
    out = np.zeros((3, 13, 17, channels * 2), dtype)[..., ::2]
    lrn(nhwc, size, 1e-2, beta, 1.0, channel_axis=-1, out=out)
    assert np.array_equal(out, y_last)
    hwc = nhwc[1]  # an image: (H, W, C)
    assert np.array_equal(lrn(hwc, size, 1e-2, beta, 1.0, channel_axis=2), y_last[1])


def test_results_keep_the_input_memory_layout():
    """New outputs follow x's memory order (as NumPy ufuncs do), e.g. planar-backed images."""
    planar = np.random.default_rng(0).standard_normal((3, 20, 30)).astype(np.float32)
    hwc = planar.transpose(1, 2, 0)
    y, d = lrn(hwc, 3, channel_axis=2, return_divisor=True)
    assert y.strides == hwc.strides and d.strides == hwc.strides
    assert np.array_equal(y, lrn(np.ascontiguousarray(hwc), 3, channel_axis=2))
    assert lrn(np.ascontiguousarray(hwc), 3, channel_axis=2).flags.c_contiguous


def test_divisor_out_is_filled_and_checked():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 4, 5)).astype(np.float32)
    y_want, d_want = lrn(x, 3, return_divisor=True)
    out, dbuf = np.empty_like(x), np.empty_like(x)
    y, d = lrn(x, 3, out=out, divisor_out=dbuf)
    assert y is out and d is dbuf
    assert np.array_equal(y, y_want) and np.array_equal(d, d_want)
    with pytest.raises(ParameterError, match="divisor_out has dtype"):
        lrn(x, 3, divisor_out=np.empty(x.shape))
    with pytest.raises(ParameterError, match="divisor_out overlaps out"):
        lrn(x, 3, out=out, divisor_out=out)
    with pytest.raises(ParameterError, match="divisor_out overlaps the input"):
        lrn(x, 3, divisor_out=x)


@pytest.mark.parametrize("channels", [2, 3, 20, 96])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size,beta", [(5, 0.75), (2, 0.5), (8, 0.6), (1, 1.0)])
def test_channels_last_backward_kernel(channels, dtype, size, beta):
    """The per-pixel backward kernel (channels-last, contiguous channels) against the
    reference and against the channels-first result; a strided view takes the other path."""
    rng = np.random.default_rng(channels + size)
    nchw = rng.standard_normal((2, channels, 7, 9)).astype(dtype)
    g = rng.standard_normal(nchw.shape).astype(dtype)
    nhwc, g_nhwc = (np.ascontiguousarray(a.transpose(0, 2, 3, 1)) for a in (nchw, g))
    got = lrn_backward(nhwc, g_nhwc, size, 1e-2, beta, 1.0, channel_axis=-1)
    want = reference_lrn_backward(nhwc, g_nhwc, size, 1e-2, beta, 1.0, channel_axis=-1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    first = lrn_backward(nchw, g, size, 1e-2, beta, 1.0).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, first, rtol=2 * tol, atol=tol * np.abs(want).max())
    strided = np.zeros((2, 7, 9, 2 * channels), dtype)
    strided[..., ::2] = nhwc
    other = lrn_backward(strided[..., ::2], g_nhwc, size, 1e-2, beta, 1.0, channel_axis=-1)
    np.testing.assert_allclose(other, want, rtol=tol, atol=tol * np.abs(want).max())
