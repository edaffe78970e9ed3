"""Compare two arrays element by element, e.g. our LRN output against another framework's.

Agreement rule (``numpy.isclose`` semantics, ``b`` is the reference)
--------------------------------------------------------------------
A pair of finite values agrees when ``|a - b| <= atol + rtol * |b|``.  A pair where either value
is non-finite agrees only when both are identical: NaN with NaN (any payload), or the same
infinity.  Those that do not are counted in ``nan_mismatch`` (one NaN, ``inf`` vs ``-inf``, or an
infinity against a finite value) as well as in ``mismatched``.

Figures
-------
The arrays are first cast to the *comparison dtype*: float32 when both are float32 or float16
(ulps of float32 are what a float32 kernel can be asked for), otherwise float64.  ``max_abs``,
``max_rel`` (over ``b != 0``) and ``max_ulp`` are maxima over the pairs where both values are
finite; they are 0 when there is no such pair.  Ulps count the representable values of the
comparison dtype between ``a`` and ``b``, so ``+0`` and ``-0`` are 0 ulps apart and the smallest
positive and negative subnormals 2.  Arrays are walked in blocks, never copied whole.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lrn_cli.errors import ParameterError
from lrn_cli.stats import _block_slices, _check_real, _json_float, _normalize_axis

__all__ = ["ChannelDiff", "Comparison", "compare_arrays", "ulp_distance"]


@dataclass(frozen=True)
class ChannelDiff:
    """Differences within one channel (or the whole array); see the module docstring.

    ``mismatched`` counts the elements failing the tolerance (non-finite mismatches included)
    out of ``count`` elements.
    """

    max_abs: float
    max_rel: float
    max_ulp: int
    mismatched: int
    count: int

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-safe dict (NaN/Inf become None)."""
        return {k: _json_float(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Comparison:
    """Result of `compare_arrays`: overall and per-channel differences and the verdict.

    ``agree`` is True when no element mismatches.  ``worst_index`` is the index of the largest
    finite absolute difference, None when no finite pair differs.  ``channels`` is empty when
    there is no channel axis.
    """

    overall: ChannelDiff
    channels: tuple[ChannelDiff, ...]
    rtol: float
    atol: float
    dtype: str
    agree: bool
    shape: tuple[int, ...]
    worst_index: tuple[int, ...] | None
    nan_mismatch: int
    channel_axis: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (NaN/Inf become None, tuples become lists)."""
        return {
            "agree": self.agree,
            "dtype": self.dtype,
            "rtol": self.rtol,
            "atol": self.atol,
            "shape": list(self.shape),
            "channel_axis": self.channel_axis,
            "worst_index": None if self.worst_index is None else list(self.worst_index),
            "nan_mismatch": self.nan_mismatch,
            "overall": self.overall.as_dict(),
            "channels": [c.as_dict() for c in self.channels],
        }


def _comparison_dtype(a: np.dtype, b: np.dtype) -> np.dtype:
    """float32 when both are float16/float32 (their natural precision), float64 otherwise."""
    small = (np.dtype(np.float16), np.dtype(np.float32))
    if np.dtype(a) in small and np.dtype(b) in small:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the number of representable values between ``a`` and ``b`` as uint64.

    ``a`` and ``b`` must share a float32 or float64 dtype and be finite (the result for
    non-finite inputs is meaningless).  Floats are sign-magnitude, so the distance is the
    difference of magnitudes bit patterns when the signs agree and their sum when they do not;
    that makes ``+0``/``-0`` 0 apart and never overflows uint64.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != b.dtype or a.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ParameterError(f"ulp_distance needs two float32 or float64 arrays, not {a.dtype}")
    bits = np.uint32 if a.dtype == np.float32 else np.uint64
    sign_shift = 31 if a.dtype == np.float32 else 63
    ia = a.view(bits).astype(np.uint64)
    ib = b.view(bits).astype(np.uint64)
    mask = np.uint64((1 << sign_shift) - 1)
    ma, mb = ia & mask, ib & mask
    same = (ia >> np.uint64(sign_shift)) == (ib >> np.uint64(sign_shift))
    return np.where(same, np.maximum(ma, mb) - np.minimum(ma, mb), ma + mb)


def _tolerance(value: float, name: str) -> float:
    """Validate a tolerance: a finite, non-negative number."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a number, not {value!r}") from exc
    if not math.isfinite(v) or v < 0:
        raise ParameterError(f"{name} must be finite and >= 0, not {value!r}")
    return v


def compare_arrays(
    a: np.ndarray,
    b: np.ndarray,
    *,
    channel_axis: int | None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> Comparison:
    """Compare ``a`` against the reference ``b``, overall and per channel.

    Parameters
    ----------
    a, b
        Real numeric arrays of the same shape, any dtype/layout; ``b`` is the reference whose
        magnitude scales ``rtol``.
    channel_axis
        Axis along which to report per-channel differences (negative counts from the end), or
        None for overall figures only.
    rtol, atol
        Relative and absolute tolerances, finite and >= 0.

    Returns
    -------
    Comparison

    Raises
    ------
    ParameterError
        If the shapes differ, a dtype is not real numeric, a tolerance is invalid or
        ``channel_axis`` is out of range.
    """
    a = _check_real(a, "first array")
    b = _check_real(b, "second array")
    if a.shape != b.shape:
        raise ParameterError(f"shapes differ: {a.shape} vs {b.shape}")
    rtol = _tolerance(rtol, "rtol")
    atol = _tolerance(atol, "atol")
    ch = _normalize_axis(channel_axis, a.ndim)
    cdt = _comparison_dtype(a.dtype, b.dtype)
    nch = 1 if ch is None else a.shape[ch]
    axes: Any = None if ch is None else tuple(i for i in range(a.ndim) if i != ch)

    max_abs = np.zeros(nch)
    max_rel = np.zeros(nch)
    max_ulp = np.zeros(nch, np.uint64)
    mismatched = np.zeros(nch, np.int64)
    nan_mismatch = 0
    worst_value = 0.0
    worst_index: tuple[int, ...] | None = None

    def per_channel(r: Any) -> np.ndarray:
        return np.asarray(r).reshape(-1)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for idx in _block_slices(a.shape, ch):
            ab = np.asarray(a[idx], dtype=cdt)
            bb = np.asarray(b[idx], dtype=cdt)
            fa, fb = np.isfinite(ab), np.isfinite(bb)
            both = fa & fb
            all_finite = bool(both.all())
            if not all_finite:
                # Zero the non-finite pairs so that the figures below only see finite ones.
                identical = (np.isnan(ab) & np.isnan(bb)) | (ab == bb)
                bad_nonfinite = ~both & ~identical
                nan_mismatch += int(np.count_nonzero(bad_nonfinite))
                ab = np.where(both, ab, 0)
                bb = np.where(both, bb, 0)
            a64 = ab.astype(np.float64, copy=False)
            b64 = bb.astype(np.float64, copy=False)
            diff = np.abs(a64 - b64)
            absb = np.abs(b64)
            bad = ~(diff <= atol + rtol * absb)
            if not all_finite:
                bad |= bad_nonfinite
            rel = np.divide(diff, absb, out=np.zeros_like(diff), where=absb != 0)
            ulp = ulp_distance(ab, bb)

            max_abs = np.maximum(max_abs, per_channel(np.max(diff, axis=axes)))
            max_rel = np.maximum(max_rel, per_channel(np.max(rel, axis=axes)))
            max_ulp = np.maximum(max_ulp, per_channel(np.max(ulp, axis=axes)))
            mismatched += per_channel(np.count_nonzero(bad, axis=axes))

            flat = int(np.argmax(diff))
            if diff.flat[flat] > worst_value:
                worst_value = float(diff.flat[flat])
                local = np.unravel_index(flat, diff.shape)
                worst_index = tuple(
                    int(i) + (s.start or 0) for i, s in zip(local, idx, strict=True)
                )

    count = a.size // nch if nch else 0
    channels = tuple(
        ChannelDiff(float(max_abs[i]), float(max_rel[i]), int(max_ulp[i]), int(mismatched[i]),
                    count)
        for i in range(nch)
    )  # fmt: skip
    overall = ChannelDiff(
        max_abs=float(max_abs.max(initial=0.0)),
        max_rel=float(max_rel.max(initial=0.0)),
        max_ulp=int(max_ulp.max(initial=0)),
        mismatched=int(mismatched.sum()),
        count=int(a.size),
    )
    return Comparison(
        overall=overall,
        channels=channels if ch is not None else (),
        rtol=rtol,
        atol=atol,
        dtype=str(cdt),
        agree=overall.mismatched == 0,
        shape=tuple(int(s) for s in a.shape),
        worst_index=worst_index,
        nan_mismatch=nan_mismatch,
        channel_axis=ch,
    )
