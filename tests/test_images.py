"""Image reading/writing through Pillow on real files, and display rescaling."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrn_cli import images as images_module
from lrn_cli.errors import InputError, OutputError, ParameterError
from lrn_cli.images import (
    check_image_output,
    is_image_path,
    read_image,
    rescale,
    write_image,
)

RNG = np.random.default_rng(1234)


def _save(path: Path, image: Image.Image, **params) -> Path:
    image.save(path, **params)
    return path


def _rgb8(h: int = 6, w: int = 5) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _decode_png16(data: bytes) -> np.ndarray:
    """Independent minimal decoder for the 16-bit PNGs write_image produces."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color_type, _, _, interlace = header
    assert depth == 16 and interlace == 0
    planes = {0: 1, 4: 2, 2: 3, 6: 4}[color_type]
    stride = width * planes * 2
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, stride + 1)
    rows = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind = raw[y, 0]
        assert kind in (0, 2)
        rows[y] = raw[y, 1:] + (previous if kind == 2 else 0)
        previous = rows[y]
    return rows.view(">u2").reshape(height, width, planes).astype(np.uint16)


# --- reading: modes and value ranges -------------------------------------------------------


def test_gray8(tmp_path: Path) -> None:
    codes = RNG.integers(0, 256, (4, 7), dtype=np.uint8)
    codes[0, 0] = 255
    image = read_image(_save(tmp_path / "g.png", Image.fromarray(codes)))
    assert image.pixels.shape == (4, 7, 1) and image.pixels.dtype == np.float32
    assert (image.mode, image.bit_depth, image.channel_names) == ("L", 8, ("L",))
    assert image.alpha is None and image.source_format == "PNG" and image.notes == []
    np.testing.assert_array_equal(image.pixels[..., 0], codes / np.float32(255))
    assert image.pixels[0, 0, 0] == 1.0


@pytest.mark.parametrize(("value_range", "top"), [("unit", 1.0), ("byte", 255.0), ("raw", 255.0)])
def test_value_range_8bit(tmp_path: Path, value_range: str, top: float) -> None:
    codes = np.array([[0, 51, 255]], dtype=np.uint8)
    path = _save(tmp_path / "g.png", Image.fromarray(codes))
    image = read_image(path, value_range=value_range)
    np.testing.assert_allclose(image.pixels[0, :, 0], [0, 51 * top / 255, top], rtol=1e-6)
    assert image.pixels[0, 2, 0] == top
    assert image.value_range == value_range


@pytest.mark.parametrize(("value_range", "top"), [("unit", 1.0), ("byte", 255.0), ("raw", 65535.0)])
def test_value_range_16bit(tmp_path: Path, value_range: str, top: float) -> None:
    codes = np.array([[0, 257, 65535]], dtype=np.uint16)
    path = _save(tmp_path / "g16.png", Image.fromarray(codes))
    image = read_image(path, value_range=value_range)
    assert (image.mode, image.bit_depth) == ("I;16", 16)
    assert image.pixels[0, 2, 0] == top
    np.testing.assert_allclose(image.pixels[0, 1, 0], 257 * top / 65535, rtol=1e-6)


def test_bad_value_range(tmp_path: Path) -> None:
    path = _save(tmp_path / "g.png", Image.new("L", (2, 2)))
    with pytest.raises(ParameterError, match="value range"):
        read_image(path, value_range="percent")


def test_rgb_and_rgba(tmp_path: Path) -> None:
    rgb = _rgb8()
    image = read_image(_save(tmp_path / "c.png", Image.fromarray(rgb)))
    assert (image.mode, image.channel_names, image.alpha) == ("RGB", ("R", "G", "B"), None)
    np.testing.assert_array_equal(image.pixels * 255, rgb.astype(np.float32))

    rgba = np.dstack([rgb, np.arange(30, dtype=np.uint8).reshape(6, 5) * 8])
    image = read_image(_save(tmp_path / "a.png", Image.fromarray(rgba)), value_range="byte")
    assert image.mode == "RGBA" and image.pixels.shape == (6, 5, 3)
    np.testing.assert_array_equal(image.alpha, rgba[..., 3].astype(np.float32))


def test_gray_alpha(tmp_path: Path) -> None:
    la = np.dstack([np.full((3, 4), 10, np.uint8), np.full((3, 4), 200, np.uint8)])
    image = read_image(_save(tmp_path / "la.png", Image.fromarray(la)), value_range="raw")
    assert image.mode == "LA" and image.pixels.shape == (3, 4, 1)
    assert image.pixels.max() == 10 and image.alpha.min() == 200


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    palette = Image.new("P", (4, 3))
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    palette.putdata([0, 1, 2, 1] * 3)
    path = _save(tmp_path / "p.png", palette, transparency=0)
    image = read_image(path)
    assert image.mode == "P" and image.pixels.shape == (3, 4, 3)
    np.testing.assert_array_equal(image.alpha[:, 0], 0.0)
    np.testing.assert_array_equal(image.alpha[:, 1], 1.0)
    np.testing.assert_array_equal(image.pixels[0, 1], [1.0, 0.0, 0.0])


def test_palette_without_transparency_becomes_rgb(tmp_path: Path) -> None:
    path = _save(tmp_path / "p.gif", Image.fromarray(_rgb8()).convert("P"))
    image = read_image(path)
    assert image.mode == "P" and image.alpha is None and image.channels == 3


def test_one_bit(tmp_path: Path) -> None:
    path = _save(tmp_path / "b.png", Image.new("1", (3, 2), 1))
    image = read_image(path)
    assert image.mode == "1" and image.bit_depth == 8
    np.testing.assert_array_equal(image.pixels, 1.0)


def test_mode_i_in_and_out_of_16bit_range(tmp_path: Path) -> None:
    ok = _save(tmp_path / "ok.tif", Image.fromarray(np.array([[0, 65535]], dtype=np.int32)))
    image = read_image(ok)
    assert (image.mode, image.bit_depth, image.pixels[0, 1, 0]) == ("I", 16, 1.0)
    bad = _save(tmp_path / "bad.tif", Image.fromarray(np.array([[-1, 70000]], dtype=np.int32)))
    with pytest.raises(InputError, match=r"-1\.\.70000 do not fit in 16 bits"):
        read_image(bad)


def test_float_tiff_keeps_raw_values(tmp_path: Path) -> None:
    values = np.array([[-1.5, 0.25, 1000.0]], dtype=np.float32)
    image = read_image(_save(tmp_path / "f.tif", Image.fromarray(values)), value_range="byte")
    assert (image.mode, image.bit_depth, image.value_range) == ("F", 32, "raw")
    np.testing.assert_array_equal(image.pixels[..., 0], values)
    assert any("floating-point" in note for note in image.notes)


def test_cmyk_converted_and_foreign_icc_dropped(tmp_path: Path) -> None:
    cmyk_profile = bytes(16) + b"CMYK" + bytes(108)
    path = _save(
        tmp_path / "k.jpg", Image.new("CMYK", (4, 4), (0, 0, 0, 0)), icc_profile=cmyk_profile
    )
    image = read_image(path)
    assert image.mode == "CMYK" and image.channels == 3
    assert image.icc_profile is None
    assert any("converted from CMYK to RGB" in note for note in image.notes)
    assert any("ICC profile dropped" in note for note in image.notes)


def test_matching_icc_profile_is_kept_and_written(tmp_path: Path) -> None:
    rgb_profile = bytes(16) + b"RGB " + bytes(108)
    path = _save(tmp_path / "c.png", Image.fromarray(_rgb8()), icc_profile=rgb_profile)
    image = read_image(path)
    assert image.icc_profile == rgb_profile
    for bits in (8, 16):
        out = write_image(
            tmp_path / f"o{bits}.png", image.pixels, bit_depth=bits, icc_profile=image.icc_profile
        )
        assert read_image(out).icc_profile == rgb_profile


def test_exif_orientation_applied(tmp_path: Path) -> None:
    array = np.zeros((20, 40, 3), dtype=np.uint8)  # 20 rows, 40 columns
    array[:, :4] = 255  # a white band on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(tmp_path / "o.jpg", Image.fromarray(array), exif=exif, quality=95)
    image = read_image(path)
    assert image.pixels.shape == (40, 20, 3)
    assert image.pixels[:4].mean() > 0.9 and image.pixels[-4:].mean() < 0.1  # band now on top
    assert any("EXIF orientation 6" in note for note in image.notes)


def test_multi_frame_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), color) for color in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    image = read_image(path)
    np.testing.assert_allclose(image.pixels[0, 0], [1.0, 0.0, 0.0], atol=0.01)
    assert any("2 frames" in note for note in image.notes)


def test_read_from_non_seekable_stream(tmp_path: Path) -> None:
    data = io.BytesIO()
    Image.fromarray(_rgb8()).save(data, format="PNG")

    class Pipe(io.RawIOBase):
        def __init__(self, payload: bytes) -> None:
            self._inner = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer) -> int:
            return self._inner.readinto(buffer)

    image = read_image(io.BufferedReader(Pipe(data.getvalue())), name="<stdin>")
    assert image.pixels.shape == (6, 5, 3)


def test_read_from_named_pipe(tmp_path: Path) -> None:
    png = tmp_path / "c.png"
    Image.fromarray(_rgb8()).save(png)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat '{png}' > '{fifo}'"])
    try:
        image = read_image(fifo)
    finally:
        writer.wait(timeout=10)
    assert image.pixels.shape == (6, 5, 3)


# --- reading: broken and hostile files -----------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.png")


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_text("definitely not an image\n")
    with pytest.raises(InputError, match="not an image Pillow can read"):
        read_image(path)


def test_broken_png_checksum_reports_the_cause(tmp_path: Path) -> None:
    path = _save(tmp_path / "c.png", Image.new("L", (4, 4)))
    data = bytearray(path.read_bytes())
    data[29] ^= 0xFF  # inside the IHDR CRC
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"not an image Pillow can read \(PNG: broken PNG"):
        read_image(path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    path = _save(tmp_path / "t.jpg", Image.fromarray(_rgb8(64, 64)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_image(path)


def test_truncated_png(tmp_path: Path) -> None:
    path = _save(tmp_path / "t.png", Image.fromarray(_rgb8(64, 64)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_image(path)


def test_decompression_bomb_refused(tmp_path: Path, monkeypatch) -> None:
    path = _save(tmp_path / "bomb.png", Image.new("L", (16, 12)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # error above 2 * 50 pixels
    with pytest.raises(InputError, match=r"decompression bomb guard\): 16 x 12 pixels"):
        read_image(path)


def test_decompression_bomb_warning_becomes_a_note(tmp_path: Path, monkeypatch) -> None:
    path = _save(tmp_path / "big.png", Image.new("L", (16, 12)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)  # 192 px: warning, not error
    image = read_image(path)  # pytest turns escaping warnings into errors
    assert any("decompression-bomb warning threshold" in note for note in image.notes)


def test_sixteen_bit_rgb_png_is_flagged_when_pillow_squeezes_it(tmp_path: Path) -> None:
    path = write_image(tmp_path / "c16.png", RNG.random((3, 4, 3)), bit_depth=16)
    image = read_image(path)
    assert image.mode == "RGB" and image.bit_depth == 8
    assert any("16-bit samples decoded to 8 bits" in note for note in image.notes)


# --- rescale -------------------------------------------------------------------------------


def test_minmax_per_channel_is_exactly_0_to_1() -> None:
    values = RNG.normal(size=(8, 9, 3)) * [1, 100, 0.001] + [0, -50, 3]
    out = rescale(values)
    assert out.dtype == np.float32 and out.shape == values.shape
    for c in range(3):
        assert out[..., c].min() == 0.0 and out[..., c].max() == 1.0


def test_minmax_global_keeps_channel_balance() -> None:
    values = np.stack([np.linspace(0, 1, 10), np.linspace(0, 2, 10)], axis=-1)[None]
    out = rescale(values, per_channel=False)
    assert out[..., 1].max() == 1.0 and out[..., 0].max() == pytest.approx(0.5)
    assert out.min() == 0.0


def test_constant_channel_falls_back_to_absolute_scale() -> None:
    black = np.zeros((3, 3, 1))
    np.testing.assert_array_equal(rescale(black), 0.0)
    flat = np.full((3, 3, 1), 51.0)
    np.testing.assert_allclose(rescale(flat, value_range="byte"), 0.2)


def test_percentile_clips_outliers() -> None:
    values = np.linspace(0, 1, 1001).reshape(1, 1001, 1)
    values[0, 0, 0] = -1000.0
    values[0, -1, 0] = 1000.0
    out = rescale(values, "percentile", percentiles=(1.0, 99.0))
    assert out.min() == 0.0 and out.max() == 1.0
    assert (out == 0.0).sum() >= 10 and (out == 1.0).sum() >= 10
    middle = out[0, 500, 0]
    assert middle == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("value_range", "bit_depth", "value", "expected"),
    [
        ("unit", 8, 0.5, 0.5),
        ("unit", 8, 1.5, 1.0),
        ("byte", 8, 127.5, 0.5),
        ("raw", 8, 51.0, 0.2),
        ("raw", 16, 65535.0, 1.0),
        ("raw", 32, 0.25, 0.25),
    ],
)
def test_none_interprets_value_range(value_range, bit_depth, value, expected) -> None:
    values = np.array([[[value], [0.0]]])
    out = rescale(values, "none", value_range=value_range, bit_depth=bit_depth)
    assert out[0, 0, 0] == pytest.approx(expected)


def test_non_finite_values() -> None:
    values = np.array([[[np.nan], [np.inf], [-np.inf], [1.0], [3.0]]])
    out = rescale(values)
    np.testing.assert_array_equal(out[0, :, 0], [0.0, 1.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "zscore"},
        {"method": "percentile", "percentiles": (50, 10)},
        {"method": "percentile", "percentiles": (1,)},
        {"value_range": "bits"},
        {"bit_depth": 12},
    ],
)
def test_rescale_parameter_errors(kwargs) -> None:
    with pytest.raises(ParameterError):
        rescale(np.zeros((2, 2, 1)), **kwargs)


# --- writing -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp", ".webp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_8bit_round_trip_keeps_gray_and_rgb(tmp_path: Path, suffix, channels) -> None:
    codes = RNG.integers(0, 256, (5, 6, channels))
    path = write_image(tmp_path / f"o{suffix}", codes / 255.0)
    image = read_image(path)
    expected_mode = "RGB" if channels == 3 or suffix == ".webp" else "L"
    assert image.mode == expected_mode
    np.testing.assert_array_equal(np.rint(image.pixels[..., :channels] * 255), codes)


def test_jpeg_output(tmp_path: Path) -> None:
    path = write_image(tmp_path / "o.jpg", np.full((8, 8, 3), 0.5))
    image = read_image(path)
    assert image.mode == "RGB"
    np.testing.assert_allclose(image.pixels, 0.5, atol=2 / 255)


@pytest.mark.parametrize("channels", [1, 3])
def test_alpha_passthrough(tmp_path: Path, channels: int) -> None:
    codes = RNG.integers(0, 256, (4, 5, channels + 1), dtype=np.uint8)
    source = _save(tmp_path / "in.png", Image.fromarray(codes))  # LA or RGBA
    image = read_image(source)
    assert image.alpha is not None
    out = write_image(tmp_path / "out.png", image.pixels, alpha=image.alpha)
    back = read_image(out)
    assert back.mode == image.mode
    np.testing.assert_array_equal(back.alpha, image.alpha)
    np.testing.assert_array_equal(back.pixels, image.pixels)


def test_sixteen_bit_gray_round_trip(tmp_path: Path) -> None:
    codes = RNG.integers(0, 65536, (5, 7, 1))
    codes[0, 0, 0] = 65535
    for suffix in (".png", ".tif"):
        path = write_image(tmp_path / f"g16{suffix}", codes / 65535.0, bit_depth=16)
        image = read_image(path, value_range="raw")
        assert (image.mode, image.bit_depth) == ("I;16", 16)
        np.testing.assert_array_equal(image.pixels, codes.astype(np.float32))


@pytest.mark.parametrize("planes", [2, 3, 4])
def test_sixteen_bit_png_with_colour_or_alpha(tmp_path: Path, planes: int) -> None:
    codes = RNG.integers(0, 65536, (37, 11, planes))
    color, alpha = (codes[..., :-1], codes[..., -1]) if planes in (2, 4) else (codes, None)
    path = write_image(
        tmp_path / "c16.png",
        color / 65535.0,
        alpha=None if alpha is None else alpha / 65535.0,
        bit_depth=16,
    )
    np.testing.assert_array_equal(_decode_png16(path.read_bytes()), codes)
    with Image.open(path) as im:  # a valid PNG for Pillow too
        im.load()
        assert im.size == (11, 37)


def test_float_tiff_output(tmp_path: Path) -> None:
    values = RNG.normal(size=(4, 5, 1)).astype(np.float32) * 10
    path = write_image(tmp_path / "f.tif", values, bit_depth=32)
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, values)


def test_eight_bit_quantization_rounds_and_clips(tmp_path: Path) -> None:
    values = np.array([[[-0.5], [0.0], [0.5 / 255], [0.5], [1.0], [2.0], [np.nan]]])
    path = write_image(tmp_path / "q.png", values)
    with Image.open(path) as im:
        assert list(np.asarray(im)[0]) == [0, 0, 0, 128, 255, 255, 0]


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("o.jpg", {"alpha": np.ones((2, 2))}, "JPEG cannot store an alpha channel; use .png"),
        ("o.jpg", {"bit_depth": 16}, "8-bit"),
        ("o.tif", {"bit_depth": 16, "channels": 3}, "16-bit TIFF output is gray"),
        ("o.png", {"bit_depth": 32}, "use .npy"),
        ("o.tif", {"bit_depth": 32, "channels": 3}, "use .npy for float RGB"),
        ("o.bmp", {"alpha": np.ones((2, 2))}, "BMP cannot store gray with alpha"),
        ("o.xyz", {}, "cannot write images with extension '.xyz'"),
        ("o.png", {"bit_depth": 12}, "bit depth"),
    ],
)
def test_write_refusals(tmp_path: Path, name: str, kwargs: dict, message: str) -> None:
    channels = kwargs.pop("channels", 1)
    with pytest.raises(ParameterError, match=message):
        write_image(tmp_path / name, np.zeros((2, 2, channels)), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_check_image_output() -> None:
    assert check_image_output("x.JPEG", channels=3) == "JPEG"
    assert check_image_output("x", file_format="png", channels=3, has_alpha=True) == "PNG"
    with pytest.raises(ParameterError):
        check_image_output("x.png", channels=2)


def test_write_image_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="1 or 3 channels|\\(H, W, 1\\)"):
        write_image(tmp_path / "o.png", np.zeros((2, 2, 2)))
    with pytest.raises(ParameterError, match="alpha shape"):
        write_image(tmp_path / "o.png", np.zeros((2, 2, 3)), alpha=np.zeros((3, 2)))


def test_write_image_overwrite_and_protect(tmp_path: Path) -> None:
    source = _save(tmp_path / "in.png", Image.new("L", (2, 2), 7))
    before = source.read_bytes()
    with pytest.raises(OutputError, match="input"):
        write_image(source, np.ones((2, 2, 1)), overwrite=True, protect=[source])
    with pytest.raises(OutputError, match="already exists"):
        write_image(source, np.ones((2, 2, 1)))
    assert source.read_bytes() == before
    write_image(source, np.ones((2, 2, 1)), overwrite=True)
    assert read_image(source).pixels.min() == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


# --- misc ----------------------------------------------------------------------------------


def test_is_image_path() -> None:
    assert is_image_path("a/b.PNG") and is_image_path(Path("x.tiff"))
    assert not is_image_path("x.npy") and not is_image_path("png")


def test_import_does_not_load_pillow() -> None:
    code = "import sys, lrn_cli.images, lrn_cli.arrays; assert 'PIL' not in sys.modules"
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# --- the one-pass kernels against the plain NumPy formulas ----------------------------------


def _numpy_rescale(values, method, per_channel, scale):
    """The documented formula, written with NumPy (what the Numba kernels must reproduce)."""
    data = np.asarray(values, dtype=np.float64)
    out = np.empty(data.shape)
    groups = range(data.shape[-1]) if per_channel and data.ndim == 3 else [None]
    for channel in groups:
        part = data if channel is None else data[..., channel]
        target = out if channel is None else out[..., channel]
        finite = part[np.isfinite(part)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if method == "minmax" and hi > lo:
            target[...] = (part - lo) / (hi - lo)
        else:
            target[...] = part / scale
    np.clip(out, 0.0, 1.0, out=out)
    np.nan_to_num(out, copy=False, nan=0.0)
    return out.astype(np.float32)


@pytest.mark.parametrize("shape", [(7, 9, 3), (5, 4), (6, 5, 1), (4, 4, 3)])
@pytest.mark.parametrize("method", ["minmax", "none"])
@pytest.mark.parametrize("per_channel", [True, False])
def test_rescale_and_quantize_match_the_numpy_formulas(shape, method, per_channel) -> None:
    rng = np.random.default_rng(len(shape))
    values = (rng.standard_normal(shape) * 3).astype(np.float32)
    values.flat[:3] = [np.nan, np.inf, -np.inf]
    if shape == (4, 4, 3):
        values[..., 1] = np.nan  # a channel without finite values
        values[..., 2] = 0.25  # a constant channel
    planar = np.ascontiguousarray(np.moveaxis(values, -1, 0)) if values.ndim == 3 else None
    for v in (values, None if planar is None else planar.transpose(1, 2, 0)):
        if v is None:
            continue
        got = rescale(v, method, per_channel=per_channel, value_range="byte")
        want = _numpy_rescale(v, method, per_channel, 255.0)
        np.testing.assert_array_equal(got, want)
        for top, dtype in ((255, np.uint8), (65535, np.uint16)):
            codes = images_module._quantize(got * 1.5 - 0.25, top, dtype)
            scaled = np.clip(np.nan_to_num((got * 1.5 - 0.25).astype(np.float64)), 0, 1)
            np.testing.assert_array_equal(codes, np.rint(scaled * top).astype(dtype))
            assert codes.flags.c_contiguous


def test_one_pass_codes_write_the_file_rescale_then_write_image_writes(tmp_path: Path) -> None:
    """``save`` quantises a picture in one pass (``rescaled_codes``), taking minmax's range
    from the output statistics: the same bytes as ``write_image(rescale(y))``, with NaN,
    infinities, a channel without finite values and a constant one."""
    from lrn_cli.image_read import ImageData
    from lrn_cli.pipeline import ItemResult, Loaded, WriteOptions, _finite_ranges, save
    from lrn_cli.stats import array_stats

    rng = np.random.default_rng(7)
    y = np.empty((3, 9, 8), np.float32).transpose(1, 2, 0)  # planar, as LRN returns a picture
    y[...] = rng.standard_normal((9, 8, 3)) * 3
    y[0, :3, 0] = [np.nan, np.inf, -np.inf]
    y[1, :4, 0] = [2.5, 4.5, 6.5, 8.5]  # "none": codes that need to_unit's float32 rounding
    y[..., 1] = np.nan
    alpha = rng.random((9, 8)).astype(np.float32)
    image = ImageData(y, alpha, "RGBA", 8, ("R", "G", "B"), None, "PNG", value_range="byte")
    for case, per_channel in ((0, True), (0, False), (1, True)):
        if case:
            y[..., 2] = 0.25  # a constant channel: mapped as by "none"
        after = array_stats(y, 2)
        assert _finite_ranges(after, y, per_channel) is not None  # the statistics' range
        for method in ("minmax", "none"):
            for bits in (8, 16):
                wopts = WriteOptions(rescale=method, per_channel=per_channel, bits=bits,
                                     overwrite=True)
                got = save(Loaded("p.png", "image", [], image=image),
                           [ItemResult("", "HWC", 2, y.copy(), None, after, None)],
                           tmp_path / "got.png", wopts)
                unit = rescale(y, method, per_channel=per_channel, value_range="byte")
                want = write_image(tmp_path / "want.png", unit, overwrite=True,
                                   alpha=rescale(alpha, "none", value_range="byte"),
                                   bit_depth=bits)
                assert got.read_bytes() == want.read_bytes(), (case, per_channel, method, bits)


def test_colour_pixels_are_planar_behind_the_hwc_view(tmp_path: Path) -> None:
    """Each channel of a decoded colour image is contiguous (the kernels walk channels)."""
    path = write_image(tmp_path / "rgb.png", RNG.random((6, 7, 3)))
    pixels = read_image(path).pixels
    assert pixels.shape == (6, 7, 3) and pixels.dtype == np.float32
    assert pixels.strides == (7 * 4, 4, 6 * 7 * 4)
    with Image.open(path) as im:
        np.testing.assert_array_equal(pixels, np.asarray(im.convert("RGB")) / np.float32(255))


def _tiff_claiming_samples(path: Path, samples: int) -> None:
    """A deflate TIFF (decoded by libtiff) whose SamplesPerPixel tag says ``samples``."""
    rgb = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, compression="tiff_deflate")
    data = bytearray(path.read_bytes())
    order = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack(order + "I", data[4:8])[0]
    for i in range(struct.unpack(order + "H", data[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack(order + "H", data[entry:entry + 2])[0] == 277:
            data[entry + 8:entry + 10] = struct.pack(order + "H", samples)
    path.write_bytes(bytes(data))


def test_libtiffs_own_messages_join_the_one_line_error(tmp_path: Path, run_lrn) -> None:
    """libtiff prints 'More samples per pixel than can be decoded' on file descriptor 2
    itself; it belongs in the file's error line, not loose on stderr."""
    bad = tmp_path / "nine.tif"
    _tiff_claiming_samples(bad, 9)
    good = tmp_path / "good.png"
    Image.fromarray(np.full((4, 4, 3), 128, np.uint8)).save(good)
    done = run_lrn("apply", bad, good, "-o", tmp_path / "out", "-q")
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [f"error: {bad}: not an image Pillow can read (TIFF: Invalid value for "
                      "samples per pixel; decoder: More samples per pixel than can be "
                      "decoded: 9)"]
    assert not [line for line in lines if line.startswith("More samples")]
    assert (tmp_path / "out" / "good.png").exists()  # the rest of the batch is done
