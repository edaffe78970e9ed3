"""The across-channel forward kernels' newer paths against the row kernel's bits.

* ``across_rows_contiguous`` writing the divisor (with the result, or alone) in its pass;
* ``across_channels_last``: runs of whole pixels as one flat array, other pixels' channels
  masked out, the first and last pixels copied between zeros;
* Fortran-ordered input viewed as the C-ordered array it transposes.

Each case first checks that the plan takes the path under test, then compares every bit of
the result and the divisor with the general row kernel (``across_rows``, which a strided
output takes), NaN and Inf included, and the result with the NumPy reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from lrn_cli import dispatch, lrn, lrn_divisor
from lrn_cli._jit import BETA_GENERAL, beta_mode
from lrn_cli.conventions import resolve
from lrn_cli.dispatch import plans
from lrn_cli.errors import ParameterError
from lrn_cli.reference import reference_divisor, reference_lrn

TOL = {np.float32: 1e-5, np.float64: 1e-12}
CONVENTIONS = ("pytorch", "onnx", "onednn", "alexnet")  # the window placements


def _windows():
    """(size, convention) for every size up to 8 and every placement of the window (even
    sizes one tap before or after the channel, n - 1 and n + 1 taps)."""
    cases = []
    for size in range(1, 9):
        for conv in CONVENTIONS:
            try:
                r = resolve(conv, "across", size, 1e-2, 0.75, 1.0)
            except ParameterError:
                continue
            if r.taps <= dispatch.ROW_KERNEL_TAPS:
                cases.append((size, conv))
    return cases


def _values(shape, seed, dtype, specials=True):
    """Magnitudes from 1e-3 to 1e3, both signs, a zero channel; with ``specials`` an Inf, a
    -Inf and a NaN at the two ends and in the middle of the array."""
    rng = np.random.default_rng(seed)
    x = 10.0 ** rng.uniform(-3, 3, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    x[:, 0] = 0.0
    if specials:
        flat = x.reshape(-1)
        flat[0], flat[flat.size // 2], flat[-1] = np.inf, np.nan, -np.inf
    return x.astype(dtype)


def _strided(shape, dtype):
    """A zeroed array of ``shape`` whose last axis is strided (the row kernel's outputs)."""
    return np.zeros(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]


def _same(a, b):
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _rel_err(got, want):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(got == want, 0.0, np.abs(got - want) / np.abs(want))
    return float(err.max()) if err.size else 0.0


# ----------------------------------------------------------------------------------------
# the divisor in the contiguous kernel


@pytest.mark.parametrize("span", [17, 4096])
@pytest.mark.parametrize("channels", [1, 2, 5, 9, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_contiguous_kernel_writes_the_row_kernels_divisor(span, channels, dtype, monkeypatch):
    """``lrn(x, return_divisor=True)``, ``out=``/``divisor_out=`` and ``lrn_divisor`` of a
    C-contiguous array take the contiguous kernel (interior channels as spans of ``span``
    outputs: 17 cuts them across channel boundaries; edge channels row by row); strided
    outputs take the row kernel.  Same bits for the result and the divisor."""
    monkeypatch.setattr(dispatch, "SPAN", span)
    x = _values((3, channels, 4, 5), channels, dtype)
    finite = _values((3, channels, 4, 5), channels + 1, dtype, specials=False)
    for size, conv in _windows():
        for beta in (0.75, 0.5):
            kw = dict(size=size, alpha=1e-2, beta=beta, k=1.0, convention=conv)
            (plan,) = plans(x, **kw, divisor=True)
            assert plan.driver == "across_rows_contiguous", plan
            assert plan.params["variant"] == {"WANT_Y": True, "WANT_D": True,
                                              "BMODE": beta_mode(beta)}
            y, d = lrn(x, **kw, return_divisor=True)
            ys, ds = _strided(x.shape, dtype), _strided(x.shape, dtype)
            lrn(x, **kw, out=ys, divisor_out=ds)
            assert _same(y, ys), (size, conv, beta)
            assert _same(d, ds), (size, conv, beta)
            yo, do = np.empty_like(x), np.empty_like(x)
            lrn(x, **kw, out=yo, divisor_out=do)
            assert _same(yo, ys) and _same(do, ds)
            assert _same(lrn(x, **kw), ys)  # the result alone: the same kernel's y variant
            assert _same(lrn_divisor(x, **kw), ds)
            yf, df = lrn(finite, **kw, return_divisor=True)
            assert _rel_err(yf, reference_lrn(finite, **kw)) <= TOL[dtype]
            assert _rel_err(df, reference_divisor(finite, **kw)) <= TOL[dtype]
        # the divisor alone takes the contiguous kernel whatever beta
        for beta in (1.0, 0.6):
            kw = dict(size=size, alpha=1e-2, beta=beta, k=1.0, convention=conv)
            (plan,) = plans(x, **kw, divisor=True, output=False)
            assert plan.driver == "across_rows_contiguous"
            assert plan.params["variant"] == {"WANT_Y": False, "WANT_D": True,
                                              "BMODE": BETA_GENERAL}
            ds = _strided(x.shape, dtype)
            lrn_divisor(x, **kw, out=ds)
            assert _same(lrn_divisor(x, **kw), ds), (size, conv, beta)


def test_contiguous_divisor_keeps_the_row_kernel_for_other_betas():
    """Result and divisor with a beta the contiguous kernel has no closed form for: the row
    kernel (the plan says so; the bits are the divisor alone's)."""
    x = _values((2, 6, 4, 5), 0, np.float32)
    (plan,) = plans(x, 5, 1e-2, 1.0, 1.0, divisor=True)
    assert plan.driver == "across_rows"
    y, d = lrn(x, 5, 1e-2, 1.0, 1.0, return_divisor=True)
    assert _same(d, lrn_divisor(x, 5, 1e-2, 1.0, 1.0))
    assert _same(y, lrn(x, 5, 1e-2, 1.0, 1.0))


# ----------------------------------------------------------------------------------------
# channels last


def _nchw_bits(nhwc, kw):
    """Result and divisor of the channels-first copy of ``nhwc`` (N, H, W, C) through the
    row kernel (strided outputs), back in NHWC order."""
    nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    ys, ds = _strided(nchw.shape, nchw.dtype), _strided(nchw.shape, nchw.dtype)
    lrn(nchw, **kw, out=ys, divisor_out=ds)
    return ys.transpose(0, 2, 3, 1), ds.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("items", [1, 64])
@pytest.mark.parametrize("channels", [2, 3, 5, 8, 17, 96])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channels_last_kernel_gives_the_row_kernels_bits(items, channels, dtype,
                                                         monkeypatch):
    """NHWC input: whole blocks of pixels as one flat run (``items=1``: one block of 8K
    values holding the first and the last pixel; 64: small blocks), edge channels masked,
    the first and last pixels through zero-padded copies, any beta (0.75 and 0.5 in one
    loop, others through scratch sums), result, divisor or both: the row kernel's bits."""
    monkeypatch.setattr(dispatch, "PIXEL_BLOCK_ITEMS", items)
    x = _values((2, 20, 25, channels), channels, dtype)
    finite = _values((2, 4, 5, channels), channels + 1, dtype, specials=False)
    for size, conv in _windows():
        for beta in (0.75, 0.5, 1.0, 0.6):
            kw = dict(size=size, alpha=1e-2, beta=beta, k=1.0, convention=conv,
                      channel_axis=-1)
            (plan,) = plans(x, **kw, divisor=True)
            assert plan.driver == "across_channels_last", plan
            fused = beta in (0.75, 0.5)
            assert plan.params["variant"]["BMODE"] == (beta_mode(beta) if fused
                                                       else BETA_GENERAL)
            y, d = lrn(x, **kw, return_divisor=True)
            ys, ds = _nchw_bits(x, {k: v for k, v in kw.items() if k != "channel_axis"})
            assert _same(y, ys), (size, conv, beta)
            assert _same(d, ds), (size, conv, beta)
            assert _same(lrn(x, **kw), ys), (size, conv, beta)
            assert _same(lrn_divisor(x, **kw), ds), (size, conv, beta)
            yf = lrn(finite, **kw)
            assert _rel_err(yf, reference_lrn(finite, **kw)) <= TOL[dtype]


@pytest.mark.parametrize("pixels,channels", [(2, 2), (3, 2), (2, 3), (3, 3), (2, 7), (4, 5)])
def test_channels_last_kernel_on_a_few_pixels(pixels, channels):
    """So few pixels that the first and last are neighbours or that a window reaches past
    both ends of the array (2 channels, 8 taps): pixels through the zero-padded copy."""
    x = _values((1, pixels, channels), 7, np.float32)  # (1, pixels, C): channels last
    first = np.ascontiguousarray(x.transpose(0, 2, 1))
    for size, conv in _windows():
        kw = dict(size=size, alpha=1e-2, beta=0.75, k=1.0, convention=conv)
        (plan,) = plans(x, **kw, channel_axis=-1, divisor=True)
        assert plan.driver == "across_channels_last"
        y, d = lrn(x, **kw, channel_axis=-1, return_divisor=True)
        ys, ds = _strided(first.shape, first.dtype), _strided(first.shape, first.dtype)
        lrn(first, **kw, out=ys, divisor_out=ds)
        assert _same(y, ys.transpose(0, 2, 1)), (size, conv)
        assert _same(d, ds.transpose(0, 2, 1)), (size, conv)


# ----------------------------------------------------------------------------------------
# Fortran order and transposed views: the C-ordered array they are


@pytest.mark.parametrize("batch", [3, 8, 20])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fortran_and_transposed_inputs_are_viewed_in_memory_order(batch, dtype):
    """A Fortran-ordered NCHW array is the C-ordered (W, H, C, N) array transposed, and an
    NCHW view of NHWC memory is NHWC: each becomes one view in memory order (not one per
    sample and column) and takes that order's kernel, with the bits of the C-ordered
    NCHW array, for fresh outputs and for outputs in either order."""
    c_order = _values((batch, 10, 6, 7), batch, dtype)
    fortran = np.asfortranarray(c_order)
    nhwc_view = np.ascontiguousarray(c_order.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for size, conv in [(5, "pytorch"), (4, "onnx"), (8, "pytorch"), (3, "alexnet")]:
        kw = dict(size=size, alpha=1e-2, beta=0.75, k=1.0, convention=conv)
        y_want, d_want = lrn(c_order, **kw, return_divisor=True)
        found = plans(fortran, **kw, divisor=True)
        assert len(found) == 1
        if batch >= dispatch.CONTIGUOUS_MIN_INNER:  # rows of `batch` values, C-contiguous
            assert found[0].driver == "across_rows_contiguous", found[0]
        else:  # viewed channels last: planar copies (<= 64 channels)
            assert found[0].driver == "planar", found[0]
        (plan,) = plans(nhwc_view, **kw, divisor=True)
        assert plan.driver == "across_channels_last"
        for x in (fortran, nhwc_view):
            y, d = lrn(x, **kw, return_divisor=True)
            assert y.strides == x.strides  # the input's layout, as before
            assert _same(y, y_want) and _same(d, d_want), (size, conv)
            assert _same(lrn(x, **kw), y_want) and _same(lrn_divisor(x, **kw), d_want)
            yc, dc = np.empty_like(c_order), np.empty_like(c_order)  # C order: no reorder
            lrn(x, **kw, out=yc, divisor_out=dc)
            assert _same(yc, y_want) and _same(dc, d_want)
