"""The numerics of ``lrn explain``: fit ``y = x * (k' + a'*S)**-beta`` to an (input, output)
pair.  The method is described in :mod:`lrn_cli.porting.explain`; this module holds its steps:

* :class:`Geometry`: what is summed (one channel axis, or a box on two spatial axes).
* :class:`Sample`: lines (across) or planes (within) of the arrays, with their prefix sums,
  so that the window sum ``S`` of any window ``[c-lo, c+hi]`` is two (four) look-ups.
* :func:`screen`: every window and a grid of betas at once, by weighted least squares of
  ``g**(-1/beta) = k' + a'*S`` (``g = y/x``), in a few matrix products per ``lo``.
* :func:`refine`: Levenberg-Marquardt on ``log g + beta*log(k' + a'*S) = 0`` (relative
  error, each element weighted by one over its bound), trimmed of a few far-off elements.
* :func:`snap`: the shortest decimals that still fit within the bound.
* :func:`ranges`: what else fits (the L-infinity feasible set, per parameter) and
  :func:`check`: the exact check by the library's kernels on the whole array, both in
  :mod:`lrn_cli.porting.bounds` with the bound itself (re-exported here).

The per-element bound (:func:`rel_bound`) has two tiers, both derived from the data:

* ``direct``: what rounding a window summed term by term can carry,
  ``beta * (2*m*u*a'S/D + 4u) + 6u`` (``m`` terms, unit roundoff ``u`` of the data's dtype,
  counting our own float32 sum as well as the framework's);
* ``running-sum``: ``direct`` plus ``beta * 4u * R/D``, where ``R`` is the magnitude a running
  sum along the whole line carries (across: the sum of ``D`` along the line, as
  onnxruntime's and Caffe's add-head/subtract-tail scale does; within: the energy of the row
  and column strips through the element, as OpenCV's box filter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lrn_cli.porting.bounds import Check, check, ranges, rel_bound, ulps, unit_roundoff
from lrn_cli.porting.semantics import Semantics

__all__ = ["BETA_COMMON", "BETA_GRID", "Candidate", "Check", "Geometry", "Sample", "check",
           "decimals", "ranges", "refine", "rel_bound", "sample_ratios", "screen", "snap",
           "ulps", "unit_roundoff", "window_grid"]

#: The closed forms tried first, and the screening grid of betas.
BETA_COMMON = (0.75, 0.5, 1.0)
BETA_GRID = (0.25, 0.5, 0.75, 1.0, 1.5, 2.5)
#: Windows are screened exhaustively up to this many offsets per side; beyond, on a grid
#: (every offset to EXHAUSTIVE, then geometric steps), refined around the best.
EXHAUSTIVE = 128
SCREEN_ELEMENTS = 768
FIT_ELEMENTS = 8192
LINE_BUDGET = 65536


@dataclass(frozen=True)
class Geometry:
    """What a window sums: one axis (across) or a box on two axes (within)."""

    mode: str
    axes: tuple[int, ...]
    lengths: tuple[int, ...]

    @property
    def span(self) -> int:
        """Offsets beyond ``span - 1`` reach nothing more: windows are clipped there."""
        return max(self.lengths)

    @property
    def terms(self) -> int:
        """1 (across) or 2 (within): the window's ``taps`` per axis, to this power."""
        return len(self.axes)

    def semantics(self, lo: int, hi: int, alpha: float, k: float, beta: float) -> Semantics:
        if self.mode == "across":
            return Semantics("across", lo, hi, alpha, k, beta, channel_axis=self.axes[0],
                             spatial_axes=None)
        return Semantics("within", lo, hi, alpha, k, beta, channel_axis=None,
                         spatial_axes=(self.axes[0], self.axes[1]))

    def label(self) -> str:
        if self.mode == "across":
            return f"across axis {self.axes[0]}"
        return f"within axes {list(self.axes)}"


class Sample:
    """Lines or planes of ``x**2`` taken from the arrays, and the elements fitted on them.

    Lines (planes) are chosen half by energy (where LRN acts most), half at random; the
    elements are all those of the chosen lines, or a random subset when there are more than
    :data:`FIT_ELEMENTS`.  Window sums use the whole line (plane), so sums at the edges
    are exact.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, geometry: Geometry,
                 rng: np.random.Generator) -> None:
        self.geometry = geometry
        moved_x = np.moveaxis(x, geometry.axes, tuple(range(-geometry.terms, 0)))
        moved_y = np.moveaxis(y, geometry.axes, tuple(range(-geometry.terms, 0)))
        shape = geometry.lengths
        lead = moved_x.shape[: moved_x.ndim - geometry.terms]
        count = math.prod(lead)
        per = math.prod(shape)
        want = max(1, min(count, -(-LINE_BUDGET // per)))
        with np.errstate(over="ignore", invalid="ignore"):
            # the axes left keep their order: the same lines as moved_x's leading axes
            energy = np.square(x, dtype=np.float64).sum(axis=geometry.axes).reshape(-1)
        # a non-finite value spoils every prefix sum after it: such lines are left out
        finite = np.flatnonzero(np.isfinite(energy))
        pool = finite if finite.size else np.arange(count)
        want = min(want, pool.size)
        if want >= pool.size:
            picked = pool
        else:
            top = pool[np.argsort(energy[pool])[::-1][: max(1, want // 2)]]
            rest = np.setdiff1d(pool, top)
            more = rng.choice(rest, size=want - top.size, replace=False)
            picked = np.sort(np.concatenate([top, more]))
        self.lines = picked
        where = np.unravel_index(picked, lead) if lead else ()
        xl = moved_x[where].astype(np.float64).reshape(-1, *shape)
        yl = moved_y[where].astype(np.float64).reshape(-1, *shape)
        q = np.square(xl)
        q[~np.isfinite(q)] = np.nan
        self.q = q
        if geometry.terms == 1:
            t = np.zeros((q.shape[0], shape[0] + 1))
            np.cumsum(q, axis=1, out=t[:, 1:])
        else:
            t = np.zeros((q.shape[0], shape[0] + 1, shape[1] + 1))
            t[:, 1:, 1:] = q.cumsum(axis=1).cumsum(axis=2)
        self.table = t.reshape(-1)
        self._stride = t.shape[1:]
        flat_x = xl.reshape(-1)
        flat_y = yl.reshape(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = flat_y / flat_x
        usable = (np.isfinite(flat_x) & np.isfinite(flat_y) & (flat_x != 0) & np.isfinite(g)
                  & (g > 0))
        idx = np.flatnonzero(usable)
        if idx.size > FIT_ELEMENTS:
            idx = np.sort(rng.choice(idx, size=FIT_ELEMENTS, replace=False))
        self.idx = idx
        self.x = flat_x[idx]
        self.y = flat_y[idx]
        self.g = g[idx]
        self.lg = np.log(self.g)
        pos = np.unravel_index(idx, (q.shape[0], *shape))
        self.line = pos[0]
        self.pos = pos[1:]
        order = rng.permutation(idx.size)[:SCREEN_ELEMENTS]
        self.screen_idx = np.sort(order)
        self.signs_ok = not bool(np.any((flat_x != 0) & np.isfinite(g) & (g < 0)))

    @property
    def n(self) -> int:
        return int(self.idx.size)

    def sums(self, lo: int, his: np.ndarray, subset: np.ndarray | None = None) -> np.ndarray:
        """``S`` for the windows ``[c-lo, c+hi]``, ``hi`` in ``his``: (elements, len(his))."""
        his = np.asarray(his, dtype=np.int64)
        sel = slice(None) if subset is None else subset
        line = self.line[sel]
        if self.geometry.terms == 1:
            (length,) = self.geometry.lengths
            (c,) = (p[sel] for p in self.pos)
            base = line * (length + 1)
            top = np.minimum(c[:, None] + his[None, :] + 1, length)
            bottom = np.maximum(c - lo, 0)
            return self.table[base[:, None] + top] - self.table[base + bottom][:, None]
        h, w = self.geometry.lengths
        r, c = (p[sel] for p in self.pos)
        w1 = w + 1
        base = line * (h + 1) * w1
        r1 = np.minimum(r[:, None] + his[None, :] + 1, h)
        c1 = np.minimum(c[:, None] + his[None, :] + 1, w)
        r0 = np.maximum(r - lo, 0)[:, None]
        c0 = np.maximum(c - lo, 0)[:, None]
        b = base[:, None]
        t = self.table
        return t[b + r1 * w1 + c1] - t[b + r0 * w1 + c1] - t[b + r1 * w1 + c0] + t[b + r0 * w1 + c0]

    def sums1(self, lo: int, hi: int) -> np.ndarray:
        return self.sums(lo, np.array([hi]))[:, 0]

    def running(self, lo: int, hi: int, alpha: float, k: float) -> np.ndarray:
        """``R`` of the running-sum tier at the sampled elements (see the module docstring)."""
        if self.geometry.terms == 1:
            (length,) = self.geometry.lengths
            c = np.arange(length)
            top = np.minimum(c + hi + 1, length)
            bottom = np.maximum(c - lo, 0)
            t = self.table.reshape(-1, length + 1)
            line_s = (t[:, top] - t[:, bottom]).sum(axis=1)
            return (length * k + alpha * line_s)[self.line]
        h, w = self.geometry.lengths
        t3 = self.table.reshape(-1, h + 1, w + 1)
        r, c = self.pos
        line = self.line
        rows = t3[line, np.minimum(r + hi + 1, h), w] - t3[line, np.maximum(r - lo, 0), w]
        cols = t3[line, h, np.minimum(c + hi + 1, w)] - t3[line, h, np.maximum(c - lo, 0)]
        return alpha * (rows + cols)


def window_grid(span: int) -> np.ndarray:
    """Offsets screened per side: all below :data:`EXHAUSTIVE`, then a geometric grid."""
    if span <= EXHAUSTIVE:
        return np.arange(span)
    tail = np.unique(np.geomspace(EXHAUSTIVE, span - 1, 40).astype(np.int64))
    return np.unique(np.concatenate([np.arange(EXHAUSTIVE), tail, [span - 1]]))


@dataclass
class Candidate:
    """One window with fitted constants (``score``: mean squared relative error of g)."""

    geometry: Geometry
    lo: int
    hi: int
    beta: float
    k: float
    alpha: float
    score: float = math.inf
    ratio: dict[str, float] = field(default_factory=dict)

    @property
    def taps(self) -> int:
        return self.lo + self.hi + 1

    @property
    def key(self) -> tuple:
        if self.lo == 0 and self.hi == 0:
            return ("pointwise",)
        return (self.geometry.mode, self.geometry.axes, self.lo, self.hi)

    def semantics(self) -> Semantics:
        return self.geometry.semantics(self.lo, self.hi, self.alpha, self.k, self.beta)


def screen(sample: Sample, los: np.ndarray, his: np.ndarray, *, top: int = 4,
           betas: tuple[float, ...] = BETA_GRID) -> list[Candidate]:
    """Weighted least squares of ``h = g**(-1/beta) = k + a*S`` for every window in
    ``los x his`` and every beta of the grid; the ``top`` best windows (their best beta)."""
    sub = sample.screen_idx
    if sub.size < 3:
        return []
    b = np.asarray(betas)
    lg = sample.lg[sub]
    h = np.exp(-lg[:, None] / b[None, :])            # n x B
    w = 1.0 / (h * h)
    sw = w.sum(axis=0)
    hbar = (w * h).sum(axis=0) / sw
    hc = h - hbar
    whc = w * hc
    shh = (w * hc * hc).sum(axis=0)
    n = sub.size
    best_score = np.full((los.size, his.size), np.inf)
    best_col = np.zeros((los.size, his.size), dtype=np.int64)
    best_k = np.zeros((los.size, his.size))
    best_a = np.zeros((los.size, his.size))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i, lo in enumerate(los):
            s = sample.sums(int(lo), his, sub)
            if not np.isfinite(s).all():
                s = np.where(np.isfinite(s), s, 0.0)
            sws = s.T @ w
            s2w = (s * s).T @ w
            cov = s.T @ whc
            var = s2w - sws * sws / sw
            a = cov / var
            rss = shh - cov * cov / var
            k = hbar - a * sws / sw
            score = b * b * np.maximum(rss, 0.0) / n
            bad = ~(np.isfinite(score) & (a > 0) & (var > 1e-13 * s2w)
                    & (k >= -1e-6 * hbar))
            score[bad] = np.inf
            col = np.argmin(score, axis=1)
            rows = np.arange(his.size)
            best_score[i] = score[rows, col]
            best_col[i] = col
            best_k[i] = k[rows, col]
            best_a[i] = a[rows, col]
    flat = np.argsort(best_score, axis=None)[:top]
    out = []
    for f in flat:
        i, j = np.unravel_index(f, best_score.shape)
        if not np.isfinite(best_score[i, j]):
            break
        out.append(Candidate(sample.geometry, int(los[i]), int(his[j]), float(b[best_col[i, j]]),
                             max(0.0, float(best_k[i, j])), float(best_a[i, j]),
                             float(best_score[i, j])))
    return out


def weights(sample: Sample, cand: Candidate, u: float) -> np.ndarray:
    """``1/bound`` per element (running-sum tier): elements whose sum a running sum could
    spoil (small next to large neighbours) count less, as their errors are allowed to be
    larger."""
    s = sample.sums1(cand.lo, cand.hi)
    d = cand.k + cand.alpha * s
    if not np.all(d > 0) or cand.alpha <= 0:
        return np.ones(sample.n)
    run = sample.running(cand.lo, cand.hi, cand.alpha, cand.k)
    r = rel_bound(cand.beta, u, cand.taps ** sample.geometry.terms, d, cand.alpha * s, run)
    return 1.0 / (r / r.min())


def linear_fit(sample: Sample, s: np.ndarray, beta: float, alpha: float | None = None,
               wt: np.ndarray | None = None):
    """Weighted least squares of ``h = k + a*S`` at a fixed beta (and a fixed ``a`` if given);
    relative errors, times ``wt`` when given."""
    h = np.exp(-sample.lg / beta)
    w = 1.0 / (h * h)
    if wt is not None:
        w = w * wt * wt
    sw = w.sum()
    if alpha is not None:
        return max(0.0, float((w * (h - alpha * s)).sum() / sw)), alpha
    sbar = (w * s).sum() / sw
    hbar = (w * h).sum() / sw
    var = (w * (s - sbar) ** 2).sum()
    a = float((w * (s - sbar) * (h - hbar)).sum() / var) if var > 0 else 0.0
    return max(0.0, float(hbar - a * sbar)), a


def _cost(lg, s, beta, k, a, wt):
    d = k + a * s
    if beta <= 0 or not np.all(d > 0):
        return math.inf, None
    r = (lg + beta * np.log(d)) * wt
    return float(r @ r), r


def refine(sample: Sample, cand: Candidate, u: float, *,
           free: tuple[bool, bool, bool] = (True,) * 3, iterations: int = 50,
           rounds: int = 2, trim: bool = False) -> Candidate:
    """Levenberg-Marquardt on the relative residual ``log g + beta*log(k + a*S)``, each
    element weighted by ``1/bound`` (:func:`weights`, updated between ``rounds``); with
    ``trim``, a fit that a few elements spoil is redone without them (see below)."""
    for _ in range(rounds):
        cand = _refine(sample, cand, weights(sample, cand, u), free, iterations)
    if not trim:
        return cand
    # a few elements far off (edges handled differently, a corrupted value) should not pull
    # the fit of all the others: refit on the 90% that fit best, a few times, and keep that
    # when at most 10% of the elements are then beyond the bound
    ratio = _sample_ratio(sample, cand, u)
    if ratio is None or ratio.max() <= 1:
        return cand
    wt = weights(sample, cand, u)
    trimmed = cand
    for _ in range(3):
        keep = ratio <= np.quantile(ratio, 0.9)
        trimmed = _refine(sample, trimmed, np.where(keep, wt, 0.0), free, iterations)
        new = _sample_ratio(sample, trimmed, u)
        if new is None:
            return cand
        ratio = new
    if np.mean(ratio > 1) <= 0.1:
        trimmed.score = cand.score
        return trimmed
    return cand


def _sample_ratio(sample: Sample, cand: Candidate, u: float) -> np.ndarray | None:
    """Per element: the relative error of the model over the running-sum bound."""
    rel = _sample_rel(sample, cand)
    if rel is None:
        return None
    d, as_ = _d_and_as(sample, cand)
    r = rel_bound(cand.beta, u, cand.taps ** sample.geometry.terms, d, as_,
                  sample.running(cand.lo, cand.hi, cand.alpha, cand.k))
    return rel / r


def _d_and_as(sample: Sample, cand: Candidate) -> tuple[np.ndarray, np.ndarray]:
    s = sample.sums1(cand.lo, cand.hi)
    return cand.k + cand.alpha * s, cand.alpha * s


def _sample_rel(sample: Sample, cand: Candidate) -> np.ndarray | None:
    d, _ = _d_and_as(sample, cand)
    if not np.all(d > 0):
        return None
    with np.errstate(over="ignore"):
        return np.abs(np.expm1(-(sample.lg + cand.beta * np.log(d))))


def _refine(sample, cand, wt, free, iterations):
    s = sample.sums1(cand.lo, cand.hi)
    lg = sample.lg
    theta = np.array([cand.beta, cand.k, cand.alpha], dtype=np.float64)
    cost, r = _cost(lg, s, *theta, wt)
    if r is None:
        k, a = linear_fit(sample, s, cand.beta)
        theta = np.array([cand.beta, max(k, 1e-300), a])
        cost, r = _cost(lg, s, *theta, wt)
        if r is None:
            return cand
    mask = np.array(free)
    lam = 1e-6
    for _ in range(iterations):
        d = theta[1] + theta[2] * s
        jac = (np.stack([np.log(d), theta[0] / d, theta[0] * s / d], axis=1)
               * wt[:, None])[:, mask]
        scale = np.sqrt((jac * jac).sum(axis=0))
        scale[scale == 0] = 1.0
        js = jac / scale
        jtj = js.T @ js
        jtr = js.T @ r
        improved = False
        for _ in range(12):
            try:
                step = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-300), -jtr)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            trial = theta.copy()
            trial[mask] += step / scale
            if trial[1] < 0:
                trial[1] = 0.0
            new_cost, new_r = _cost(lg, s, *trial, wt)
            if new_r is not None and new_cost <= cost:
                small = np.all(np.abs(trial - theta) <= 1e-15 * np.maximum(np.abs(theta), 1e-300))
                theta, cost, r = trial, new_cost, new_r
                lam = max(lam / 10, 1e-12)
                improved = not small
                break
            lam *= 10
        if not improved:
            break
    return Candidate(cand.geometry, cand.lo, cand.hi, float(theta[0]), float(theta[1]),
                     float(theta[2]), cost / max(1, sample.n))


def sample_ratios(sample: Sample, cand: Candidate, u: float) -> dict[str, float]:
    """Max of |model g / g - 1| over the bound, per tier, on the sample."""
    s = sample.sums1(cand.lo, cand.hi)
    d = cand.k + cand.alpha * s
    if not np.all(d > 0):
        return {"direct": math.inf, "running-sum": math.inf, "q90": math.inf}
    with np.errstate(over="ignore"):
        rel = np.abs(np.expm1(-(sample.lg + cand.beta * np.log(d))))
    terms = cand.taps ** sample.geometry.terms
    direct = rel_bound(cand.beta, u, terms, d, cand.alpha * s, None)
    run = rel_bound(cand.beta, u, terms, d, cand.alpha * s,
                    sample.running(cand.lo, cand.hi, cand.alpha, cand.k))
    return {"direct": float(np.max(rel / direct)), "running-sum": float(np.max(rel / run)),
            "q90": float(np.quantile(rel / run, 0.9))}


def decimals(value: float, most: int = 9) -> list[float]:
    """``value`` rounded to 1, 2, ... ``most`` significant digits (distinct, shortest first)."""
    if value == 0 or not math.isfinite(value):
        return [value]
    out: list[float] = []
    for digits in range(1, most + 1):
        v = float(f"{value:.{digits - 1}e}")
        if v not in out and v != 0:
            out.append(v)
    return out


def snap(sample: Sample, cand: Candidate, u: float, tier: str) -> Candidate:
    """Round beta, then a', then k' to the shortest decimals that still fit within the
    ``tier`` bound on the sample (a' also as a round alpha divided by taps or taps²)."""

    def fits(c: Candidate) -> bool:
        return sample_ratios(sample, c, u)[tier] <= 1.0

    s = sample.sums1(cand.lo, cand.hi)
    wt = weights(sample, cand, u)
    best = cand
    for beta in dict.fromkeys([*BETA_COMMON, *decimals(cand.beta)]):
        k, a = linear_fit(sample, s, beta, wt=wt)
        trial = Candidate(cand.geometry, cand.lo, cand.hi, beta, k, a)
        if not fits(trial):
            trial = refine(sample, trial, u, free=(False, True, True), rounds=1)
        if fits(trial):
            best = trial
            break
    n = float(cand.taps)
    forms = [1.0, n, n * n] if cand.taps > 1 else [1.0]
    options: list[float] = []
    for digits in range(1, 10):
        for mult in forms:
            v = float(f"{best.alpha * mult:.{digits - 1}e}") / mult if best.alpha > 0 else 0.0
            if v > 0 and v not in options:
                options.append(v)
    for alpha in options:
        k, _ = linear_fit(sample, s, best.beta, alpha, wt=wt)
        trial = Candidate(cand.geometry, cand.lo, cand.hi, best.beta, k, alpha)
        if fits(trial):
            best = trial
            break
    for k in [0.0, *decimals(best.k)]:
        trial = Candidate(cand.geometry, cand.lo, cand.hi, best.beta, k, best.alpha)
        if fits(trial):
            best = trial
            break
    best.score = cand.score
    best.ratio = sample_ratios(sample, best, u)
    return best
