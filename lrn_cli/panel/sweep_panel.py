"""The ``lrn sweep --panel`` picture: the input and the output of every setting side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrn_cli.panel.draw import (
    GAP,
    INK,
    MARGIN,
    MAX_TILE_SWEEP,
    MAX_WIDTH,
    MUTED,
    NAN_COLOR,
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
    spacer,
    text_block,
    text_image,
    tile_shape,
    vstack,
)
from lrn_cli.panel.views import feature_view

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL import Image as PILImage


def sweep_slice(array, kind: str, layout: str | None, channel_axis: int | None,
                channel: int = 0, *, max_side: int = 2 * MAX_TILE_SWEEP):
    """The part of an input or output a sweep panel shows (a small copy).

    Images: the whole image (``H, W, C``), strided down to about ``max_side`` pixels.
    Arrays: ``channel`` of the first sample (a 2-D map), or the matrix of
    :func:`feature_view` for layouts without two spatial axes.

    Raises
    ------
    ParameterError
        If ``channel`` is out of range.
    """
    import numpy as np

    from lrn_cli.errors import ParameterError

    if kind == "image":
        a = image_hwc(array)
        step = max(1, -(-max(a.shape[:2]) // max_side))
        return np.array(a[::step, ::step], copy=True)
    maps, per_channel, _where = feature_view(array, layout, channel_axis)
    if per_channel:
        if not 0 <= channel < maps.shape[0]:
            raise ParameterError(f"channel {channel} is out of range: the array has "
                                 f"{maps.shape[0]} channels")
        return np.array(maps[channel], copy=True)
    return np.array(maps[0], copy=True)


def render_sweep_panel(x, outputs: Sequence[Any], labels: Sequence[str], *, kind: str,
                       title: str, subtitle: str = "") -> PILImage.Image:
    """Draw the outputs of a sweep side by side (see :func:`draw_sweep_panel`)."""
    import numpy as np

    if len(outputs) != len(labels) or not outputs:
        raise ValueError("give one label per output, and at least one output")
    x = np.asarray(x)
    outs = [np.asarray(o, dtype=np.float64) for o in outputs]
    color = kind == "image" and image_hwc(x).shape[2] == 3
    if kind == "image":
        x = image_hwc(x)
        outs = [image_hwc(o) for o in outs]
        if not color:
            x, outs = x[..., 0], [o[..., 0] for o in outs]
    h, w = x.shape[:2]
    ncols = len(outs) + 1
    row_label_w = 118
    avail = MAX_WIDTH - 2 * MARGIN - row_label_w
    shape = tile_shape(h, w, MAX_TILE_SWEEP)
    per_line = max(2, min(ncols, avail // (shape[1] + 2 + GAP)))
    if per_line < ncols and ncols <= 2 * per_line:  # fewer, larger columns beat two lines
        max_side = max(48, min(MAX_TILE_SWEEP, avail // ncols - GAP - 2))
        shape = tile_shape(h, w, max_side)
        per_line = max(2, min(ncols, avail // (shape[1] + 2 + GAP)))
    # shared scale: per channel over all outputs
    if color:
        shared = [finite_range(np.stack([o[..., c] for o in outs])) for c in range(3)]
    else:
        shared = [finite_range(np.stack(outs))]

    def picture(a, own: bool):
        a = reduce_map(a, *shape)
        if color:
            if own:
                return rgb_map(a)
            chans = [gray_map(a[..., c], *shared[c])[..., 0] for c in range(3)]
            rgb = np.stack(chans, axis=-1)
            rgb[np.isnan(a).any(axis=-1)] = NAN_COLOR
            return rgb
        return gray_map(a) if own else gray_map(a, *shared[0])

    columns = [("input", x, True)] + [(lab, o, False) for lab, o in zip(labels, outs,
                                                                     strict=True)]
    blocks = []
    for start in range(0, ncols, per_line):
        chunk = columns[start:start + per_line]
        header = [None] + [text_image(lab + (" (own scale)" if is_input else ""), 14, INK,
                                       max_width=shape[1] + 40)
                           for lab, _a, is_input in chunk]
        same = [text_image("same scale", 13, INK)]
        own = [text_image("own min..max", 13, INK)]
        for _lab, a, is_input in chunk:
            rng = range_text(*finite_range(a))
            same.append(cell(picture(a, is_input), shape))
            own.append(cell(picture(a, True), shape, rng))
        blocks.append(grid([header, same, own], col_gap=GAP, row_gap=8))
    if color:
        scale_text = ", ".join(f"{n} {range_text(*r)}" for n, r in zip("RGB", shared,
                                                                         strict=True))
    else:
        scale_text = range_text(*shared[0])
    note = (f"top row: all outputs on one scale ({scale_text}), so the size of the effect "
            "shows; bottom row: each output stretched to its own min..max, so the pattern "
            "shows")
    body = vstack(blocks, gap=18)
    width = body.width
    parts = [
        text_image(title, 20, INK, max_width=max(width, 600)),
        text_block(subtitle, 12, MUTED, max_width=max(width, 600)) if subtitle else None,
        spacer(1, 4),
        body,
        text_block(note, 12, MUTED, max_width=max(width, 600)),
    ]
    if any(np.isnan(a).any() for a in [x.astype(np.float64), *outs]):
        parts.append(nan_legend("the maps shown"))
    return finish(vstack(parts, gap=8))


def draw_sweep_panel(x, outputs: Sequence[Any], labels: Sequence[str], path, *, kind: str,
                     title: str, subtitle: str = "", overwrite: bool = False,
                     protect: Sequence[Any] = (), png_compression: int = 6) -> Path:
    """Draw the input and the output of every setting of a sweep side by side, as PNG.

    Parameters
    ----------
    x : numpy.ndarray
        What is shown of the input (:func:`sweep_slice`): ``(H, W, C)`` for images, a 2-D
        map for arrays.
    outputs : sequence of numpy.ndarray
        The same part of each output, one per setting.
    labels : sequence of str
        One per output (``"beta=0.5"``).
    path : str or os.PathLike
        The PNG to write (atomically).
    kind : {"image", "array"}
    title, subtitle : str
        The first lines of the picture.
    overwrite : bool
        Replace an existing file.
    protect : sequence of paths
        Files never to overwrite.
    png_compression : int
        zlib level of the PNG, 0 (fastest) to 9 (smallest).

    Returns
    -------
    pathlib.Path

    Notes
    -----
    Two rows: all outputs on one shared scale (per colour channel), which shows how much a
    setting shrinks or amplifies, and each output stretched to its own min..max, which shows
    how it changes the pattern.  Many settings wrap onto several lines.
    """
    check_png(path)
    image = render_sweep_panel(x, outputs, labels, kind=kind, title=title, subtitle=subtitle)
    return save_png(image, path, overwrite=overwrite, protect=protect,
                    compression=png_compression)
