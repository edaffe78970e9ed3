"""The ``lrn norms --panel`` picture: one row per normalization, with its histogram.

Row 1 is the input, then one row per method, each with the same maps (``lrn apply
--panel``'s choice: an image whole, RGB as a colour composite; the first channels of the
first sample of an array) and the histogram of all its values on its own value axis, since
the methods' outputs live on very different scales (LRN keeps the input's, the
standardizations centre on 0 with unit variance, L2 stays within [-1, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrn_cli.panel.draw import (
    GAP,
    INK,
    INPUT_COLOR,
    MAX_TILE_ARRAY,
    MAX_WIDTH,
    MIN_TILE,
    MUTED,
    OUTPUT_COLOR,
    cell,
    check_png,
    finish,
    finite_range,
    gray_map,
    grid,
    image_hwc,
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

#: Largest side of an image's tile in a norms panel (six rows must stay readable).
MAX_TILE_NORMS_IMAGE = 220
#: Width of each row's histogram, and its smallest height.
HIST_WIDTH = 520
HIST_MIN_HEIGHT = 200
#: Width of the label column (method name, what it computed, value range).
LABEL_WIDTH = 200


def _image_maps(a, shape: tuple[int, int]):
    """One tile for an image (RGB composite, or gray), or a tile per channel otherwise."""
    a = reduce_map(image_hwc(a), *shape)
    c = a.shape[2]
    if c == 3:
        return grid([[cell(rgb_map(a), shape)]], col_gap=6, row_gap=4)
    if c == 1:
        return grid([[cell(gray_map(a[..., 0]), shape)]], col_gap=6, row_gap=4)
    tiles = [cell(gray_map(a[..., i]), shape, None, f"c{i}") for i in range(c)]
    return grid([tiles[i:i + 4] for i in range(0, c, 4)], col_gap=6, row_gap=4)


def _array_maps(a, layout, channel_axis, shown: int, per_channel: bool,
                shape: tuple[int, int]):
    """A grid of the first ``shown`` channel maps (or the one matrix) of ``a``."""
    maps = feature_view(a, layout, channel_axis)[0]
    gcols = min(shown, 4)
    cells: list[list[Any]] = []
    for i in range(shown):
        rgb = gray_map(reduce_map(maps[i], *shape))
        if i % gcols == 0:
            cells.append([])
        cells[-1].append(cell(rgb, shape, None, f"c{i}" if per_channel else None))
    return grid(cells, col_gap=6, row_gap=4)


def _label(name: str, lines: Sequence[str]):
    parts = [text_image(name, 16, INK, max_width=LABEL_WIDTH)]
    for line in lines:
        parts.append(text_block(line, 12, MUTED, max_width=LABEL_WIDTH))
    return vstack(parts, gap=4)


def render_norms_panel(x, rows: Sequence[tuple[str, Any, Sequence[str]]], *, kind: str,
                       layout: str | None, channel_axis: int | None, title: str,
                       subtitle: str = "", max_channels: int = 8) -> PILImage.Image:
    """Draw the panel of :func:`draw_norms_panel` and return it (not saved).

    See :func:`draw_norms_panel` for the parameters.
    """
    import numpy as np

    if kind not in ("image", "array"):
        raise ValueError(f"kind must be 'image' or 'array', not {kind!r}")
    if not rows:
        raise ValueError("give at least one method's output")
    x = np.asarray(x)
    outputs = [np.asarray(a) for _name, a, _lines in rows]
    for (name, _a, _lines), a in zip(rows, outputs, strict=True):
        if a.shape != x.shape:
            raise ValueError(f"{name}: shape {a.shape} differs from the input's {x.shape}")
    if x.size == 0:
        raise ValueError("cannot draw an empty array")
    arrays = [x.astype(np.float32) if x.dtype.kind != "f" or x.dtype.itemsize < 4 else x]
    arrays += [a.astype(np.float32) if a.dtype.itemsize < 4 else a for a in outputs]
    if kind == "image":
        h, w = image_hwc(x).shape[:2]
        shape = tile_shape(h, w, MAX_TILE_NORMS_IMAGE)
        c = image_hwc(x).shape[2]
        what = (f"image {w} wide x {h} high, {c} channel{'s' if c != 1 else ''} "
                f"({shape_text(x)})")
        what += ", RGB channels each stretched to their own min..max" if c == 3 else \
            ", each map stretched to its own min..max"
        shown, per_channel = c, True
    else:
        maps, per_channel, where = feature_view(x, layout, channel_axis)
        total = maps.shape[0]
        shown = max(1, min(total, max_channels)) if per_channel else 1
        h, w = maps.shape[1:]
        shape = tile_shape(h, w, MAX_TILE_ARRAY if per_channel else 3 * MAX_TILE_ARRAY,
                           MIN_TILE if per_channel else 2 * MIN_TILE)
        if per_channel:
            chans = (f"channels 0-{shown - 1} of {total}" if shown < total
                     else f"all {total} channels")
        else:
            chans = "one matrix"
        what = (f"array {layout or ''} {shape_text(x)}; "
                + ", ".join(p for p in (where, chans) if p)
                + ", each map stretched to its own min..max")
    body_rows = []
    labels = [("input", ["x as read"])] + [(name, list(lines)) for name, _a, lines in rows]
    for index, (a, (name, lines)) in enumerate(zip(arrays, labels, strict=True)):
        if kind == "image":
            maps_img = _image_maps(a, shape)
        else:
            maps_img = _array_maps(a, layout, channel_axis, shown, per_channel, shape)
        lines = [*lines, f"values {range_text(*finite_range(a))}"]
        hist = histogram(a)
        color = INPUT_COLOR if index == 0 else OUTPUT_COLOR
        hist_img = draw_histogram(hist, HIST_WIDTH, max(HIST_MIN_HEIGHT, maps_img.height),
                                  labels=(f"{name}: every value",), colors=(color,))
        body_rows.append([_label(name, lines), maps_img, hist_img])
    header = [None, text_image("maps", 15, INK),
              text_image("histogram (each on its own value axis)", 15, INK)]
    body = grid([header, *body_rows], col_gap=GAP + 6, row_gap=14, align="start")
    width = min(body.width, MAX_WIDTH)
    note = ("rows: the input, then each normalization of it; maps and histograms show every "
            "array on its own scale, so compare shapes here and sizes in the table")
    parts = [
        text_image(title, 20, INK, max_width=max(width, 600)),
        text_block(subtitle, 12, MUTED, max_width=max(width, 600)) if subtitle else None,
        text_block(what, 12, MUTED, max_width=max(width, 600)),
        spacer(1, 4),
        body,
        text_block(note, 12, MUTED, max_width=max(width, 600)),
    ]
    nans = [name for (name, _lines), a in zip(labels, arrays, strict=True)
            if a.dtype.kind == "f" and bool(np.isnan(a).any())]
    if nans:
        parts.append(nan_legend(", ".join(nans)))
    return finish(vstack(parts, gap=8))


def draw_norms_panel(x, rows: Sequence[tuple[str, Any, Sequence[str]]], path, *, kind: str,
                     layout: str | None, channel_axis: int | None, title: str,
                     subtitle: str = "", max_channels: int = 8, overwrite: bool = False,
                     protect: Sequence[Any] = (), png_compression: int = 6) -> Path:
    """Draw the input and each normalization of it, one row each, with histograms, as PNG.

    Parameters
    ----------
    x : numpy.ndarray
        The input (an image as ``(H, W, C)``).
    rows : sequence of (name, output, lines)
        One per method: its name, its output (``x``'s shape) and a few short lines of text
        shown under the name (what it computed, a divisor range...).
    path : str or os.PathLike
        The PNG to write (atomically).
    kind : {"image", "array"}
        Images are shown whole (RGB as a composite); arrays by their first channels.
    layout : str or None
        Layout letters of the arrays (``NCHW``...), to find the batch and spatial axes.
    channel_axis : int or None
        Their channel axis.
    title, subtitle : str
        The first lines of the picture.
    max_channels : int
        Channels shown per row for arrays.
    overwrite : bool
        Replace an existing file.
    protect : sequence of paths
        Files never to overwrite (the input).
    png_compression : int
        zlib level of the PNG, 0 (fastest) to 9 (smallest).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        If ``path`` does not end in .png, exists (without ``overwrite``) or cannot be written.
    ValueError
        If an output's shape differs from the input's.
    """
    from lrn_cli.atomic import check_writable

    check_png(path)
    check_writable(path, overwrite=overwrite, protect=protect)
    image = render_norms_panel(x, rows, kind=kind, layout=layout, channel_axis=channel_axis,
                               title=title, subtitle=subtitle, max_channels=max_channels)
    return save_png(image, path, overwrite=overwrite, protect=protect,
                    compression=png_compression)

