"""A plain NumPy float64 LRN, written straight from the formula, to check the kernels against.

Slow and memory-hungry on purpose: it pads, loops over window offsets and never subtracts, so
it is easy to read and hard to get wrong.  Use it to check :func:`lrn_cli.lrn` on your data.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lrn_cli.conventions import DEFAULT_CONVENTION, DEFAULTS, Convention, resolve


def _window_sum(sq: np.ndarray, axis: int, lo: int, hi: int) -> np.ndarray:
    """``out[i] = sum(sq[j] for j in [i-lo, i+hi] if 0 <= j < len)`` along ``axis``."""
    length = sq.shape[axis]
    out = np.zeros_like(sq)
    for offset in range(-lo, hi + 1):
        # out[i] += sq[i + offset] where 0 <= i + offset < length
        dst = slice(max(0, -offset), min(length, length - offset))
        src = slice(max(0, offset), min(length, length + offset))
        if dst.start >= dst.stop:
            continue
        idx_dst = [slice(None)] * sq.ndim
        idx_src = [slice(None)] * sq.ndim
        idx_dst[axis] = dst
        idx_src[axis] = src
        out[tuple(idx_dst)] += sq[tuple(idx_src)]
    return out


def _spatial_axes(ndim: int, channel_axis: int | None) -> tuple[int, int]:
    others = [a for a in range(ndim) if a != channel_axis]
    if len(others) < 2:
        raise ValueError("within-channel mode needs two spatial axes")
    return others[-2], others[-1]


def reference_divisor(
    x: ArrayLike, size: int = DEFAULTS.size, alpha: float = DEFAULTS.alpha,
    beta: float = DEFAULTS.beta, k: float = DEFAULTS.k, *, mode: str = "across",
    convention: str | Convention = DEFAULT_CONVENTION, channel_axis: int | None = 1,
) -> np.ndarray:
    """The divisor ``D = k' + a' * S`` in float64 (see :func:`reference_lrn`).

    Examples
    --------
    >>> import numpy as np
    >>> from lrn_cli import reference_divisor
    >>> x = np.arange(1.0, 5.0).reshape(1, 4, 1, 1)
    >>> print(reference_divisor(x, size=3, alpha=3.0, k=1.0).ravel())
    [ 6. 15. 30. 26.]
    """
    r = resolve(convention, mode, size, alpha, beta, k)
    x = np.asarray(x, dtype=np.float64)
    sq = x * x
    if channel_axis is not None:
        channel_axis = channel_axis % x.ndim
    if mode == "across":
        if channel_axis is None:
            raise ValueError("across-channel mode needs a channel axis")
        s = _window_sum(sq, channel_axis, r.lo, r.hi)
    else:
        ah, aw = _spatial_axes(x.ndim, channel_axis)
        s = _window_sum(_window_sum(sq, ah, r.lo, r.hi), aw, r.lo, r.hi)
    return r.k_eff + r.alpha_eff * s


def reference_lrn(
    x: ArrayLike, size: int = DEFAULTS.size, alpha: float = DEFAULTS.alpha,
    beta: float = DEFAULTS.beta, k: float = DEFAULTS.k, *, mode: str = "across",
    convention: str | Convention = DEFAULT_CONVENTION, channel_axis: int | None = 1,
) -> np.ndarray:
    """LRN in float64: ``y = x * (k' + a' * S) ** -beta``.

    Parameters mean what they mean in :func:`lrn_cli.lrn`.  Within-channel mode sums a
    ``size x size`` box over the last two non-channel axes.

    Examples
    --------
    >>> import numpy as np
    >>> from lrn_cli import reference_lrn
    >>> x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    >>> print(reference_lrn(x, size=3, alpha=3.0, beta=1.0, k=1.0).ravel())   # x / (1 + S)
    [0.16666667 0.13333333 0.21428571]
    """
    d = reference_divisor(x, size, alpha, beta, k, mode=mode, convention=convention,
                          channel_axis=channel_axis)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray(x, dtype=np.float64) * d ** -float(beta)


def reference_lrn_backward(
    x: ArrayLike, grad_output: ArrayLike, size: int = DEFAULTS.size,
    alpha: float = DEFAULTS.alpha, beta: float = DEFAULTS.beta, k: float = DEFAULTS.k, *,
    mode: str = "across", convention: str | Convention = DEFAULT_CONVENTION,
    channel_axis: int | None = 1,
) -> np.ndarray:
    """Gradient of :func:`reference_lrn` w.r.t. ``x``, in float64.

    ``dx_j = g_j D_j^-b - 2 b a' x_j sum_{i: j in W(i)} g_i x_i D_i^(-b-1)``; the adjoint
    window ``{i : j in W(i)} = [j-hi, j+lo]`` is the mirror of the forward window.

    Examples
    --------
    >>> import numpy as np
    >>> from lrn_cli import lrn_backward, reference_lrn_backward
    >>> x = np.linspace(0.5, 2.0, 8).reshape(1, 8, 1, 1)
    >>> g = np.ones_like(x)
    >>> ref = reference_lrn_backward(x, g, size=3, alpha=0.3, k=1.0)
    >>> bool(np.allclose(lrn_backward(x, g, size=3, alpha=0.3, k=1.0), ref, rtol=1e-12))
    True
    """
    r = resolve(convention, mode, size, alpha, beta, k)
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(grad_output, dtype=np.float64)
    d = reference_divisor(x, size, alpha, beta, k, mode=mode, convention=convention,
                          channel_axis=channel_axis)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = g * x * d ** (-beta - 1.0)
        if mode == "across":
            if channel_axis is None:
                raise ValueError("across-channel mode needs a channel axis")
            u = _window_sum(t, channel_axis % x.ndim, r.hi, r.lo)
        else:
            ah, aw = _spatial_axes(x.ndim, None if channel_axis is None else channel_axis % x.ndim)
            u = _window_sum(_window_sum(t, ah, r.hi, r.lo), aw, r.hi, r.lo)
        return g * d ** -beta - 2.0 * beta * r.alpha_eff * x * u
