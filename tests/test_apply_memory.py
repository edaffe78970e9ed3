"""``lrn apply`` on a picture holds one float32 image and a few slabs, not four images.

NumPy reports its buffers to :mod:`tracemalloc`, so the peak of traced memory during
:func:`lrn_cli.pipeline.run_job` counts the float arrays alive at once (Pillow's own buffers
are not traced).  Before the in-place path the peak was ~4.2 float32 images (input, output,
divisor, rescaled copy); the bounds below leave room for small temporaries only.
"""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrn_cli.pipeline import ReadOptions, Settings, WriteOptions, run_job

H, W = 300, 400


def png(mode: str) -> bytes:
    rng = np.random.default_rng(0)
    shape = (H, W, 3) if mode == "RGB" else (H, W)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def peak_in_images(tmp_path: Path, mode: str, pil_mode: str, **job) -> float:
    """Peak traced memory of one ``run_job``, in float32 images of the picture."""
    data = png(pil_mode)
    settings = Settings(mode=mode)
    wopts = WriteOptions(overwrite=True, png_compression=0)
    out = str(tmp_path / "out.png")
    assert run_job("p.png", out, settings, ReadOptions(), wopts, data=data).status == "ok"
    tracemalloc.start()
    try:
        result = run_job("p.png", out, settings, ReadOptions(), wopts, data=data, **job)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status == "ok", result.error
    channels = 3 if pil_mode == "RGB" else 1
    return peak / (H * W * channels * 4)


@pytest.mark.parametrize("mode,pil_mode,bound", [
    ("within", "RGB", 2.1),  # input + one channel's output and divisor (1 + 2/3)
    ("across", "RGB", 1.7),  # input + an eighth of the rows' output and divisor
    ("across", "L", 1.7),
])
def test_apply_holds_one_image_and_slabs(tmp_path: Path, mode: str, pil_mode: str,
                                         bound: float) -> None:
    assert peak_in_images(tmp_path, mode, pil_mode) <= bound


def test_panels_keep_their_arrays(tmp_path: Path) -> None:
    # keep_arrays (a panel draws input, output and divisor): nothing is overwritten
    assert peak_in_images(tmp_path, "within", "RGB", keep_arrays=True) >= 3.0


@pytest.mark.parametrize("mode", ["within", "across"])
@pytest.mark.parametrize("pil_mode", ["RGB", "L"])
def test_a_picture_prints_the_same_figures_with_or_without_a_panel(mode: str,
                                                                  pil_mode: str) -> None:
    # the in-place path sums D slab by slab; the panel path (keep_arrays) holds D whole and
    # must sum it in the same order, or the JSON's full-precision floats differ in the last bits
    from lrn_cli.pipeline import load, normalize

    rng = np.random.default_rng(3)
    shape = (97, 131, 3) if pil_mode == "RGB" else (97, 131)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).save(buf, format="PNG")
    settings = Settings(mode=mode, size=4, alpha=1.0, k=0.5)
    results = []
    for keep_arrays in (True, False):
        loaded = load("p.png", ReadOptions(), mode, data=buf.getvalue())
        results.append(normalize(loaded, settings, keep_arrays=keep_arrays,
                                 reuse_input=not keep_arrays)[0])
    panel, plain = results
    assert panel.divisor == plain.divisor
    assert panel.before == plain.before and panel.after == plain.after
