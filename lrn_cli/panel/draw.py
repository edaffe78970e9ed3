"""Drawing primitives of the panels: colour maps, text, tiles, layout, saving.

Everything is drawn with Pillow (``ImageDraw`` and the default font) on a white background;
Pillow and NumPy are imported inside the functions, so importing this module is cheap.  The
colour map is a lookup table of viridis anchor colours interpolated linearly, so no plotting
library is needed.  The panels (:mod:`.apply_panel`, :mod:`.sweep_panel`,
:mod:`.norms_panel`) and the histogram (:mod:`.histogram`) are assembled from these parts:
images are pasted into grids (:func:`grid`) and stacks (:func:`vstack`, :func:`hstack`), and
:func:`finish` adds the margin.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Widest panel drawn, in pixels (tiles shrink to fit).
MAX_WIDTH = 2400
#: Smallest tile side: tiny maps are enlarged (nearest neighbour) to at least this.
MIN_TILE = 110
#: Largest tile side for images and for the tiles of an array grid.
MAX_TILE_IMAGE = 360
MAX_TILE_ARRAY = 200
MAX_TILE_SWEEP = 240
#: Colour of NaN in every tile (no colour of the gray ramp or of the colour map is near it).
NAN_COLOR = (255, 0, 255)
BACKGROUND = (255, 255, 255)
INK = (25, 25, 25)
MUTED = (105, 105, 105)
FRAME = (190, 190, 190)
INPUT_COLOR = (31, 119, 180)
OUTPUT_COLOR = (230, 110, 0)
MARGIN = 20
GAP = 14

#: Viridis at 0, 0.1, ..., 1 (sRGB); :func:`colormap` interpolates linearly between them.
VIRIDIS: tuple[tuple[int, int, int], ...] = (
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
)

# ----------------------------------------------------------------------------------------
# numbers and value maps


def num_text(v: float, digits: int = 4) -> str:
    """A number in few characters: ``0.2672``, ``2``, ``1.000e-05``."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{max(1, digits - 1)}e}"
    return f"{v:.{digits}g}"


def range_text(lo: float, hi: float) -> str:
    """``"lo .. hi"`` with just enough digits to tell them apart."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no finite value"
    if lo == hi:
        return f"constant {num_text(lo)}"
    a, b = num_text(lo), num_text(hi)
    for digits in range(5, 10):
        if a != b:
            break
        a, b = num_text(lo, digits), num_text(hi, digits)
    return f"{a} .. {b}"


def finite_range(values) -> tuple[float, float]:
    """Smallest and largest finite value of ``values`` (NaN, NaN when there is none)."""
    import numpy as np

    a = np.asarray(values)
    if a.dtype.kind in "biu":
        return (float(a.min()), float(a.max())) if a.size else (math.nan, math.nan)
    with np.errstate(invalid="ignore"):
        finite = a[np.isfinite(a)]
    if finite.size == 0:
        return math.nan, math.nan
    return float(finite.min()), float(finite.max())


def _unit(values, vmin: float | None, vmax: float | None):
    """``values`` mapped to [0, 1] (float64) and the NaN mask.

    A constant input (``vmin == vmax``) maps to 0 when it is 0 (a dead channel stays black)
    and to 0.5 otherwise; +inf maps to 1, -inf to 0.
    """
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    lo, hi = finite_range(v)
    lo = lo if vmin is None else float(vmin)
    hi = hi if vmax is None else float(vmax)
    nan = np.isnan(v)
    if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
        with np.errstate(invalid="ignore", over="ignore"):
            t = (v - lo) / (hi - lo)
    else:
        t = np.full(v.shape, 0.0 if (not math.isfinite(lo) or lo == 0) else 0.5)
        with np.errstate(invalid="ignore"):
            t[np.isposinf(v)] = 1.0
    t = np.clip(t, 0.0, 1.0)
    t[nan] = 0.0
    return t, nan


def colormap(values, vmin: float | None = None, vmax: float | None = None, *,
             anchors: Sequence[Sequence[int]] = VIRIDIS,
             nan_color: tuple[int, int, int] = NAN_COLOR):
    """Colour ``values`` with a perceptual colour map (a lookup table of anchor colours).

    Parameters
    ----------
    values : array_like
        Any shape, real numbers.
    vmin, vmax : float, optional
        The values mapped to the first and last anchor (default: the finite min and max);
        values beyond them are clipped.
    anchors : sequence of (r, g, b)
        Colours at evenly spaced points of [0, 1] (default :data:`VIRIDIS`), interpolated
        linearly in sRGB.
    nan_color : (r, g, b)
        Colour of NaN.

    Returns
    -------
    numpy.ndarray
        uint8, shape ``values.shape + (3,)``.  A constant input gets the middle colour
        (the first one when it is 0).
    """
    import numpy as np

    lut = np.asarray(anchors, dtype=np.float64)
    if lut.ndim != 2 or lut.shape[1] != 3 or lut.shape[0] < 2:
        raise ValueError("anchors must be at least two (r, g, b) colours")
    t, nan = _unit(values, vmin, vmax)
    pos = t * (lut.shape[0] - 1)
    i = np.minimum(np.floor(pos).astype(np.intp), lut.shape[0] - 2)
    f = (pos - i)[..., None]
    rgb = lut[i] * (1.0 - f) + lut[i + 1] * f
    out = np.rint(rgb).astype(np.uint8)
    out[nan] = nan_color
    return out


def gray_map(values, vmin: float | None = None, vmax: float | None = None, *,
             nan_color: tuple[int, int, int] = NAN_COLOR):
    """Gray ramp of ``values`` from ``vmin`` (black) to ``vmax`` (white), NaN in colour.

    Returns uint8 of shape ``values.shape + (3,)``; the defaults stretch the finite min..max.
    """
    import numpy as np

    t, nan = _unit(values, vmin, vmax)
    g = np.rint(t * 255.0).astype(np.uint8)
    out = np.repeat(g[..., None], 3, axis=-1)
    out[nan] = nan_color
    return out


def rgb_map(values):
    """An ``(H, W, 3)`` image with each channel stretched to its own min..max; NaN in colour."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    out = np.empty(v.shape, dtype=np.uint8)
    nan = np.zeros(v.shape[:2], dtype=bool)
    for c in range(3):
        t, n = _unit(v[..., c], None, None)
        out[..., c] = np.rint(t * 255.0).astype(np.uint8)
        nan |= n
    out[nan] = NAN_COLOR
    return out


# ----------------------------------------------------------------------------------------
# text and layout


@lru_cache(maxsize=16)
def get_font(size: int):
    """Pillow's default font at ``size`` pixels (the bitmap font on Pillow 10.0 / no FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow 10.0 has no size argument
        return ImageFont.load_default()


def line_height(font) -> int:
    return int(font.getbbox("Ag|")[3]) + 2


def text_image(text: str, size: int = 13, fill=INK, max_width: int | None = None):
    """A tight white image holding one line of ``text`` (shortened with '...' to fit)."""
    from PIL import Image, ImageDraw

    font = get_font(size)
    if max_width is not None:
        text = shorten(text, font, max_width)
    width = max(1, int(math.ceil(font.getlength(text))) + 2)
    img = Image.new("RGB", (width, line_height(font)), BACKGROUND)
    ImageDraw.Draw(img).text((1, 0), text, fill=fill, font=font)
    return img


def text_block(text: str, size: int = 12, fill=MUTED, max_width: int = 800):
    """``text`` wrapped at spaces onto as many lines as it needs to fit ``max_width``."""
    font = get_font(size)
    lines: list[str] = []
    for word in text.split(" "):
        if lines and font.getlength(lines[-1] + " " + word) <= max_width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return vstack([text_image(line, size, fill, max_width=max_width) for line in lines],
                   gap=1)


def shorten(text: str, font, max_width: int) -> str:
    if font.getlength(text) <= max_width:
        return text
    keep = len(text)
    while keep > 4 and font.getlength(text[: keep // 2] + "..." + text[-(keep // 2):]) > max_width:
        keep -= 2
    return text[: keep // 2] + "..." + text[-(keep // 2):]


def stack(parts, *, vertical: bool, gap: int = 0, align: str = "start"):
    """Paste images one after the other (``align``: start, center or end across)."""
    from PIL import Image

    parts = [p for p in parts if p is not None]
    if not parts:
        return Image.new("RGB", (1, 1), BACKGROUND)
    if vertical:
        width = max(p.width for p in parts)
        height = sum(p.height for p in parts) + gap * (len(parts) - 1)
    else:
        width = sum(p.width for p in parts) + gap * (len(parts) - 1)
        height = max(p.height for p in parts)
    out = Image.new("RGB", (width, height), BACKGROUND)
    pos = 0
    for p in parts:
        room = (width - p.width) if vertical else (height - p.height)
        cross = {"start": 0, "center": room // 2, "end": room}[align]
        out.paste(p, (cross, pos) if vertical else (pos, cross))
        pos += (p.height if vertical else p.width) + gap
    return out


def vstack(parts, gap: int = 0, align: str = "start"):
    return stack(parts, vertical=True, gap=gap, align=align)


def hstack(parts, gap: int = 0, align: str = "start"):
    return stack(parts, vertical=False, gap=gap, align=align)


def grid(cells: list[list[Any]], *, col_gap: int, row_gap: int, align: str = "center"):
    """Paste a table of images (None leaves a cell empty); columns and rows line up."""
    from PIL import Image

    ncols = max(len(r) for r in cells)
    widths = [max((r[c].width for r in cells if c < len(r) and r[c] is not None), default=0)
              for c in range(ncols)]
    heights = [max((c.height for c in r if c is not None), default=0) for r in cells]
    out = Image.new("RGB", (max(1, sum(widths) + col_gap * (ncols - 1)),
                            max(1, sum(heights) + row_gap * (len(cells) - 1))), BACKGROUND)
    y = 0
    for r, row in enumerate(cells):
        x = 0
        for c in range(ncols):
            part = row[c] if c < len(row) else None
            if part is not None:
                dx = {"start": 0, "center": (widths[c] - part.width) // 2}[align]
                dy = (heights[r] - part.height) // 2 if align == "center" else 0
                out.paste(part, (x + dx, y + dy))
            x += widths[c] + col_gap
        y += heights[r] + row_gap
    return out


def tile_shape(h: int, w: int, max_side: int, min_side: int = MIN_TILE) -> tuple[int, int]:
    """Display size of an ``h x w`` map: enlarged by an integer factor to reach ``min_side``
    (without passing ``max_side``), or reduced to ``max_side``; thin strips are widened."""
    longest = max(h, w, 1)
    min_side = min(min_side, max_side)
    if longest >= min_side:
        f = min(1.0, max_side / longest)
    else:
        f = max(1, min(math.ceil(min_side / longest), max_side // longest))
    th, tw = max(1, round(h * f)), max(1, round(w * f))
    strip = min(20, max_side)
    return max(th, strip), max(tw, strip)


def reduce_map(a, th: int, tw: int):
    """Stride a 2-D (or H, W, C) map down to at most about twice the display size."""
    sy = max(1, a.shape[0] // (2 * th))
    sx = max(1, a.shape[1] // (2 * tw))
    return a[::sy, ::sx] if (sy > 1 or sx > 1) else a


def framed_tile(rgb, th: int, tw: int):
    """A uint8 ``(h, w, 3)`` array as a ``tw x th`` image with a thin frame.

    Enlarged with nearest-neighbour sampling (every value stays a crisp square), reduced with
    box filtering.
    """
    import numpy as np
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    if (tw, th) != im.size:
        up = tw >= im.width and th >= im.height
        im = im.resize((tw, th), Image.Resampling.NEAREST if up else Image.Resampling.BOX)
    framed = Image.new("RGB", (tw + 2, th + 2), FRAME)
    framed.paste(im, (1, 1))
    return framed


def colorbar(lo: float, hi: float, height: int, label: str = "D"):
    """A vertical colour bar ``height`` pixels tall, its max at the top and min at the bottom."""
    import numpy as np
    from PIL import Image, ImageDraw

    height = max(60, height)
    font, small = get_font(13), get_font(12)
    bar_w = 18
    ramp = np.linspace(1.0, 0.0, height)[:, None].repeat(bar_w, axis=1)
    bar = framed_tile(colormap(ramp, 0.0, 1.0), height, bar_w)
    if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
        top_text, bottom_text = range_text(lo, hi).split(" .. ")
        top_text, bottom_text = f"max {bottom_text}", f"min {top_text}"
    elif math.isfinite(lo):
        top_text, bottom_text = f"constant {num_text(lo)}", ""
    else:
        top_text, bottom_text = "no finite D", ""
    lh = line_height(small)
    width = bar.width + 6 + int(max(small.getlength(top_text), small.getlength(bottom_text),
                                    font.getlength(label))) + 4
    head = line_height(font) + 4
    img = Image.new("RGB", (width, head + bar.height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.text((0, 0), label, fill=INK, font=font)
    img.paste(bar, (0, head))
    draw.text((bar.width + 6, head), top_text, fill=INK, font=small)
    draw.text((bar.width + 6, head + bar.height - lh), bottom_text, fill=INK, font=small)
    return img


def image_hwc(a):
    """An image array as ``(H, W, C)``."""
    import numpy as np

    a = np.asarray(a)
    if a.ndim == 2:
        return a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"an image panel needs (H, W, C) data, not shape {a.shape}")
    return a


def cell(rgb, shape: tuple[int, int], caption: str | None = None, label: str | None = None):
    """A tile with an optional label above and a caption below."""
    th, tw = shape
    framed = framed_tile(rgb, th, tw)
    parts = []
    if label:
        parts.append(text_image(label, 12, INK, max_width=framed.width))
    parts.append(framed)
    if caption:
        parts.append(text_image(caption, 11, MUTED, max_width=max(framed.width, 60)))
    return vstack(parts, gap=2, align="center")


def shape_text(a) -> str:
    return "x".join(str(s) for s in a.shape) + f" {a.dtype}"


def spacer(w: int, h: int):
    from PIL import Image

    return Image.new("RGB", (max(1, w), max(1, h)), BACKGROUND)


def nan_legend(where: str):
    from PIL import Image, ImageDraw

    text = text_image(f"NaN is drawn in magenta (present in: {where})", 12, INK)
    swatch = Image.new("RGB", (14, 14), NAN_COLOR)
    ImageDraw.Draw(swatch).rectangle([0, 0, 13, 13], outline=FRAME)
    return hstack([swatch, text], gap=6, align="center")


def finish(content):
    """Add the white margin; shrink (rarely) to :data:`MAX_WIDTH`."""
    from PIL import Image

    out = Image.new("RGB", (content.width + 2 * MARGIN, content.height + 2 * MARGIN), BACKGROUND)
    out.paste(content, (MARGIN, MARGIN))
    if out.width > MAX_WIDTH:
        f = MAX_WIDTH / out.width
        out = out.resize((MAX_WIDTH, max(1, round(out.height * f))), Image.Resampling.LANCZOS)
    return out


def save_png(image, path, *, overwrite: bool, protect: Sequence[Any] = (),
             compression: int = 6) -> Path:
    """Write a Pillow image as PNG, atomically, at zlib level ``compression`` (0-9)."""
    from lrn_cli.atomic import atomic_write
    from lrn_cli.images import check_png_compression

    level = check_png_compression(compression)
    return atomic_write(path, lambda fh: image.save(fh, format="PNG", optimize=False,
                                                    compress_level=level),
                        overwrite=overwrite, protect=protect)


def check_png(path) -> None:
    from lrn_cli.errors import OutputError

    if Path(os.fspath(path)).suffix.lower() != ".png":
        raise OutputError(path, "a panel is written as PNG; give a name ending in .png")


