"""Tests of lrn_cli.compare: tolerance verdicts, ulps, NaN handling, per-channel counts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lrn_cli.compare import compare_arrays, ulp_distance
from lrn_cli.errors import ParameterError

TINY64 = np.nextafter(0.0, 1.0)  # smallest float64 subnormal
TINY32 = np.nextafter(np.float32(0), np.float32(1))


def test_identical_arrays_agree() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    c = compare_arrays(x, x.copy(), channel_axis=1)
    assert c.agree and c.overall.max_ulp == 0 and c.overall.max_abs == 0.0
    assert c.overall.mismatched == 0 and c.overall.count == x.size
    assert c.worst_index is None and c.nan_mismatch == 0
    assert len(c.channels) == 3 and c.channels[0].count == 2 * 4 * 5
    assert c.dtype == "float32"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_ulp_nudge(dtype: type) -> None:
    b = np.array([1.0, -2.5, 1e-3, 0.0], dtype)
    for i in range(b.size):
        a = b.copy()
        a[i] = np.nextafter(a[i], dtype(np.inf))
        c = compare_arrays(a, b, channel_axis=None)
        assert c.overall.max_ulp == 1
        assert c.worst_index == (i,)


def test_ulps_across_zero() -> None:
    assert compare_arrays(np.array([-0.0]), np.array([0.0]), channel_axis=None).overall.max_ulp == 0
    c = compare_arrays(np.array([TINY64]), np.array([-TINY64]), channel_axis=None)
    assert c.overall.max_ulp == 2
    c32 = compare_arrays(np.array([TINY32]), np.array([-TINY32]), channel_axis=None)
    assert c32.dtype == "float32" and c32.overall.max_ulp == 2
    # 1.0 vs -1.0 in float32: twice the bit pattern of 1.0
    one = int(np.float32(1).view(np.uint32))
    assert ulp_distance(np.float32(1), np.float32(-1)) == 2 * one
    # the largest distance, -max vs +max in float64, does not overflow uint64
    big = np.finfo(np.float64).max
    assert int(ulp_distance(np.float64(big), np.float64(-big))) == 2 * int(
        np.float64(big).view(np.uint64)
    )


def test_comparison_dtype() -> None:
    f16, f32, f64 = (np.ones(2, t) for t in (np.float16, np.float32, np.float64))
    assert compare_arrays(f16, f32, channel_axis=None).dtype == "float32"
    assert compare_arrays(f32, f64, channel_axis=None).dtype == "float64"
    assert compare_arrays(np.ones(2, np.int32), f32, channel_axis=None).dtype == "float64"
    # a float64 one-ulp difference is many float32 ulps apart only in float64 units
    a = np.array([1.0 + 2.0**-52])
    c = compare_arrays(a, np.ones(1, np.float32), channel_axis=None)
    assert c.overall.max_ulp == 1


def test_tolerance_boundary() -> None:
    b = np.array([1.0])
    # |a - b| <= atol + rtol * |b| with exactly representable values: 0.25 + 0.5 * 1
    at = np.array([1.75])
    c = compare_arrays(at, b, channel_axis=None, rtol=0.5, atol=0.25)
    assert c.agree and c.overall.max_abs == 0.75 and c.overall.max_rel == 0.75
    above = np.nextafter(at, 2.0)
    c = compare_arrays(above, b, channel_axis=None, rtol=0.5, atol=0.25)
    assert not c.agree and c.overall.mismatched == 1
    # b is the reference: swapped, the allowance is 0.25 + 0.5 * |above| and it agrees
    assert compare_arrays(b, above, channel_axis=None, rtol=0.5, atol=0.25).agree


def test_max_rel_ignores_zero_reference() -> None:
    c = compare_arrays(np.array([1.0, 3.0]), np.array([0.0, 2.0]), channel_axis=None)
    assert c.overall.max_rel == 0.5
    assert c.overall.max_abs == 1.0
    assert c.worst_index == (0,)


def test_per_channel_mismatch_counts() -> None:
    b = np.zeros((2, 4, 3, 3), np.float32)  # NCHW
    a = b.copy()
    a[0, 1, 0, 0] = 1.0
    a[1, 1, 2, 2] = 0.5
    a[0, 3, 1, 1] = -2.0
    c = compare_arrays(a, b, channel_axis=1)
    assert [ch.mismatched for ch in c.channels] == [0, 2, 0, 1]
    assert [ch.max_abs for ch in c.channels] == [0.0, 1.0, 0.0, 2.0]
    assert c.overall.mismatched == 3 and not c.agree
    assert c.worst_index == (0, 3, 1, 1)
    # the same tensor in NHWC with channel_axis=-1 gives the same per-channel figures
    nhwc = compare_arrays(a.transpose(0, 2, 3, 1), b.transpose(0, 2, 3, 1), channel_axis=-1)
    assert nhwc.channels == c.channels
    assert nhwc.worst_index == (0, 1, 1, 3) and nhwc.channel_axis == 3


def test_nan_handling() -> None:
    nan, inf = np.nan, np.inf
    a = np.array([nan, 1.0, nan, inf, inf, -inf, 5.0])
    b = np.array([nan, nan, 2.0, inf, -inf, -inf, inf])
    c = compare_arrays(a, b, channel_axis=None)
    # agree: nan/nan, inf/inf, -inf/-inf; disagree: 1/nan, nan/2, inf/-inf, 5/inf
    assert c.nan_mismatch == 4 and c.overall.mismatched == 4
    assert c.overall.max_abs == 0.0 and c.worst_index is None  # no finite pair differs
    both_nan = compare_arrays(np.array([nan, 1.0]), np.array([nan, 1.0]), channel_axis=None)
    assert both_nan.agree and both_nan.nan_mismatch == 0
    json.dumps(c.as_dict(), allow_nan=False)


def test_non_contiguous_and_blocks() -> None:
    rng = np.random.default_rng(5)
    b = rng.standard_normal((3, 800, 500))  # several blocks
    a = b.copy()
    a[2, 799, 499] += 1e-3
    view_a, view_b = a.transpose(1, 2, 0), b.transpose(1, 2, 0)
    c = compare_arrays(view_a, view_b, channel_axis=2)
    assert c.overall.mismatched == 1 and c.channels[2].mismatched == 1
    assert c.worst_index == (799, 499, 2)
    assert c.overall.max_abs == pytest.approx(1e-3)


def test_bad_arguments() -> None:
    with pytest.raises(ParameterError, match=r"\(2, 3\).*\(3, 2\)"):
        compare_arrays(np.ones((2, 3)), np.ones((3, 2)), channel_axis=None)
    for kw in ({"rtol": -1.0}, {"atol": np.nan}, {"rtol": np.inf}, {"atol": "x"}):
        with pytest.raises(ParameterError):
            compare_arrays(np.ones(2), np.ones(2), channel_axis=None, **kw)
    with pytest.raises(ParameterError):
        compare_arrays(np.ones(2), np.ones(2), channel_axis=1)
    with pytest.raises(ParameterError):
        compare_arrays(np.ones(2, complex), np.ones(2), channel_axis=None)


def test_as_dict() -> None:
    c = compare_arrays(np.array([[1.0, 2.0]]), np.array([[1.0, 2.5]]), channel_axis=-1)
    d = json.loads(json.dumps(c.as_dict(), allow_nan=False))
    assert d["agree"] is False and d["worst_index"] == [0, 1] and d["shape"] == [1, 2]
    assert d["channels"][1]["mismatched"] == 1 and d["overall"]["max_rel"] == 0.2


# --- properties ----------------------------------------------------------------------------

finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
any64 = st.floats(allow_subnormal=True) | st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf])


@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=5), elements=finite32))
def test_next_float_is_one_ulp(x: np.ndarray) -> None:
    x = x[np.abs(x) < np.finfo(np.float32).max].reshape(-1)
    y = np.nextafter(x, np.float32(np.inf))
    c = compare_arrays(y, x, channel_axis=None)
    assert c.overall.max_ulp == (1 if x.size else 0)
    assert compare_arrays(x, x, channel_axis=None).overall.max_ulp == 0


@settings(max_examples=80, deadline=None)
@given(
    pair=hnp.array_shapes(max_dims=2, max_side=6).flatmap(
        lambda s: st.tuples(
            hnp.arrays(np.float64, s, elements=any64), hnp.arrays(np.float64, s, elements=any64)
        )
    ),
    rtol=st.sampled_from([0.0, 1e-5, 0.5]),
    atol=st.sampled_from([0.0, 1e-6, 1.0]),
)
def test_mismatch_count_matches_numpy_isclose(
    pair: tuple[np.ndarray, np.ndarray], rtol: float, atol: float
) -> None:
    a, b = pair
    with np.errstate(over="ignore", invalid="ignore"):
        expected = np.count_nonzero(~np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
    c = compare_arrays(a, b, channel_axis=None, rtol=rtol, atol=atol)
    assert c.overall.mismatched == expected
    assert c.agree == (expected == 0)
