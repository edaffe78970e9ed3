"""The shipped samples: images in every mode, AlexNet-shaped dumps, and the script behind them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
IMAGES = SAMPLES / "images"
ARRAYS = SAMPLES / "arrays"
SCRIPT = SAMPLES / "make_feature_dumps.py"
README = SAMPLES / "README.md"

ARRAY_NAMES = {
    "conv1_relu_nchw.npy",
    "conv1_relu_nhwc.npy",
    "conv2_relu_nchw.npy",
    "conv2_relu_nhwc.npy",
    "tf_example_nhwc.npy",
}
SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I"}
MAX_TOTAL_BYTES = 5_000_000


def _load_script():
    """Import samples/make_feature_dumps.py as a module, without writing __pycache__."""
    spec = importlib.util.spec_from_file_location("make_feature_dumps", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


@pytest.fixture(scope="module")
def dumps() -> dict[str, np.ndarray]:
    return {name: np.load(ARRAYS / name, allow_pickle=False) for name in ARRAY_NAMES}


@pytest.fixture(scope="module")
def script():
    return _load_script()


# --------------------------------------------------------------------------- the script


def test_script_reproduces_committed_arrays_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "arrays"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--images", str(IMAGES), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    made = {p.name for p in out.iterdir()}
    committed = {p.name for p in ARRAYS.iterdir()}
    assert made == ARRAY_NAMES
    assert committed == ARRAY_NAMES
    stale = [n for n in sorted(made) if (out / n).read_bytes() != (ARRAYS / n).read_bytes()]
    assert not stale, f"rerun samples/make_feature_dumps.py and commit: {stale} differ"


def test_script_is_deterministic_in_process(script, tmp_path: Path) -> None:
    first = script.make_arrays(IMAGES)
    second = script.make_arrays(IMAGES)
    for name in ARRAY_NAMES:
        np.testing.assert_array_equal(first[name], second[name])
    assert script.main(["--images", str(IMAGES), "--out", str(tmp_path)]) == 0
    for name in ARRAY_NAMES:
        assert (tmp_path / name).read_bytes() == (ARRAYS / name).read_bytes()


def test_script_fails_on_a_missing_image_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--images", str(tmp_path / "nope"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert not list(tmp_path.glob("*.npy"))


@pytest.mark.parametrize(
    ("stride", "padding", "groups"), [(1, 0, 1), (4, 0, 1), (1, 2, 2), (2, 1, 3)]
)
def test_vectorized_conv2d_matches_a_naive_loop(script, stride, padding, groups) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 13, 11))
    w = rng.standard_normal((groups * 2, 6 // groups, 3, 4))
    got = script.conv2d(x, w, stride=stride, padding=padding, groups=groups)

    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = (xp.shape[2] - 3) // stride + 1
    ow = (xp.shape[3] - 4) // stride + 1
    per_group_in, per_group_out = 6 // groups, 2
    want = np.zeros((2, groups * 2, oh, ow))
    for n in range(2):
        for o in range(groups * 2):
            g = o // per_group_out
            chans = slice(g * per_group_in, (g + 1) * per_group_in)
            for i in range(oh):
                for j in range(ow):
                    patch = xp[n, chans, i * stride : i * stride + 3, j * stride : j * stride + 4]
                    want[n, o, i, j] = np.sum(patch * w[o])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_max_pool_and_alexnet_shapes(script) -> None:
    x = np.arange(2 * 3 * 55 * 55, dtype=np.float64).reshape(2, 3, 55, 55)
    pooled = script.max_pool(x, 3, 2)
    assert pooled.shape == (2, 3, 27, 27)
    # Values increase along rows and columns, so each window's max is its bottom-right corner.
    np.testing.assert_array_equal(pooled, x[:, :, 2::2, 2::2])
    bank1 = script.conv1_filters()
    bank2 = script.conv2_filters()
    assert bank1.shape == (96, 3, 11, 11)
    assert bank2.shape == (256, 48, 5, 5)
    np.testing.assert_allclose(np.sqrt((bank1**2).sum(axis=(1, 2, 3))), 1.0)
    # conv2 filters are sparse: each reads only a few of its group's input channels.
    used = (np.abs(bank2).sum(axis=(2, 3)) > 0).sum(axis=1)
    assert used.max() <= 8 and used.min() >= 1
    # Different seeds give different filters, the same seed the same ones.
    np.testing.assert_array_equal(bank2, script.conv2_filters())
    assert not np.array_equal(bank2, script.conv2_filters(seed=1))


def test_resize_preserves_a_constant_image_and_shape(script) -> None:
    flat = np.full((256, 200, 3), 77.0)
    out = script.resize(flat, 227, 227)
    assert out.shape == (227, 227, 3)
    np.testing.assert_allclose(out, 77.0)


# --------------------------------------------------------------------------- the arrays


def test_dump_shapes_and_dtypes(dumps) -> None:
    conv1, conv2 = dumps["conv1_relu_nchw.npy"], dumps["conv2_relu_nchw.npy"]
    n = conv1.shape[0]
    assert n >= 1
    assert conv1.shape == (n, 96, 55, 55)
    assert conv2.shape == (n, 256, 27, 27)
    assert dumps["conv1_relu_nhwc.npy"].shape == (n, 55, 55, 96)
    assert dumps["conv2_relu_nhwc.npy"].shape == (n, 27, 27, 256)
    for name, array in dumps.items():
        assert array.dtype == np.float32, name
        assert array.flags.c_contiguous, name
        assert np.isfinite(array).all(), name


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_dumps_look_like_relu_activations(dumps, layer) -> None:
    x = dumps[f"{layer}_relu_nchw.npy"]
    assert x.min() == 0.0  # ReLU: non-negative, and it did clip something
    zeros = float(np.mean(x == 0))
    assert 0.2 < zeros < 0.8, zeros
    # The documented scale: 99th percentile about 50, maxima in the 100s.
    assert 45.0 < np.percentile(x, 99) < 55.0
    assert 80.0 < x.max() < 1000.0
    # Most channels respond somewhere, and they respond differently.
    per_channel_max = x.max(axis=(0, 2, 3))
    assert np.mean(per_channel_max > 0) > 0.9
    assert len(np.unique(per_channel_max)) > 0.9 * x.shape[1]
    # Values are multiples of 2**-10 (the documented rounding), exactly representable.
    np.testing.assert_array_equal(x * 1024, np.round(x * 1024))


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_nhwc_is_nchw_transposed(dumps, layer) -> None:
    nchw = dumps[f"{layer}_relu_nchw.npy"]
    nhwc = dumps[f"{layer}_relu_nhwc.npy"]
    np.testing.assert_array_equal(nhwc, nchw.transpose(0, 2, 3, 1))


def test_tf_example(dumps) -> None:
    x = dumps["tf_example_nhwc.npy"]
    assert x.shape == (2, 2, 2, 4)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.ravel(), np.arange(1, 33))
    np.testing.assert_array_equal(x[0, 0, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(x[1, 1, 1], [29, 30, 31, 32])


# --------------------------------------------------------------------------- the images


def _png_bit_depth(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return data[24]


def test_images_cover_every_mode() -> None:
    modes: dict[str, list[Path]] = {}
    for path in sorted(IMAGES.iterdir()):
        with Image.open(path) as im:
            im.load()
            assert max(im.size) <= 512, path
            assert min(im.size) >= 64, path
            modes.setdefault(im.mode, []).append(path)
    assert "L" in modes
    assert "RGB" in modes
    assert "RGBA" in modes
    sixteen = [p for mode in SIXTEEN_BIT_MODES for p in modes.get(mode, [])]
    assert sixteen, f"no 16-bit image among {sorted(modes)}"


def test_sixteen_bit_image_uses_more_than_eight_bits() -> None:
    found = 0
    for path in sorted(IMAGES.glob("*.png")):
        with Image.open(path) as im:
            if im.mode not in SIXTEEN_BIT_MODES:
                continue
            values = np.asarray(im).astype(np.int64)
        found += 1
        assert _png_bit_depth(path) == 16, path
        assert values.min() >= 0 and values.max() <= 65535
        assert values.max() > 255, path
        assert np.mean(values % 257 != 0) > 0.5, f"{path} is 8-bit data scaled by 257"
    assert found


def test_rgba_image_has_a_real_alpha_channel() -> None:
    found = 0
    for path in sorted(IMAGES.iterdir()):
        with Image.open(path) as im:
            if im.mode != "RGBA":
                continue
            alpha = np.asarray(im)[..., 3]
        found += 1
        assert alpha.min() == 0 and alpha.max() == 255, path
        assert 0.05 < np.mean((alpha > 0) & (alpha < 255)), path
    assert found


def test_every_sample_file_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    for path in [*IMAGES.iterdir(), *ARRAYS.iterdir()]:
        assert f"`{path.parent.name}/{path.name}`" in text, path
    for word in ("cc0", "public domain", "licence"):
        assert word in text.lower()


def test_samples_folder_stays_small() -> None:
    total = sum(
        p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    assert total < MAX_TOTAL_BYTES, f"samples/ is {total} bytes"
