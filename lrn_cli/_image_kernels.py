"""Private Numba kernels for :mod:`lrn_cli.images`: display rescaling and quantisation.

Each is one pass over an ``(H, W, C)`` array of any strides (the pixel arrays are planar
behind an ``(H, W, C)`` view, see ``images._as_float``), with the same arithmetic as the
NumPy formulas they replace: float64 maths, ``np.rint`` (half to even), NaN to 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from lrn_cli._jit import KERNEL_OPTIONS as _OPTS


@njit(**_OPTS)
def finite_range(values, lo, hi, per_channel):
    """Smallest and largest finite value of each channel (or of all, into index 0);
    ``lo > hi`` (inf, -inf) when there is none."""
    height, width, channels = values.shape
    for c in range(lo.shape[0]):
        lo[c] = np.inf
        hi[c] = -np.inf
    for c in range(channels):
        g = c if per_channel else 0
        low = lo[g]
        high = hi[g]
        for h in range(height):
            for w in range(width):
                v = np.float64(values[h, w, c])
                if np.isfinite(v):
                    low = v if v < low else low
                    high = v if v > high else high
        lo[g] = low
        hi[g] = high


@njit(inline="always", **_OPTS)
def _unit_span(lo, hi, g, scale):
    """``(low, span)`` of channel group ``g``: its range, or ``(0, scale)`` where ``hi <= lo``
    (inlined by Numba: no function of its own to compile on a first run)."""
    stretch = hi[g] > lo[g]
    return (lo[g] if stretch else 0.0), ((hi[g] - lo[g]) if stretch else scale)


@njit(inline="always", **_OPTS)
def _unit_value(v, low, span):
    """``clip((v - low) / span, 0, 1)`` with NaN to 0, in float64 (inlined as above)."""
    u = (v - low) / span
    u = 0.0 if u < 0.0 else u
    u = 1.0 if u > 1.0 else u
    return 0.0 if np.isnan(u) else u


@njit(**_OPTS)
def to_unit(values, out, lo, hi, scale, per_channel):
    """``out = clip((v - lo) / (hi - lo), 0, 1)`` per channel group (``v / scale`` where
    ``hi <= lo``), NaN to 0, in float64 rounded to ``out``'s dtype."""
    height, width, channels = values.shape
    for c in range(channels):
        low, span = _unit_span(lo, hi, c if per_channel else 0, scale)
        for h in range(height):
            for w in range(width):
                out[h, w, c] = _unit_value(np.float64(values[h, w, c]), low, span)


@njit(**_OPTS)
def quantize(values, out, top):
    """``out = rint(clip(v, 0, 1) * top)`` with NaN to 0 (``out`` an unsigned integer array)."""
    height, width, channels = values.shape
    for h in range(height):
        for w in range(width):
            for c in range(channels):
                u = np.float64(values[h, w, c])
                u = 0.0 if np.isnan(u) else u
                u = 0.0 if u < 0.0 else u
                u = 1.0 if u > 1.0 else u
                out[h, w, c] = np.rint(u * top)


@njit(**_OPTS)
def unit_codes(values, out, lo, hi, scale, per_channel, top):
    """:func:`to_unit` then :func:`quantize` in one pass: the float32 display value of
    ``to_unit`` (rounded to float32 as it stores it) becomes ``rint(u * top)`` in ``out``
    (an unsigned integer array), bit for bit what the two passes write."""
    height, width, channels = values.shape
    for c in range(channels):
        low, span = _unit_span(lo, hi, c if per_channel else 0, scale)
        for h in range(height):
            for w in range(width):
                u = _unit_value(np.float64(values[h, w, c]), low, span)
                out[h, w, c] = np.rint(np.float64(np.float32(u)) * top)
