"""``lrn apply --panel``: pictures of input, output and divisor, through the real CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ARRAYS, IMAGES, LRN_EXE, stderr_of
from conftest import run_wide as run
from PIL import Image

from lrn_cli.errors import OutputError
from lrn_cli.panel import (
    NAN_COLOR,
    VIRIDIS,
    colormap,
    draw_histogram,
    draw_panel,
    feature_view,
    gray_map,
    histogram,
    render_panel,
)

ASTRONAUT = IMAGES / "astronaut_rgb.png"
CAMERA = IMAGES / "camera_gray.png"
CONV2 = ARRAYS / "conv2_relu_nchw.npy"
CONV2_NHWC = ARRAYS / "conv2_relu_nhwc.npy"


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def assert_not_blank(px: np.ndarray, min_colours: int = 50) -> None:
    assert px.var() > 0
    colours = np.unique(px.reshape(-1, 3), axis=0)
    assert len(colours) >= min_colours
    # the background is white and most of the picture is not
    assert (px == 255).all(axis=-1).mean() < 0.9


def has_colour(px: np.ndarray, rgb, tol: int = 0) -> bool:
    return bool((np.abs(px.astype(int) - np.array(rgb)) <= tol).all(axis=-1).any())


# --------------------------------------------------------------------------- through the CLI


def test_rgb_image_panel(tmp_path: Path) -> None:
    out, panel = tmp_path / "out.png", tmp_path / "p.png"
    result = run("apply", ASTRONAUT, "-o", out, "--panel", panel)
    assert result.exit_code == 0, stderr_of(result)
    assert out.exists()
    assert "panel written" in stderr_of(result)
    px = pixels(panel)
    h, w = px.shape[:2]
    # RGB composite row + R, G, B rows of 256-px tiles, plus the histogram
    assert 700 <= w <= 2400 and 4 * 256 < h < 2400
    assert_not_blank(px)
    # D heat map uses the colour map's ends; no NaN in this input
    assert has_colour(px, VIRIDIS[0], tol=2) and has_colour(px, VIRIDIS[-1], tol=2)
    assert not has_colour(px, NAN_COLOR)


def test_feature_dump_panel(tmp_path: Path) -> None:
    out, panel = tmp_path / "o.npy", tmp_path / "p.png"
    result = run("apply", CONV2, "-o", out, "--panel", panel)
    assert result.exit_code == 0, stderr_of(result)
    px = pixels(panel)
    h, w = px.shape[:2]
    # three 4x4 grids of 27x27 maps enlarged to >= 110 px, side by side
    assert 3 * 4 * 110 < w <= 2400 and 4 * 110 < h < 2000
    assert_not_blank(px)
    assert not has_colour(px, NAN_COLOR)


def test_panel_nhwc_matches_nchw(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run("apply", CONV2, "--panel", a, "-q").exit_code == 0
    assert run("apply", CONV2_NHWC, "--layout", "NHWC", "--panel", b, "-q").exit_code == 0
    pa, pb = pixels(a), pixels(b)
    assert pa.shape == pb.shape
    # only the title (file name, layout) differs
    assert (pa != pb).any(axis=-1).mean() < 0.01


def test_refuses_existing_panel(tmp_path: Path) -> None:
    panel = tmp_path / "p.png"
    panel.write_bytes(b"keep me")
    result = run("apply", CAMERA, "--panel", panel)
    assert result.exit_code == 1
    err = stderr_of(result)
    assert str(panel) in err and "already exists" in err
    assert panel.read_bytes() == b"keep me"
    result = run("apply", CAMERA, "--panel", panel, "--overwrite")
    assert result.exit_code == 0, stderr_of(result)
    assert_not_blank(pixels(panel))


def test_panel_must_be_png(tmp_path: Path) -> None:
    result = run("apply", CAMERA, "--panel", tmp_path / "p.jpg")
    assert result.exit_code == 1
    assert "p.jpg" in stderr_of(result) and "PNG" in stderr_of(result)
    assert not (tmp_path / "p.jpg").exists()


def test_gray_image_with_alpha(tmp_path: Path) -> None:
    gray = np.asarray(Image.open(CAMERA))[::2, ::2]
    alpha = np.full_like(gray, 255)
    alpha[:20] = 0
    src = tmp_path / "la.png"
    Image.fromarray(np.stack([gray, alpha], axis=-1)).save(src)
    with Image.open(src) as im:
        assert im.mode == "LA"
    panel = tmp_path / "p.png"
    result = run("apply", src, "-o", tmp_path / "out.png", "--panel", panel)
    assert result.exit_code == 0, stderr_of(result)
    px = pixels(panel)
    # one row (gray) of 128-px maps enlarged to at least 110: shorter than the RGB panel
    assert px.shape[0] < 900 and px.shape[1] <= 2400
    assert_not_blank(px)


def test_nan_in_input_is_drawn_in_its_own_colour(tmp_path: Path) -> None:
    x = np.load(CONV2)[:, :8].copy()
    x[0, 0, 3:8, 3:8] = np.nan
    src = tmp_path / "nan.npy"
    np.save(src, x)
    panel = tmp_path / "p.png"
    result = run("apply", src, "--panel", panel, "-q")
    assert result.exit_code == 0, stderr_of(result)
    px = pixels(panel)
    assert has_colour(px, NAN_COLOR)
    assert_not_blank(px)


def test_stdin_input(tmp_path: Path) -> None:
    panel = tmp_path / "p.png"
    result = run("apply", "-", "--panel", panel, "-q", input=CAMERA.read_bytes())
    assert result.exit_code == 0, stderr_of(result)
    assert_not_blank(pixels(panel))


@pytest.mark.skipif(not LRN_EXE.exists(), reason="the lrn script is not installed next to python")
def test_real_executable(tmp_path: Path) -> None:
    panel = tmp_path / "p.png"
    proc = subprocess.run(
        [str(LRN_EXE), "apply", str(CONV2), "-o", str(tmp_path / "o.npy"), "--panel",
         str(panel), "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert_not_blank(pixels(panel))
    again = subprocess.run(
        [str(LRN_EXE), "apply", str(CONV2), "--panel", str(panel), "-q"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"},
    )
    assert again.returncode == 1
    first = again.stderr.splitlines()[0]
    assert first.startswith("error: ") and str(panel) in first and "already exists" in first


# --------------------------------------------------------------------------- library


def test_colormap_ends_nan_and_clipping() -> None:
    rgb = colormap(np.array([0.0, 0.5, 1.0, np.nan, 2.0, -1.0]), 0.0, 1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 3)
    assert tuple(rgb[0]) == VIRIDIS[0]
    assert tuple(rgb[2]) == VIRIDIS[-1]
    assert tuple(rgb[1]) == VIRIDIS[5]  # 11 anchors: 0.5 is the sixth
    assert tuple(rgb[3]) == NAN_COLOR
    assert tuple(rgb[4]) == VIRIDIS[-1] and tuple(rgb[5]) == VIRIDIS[0]


def test_colormap_is_perceptually_ordered() -> None:
    rgb = colormap(np.linspace(0, 1, 256)).astype(float)
    luma = rgb @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luma) >= -0.5)  # brightness never goes back (up to rounding)
    assert luma[-1] - luma[0] > 150


def test_colormap_defaults_and_constant() -> None:
    rgb = colormap(np.array([[2.0, 4.0], [3.0, 4.0]]))
    assert tuple(rgb[0, 0]) == VIRIDIS[0] and tuple(rgb[0, 1]) == VIRIDIS[-1]
    assert len({tuple(c) for c in colormap(np.full((3, 3), 7.0)).reshape(-1, 3)}) == 1
    with pytest.raises(ValueError):
        colormap(np.zeros(3), anchors=[(0, 0, 0)])


def test_gray_map() -> None:
    g = gray_map(np.array([1.0, 3.0, np.nan, 2.0]))
    assert g[:, 0].tolist()[:2] == [0, 255] and tuple(g[2]) == NAN_COLOR
    assert 126 <= g[3, 0] <= 128
    assert (gray_map(np.zeros(4)) == 0).all()  # a dead channel stays black


def test_histogram_counts_shared_bins_and_log_choice() -> None:
    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(size=10_000), 0).astype(np.float32)  # ReLU: half zeros
    x[:3] = np.nan
    y = x * 0.5
    h = histogram(x, y, bins=40)
    assert len(h.edges) == 41 and h.before.shape == h.after.shape == (40,)
    assert h.before.sum() == 10_000 - 3 and h.nonfinite_before == 3
    assert h.after.sum() == 10_000 - 3 and h.nonfinite_after == 3
    assert h.edges[0] == 0.0 and h.edges[-1] == pytest.approx(float(np.nanmax(x)))
    assert h.log  # the zero bin dwarfs the rest
    flat = histogram(rng.uniform(size=5000), rng.uniform(size=5000))
    assert not flat.log and 10 <= len(flat.before) <= 80
    empty = histogram(np.full(4, np.nan), np.full(4, np.nan))
    assert empty.before.sum() == 0 and empty.nonfinite_before == 4


def test_histogram_samples_large_arrays() -> None:
    x = np.arange(1000, dtype=np.float64)
    h = histogram(x, x, bins=10, max_values=100)
    assert h.step == 10 and h.before.sum() == 100


def test_draw_histogram() -> None:
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=2000))
    img = draw_histogram(histogram(x, x * 0.6), 640, 240, title="values")
    assert img.size == (640, 240) and img.mode == "RGB"
    px = np.asarray(img)
    # the bars of both series: blue-ish and orange-ish pixels
    assert (px[..., 2] > px[..., 0] + 40).any()
    assert (px[..., 0] > px[..., 2] + 80).any()
    with pytest.raises(ValueError):
        draw_histogram(histogram(x, x), 60, 40)


def test_feature_view_layouts() -> None:
    x = np.load(CONV2)
    maps, per_channel, where = feature_view(x, "NCHW", 1)
    assert per_channel and maps.shape == (256, 27, 27) and "N=0" in where
    nhwc, _, _ = feature_view(x.transpose(0, 2, 3, 1), "NHWC", 3)
    np.testing.assert_array_equal(maps, nhwc)
    nc, per_channel, _ = feature_view(np.zeros((5, 7)), "NC", 1)
    assert not per_channel and nc.shape == (1, 5, 7)
    ncl, _, _ = feature_view(np.zeros((2, 3, 9)), "NCL", 1)
    assert ncl.shape == (1, 3, 9)
    ncdhw, per_channel, where = feature_view(np.zeros((1, 2, 5, 4, 6)), "NCDHW", 1)
    assert per_channel and ncdhw.shape == (2, 4, 6) and "D=2" in where


def test_render_panel_api(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((3, 9, 9)).astype(np.float32)
    img = render_panel(x, x * 0.5, np.full_like(x, 2.0), channel_axis=0, layout="CHW",
                       kind="array", title="t")
    assert img.width <= 2400 and img.height > 110
    with pytest.raises(ValueError):
        render_panel(x, x, x, channel_axis=0, layout="CHW", kind="movie", title="t")
    with pytest.raises(ValueError):
        render_panel(x, x[:1], x, channel_axis=0, layout="CHW", kind="array", title="t")
    path = draw_panel(x, x * 0.5, x + 2, tmp_path / "p.png", channel_axis=0, layout="CHW",
                      kind="array", title="t")
    assert path.exists()
    with pytest.raises(OutputError, match="already exists"):
        draw_panel(x, x, x, path, channel_axis=0, layout="CHW", kind="array", title="t")
    with pytest.raises(OutputError, match="PNG"):
        draw_panel(x, x, x, tmp_path / "p.gif", channel_axis=0, layout="CHW", kind="array",
                   title="t")


def test_wide_arrays_stay_within_width(tmp_path: Path) -> None:
    x = np.random.default_rng(3).random((1, 40, 300, 500)).astype(np.float32)
    img = render_panel(x, x, x + 1, channel_axis=1, layout="NCHW", kind="array", title="t",
                       max_channels=16)
    assert img.width <= 2400


def test_apply_panel_draws_the_run_arrays_without_recomputing(tmp_path: Path,
                                                              monkeypatch) -> None:
    """The panel is drawn from the x, y and D of the run: LRN runs once, not twice."""
    import lrn_cli.core

    calls = []
    real = lrn_cli.core.lrn

    def counting(*args, **kwargs):
        calls.append(kwargs.get("return_divisor", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(lrn_cli.core, "lrn", counting)
    panel = tmp_path / "p.png"
    result = run("apply", CONV2, "--panel", panel, "-q")
    assert result.exit_code == 0, stderr_of(result)
    assert calls == [True]
    assert_not_blank(pixels(panel))


def test_draw_panel_for_needs_the_kept_arrays(tmp_path: Path) -> None:
    from lrn_cli.panel import draw_panel_for
    from lrn_cli.pipeline import ReadOptions, Settings, WriteOptions, run_job

    settings = Settings()
    bare = run_job(str(CAMERA), None, settings, ReadOptions(), WriteOptions())
    assert bare.status == "ok" and bare.items[0].input_array is None
    with pytest.raises(ValueError, match="keep_arrays"):
        draw_panel_for(bare, tmp_path / "p.png", settings)
    kept = run_job(str(CAMERA), None, settings, ReadOptions(), WriteOptions(),
                   keep_arrays=True)
    item = kept.items[0]
    assert kept.kind == "image" and item.input_array.shape == item.divisor_array.shape
    np.testing.assert_array_less(0.0, item.divisor_array)  # D >= k = 2
    path = draw_panel_for(kept, tmp_path / "p.png", settings)
    assert_not_blank(pixels(path))
    # what is sent between processes carries no arrays
    light = item.without_output()
    assert light.output is None and light.input_array is None and light.divisor_array is None


def test_histogram_of_one_array() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=3000)
    x[:5] = np.nan
    h = histogram(x, bins=30)
    assert h.after is None and h.before.sum() == 3000 - 5 and h.nonfinite_before == 5
    assert h.edges[0] == pytest.approx(np.nanmin(x)) and h.edges[-1] == pytest.approx(np.nanmax(x))
    # the same bins and counts as the first series of a two-array histogram of x and x
    both = histogram(x, x, bins=30)
    np.testing.assert_array_equal(h.edges, both.edges)
    np.testing.assert_array_equal(h.before, both.before)
    img = np.asarray(draw_histogram(h, 500, 220, labels=("x",), colors=((230, 110, 0),)),
                     dtype=int)
    assert (img[..., 0] > img[..., 2] + 80).any()  # orange bars
    assert not (img[..., 2] > img[..., 0] + 40).any()  # no blue series
