"""Why an output is not an LRN of its input (``lrn explain``'s ``not-lrn`` causes): axes
permuted (transposed, or reshaped instead of transposed), the input's values rearranged,
values unrelated to it, a few elements or the edges computed another way, a near miss."""

from __future__ import annotations

import itertools
import math

import numpy as np

from lrn_cli.porting import fit as F
from lrn_cli.porting.results import Explanation


def near_miss(chk: F.Check, cand: F.Candidate | None = None) -> str | None:
    rel = chk.max_rel_error
    if not math.isfinite(rel):
        return None
    ratio = chk.ratio["running-sum"]
    if chk.nonfinite_unexplained and ratio <= 1:
        return (f"the closest LRN fits every finite element, but the output is NaN or "
                f"infinite at {chk.nonfinite_unexplained} elements where the input and the LRN "
                "are finite: an overflow or a 0/0 in the framework (k=0 with a window of "
                "zeros gives NaN), or corrupted values")
    if cand is not None and 0 < chk.outliers <= 0.1 * chk.compared:
        text = (f"the closest LRN fits all but {chk.outliers} of {chk.compared} elements "
                f"(they miss by up to {rel:.3g}, relative)")
        geo = cand.geometry
        edges = []
        for axis, length in zip(geo.axes, geo.lengths, strict=True):
            where = chk.outlier_positions.get(axis, [])
            reach = max(cand.lo, cand.hi)
            if where and length > 2 * reach + 1 and all(
                    min(i, length - 1 - i) < reach for i in where):
                edges.append(f"axis {axis} positions {_ranges_text(where)} of {length}")
        if edges:
            return (text + ": only where the window runs past the edge (" + "; ".join(edges)
                    + "): the borders are handled differently: the divisor counted as the "
                    "in-bounds taps (an average pool that excludes padding), padding that is "
                    "not zero, or the window clipped another way")
        return text + ": a few elements computed differently (or corrupted)"
    if rel < 3e-2:
        return (f"the closest LRN misses by {rel:.3g} (relative; {ratio:.3g}x the largest "
                "rounding a running sum could explain): lower-precision arithmetic "
                "(float16/bfloat16), an approximate power, a quantized output, or a slightly "
                "different input")
    return (f"no LRN comes close: the best misses by {rel:.3g} (relative): another layer "
            "(or more than LRN) lies between these tensors")


def _ranges_text(values: list[int]) -> str:
    """``[0, 1, 2, 7, 8]`` -> ``0-2, 7-8``."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)



def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return 0.0
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else 0.0


def _rearrangements(x_shape, y: np.ndarray):
    """``(text, array)`` for every way of reading ``y`` in ``x``'s shape by permuting axes:
    a transpose, or data in another axis order under the wrong shape (a reshape)."""
    ndim = y.ndim
    if ndim > 5:
        return
    for perm in itertools.permutations(range(ndim)):
        if list(perm) == list(range(ndim)):
            continue
        if tuple(y.shape[p] for p in perm) == tuple(x_shape):
            yield (f"the output's axes are the input's transposed (output.transpose({perm}) "
                   "lines up with the input)"), y.transpose(perm)
        shape = tuple(x_shape[p] for p in perm)
        if math.prod(shape) == y.size and shape != tuple(x_shape):
            inv = tuple(int(i) for i in np.argsort(perm))
            yield (f"the output holds its data in axis order {perm} of the input's but carries "
                   f"the input's shape (reshaped, not transposed)"), \
                y.reshape(shape).transpose(inv)


def diagnose(x: np.ndarray, y: np.ndarray, base: Explanation, seed: int) -> str | None:
    """The likely cause of a ``not-lrn`` verdict, when evident."""
    from lrn_cli.porting.explain import _identify, geometries

    direct = _corr(x, y)
    if x.shape == y.shape and not np.array_equal(x, y) and np.array_equal(
            np.sort(x, axis=None), np.sort(y, axis=None)):
        text = "the output holds exactly the input's values, rearranged (a permutation, not " \
               "a normalization)"
        for how, arr in _rearrangements(x.shape, y):
            if np.array_equal(arr, x):
                text += f": {how}"
                break
        return text
    scored = sorted(((_corr(x, arr), how, arr) for how, arr in _rearrangements(x.shape, y)),
                    key=lambda t: -t[0])
    for r, how, arr in scored[:2]:
        if r <= direct + 0.02:
            break
        sub = _identify(x, np.ascontiguousarray(arr), geometries(x.shape), Explanation(
            "not-lrn", shape=x.shape), seed=seed, diagnose=False)
        if sub.verdict == "lrn" and sub.fit is not None:
            return (f"layouts differ: {how}; lined up, it is this LRN: "
                    f"{sub.fit.semantics.describe()}")
    if scored and scored[0][0] > 0.9 and scored[0][0] > direct + 0.05:
        return f"layouts differ: {scored[0][1]} (correlation {scored[0][0]:.2f} lined up)"
    for axis in range(x.ndim):
        found = _reordered(x, y, axis)
        if found is None:
            continue
        how, arr = found
        sub = _identify(x, arr, geometries(x.shape), Explanation("not-lrn", shape=x.shape),
                        seed=seed, diagnose=False)
        if sub.verdict == "lrn" and sub.fit is not None:
            return (f"the output's slices are reordered along axis {axis} ({how}): channels "
                    "permuted (reversed, or BGR/RGB swapped) after the LRN, or the dump read "
                    f"in another order; lined up, it is this LRN: "
                    f"{sub.fit.semantics.describe()}")
    if abs(direct) < 0.5:
        agree = _sign_agreement(x, y)
        return (f"the shapes agree but the values are unrelated to the input (correlation "
                f"{direct:.2f}, signs agree at {agree:.0%} of elements): another tensor, or "
                "the output of a different input")
    return None


def _reordered(x: np.ndarray, y: np.ndarray, axis: int,
               limit: int = 1024) -> tuple[str, np.ndarray] | None:
    """``(how, y lined up)`` when each slice of ``y`` along ``axis`` correlates best with a
    different slice of ``x`` than its own (``y`` is a reordering of something like ``x``
    along that axis), else None.  Only a guess: the caller checks the lined-up array."""
    length = x.shape[axis]
    if length < 2 or length > limit:
        return None
    xs = np.nan_to_num(np.moveaxis(x, axis, 0).reshape(length, -1).astype(np.float64),
                       nan=0.0, posinf=0.0, neginf=0.0)
    ys = np.nan_to_num(np.moveaxis(y, axis, 0).reshape(length, -1).astype(np.float64),
                       nan=0.0, posinf=0.0, neginf=0.0)
    xs -= xs.mean(axis=1, keepdims=True)
    ys -= ys.mean(axis=1, keepdims=True)
    xn, yn = np.linalg.norm(xs, axis=1), np.linalg.norm(ys, axis=1)
    xflat, yflat = xn == 0, yn == 0  # constant slices (dead ReLU channels): matched in order
    if xflat.sum() != yflat.sum() or xflat.all():
        return None
    corr = (ys / np.where(yflat, 1, yn)[:, None]) @ (xs / np.where(xflat, 1, xn)[:, None]).T
    corr[:, xflat] = -np.inf
    perm = np.argmax(corr, axis=1)  # slice j of y looks like slice perm[j] of x
    perm[yflat] = np.flatnonzero(xflat)
    if len(set(perm.tolist())) != length or (perm == np.arange(length)).all():
        return None
    if (perm == np.arange(length)[::-1]).all():
        how = "reversed"
    else:
        moved = [(j, int(i)) for j, i in enumerate(perm) if i != j]
        more = ", ..." if len(moved) > 8 else ""
        how = (f"output slices {', '.join(str(j) for j, _ in moved[:8])}{more} hold the "
               f"input's {', '.join(str(i) for _, i in moved[:8])}{more}")
    return how, np.ascontiguousarray(np.take(y, np.argsort(perm), axis=axis))


def _sign_agreement(x, y) -> float:
    ok = np.isfinite(x) & np.isfinite(y) & ((x != 0) | (y != 0))
    if not ok.any():
        return 1.0
    return float(np.mean(np.sign(x[ok]) == np.sign(y[ok])))


def permuted_shapes(x, y, base: Explanation, *, mode, seed) -> Explanation:
    """Shapes that are a permutation of each other: is the output, its axes lined up with
    the input's, an LRN of it?"""
    from lrn_cli.porting.explain import _identify, geometries

    base.tried = []
    for how, arr in _rearrangements(x.shape, y):
        if not how.startswith("the output's axes"):
            continue
        sub = _identify(x, np.ascontiguousarray(arr), geometries(x.shape, mode=mode),
                        Explanation("not-lrn", shape=x.shape), seed=seed, diagnose=False)
        if sub.verdict == "lrn" and sub.fit is not None:
            base.cause = (f"layouts differ: output shape {y.shape} vs input {x.shape}; {how}; "
                          f"lined up, it is this LRN: {sub.fit.semantics.describe()}")
            base.fit = sub.fit
            return base
    base.cause = (f"layouts differ: output shape {y.shape} is the input's {x.shape} with "
                  "axes permuted, and no permutation of it is an LRN of the input")
    return base
