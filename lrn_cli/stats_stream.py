"""Statistics of an array seen one slab at a time (``lrn apply --stream``): the moments
of :mod:`lrn_cli.stats` merged slab by slab."""

from __future__ import annotations

import math

import numpy as np

from lrn_cli._stats_common import _check_real, _normalize_axis
from lrn_cli.stats import ArrayStats, _fast_moments, _Moments, _scan


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
            channels = mom.channels()
            overall = mom.overall()
        else:
            channels, overall = (), mom.channel(0)
        dominance = None
        if self._has_channels and self._nch >= 2:
            dominance = self._dom_sum / self._dom_n if self._dom_n else math.nan
        return ArrayStats(overall=overall, channels=channels, channel_dominance=dominance,
                          shape=tuple(int(s) for s in shape), dtype=self._dtype,
                          channel_axis=self._axis)
