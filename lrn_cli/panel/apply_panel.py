"""The ``lrn apply --panel`` picture: input, output and divisor side by side, with histograms.

:func:`draw_panel` draws arrays it is given; :func:`draw_panel_for` draws one ``lrn apply``
result, from the input, output and divisor arrays the run kept
(:func:`lrn_cli.pipeline.run_job` with ``keep_arrays=True``): nothing is reloaded or
recomputed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrn_cli.panel.draw import (
    GAP,
    INK,
    MARGIN,
    MAX_TILE_ARRAY,
    MAX_TILE_IMAGE,
    MAX_WIDTH,
    MIN_TILE,
    MUTED,
    cell,
    check_png,
    colorbar,
    colormap,
    finish,
    finite_range,
    get_font,
    gray_map,
    grid,
    hstack,
    image_hwc,
    line_height,
    nan_legend,
    range_text,
    reduce_map,
    rgb_map,
    save_png,
    shape_text,
    spacer,
    text_block,
    text_image,
    tile_shape,
    vstack,
)
from lrn_cli.panel.histogram import draw_histogram, histogram
from lrn_cli.panel.views import feature_view

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL import Image as PILImage

def _image_rows(x, y, d, max_side: int):
    """Rows (label, [input, output, D] cells) of an image panel, and the D range."""
    import numpy as np

    x, y, d = image_hwc(x), image_hwc(y), image_hwc(d)
    h, w, c = x.shape
    shape = tile_shape(h, w, max_side)
    x, y, d = (reduce_map(a, *shape) for a in (x, y, d))
    dlo, dhi = finite_range(d)
    rows = []
    if c == 3:
        with np.errstate(invalid="ignore"):
            dmean = d.astype(np.float64).mean(axis=2)
        rows.append(("RGB", [
            cell(rgb_map(x), shape, "channels stretched"),
            cell(rgb_map(y), shape, "channels stretched"),
            cell(colormap(dmean, dlo, dhi), shape, "mean of R, G, B"),
        ]))
    names = ("R", "G", "B") if c == 3 else ("gray",) if c == 1 else tuple(
        f"c{i}" for i in range(c))
    for i in range(c):
        rows.append((names[i], [
            cell(gray_map(x[..., i]), shape, range_text(*finite_range(x[..., i]))),
            cell(gray_map(y[..., i]), shape, range_text(*finite_range(y[..., i]))),
            cell(colormap(d[..., i], dlo, dhi), shape, range_text(*finite_range(d[..., i]))),
        ]))
    return rows, (dlo, dhi)


def _array_grids(x, y, d, layout, channel_axis, max_channels: int, width_budget: int):
    """The three grids (input, output, D) of an array panel, the D range and a description."""
    maps_x, per_channel, where = feature_view(x, layout, channel_axis)
    maps_y = feature_view(y, layout, channel_axis)[0]
    maps_d = feature_view(d, layout, channel_axis)[0]
    total = maps_x.shape[0]
    shown = max(1, min(total, max_channels)) if per_channel else 1
    gcols = math.ceil(math.sqrt(shown))
    gap = 6
    max_side = min(MAX_TILE_ARRAY if per_channel else 3 * MAX_TILE_ARRAY,
                   (width_budget // 3 - (gcols - 1) * gap) // gcols - 2)
    max_side = max(24, max_side)
    h, w = maps_x.shape[1:]
    shape = tile_shape(h, w, max_side, MIN_TILE if per_channel else 2 * MIN_TILE)
    dlo, dhi = finite_range(maps_d[:shown])
    grids = []
    for maps, kind in ((maps_x, "x"), (maps_y, "y"), (maps_d, "d")):
        cells: list[list[Any]] = []
        for i in range(shown):
            m = reduce_map(maps[i], *shape)
            rgb = colormap(m, dlo, dhi) if kind == "d" else gray_map(m)
            label = f"c{i}" if per_channel else None
            if i % gcols == 0:
                cells.append([])
            cells[-1].append(cell(rgb, shape, None, label))
        grids.append(grid(cells, col_gap=gap, row_gap=4))
    if per_channel:
        what = f"channels 0-{shown - 1} of {total}" if shown < total else f"all {total} channels"
        what += ", each stretched to its own min..max" if shown > 1 else ""
    else:
        what = "one matrix, stretched to its min..max"
    desc = ", ".join(p for p in (where, what) if p)
    return grids, (dlo, dhi), desc


def render_panel(x, y, d, *, channel_axis: int | None, layout: str | None, kind: str,
                 title: str, max_channels: int = 16, hist_values=None) -> PILImage.Image:
    """Draw the panel of :func:`draw_panel` and return it as a Pillow image (not saved).

    ``hist_values`` optionally gives the (before, after) arrays for the histogram (default:
    ``x`` and ``y``).  See :func:`draw_panel` for the other parameters.
    """
    import numpy as np

    if kind not in ("image", "array"):
        raise ValueError(f"kind must be 'image' or 'array', not {kind!r}")
    x, y, d = (np.asarray(a) for a in (x, y, d))
    if not (x.shape == y.shape == d.shape):
        raise ValueError(f"x, y and d must have one shape, not {x.shape}, {y.shape}, {d.shape}")
    if x.size == 0:
        raise ValueError("cannot draw an empty array")
    if x.dtype == np.float16:  # display arithmetic in float32
        x, y, d = (a.astype(np.float32) for a in (x, y, d))
    budget = MAX_WIDTH - 2 * MARGIN - 2 * GAP - 140  # columns, gaps and the colour bar
    header_names = ["input x", "output y = x * D^-beta", "divisor D = k + a'S"]
    if kind == "image":
        rows, (dlo, dhi) = _image_rows(x, y, d, min(MAX_TILE_IMAGE, (budget - 60) // 3 - 4))
        c = image_hwc(x).shape[2]
        header = [None] + [text_image(t, 15, INK) for t in header_names]
        cells = [header] + [[text_image(name, 14, INK)] + row for name, row in rows]
        body = grid(cells, col_gap=GAP, row_gap=10)
        sub = (f"image {x.shape[1]} wide x {x.shape[0]} high, {c} channel{'s' if c != 1 else ''} "
               f"({shape_text(x)}); input and output stretched to each channel's min..max "
               "for display; all D maps on one colour scale")
        first_row = header[1].height + 10
    else:
        grids, (dlo, dhi), desc = _array_grids(x, y, d, layout, channel_axis, max_channels,
                                               budget)
        header = [text_image(t, 15, INK) for t in header_names]
        body = grid([header, grids], col_gap=2 * GAP, row_gap=8, align="start")
        sub = f"array {layout or ''} {shape_text(x)}; {desc}; all D maps on one colour scale"
        first_row = header[0].height + 8
    bar_height = min(body.height - first_row - 20, 420)
    bar = colorbar(dlo, dhi, bar_height, "D")
    body = hstack([body, vstack([spacer(1, first_row - line_height(get_font(13)) - 4), bar])],
                   gap=GAP + 4)
    hx, hy = hist_values if hist_values is not None else (x, y)
    hist = histogram(hx, hy)
    hist_w = min(max(body.width, 640), 1100)
    what = "every value" if kind == "image" else "all values of the array"
    hist_img = draw_histogram(hist, hist_w, 270, labels=("input x", "output y"),
                              title=f"histogram of the values before and after LRN ({what})")
    content_w = max(body.width, hist_img.width)
    parts = [
        text_image(title, 20, INK, max_width=content_w),
        text_block(sub, 12, MUTED, max_width=max(content_w, 600)),
        spacer(1, 4),
        body,
        hist_img,
    ]
    nans = [name for name, a in (("input", x), ("output", y), ("D", d))
            if a.dtype.kind == "f" and bool(np.isnan(a).any())]
    if nans:
        parts.append(nan_legend(", ".join(nans)))
    return finish(vstack(parts, gap=10))


def draw_panel(x, y, d, path, *, channel_axis: int | None, layout: str | None, kind: str,
               title: str, max_channels: int = 16, overwrite: bool = False,
               protect: Sequence[Any] = (), png_compression: int = 6) -> Path:
    """Draw input, output and divisor side by side, with histograms, and save it as PNG.

    Parameters
    ----------
    x, y, d : numpy.ndarray
        The input, the LRN output and the divisor ``D`` (one shape).
    path : str or os.PathLike
        The PNG to write (atomically).
    channel_axis : int or None
        The channel axis of the arrays (2 for images).
    layout : str or None
        Layout letters (``HWC``, ``NCHW``...), to find the batch and spatial axes.
    kind : {"image", "array"}
        Images get a row per channel (plus an RGB row); arrays a grid of channels.
    title : str
        First line of the picture (file name and parameters).
    max_channels : int
        Channels shown in the grids of an array panel.
    overwrite : bool
        Replace an existing file.
    protect : sequence of paths
        Files never to overwrite (the input).
    png_compression : int
        zlib level of the PNG, 0 (fastest) to 9 (smallest).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    OutputError
        If ``path`` does not end in .png, exists (without ``overwrite``) or cannot be written.
    """
    from lrn_cli.atomic import check_writable

    check_png(path)
    check_writable(path, overwrite=overwrite, protect=protect)
    image = render_panel(x, y, d, channel_axis=channel_axis, layout=layout, kind=kind,
                         title=title, max_channels=max_channels)
    return save_png(image, path, overwrite=overwrite, protect=protect,
                    compression=png_compression)


def settings_text(settings) -> str:
    """``"across, default, n=5, alpha=0.0001, beta=0.75, k=2"`` for a pipeline Settings."""
    return settings.text()


def draw_panel_for(result, path, settings, *, from_stdin: bool = False,
                   overwrite: bool = False, max_channels: int = 16,
                   png_compression: int = 6) -> Path:
    """Draw the panel of one ``lrn apply`` result from the arrays the run kept.

    Nothing is reloaded or recomputed: the input ``x`` (as LRN saw it, after any dtype
    conversion), the output ``y`` and the divisor ``D`` come from the result's first array.

    Parameters
    ----------
    result : lrn_cli.pipeline.JobResult
        From :func:`lrn_cli.pipeline.run_job` with ``keep_arrays=True``; its first array is
        drawn (``.npz``: the first one that was normalized).
    path : str or os.PathLike
        The PNG to write.
    settings : lrn_cli.pipeline.Settings
        The LRN parameters (for the title).
    from_stdin : bool
        The input came from standard input (``result.source`` is then a label, not a file
        to protect).
    overwrite : bool
        Replace an existing panel.
    max_channels : int
        Channels shown for arrays.
    png_compression : int
        zlib level of the PNG (0-9).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError, OutputError
        Naming the file concerned.
    ValueError
        If ``result`` does not carry its arrays.
    """
    from lrn_cli.atomic import check_writable
    from lrn_cli.errors import InputError, LrnError, OutputError

    source = result.source
    item = result.items[0] if result.items else None
    if item is None or any(a is None for a in (item.input_array, item.output,
                                               item.divisor_array)):
        raise ValueError("the result carries no arrays to draw: run the job with "
                         "keep_arrays=True")
    protect = [] if from_stdin else [source]
    output = result.output
    if output not in (None, "-"):
        if os.path.abspath(os.fspath(output)) == os.path.abspath(os.fspath(path)):
            raise OutputError(path, "is also the -o output; give the panel another name")
        protect.append(output)
    check_png(path)
    check_writable(path, overwrite=overwrite, protect=protect)
    name = source if from_stdin else os.path.basename(source)
    if item.key:
        name += f" [{item.key}]"
    kind = "image" if result.kind == "image" else "array"
    try:
        return draw_panel(item.input_array, item.output, item.divisor_array, path,
                          channel_axis=item.channel_axis, layout=item.layout, kind=kind,
                          title=f"{name}   {settings_text(settings)}",
                          max_channels=max_channels, overwrite=overwrite, protect=protect,
                          png_compression=png_compression)
    except ValueError as exc:
        if isinstance(exc, LrnError):
            raise
        raise InputError(source, f"cannot draw a panel: {exc}") from None
