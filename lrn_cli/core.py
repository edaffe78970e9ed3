"""The public LRN API: validation, dtype and layout handling over the private kernels.

``lrn`` computes ``y = x * (k' + a' * S) ** -beta`` where ``S`` sums ``x**2`` over a window
of neighbouring channels (``mode="across"``) or over a ``size x size`` box in each channel's
two spatial axes (``mode="within"``), exactly as the chosen framework convention defines it
(see :mod:`lrn_cli.conventions`).

Memory: besides the input and the output, only per-thread scratch blocks are allocated (a
few times 64 KiB for typical shapes), never a padded copy or an ``x**2`` array.  Inputs that
the kernels cannot read directly (float16, integers, bool, non-native byte order) are
converted one slab at a time (at most 1/16 of the input, at least 1 MiB).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from lrn_cli import dispatch
from lrn_cli._jit import beta_mode
from lrn_cli.conventions import (
    DEFAULT_CONVENTION,
    DEFAULTS,
    Convention,
    Resolved,
    resolve,
    window_size,
)
from lrn_cli.errors import ParameterError
from lrn_cli.layouts import normalize_axis

Mode = Literal["across", "within"]



class DtypeConversionWarning(UserWarning):
    """Integer or bool input was converted to float32 (the result is float32)."""


def _kernels():
    # imported on first use so that `import lrn_cli` compiles and loads nothing from numba
    from lrn_cli import _kernels

    return _kernels


def set_threads(n: int | None) -> int:
    """Set the number of threads the kernels use (``None``: all cores); return the old count.

    Examples
    --------
    >>> from lrn_cli import set_threads
    >>> old = set_threads(1)
    >>> set_threads(old)
    1
    """
    import numba

    old = numba.get_num_threads()
    # numba's stubs do not declare the config values it sets at import
    default = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    numba.set_num_threads(default if n is None else max(1, int(n)))
    return old


def result_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype ``lrn`` returns for an input of ``dtype`` (raises for complex/object/str)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        if dtype.itemsize == 2:
            return np.dtype(np.float16)
        if dtype.itemsize == 4:
            return np.dtype(np.float32)
        if dtype.itemsize == 8:
            return np.dtype(np.float64)
        raise ParameterError(f"{dtype} input is not supported (use float16, float32 or float64)")
    if dtype.kind in "iub":
        return np.dtype(np.float32)
    if dtype.kind == "c":
        raise ParameterError(f"complex input ({dtype}) is not supported: LRN is defined for reals")
    raise ParameterError(f"{dtype} input is not supported: expected a real numeric array")


def spatial_axes(ndim: int, channel_axis: int | None) -> tuple[int, int]:
    """The two axes a within-channel window spans: the last two that are not channels."""
    others = [a for a in range(ndim) if a != channel_axis]
    if len(others) < 2:
        raise ParameterError(
            f"within-channel mode needs two spatial axes; a {ndim}-D array with "
            f"channel_axis={channel_axis} has {len(others)}"
        )
    return others[-2], others[-1]


# ----------------------------------------------------------------------------------------
# views: reduce any layout to the 3-D shapes the kernels take, without copying


def _merge(arrays: tuple[np.ndarray, ...], shape: tuple[int, ...]):
    try:
        return tuple(np.reshape(a, shape, copy=False) for a in arrays)
    except ValueError:
        return None


def _views3(arrays: tuple[np.ndarray, ...], lead: int, core: int) -> Iterator[tuple]:
    """Yield tuples of 3-D views ``(outer, A, B)`` covering ``arrays`` (all the same shape).

    The arrays' axes are ``lead`` outer axes, then ``core`` axes merged into A (one axis)
    and B (the rest); when a merge would need a copy, split the first outer axis (or the
    last axis) and try again.
    """
    shape = arrays[0].shape
    outer = math.prod(shape[:lead])
    mid = shape[lead]
    inner = math.prod(shape[lead + 1:])
    merged = _merge(arrays, (outer, mid, inner))
    if merged is not None:
        yield merged
    elif lead > 0:
        for i in range(shape[0]):
            yield from _views3(tuple(a[i] for a in arrays), lead - 1, core)
    else:
        for i in range(shape[-1]):
            yield from _views3(tuple(a[..., i] for a in arrays), lead, core - 1)


def _memory_order(arrays: tuple[np.ndarray, ...], axis: int) -> tuple | None:
    """``arrays`` with their axes in memory order (slowest first) and where the channel
    axis went, when every array has the same order and it is not already theirs: a
    Fortran-ordered or transposed array is then viewed as the C-ordered array it is.  An
    across window only reads along the channel axis, so the order of the other axes
    changes no number and no sum (the same bits), only how the views merge."""
    first = arrays[0]
    if first.flags.c_contiguous or first.ndim < 2:
        return None
    order = None
    for a in arrays:
        if min(a.strides) < 0:
            return None
        this = tuple(sorted(range(a.ndim), key=lambda i: -a.strides[i]))  # stable
        if order is not None and this != order:
            return None
        order = this
    if order is None or order == tuple(range(first.ndim)):
        return None
    return tuple(a.transpose(order) for a in arrays), order.index(axis)


def _layout_views(arrays, mode: str, channel_axis: int | None) -> Iterator[tuple]:
    ndim = arrays[0].ndim
    if mode == "across":
        if channel_axis is None:
            raise ParameterError("across-channel mode needs a channel axis")
        moved = _memory_order(tuple(arrays), channel_axis)
        if moved is not None:
            arrays, channel_axis = moved
        for views in _views3(arrays, channel_axis, ndim - channel_axis):
            outer, _, inner = views[0].shape
            if inner < dispatch.CHANNELS_LAST_INNER and outer > inner:
                # channels-last: let the kernel tile the (long) outer axis instead
                views = tuple(v.transpose(2, 1, 0) for v in views)
            yield views
    else:
        ah, aw = spatial_axes(ndim, channel_axis)
        order = [a for a in range(ndim) if a not in (ah, aw)] + [ah, aw]
        moved = tuple(a.transpose(order) for a in arrays)
        if ndim == 2:
            moved = tuple(a[None] for a in moved)
            lead = 0
        else:
            lead = ndim - 2
        shape = moved[0].shape
        planes = math.prod(shape[:lead])
        merged = _merge(moved, (planes, shape[-2], shape[-1]))
        if merged is not None:
            yield merged
        else:
            for idx in np.ndindex(*shape[:lead]):
                yield tuple(m[idx][None] for m in moved)


# ----------------------------------------------------------------------------------------
# executing plans (lrn_cli.dispatch decides which kernel runs; nothing is decided here)


def _run_forward(x, y, d, r: Resolved, mode: str, bases: tuple[int, int] = (0, 0)) -> None:
    """Fill ``y`` and/or ``d`` (either may be None) from matching 3-D views ``x``.

    Runs :func:`lrn_cli.dispatch.forward_plan`'s plan.  ``bases``: absolute index of the
    first channel (across) or of the first row and column (within) of these views in the
    whole array; the block sums are anchored to it.
    """
    plan = dispatch.forward_plan(x, y, d, r, mode, nested=False)
    p = plan.params
    driver = plan.driver
    if driver == "converted":
        _run_converted(x, y, d, r, mode, bases)
        return
    if driver == "planar":
        _run_planar(x, y, d, r, bases)
        return
    kern = _kernels()
    bmode = beta_mode(r.beta)
    if driver == "across_channels_last":
        x2, y2, d2 = _pixel_rows((x, y, d))
        a, k, beta = (x2.dtype.type(v) for v in (r.alpha_eff, r.k_eff, r.beta))
        kern.across_channels_last(**p["variant"])(x2, y2, d2, r.lo, r.hi, a, k, beta, bmode,
                                                  p["block"])
    elif driver == "across_rows_contiguous":
        a, k = (x.dtype.type(v) for v in (r.alpha_eff, r.k_eff))
        kern.across_rows_contiguous(**p["variant"])(x, y, d, r.lo, r.hi, a, k, bmode,
                                                   p["span"])
    elif driver == "across_rows":
        a, k, beta = (x.dtype.type(v) for v in (r.alpha_eff, r.k_eff, r.beta))
        kern.across_rows(**p["variant"])(x, y, d, r.lo, r.hi, a, k, beta, p["tile"])
    else:
        # across_forward, within_forward: one compiled variant whatever is wanted, so the
        # outputs not wanted are empty arrays and flags
        dummy = np.empty((0, 0, 0), dtype=x.dtype)
        acc = np.empty(0, dtype=p["accumulate"])
        a, k, beta = (acc.dtype.type(v) for v in (r.alpha_eff, r.k_eff, r.beta))
        yy = dummy if y is None else y
        dd = dummy if d is None else d
        if driver == "across_forward":
            kern.across_forward(x, yy, dd, y is not None, d is not None, r.lo, r.hi, a, k,
                                beta, bmode, p["tile"], p["blocks"], acc, bases[0])
        else:
            kern.within_forward(x, yy, dd, y is not None, d is not None, r.lo, r.hi, a, k,
                                beta, bmode, p["group"], p["strip"], acc, bases[0], bases[1])


def _pixel_rows(views) -> tuple:
    """:func:`lrn_cli.dispatch.pixel_rows` of views their plan says are pixel rows."""
    rows = dispatch.pixel_rows(views)
    assert rows is not None, "the plan and the views disagree"
    return rows


def _run_converted(xv, yv, dv, r: Resolved, mode: str, bases) -> None:
    """Views whose dtype the kernels do not take: contiguous compute-dtype slabs, each
    normalized by its own plan and copied back."""
    cdtype = dispatch.compute_dtype(xv.dtype)
    group = tuple(v for v in (xv, yv, dv) if v is not None)
    for slab in _slabs(group, mode, cdtype.itemsize * len(group)):
        xs = np.ascontiguousarray(slab[0], dtype=cdtype)
        idx = 1
        ys = ds = None
        if yv is not None:
            ys = np.empty_like(xs)
            y_dst = slab[idx]
            idx += 1
        if dv is not None:
            ds = np.empty_like(xs)
            d_dst = slab[idx]
        _run_forward(xs, ys, ds, r, mode, bases)
        if ys is not None:
            y_dst[...] = ys
        if ds is not None:
            d_dst[...] = ds


def _slabs(views: tuple[np.ndarray, ...], mode: str, itemsize_total: int):
    """Split 3-D views along their first axis (across: also the third) into slabs."""
    first = views[0]
    budget, rows = dispatch.slab_rows(first.shape, itemsize_total)
    per_row = max(1, math.prod(first.shape[1:]) * itemsize_total)
    for start in range(0, first.shape[0], rows):
        sub = tuple(v[start:start + rows] for v in views)
        if mode == "across" and rows == 1 and per_row > budget:
            cols = max(1, budget // max(1, first.shape[1] * itemsize_total))
            for c0 in range(0, first.shape[2], cols):
                yield tuple(v[:, :, c0:c0 + cols] for v in sub)
        else:
            yield sub


def _check_params(size, depth_radius):
    if depth_radius is not None:
        if isinstance(depth_radius, bool) or not isinstance(depth_radius, (int, np.integer)):
            raise ParameterError(f"depth_radius must be an integer, not {depth_radius!r}")
        if depth_radius < 0:
            raise ParameterError(f"depth_radius must be >= 0, not {depth_radius}")
    n = window_size(size, depth_radius)
    return DEFAULTS.size if n is None else n


def _prepare(x, size, alpha, beta, k, mode, convention, channel_axis, depth_radius,
             ) -> tuple[np.ndarray, np.dtype, Resolved, int | None]:
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype == object:
        raise ParameterError("object arrays are not supported: expected a real numeric array")
    rdtype = result_dtype(x.dtype)
    if x.dtype.kind in "iub":
        warnings.warn(
            f"{x.dtype} input converted to float32 (the result is float32)",
            DtypeConversionWarning,
            stacklevel=3,
        )
    size = _check_params(size, depth_radius)
    r = resolve(convention, mode, size, alpha, beta, k)
    if x.ndim == 0:
        raise ParameterError("LRN needs at least a 1-D array (a channel axis)")
    axis = normalize_axis(channel_axis, x.ndim)
    if mode == "across" and axis is None:
        raise ParameterError("across-channel mode needs a channel axis (channel_axis=None)")
    if mode == "within":
        spatial_axes(x.ndim, axis)
    return x, rdtype, r, axis


def _check_out(out, x, dtype, name="out"):
    if not isinstance(out, np.ndarray):
        raise ParameterError(f"{name} must be a NumPy array")
    if out.shape != x.shape:
        raise ParameterError(f"{name} has shape {out.shape}, expected {x.shape}")
    if out.dtype != dtype:
        raise ParameterError(f"{name} has dtype {out.dtype}, expected {dtype}")
    if not out.flags.writeable:
        raise ParameterError(f"{name} is read-only")
    if np.may_share_memory(out, x):
        raise ParameterError(f"{name} overlaps the input; in-place LRN is not supported")


def _bases(origin, mode, axis, ndim) -> tuple[int, int]:
    if origin is None:
        return (0, 0)
    if mode == "across":
        return (int(origin[axis]), 0)
    ah, aw = spatial_axes(ndim, axis)
    return (int(origin[ah]), int(origin[aw]))


def _forward(x, y, d, r, mode, axis, origin=None):
    """Fill ``y`` and/or ``d`` (either may be None) from ``x``, converting where needed.

    ``origin``: where ``x`` starts in a larger array (per axis), for chunked callers (Dask).
    """
    bases = _bases(origin, mode, axis, x.ndim)
    arrays = [x] + [a for a in (y, d) if a is not None]
    for views in _layout_views(tuple(arrays), mode, axis):
        rest = iter(views[1:])
        yv = next(rest) if y is not None else None
        dv = next(rest) if d is not None else None
        _run_forward(views[0], yv, dv, r, mode, bases)


def _run_planar(xv, yv, dv, r: Resolved, bases):
    """LRN of channels-last views ``(outer, C, pixels)`` (channel axis fastest in memory).

    The row kernels want each channel's pixels contiguous, so slabs of pixels are copied
    to planar scratch ``(blocks, C, m)`` (one NumPy copy each way; ``blocks`` gives the
    threads work), normalized there and copied back: the same arithmetic in the same order
    as any other layout, so the same bits.  Scratch stays within 1/16 of the input (at least
    1 MiB): :func:`lrn_cli.dispatch.planar_cut`.
    """
    outer, channels, pixels = xv.shape
    arrays = 1 + (yv is not None) + (dv is not None)
    cols, blocks = dispatch.planar_cut(xv.shape, xv.itemsize, arrays)
    for o in range(outer):
        for b0 in range(0, pixels, cols):
            b1 = min(pixels, b0 + cols)
            for offset, count, width in blocks(b1 - b0):
                start = b0 + offset
                cut = (o, slice(start, start + count * width), count, width)
                xs = np.empty((count, channels, width), dtype=xv.dtype)
                np.copyto(xs, _planar_view(xv, *cut))
                ys = None if yv is None else np.empty_like(xs)
                ds = None if dv is None else np.empty_like(xs)
                _run_forward(xs, ys, ds, r, "across", bases)
                if ys is not None:
                    np.copyto(_planar_view(yv, *cut), ys)
                if ds is not None:
                    np.copyto(_planar_view(dv, *cut), ds)


def _planar_view(v: np.ndarray, o: int, cols: slice, count: int, width: int) -> np.ndarray:
    """``v[o, :, cols]`` as ``(count, C, width)`` blocks of consecutive pixels (a view)."""
    return np.reshape(v[o, :, cols], (v.shape[1], count, width), copy=False).transpose(1, 0, 2)


@overload
def lrn(x: ArrayLike, size: int | None = ..., alpha: float = ..., beta: float = ...,
        k: float = ..., *, mode: Mode = ..., convention: str | Convention = ...,
        channel_axis: int | None = ..., depth_radius: int | None = ...,
        out: np.ndarray | None = ..., return_divisor: Literal[False] = ...,
        divisor_out: None = ...) -> np.ndarray: ...
@overload
def lrn(x: ArrayLike, size: int | None = ..., alpha: float = ..., beta: float = ...,
        k: float = ..., *, mode: Mode = ..., convention: str | Convention = ...,
        channel_axis: int | None = ..., depth_radius: int | None = ...,
        out: np.ndarray | None = ..., return_divisor: bool = ...,
        divisor_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def lrn(x: ArrayLike, size: int | None = ..., alpha: float = ..., beta: float = ...,
        k: float = ..., *, mode: Mode = ..., convention: str | Convention = ...,
        channel_axis: int | None = ..., depth_radius: int | None = ...,
        out: np.ndarray | None = ..., return_divisor: Literal[True],
        divisor_out: np.ndarray | None = ...) -> tuple[np.ndarray, np.ndarray]: ...


def lrn(
    x: ArrayLike,
    size: int | None = None,
    alpha: float = DEFAULTS.alpha,
    beta: float = DEFAULTS.beta,
    k: float = DEFAULTS.k,
    *,
    mode: Mode = "across",
    convention: str | Convention = DEFAULT_CONVENTION,
    channel_axis: int | None = 1,
    depth_radius: int | None = None,
    out: np.ndarray | None = None,
    return_divisor: bool = False,
    divisor_out: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Local Response Normalization, exactly as ``convention`` defines it.

    Parameters
    ----------
    x : array_like
        Input.  float32 stays float32, float64 stays float64, float16 is computed in float32
        and returned as float16; integer and bool input becomes float32 (with a
        :class:`DtypeConversionWarning`).  Complex and object arrays are refused.
    size : int, optional
        Window width ``n`` (default 5).  Always a width, whatever the convention calls it;
        TensorFlow users may pass ``depth_radius`` instead (``n = 2r + 1``).
    alpha, beta, k : float
        LRN constants, AlexNet's by default.  How ``alpha`` is divided (1, ``n`` or ``n²``)
        and whether ``k`` is used is the convention's business.
    mode : {"across", "within"}
        Window over neighbouring channels, or a ``size x size`` box over the last two
        non-channel axes of each channel.
    convention : str or Convention
        A name from :data:`lrn_cli.conventions.CONVENTIONS` (default: PyTorch semantics
        across, oneDNN-like within; every size works in both modes).
    channel_axis : int or None
        Axis of the channels (1 for NCHW, -1 for NHWC).  ``None`` is allowed in within mode
        (every plane on its own).
    depth_radius : int, optional
        TensorFlow-style radius, an alternative to ``size``.
    out : ndarray, optional
        Where to write the result (its shape and the result dtype; must not overlap ``x``).
    return_divisor : bool
        Also return the divisor ``D = k' + a'·S`` (the "inhibition map"), from the same pass.
    divisor_out : ndarray, optional
        Where to write the divisor (like ``out``; implies ``return_divisor``): lets a loop
        over slabs reuse its buffers instead of faulting in fresh memory every time.

    Returns
    -------
    ndarray, or (ndarray, ndarray) when ``return_divisor``
        The normalized array (``out`` when given), and the divisor in the result dtype; new
        arrays have ``x``'s memory layout (C order for C-ordered input, as NumPy ufuncs do).

    Notes
    -----
    IEEE arithmetic throughout, as in the NumPy reference: NaN/Inf inputs give NaN/Inf where
    the formula does.  With ``k = 0`` a window of zeros gives ``D = 0`` and ``0 · 0^-β``,
    which is NaN (as in every framework); use ``k > 0`` to avoid it.

    Examples
    --------
    >>> import numpy as np
    >>> from lrn_cli import lrn
    >>> x = np.ones((1, 3, 1, 1), dtype=np.float32)
    >>> y = lrn(x, size=3, alpha=3e-4, beta=0.75, k=1.0)
    >>> y.dtype, y.shape
    (dtype('float32'), (1, 3, 1, 1))
    >>> print(np.round(y.ravel(), 6))   # (1 + 1e-4 * (squares in the window)) ** -0.75
    [0.99985  0.999775 0.99985 ]
    >>> y, d = lrn(x, size=3, alpha=3e-4, k=1.0, return_divisor=True)
    >>> print(np.round(d.ravel(), 6))
    [1.0002 1.0003 1.0002]
    """
    x, rdtype, r, axis = _prepare(x, size, alpha, beta, k, mode, convention, channel_axis,
                                  depth_radius)
    if out is None:
        out = np.empty_like(x, dtype=rdtype)  # x's memory layout, as NumPy ufuncs do
    else:
        _check_out(out, x, rdtype)
    d: np.ndarray | None = None
    if divisor_out is not None:
        _check_out(divisor_out, x, rdtype, "divisor_out")
        if np.may_share_memory(divisor_out, out):
            raise ParameterError("divisor_out overlaps out")
        d = divisor_out
    elif return_divisor:
        d = np.empty_like(x, dtype=rdtype)
    if x.size:
        _forward(x, out, d, r, mode, axis)
    return out if d is None else (out, d)


def _lrn_at(x: np.ndarray, origin: tuple[int, ...], *, size: int, alpha: float, beta: float,
            k: float, mode: Mode, convention: str | Convention,
            channel_axis: int | None) -> np.ndarray:
    """``lrn(x, ...)`` of a block of a larger array that starts at ``origin`` in it.

    The kernels anchor their block sums at ``origin``, so blocks add the same numbers in the
    same order as the whole array does: the private entry point of :mod:`lrn_cli.dask`.
    """
    x, rdtype, r, axis = _prepare(x, size, alpha, beta, k, mode, convention, channel_axis,
                                  None)
    out = np.empty_like(x, dtype=rdtype)
    if x.size:
        _forward(x, out, None, r, mode, axis, origin)
    return out


def lrn_divisor(x: ArrayLike, size: int | None = None, alpha: float = DEFAULTS.alpha,
                beta: float = DEFAULTS.beta, k: float = DEFAULTS.k, *, mode: Mode = "across",
                convention: str | Convention = DEFAULT_CONVENTION,
                channel_axis: int | None = 1, depth_radius: int | None = None,
                out: np.ndarray | None = None) -> np.ndarray:
    """The divisor ``D = k' + a'·S`` alone (what LRN divides by, before the ``-beta`` power).

    Same parameters as :func:`lrn`.  ``D ** -beta`` is the gain LRN applied; plot ``D`` to
    see where inhibition took place.  Use ``lrn(..., return_divisor=True)`` for both at once.

    Examples
    --------
    >>> import numpy as np
    >>> from lrn_cli import lrn_divisor
    >>> x = np.arange(1.0, 5.0).reshape(1, 4, 1, 1)       # channels 1, 2, 3, 4
    >>> print(lrn_divisor(x, size=3, alpha=3.0, k=1.0).ravel())   # 1 + (sum of squares)
    [ 6. 15. 30. 26.]
    """
    x, rdtype, r, axis = _prepare(x, size, alpha, beta, k, mode, convention, channel_axis,
                                  depth_radius)
    if out is None:
        out = np.empty_like(x, dtype=rdtype)
    else:
        _check_out(out, x, rdtype)
    if x.size:
        _forward(x, None, out, r, mode, axis)
    return out


def _run_backward(xs, gs, os_, r: Resolved, mode: str) -> None:
    """Write the gradient of matching 3-D views into ``os_``: runs
    :func:`lrn_cli.dispatch.backward_plan`'s plan (non-native dtypes in float64 slabs)."""
    plan = dispatch.backward_plan(xs, gs, os_, r, mode, nested=False)
    p = plan.params
    driver = plan.driver
    if driver == "converted":
        for xc, gc, dst in _slabs((xs, gs, os_), mode, 24):
            xc = np.ascontiguousarray(xc, dtype=np.float64)
            gc = np.ascontiguousarray(gc, dtype=np.float64)
            oc = np.empty(xc.shape, dtype=np.float64)
            _run_backward(xc, gc, oc, r, mode)
            dst[...] = oc
        return
    kern = _kernels()
    bmode = beta_mode(r.beta)
    constants = (r.lo, r.hi, r.alpha_eff, r.k_eff, r.beta, bmode)
    if driver == "across_channels_last_backward":
        x2, g2, o2 = _pixel_rows((xs, gs, os_))
        kern.across_channels_last_backward(x2, g2, o2, *constants, p["block"], p["refine"])
    elif driver == "across_rows_backward_contiguous":
        kern.across_rows_backward_contiguous(xs, gs, os_, *constants, p["chunk"], p["refine"])
    elif driver == "across_rows_backward":
        kern.across_rows_backward(xs, gs, os_, *constants, p["tile"])
    elif driver == "across_backward":
        kern.across_backward(xs, gs, os_, *constants, p["tile"], p["blocks"], 0)
    else:
        kern.within_backward(xs, gs, os_, *constants, p["group"], p["strip"], 0, 0)


def lrn_backward(x: ArrayLike, grad_output: ArrayLike, size: int | None = None,
                 alpha: float = DEFAULTS.alpha, beta: float = DEFAULTS.beta,
                 k: float = DEFAULTS.k, *, mode: Mode = "across",
                 convention: str | Convention = DEFAULT_CONVENTION,
                 channel_axis: int | None = 1, depth_radius: int | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`lrn` with respect to ``x``, given the gradient of its output.

    ``dx_j = g_j D_j^-β − 2β a' x_j Σ_{i: j∈W(i)} g_i x_i D_i^(-β-1)``: the adjoint window is
    the mirror of the forward one (it matters for even sizes).  Computed in float64
    scratch; returned in the result dtype of ``x``.  Same parameters as :func:`lrn`.

    Examples
    --------
    >>> import numpy as np
    >>> from lrn_cli import lrn, lrn_backward
    >>> x = np.linspace(0.5, 2.0, 8).reshape(1, 8, 1, 1)
    >>> g = lrn_backward(x, np.ones_like(x), size=3, alpha=0.3, k=1.0)
    >>> h = 1e-6                                  # central difference of sum(lrn(x)) at x[0, 2]
    >>> e = np.zeros_like(x); e[0, 2] = h
    >>> fd = (lrn(x + e, 3, 0.3, k=1.0).sum() - lrn(x - e, 3, 0.3, k=1.0).sum()) / (2 * h)
    >>> bool(abs(g[0, 2, 0, 0] - fd) < 1e-8)
    True
    """
    x, rdtype, r, axis = _prepare(x, size, alpha, beta, k, mode, convention, channel_axis,
                                  depth_radius)
    g = np.asarray(grad_output)
    if g.shape != x.shape:
        raise ParameterError(f"grad_output has shape {g.shape}, expected {x.shape}")
    result_dtype(g.dtype)
    if out is None:
        out = np.empty_like(x, dtype=rdtype)
    else:
        _check_out(out, x, rdtype)
        if np.may_share_memory(out, g):
            raise ParameterError("out overlaps grad_output")
    if not x.size:
        return out
    for xv, gv, ov in _layout_views((x, g, out), mode, axis):
        _run_backward(xv, gv, ov, r, mode)
    return out
