"""Histograms of the values before and after a normalization, on shared bins."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lrn_cli.panel.draw import (
    BACKGROUND,
    INK,
    INPUT_COLOR,
    MARGIN,
    MUTED,
    OUTPUT_COLOR,
    get_font,
    line_height,
    num_text,
    text_image,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL import Image as PILImage


@dataclass(frozen=True)
class Histogram:
    """Counts of the values before and after LRN, on shared bins (or of one array).

    Attributes
    ----------
    edges : numpy.ndarray
        ``bins + 1`` bin edges spanning the finite values of both arrays.
    before, after : numpy.ndarray
        Counts per bin (int64); ``after`` is None for the histogram of one array.
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


def histogram(before, after=None, bins: int | None = None, *,
              max_values: int = 4_000_000) -> Histogram:
    """Histogram of ``before`` and ``after`` on the same bins (finite values only).

    Parameters
    ----------
    before, after : array_like
        Any shapes; flattened.  Without ``after``, the histogram of ``before`` alone.
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
    ys, step_a = _sample(after if after is not None else (), max_values)
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
    ca = np.histogram(ys, bins=edges)[0].astype(np.int64) if after is not None else None
    counts = np.concatenate([cb, ca]) if ca is not None else cb
    positive = counts[counts > 0]
    log = bool(positive.size and positive.max() > LOG_RATIO * float(np.median(positive)))
    return Histogram(edges, cb, ca, log, nonfinite_b, nonfinite_a, max(step_b, step_a))


def _power_ticks(cmax: int) -> list[int]:
    ticks = [10**p for p in range(int(math.log10(cmax)) + 1)] if cmax >= 1 else []
    while len(ticks) > 6:
        ticks = ticks[::2]
    return ticks


def draw_histogram(hist: Histogram, width: int = 900, height: int = 260, *,
                   labels: tuple[str, ...] = ("input", "output"),
                   title: str | None = None,
                   colors: tuple[tuple[int, int, int], ...] = (INPUT_COLOR, OUTPUT_COLOR),
                   ) -> PILImage.Image:
    """Draw ``hist`` as two overlaid, semi-transparent bar series with labelled axes.

    Parameters
    ----------
    hist : Histogram
        From :func:`histogram`.
    width, height : int
        Size of the returned image in pixels.
    labels : (str, str)
        Legend entries of the two series (before, after); one for a one-array histogram.
    title : str, optional
        Drawn at the top left.
    colors : ((r, g, b), (r, g, b))
        Colours of the two series (a one-array histogram uses the first).

    Returns
    -------
    PIL.Image.Image
        RGB, ``width x height``, white background.  The value axis is ticked at its min,
        middle and max (and 0 when inside), the count axis at 0, half and its max (powers of
        ten when log).
    """
    import numpy as np
    from PIL import Image, ImageDraw

    small, font = get_font(12), get_font(13)
    img = Image.new("RGBA", (width, height), BACKGROUND + (255,))
    draw = ImageDraw.Draw(img)
    line_h = line_height(font)
    top = MARGIN // 2 + (line_h + 8 if title else 0) + line_h + 6
    left, right, bottom = 78, 20, 2 * line_height(small) + 14
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    if x1 - x0 < 20 or y1 - y0 < 20:
        raise ValueError(f"histogram of {width}x{height} pixels is too small to draw")
    series = [(hist.before, colors[0], labels[0], hist.nonfinite_before)]
    if hist.after is not None:
        series.append((hist.after, colors[1], labels[1], hist.nonfinite_after))
    cmax = int(max(*(int(counts.max(initial=0)) for counts, *_ in series), 1))

    def scale(c):
        c = np.asarray(c, dtype=np.float64)
        if hist.log:
            return np.log10(1.0 + c) / math.log10(1.0 + cmax)
        return c / cmax

    nb = len(hist.before)
    xs = x0 + (x1 - x0) * np.arange(nb + 1) / nb
    for counts, color, *_ in series:
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
        text = num_text(v)
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
        draw.text((x0 - 7 - tw, py - line_height(small) / 2), text, fill=INK + (255,),
                  font=small)
    xlabel = "value"
    if hist.step > 1:
        xlabel += f" (1 value in {hist.step} counted)"
    tw = draw.textlength(xlabel, font=small)
    draw.text(((x0 + x1) / 2 - tw / 2, y1 + 8 + line_height(small)), xlabel, fill=MUTED + (255,),
              font=small)
    ylabel = text_image("count (log scale)" if hist.log else "count", 12, MUTED)
    ylabel = ylabel.rotate(90, expand=True)
    img.paste(ylabel, (6, int((y0 + y1) / 2 - ylabel.height / 2)))
    # title and legend
    ty = MARGIN // 2
    if title:
        draw.text((x0, ty), title, fill=INK + (255,), font=font)
        ty += line_h + 8
    lx = x0
    for _counts, color, label, nonfinite in series:
        draw.rectangle([lx, ty + 2, lx + 14, ty + 14], fill=color + (160,), outline=color + (255,))
        text = label + (f" ({nonfinite} NaN/Inf left out)" if nonfinite else "")
        draw.text((lx + 20, ty), text, fill=INK + (255,), font=font)
        lx += 20 + int(draw.textlength(text, font=font)) + 24
    return img.convert("RGB")


def _count_text(c: int) -> str:
    if c >= 10**5 and c == 10 ** round(math.log10(c)):
        return f"1e{round(math.log10(c))}"
    return str(int(c))


