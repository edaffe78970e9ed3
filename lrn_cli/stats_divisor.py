"""Figures of the LRN divisor ``D`` and of the gain ``D**-beta`` it implies (whole arrays
and slab by slab), for the statistics tables of :mod:`lrn_cli.stats`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lrn_cli._stats_common import _block_slices, _check_real, _chunks, _json_value
from lrn_cli.errors import ParameterError


@dataclass(frozen=True)
class DivisorStats:
    """Range of the LRN divisor ``D`` and of the gain ``D**-beta`` LRN multiplied values by.

    The gain shows the inhibition directly: 1 means untouched, 0.5 means halved.  Computed over
    the finite values of ``D``; gains only over the finite positive ones (others have no gain).
    Undefined figures are NaN.
    """

    d_min: float
    d_max: float
    d_mean: float
    gain_min: float
    gain_max: float
    gain_mean: float
    beta: float

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-safe dict (NaN/Inf become None)."""
        return {k: _json_value(v) for k, v in asdict(self).items()}


def divisor_stats(d: np.ndarray, beta: float) -> DivisorStats:
    """Summarize an LRN divisor array ``d`` and the gain ``d**-beta`` it implies.

    Parameters
    ----------
    d
        The divisor ``k + alpha * (sum of squares)`` (before the power), any real dtype/layout.
    beta
        The LRN exponent (finite).

    Returns
    -------
    DivisorStats

    Raises
    ------
    ParameterError
        If ``beta`` is not finite or ``d`` is not real numeric.
    """
    d = _check_real(d, "divisor")
    try:
        beta = float(beta)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"beta must be a number, not {beta!r}") from exc
    if not math.isfinite(beta):
        raise ParameterError(f"beta must be finite, not {beta}")
    return _divisor_result(_divisor_sums(d, beta), beta)


def _divisor_sums(d: np.ndarray, beta: float) -> np.ndarray:
    """(n, sum, min, max, gain n, gain sum, gain min, gain max) of the finite ``d`` and of
    the finite gains ``d**-beta`` of its positive values: sums, so slabs merge exactly."""
    if d.dtype.kind == "f" and d.dtype.itemsize in (4, 8) and d.dtype.isnative and d.size:
        from lrn_cli import _stats_kernels as K

        flat = np.ravel(d, order="K")  # a view when d is contiguous in any axis order
        part = K.divisor_sums(flat, beta, _chunks())
        for ch in np.flatnonzero(part[:, 0] < 0):  # chunks with values to leave out
            i0, i1 = K.chunk_bounds(int(ch), part.shape[0], flat.size)
            part[ch] = _numpy_divisor_sums(flat[i0:i1], beta)
        return np.array([part[:, 0].sum(), part[:, 1].sum(), part[:, 2].min(),
                         part[:, 3].max(), part[:, 4].sum(), part[:, 5].sum(),
                         part[:, 6].min(), part[:, 7].max()])
    sums = _no_divisor_sums()
    for idx in _block_slices(d.shape, None):
        sums = _merge_divisor_sums(sums, _numpy_divisor_sums(d[idx], beta))
    return sums


def _numpy_divisor_sums(d: np.ndarray, beta: float) -> np.ndarray:
    """:func:`_divisor_sums` of one block with NumPy (float64)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        b = np.asarray(d, dtype=np.float64).ravel()
        b = b[np.isfinite(b)]
        if b.size == 0:
            return _no_divisor_sums()
        pos = b[b > 0]
        refined = d.dtype.kind == "f" and d.dtype.itemsize == 4 and beta in (0.75, 0.5)
        if refined:  # the kernel's float32 estimates refined in float64 (_lane_gain)
            p32 = pos.astype(np.float32)
            if beta == 0.75:
                q = np.sqrt(p32)
                g = (np.float32(1.0) / (q * np.sqrt(q))).astype(np.float64)
                g2 = g * g
                e = 1.0 - pos * pos * pos * (g2 * g2)
                g = g + g * (e * (0.25 + e * 0.15625))
            else:
                g = (np.float32(1.0) / np.sqrt(p32)).astype(np.float64)
                e = 1.0 - pos * (g * g)
                g = g + g * (e * (0.5 + e * 0.375))
        elif beta in (0.75, 0.5):  # the kernel's closed forms, so chunks agree
            g = _numpy_closed_gain(pos, beta)
        else:
            g = np.power(pos, -beta)
        g = g[np.isfinite(g)]
        if refined and g.size:  # the extremes from the closed form, as the kernel does
            gmin, gmax = (float(v) for v in _numpy_closed_gain(np.array([pos.max(), pos.min()]),
                                                               beta))
        else:
            gmin, gmax = g.min(initial=math.inf), g.max(initial=-math.inf)
        return np.array([b.size, b.sum(), b.min(), b.max(), g.size, g.sum(), gmin, gmax])


def _numpy_closed_gain(v: np.ndarray, beta: float) -> np.ndarray:
    """The float64 closed form of ``v ** -beta`` for beta 0.75 or 0.5 (monotone)."""
    if beta == 0.75:
        q = np.sqrt(v)
        return 1.0 / (q * np.sqrt(q))
    return 1.0 / np.sqrt(v)


def _no_divisor_sums() -> np.ndarray:
    """The (n, sum, min, max) of D and of the gain over no values: what merging starts from."""
    return np.array([0.0, 0.0, math.inf, -math.inf, 0.0, 0.0, math.inf, -math.inf])


def _merge_divisor_sums(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3]),
                     a[4] + b[4], a[5] + b[5], min(a[6], b[6]), max(a[7], b[7])])


def _divisor_result(sums: np.ndarray, beta: float) -> DivisorStats:
    n, total, dmin, dmax, ng, gtotal, gmin, gmax = (float(v) for v in sums)
    nan = math.nan
    return DivisorStats(
        d_min=dmin if n else nan,
        d_max=dmax if n else nan,
        d_mean=total / n if n else nan,
        gain_min=gmin if ng else nan,
        gain_max=gmax if ng else nan,
        gain_mean=gtotal / ng if ng else nan,
        beta=beta,
    )


class DivisorAccumulator:
    """:func:`divisor_stats` of a divisor seen one slab at a time (sums merge exactly)."""

    def __init__(self, beta: float) -> None:
        self.beta = float(beta)
        self._sums = _no_divisor_sums()

    def add(self, d: np.ndarray) -> None:
        """Merge one slab of the divisor."""
        d = _check_real(d, "divisor")
        self._sums = _merge_divisor_sums(self._sums, _divisor_sums(d, self.beta))

    def result(self) -> DivisorStats:
        """The divisor statistics of everything added."""
        return _divisor_result(self._sums, self.beta)
