"""Properties LRN must have whatever the data (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lrn_cli import lrn
from lrn_cli.conventions import CONVENTIONS, resolve
from lrn_cli.errors import ParameterError

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)
shapes = hnp.array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=7)
arrays = hnp.arrays(np.float64, shapes, elements=finite)
params = st.fixed_dictionaries({
    "size": st.integers(1, 9),
    "alpha": st.floats(1e-6, 2.0),
    "beta": st.sampled_from([0.5, 0.75, 1.0, 0.3, 1.7]),
    "k": st.floats(0.1, 5.0),
    "mode": st.sampled_from(["across", "within"]),
    "convention": st.sampled_from(sorted(CONVENTIONS)),
})


def _usable(p) -> bool:
    try:
        resolve(p["convention"], p["mode"], p["size"], p["alpha"], p["beta"], p["k"])
    except ParameterError:
        return False
    return True


@settings(max_examples=60, deadline=None)
@given(x=arrays, p=params)
def test_odd_symmetry(x, p):
    """Only x² enters the divisor: lrn(-x) = -lrn(x), bit for bit."""
    assume(_usable(p))
    np.testing.assert_array_equal(lrn(-x, **p), -lrn(x, **p))


@settings(max_examples=40, deadline=None)
@given(x=arrays, p=params, seed=st.integers(0, 2**32 - 1))
def test_within_is_equivariant_under_channel_permutation(x, p, seed):
    p = dict(p, mode="within")
    assume(_usable(p))
    perm = np.random.default_rng(seed).permutation(x.shape[1])
    np.testing.assert_array_equal(lrn(x[:, perm], **p), lrn(x, **p)[:, perm])


@settings(max_examples=40, deadline=None)
@given(x=arrays, p=params, seed=st.integers(0, 2**32 - 1))
def test_across_is_equivariant_under_spatial_permutation(x, p, seed):
    p = dict(p, mode="across")
    assume(_usable(p))
    rng = np.random.default_rng(seed)
    ph = rng.permutation(x.shape[2])
    pw = rng.permutation(x.shape[3])
    np.testing.assert_array_equal(lrn(x[:, :, ph][:, :, :, pw], **p),
                                  lrn(x, **p)[:, :, ph][:, :, :, pw])


@settings(max_examples=40, deadline=None)
@given(x=arrays, size=st.integers(1, 9), beta=st.sampled_from([0.5, 0.75, 1.0, 1.3]),
       mode=st.sampled_from(["across", "within"]))
def test_large_k_scales_by_k_to_the_minus_beta(x, size, beta, mode):
    """k >> a'S: y = x (k + a'S)^-b -> x k^-b (relative deviation ~ b a'S / k)."""
    k = 1e12
    y = lrn(x, size, 1e-4, beta, k, mode=mode)
    np.testing.assert_allclose(y, x * k ** -beta, rtol=1e-9, atol=0)
