"""Mapping LRN output to [0, 1] for display or saving as an image (:func:`rescale`).

Part of :mod:`lrn_cli.images`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lrn_cli.errors import ParameterError

if TYPE_CHECKING:
    pass
from lrn_cli.image_read import _check_value_range


def rescale(
    values: np.ndarray,
    method: str = "minmax",
    *,
    per_channel: bool = True,
    percentiles: Sequence[float] = (1.0, 99.0),
    value_range: str = "unit",
    bit_depth: int = 8,
) -> np.ndarray:
    """Map LRN output to [0, 1] for display or saving as an image.

    LRN shrinks values by a data-dependent factor, so its output rarely spans the input's
    range; stretching it (``minmax``/``percentile``) makes the result visible, while
    ``none`` keeps the absolute scale for comparison with the input.

    Parameters
    ----------
    values
        ``(H, W, C)`` (or ``(H, W)``, one channel).
    method
        ``"minmax"``: ``(v - min) / (max - min)``, exactly 0 and 1 at the extremes.
        ``"percentile"``: the same with the given percentiles, values beyond them clipped.
        ``"none"``: values read in `value_range` (unit as is, byte / 255, raw / 255 or
        / 65535 by `bit_depth`; float images, bit depth 32, as is), clipped to [0, 1].
        A constant channel (max == min) cannot be stretched and is mapped as by ``"none"``,
        so a black image stays black instead of turning mid-grey.
    per_channel
        Compute the statistics of each channel (last axis) separately, rather than once
        over all values (which keeps the balance between colours).
    percentiles
        Low and high percentiles for ``"percentile"``, ``0 <= low < high <= 100``.
    value_range
        The scale `values` are in (see the module docstring).
    bit_depth
        8, 16 or 32; used by ``"none"`` with ``value_range="raw"``.

    Returns
    -------
    numpy.ndarray
        float32 in [0, 1], same shape as `values`. Statistics ignore NaN and infinities;
        NaN maps to 0, +inf to 1 and -inf to 0.

    Raises
    ------
    ParameterError
        Unknown method or value range, bad percentiles, or unsupported bit depth.
    """
    if method not in ("minmax", "percentile", "none"):
        raise ParameterError(f"rescale method must be minmax, percentile or none, not {method!r}")
    _check_value_range(value_range)
    if bit_depth not in (8, 16, 32):
        raise ParameterError(f"bit depth must be 8, 16 or 32, not {bit_depth!r}")
    low_pct, high_pct = _check_percentiles(percentiles) if method == "percentile" else (0, 100)
    absolute_scale = _absolute_scale(value_range, bit_depth)
    values = np.asarray(values)
    if method != "percentile" and values.ndim in (2, 3) and values.size:
        return _rescale_fast(values, method, per_channel, absolute_scale)
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 0:
        raise ParameterError("rescale needs an array, not a scalar")
    out = np.empty(data.shape, dtype=np.float64)
    groups = range(data.shape[-1]) if per_channel and data.ndim == 3 else [None]
    for channel in groups:
        part = data if channel is None else data[..., channel]
        target = out if channel is None else out[..., channel]
        if method == "none":
            target[...] = part / absolute_scale
            continue
        finite = part[np.isfinite(part)]
        if finite.size == 0:
            lo = hi = 0.0
        elif method == "minmax":
            lo, hi = float(finite.min()), float(finite.max())
        else:
            lo, hi = (float(p) for p in np.percentile(finite, [low_pct, high_pct]))
        if hi > lo:
            target[...] = (part - lo) / (hi - lo)
        else:
            target[...] = part / absolute_scale
    np.clip(out, 0.0, 1.0, out=out)
    np.nan_to_num(out, copy=False, nan=0.0)
    return out.astype(np.float32)


def _rescale_fast(values: np.ndarray, method: str, per_channel: bool,
                  absolute_scale: float) -> np.ndarray:
    """``minmax``/``none`` of :func:`rescale` in two passes of a Numba kernel (the same
    float64 arithmetic as the NumPy formulas, without their temporaries)."""
    from lrn_cli import _image_kernels as kernels

    cube = values if values.ndim == 3 else values[..., np.newaxis]
    if cube.dtype.kind not in "fiu" or cube.dtype.itemsize > 8 or not cube.dtype.isnative:
        cube = cube.astype(np.float64)
    per_channel = per_channel and values.ndim == 3
    lo, hi = _unit_ranges(cube, method, per_channel)
    out = np.empty_like(cube, dtype=np.float32)
    kernels.to_unit(cube, out, lo, hi, absolute_scale, per_channel)
    return out if values.ndim == 3 else out[..., 0]


def _absolute_scale(value_range: str, bit_depth: int) -> float:
    """What ``rescale(..., "none")`` divides values in ``value_range`` by (raw codes by
    their bit depth's top code; float images, bit depth 32, as they are)."""
    if value_range == "raw" and bit_depth != 32:
        return 255.0 if bit_depth == 8 else 65535.0
    return {"unit": 1.0, "byte": 255.0, "raw": 1.0}[value_range]


def _unit_ranges(cube: np.ndarray, method: str,
                 per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ``lo`` and ``hi`` the ``to_unit``/``unit_codes`` kernels take for ``minmax`` or
    ``none`` of an ``(H, W, C)`` array: each channel's (or, without ``per_channel``, all
    values') smallest and largest finite value, 0 and 0 where there is none (as the NumPy
    formula of :func:`rescale`), and zeros for ``none``."""
    groups = cube.shape[2] if per_channel else 1
    lo = np.zeros(groups)
    hi = np.zeros(groups)
    if method == "minmax":
        from lrn_cli import _image_kernels as kernels

        kernels.finite_range(cube, lo, hi, per_channel)
        none = lo > hi  # no finite value
        lo[none] = hi[none] = 0.0
    return lo, hi


def _fast_float32(values: np.ndarray, method: str, value_range: str, bit_depth: int) -> bool:
    """Whether the one-pass kernels can map ``values`` as :func:`rescale` does: a native
    float32 ``(H, W, C)`` array, ``minmax`` or ``none``, a known range and bit depth."""
    return (method in ("minmax", "none") and value_range in ("unit", "byte", "raw")
            and bit_depth in (8, 16, 32) and values.ndim == 3 and values.size > 0
            and values.dtype == np.float32 and values.dtype.isnative)


def _check_percentiles(percentiles: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ParameterError(f"percentiles must be two numbers, not {percentiles!r}") from None
    if not (0.0 <= low < high <= 100.0):
        raise ParameterError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    return low, high

