"""Helpers shared by the statistics modules (:mod:`lrn_cli.stats`, :mod:`lrn_cli.stats_divisor`,
:mod:`lrn_cli.compare`): JSON-safe values, input checks, and the blocks arrays are walked in."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from lrn_cli.errors import ParameterError
from lrn_cli.layouts import normalize_axis

_BLOCK = 1 << 19
"""Elements per block: 4 MiB in float64, small enough for cache, big enough for NumPy."""

BLOCK_TILE = 4096
"""Longest row piece of a block of the moments kernel, in values (``lrn_cli.stats``); the
kernel holds the channel dominance's per-pixel partials on its stack at this size."""


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
    """Turn a possibly negative axis into ``0 <= axis < ndim``, or raise ParameterError
    (:func:`lrn_cli.layouts.normalize_axis`, the one check of an axis)."""
    return normalize_axis(axis, ndim)


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


def _chunks() -> int:
    """Parallel chunks of the sums: fixed (not the thread count), so figures are the same
    bits whatever the number of threads or worker processes."""
    return 32
