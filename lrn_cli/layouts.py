"""Layout strings (``NCHW``, ``NHWC``, ``CHW``, ...) and the channel axis they imply."""

from __future__ import annotations

import operator
from typing import Any, overload

from lrn_cli.errors import ParameterError


@overload
def normalize_axis(axis: None, ndim: int, what: str = ...) -> None: ...
@overload
def normalize_axis(axis: Any, ndim: int, what: str = ...) -> int | None: ...


def normalize_axis(axis: Any, ndim: int, what: str = "channel_axis") -> int | None:
    """Return ``axis`` in ``[0, ndim)`` (negative counts from the end), or raise a clear error.

    The one check of an axis argument, for every entry point (``lrn``, the statistics,
    ``compare``, the norms, Dask).

    Examples
    --------
    >>> normalize_axis(-1, 4), normalize_axis(None, 4)
    (3, None)
    >>> normalize_axis(4, 4)
    Traceback (most recent call last):
    ...
    lrn_cli.errors.ParameterError: channel_axis=4 is out of range for a 4-D array
    """
    if axis is None:
        return None
    try:
        if isinstance(axis, bool):
            raise TypeError
        index = operator.index(axis)  # ints and NumPy integers, not floats or NumPy bools
    except TypeError:
        raise ParameterError(f"{what} must be an integer or None, not {axis!r}") from None
    if not -ndim <= index < ndim:
        raise ParameterError(f"{what}={index} is out of range for a {ndim}-D array")
    return index % ndim


def axis_index(axis: Any, ndim: int, what: str = "channel_axis") -> int:
    """:func:`normalize_axis` of an axis that must be given (``None`` is refused)."""
    index = normalize_axis(axis, ndim, what)
    if index is None:
        raise ParameterError(f"{what} must be an integer, not None")
    return index

#: Layouts assumed when none is given, by number of dimensions (across / within mode).
DEFAULT_LAYOUTS = {1: "C", 2: "NC", 3: "CHW", 4: "NCHW", 5: "NCDHW"}
DEFAULT_LAYOUTS_WITHIN = {2: "HW", 3: "CHW", 4: "NCHW", 5: "NCDHW"}

#: Letters a layout may use: batch, channels, depth/height/width, length (1-D signals).
_LETTERS = set("NCDHWL")


def channel_axis_of(layout: str) -> int | None:
    """The axis of ``C`` in ``layout`` (None when the layout has no channels)."""
    return layout.index("C") if "C" in layout else None


def check_layout(layout: str, ndim: int) -> str:
    """Validate ``layout`` for an array of ``ndim`` dimensions; return it upper-cased."""
    text = layout.strip().upper()
    bad = set(text) - _LETTERS
    if bad or not text:
        raise ParameterError(
            f"layout {layout!r} uses letters other than N, C, D, H, W, L (e.g. NCHW, NHWC, CHW)"
        )
    if len(set(text)) != len(text):
        raise ParameterError(f"layout {layout!r} repeats a letter")
    if len(text) != ndim:
        raise ParameterError(f"layout {text} has {len(text)} axes but the array has {ndim}")
    return text


def layout_from_axis(ndim: int, channel_axis: int | None) -> str:
    """A descriptive layout for ``channel_axis`` (e.g. 4-D, axis 3 -> ``NHWC``)."""
    if ndim == 3 and channel_axis is not None and channel_axis % 3 == 2:
        return "HWC"  # an image, far more often than (N, L, C)
    others = ndim - (channel_axis is not None)
    batch = 1 if (channel_axis is None and others > 2) or (channel_axis or 0) > 0 else 0
    spatial = {0: "", 1: "L", 2: "HW", 3: "DHW"}.get(others - batch)
    if spatial is None:  # more axes than we have names for
        spatial = "N" * (others - batch - 2) + "HW"
    letters = list("N" * batch + spatial)
    if channel_axis is not None:
        letters.insert(channel_axis % ndim, "C")
    return "".join(letters)


def resolve_layout(
    ndim: int, mode: str, layout: str | None = None, channel_axis: int | None = None,
    *, channel_axis_given: bool = False,
) -> tuple[str, int | None, bool]:
    """Choose the layout of an array: given, from ``channel_axis``, or the default.

    Returns
    -------
    (layout, channel_axis, assumed)
        ``assumed`` is True when neither a layout nor an axis was given (tell the user).
    """
    if layout is not None and channel_axis_given:
        raise ParameterError("give --layout or --channel-axis, not both")
    if layout is not None:
        text = check_layout(layout, ndim)
        return text, channel_axis_of(text), False
    if channel_axis_given:
        if channel_axis is not None and not -ndim <= channel_axis < ndim:
            raise ParameterError(
                f"channel axis {channel_axis} is out of range for a {ndim}-D array"
            )
        axis = None if channel_axis is None else channel_axis % ndim
        return layout_from_axis(ndim, axis), axis, False
    table = DEFAULT_LAYOUTS_WITHIN if mode == "within" else DEFAULT_LAYOUTS
    if ndim not in table:
        raise ParameterError(
            f"no default layout for a {ndim}-D array in {mode} mode; give --layout or "
            "--channel-axis"
        )
    text = table[ndim]
    return text, channel_axis_of(text), True
