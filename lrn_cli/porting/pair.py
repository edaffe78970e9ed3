"""Two outputs of ``lrn explain``: the candidate input's layout from the reference's, and
the differences between the two explanations (the pair of fits that differ least, constants
compared against what the data can show, a missing layer, arithmetic in ulps)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from lrn_cli.porting.bounds import ulps
from lrn_cli.porting.results import Explanation, PairExplanation
from lrn_cli.porting.semantics import Difference, differences


def candidate_layout(x, x2, layout, channel_axis):
    """The candidate input's layout from the reference's, when ``x2`` is ``x`` transposed."""
    from lrn_cli.layouts import check_layout, layout_from_axis

    if x2.shape == x.shape:
        return layout, channel_axis, None
    text = check_layout(layout, x.ndim) if layout is not None else layout_from_axis(
        x.ndim, channel_axis % x.ndim)
    matches = []
    if x2.ndim == x.ndim:
        for perm in itertools.permutations(range(x.ndim)):
            if tuple(x.shape[p] for p in perm) == x2.shape and np.array_equal(
                    x.transpose(perm), x2):
                matches.append(perm)
    if len(matches) == 1:
        perm = matches[0]
        new = "".join(text[p] for p in perm)
        return new, None, f"candidate input is the input transposed: layout {text} -> {new}"
    return None, None, ("the candidate input's layout cannot be told from the input's "
                        "(give --candidate-layout): every axis tried")


def compare(ref: Explanation, cand: Explanation, notes: list[str]) -> PairExplanation:
    diffs: list[Difference] = []
    arithmetic = None
    if ref.verdict == "lrn" and cand.verdict == "lrn":
        assert ref.fit is not None and cand.fit is not None
        # when the data cannot tell some LRNs apart, compare the pair of fits (best fits
        # first) that differ least: a difference is only said when no fit avoids it
        pairs = [(i + j, a, b) for i, a in enumerate([ref.fit, *ref.alternatives])
                 for j, b in enumerate([cand.fit, *cand.alternatives])]
        best = None
        for rank, a, b in pairs:
            found, unprovable = [], []
            for d in differences(a.semantics, b.semantics, rtol=1e-6):
                if d.field in ("alpha_eff", "k_eff", "beta"):
                    (rl, rh), (cl, ch) = _interval(ref, d.field), _interval(cand, d.field)
                    if rl <= ch and cl <= rh:  # what fits the one fits the other too
                        unprovable.append(
                            f"{d.field}: {d.reference:.6g} vs {d.candidate:.6g}, but the data "
                            f"fit [{rl:.6g}, {rh:.6g}] and [{cl:.6g}, {ch:.6g}]: not a "
                            "difference they can show")
                        continue
                found.append(d)
            if best is None or (len(found), rank) < (len(best[0]), best[1]):
                best = (found, rank, unprovable, a, b)
        assert best is not None
        diffs, _, unprovable, a, b = best
        notes += unprovable
        if a is not ref.fit or b is not cand.fit:
            notes.append("compared with the alternative fits that differ least: "
                         f"{a.semantics.describe()} vs {b.semantics.describe()}")
        if not diffs:
            arithmetic = _arithmetic(ref, cand)
    elif ref.verdict == "lrn" and cand.verdict == "no-effect":
        diffs.append(_layer_difference(cand, "LRN", True))
    elif ref.verdict == "no-effect" and cand.verdict == "lrn":
        diffs.append(_layer_difference(ref, "LRN", False))
    elif ref.no_effect is not None and cand.no_effect is not None:
        g1, g2 = ref.no_effect.gain, cand.no_effect.gain
        if g1 != g2:
            notes.append(f"both act as plain scales on these data, x{g1:.9g} vs x{g2:.9g}: "
                         "k' or beta differ; scale the input up to see more")
        else:
            notes.append("both act as the same plain scale on these data: scale the input up "
                         "to compare their LRNs")
    return PairExplanation(ref, cand, diffs, arithmetic, notes)


def _interval(side: Explanation, name: str) -> tuple[float, float]:
    """The values of constant ``name`` that fit ``side``: its range when unidentifiable."""
    assert side.fit is not None
    value = float(getattr(side.fit.semantics, name))
    for u in side.unidentifiable:
        if u["field"] == name and u.get("low") is not None:
            return min(u["low"], value), max(u["high"], value)
    return value, value


def _layer_difference(plain: Explanation, what: str, candidate_plain: bool) -> Difference:
    ne = plain.no_effect
    assert ne is not None
    side = "candidate" if candidate_plain else "reference"
    if ne.identity and ne.max_ulps == 0:
        text = (f"the {side} output equals its input: the LRN layer is missing there "
                "(dropped or folded away in the conversion)")
        value = None
    elif ne.identity:
        bound = ne.alpha_eff_max(0.75)
        text = (f"the {side} output is its input to within {ne.max_ulps} ulps: the LRN layer "
                "is missing there (dropped or folded away in the conversion), or its a' is "
                "too small to see" + (f" (a' <= {bound:.3g} for beta 0.75)"
                                      if bound is not None else ""))
        value = None
    else:
        text = (f"the {side} output is its input times {ne.gain:.9g}: its LRN acts as a "
                "plain scale (a' lost or far too small, or an input far smaller)")
        value = f"scale x{ne.gain:.9g}"
    ref, cand = (what, value) if candidate_plain else (value, what)
    return Difference("layer", ref, cand, text)


def _arithmetic(ref: Explanation, cand: Explanation) -> dict[str, Any] | None:
    if ref.arrays is None or cand.arrays is None:
        return None
    (x1, y1), (x2, y2) = ref.arrays, cand.arrays
    if x1.shape != x2.shape or not np.array_equal(x1, x2, equal_nan=True) or y1.shape != y2.shape:
        return {"same_input": False, "max_rel_difference": None, "max_ulps": None,
                "text": "same LRN; the inputs differ, so the outputs are not compared"}
    dtype = np.result_type(y1.dtype, y2.dtype)
    a, b = y1.astype(dtype), y2.astype(dtype)
    ok = np.isfinite(a) & np.isfinite(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        nz = ok & (a != 0)
        rel = float(np.max(np.abs(b[nz].astype(np.float64) / a[nz] - 1))) if nz.any() else 0.0
    ulp = int(np.max(ulps(a[ok], b[ok], dtype))) if ok.any() else 0
    if ulp == 0:
        text = "same LRN, identical outputs"
    else:
        text = (f"same LRN; the outputs differ by arithmetic only (summation order, pow): "
                f"max {ulp} ulps, {rel:.3g} relative")
    return {"same_input": True, "max_rel_difference": rel, "max_ulps": ulp, "text": text}
