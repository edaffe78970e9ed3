"""Tests of lrn_cli.stats against hand-computed figures and scaling properties."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lrn_cli.errors import ParameterError
from lrn_cli.stats import (
    STAT_DEFINITIONS,
    STAT_NAMES,
    ArrayStats,
    ChannelStats,
    array_stats,
    comparison_rows,
    divisor_stats,
    flat_record,
)

SCALE_FREE = ("rms_contrast", "michelson_contrast", "hoyer_sparsity")


def same(x: float | None, y: float | None, rel: float = 1e-12) -> bool:
    """Equal within ``rel``, NaN equal to NaN, None equal to None."""
    if x is None or y is None:
        return x is None and y is None
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=rel, abs_tol=1e-300)


def assert_stats_close(s: ChannelStats, t: ChannelStats, rel: float = 1e-12) -> None:
    assert s.count == t.count and s.nonfinite == t.nonfinite
    for name in STAT_NAMES:
        assert same(getattr(s, name), getattr(t, name), rel), name


# --- definitions --------------------------------------------------------------------------


def test_definitions_cover_everything() -> None:
    for name in (*STAT_NAMES, "channel_dominance", "nonfinite"):
        assert STAT_DEFINITIONS[name]
    for key in ("divisor_min", "divisor_max", "divisor_mean", "gain_min", "gain_max"):
        assert key in STAT_DEFINITIONS
    assert STAT_NAMES[:4] == ("mean", "std", "min", "max")


def test_basic_figures_by_hand() -> None:
    s = array_stats(np.array([1.0, -3.0]), None).overall
    assert s.mean == -1.0
    assert s.std == 2.0  # population std
    assert (s.min, s.max) == (-3.0, 1.0)
    assert s.rms_contrast == pytest.approx(2.0 / 2.0)  # std / mean|x| = 2 / 2
    assert s.michelson_contrast == pytest.approx(0.5)  # (3 - 1) / (3 + 1)
    # L1 = 4, L2 = sqrt(10), n = 2: (sqrt2 - 4/sqrt10) / (sqrt2 - 1)
    expected = (math.sqrt(2) - 4 / math.sqrt(10)) / (math.sqrt(2) - 1)
    assert s.hoyer_sparsity == pytest.approx(expected)
    assert (s.count, s.nonfinite) == (2, 0)


def test_michelson_of_1_3() -> None:
    assert array_stats(np.array([1.0, 3.0]), None).overall.michelson_contrast == 0.5


def test_hoyer_extremes() -> None:
    one_hot = np.zeros(50)
    one_hot[17] = -4.0
    assert array_stats(one_hot, None).overall.hoyer_sparsity == pytest.approx(1.0)
    const = np.full(50, 2.5, np.float32)
    assert array_stats(const, None).overall.hoyer_sparsity == pytest.approx(0.0, abs=1e-12)
    # Same magnitudes, mixed signs: still 0 (it is about magnitudes).
    signs = np.where(np.arange(50) % 2 == 0, 1.0, -1.0)
    assert array_stats(signs, None).overall.hoyer_sparsity == pytest.approx(0.0, abs=1e-12)


def test_undefined_figures_are_nan() -> None:
    s = array_stats(np.zeros(5), None).overall
    assert s.mean == 0.0 and s.std == 0.0
    assert math.isnan(s.rms_contrast)
    assert math.isnan(s.michelson_contrast)
    assert math.isnan(s.hoyer_sparsity)
    single = array_stats(np.array([3.0]), None).overall
    assert math.isnan(single.hoyer_sparsity)  # n == 1
    assert single.michelson_contrast == 0.0


def test_rms_contrast_by_hand() -> None:
    s = array_stats(np.array([0.0, 2.0, 4.0]), None).overall
    # std = sqrt(8/3), mean|x| = 2
    assert s.rms_contrast == pytest.approx(math.sqrt(8 / 3) / 2)


def test_per_channel_and_overall() -> None:
    x = np.array([[1.0, 2.0, 3.0], [10.0, 10.0, 10.0]])  # channels on axis 0
    st_ = array_stats(x, 0)
    assert len(st_.channels) == 2
    assert st_.channels[0].mean == 2.0
    assert st_.channels[0].std == pytest.approx(math.sqrt(2 / 3))
    assert st_.channels[1].std == 0.0
    assert st_.overall.mean == pytest.approx(6.0)
    assert st_.overall.std == pytest.approx(np.std(x))
    assert st_.overall.count == 6
    # negative axis is normalized
    assert array_stats(x.T, -1).channel_axis == 1
    assert array_stats(x.T, -1).channels[0] == st_.channels[0]


# --- channel dominance ------------------------------------------------------------------------


def test_channel_dominance_one_hot_is_one() -> None:
    rng = np.random.default_rng(1)
    winners = rng.integers(0, 5, size=(2, 4, 4))
    x = np.zeros((2, 5, 4, 4), np.float32)
    n, h, w = np.indices(winners.shape)
    x[n, winners, h, w] = rng.uniform(0.5, 2.0, size=winners.shape)
    assert array_stats(x, 1).channel_dominance == pytest.approx(1.0)


def test_channel_dominance_equal_channels_is_one_over_c() -> None:
    x = np.broadcast_to(np.arange(1.0, 13.0).reshape(3, 4, 1), (3, 4, 6))  # C = 6 last
    assert array_stats(x, -1).channel_dominance == pytest.approx(1 / 6)


def test_channel_dominance_skips_zero_and_nonfinite_pixels() -> None:
    x = np.array(
        [
            [3.0, 1.0],  # 3/4
            [0.0, 0.0],  # skipped: sum 0
            [np.nan, 1.0],  # skipped: non-finite
            [-1.0, 1.0],  # 1/2
        ]
    )
    assert array_stats(x, 1).channel_dominance == pytest.approx((0.75 + 0.5) / 2)


def test_channel_dominance_needs_two_channels() -> None:
    assert array_stats(np.ones((4, 1)), 1).channel_dominance is None
    assert array_stats(np.ones((4, 3)), None).channel_dominance is None
    assert math.isnan(array_stats(np.zeros((4, 3)), 1).channel_dominance)


# --- layouts, dtypes, non-finite -----------------------------------------------------------------


def test_layout_invariance_nchw_vs_nhwc() -> None:
    rng = np.random.default_rng(2)
    nchw = rng.standard_normal((3, 7, 9, 11)).astype(np.float32)
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
    a, b = array_stats(nchw, 1), array_stats(nhwc, 3)
    assert_stats_close(a.overall, b.overall)
    for ca, cb in zip(a.channels, b.channels, strict=True):
        assert_stats_close(ca, cb)
    assert a.channel_dominance == pytest.approx(b.channel_dominance, rel=1e-12)
    # Also against a plain float64 NumPy computation of channel 3.
    c3 = nchw[:, 3].astype(np.float64)
    assert a.channels[3].mean == pytest.approx(c3.mean(), rel=1e-12)
    assert a.channels[3].std == pytest.approx(c3.std(), rel=1e-12)
    assert a.channels[3].min == c3.min() and a.channels[3].max == c3.max()


def test_non_contiguous_input() -> None:
    rng = np.random.default_rng(3)
    base = rng.standard_normal((8, 10, 12))
    view = base[::2, :, ::3].transpose(2, 0, 1)  # strided and transposed
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    a = array_stats(view, 2)
    b = array_stats(np.ascontiguousarray(view), 2)
    assert_stats_close(a.overall, b.overall)
    for ca, cb in zip(a.channels, b.channels, strict=True):
        assert_stats_close(ca, cb)


def test_large_array_is_split_in_blocks() -> None:
    # More than one block (2**19 elements), channels first and last.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 700, 400)).astype(np.float32)
    x64 = x.astype(np.float64)
    for axis in (0, 2, None):
        s = array_stats(x, axis).overall
        assert s.mean == pytest.approx(x64.mean(), rel=1e-9, abs=1e-12)
        assert s.std == pytest.approx(x64.std(), rel=1e-12)
        assert s.count == x.size
    c = array_stats(x, 0).channels[1]
    assert c.std == pytest.approx(x64[1].std(), rel=1e-12)


def test_int_and_bool_input() -> None:
    x = np.array([[0, 255], [128, 255]], np.uint8)
    s = array_stats(x, None)
    assert s.overall.mean == pytest.approx((0 + 255 + 128 + 255) / 4)
    assert s.overall.max == 255.0 and s.overall.min == 0.0
    assert s.dtype == "uint8"
    # int8 -128 must not wrap when taking magnitudes
    t = array_stats(np.array([-128, 64], np.int8), None).overall
    assert t.michelson_contrast == pytest.approx((128 - 64) / (128 + 64))
    b = array_stats(np.array([True, False, False, False]), None).overall
    assert b.mean == 0.25 and b.hoyer_sparsity == pytest.approx(1.0)


def test_nan_and_inf_ignored_and_counted() -> None:
    x = np.array([[1.0, np.nan, 3.0], [np.inf, -np.inf, 2.0]], np.float32)
    s = array_stats(x, 0)
    assert s.overall.nonfinite == 3 and s.overall.count == 3
    assert s.overall.mean == pytest.approx(2.0)
    assert s.overall.max == 3.0
    assert (s.channels[0].nonfinite, s.channels[1].nonfinite) == (1, 2)
    assert s.channels[1].mean == 2.0 and s.channels[1].count == 1
    all_nan = array_stats(np.full(4, np.nan), None).overall
    assert all_nan.count == 0 and all_nan.nonfinite == 4 and math.isnan(all_nan.mean)


@pytest.mark.parametrize("scale", [2.0**1000, 1e300, 1e-300, 2.0**-1070])
def test_extreme_float64_magnitudes(scale: float) -> None:
    # Squares of these overflow or underflow float64; the figures must not.
    base = np.array([[1.0, 3.0, 0.0], [2.0, -2.0, 2.0]])
    ref = array_stats(base, 0)
    got = array_stats(base * scale, 0)
    for r, g in zip((ref.overall, *ref.channels), (got.overall, *got.channels), strict=True):
        for name in SCALE_FREE:
            assert same(getattr(r, name), getattr(g, name), 1e-12), name
        assert same(g.std, r.std * scale, 1e-12) and same(g.mean, r.mean * scale, 1e-12)
        assert g.max == r.max * scale
    assert same(got.channel_dominance, ref.channel_dominance, 1e-12)


def test_bad_arguments() -> None:
    with pytest.raises(ParameterError):
        array_stats(np.ones((2, 3)), 2)
    with pytest.raises(ParameterError):
        array_stats(np.ones((2, 3)), -3)
    with pytest.raises(ParameterError):
        array_stats(np.ones(3, complex), None)
    with pytest.raises(ParameterError):
        array_stats(np.array(["a"]), None)
    with pytest.raises(ValueError):  # ParameterError is a ValueError
        divisor_stats(np.ones(3), math.nan)


def test_empty_and_scalar() -> None:
    e = array_stats(np.zeros((0, 3)), 1)
    assert len(e.channels) == 3 and e.overall.count == 0 and math.isnan(e.overall.mean)
    s = array_stats(np.float32(2.0), None)
    assert s.shape == () and s.overall.mean == 2.0


# --- JSON, divisor, tables ----------------------------------------------------------------------


def test_as_dict_is_json_safe() -> None:
    s = array_stats(np.array([[0.0, 0.0], [np.nan, 1.0]]), 1)
    d = s.as_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["shape"] == [2, 2]
    assert d["channels"][0]["rms_contrast"] is None  # 0 / 0
    assert d["overall"]["nonfinite"] == 1
    assert isinstance(s, ArrayStats)


def test_divisor_stats() -> None:
    d = np.array([1.0, 4.0, 16.0], np.float32)
    s = divisor_stats(d, 0.5)
    assert (s.d_min, s.d_max) == (1.0, 16.0)
    assert s.d_mean == pytest.approx(7.0)
    assert (s.gain_min, s.gain_max) == (pytest.approx(0.25), pytest.approx(1.0))
    assert s.gain_mean == pytest.approx((1 + 0.5 + 0.25) / 3)
    json.dumps(s.as_dict(), allow_nan=False)
    z = divisor_stats(np.array([0.0, np.nan]), 0.75)  # D = 0 has no gain
    assert z.d_min == 0.0 and math.isnan(z.gain_mean)
    assert z.as_dict()["gain_mean"] is None


def test_comparison_rows_and_flat_record() -> None:
    before = array_stats(np.array([[1.0, 3.0], [2.0, 2.0]]), 0)
    after = array_stats(np.array([[0.5, 1.5], [1.0, 1.0]]), 0)
    rows = comparison_rows(before, after)
    assert [r["scope"] for r in rows] == ["all", "c0", "c1"]
    assert list(rows[0]) == ["scope"] + [f"{n}_{w}" for n in STAT_NAMES for w in ("in", "out")]
    assert rows[1]["michelson_contrast_in"] == 0.5 and rows[1]["michelson_contrast_out"] == 0.5
    assert rows[2]["mean_out"] == 1.0
    assert rows[2]["rms_contrast_in"] == 0.0
    with pytest.raises(ParameterError):
        comparison_rows(before, array_stats(np.ones((3, 2)), 0))

    rec = flat_record(before, after, divisor_stats(np.array([2.0, 4.0]), 1.0))
    assert rec["in_mean"] == 2.0 and rec["out_mean"] == 1.0
    assert rec["in_channel_dominance"] == pytest.approx((2 / 3 + 3 / 5) / 2)  # pixels (1,2), (3,2)
    assert rec["divisor_max"] == 4.0 and rec["gain_min"] == 0.25
    no_div = flat_record(array_stats(np.zeros(3), None), array_stats(np.zeros(3), None), None)
    assert list(no_div) == list(rec)  # same CSV columns whatever is missing
    assert no_div["divisor_min"] is None and no_div["in_channel_dominance"] is None
    assert no_div["in_hoyer_sparsity"] is None
    json.dumps(no_div, allow_nan=False)


# --- properties ----------------------------------------------------------------------------

values = st.integers(-1000, 1000).map(lambda i: i / 8.0)
arrays = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=6), elements=values
)


@settings(max_examples=60, deadline=None)
@given(x=arrays, k=st.integers(-20, 20), axis=st.integers(-2, 1))
def test_power_of_two_scaling_is_exact(x: np.ndarray, k: int, axis: int) -> None:
    c = 2.0**k
    s, t = array_stats(x, axis), array_stats(c * x, axis)
    for name in SCALE_FREE:
        assert same(getattr(s.overall, name), getattr(t.overall, name), 1e-12), name
    assert same(t.overall.mean, c * s.overall.mean, 1e-12)
    assert same(t.overall.std, c * s.overall.std, 1e-12)
    assert same(s.channel_dominance, t.channel_dominance, 1e-12)


@settings(max_examples=60, deadline=None)
@given(x=arrays, c=st.floats(1e-3, 1e3), axis=st.integers(-2, 1))
def test_scale_free_figures_invariant_to_positive_scaling(
    x: np.ndarray, c: float, axis: int
) -> None:
    s, t = array_stats(x, axis), array_stats(c * x, axis)
    for a, b in zip((s.overall, *s.channels), (t.overall, *t.channels), strict=True):
        for name in SCALE_FREE:
            va, vb = getattr(a, name), getattr(b, name)
            if name == "rms_contrast" or math.isnan(va) or math.isnan(vb):
                assert same(va, vb, 1e-9), name
            else:
                # bounded in [0, 1] and computed as a difference of nearly equal terms
                # (sqrt(n) - L1/L2) near 0, so compare absolutely
                assert va == pytest.approx(vb, rel=1e-9, abs=1e-9), name
        assert t.overall.mean == pytest.approx(c * s.overall.mean, rel=1e-9, abs=1e-9)
    assert same(s.channel_dominance, t.channel_dominance, 1e-9)


@settings(max_examples=60, deadline=None)
@given(x=arrays, axis=st.integers(-2, 1))
def test_figures_stay_in_range_and_match_numpy(x: np.ndarray, axis: int) -> None:
    s = array_stats(x, axis)
    o = s.overall
    assert o.mean == pytest.approx(x.mean(), rel=1e-9, abs=1e-9)
    assert o.std == pytest.approx(x.std(), rel=1e-9, abs=1e-9)
    for c in (o, *s.channels):
        for name in ("michelson_contrast", "hoyer_sparsity"):
            v = getattr(c, name)
            assert math.isnan(v) or 0.0 <= v <= 1.0
    nch = x.shape[axis]
    if nch >= 2 and not math.isnan(s.channel_dominance):
        assert 1 / nch - 1e-12 <= s.channel_dominance <= 1 + 1e-12


@pytest.mark.parametrize("shape,axis", [((3, 5, 7, 6), 1), ((4, 9, 11, 3), 3), ((40, 3), None),
                                        ((2, 1, 4, 4), 1), ((6, 8), 0),
                                        # rows of whole 16-value lane blocks plus a tail,
                                        # interleaved channels copied to planar blocks
                                        ((2, 3, 37, 41), 1), ((5, 33, 29, 3), 3),
                                        ((1003,), None), ((700, 400, 2), 2),
                                        # 33 rows in 32 chunks of 2: the last ones empty
                                        ((33, 2, 4, 4), 1)])
def test_numba_path_matches_numpy_path(shape, axis):
    """The Numba kernels (native float32/64) against the NumPy path (big-endian input)."""
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3, size=shape)
    x.flat[::7] = np.nan
    x.flat[3] = np.inf
    for dtype in (np.float64, np.float32):
        fast = array_stats(x.astype(dtype), axis)
        slow = array_stats(x.astype(np.dtype(dtype).newbyteorder(">")), axis)
        assert fast.overall.nonfinite == slow.overall.nonfinite
        for a, b in zip((fast.overall, *fast.channels), (slow.overall, *slow.channels),
                        strict=True):
            for name in STAT_NAMES:
                assert same(getattr(a, name), getattr(b, name), 1e-9), name
        assert same(fast.channel_dominance, slow.channel_dominance, 1e-9)
        d = (np.abs(x) + 1.0).astype(dtype)
        fd = divisor_stats(d, 0.75)
        sd = divisor_stats(d.astype(np.dtype(dtype).newbyteorder(">")), 0.75)
        for name in ("d_min", "d_max", "d_mean", "gain_min", "gain_max", "gain_mean"):
            assert same(getattr(fd, name), getattr(sd, name), 1e-9), name


@pytest.mark.parametrize("beta", [0.75, 0.5, 0.6])
def test_divisor_stats_lanes_match_numpy_path(beta):
    """Lane-wise divisor sums (whole blocks and tails) with NaN, inf, zero and negative D:
    the same figures as the plain NumPy path (big-endian input)."""
    rng = np.random.default_rng(7)
    d = rng.uniform(0.5, 4.0, 1003) ** 3
    d[[5, 17, 40, 1001]] = np.nan
    d[[6, 300]] = np.inf
    d[[7, 999]] = 0.0
    d[[8, 500, 1002]] = -2.0
    d[900] = 1e-320  # positive, but its gain overflows: no gain
    for dtype in (np.float64, np.float32):
        fast = divisor_stats(d.astype(dtype), beta)
        slow = divisor_stats(d.astype(np.dtype(dtype).newbyteorder(">")), beta)
        for name in ("d_min", "d_max", "d_mean", "gain_min", "gain_max", "gain_mean"):
            assert same(getattr(fast, name), getattr(slow, name), 1e-12), name
    finite = d[np.isfinite(d)]
    assert divisor_stats(d, beta).d_min == finite.min() == -2.0


@pytest.mark.parametrize("scale", [1.0, 1e-3, 3.0, 1e30])
def test_constant_values_have_no_spread(scale: float) -> None:
    """A constant array has std exactly 0 and its value as mean, at any scale (found by
    hypothesis: 0.375e-3 three times gave a rounded mean and std 5e-20)."""
    x = np.full((1, 3), 0.375) * scale
    for stats in (array_stats(x, 0), array_stats(x.astype(np.float32), 0)):
        for s in (stats.overall, stats.channels[0]):
            assert s.std == 0.0 and s.rms_contrast == 0.0
            assert s.mean == s.min == s.max
