"""Pictures of what LRN did: input, output and divisor side by side, with histograms.

``lrn apply ... --panel panel.png`` calls :func:`draw_panel_for`; ``lrn sweep ... --panel``
calls :func:`draw_sweep_panel`.  Everything is drawn with Pillow (``ImageDraw`` and the
default font) on a white background, and written atomically as PNG.

What a panel shows
------------------
Images
    One row per channel (gray: one row; RGB: first a row with the RGB composites, then R, G
    and B), three columns: the input, the output (each channel stretched to its own
    min..max for display, as ``lrn apply`` writes images by default) and the divisor
    ``D = k + a'S`` as a heat map.  All heat maps share one colour scale, drawn as a colour
    bar with its min and max.
Arrays (NCHW, NHWC, CHW, ...)
    The first sample (``N = 0``; the middle slice of any depth axis), a grid of the first
    ``max_channels`` channels for the input, the output and ``D``.  Layouts with fewer than
    two spatial axes (NC, NCL) are shown as one matrix, channels against positions (or
    samples).
Histogram
    The values before and after LRN on one value axis, in two colours; the count axis is
    logarithmic when one bin (typically the zeros of ReLU activations) dwarfs the others.

Small maps (27x27, 55x55) are enlarged by an integer factor with nearest-neighbour sampling so
that each tile is at least :data:`MIN_TILE` pixels; large ones are reduced.  NaN is drawn in
:data:`NAN_COLOR` (magenta) in every tile, and left out of the histograms (with a note).
The colour map is a lookup table of viridis anchor colours interpolated linearly, so no
plotting library is needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL import Image as PILImage

__all__ = [
    "NAN_COLOR",
    "VIRIDIS",
    "Histogram",
    "colormap",
    "gray_map",
    "histogram",
    "draw_histogram",
    "feature_view",
    "render_panel",
    "draw_panel",
    "draw_panel_for",
    "render_sweep_panel",
    "draw_sweep_panel",
]

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


def _num(v: float, digits: int = 4) -> str:
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


def _range_text(lo: float, hi: float) -> str:
    """``"lo .. hi"`` with just enough digits to tell them apart."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no finite value"
    if lo == hi:
        return f"constant {_num(lo)}"
    a, b = _num(lo), _num(hi)
    for digits in range(5, 10):
        if a != b:
            break
        a, b = _num(lo, digits), _num(hi, digits)
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


def _rgb_map(values):
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
# histogram


@dataclass(frozen=True)
class Histogram:
    """Counts of the values before and after LRN, on shared bins.

    Attributes
    ----------
    edges : numpy.ndarray
        ``bins + 1`` bin edges spanning the finite values of both arrays.
    before, after : numpy.ndarray
        Counts per bin (int64).
    log : bool
        Whether the count axis should be logarithmic: the fullest bin holds more than
        :data:`LOG_RATIO` times the median of the non-empty bins (ReLU zeros, saturation).
    nonfinite_before, nonfinite_after : int
        NaN/Inf values left out (of the values counted).
    step : int
        1 when every value was counted, ``s`` when every ``s``-th (large arrays).
    """

    edges: Any
    before: Any
    after: Any
    log: bool
    nonfinite_before: int
    nonfinite_after: int
    step: int


#: A count axis becomes logarithmic when the fullest bin exceeds this many median bins.
LOG_RATIO = 20.0


def _sample(values, max_values: int):
    import numpy as np

    flat = np.asarray(values).reshape(-1)
    step = max(1, -(-flat.size // max_values))
    return (flat[::step] if step > 1 else flat), step


def histogram(before, after, bins: int | None = None, *,
              max_values: int = 4_000_000) -> Histogram:
    """Histogram of ``before`` and ``after`` on the same bins (finite values only).

    Parameters
    ----------
    before, after : array_like
        Any shapes; flattened.
    bins : int, optional
        Number of bins between the smallest and the largest finite value of both (default:
        twice the square root of the number of values, between 10 and 80).
    max_values : int
        Arrays larger than this are sampled with a constant stride (noted in ``step``).

    Returns
    -------
    Histogram
    """
    import numpy as np

    xs, step_b = _sample(before, max_values)
    ys, step_a = _sample(after, max_values)
    xs = xs.astype(np.float64, copy=False)
    ys = ys.astype(np.float64, copy=False)
    fx, fy = np.isfinite(xs), np.isfinite(ys)
    xs, ys = xs[fx], ys[fy]
    nonfinite_b, nonfinite_a = int(fx.size - xs.size), int(fy.size - ys.size)
    both = [a for a in (xs, ys) if a.size]
    if both:
        lo = min(float(a.min()) for a in both)
        hi = max(float(a.max()) for a in both)
    else:
        lo, hi = 0.0, 1.0
    if hi <= lo:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    if bins is None:
        bins = min(80, max(10, int(2 * math.sqrt(max(xs.size, ys.size)))))
    if bins < 1:
        raise ValueError("bins must be >= 1")
    edges = np.linspace(lo, hi, bins + 1)
    cb = np.histogram(xs, bins=edges)[0].astype(np.int64)
    ca = np.histogram(ys, bins=edges)[0].astype(np.int64)
    counts = np.concatenate([cb, ca])
    positive = counts[counts > 0]
    log = bool(positive.size and positive.max() > LOG_RATIO * float(np.median(positive)))
    return Histogram(edges, cb, ca, log, nonfinite_b, nonfinite_a, max(step_b, step_a))


def _power_ticks(cmax: int) -> list[int]:
    ticks = [10**p for p in range(int(math.log10(cmax)) + 1)] if cmax >= 1 else []
    while len(ticks) > 6:
        ticks = ticks[::2]
    return ticks


def draw_histogram(hist: Histogram, width: int = 900, height: int = 260, *,
                   labels: tuple[str, str] = ("input", "output"),
                   title: str | None = None) -> PILImage.Image:
    """Draw ``hist`` as two overlaid, semi-transparent bar series with labelled axes.

    Parameters
    ----------
    hist : Histogram
        From :func:`histogram`.
    width, height : int
        Size of the returned image in pixels.
    labels : (str, str)
        Legend entries of the two series (before, after).
    title : str, optional
        Drawn at the top left.

    Returns
    -------
    PIL.Image.Image
        RGB, ``width x height``, white background.  The value axis is ticked at its min,
        middle and max (and 0 when inside), the count axis at 0, half and its max (powers of
        ten when log).
    """
    import numpy as np
    from PIL import Image, ImageDraw

    small, font = _font(12), _font(13)
    img = Image.new("RGBA", (width, height), BACKGROUND + (255,))
    draw = ImageDraw.Draw(img)
    line_h = _line_height(font)
    top = MARGIN // 2 + (line_h + 8 if title else 0) + line_h + 6
    left, right, bottom = 78, 20, 2 * _line_height(small) + 14
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    if x1 - x0 < 20 or y1 - y0 < 20:
        raise ValueError(f"histogram of {width}x{height} pixels is too small to draw")
    cmax = int(max(int(hist.before.max(initial=0)), int(hist.after.max(initial=0)), 1))

    def scale(c):
        c = np.asarray(c, dtype=np.float64)
        if hist.log:
            return np.log10(1.0 + c) / math.log10(1.0 + cmax)
        return c / cmax

    nb = len(hist.before)
    xs = x0 + (x1 - x0) * np.arange(nb + 1) / nb
    for counts, color in ((hist.before, INPUT_COLOR), (hist.after, OUTPUT_COLOR)):
        layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
        ldraw = ImageDraw.Draw(layer)
        tops = y1 - scale(counts) * (y1 - y0)
        outline = []
        for i in range(nb):
            if counts[i] > 0:
                ldraw.rectangle([xs[i], tops[i], max(xs[i], xs[i + 1] - 1), y1],
                                fill=color + (95,))
            outline += [(xs[i], tops[i]), (xs[i + 1], tops[i])]
        img = Image.alpha_composite(img, layer)
        draw = ImageDraw.Draw(img)
        draw.line(outline, fill=color + (255,), width=2)
    # frame and ticks
    draw.rectangle([x0, y0, x1, y1], outline=MUTED + (255,))
    lo, hi = float(hist.edges[0]), float(hist.edges[-1])
    xticks = [lo, (lo + hi) / 2, hi]
    if lo < 0 < hi and min(-lo, hi) > 0.08 * (hi - lo):
        xticks = [lo, 0.0, hi] if abs(lo + hi) < 0.16 * (hi - lo) else [lo, 0.0, xticks[1], hi]
    for v in xticks:
        px = x0 + (x1 - x0) * (v - lo) / (hi - lo)
        draw.line([(px, y1), (px, y1 + 4)], fill=INK + (255,))
        text = _num(v)
        tw = draw.textlength(text, font=small)
        tx = min(max(px - tw / 2, x0 - left + 4), x1 - tw)
        draw.text((tx, y1 + 6), text, fill=INK + (255,), font=small)
    yticks = _power_ticks(cmax) if hist.log else [0, cmax // 2, cmax]
    if hist.log and cmax not in yticks and cmax / max(yticks[-1], 1) >= 2:
        yticks.append(cmax)
    for c in yticks:
        py = y1 - float(scale(c)) * (y1 - y0)
        draw.line([(x0 - 4, py), (x0, py)], fill=INK + (255,))
        text = _count_text(c)
        tw = draw.textlength(text, font=small)
        draw.text((x0 - 7 - tw, py - _line_height(small) / 2), text, fill=INK + (255,),
                  font=small)
    xlabel = "value"
    if hist.step > 1:
        xlabel += f" (1 value in {hist.step} counted)"
    tw = draw.textlength(xlabel, font=small)
    draw.text(((x0 + x1) / 2 - tw / 2, y1 + 8 + _line_height(small)), xlabel, fill=MUTED + (255,),
              font=small)
    ylabel = _text_image("count (log scale)" if hist.log else "count", 12, MUTED)
    ylabel = ylabel.rotate(90, expand=True)
    img.paste(ylabel, (6, int((y0 + y1) / 2 - ylabel.height / 2)))
    # title and legend
    ty = MARGIN // 2
    if title:
        draw.text((x0, ty), title, fill=INK + (255,), font=font)
        ty += line_h + 8
    lx = x0
    notes = (hist.nonfinite_before, hist.nonfinite_after)
    for label, color, nonfinite in zip(labels, (INPUT_COLOR, OUTPUT_COLOR), notes, strict=True):
        draw.rectangle([lx, ty + 2, lx + 14, ty + 14], fill=color + (160,), outline=color + (255,))
        text = label + (f" ({nonfinite} NaN/Inf left out)" if nonfinite else "")
        draw.text((lx + 20, ty), text, fill=INK + (255,), font=font)
        lx += 20 + int(draw.textlength(text, font=font)) + 24
    return img.convert("RGB")


def _count_text(c: int) -> str:
    if c >= 10**5 and c == 10 ** round(math.log10(c)):
        return f"1e{round(math.log10(c))}"
    return str(int(c))


# ----------------------------------------------------------------------------------------
# text and layout


@lru_cache(maxsize=16)
def _font(size: int):
    """Pillow's default font at ``size`` pixels (the bitmap font on Pillow 10.0 / no FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow 10.0 has no size argument
        return ImageFont.load_default()


def _line_height(font) -> int:
    return int(font.getbbox("Ag|")[3]) + 2


def _text_image(text: str, size: int = 13, fill=INK, max_width: int | None = None):
    """A tight white image holding one line of ``text`` (shortened with '...' to fit)."""
    from PIL import Image, ImageDraw

    font = _font(size)
    if max_width is not None:
        text = _shorten(text, font, max_width)
    width = max(1, int(math.ceil(font.getlength(text))) + 2)
    img = Image.new("RGB", (width, _line_height(font)), BACKGROUND)
    ImageDraw.Draw(img).text((1, 0), text, fill=fill, font=font)
    return img


def _text_block(text: str, size: int = 12, fill=MUTED, max_width: int = 800):
    """``text`` wrapped at spaces onto as many lines as it needs to fit ``max_width``."""
    font = _font(size)
    lines: list[str] = []
    for word in text.split(" "):
        if lines and font.getlength(lines[-1] + " " + word) <= max_width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return _vstack([_text_image(line, size, fill, max_width=max_width) for line in lines],
                   gap=1)


def _shorten(text: str, font, max_width: int) -> str:
    if font.getlength(text) <= max_width:
        return text
    keep = len(text)
    while keep > 4 and font.getlength(text[: keep // 2] + "..." + text[-(keep // 2):]) > max_width:
        keep -= 2
    return text[: keep // 2] + "..." + text[-(keep // 2):]


def _stack(parts, *, vertical: bool, gap: int = 0, align: str = "start"):
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


def _vstack(parts, gap: int = 0, align: str = "start"):
    return _stack(parts, vertical=True, gap=gap, align=align)


def _hstack(parts, gap: int = 0, align: str = "start"):
    return _stack(parts, vertical=False, gap=gap, align=align)


def _grid(cells: list[list[Any]], *, col_gap: int, row_gap: int, align: str = "center"):
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
            cell = row[c] if c < len(row) else None
            if cell is not None:
                dx = {"start": 0, "center": (widths[c] - cell.width) // 2}[align]
                dy = (heights[r] - cell.height) // 2 if align == "center" else 0
                out.paste(cell, (x + dx, y + dy))
            x += widths[c] + col_gap
        y += heights[r] + row_gap
    return out


def _tile_shape(h: int, w: int, max_side: int, min_side: int = MIN_TILE) -> tuple[int, int]:
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


def _reduce(a, th: int, tw: int):
    """Stride a 2-D (or H, W, C) map down to at most about twice the display size."""
    sy = max(1, a.shape[0] // (2 * th))
    sx = max(1, a.shape[1] // (2 * tw))
    return a[::sy, ::sx] if (sy > 1 or sx > 1) else a


def _tile(rgb, th: int, tw: int):
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


def _colorbar(lo: float, hi: float, height: int, label: str = "D"):
    """A vertical colour bar ``height`` pixels tall, its max at the top and min at the bottom."""
    import numpy as np
    from PIL import Image, ImageDraw

    height = max(60, height)
    font, small = _font(13), _font(12)
    bar_w = 18
    ramp = np.linspace(1.0, 0.0, height)[:, None].repeat(bar_w, axis=1)
    bar = _tile(colormap(ramp, 0.0, 1.0), height, bar_w)
    if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
        top_text, bottom_text = _range_text(lo, hi).split(" .. ")
        top_text, bottom_text = f"max {bottom_text}", f"min {top_text}"
    elif math.isfinite(lo):
        top_text, bottom_text = f"constant {_num(lo)}", ""
    else:
        top_text, bottom_text = "no finite D", ""
    lh = _line_height(small)
    width = bar.width + 6 + int(max(small.getlength(top_text), small.getlength(bottom_text),
                                    font.getlength(label))) + 4
    head = _line_height(font) + 4
    img = Image.new("RGB", (width, head + bar.height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.text((0, 0), label, fill=INK, font=font)
    img.paste(bar, (0, head))
    draw.text((bar.width + 6, head), top_text, fill=INK, font=small)
    draw.text((bar.width + 6, head + bar.height - lh), bottom_text, fill=INK, font=small)
    return img


# ----------------------------------------------------------------------------------------
# what to show of an array


def feature_view(array, layout: str | None, channel_axis: int | None, *,
                 max_rows: int = 64):
    """Reduce an array to the 2-D maps a panel shows.

    Parameters
    ----------
    array : numpy.ndarray
        Any layout.
    layout : str, optional
        Its layout letters (``NCHW``...); without it the last two non-channel axes are the
        spatial ones and the first other axis the batch.
    channel_axis : int, optional
        The channel axis, or None.
    max_rows : int
        Samples shown by the matrix of a layout without spatial axes (NC).

    Returns
    -------
    (maps, per_channel, where)
        ``maps`` is ``(P, H, W)``: one map per channel of the first sample (``per_channel``
        True) when there are two spatial axes, else a single matrix, channels down the rows
        against positions (NCL), or samples down the rows against channels (NC).  ``where``
        says which part was taken (``"N=0"``, ``"D=3 (middle)"``...).
    """
    import numpy as np

    a = np.asarray(array)
    nd = a.ndim
    ch = None if channel_axis is None else channel_axis % nd
    others = [i for i in range(nd) if i != ch]
    if layout is not None and len(layout) == nd:
        batch = [i for i in others if layout[i] == "N"]
        spatial = [i for i in others if layout[i] != "N"]
        names = layout
    else:
        batch = [others[0]] if len(others) > 2 else []
        spatial = [i for i in others if i not in batch]
        names = "".join("N" if i in batch else "C" if i == ch else "S" for i in range(nd))
    index: list[Any] = [slice(None)] * nd
    where = []
    if len(spatial) >= 2:
        for i in batch:
            index[i] = 0
            where.append(f"{names[i]}=0")
        for i in spatial[:-2]:
            index[i] = a.shape[i] // 2
            where.append(f"{names[i]}={a.shape[i] // 2} (middle)")
        sub = a[tuple(index)]
        kept = [i for i in range(nd) if isinstance(index[i], slice)]
        maps = sub[None] if ch is None else np.moveaxis(sub, kept.index(ch), 0)
        return maps, ch is not None, ", ".join(where)
    if len(spatial) == 1:
        for i in batch:
            index[i] = 0
            where.append(f"{names[i]}=0")
        sub = a[tuple(index)]
        kept = [i for i in range(nd) if isinstance(index[i], slice)]
        matrix = sub[None] if ch is None else np.moveaxis(sub, kept.index(ch), 0)
        where.append("channels (rows) x positions (columns)")
        return matrix[None], False, ", ".join(where)
    for i in batch:
        index[i] = slice(0, max_rows)
        if a.shape[i] > max_rows:
            where.append(f"{names[i]}=0..{max_rows - 1}")
    sub = a[tuple(index)]
    if sub.ndim == 1:
        matrix = sub[None]
    else:
        kept = [i for i in range(nd) if isinstance(index[i], slice)]
        matrix = np.moveaxis(sub, kept.index(ch), -1) if ch is not None else sub
    where.append("samples (rows) x channels (columns)" if matrix.shape[0] > 1 else
                 "channels (columns)")
    return matrix[None], False, ", ".join(where)


def _image_hwc(a):
    """An image array as ``(H, W, C)``."""
    import numpy as np

    a = np.asarray(a)
    if a.ndim == 2:
        return a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"an image panel needs (H, W, C) data, not shape {a.shape}")
    return a


# ----------------------------------------------------------------------------------------
# the apply panel


def _cell(rgb, shape: tuple[int, int], caption: str | None = None, label: str | None = None):
    """A tile with an optional label above and a caption below."""
    th, tw = shape
    tile = _tile(rgb, th, tw)
    parts = []
    if label:
        parts.append(_text_image(label, 12, INK, max_width=tile.width))
    parts.append(tile)
    if caption:
        parts.append(_text_image(caption, 11, MUTED, max_width=max(tile.width, 60)))
    return _vstack(parts, gap=2, align="center")


def _image_rows(x, y, d, max_side: int):
    """Rows (label, [input, output, D] cells) of an image panel, and the D range."""
    import numpy as np

    x, y, d = _image_hwc(x), _image_hwc(y), _image_hwc(d)
    h, w, c = x.shape
    shape = _tile_shape(h, w, max_side)
    x, y, d = (_reduce(a, *shape) for a in (x, y, d))
    dlo, dhi = finite_range(d)
    rows = []
    if c == 3:
        with np.errstate(invalid="ignore"):
            dmean = d.astype(np.float64).mean(axis=2)
        rows.append(("RGB", [
            _cell(_rgb_map(x), shape, "channels stretched"),
            _cell(_rgb_map(y), shape, "channels stretched"),
            _cell(colormap(dmean, dlo, dhi), shape, "mean of R, G, B"),
        ]))
    names = ("R", "G", "B") if c == 3 else ("gray",) if c == 1 else tuple(
        f"c{i}" for i in range(c))
    for i in range(c):
        rows.append((names[i], [
            _cell(gray_map(x[..., i]), shape, _range_text(*finite_range(x[..., i]))),
            _cell(gray_map(y[..., i]), shape, _range_text(*finite_range(y[..., i]))),
            _cell(colormap(d[..., i], dlo, dhi), shape, _range_text(*finite_range(d[..., i]))),
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
    shape = _tile_shape(h, w, max_side, MIN_TILE if per_channel else 2 * MIN_TILE)
    dlo, dhi = finite_range(maps_d[:shown])
    grids = []
    for maps, kind in ((maps_x, "x"), (maps_y, "y"), (maps_d, "d")):
        cells: list[list[Any]] = []
        for i in range(shown):
            m = _reduce(maps[i], *shape)
            rgb = colormap(m, dlo, dhi) if kind == "d" else gray_map(m)
            label = f"c{i}" if per_channel else None
            if i % gcols == 0:
                cells.append([])
            cells[-1].append(_cell(rgb, shape, None, label))
        grids.append(_grid(cells, col_gap=gap, row_gap=4))
    if per_channel:
        what = f"channels 0-{shown - 1} of {total}" if shown < total else f"all {total} channels"
        what += ", each stretched to its own min..max" if shown > 1 else ""
    else:
        what = "one matrix, stretched to its min..max"
    desc = ", ".join(p for p in (where, what) if p)
    return grids, (dlo, dhi), desc


def _shape_text(a) -> str:
    return "x".join(str(s) for s in a.shape) + f" {a.dtype}"


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
        c = _image_hwc(x).shape[2]
        header = [None] + [_text_image(t, 15, INK) for t in header_names]
        cells = [header] + [[_text_image(name, 14, INK)] + row for name, row in rows]
        body = _grid(cells, col_gap=GAP, row_gap=10)
        sub = (f"image {x.shape[1]} wide x {x.shape[0]} high, {c} channel{'s' if c != 1 else ''} "
               f"({_shape_text(x)}); input and output stretched to each channel's min..max "
               "for display; all D maps on one colour scale")
        first_row = header[1].height + 10
    else:
        grids, (dlo, dhi), desc = _array_grids(x, y, d, layout, channel_axis, max_channels,
                                               budget)
        header = [_text_image(t, 15, INK) for t in header_names]
        body = _grid([header, grids], col_gap=2 * GAP, row_gap=8, align="start")
        sub = f"array {layout or ''} {_shape_text(x)}; {desc}; all D maps on one colour scale"
        first_row = header[0].height + 8
    bar_height = min(body.height - first_row - 20, 420)
    bar = _colorbar(dlo, dhi, bar_height, "D")
    body = _hstack([body, _vstack([_spacer(1, first_row - _line_height(_font(13)) - 4), bar])],
                   gap=GAP + 4)
    hx, hy = hist_values if hist_values is not None else (x, y)
    hist = histogram(hx, hy)
    hist_w = min(max(body.width, 640), 1100)
    what = "every value" if kind == "image" else "all values of the array"
    hist_img = draw_histogram(hist, hist_w, 270, labels=("input x", "output y"),
                              title=f"histogram of the values before and after LRN ({what})")
    content_w = max(body.width, hist_img.width)
    parts = [
        _text_image(title, 20, INK, max_width=content_w),
        _text_block(sub, 12, MUTED, max_width=max(content_w, 600)),
        _spacer(1, 4),
        body,
        hist_img,
    ]
    nans = [name for name, a in (("input", x), ("output", y), ("D", d))
            if a.dtype.kind == "f" and bool(np.isnan(a).any())]
    if nans:
        parts.append(_legend_nan(", ".join(nans)))
    return _finish(_vstack(parts, gap=10))


def _spacer(w: int, h: int):
    from PIL import Image

    return Image.new("RGB", (max(1, w), max(1, h)), BACKGROUND)


def _legend_nan(where: str):
    from PIL import Image, ImageDraw

    text = _text_image(f"NaN is drawn in magenta (present in: {where})", 12, INK)
    swatch = Image.new("RGB", (14, 14), NAN_COLOR)
    ImageDraw.Draw(swatch).rectangle([0, 0, 13, 13], outline=FRAME)
    return _hstack([swatch, text], gap=6, align="center")


def _finish(content):
    """Add the white margin; shrink (rarely) to :data:`MAX_WIDTH`."""
    from PIL import Image

    out = Image.new("RGB", (content.width + 2 * MARGIN, content.height + 2 * MARGIN), BACKGROUND)
    out.paste(content, (MARGIN, MARGIN))
    if out.width > MAX_WIDTH:
        f = MAX_WIDTH / out.width
        out = out.resize((MAX_WIDTH, max(1, round(out.height * f))), Image.Resampling.LANCZOS)
    return out


def _save_png(image, path, *, overwrite: bool, protect: Sequence[Any] = ()) -> Path:
    from lrn_cli.atomic import atomic_write

    return atomic_write(path, lambda fh: image.save(fh, format="PNG", optimize=False),
                        overwrite=overwrite, protect=protect)


def _check_png(path) -> None:
    from lrn_cli.errors import OutputError

    if Path(os.fspath(path)).suffix.lower() != ".png":
        raise OutputError(path, "a panel is written as PNG; give a name ending in .png")


def draw_panel(x, y, d, path, *, channel_axis: int | None, layout: str | None, kind: str,
               title: str, max_channels: int = 16, overwrite: bool = False,
               protect: Sequence[Any] = ()) -> Path:
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

    _check_png(path)
    check_writable(path, overwrite=overwrite, protect=protect)
    image = render_panel(x, y, d, channel_axis=channel_axis, layout=layout, kind=kind,
                         title=title, max_channels=max_channels)
    return _save_png(image, path, overwrite=overwrite, protect=protect)


def settings_text(settings) -> str:
    """``"across, default, n=5, alpha=0.0001, beta=0.75, k=2"`` for a pipeline Settings."""
    return (f"{settings.mode}, {settings.convention}, n={settings.size}, "
            f"alpha={settings.alpha:g}, beta={settings.beta:g}, k={settings.k:g}")


def draw_panel_for(result, path, settings, ropts, *, data: bytes | None = None,
                   overwrite: bool = False, max_channels: int = 16) -> Path:
    """Draw the panel of one ``lrn apply`` result: reload the input, recompute y and D.

    Parameters
    ----------
    result : lrn_cli.pipeline.JobResult
        ``result.source`` is the input path (``"<stdin>"`` with ``data``); its first array
        is drawn (``.npz``: the first one that was normalized).
    path : str or os.PathLike
        The PNG to write.
    settings : lrn_cli.pipeline.Settings
    ropts : lrn_cli.pipeline.ReadOptions
    data : bytes, optional
        The input's bytes when it came from stdin.
    overwrite : bool
        Replace an existing panel.
    max_channels : int
        Channels shown for arrays.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError, OutputError
        Naming the file concerned.
    """
    import warnings

    from lrn_cli.atomic import check_writable
    from lrn_cli.core import DtypeConversionWarning, lrn
    from lrn_cli.errors import InputError, LrnError, OutputError, ParameterError
    from lrn_cli.pipeline import load

    source = result.source
    protect = [] if data is not None else [source]
    output = getattr(result, "output", None)
    if output not in (None, "-"):
        if os.path.abspath(os.fspath(output)) == os.path.abspath(os.fspath(path)):
            raise OutputError(path, "is also the -o output; give the panel another name")
        protect.append(output)
    _check_png(path)
    check_writable(path, overwrite=overwrite, protect=protect)
    loaded = load(source, ropts, settings.mode, data)
    item = loaded.items[0]
    wanted = [i.key for i in getattr(result, "items", [])]
    if wanted:
        item = next((i for i in loaded.items if i.key == wanted[0]), item)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DtypeConversionWarning)
        try:
            y, d = lrn(item.array, **settings.lrn_kwargs(), channel_axis=item.channel_axis,
                       return_divisor=True)
        except ParameterError as exc:
            raise InputError(source, str(exc)) from None
    name = os.path.basename(source) if data is None else source
    if item.key:
        name += f" [{item.key}]"
    kind = "image" if loaded.kind == "image" else "array"
    try:
        return draw_panel(item.array, y, d, path, channel_axis=item.channel_axis,
                          layout=item.layout, kind=kind,
                          title=f"{name}   {settings_text(settings)}",
                          max_channels=max_channels, overwrite=overwrite, protect=protect)
    except ValueError as exc:
        if isinstance(exc, LrnError):
            raise
        raise InputError(source, f"cannot draw a panel: {exc}") from None


# ----------------------------------------------------------------------------------------
# the sweep panel


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
        a = _image_hwc(array)
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
    color = kind == "image" and _image_hwc(x).shape[2] == 3
    if kind == "image":
        x = _image_hwc(x)
        outs = [_image_hwc(o) for o in outs]
        if not color:
            x, outs = x[..., 0], [o[..., 0] for o in outs]
    h, w = x.shape[:2]
    ncols = len(outs) + 1
    row_label_w = 118
    avail = MAX_WIDTH - 2 * MARGIN - row_label_w
    shape = _tile_shape(h, w, MAX_TILE_SWEEP)
    per_line = max(2, min(ncols, avail // (shape[1] + 2 + GAP)))
    if per_line < ncols and ncols <= 2 * per_line:  # fewer, larger columns beat two lines
        max_side = max(48, min(MAX_TILE_SWEEP, avail // ncols - GAP - 2))
        shape = _tile_shape(h, w, max_side)
        per_line = max(2, min(ncols, avail // (shape[1] + 2 + GAP)))
    # shared scale: per channel over all outputs
    if color:
        shared = [finite_range(np.stack([o[..., c] for o in outs])) for c in range(3)]
    else:
        shared = [finite_range(np.stack(outs))]

    def picture(a, own: bool):
        a = _reduce(a, *shape)
        if color:
            if own:
                return _rgb_map(a)
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
        header = [None] + [_text_image(lab + (" (own scale)" if is_input else ""), 14, INK,
                                       max_width=shape[1] + 40)
                           for lab, _a, is_input in chunk]
        same = [_text_image("same scale", 13, INK)]
        own = [_text_image("own min..max", 13, INK)]
        for _lab, a, is_input in chunk:
            rng = _range_text(*finite_range(a))
            same.append(_cell(picture(a, is_input), shape))
            own.append(_cell(picture(a, True), shape, rng))
        blocks.append(_grid([header, same, own], col_gap=GAP, row_gap=8))
    if color:
        scale_text = ", ".join(f"{n} {_range_text(*r)}" for n, r in zip("RGB", shared,
                                                                         strict=True))
    else:
        scale_text = _range_text(*shared[0])
    note = (f"top row: all outputs on one scale ({scale_text}), so the size of the effect "
            "shows; bottom row: each output stretched to its own min..max, so the pattern "
            "shows")
    body = _vstack(blocks, gap=18)
    width = body.width
    parts = [
        _text_image(title, 20, INK, max_width=max(width, 600)),
        _text_block(subtitle, 12, MUTED, max_width=max(width, 600)) if subtitle else None,
        _spacer(1, 4),
        body,
        _text_block(note, 12, MUTED, max_width=max(width, 600)),
    ]
    if any(np.isnan(a).any() for a in [x.astype(np.float64), *outs]):
        parts.append(_legend_nan("the maps shown"))
    return _finish(_vstack(parts, gap=8))


def draw_sweep_panel(x, outputs: Sequence[Any], labels: Sequence[str], path, *, kind: str,
                     title: str, subtitle: str = "", overwrite: bool = False,
                     protect: Sequence[Any] = ()) -> Path:
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

    Returns
    -------
    pathlib.Path

    Notes
    -----
    Two rows: all outputs on one shared scale (per colour channel), which shows how much a
    setting shrinks or amplifies, and each output stretched to its own min..max, which shows
    how it changes the pattern.  Many settings wrap onto several lines.
    """
    _check_png(path)
    image = render_sweep_panel(x, outputs, labels, kind=kind, title=title, subtitle=subtitle)
    return _save_png(image, path, overwrite=overwrite, protect=protect)
