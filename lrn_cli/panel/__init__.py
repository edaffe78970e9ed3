"""Pictures of what a normalization did: input, output and divisor side by side, with histograms.

``lrn apply ... --panel panel.png`` calls :func:`draw_panel_for`, ``lrn sweep ... --panel``
:func:`draw_sweep_panel` and ``lrn norms ... --panel`` :func:`draw_norms_panel`.  The panels
get the arrays they show passed in (they never reload an input or recompute LRN), and are
written atomically as PNG.

Modules
-------
:mod:`~lrn_cli.panel.draw`
    Drawing primitives: colour maps, text, tiles, grids and stacks, the colour bar, saving.
:mod:`~lrn_cli.panel.views`
    What is shown of an array (:func:`feature_view`).
:mod:`~lrn_cli.panel.histogram`
    Histograms before and after, on shared bins.
:mod:`~lrn_cli.panel.apply_panel`, :mod:`~lrn_cli.panel.sweep_panel`
    The pictures of ``lrn apply`` and ``lrn sweep``.
:mod:`~lrn_cli.panel.norms_panel`
    The picture of ``lrn norms``: one row per normalization.

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
that each tile is at least :data:`~lrn_cli.panel.draw.MIN_TILE` pixels; large ones are
reduced.  NaN is drawn in :data:`NAN_COLOR` (magenta) in every tile, and left out of the
histograms (with a note).
"""

from __future__ import annotations

from lrn_cli.panel.apply_panel import draw_panel, draw_panel_for, render_panel, settings_text
from lrn_cli.panel.draw import NAN_COLOR, VIRIDIS, colormap, finite_range, gray_map
from lrn_cli.panel.histogram import Histogram, draw_histogram, histogram
from lrn_cli.panel.norms_panel import draw_norms_panel, render_norms_panel
from lrn_cli.panel.sweep_panel import draw_sweep_panel, render_sweep_panel, sweep_slice
from lrn_cli.panel.views import feature_view

__all__ = [
    "NAN_COLOR",
    "VIRIDIS",
    "Histogram",
    "colormap",
    "gray_map",
    "finite_range",
    "histogram",
    "draw_histogram",
    "feature_view",
    "render_panel",
    "draw_panel",
    "draw_panel_for",
    "settings_text",
    "render_sweep_panel",
    "draw_sweep_panel",
    "sweep_slice",
    "render_norms_panel",
    "draw_norms_panel",
]
