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

The arrays can be hundreds of megabytes, so they are never converted to float64 in one piece.
float32/float64 arrays are read once, in place, by a Numba kernel: in fixed blocks (a few
thousand values of each channel, set by the shape alone), each summed in float64 shifted by one
of its own values, and the blocks merged pairwise in order (Chan et al.'s update for the
variance), so the figures are the same bits whatever the thread count.  Other dtypes are walked
in NumPy blocks of about half a million elements, merged the same way.  float64 inputs whose
squares would overflow or underflow (magnitudes beyond ~1e150 or all below ~1e-120) are scanned
a second time scaled by an exact power of two, so every figure stays accurate.

The divisor's figures live in :mod:`lrn_cli.stats_divisor`, the slab-by-slab accumulation of
streamed arrays in :mod:`lrn_cli.stats_stream`, the shared helpers in
:mod:`lrn_cli._stats_common`; their public names are importable from here too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lrn_cli._stats_common import (  # noqa: F401  (re-exported for compare and records)
    _BLOCK,
    BLOCK_TILE,
    _block_slices,
    _check_real,
    _chunks,
    _json_float,
    _json_value,
    _normalize_axis,
)
from lrn_cli.errors import ParameterError
from lrn_cli.stats_divisor import DivisorAccumulator, DivisorStats, divisor_stats  # noqa: F401

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
        #: When set (the kernels' path): each mean as ``ref + off``, ``ref`` a value of the
        #: channel, so that :meth:`overall` merges channels near a large offset exactly.
        self.ref: np.ndarray | None = None
        self.off: np.ndarray | None = None

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

    def channels(self, exp: int = 0) -> tuple[ChannelStats, ...]:
        """Return the finished statistics of every channel: :meth:`channel` of each, the
        same operations on whole vectors (:func:`_finish_all`)."""
        return _finish_all(self.n, self.nonfinite, self.mean, self.m2, self.min, self.max,
                           self.l1, self.l2sq, self.amin, self.amax, exp)

    def overall(self, exp: int = 0) -> ChannelStats:
        """Return the statistics of all channels merged together."""
        n = int(self.n.sum())
        nonfinite = int(self.nonfinite.sum())
        if n == 0:
            return _finish(0, nonfinite, 0.0, 0.0, np.inf, -np.inf, 0.0, 0.0, np.inf, -np.inf)
        if self.ref is not None and self.off is not None:
            ref = float(self.ref[np.argmax(self.n > 0)])
            rel = np.where(self.n > 0, (self.ref - ref) + self.off, 0.0)
            rel_mean = float(np.dot(self.n, rel) / n)
            dev = rel - rel_mean
            mean = ref + rel_mean
        else:
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


def _finish_all(
    n: np.ndarray,
    nonfinite: np.ndarray,
    mean: np.ndarray,
    m2: np.ndarray,
    vmin: np.ndarray,
    vmax: np.ndarray,
    l1: np.ndarray,
    l2sq: np.ndarray,
    amin: np.ndarray,
    amax: np.ndarray,
    exp: int = 0,
) -> tuple[ChannelStats, ...]:
    """:func:`_finish` of every channel at once (vectors of length C): the same IEEE
    operations element by element, Python's ``max``/``min`` as the comparisons they are (a
    NaN argument does not win), so the same figures (96 channels: 0.35 ms against 0.51 ms
    one by one, most of it now building the dataclasses)."""
    nan = math.nan
    with np.errstate(all="ignore"):
        nf = n.astype(np.float64)
        same = vmin == vmax
        m2 = np.where(same, 0.0, m2)
        std_s = np.sqrt(np.where(0.0 > m2, 0.0, m2) / nf)
        rms = np.where(l1 > 0, std_s / (l1 / nf), nan)
        den = amax + amin
        r = amin / amax
        mich = np.where(den == np.inf, (1.0 - r) / (1.0 + r),
                        np.where(den > 0, (amax - amin) / den, nan))
        root = np.sqrt(nf)
        h = (root - l1 / np.sqrt(l2sq)) / (root - 1.0)
        h = np.where(h > 0.0, h, 0.0)
        hoyer = np.where((l2sq > 0) & (n > 1) & np.isfinite(l2sq), np.where(h < 1.0, h, 1.0), nan)
        mean = np.where(same, vmin, np.ldexp(mean, exp))
        std = np.ldexp(std_s, exp)
    empty = n == 0
    cols = [np.where(empty, nan, v).tolist() for v in (mean, std, vmin, vmax, rms, mich, hoyer)]
    counts = n.tolist()
    return tuple(
        ChannelStats(m, sd, lo, hi, rc, mc, hs, int(bad), int(c))
        for m, sd, lo, hi, rc, mc, hs, bad, c in zip(*cols, nonfinite.tolist(), counts,
                                                      strict=True)
    )


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
        channels: tuple[ChannelStats, ...]
        if ch is None:
            overall, channels = mom.channel(0, exp), ()
        else:
            channels = mom.channels(exp)
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


#: Values of a channel per block of the moments kernel (whole pixel rows are grouped up to
#: it, long rows cut at it); the number of blocks then depends on the shape only.
_BLOCK_VALUES = 2048
#: Longest row piece of a block, in values.
_BLOCK_TILE = BLOCK_TILE  # the kernel's stack holds partials of this many pixels
#: Most values (all channels) of a tile of interleaved pixels transposed to planar scratch:
#: up to 8 channels the tile is the planar one, so a picture's figures are the same bits
#: whether its channels are interleaved or planar.
_TRANSPOSE_VALUES = 8 * _BLOCK_TILE


def _kernel_view(v: np.ndarray) -> tuple[np.ndarray, int, tuple[int, int, int],
                                         tuple[int, int, int], bool] | None:
    """How the moments kernel reads one (outer, C, inner) view: a 1-D array over its memory,
    the way rows reach the lanes (``ROWS``, ``TRANSPOSE``, ``GATHER``), the shape and element
    strides it walks (possibly the view transposed), and whether the channels run backwards.
    None when the strides are not whole elements."""
    from lrn_cli import _stats_kernels as K

    item = v.itemsize
    if any(s % item for s in v.strides):
        return None
    reversed_channels = v.strides[1] < 0
    if v.strides[0] < 0:
        v = v[::-1]
    if v.strides[1] < 0:
        v = v[:, ::-1]
    if v.strides[2] < 0:
        v = v[:, :, ::-1]
    span = 1 + sum((n - 1) * s for n, s in zip(v.shape, v.strides, strict=True)) // item
    flat = np.lib.stride_tricks.as_strided(v, shape=(span,), strides=(item,))

    def es(u: np.ndarray) -> tuple[int, int, int]:
        return tuple(0 if n == 1 else s // item for n, s in zip(u.shape, u.strides,
                                                                 strict=True))  # type: ignore[return-value]

    best: tuple[int, int, np.ndarray] | None = None
    for u in (v, v.transpose(2, 1, 0)):
        so, sc, si = es(u)
        outer, channels, inner = u.shape
        if si == 1 or inner == 1:
            cand = (inner, K.ROWS, u)
        elif sc == 1 and si == channels:
            cand = (inner * channels, K.TRANSPOSE, u)
        else:
            continue
        if best is None or cand[0] > best[0]:
            best = cand
    if best is None:  # neither: gather rows along the smaller stride
        u = min((v, v.transpose(2, 1, 0)), key=lambda w: abs(w.strides[2]))
        best = (0, K.GATHER, u)
    _, how, u = best
    shape = tuple(int(n) for n in u.shape)
    return flat, how, shape, es(u), reversed_channels  # type: ignore[return-value]


def _blocks(how: int, shape: tuple[int, int, int]) -> tuple[int, int]:
    """``(group, tile)`` of the moments kernel: outer indices and inner values per block."""
    from lrn_cli import _stats_kernels as K

    _, channels, inner = shape
    tile = min(inner, _BLOCK_TILE)
    if how != K.ROWS and channels * tile > _TRANSPOSE_VALUES:  # the scratch holds a tile
        tile = min(inner, max(64, _TRANSPOSE_VALUES // channels))
    group = max(1, _BLOCK_VALUES // max(inner, 1)) if tile == inner else 1
    return group, max(tile, 1)


def _block_tables(x: np.ndarray, ch: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The moments kernel's per-block table (blocks, C, NCOLS) and dominance (blocks, 2) of
    ``x`` (float32/float64, not empty), or None when a view cannot be read in place."""
    from lrn_cli import _stats_kernels as K
    from lrn_cli.core import _views3

    if ch is None:
        views = [v[0] for v in _views3((x[None],), 0, x.ndim + 1)]
    else:
        views = [v[0] for v in _views3((x,), ch, x.ndim - ch)]
    parts, doms = [], []
    for v in views:
        how_view = _kernel_view(v)
        if how_view is None:
            return None
        flat, how, shape, strides, backwards = how_view
        group, tile = _blocks(how, shape)
        part, dom = K.moments(flat, how, shape, strides, group, tile)
        parts.append(part[:, ::-1] if backwards else part)
        doms.append(dom)
    return np.concatenate(parts), np.concatenate(doms)


def _tree_merge(n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> tuple[np.ndarray, ...]:
    """Merge per-block (count, mean, M2) rows (axis 0) pairwise, level by level (Chan et
    al.): a fixed order, given the number of blocks."""
    while n.shape[0] > 1:
        half = n.shape[0] // 2
        na, nb = n[0:2 * half:2], n[1:2 * half:2]
        ma, mb = mean[0:2 * half:2], mean[1:2 * half:2]
        nt = na + nb
        frac = np.divide(nb, nt, out=np.zeros(nt.shape), where=nt > 0)
        delta = mb - ma
        m2n = m2[0:2 * half:2] + m2[1:2 * half:2] + delta * delta * na * frac
        meann = ma + delta * frac
        if n.shape[0] % 2:
            nt = np.concatenate([nt, n[-1:]])
            meann = np.concatenate([meann, mean[-1:]])
            m2n = np.concatenate([m2n, m2[-1:]])
        n, mean, m2 = nt, meann, m2n
    return n[0], mean[0], m2[0]


def _fast_moments(x: np.ndarray, ch: int | None) -> tuple[_Moments, float, int] | None:
    """The moments and channel-dominance partials of ``x`` from the Numba kernel
    (float32/float64), or None to use the NumPy path.

    One pass in fixed blocks (:func:`lrn_cli._stats_kernels._moments_blocks`), merged in a
    fixed order: the figures do not depend on the thread count.  Falls back for other dtypes,
    empty arrays and magnitudes whose squares would overflow or underflow (the NumPy path
    rescales them).
    """
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8) or not x.dtype.isnative:
        return None
    if x.size == 0 or (ch is not None and x.shape[ch] == 0):
        return None
    from lrn_cli import _stats_kernels as K

    tables = _block_tables(x, ch)
    if tables is None:
        return None
    part, dom = tables
    nch = part.shape[1]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        nb = part[:, :, K.N]
        s1 = part[:, :, K.S1]
        some = nb > 0
        safe = np.maximum(nb, 1.0)
        # the blocks' means relative to a reference per channel (the shift of its first
        # block holding a finite value), so that differences of means near a large offset
        # keep their digits when the blocks are merged
        shift = part[:, :, K.SHIFT]
        ref = shift[np.argmax(some, axis=0), np.arange(part.shape[1])]
        off_b = np.where(some, (shift - ref) + s1 / safe, 0.0)
        m2_b = np.where(some, np.maximum(part[:, :, K.S2] - s1 * s1 / safe, 0.0), 0.0)
        vmin = part[:, :, K.MIN].min(axis=0)
        vmax = part[:, :, K.MAX].max(axis=0)
        amax = np.maximum(vmax, -vmin)
        n_all = float(nb.sum())
        big = math.sqrt(np.finfo(np.float64).max / (4.0 * max(n_all, 1.0)))
        finite_amax = amax[np.isfinite(amax)]
        if finite_amax.size and (finite_amax.max() > big or 0 < finite_amax.max() < 2.0**-400):
            return None
        mean_b = np.where(some, shift + s1 / safe, 0.0)
        l2sq = (m2_b + nb * mean_b * mean_b).sum(axis=0)
        n, off, m2 = _tree_merge(nb, off_b, m2_b)
        mean = np.where(n > 0, ref + off, 0.0)
    mom = _Moments(nch)
    mom.n = n.astype(np.int64)
    mom.nonfinite = part[:, :, K.NONFINITE].sum(axis=0).astype(np.int64)
    mom.mean = mean
    mom.ref, mom.off = ref, off
    mom.m2 = m2
    mom.min = vmin
    mom.max = vmax
    mom.amin = part[:, :, K.AMIN].min(axis=0)
    mom.amax = amax
    mom.l1 = part[:, :, K.L1].sum(axis=0)
    mom.l2sq = l2sq
    if ch is None or nch < 2:
        return mom, 0.0, 0
    return mom, float(dom[:, 0].sum()), int(dom[:, 1].sum())


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


def __getattr__(name: str) -> Any:
    # StatsAccumulator lives in lrn_cli.stats_stream, which builds on this module
    if name == "StatsAccumulator":
        from lrn_cli.stats_stream import StatsAccumulator

        return StatsAccumulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
