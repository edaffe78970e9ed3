"""``lrn explain``: which LRN turned this input into this output, and why two outputs differ.

>>> from lrn_cli import explain
>>> result = explain("lrn_in.npy", "lrn_out.npy")                 # doctest: +SKIP
>>> result.verdict, result.fit.semantics.describe()                # doctest: +SKIP
('lrn', "across axis 1, window [c-2, c+2] (5 taps), a'=2e-05, k'=1, beta=0.75")
>>> explain("in.npy", "caffe_out.npy", "ncnn_out.npy").differences  # doctest: +SKIP

Method
------
LRN is ``y = x * g`` with the gain ``g = (k' + a'*S)**-beta``, ``S`` the sum of ``x**2``
over a window ``[c-lo, c+hi]`` of one axis (across) or that box on two axes (within).  So
``g = y/x`` at nonzero ``x`` gives ``h = g**(-1/beta) = k' + a'*S``: linear in ``S`` for the
right window and beta.

1. **Checks first.**  Shapes, emptiness, finite values; LRN keeps zeros and signs, so an
   output that is nonzero where the input is 0, or of the other sign, is no LRN of it
   (then the likely cause is looked for: axes permuted, values rearranged, unrelated).
2. **No effect.**  When ``g`` is one constant within a few ulps, LRN acted as a plain
   scale: the verdict is ``no-effect`` with ``k'**-beta`` and the largest ``a'`` the data
   cannot see.
3. **Geometries.**  Without ``--mode``/``--layout``, every axis of length > 1 (across) and
   every pair of such axes (within) is tried.
4. **Sample.**  Per geometry, whole lines (planes) of the arrays are taken, half the most
   energetic ones (where LRN acts most), half at random, with their prefix sums (summed-area
   tables): the sum over any window is then 2 (4) look-ups, exact at the edges.
5. **Screen.**  Every window ``0 <= lo, hi < axis length`` (past that every window is the
   same; beyond 128 offsets a grid refined around the best) against a grid of betas (with
   0.5, 0.75 and 1), by weighted least squares of ``h`` on ``S`` (weights ``1/h²``: relative
   errors); the covariances for all ``hi`` and betas of one ``lo`` are three matrix
   products.  The best windows go on.
6. **Refine.**  Levenberg-Marquardt on ``log g + beta*log(k' + a'*S)`` (the relative error,
   each element weighted by one over its bound) frees beta from the grid and polishes
   ``k'``, ``a'`` to the data's precision; the best windows of every geometry are refined.
   When a few elements spoil a fit (edges computed another way, a corrupted value), it is
   redone on the 90% that fit best, so that the cause can be located.
7. **Snap.**  Beta, then ``a'`` (as itself, or a round alpha over taps or taps²), then
   ``k'``, are rounded to the shortest decimal that still fits within the bound, so that
   ``1e-4`` is shown, not ``1.00000013e-4``.
8. **Exact check.**  The candidate runs through the library's kernels
   (:meth:`Semantics.apply`) on the whole input and every element is compared with the
   output against a per-element bound derived from the data (:mod:`lrn_cli.porting.bounds`):
   ``direct`` (a window summed term by term) and, failing that, ``running-sum`` (what an
   add-head/subtract-tail running sum along the line, as onnxruntime's, can carry).  A
   single global tolerance loose enough for a running sum would accept wrong windows.
9. **What else fits.**  Other candidates that pass the same bound are ``alternatives``; for
   the fit, the interval of each constant that still fits the sample within the bound (the
   others free) is computed from the L-infinity feasible set; wide ones are
   ``unidentifiable``.
10. **Causes.**  When nothing passes: the output's axes permuted (transposed, or reshaped
    instead of transposed) and then an LRN, a ReLU between the tensors, the input's values
    rearranged, values unrelated to it, an LRN everywhere but at the edges or at a few
    elements, or a near miss (lower-precision arithmetic).

Two outputs: both are identified (the candidate from its own input when given), and the
semantic differences are listed in words that name the converter behaviour known to cause
them (:func:`lrn_cli.porting.semantics.differences`); when the semantics agree, the outputs'
difference is arithmetic and its size in ulps is given.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from typing import Any

import numpy as np

from lrn_cli.errors import InputError, ParameterError
from lrn_cli.porting import causes, pair
from lrn_cli.porting import fit as F
from lrn_cli.porting.results import Explanation, Fit, NoEffect, PairExplanation, _num
from lrn_cli.porting.semantics import equivalents

__all__ = ["Explanation", "Fit", "NoEffect", "PairExplanation", "explain", "geometries",
           "identify"]

VERDICTS = ("lrn", "no-effect", "not-lrn")
#: Candidates given the exact check, and alternatives reported at most.
CHECKED = 8
#: Screened candidates refined (over all geometries, best screening scores first).
REFINED = 12
#: Of those, the best are also refitted without the few elements that spoil them.
TRIMMED = 3
MAX_ALTERNATIVES = CHECKED - 1
#: A constant whose fitting interval is wider than this (relative) is reported unidentifiable.
IDENTIFIED_REL = 1e-3


# ----------------------------------------------------------------------------------------
# inputs


def _read(obj: Any, key: str | None, role: str) -> tuple[np.ndarray, str]:
    if isinstance(obj, (str, os.PathLike)):
        from lrn_cli.porting.tensors import read_tensor

        return read_tensor(obj, key), os.fspath(obj)
    return np.asarray(obj), f"<{role}>"


def _checked(arr: np.ndarray, name: str, notes: list[str], role: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"{arr.dtype} data is not supported (need real numbers)")
    if arr.ndim == 0:
        raise InputError(name, "holds a scalar, not an array")
    if arr.size == 0:
        raise InputError(name, f"is empty (shape {arr.shape})")
    if arr.dtype.kind != "f":
        notes.append(f"{role} {arr.dtype} converted to float32")
        arr = arr.astype(np.float32)
    elif not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if not np.isfinite(arr).any():
        raise InputError(name, "holds no finite value (all NaN or infinite)")
    return arr


def _layout_axes(layout: str | None, channel_axis: int | None, ndim: int):
    """(across axes, within pairs) a layout or a channel axis allows; None: all."""
    from lrn_cli.core import spatial_axes
    from lrn_cli.layouts import channel_axis_of, check_layout

    if layout is not None and channel_axis is not None:
        raise ParameterError("give a layout or a channel axis, not both")
    if layout is not None:
        text = check_layout(layout, ndim)
        axis = channel_axis_of(text)
        if "H" in text and "W" in text:
            pair = (text.index("H"), text.index("W"))
        else:
            try:
                pair = spatial_axes(ndim, axis)
            except ParameterError:
                pair = None
        return ([axis] if axis is not None else []), ([pair] if pair else [])
    if channel_axis is not None:
        if not -ndim <= channel_axis < ndim:
            raise ParameterError(f"channel axis {channel_axis} is out of range for a "
                                 f"{ndim}-D array")
        axis = channel_axis % ndim
        try:
            pair = spatial_axes(ndim, axis)
        except ParameterError:
            pair = None
        return [axis], ([pair] if pair else [])
    return None, None


def geometries(shape: tuple[int, ...], *, mode: str | None = None, layout: str | None = None,
               channel_axis: int | None = None) -> list[F.Geometry]:
    """The geometries tried for an array of ``shape`` (see the module docstring)."""
    if mode not in (None, "across", "within"):
        raise ParameterError(f"mode must be 'across' or 'within', not {mode!r}")
    ndim = len(shape)
    across, within = _layout_axes(layout, channel_axis, ndim)
    big = [a for a in range(ndim) if shape[a] > 1]
    if across is None:
        across = big or [ndim - 1 if ndim < 2 else 1]
    if within is None:
        within = list(itertools.combinations(big, 2))
    out = []
    if mode in (None, "across"):
        out += [F.Geometry("across", (a,), (shape[a],)) for a in across]
    if mode in (None, "within"):
        out += [F.Geometry("within", tuple(p), (shape[p[0]], shape[p[1]])) for p in within]
    if not out:
        raise ParameterError(f"no {mode or 'LRN'} geometry to try on shape {shape} "
                             "(within needs two axes longer than 1)")
    return out


# ----------------------------------------------------------------------------------------
# one output


def identify(x: Any, y: Any, *, mode: str | None = None, layout: str | None = None,
             channel_axis: int | None = None, key: str | None = None,
             seed: int = 0, input_name: str | None = None) -> Explanation:
    """Find the LRN that turns ``x`` into ``y`` (arrays or file paths).

    Parameters
    ----------
    x, y
        The LRN layer's input and output: arrays, or ``.npy``/``.npz``/``.pb`` paths.
    mode
        ``"across"`` or ``"within"`` only (default: both).
    layout, channel_axis
        Only this layout's channel axis (across) and spatial axes (within); default: every
        axis of length > 1 and every pair of them.
    key
        The member of any ``.npz`` given.
    seed
        Seed of the random part of the sample (results are deterministic for a seed).
    input_name
        What to call ``x`` in messages when it is an array read from a file.

    Returns
    -------
    Explanation

    Raises
    ------
    InputError
        A file cannot be read, is empty or holds no finite value, or the shapes differ
        (other than by a permutation of the axes, which is a ``not-lrn`` verdict).
    ParameterError
        Bad mode, layout or channel axis.
    """
    notes: list[str] = []
    xa, xname = _read(x, key, "input")
    if input_name is not None:  # an array read from this file (the candidate's input)
        xname = input_name
    ya, yname = _read(y, key, "output")
    xa = _checked(xa, xname, notes, "input")
    ya = _checked(ya, yname, notes, "output")
    base = Explanation("not-lrn", input=xname, output=yname, shape=tuple(xa.shape),
                       dtype=str(ya.dtype), notes=notes, arrays=(xa, ya))
    if xa.shape != ya.shape:
        if sorted(xa.shape) != sorted(ya.shape):
            raise InputError(yname, f"shape {ya.shape} differs from {xname}: shape {xa.shape}")
        return causes.permuted_shapes(xa, ya, base, mode=mode, seed=seed)
    geos = geometries(xa.shape, mode=mode, layout=layout, channel_axis=channel_axis)
    base.tried = [g.label() for g in geos]
    result = _identify(xa, ya, geos, base, seed=seed)
    if result.verdict == "not-lrn" and (mode is not None or layout is not None
                                        or channel_axis is not None):
        # the restriction may be what is wrong (NCHW data given --layout NHWC): look on
        # the geometries it left out before blaming the data
        others = [g for g in geometries(xa.shape) if g not in geos]
        if others:
            sub = _identify(xa, ya, others, Explanation("not-lrn", shape=xa.shape),
                            seed=seed, diagnose=False)
            if sub.verdict == "lrn" and sub.fit is not None:
                result.cause = (
                    f"the layout, channel axis or mode given rules it out (tried "
                    f"{', '.join(base.tried)}); on the geometries it left out it is this "
                    f"LRN: {sub.fit.semantics.describe()} (give that axis or mode, or none)")
    return result


def _identify(x: np.ndarray, y: np.ndarray, geos: list[F.Geometry], base: Explanation, *,
              seed: int, diagnose: bool = True) -> Explanation:
    u = max(F.unit_roundoff(x.dtype), F.unit_roundoff(y.dtype))
    finite_input = bool(np.isfinite(x).all())
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        fin = np.isfinite(x) & np.isfinite(y)
        zero_x = fin & (x == 0)
        bad_zero = int(np.count_nonzero(zero_x & (y != 0)))
        nz = fin & (x != 0)
        g = np.where(nz, y / np.where(nz, x, 1), np.nan)
        flipped = int(np.count_nonzero(nz & (g < 0)))
        usable = nz & np.isfinite(g) & (g > 0)
    if bad_zero or flipped:
        why = []
        if bad_zero:
            why.append(f"nonzero at {bad_zero} of {int(np.count_nonzero(zero_x))} elements "
                       "where the input is 0 (LRN keeps zeros)")
        if flipped:
            why.append(f"of the other sign at {flipped} of {int(np.count_nonzero(nz))} "
                       "elements (LRN keeps signs)")
        base.cause = "the output is " + " and ".join(why)
        if diagnose:
            base.cause = causes.diagnose(x, y, base, seed) or base.cause
        return base
    if not usable.any():
        raise InputError(base.input, "has no element where the input is nonzero and both "
                         "are finite: nothing to fit")
    negative = fin & (x < 0)
    if diagnose and negative.any() and not np.any(y[negative]) and usable.any():
        # zero wherever the input is negative: a ReLU between the two tensors?
        sub = _identify(np.maximum(x, 0), y, geos, Explanation("not-lrn", shape=x.shape),
                        seed=seed, diagnose=False)
        if sub.verdict == "lrn" and sub.fit is not None:
            base.fit = sub.fit
            base.cause = ("the output is 0 wherever the input is negative: a ReLU lies "
                          "between these tensors (dump the LRN's input after it); of "
                          f"max(input, 0), it is this LRN: {sub.fit.semantics.describe()}")
            return base
    gu = g[usable]
    gmin, gmax = float(gu.min()), float(gu.max())
    spread = (gmax - gmin) / (gmax + gmin)
    if spread <= 8 * u:
        return _no_effect(x, y, gu, geos, base, u, seed)
    rng = np.random.default_rng(seed)
    screened: list[F.Candidate] = []
    samples: dict[F.Geometry, F.Sample] = {}
    for geo in geos:
        sample = F.Sample(x, y, geo, rng)
        if sample.n < 3:
            continue
        samples[geo] = sample
        grid = F.window_grid(geo.span)
        found = F.screen(sample, grid, grid)
        if geo.span > F.EXHAUSTIVE:
            found += [_local_search(sample, c) for c in found[:3]]
        screened += found
    screened.sort(key=lambda c: c.score)
    # the best of every geometry too: a screening score spoilt by a few far-off elements
    # (a running sum's) must not keep the right geometry from being refined
    chosen = screened[:REFINED]
    for geo in samples:
        first = next((c for c in screened if c.geometry == geo), None)
        if first is not None and all(first is not c for c in chosen):
            chosen.append(first)
    cands: dict[tuple, F.Candidate] = {}
    for i, c in enumerate(chosen):
        c = F.refine(samples[c.geometry], c, u, trim=i < TRIMMED)
        c.ratio = F.sample_ratios(samples[c.geometry], c, u)
        old = cands.get(c.key)
        if old is None or (c.ratio["running-sum"], c.score) < (old.ratio["running-sum"],
                                                                old.score):
            cands[c.key] = c
    if not cands:
        base.cause = (causes.diagnose(x, y, base, seed) if diagnose else None) or (
            "the gain y/x varies, but not with any window's sum of squares (or too few "
            "elements are nonzero and finite to tell): not an LRN of this input")
        return base
    ranked = sorted(cands.values(), key=lambda c: (min(c.ratio["running-sum"], 1e300),
                                                   c.score))
    hopeful = [c for c in ranked if c.ratio["running-sum"] <= 1][:CHECKED] or sorted(
        ranked, key=lambda c: c.ratio["q90"])[:2]
    checked: list[tuple[F.Candidate, F.Check]] = []
    for c in hopeful:
        sample = samples[c.geometry]
        tier = "direct" if c.ratio["direct"] <= 1 else "running-sum"
        tries = [F.snap(sample, c, u, tier), c] if c.ratio[tier] <= 1 else [c]
        best = None
        for t in tries:
            chk = F.check(x, y, t, u)
            if chk.nonfinite_mismatch and finite_input and chk.tier is not None:
                # NaN/Inf in the output where the input and ours have none: wrong, unless a
                # running sum's cancellation could have taken D to 0 or below there
                chk = dataclasses.replace(chk, tier=None if chk.nonfinite_unexplained
                                          else "running-sum")
            if best is None or _rank(chk) < _rank(best[1]):
                best = (t, chk)
            if chk.tier is not None:
                break
        assert best is not None
        checked.append(best)
    checked.sort(key=lambda tc: _rank(tc[1]))
    passing = [tc for tc in checked if tc[1].tier is not None]
    if not passing:
        # the closest: the fewest elements beyond the bound (a few far off, e.g. at the edges,
        # are more telling than a fit that misses everywhere by a little less)
        top, chk = min(checked, key=lambda tc: (tc[1].outliers, _rank(tc[1])))
        base.fit = _fit(top, chk)
        if diagnose:
            base.cause = causes.diagnose(x, y, base, seed) or causes.near_miss(chk, top)
        return base
    (top, chk), rest = passing[0], passing[1:]
    # alternatives meet the same bound as the fit: when the fit needs no running-sum
    # allowance, one that does is no alternative
    rest = [tc for tc in rest if _rank(tc[1])[0] <= _rank(chk)[0]]
    base.verdict = "lrn"
    base.fit = _fit(top, chk)
    base.alternatives = [_fit(c, k) for c, k in rest[:MAX_ALTERNATIVES]]
    sem = base.fit.semantics
    base.equivalents = equivalents(sem, axis_length=top.geometry.span, ndim=x.ndim)
    base.unidentifiable = _unidentifiable(samples[top.geometry], top, chk, u, rest)
    base.notes += _window_notes(top, rest)
    if chk.nonfinite_mismatch:
        base.notes.append(f"{chk.nonfinite_mismatch} elements are non-finite on one side "
                          "only (the input's NaN/Inf spread differently); not compared")
    return base


def _local_search(sample: F.Sample, c: F.Candidate, reach: int = 40) -> F.Candidate:
    """Beyond the exhaustive range windows are screened on a grid: screen every window within
    ``reach`` of the best (the box holds it, so the best can only improve), and move the box
    while the best lies on its edge."""
    span = sample.geometry.span
    best = c
    for _ in range(12):
        los = np.arange(max(0, best.lo - reach), min(span, best.lo + reach + 1))
        his = np.arange(max(0, best.hi - reach), min(span, best.hi + reach + 1))
        found = F.screen(sample, los, his, top=1)
        if not found or found[0].score >= best.score:
            break
        best = found[0]
        on_edge = (best.lo in (los[0], los[-1]) and 0 < best.lo < span - 1) or (
            best.hi in (his[0], his[-1]) and 0 < best.hi < span - 1)
        if not on_edge:
            break
    return best


def _rank(chk: F.Check) -> tuple:
    order = {"direct": 0, "running-sum": 1, None: 2}
    ratio = chk.ratio["direct"] if chk.tier == "direct" else chk.ratio["running-sum"]
    return (order[chk.tier], ratio if math.isfinite(ratio) else math.inf)


def _fit(c: F.Candidate, chk: F.Check) -> Fit:
    ratio = chk.ratio["direct"] if chk.tier == "direct" else chk.ratio["running-sum"]
    return Fit(c.semantics(), chk.max_rel_error, chk.max_ulps, chk.tier, ratio, chk.compared)


def _unidentifiable(sample: F.Sample, c: F.Candidate, chk: F.Check, u: float,
                    rest: list[tuple[F.Candidate, F.Check]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    spans = F.ranges(sample, c, u, chk.tier or "running-sum")
    values = {"beta": c.beta, "alpha_eff": c.alpha, "k_eff": c.k}
    for name in ("alpha_eff", "k_eff", "beta"):
        if name not in spans:
            continue
        low, high = spans[name]
        low, high = min(low, values[name]), max(high, values[name])
        scale = max(abs(values[name]), abs(high), 1e-300)
        if high - low > IDENTIFIED_REL * scale:
            out.append({"field": name, "low": _num(low), "high": _num(high)})
    others = [o for o, _ in rest]
    if others:
        windows = [(c.lo, c.hi)] + [(o.lo, o.hi) for o in others]
        if len(set(windows)) > 1:
            out.append({"field": "window", "low": [min(w[0] for w in windows),
                                                   min(w[1] for w in windows)],
                        "high": [max(w[0] for w in windows), max(w[1] for w in windows)]})
        where = {(c.geometry.mode, c.geometry.axes)} | {(o.geometry.mode, o.geometry.axes)
                                                        for o in others}
        if len({m for m, _ in where}) > 1:
            out.append({"field": "mode", "low": None, "high": None,
                        "values": sorted({m for m, _ in where})})
        axes = sorted({a for m, a in where if m == c.geometry.mode})
        if len(axes) > 1:
            name = "channel_axis" if c.geometry.mode == "across" else "spatial_axes"
            out.append({"field": name, "low": None, "high": None,
                        "values": [a[0] if name == "channel_axis" else list(a) for a in axes]})
    return out


def _window_notes(c: F.Candidate, rest) -> list[str]:
    notes = []
    geo = c.geometry
    last = geo.span - 1
    if c.lo == 0 and c.hi == 0:
        notes.append("a 1-tap window: y = x*(k' + a'*x²)^-beta, the same on any axis and in "
                     "either mode")
    elif last > 0 and (c.lo >= last or c.hi >= last):
        sides = []
        if c.lo >= last:
            sides.append(f"lo >= {last}")
        if c.hi >= last:
            sides.append(f"hi >= {last}")
        what = "the whole axis" if geo.mode == "across" else "the whole plane"
        notes.append(f"the window reaches past the end of {what} ({' and '.join(sides)}): "
                     "this is the clipped window; any wider one on that side computes the same")
    if rest:
        notes.append(f"{len(rest)} other LRN{'s' if len(rest) > 1 else ''} also fit within "
                     "the bound (alternatives): the data cannot tell them apart")
    return notes


def _no_effect(x, y, gu, geos, base: Explanation, u: float, seed: int) -> Explanation:
    gain = float(np.median(gu))
    for cand in (float(f"{gain:.{d}e}") for d in range(0, 9)):
        if np.max(np.abs(gu / cand - 1)) <= 8 * u:
            gain = cand
            break
    with np.errstate(invalid="ignore", over="ignore"):
        pred = (x.astype(np.float64) * gain).astype(y.dtype)
        fin = np.isfinite(y) & np.isfinite(pred)
        nzy = fin & (y != 0)
        rel = float(np.max(np.abs(pred[nzy].astype(np.float64) / y[nzy] - 1))) if nzy.any() \
            else 0.0
        max_ulp = int(np.max(F.ulps(pred[fin], y[fin], y.dtype))) if fin.any() else 0
    tol = 8 * u
    rng = np.random.default_rng(seed)
    loosest = 0.0
    for geo in geos:
        sample = F.Sample(x, y, geo, rng)
        if sample.n < 2:
            continue
        offsets = np.unique(np.concatenate([F.window_grid(geo.span)[:16], [geo.span - 1]]))
        for lo in offsets:
            s = sample.sums(int(lo), offsets)
            spread = s.max(axis=0) - s.min(axis=0)
            with np.errstate(divide="ignore"):
                bound = np.where(spread > 0, tol / spread, np.inf)
            loosest = max(loosest, float(bound.max()))
    base.verdict = "no-effect"
    base.no_effect = NoEffect(gain, rel, max_ulp, loosest if math.isfinite(loosest) else None)
    if gain == 1.0 and max_ulp == 0:
        base.notes.append("the output equals the input: no LRN was applied (or one with "
                          "a'S far below k')")
    elif gain == 1.0:
        base.notes.append(f"the output is the input to within {max_ulp} ulps: no LRN was "
                          "applied, or one with a'S far below k'")
    else:
        base.notes.append(f"the output is the input times {gain:.9g} (k'^-beta when a'S is "
                          "negligible): every divisor is the same on these data (a'*S far "
                          "below k', or S the same everywhere); scale or vary the input to "
                          "see the LRN")
    return base


# ----------------------------------------------------------------------------------------
# two outputs


def explain(input: Any, output: Any, output2: Any = None, *, candidate_input: Any = None,
            mode: str | None = None, layout: str | None = None,
            channel_axis: int | None = None, candidate_layout: str | None = None,
            key: str | None = None, seed: int = 0) -> Explanation | PairExplanation:
    """Identify the LRN that produced ``output`` from ``input``; with ``output2`` (the
    candidate, e.g. the converted model's), identify both and say how they differ.

    Parameters
    ----------
    input, output, output2
        Arrays or ``.npy``/``.npz``/``.pb`` paths.  ``output`` is the reference.
    candidate_input
        The candidate's own LRN input (default: ``input``); its layout may differ.
    mode, layout, channel_axis, key, seed
        As for :func:`identify` (``layout``/``channel_axis`` describe ``input``).
    candidate_layout
        The candidate input's layout, when it cannot be told from the shapes.

    Returns
    -------
    Explanation
        For one output.
    PairExplanation
        For two.
    """
    if output2 is None:
        if candidate_input is not None or candidate_layout is not None:
            raise ParameterError("candidate_input/candidate_layout need a second output")
        return identify(input, output, mode=mode, layout=layout, channel_axis=channel_axis,
                        key=key, seed=seed)
    if candidate_layout is not None and candidate_input is None:
        raise ParameterError("candidate_layout is the layout of candidate_input: give the "
                             "candidate's own input too (else it shares the input's layout)")
    ref = identify(input, output, mode=mode, layout=layout, channel_axis=channel_axis,
                   key=key, seed=seed)
    assert ref.arrays is not None
    x_ref = ref.arrays[0]
    notes: list[str] = []
    if candidate_input is None:
        cand = identify(x_ref, output2, mode=mode, layout=layout, channel_axis=channel_axis,
                        key=key, seed=seed, input_name=ref.input)
        cand.input = ref.input
        cand.output = _read_name(output2, "output2")
        if cand.verdict == "not-lrn" and cand.cause and cand.cause.startswith("layouts"):
            notes.append("the candidate's layout differs from the input's: give its own LRN "
                         "input with --candidate-input")
    else:
        x2, x2name = _read(candidate_input, key, "candidate input")
        x2 = _checked(x2, x2name, notes, "candidate input")
        c_layout = candidate_layout
        c_axis = None
        if c_layout is None and (layout is not None or channel_axis is not None):
            c_layout, c_axis, why = pair.candidate_layout(x_ref, x2, layout, channel_axis)
            if why:
                notes.append(why)
        cand = identify(x2, output2, mode=mode, layout=c_layout, channel_axis=c_axis,
                        key=key, seed=seed, input_name=x2name)
        cand.input = x2name
        cand.output = _read_name(output2, "output2")
    return pair.compare(ref, cand, notes)


def _read_name(obj, role):
    return os.fspath(obj) if isinstance(obj, (str, os.PathLike)) else f"<{role}>"
