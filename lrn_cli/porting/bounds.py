"""The per-element bound of ``lrn explain``, what else fits within it, and the exact check.

* :func:`rel_bound`: the relative error an element may carry, in two tiers derived from the
  data (see :mod:`lrn_cli.porting.fit`): ``direct`` (a window summed term by term) and
  ``running-sum`` (an add-head/subtract-tail running sum along the line).
* :func:`ranges`: for each constant, the interval that still fits a sample within the bound
  (the L-infinity feasible set: for a fixed beta, ``|k + a*S - h| <= t`` is a strip per
  element, and the ``a`` for which some ``k >= 0`` lies in all of them is an interval found
  by a ternary search of a convex gap and two bisections).
* :func:`check`: the candidate run by the library's kernels on the whole input, compared
  element by element with the output (in blocks), with its outliers located.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lrn_cli.porting.fit import Candidate, Sample


def unit_roundoff(dtype: np.dtype) -> float:
    """Half the machine epsilon: the relative error of one correctly rounded operation."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return 2.0 ** -24
    return float(np.finfo(dtype).eps) / 2


def rel_bound(beta: float, u: float, terms: int, d: np.ndarray, as_: np.ndarray,
              running: np.ndarray | None) -> np.ndarray:
    """The per-element relative bound (see the module docstring); ``as_`` is ``a'*S``."""
    direct = beta * (2 * terms * u * as_ / d + 4 * u) + 6 * u
    if running is None:
        return direct
    return direct + beta * 4 * u * running / d


# ----------------------------------------------------------------------------------------
# what else fits: the L-infinity feasible set on the sample


def _k_interval(h, t, s, a):
    return max(0.0, float(np.max(h - t - a * s))), float(np.min(h + t - a * s))


def _gap(h, t, s, a):
    lo, hi = _k_interval(h, t, s, a)
    return lo - hi


def _feasible_a(h, t, s, iters: int = 60):
    """The ``a`` interval for which some ``k >= 0`` fits (None when none does)."""
    pos = s > 0
    a_max = float(np.min((h + t)[pos] / s[pos])) if pos.any() else 0.0
    left, right = 0.0, max(a_max, 0.0)
    for _ in range(iters):  # the gap is convex in a: ternary search for its minimum
        m1 = left + (right - left) / 3
        m2 = right - (right - left) / 3
        if _gap(h, t, s, m1) <= _gap(h, t, s, m2):
            right = m2
        else:
            left = m1
    a_best = (left + right) / 2
    if _gap(h, t, s, a_best) > 0:
        return None

    def edge(inside, outside):
        for _ in range(iters):
            mid = (inside + outside) / 2
            if _gap(h, t, s, mid) <= 0:
                inside = mid
            else:
                outside = mid
        return inside

    low = 0.0 if _gap(h, t, s, 0.0) <= 0 else edge(a_best, 0.0)
    high = a_max if _gap(h, t, s, a_max) <= 0 else edge(a_best, a_max)
    return low, high


def ranges(sample: Sample, cand: Candidate, u: float, tier: str) -> dict[str, tuple[float, float]]:
    """For each constant, the interval of values with which the window still fits the
    sample within the bound (the others free): ``{"beta": (low, high), "alpha_eff": ...,
    "k_eff": ...}``."""
    s = sample.sums1(cand.lo, cand.hi)
    d = cand.k + cand.alpha * s
    terms = cand.taps ** sample.geometry.terms
    run = sample.running(cand.lo, cand.hi, cand.alpha, cand.k) if tier == "running-sum" else None
    r = rel_bound(cand.beta, u, terms, d, cand.alpha * s, run)

    def at(beta):
        h = np.exp(-sample.lg / beta)
        return h, h * r / beta

    found = {}
    for beta in np.concatenate([[cand.beta], cand.beta * np.exp(np.linspace(-3, 3, 17))]):
        h, t = at(beta)
        fa = _feasible_a(h, t, s, iters=30)
        if fa is not None:
            found[float(beta)] = (fa, h, t)
    if not found:
        return {}
    feasible = sorted(found)
    grid = sorted(cand.beta * np.exp(np.linspace(-3, 3, 17)))

    def refine_edge(inside, outside):
        for _ in range(14):
            mid = math.sqrt(inside * outside)
            h, t = at(mid)
            fa = _feasible_a(h, t, s, iters=30)
            if fa is not None:
                found[mid] = (fa, h, t)
                inside = mid
            else:
                outside = mid
        return inside

    below = [b for b in grid if b < feasible[0]]
    above = [b for b in grid if b > feasible[-1]]
    beta_lo = refine_edge(feasible[0], below[-1]) if below else feasible[0]
    beta_hi = refine_edge(feasible[-1], above[0]) if above else feasible[-1]
    a_lo = min(fa[0] for fa, _, _ in found.values())
    a_hi = max(fa[1] for fa, _, _ in found.values())
    k_lo, k_hi = math.inf, -math.inf
    for (alo, ahi), h, t in found.values():
        k_hi = max(k_hi, _k_interval(h, t, s, alo)[1])
        k_lo = min(k_lo, _k_interval(h, t, s, ahi)[0])
    return {"beta": (beta_lo, beta_hi), "alpha_eff": (a_lo, a_hi), "k_eff": (k_lo, k_hi)}


# ----------------------------------------------------------------------------------------
# the exact check on the whole array


@dataclass(frozen=True)
class Check:
    """The kernels' output for a candidate against the given output, element by element."""

    tier: str | None
    """``direct`` or ``running-sum`` when every element is within that bound, else None."""
    max_rel_error: float
    max_ulps: int
    ratio: dict[str, float]
    compared: int
    nonfinite_mismatch: int
    outliers: int = 0
    """Elements beyond the running-sum bound."""
    nonfinite_unexplained: int = 0
    """Non-finite outputs where ours is finite and no running sum could reach ``D <= 0``."""
    outlier_positions: dict[int, list[int]] = field(default_factory=dict)
    """For each summed axis, the positions along it that hold outliers (at most 64)."""


def ulps(a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Representable values of ``dtype`` between ``a`` and ``b`` (finite, same shape)."""
    dtype = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float32)
    bits = {2: np.int16, 4: np.int32, 8: np.int64}[dtype.itemsize]
    ia = np.asarray(a, dtype=dtype).view(bits).astype(np.int64)
    ib = np.asarray(b, dtype=dtype).view(bits).astype(np.int64)
    top = np.int64(1) << (8 * dtype.itemsize - 1)
    ia = np.where(ia < 0, -(ia + top), ia)  # sign-magnitude to a monotone integer line
    ib = np.where(ib < 0, -(ib + top), ib)
    return np.abs(ia - ib)


def check(x: np.ndarray, y: np.ndarray, cand: Candidate, u: float) -> Check:
    """Run the candidate through the kernels on the whole of ``x`` and compare with ``y``
    (element by element, in blocks along an axis the window does not sum)."""
    sem = cand.semantics()
    fx, dx = sem.apply(x, return_divisor=True)
    geo = cand.geometry
    free = [a for a in range(x.ndim) if a not in geo.axes and x.shape[a] > 1]
    ratios = {"direct": 0.0, "running-sum": 0.0}
    max_rel, max_ulp, compared, mismatch, outliers, unexplained = 0.0, 0, 0, 0, 0, 0
    positions: dict[int, set[int]] = {a: set() for a in geo.axes}
    floor = 4 * float(np.finfo(y.dtype if y.dtype.kind == "f" else np.float32).tiny)
    for idx in _blocks(x.shape, free[0] if free else None):
        part = _check_block(x[idx], y[idx], fx[idx], dx[idx], cand, u, floor)
        for name in ratios:
            ratios[name] = max(ratios[name], part[0][name])
        max_rel = max(max_rel, part[1])
        max_ulp = max(max_ulp, part[2])
        compared += part[3]
        mismatch += part[4]
        outliers += int(np.count_nonzero(part[5]))
        unexplained += part[6]
        if outliers <= 100000:
            where = np.nonzero(part[5])
            for a in geo.axes:
                if len(positions[a]) < 64:
                    positions[a].update(np.unique(where[a])[:64].tolist())
    tier = next((name for name in ("direct", "running-sum")
                 if math.isfinite(ratios[name]) and ratios[name] <= 1.0), None)
    return Check(tier, max_rel, max_ulp, ratios, compared, mismatch, outliers=outliers,
                 outlier_positions={a: sorted(p)[:64] for a, p in positions.items()},
                 nonfinite_unexplained=unexplained)


def _blocks(shape: tuple[int, ...], axis: int | None, elements: int = 1 << 19):
    """Index tuples covering ``shape`` in slabs along ``axis`` of about ``elements``."""
    if axis is None:
        yield (slice(None),) * len(shape)
        return
    per = max(1, math.prod(shape) // max(1, shape[axis]))
    step = max(1, elements // per)
    for start in range(0, shape[axis], step):
        idx = [slice(None)] * len(shape)
        idx[axis] = slice(start, start + step)
        yield tuple(idx)


def _check_block(x, y, fx, dx, cand: Candidate, u: float, floor: float):
    geo = cand.geometry
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d = dx.astype(np.float64)
        terms = cand.taps ** geo.terms
        direct = rel_bound(cand.beta, u, terms, d, d - cand.k, None)
        if geo.mode == "across":
            run = np.sum(d, axis=geo.axes[0], keepdims=True)
        else:
            q = np.square(x, dtype=np.float64)
            run = cand.alpha * (_strip(q, geo.axes[0], geo.axes[1], cand.lo, cand.hi)
                                + _strip(q, geo.axes[1], geo.axes[0], cand.lo, cand.hi))
        running = direct + cand.beta * 4 * u * run / d
        ya = y.astype(np.float64)
        fa = fx.astype(np.float64)
        both = np.isfinite(ya) & np.isfinite(fa)
        mismatch = int(np.count_nonzero(~both & ~(np.isnan(ya) & np.isnan(fa)) & (ya != fa)))
        err = np.where(both, np.abs(fa - ya), 0.0)
        mag = np.abs(ya)
        ratios = {}
        for name, rel in (("direct", direct), ("running-sum", running)):
            bound = np.where(both, rel * mag + floor, 1.0)
            ratios[name] = float(np.max(err / bound)) if err.size else 0.0
        nz = both & (mag > 0)
        max_rel = float(np.max(err[nz] / mag[nz])) if nz.any() else 0.0
        max_ulp = int(np.max(ulps(fx[both], y[both], y.dtype))) if both.any() else 0
        off = both & (err > running * mag + floor)
        # a running sum that cancels can reach D <= 0 (NaN) where its error can reach D
        odd = ~np.isfinite(ya) & np.isfinite(fa)
        unexplained = int(np.count_nonzero(odd & ~(4 * u * run / d >= 1)))
    return (ratios, max_rel, max_ulp, int(np.count_nonzero(both)), mismatch, off,
            unexplained)


def _strip(q: np.ndarray, along: int, other: int, lo: int, hi: int) -> np.ndarray:
    """Energy of the strip ``[i-lo, i+hi]`` along ``along``, whole along ``other``."""
    tot = q.sum(axis=other, keepdims=True)
    length = q.shape[along]
    c = np.cumsum(tot, axis=along)
    c = np.concatenate([np.zeros_like(np.take(c, [0], axis=along)), c], axis=along)
    i = np.arange(length)
    top = np.take(c, np.minimum(i + hi + 1, length), axis=along)
    bottom = np.take(c, np.maximum(i - lo, 0), axis=along)
    return top - bottom
