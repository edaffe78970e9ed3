"""Statistics that show what LRN did to an array, for before/after tables and CSV manifests.

LRN divides every value by a positive divisor that grows with the energy of its neighbourhood,
so it changes the *scale* of an array as much as its *shape*.  Absolute figures (mean, std, min,
max) therefore cannot be compared directly before and after; the contrast and sparsity figures
below are ratios, invariant to a positive rescaling ``x -> c * x``, so they isolate what LRN did
to the relative structure of the activations.

Definitions (all computed in float64 over the *finite* values; ``n`` is their number)
--------------------------------------------------------------------------------------
mean, std, min, max
    Usual figures; ``std`` is the population standard deviation (``ddof=0``).
rms_contrast
    ``std / mean(|x|)``: the coefficient of variation of the magnitudes.  NaN when
    ``mean(|x|) == 0``.
michelson_contrast
    ``(max|x| - min|x|) / (max|x| + min|x|)`` over magnitudes, in ``[0, 1]``.  NaN when the
    denominator is 0 (every value is 0).
hoyer_sparsity
    ``(sqrt(n) - L1 / L2) / (sqrt(n) - 1)`` (Hoyer, 2004), in ``[0, 1]``: 0 when every value has
    the same magnitude, 1 when exactly one value is nonzero.  NaN when ``L2 == 0`` or ``n == 1``.
channel_dominance
    Whole-array only, needs a channel axis with ``C >= 2``.  At every position of the other axes
    (a "pixel"), ``max_c |x_c| / sum_c |x_c|``, averaged over the pixels whose sum is positive and
    finite (pixels holding a non-finite value are skipped).  It lies in ``[1/C, 1]``: ``1/C`` when
    all channels are equal, 1 when one channel wins everywhere.  Cross-channel LRN that inhibits
    makes the activations more winner-take-all, so it should raise this figure.
nonfinite
    NaN and +-Inf values are left out of every statistic and counted here instead.

The arrays can be hundreds of megabytes, so they are never converted to float64 in one piece:
they are walked in blocks of about half a million elements and the figures are merged
(Chan et al.'s pairwise update for the variance).  float64 inputs whose squares would overflow
or underflow (magnitudes beyond ~1e150 or all below ~1e-120) are scanned a second time scaled by
an exact power of two, so every figure stays accurate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lrn_cli.errors import ParameterError

__all__ = [
    "STAT_NAMES",
    "STAT_DEFINITIONS",
    "ChannelStats",
    "ArrayStats",
    "DivisorStats",
    "array_stats",
    "divisor_stats",
    "comparison_rows",
    "flat_record",
]

STAT_NAMES: tuple[str, ...] = (
    "mean",
    "std",
    "min",
    "max",
    "rms_contrast",
    "michelson_contrast",
    "hoyer_sparsity",
)
"""Per-channel statistics, in display order."""

STAT_DEFINITIONS: dict[str, str] = {
    "mean": "mean of the finite values",
    "std": "population standard deviation (ddof=0) of the finite values",
    "min": "smallest finite value",
    "max": "largest finite value",
    "rms_contrast": "std / mean(|x|): scale-free spread of the magnitudes (NaN if all zero)",
    "michelson_contrast": "(max|x| - min|x|) / (max|x| + min|x|) over magnitudes, 0..1",
    "hoyer_sparsity": (
        "(sqrt(n) - L1/L2) / (sqrt(n) - 1): 0 = all magnitudes equal, 1 = a single nonzero"
    ),
    "channel_dominance": (
        "mean over pixels of max_c|x_c| / sum_c|x_c|: 1/C = channels equal, 1 = winner-take-all"
    ),
    "nonfinite": "number of NaN/Inf values (left out of every statistic)",
    "divisor_min": "smallest LRN divisor D = (k + alpha * sum of squares)",
    "divisor_max": "largest LRN divisor D",
    "divisor_mean": "mean LRN divisor D",
    "gain_min": "smallest gain D**-beta, the factor LRN multiplied a value by (most inhibited)",
    "gain_max": "largest gain D**-beta (least inhibited)",
    "gain_mean": "mean gain D**-beta",
}
"""One-line human definitions of every statistic, for ``--help`` and the README."""

_BLOCK = 1 << 19
"""Elements per block: 4 MiB in float64, small enough for cache, big enough for NumPy."""


def _json_float(v: float) -> float | None:
    """Return ``v`` as a float, or None when it is NaN/Inf (JSON has no such numbers)."""
    v = float(v)
    return v if math.isfinite(v) else None


def _json_value(v: Any) -> Any:
    """Make a dataclass field JSON-safe (floats via `_json_float`, tuples as lists)."""
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, tuple):
        return [_json_value(i) for i in v]
    return v


def _check_real(x: Any, name: str = "array") -> np.ndarray:
    """Return ``x`` as an ndarray, refusing dtypes that have no real order (complex, object)."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise ParameterError(f"{name} must have a real numeric dtype, not {a.dtype}")
    return a


def _normalize_axis(axis: int | None, ndim: int) -> int | None:
    """Turn a possibly negative axis into ``0 <= axis < ndim``, or raise ParameterError."""
    if axis is None:
        return None
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ParameterError(f"channel_axis must be an integer or None, not {axis!r}")
    if not -ndim <= axis < ndim:
        raise ParameterError(f"channel_axis {axis} is out of range for a {ndim}-d array")
    return int(axis) % ndim


def _block_slices(
    shape: tuple[int, ...], keep: int | None, max_elems: int = _BLOCK
) -> Iterator[tuple[slice, ...]]:
    """Yield index tuples cutting an array of ``shape`` into blocks of about ``max_elems``.

    The blocks keep every axis (integers are never used, so the ``keep`` axis stays where it
    was) and never cut the ``keep`` axis, so a block always holds whole channel vectors.
    Leading axes are cut first, which keeps blocks of C-ordered arrays contiguous.
    """
    size = math.prod(shape)
    if size == 0:
        return
    outer: list[int] = []
    split: int | None = None
    step = 1
    rest = size
    for ax, n in enumerate(shape):
        if ax == keep:
            continue
        if rest <= max_elems:
            break
        after = rest // n
        if after <= max_elems:
            split, step = ax, max(1, max_elems // after)
            break
        outer.append(ax)
        rest = after
    full = [slice(None)] * len(shape)
    for pos in np.ndindex(*(shape[ax] for ax in outer)):
        idx = list(full)
        for ax, i in zip(outer, pos, strict=True):
            idx[ax] = slice(i, i + 1)
        if split is None:
            yield tuple(idx)
            continue
        for start in range(0, shape[split], step):
            idx[split] = slice(start, start + step)
            yield tuple(idx)


@dataclass(frozen=True)
class ChannelStats:
    """Statistics of one channel (or of the whole array), see the module docstring.

    ``count`` is the number of finite values the figures were computed from and ``nonfinite`` the
    number of NaN/Inf values left out.  Figures that are undefined (no finite value, zero
    denominators) are NaN.
    """

    mean: float
    std: float
    min: float
    max: float
    rms_contrast: float
    michelson_contrast: float
    hoyer_sparsity: float
    nonfinite: int
    count: int

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-safe dict (NaN/Inf become None)."""
        return {k: _json_value(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ArrayStats:
    """Statistics of a whole array and of each of its channels.

    ``channels`` is empty and ``channel_dominance`` None when there is no channel axis;
    ``channel_dominance`` is also None when there is a single channel and NaN when no pixel
    qualifies (all zero or non-finite).
    """

    overall: ChannelStats
    channels: tuple[ChannelStats, ...]
    channel_dominance: float | None
    shape: tuple[int, ...]
    dtype: str
    channel_axis: int | None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (NaN/Inf become None, tuples become lists)."""
        return {
            "shape": list(self.shape),
            "dtype": self.dtype,
            "channel_axis": self.channel_axis,
            "overall": self.overall.as_dict(),
            "channel_dominance": (
                None if self.channel_dominance is None else _json_float(self.channel_dominance)
            ),
            "channels": [c.as_dict() for c in self.channels],
        }


class _Moments:
    """Per-channel running sums, merged block after block (vectors of length C)."""

    def __init__(self, nch: int) -> None:
        self.n = np.zeros(nch, np.int64)
        self.nonfinite = np.zeros(nch, np.int64)
        self.mean = np.zeros(nch)
        self.m2 = np.zeros(nch)
        self.min = np.full(nch, np.inf)
        self.max = np.full(nch, -np.inf)
        self.l1 = np.zeros(nch)
        self.l2sq = np.zeros(nch)
        self.amin = np.full(nch, np.inf)
        self.amax = np.full(nch, -np.inf)

    def add(self, b: np.ndarray, a: np.ndarray, fin: np.ndarray | None, axes: Any) -> None:
        """Merge a float64 block ``b`` (``a = |b|``, ``fin`` its finite mask or None if all are).

        Non-finite entries of ``b``/``a`` must already be replaced by 0 when ``fin`` is given.
        """
        kd: dict[str, Any] = {"axis": axes, "keepdims": True}
        if fin is None:
            nb = np.full(self.n.shape, b.size // self.n.size, np.int64)
            mn, mx = np.min(b, **kd), np.max(b, **kd)
            amin, amax = np.min(a, **kd), np.max(a, **kd)
        else:
            nb = np.asarray(np.count_nonzero(fin, axis=axes), np.int64).reshape(-1)
            w: dict[str, Any] = {**kd, "where": fin}
            mn, mx = np.min(b, initial=np.inf, **w), np.max(b, initial=-np.inf, **w)
            amin, amax = np.min(a, initial=np.inf, **w), np.max(a, initial=-np.inf, **w)
            self.nonfinite += b.size // self.n.size - nb
        s = np.sum(b, **kd)
        mean_b = s / np.maximum(nb, 1).reshape(s.shape)
        d = b - mean_b
        if fin is not None:
            d = np.where(fin, d, 0.0)
        m2_b = np.sum(d * d, **kd).reshape(-1)
        mean_b = mean_b.reshape(-1)
        n_tot = self.n + nb
        delta = mean_b - self.mean
        frac = np.divide(nb, n_tot, out=np.zeros(n_tot.shape), where=n_tot > 0)
        self.m2 += m2_b + delta * delta * self.n * frac
        self.mean += delta * frac
        self.n = n_tot
        self.min = np.minimum(self.min, mn.reshape(-1))
        self.max = np.maximum(self.max, mx.reshape(-1))
        self.amin = np.minimum(self.amin, amin.reshape(-1))
        self.amax = np.maximum(self.amax, amax.reshape(-1))
        self.l1 += np.sum(a, **kd).reshape(-1)
        self.l2sq += np.sum(b * b, **kd).reshape(-1)

    def channel(self, i: int, exp: int = 0) -> ChannelStats:
        """Return the finished statistics of channel ``i`` (sums scaled by ``2**-exp``)."""
        return _finish(
            int(self.n[i]), int(self.nonfinite[i]), float(self.mean[i]), float(self.m2[i]),
            float(self.min[i]), float(self.max[i]), float(self.l1[i]), float(self.l2sq[i]),
            float(self.amin[i]), float(self.amax[i]), exp,
        )  # fmt: skip

    def overall(self, exp: int = 0) -> ChannelStats:
        """Return the statistics of all channels merged together."""
        n = int(self.n.sum())
        nonfinite = int(self.nonfinite.sum())
        if n == 0:
            return _finish(0, nonfinite, 0.0, 0.0, np.inf, -np.inf, 0.0, 0.0, np.inf, -np.inf)
        mean = float(np.dot(self.n, self.mean) / n)
        dev = self.mean - mean
        m2 = float(self.m2.sum() + np.dot(self.n, dev * dev))
        return _finish(
            n, nonfinite, mean, m2, float(self.min.min()), float(self.max.max()),
            float(self.l1.sum()), float(self.l2sq.sum()), float(self.amin.min()),
            float(self.amax.max()), exp,
        )  # fmt: skip


def _ldexp(v: float, exp: int) -> float:
    """``v * 2**exp`` without OverflowError (inf instead)."""
    try:
        return math.ldexp(v, exp)
    except OverflowError:
        return math.copysign(math.inf, v)


def _finish(
    n: int,
    nonfinite: int,
    mean: float,
    m2: float,
    vmin: float,
    vmax: float,
    l1: float,
    l2sq: float,
    amin: float,
    amax: float,
    exp: int = 0,
) -> ChannelStats:
    """Turn merged sums into a ChannelStats; undefined figures are NaN rather than errors.

    ``mean``, ``m2``, ``l1`` and ``l2sq`` may be of values scaled by ``2**-exp`` (see
    `array_stats`); the ratios do not care and ``mean``/``std`` are scaled back.  ``vmin``,
    ``vmax``, ``amin`` and ``amax`` are never scaled.
    """
    nan = math.nan
    if n == 0:
        return ChannelStats(nan, nan, nan, nan, nan, nan, nan, nonfinite, 0)
    if vmin == vmax:
        # Every value is the same: no spread.  The rounded mean would otherwise leave a
        # rounding-level std (e.g. 1e-16 of the mean) that a rescaled copy does not share.
        m2 = 0.0
    std_s = math.sqrt(max(m2, 0.0) / n)
    rms = std_s / (l1 / n) if l1 > 0 else nan
    den = amax + amin
    if den == math.inf:  # overflow of the sum: same figure, computed from the ratio
        r = amin / amax
        mich = (1.0 - r) / (1.0 + r)
    else:
        mich = (amax - amin) / den if den > 0 else nan
    if l2sq > 0 and n > 1 and math.isfinite(l2sq):
        root = math.sqrt(n)
        hoyer = min(1.0, max(0.0, (root - l1 / math.sqrt(l2sq)) / (root - 1.0)))
    else:
        hoyer = nan
    mean, std = _ldexp(mean, exp), _ldexp(std_s, exp)
    if vmin == vmax:
        mean = vmin  # exact, not a rounded sum / n
    return ChannelStats(mean, std, vmin, vmax, rms, mich, hoyer, nonfinite, n)


def _scan(x: np.ndarray, ch: int | None, exp: int) -> tuple[_Moments, float, int]:
    """One pass over ``x`` in blocks, values scaled by ``2**-exp``; returns the moments and the
    channel-dominance sum and pixel count."""
    nch = 1 if ch is None else x.shape[ch]
    axes: Any = None if ch is None else tuple(i for i in range(x.ndim) if i != ch)
    mom = _Moments(max(nch, 1))
    may_be_nonfinite = np.issubdtype(x.dtype, np.inexact)
    dom_sum, dom_n = 0.0, 0
    for idx in _block_slices(x.shape, ch):
        b = np.asarray(x[idx], dtype=np.float64)
        if exp:
            b = np.ldexp(b, -exp)
        fin: np.ndarray | None = None
        if may_be_nonfinite:
            fin = np.isfinite(b)
            if fin.all():
                fin = None
            else:
                b = np.where(fin, b, 0.0)
        a = np.abs(b)
        if nch > 0:
            mom.add(b, a, fin, axes)
        if ch is not None and nch >= 2:
            s = a.sum(axis=ch)
            ok = np.isfinite(s) & (s > 0)
            if fin is not None:
                ok &= fin.all(axis=ch)
            if ok.any():
                dom_sum += float(np.sum(a.max(axis=ch)[ok] / s[ok]))
                dom_n += int(np.count_nonzero(ok))
    return mom, dom_sum, dom_n


def array_stats(x: np.ndarray, channel_axis: int | None) -> ArrayStats:
    """Compute the statistics of ``x``, per channel along ``channel_axis`` and overall.

    Parameters
    ----------
    x
        Any real numeric or bool array, any layout (non-contiguous views are fine).  It is read in
        blocks converted to float64, never copied as a whole.
    channel_axis
        The channel axis (negative counts from the end), or None for whole-array figures only.

    Returns
    -------
    ArrayStats
        See the module docstring for the definitions.

    Raises
    ------
    ParameterError
        If the dtype is not real numeric or ``channel_axis`` is out of range.
    """
    x = _check_real(x)
    ch = _normalize_axis(channel_axis, x.ndim)
    nch = 1 if ch is None else x.shape[ch]
    exp = 0
    fast = _fast_moments(x, ch)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        mom, dom_sum, dom_n = fast if fast is not None else _scan(x, ch, 0)
        if fast is None and np.issubdtype(x.dtype, np.floating) and nch > 0:
            # Squares of float64 beyond ~1e150 overflow and those below ~1e-160 underflow:
            # then scan again with the values scaled by a power of two (exact), keeping the
            # unscaled extremes from the first pass.
            total = int(mom.n.sum())
            amax = float(mom.amax.max())
            limit = math.sqrt(np.finfo(np.float64).max / (4.0 * max(total, 1)))
            if total and 0 < amax and (amax > limit or amax < 2.0**-400):
                exp = math.frexp(amax)[1]
                scaled, dom_sum, dom_n = _scan(x, ch, exp)
                scaled.min, scaled.max = mom.min, mom.max
                scaled.amin, scaled.amax = mom.amin, mom.amax
                mom = scaled
        if ch is None:
            overall, channels = mom.channel(0, exp), ()
        else:
            channels = tuple(mom.channel(i, exp) for i in range(nch))
            overall = mom.overall(exp) if nch > 0 else mom.channel(0)
    dominance: float | None = None
    if ch is not None and nch >= 2:
        dominance = dom_sum / dom_n if dom_n else math.nan
    return ArrayStats(
        overall=overall,
        channels=channels,
        channel_dominance=dominance,
        shape=tuple(int(s) for s in x.shape),
        dtype=str(x.dtype),
        channel_axis=ch,
    )


def _chunks() -> int:
    """Parallel chunks of the sums: fixed (not the thread count), so figures are the same
    bits whatever the number of threads or worker processes."""
    return 32


_PLANAR_BLOCK = 1 << 18


def _planar_blocks(views: list[np.ndarray]) -> Iterator[np.ndarray]:
    """The (outer, C, inner) views as the kernels read them best: a view whose channel axis
    is the fastest in memory (interleaved pixels) is copied, a block of pixels at a time,
    to planar scratch ``(1, C, pixels)`` so each channel's values are contiguous."""
    for v in views:
        outer, channels, inner = v.shape
        if not (v.strides[1] < v.strides[2] and channels > 1):
            yield v
            continue
        step = max(16, _PLANAR_BLOCK // channels)
        for o in range(outer):
            for p0 in range(0, inner, step):
                yield np.ascontiguousarray(v[o:o + 1, :, p0:p0 + step])


def _fast_moments(x: np.ndarray, ch: int | None) -> tuple[_Moments, float, int] | None:
    """The moments and channel-dominance partials of ``x`` from the Numba kernels
    (float32/float64), or None to use the NumPy path.

    Falls back for other dtypes, empty arrays and magnitudes whose squares would overflow or
    underflow float64 (the NumPy path rescales them).
    """
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8) or not x.dtype.isnative:
        return None
    if x.size == 0 or (ch is not None and x.shape[ch] == 0):
        return None
    from lrn_cli import _stats_kernels as K
    from lrn_cli.core import _views3

    if ch is None:
        views = [v[0] for v in _views3((x[None],), 0, x.ndim + 1)]
    else:
        views = [v[0] for v in _views3((x,), ch, x.ndim - ch)]
    # channels-last: walk the long pixel axis in the inner loop (same figures)
    views = [v.transpose(2, 1, 0) if v.shape[2] < 16 and v.shape[0] > v.shape[2] else v
             for v in views]
    nch = views[0].shape[1]
    chunks = _chunks()
    parts = np.concatenate([K.moments(b, min(chunks, max(1, b.shape[0])))
                            for b in _planar_blocks(views)])
    n = parts[:, :, K.N].sum(axis=0)
    total = parts[:, :, K.SUM].sum(axis=0)
    amax = parts[:, :, K.AMAX].max(axis=0)
    finite_amax = amax[np.isfinite(amax) & (amax > -np.inf)]
    big = math.sqrt(np.finfo(np.float64).max / (4.0 * max(int(n.sum()), 1)))
    if finite_amax.size and (finite_amax.max() > big or 0 < finite_amax.max() < 2.0**-400):
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), 0.0)
    m2 = np.concatenate([K.centred_squares(b, mean, min(chunks, max(1, b.shape[0])))
                         for b in _planar_blocks(views)]).sum(axis=0)
    mom = _Moments(nch)
    mom.n = n.astype(np.int64)
    mom.nonfinite = parts[:, :, K.NONFINITE].sum(axis=0).astype(np.int64)
    mom.mean = mean
    mom.m2 = m2
    mom.min = parts[:, :, K.MIN].min(axis=0)
    mom.max = parts[:, :, K.MAX].max(axis=0)
    mom.amin = parts[:, :, K.AMIN].min(axis=0)
    mom.amax = amax
    mom.l1 = parts[:, :, K.L1].sum(axis=0)
    mom.l2sq = parts[:, :, K.L2SQ].sum(axis=0)
    if ch is None or nch < 2:
        return mom, 0.0, 0
    return mom, float(parts[:, 0, K.DOM_SUM].sum()), int(parts[:, 0, K.DOM_N].sum())


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
        return np.array([part[:, 0].sum(), part[:, 1].sum(), part[:, 2].min(),
                         part[:, 3].max(), part[:, 4].sum(), part[:, 5].sum(),
                         part[:, 6].min(), part[:, 7].max()])
    sums = _no_divisor_sums()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for idx in _block_slices(d.shape, None):
            b = np.asarray(d[idx], dtype=np.float64).ravel()
            b = b[np.isfinite(b)]
            if b.size == 0:
                continue
            g = np.power(b[b > 0], -beta)
            g = g[np.isfinite(g)]
            sums = _merge_divisor_sums(sums, np.array([
                b.size, b.sum(), b.min(), b.max(), g.size, g.sum(),
                g.min(initial=math.inf), g.max(initial=-math.inf)]))
    return sums


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


def comparison_rows(before: ArrayStats, after: ArrayStats) -> list[dict[str, Any]]:
    """Return before/after table rows: scope ``"all"`` then ``"c0"``, ``"c1"``, ...

    Each row has ``scope`` then ``<stat>_in`` and ``<stat>_out`` for every stat of `STAT_NAMES`,
    JSON-safe (None for NaN/Inf).

    Raises
    ------
    ParameterError
        If the two have a different number of channels.
    """
    if len(before.channels) != len(after.channels):
        raise ParameterError(
            f"cannot compare {len(before.channels)} input channels "
            f"with {len(after.channels)} output channels"
        )
    scopes = [("all", before.overall, after.overall)]
    scopes += [
        (f"c{i}", b, a)
        for i, (b, a) in enumerate(zip(before.channels, after.channels, strict=True))
    ]
    rows = []
    for scope, b, a in scopes:
        row: dict[str, Any] = {"scope": scope}
        for name in STAT_NAMES:
            row[f"{name}_in"] = _json_float(getattr(b, name))
            row[f"{name}_out"] = _json_float(getattr(a, name))
        rows.append(row)
    return rows


def flat_record(
    before: ArrayStats, after: ArrayStats, divisor: DivisorStats | None
) -> dict[str, Any]:
    """Return one flat, JSON-safe dict of whole-array figures, for one CSV manifest row.

    Keys are always the same (values None when not applicable), so rows of files with and
    without a channel axis or divisor share the same columns: ``in_<stat>``/``out_<stat>`` for
    `STAT_NAMES`, ``in_nonfinite``, ``out_nonfinite``, ``in_channel_dominance``,
    ``out_channel_dominance``, then ``divisor_min``, ``divisor_max``, ``divisor_mean``,
    ``gain_min``, ``gain_max``, ``gain_mean``.
    """
    rec: dict[str, Any] = {}
    for name in STAT_NAMES:
        rec[f"in_{name}"] = _json_float(getattr(before.overall, name))
        rec[f"out_{name}"] = _json_float(getattr(after.overall, name))
    rec["in_nonfinite"] = before.overall.nonfinite
    rec["out_nonfinite"] = after.overall.nonfinite
    for prefix, st in (("in", before), ("out", after)):
        dom = st.channel_dominance
        rec[f"{prefix}_channel_dominance"] = None if dom is None else _json_float(dom)
    fields = {
        "divisor_min": "d_min",
        "divisor_max": "d_max",
        "divisor_mean": "d_mean",
        "gain_min": "gain_min",
        "gain_max": "gain_max",
        "gain_mean": "gain_mean",
    }
    for key, attr in fields.items():
        rec[key] = None if divisor is None else _json_float(getattr(divisor, attr))
    return rec


class StatsAccumulator:
    """Statistics of an array seen one slab at a time (streaming files larger than memory).

    Slabs are cut along an axis other than the channel axis; the result equals
    :func:`array_stats` of the whole array up to rounding (the sums merge exactly as the
    blocks of `array_stats` do), except that values beyond ~1e150 are not rescaled.
    """

    def __init__(self, channels: int | None, *, channel_axis: int | None = None,
                 dtype: np.dtype | str | None = None) -> None:
        """``channels``: length of the channel axis (None: no channels).

        ``channel_axis`` (non-negative) and ``dtype`` describe the whole array up front, so
        that :meth:`result` reports them even when no slab is ever added (an empty batch);
        otherwise they are taken from the slabs.
        """
        self._nch = 1 if channels is None else channels
        self._has_channels = channels is not None
        self._mom = _Moments(max(self._nch, 1))
        self._dom_sum = 0.0
        self._dom_n = 0
        self._shape: tuple[int, ...] | None = None
        self._dtype = "" if dtype is None else str(np.dtype(dtype))
        self._axis: int | None = None if channel_axis is None else int(channel_axis)

    def add(self, slab: np.ndarray, channel_axis: int | None) -> None:
        """Merge one slab (same channel axis as the whole array)."""
        x = _check_real(slab)
        ch = _normalize_axis(channel_axis, x.ndim)
        self._axis = ch
        self._dtype = str(x.dtype)
        fast = _fast_moments(x, ch)
        if fast is None:
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                fast = _scan(x, ch, 0)
        mom, dom_sum, dom_n = fast
        self._merge(mom)
        self._dom_sum += dom_sum
        self._dom_n += dom_n

    def _merge(self, other: _Moments) -> None:
        me = self._mom
        n_tot = me.n + other.n
        delta = other.mean - me.mean
        frac = np.divide(other.n, n_tot, out=np.zeros(n_tot.shape), where=n_tot > 0)
        me.m2 += other.m2 + delta * delta * me.n * frac
        me.mean += delta * frac
        me.n = n_tot
        me.nonfinite += other.nonfinite
        me.min = np.minimum(me.min, other.min)
        me.max = np.maximum(me.max, other.max)
        me.amin = np.minimum(me.amin, other.amin)
        me.amax = np.maximum(me.amax, other.amax)
        me.l1 += other.l1
        me.l2sq += other.l2sq

    def result(self, shape: tuple[int, ...]) -> ArrayStats:
        """The statistics of everything added, for an array of ``shape``."""
        mom = self._mom
        if self._has_channels:
            channels = tuple(mom.channel(i) for i in range(self._nch))
            overall = mom.overall()
        else:
            channels, overall = (), mom.channel(0)
        dominance = None
        if self._has_channels and self._nch >= 2:
            dominance = self._dom_sum / self._dom_n if self._dom_n else math.nan
        return ArrayStats(overall=overall, channels=channels, channel_dominance=dominance,
                          shape=tuple(int(s) for s in shape), dtype=self._dtype,
                          channel_axis=self._axis)


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
