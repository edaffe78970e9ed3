"""The porting vocabulary: semantics, equivalents and differences (lrn_cli.porting.semantics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrn_cli import lrn
from lrn_cli.conventions import CONVENTIONS, resolve
from lrn_cli.errors import ParameterError
from lrn_cli.porting.semantics import (
    Semantics,
    convention_semantics,
    differences,
    equivalents,
)

CASES = [(name, mode, size) for name, conv in CONVENTIONS.items() for mode in conv.modes
         for size in (1, 2, 3, 4, 5, 6, 9)
         if size % 2 == 1 or conv.modes[mode].even_window is not None]


def _ulps(a: float, b: float) -> float:
    return abs(a - b) / math.ulp(max(abs(a), abs(b))) if a != b else 0.0


@pytest.mark.parametrize(("name", "mode", "size"), CASES)
def test_every_equivalent_reads_back_to_the_same_semantics(name, mode, size):
    alpha, beta, k = 3e-4, 0.75, 2.0 if CONVENTIONS[name].modes[mode].uses_k else 1.0
    sem = Semantics.of(name, mode, size, alpha, beta, k)
    eq = equivalents(sem, ndim=4)
    assert set(eq) == set(CONVENTIONS)
    assert eq[name]["params"] is not None, eq[name]["reason"]
    for other, entry in eq.items():
        if entry["params"] is None:
            assert entry["reason"]
            continue
        back = convention_semantics(other, mode, entry["params"])
        assert back.window == sem.window and back.k_eff == sem.k_eff and back.beta == sem.beta
        assert _ulps(back.alpha_eff, sem.alpha_eff) <= 1, (other, entry)
        if back.alpha_eff != sem.alpha_eff:
            assert any("ulp" in note for note in entry["notes"])


@pytest.mark.parametrize(("name", "mode", "size"), CASES[::3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_apply_gives_lrns_bits(name, mode, size, dtype):
    x = (np.random.default_rng(size).standard_normal((2, 7, 5, 6)) * 20).astype(dtype)
    k = 2.0 if CONVENTIONS[name].modes[mode].uses_k else 1.0
    sem = Semantics.of(name, mode, size, 1e-2, 0.75, k)
    want = lrn(x, size, 1e-2, 0.75, k, convention=name, mode=mode)
    np.testing.assert_array_equal(sem.apply(x), want)


def test_apply_takes_any_window_and_any_spatial_pair():
    x = (np.random.default_rng(1).standard_normal((3, 6, 5, 4)) * 5).astype(np.float64)
    sem = Semantics("across", 0, 3, 0.1, 1.5, 0.5, channel_axis=1)
    sq = np.pad(x ** 2, ((0, 0), (0, 3), (0, 0), (0, 0)))
    s = sum(sq[:, j:j + 6] for j in range(4))
    np.testing.assert_allclose(sem.apply(x), x * (1.5 + 0.1 * s) ** -0.5, rtol=1e-13)
    within = Semantics("within", 1, 0, 0.2, 1.0, 0.75, channel_axis=None, spatial_axes=(0, 2))
    y, d = within.apply(x, return_divisor=True)
    moved = np.moveaxis(x, (0, 2), (-2, -1))
    sqm = np.pad(moved ** 2, ((0, 0), (0, 0), (1, 0), (1, 0)))
    box = sqm[..., :-1, :-1] + sqm[..., 1:, :-1] + sqm[..., :-1, 1:] + sqm[..., 1:, 1:]
    want_d = np.moveaxis(1.0 + 0.2 * box, (-2, -1), (0, 2))
    np.testing.assert_allclose(d, want_d, rtol=1e-13)
    np.testing.assert_allclose(y, x * want_d ** -0.75, rtol=1e-13)
    with pytest.raises(ParameterError):
        Semantics("within", 1, 1, 0.2, 1.0, 0.75, channel_axis=None).apply(x)


def test_round_trip_through_the_schema_form():
    sem = Semantics.of("onnx", "across", 4, 1e-4, 0.75, 2.0, channel_axis=3)
    assert Semantics.from_dict(sem.as_dict()) == sem
    assert sem.as_dict() == {"mode": "across", "channel_axis": 3, "window": [1, 2], "taps": 4,
                             "alpha_eff": 2.5e-05, "k_eff": 2.0, "beta": 0.75}
    w = Semantics.of("caffe", "within", 3, 5e-5, 0.75, 1.0)
    assert Semantics.from_dict(w.as_dict()) == w


def test_a_window_beyond_the_axis_is_the_same_lrn():
    sem = Semantics("across", 7, 6, 1e-4, 1.0, 0.75, channel_axis=1)  # 14 taps: even
    assert equivalents(sem)["caffe"]["params"] is None
    caffe = equivalents(sem, axis_length=3)["caffe"]["params"]
    assert caffe is not None
    n = caffe["local_size"]
    r = resolve("caffe", "across", n, caffe["alpha"], 0.75, 1.0)
    assert min(r.lo, 2) == 2 and min(r.hi, 2) == 2 and r.alpha_eff == 1e-4
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 4))
    np.testing.assert_array_equal(sem.apply(x), lrn(x, n, caffe["alpha"], 0.75, 1.0,
                                                    convention="caffe"))


def test_tensorflow_needs_the_last_axis():
    sem = Semantics.of("caffe", "across", 5, 1e-4, 0.75, 1.0, channel_axis=1)
    eq = equivalents(sem, ndim=4)
    assert eq["tensorflow"]["params"] == {"depth_radius": 2, "alpha": 2e-05, "beta": 0.75,
                                          "bias": 1.0}
    assert any("last axis" in note for note in eq["tensorflow"]["notes"])
    assert eq["pytorch"]["notes"] == []


def test_differences_name_the_converter_behaviour():
    ref = Semantics.of("caffe", "across", 5, 5e-4, 0.75, 2.0)
    assert differences(ref, ref) == []
    dropped = differences(ref, Semantics.of("caffe", "across", 5, 5e-4, 0.75, 1.0))
    assert [d.field for d in dropped] == ["k_eff"] and "caffe2ncnn" in dropped[0].text
    undivided = differences(ref, Semantics.of("tensorflow", "across", 5, 5e-4, 0.75, 2.0))
    assert [d.field for d in undivided] == ["alpha_eff"] and "not divided by n" in \
        undivided[0].text
    even = differences(Semantics.of("onnx", "across", 4, 1e-4, 0.75, 1.0),
                       Semantics.of("pytorch", "across", 4, 1e-4, 0.75, 1.0))
    assert [d.field for d in even] == ["window"] and "other side" in even[0].text
    radius = differences(ref, Semantics.of("caffe", "across", 11, 5e-4 * 11 / 5, 0.75, 2.0))
    assert [d.field for d in radius] == ["window"] and "radius" in radius[0].text
    lost = differences(Semantics.of("caffe", "within", 3, 5e-5, 0.75, 1.0),
                       Semantics.of("caffe", "across", 3, 5e-5, 0.75, 1.0))
    assert lost[0].field == "mode" and "WITHIN_CHANNEL" in lost[0].text
    moved = differences(ref, Semantics.of("caffe", "across", 5, 5e-4, 0.75, 2.0,
                                          channel_axis=3))
    assert [d.field for d in moved] == ["channel_axis"]
    assert all(set(d.as_dict()) == {"field", "reference", "candidate", "text"} for d in moved)
