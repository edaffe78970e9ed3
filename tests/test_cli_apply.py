"""``lrn apply`` through the real CLI: numbers, layouts, formats, images, output naming, errors.

Every test runs the Click command (in-process via ``CliRunner``) and checks what it wrote
against :func:`lrn_cli.lrn` and the plain NumPy :func:`lrn_cli.reference_lrn`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import ARRAYS, IMAGES, error_lines
from PIL import Image, ImageOps, features

import lrn_cli
from lrn_cli.reference import reference_divisor, reference_lrn
from lrn_cli.stats import STAT_NAMES, array_stats, divisor_stats

ALEXNET = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}


def load_pixels(path, divisor=255.0) -> np.ndarray:
    """An image as the CLI sees it with --range unit: float32 (H, W, C)."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    out = np.array(arr, dtype=np.float32)
    if divisor != 1.0:
        out /= np.float32(divisor)
    return out


def codes(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


# --------------------------------------------------------------------------- numbers


def test_defaults_are_alexnet_and_match_reference(lrn, tmp_path):
    src = ARRAYS / "conv1_relu_nchw.npy"
    out = tmp_path / "out.npy"
    r = lrn("apply", src, "-o", out)
    assert r.exit_code == 0, r.stderr
    x = np.load(src)
    y = np.load(out)
    assert y.dtype == np.float32 and y.shape == x.shape == (1, 96, 55, 55)
    np.testing.assert_array_equal(y, lrn_cli.lrn(x, **ALEXNET, convention="default"))
    np.testing.assert_allclose(y, reference_lrn(x, **ALEXNET), rtol=2e-6, atol=1e-7)
    # LRN really did something on these activations (not just a global scale)
    assert not np.allclose(y, x * 2.0 ** -0.75, rtol=1e-3)


@pytest.mark.parametrize(
    ("convention", "size", "alpha", "beta", "k"),
    [
        ("default", 3, 1e-3, 0.5, 1.0),
        ("pytorch", 4, 1e-3, 0.75, 1.0),  # even size: extra tap before c
        ("onnx", 4, 1e-3, 0.75, 1.5),  # even size: extra tap after c
        ("onednn", 4, 2e-3, 0.75, 1.0),  # even size: n-1 taps
        ("alexnet", 4, 1e-4, 0.75, 2.0),  # even size: n+1 taps, alpha not divided
        ("chainer", 5, 1e-4, 0.75, 2.0),
        ("caffe", 5, 1e-3, 0.75, 1.0),
        ("opencv", 3, 1e-3, 0.75, 5.0),  # k ignored (always 1)
        ("tensorflow", 5, 1e-4, 0.5, 1.0),
        ("paddle-legacy", 6, 1e-4, 0.75, 1.0),
        ("cudnn", 16, 1e-4, 0.75, 2.0),
    ],
)
def test_parameters_and_conventions_match_reference(lrn, npy, tmp_path, acts, convention,
                                                    size, alpha, beta, k):
    src = npy("x.npy", acts)
    out = tmp_path / "y.npy"
    r = lrn("apply", src, "-o", out, "--convention", convention, "-n", size, "--alpha", alpha,
            "--beta", beta, "-k", k)
    assert r.exit_code == 0, r.stderr
    y = np.load(out)
    params = {"size": size, "alpha": alpha, "beta": beta, "k": k}
    np.testing.assert_array_equal(y, lrn_cli.lrn(acts, **params, convention=convention))
    np.testing.assert_allclose(y, reference_lrn(acts, **params, convention=convention),
                               rtol=3e-6, atol=1e-7)


def test_long_option_names_and_short_names_agree(lrn, npy, tmp_path, acts):
    src = npy("x.npy", acts)
    lrn("apply", src, "-o", tmp_path / "a.npy", "-n", 3, "-k", 1.5)
    lrn("apply", src, "-o", tmp_path / "b.npy", "--size", 3, "--k", 1.5)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_depth_radius_is_size_2r_plus_1(lrn, npy, tmp_path, acts):
    src = npy("x.npy", acts)
    r1 = lrn("apply", src, "-o", tmp_path / "r.npy", "--depth-radius", 2, "--alpha", 1e-2)
    r2 = lrn("apply", src, "-o", tmp_path / "n.npy", "-n", 5, "--alpha", 1e-2)
    assert r1.exit_code == r2.exit_code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), np.load(tmp_path / "n.npy"))
    r0 = lrn("apply", src, "-o", tmp_path / "r0.npy", "--depth-radius", 0, "--alpha", 1e-2)
    assert r0.exit_code == 0
    np.testing.assert_allclose(np.load(tmp_path / "r0.npy"),
                               reference_lrn(acts, 1, 1e-2, 0.75, 2.0), rtol=3e-6)


def test_tensorflow_golden_example(lrn, tmp_path):
    """The spec's section 9: TF depth_radius=2, alpha=1, beta=0.75, bias=1 on arange(1, 33)."""
    out = tmp_path / "tf.npy"
    r = lrn("apply", ARRAYS / "tf_example_nhwc.npy", "-o", out, "--depth-radius", 2,
            "--convention", "tensorflow", "--alpha", 1, "--beta", 0.75, "--k", 1,
            "--layout", "NHWC")
    assert r.exit_code == 0, r.stderr
    y = np.load(out)
    assert y.shape == (2, 2, 2, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y[0, 0, 0], [0.13119929, 0.15223296, 0.22834945, 0.3120463],
                               atol=1e-6)
    x = np.load(ARRAYS / "tf_example_nhwc.npy")
    np.testing.assert_allclose(y, reference_lrn(x, 5, 1.0, 0.75, 1.0, convention="tensorflow",
                                                channel_axis=-1), rtol=1e-6)
    assert "NHWC" in r.stdout
    assert "assumed layout" not in r.stderr


def test_convention_defaults_fill_the_frameworks_own_values(lrn, npy, tmp_path, acts):
    src = npy("x.npy", acts)
    out = tmp_path / "y.npy"
    r = lrn("apply", src, "-o", out, "--convention", "tensorflow", "--convention-defaults",
            "--json")
    assert r.exit_code == 0, r.stderr
    # TensorFlow: depth_radius=5 (n=11), alpha=1, beta=0.5, bias=1
    assert json.loads(r.stdout)["settings"] == {
        "mode": "across", "size": 11, "alpha": 1.0, "beta": 0.5, "k": 1.0,
        "convention": "tensorflow"}
    np.testing.assert_allclose(np.load(out), reference_lrn(acts, 11, 1.0, 0.5, 1.0,
                                                           convention="tensorflow"), rtol=3e-6)
    # a given parameter still wins over the convention's default
    r = lrn("apply", src, "--convention", "caffe", "--convention-defaults", "--alpha", 0.5,
            "--json")
    assert json.loads(r.stdout)["settings"]["alpha"] == 0.5
    assert json.loads(r.stdout)["settings"]["size"] == 5


# --------------------------------------------------------------------------- layouts


def test_layout_nhwc_equals_channel_axis_minus_one(lrn, npy, tmp_path, acts):
    x = np.ascontiguousarray(acts.transpose(0, 2, 3, 1))  # NHWC
    src = npy("nhwc.npy", x)
    for name, opts in {"layout": ["--layout", "NHWC"], "lower": ["--layout", "nhwc"],
                       "axis": ["--channel-axis", "-1"], "axis3": ["--channel-axis", "3"]}.items():
        r = lrn("apply", src, "-o", tmp_path / f"{name}.npy", *opts, "--alpha", 1e-2)
        assert r.exit_code == 0, r.stderr
        y = np.load(tmp_path / f"{name}.npy")
        np.testing.assert_array_equal(
            y, lrn_cli.lrn(x, 5, 1e-2, 0.75, 2.0, channel_axis=-1))
        # same numbers as the NCHW array, transposed
        np.testing.assert_allclose(
            y.transpose(0, 3, 1, 2), lrn_cli.lrn(acts, 5, 1e-2, 0.75, 2.0), rtol=1e-6)


def test_real_nhwc_sample_matches_nchw_sample(lrn, tmp_path):
    r1 = lrn("apply", ARRAYS / "conv2_relu_nchw.npy", "-o", tmp_path / "c.npy")
    r2 = lrn("apply", ARRAYS / "conv2_relu_nhwc.npy", "-o", tmp_path / "h.npy", "--layout",
             "NHWC")
    assert r1.exit_code == r2.exit_code == 0
    c, h = np.load(tmp_path / "c.npy"), np.load(tmp_path / "h.npy")
    assert h.shape == (1, 27, 27, 256)
    np.testing.assert_allclose(h.transpose(0, 3, 1, 2), c, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("shape", "layout", "axis"), [
    ((2, 7, 5, 6), "NCHW", 1),
    ((7, 5, 6), "CHW", 0),
    ((4, 9), "NC", 1),
])
def test_default_layout_is_assumed_and_said(lrn, npy, tmp_path, shape, layout, axis):
    x = np.random.default_rng(0).random(shape, dtype=np.float32) * 30
    src = npy("x.npy", x)
    r = lrn("apply", src, "-o", tmp_path / "y.npy", "--alpha", 1e-2)
    assert r.exit_code == 0, r.stderr
    assert f"assumed layout {layout} for a {len(shape)}-D array" in r.stderr
    assert layout in r.stdout  # the table's title names the layout
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"),
                               reference_lrn(x, 5, 1e-2, 0.75, 2.0, channel_axis=axis),
                               rtol=3e-6)
    r = lrn("apply", src, "--layout", layout, "--csv")
    assert "assumed layout" not in r.stderr


def test_within_mode_nchw_and_2d(lrn, npy, tmp_path, acts):
    src = npy("x.npy", acts)
    r = lrn("apply", src, "-o", tmp_path / "w.npy", "--mode", "within", "-n", 3,
            "--alpha", 1e-2)
    assert r.exit_code == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "w.npy"),
                               reference_lrn(acts, 3, 1e-2, 0.75, 2.0, mode="within"),
                               rtol=3e-6)
    plane = acts[0, 0]
    src2 = npy("hw.npy", plane)
    r = lrn("apply", src2, "-o", tmp_path / "hw_out.npy", "--mode", "within", "-n", 3,
            "--alpha", 1e-2, "--channel-axis", "none")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_allclose(
        np.load(tmp_path / "hw_out.npy"),
        reference_lrn(plane, 3, 1e-2, 0.75, 2.0, mode="within", channel_axis=None), rtol=3e-6)
    r = lrn("apply", src2, "-o", tmp_path / "hw2.npy", "--mode", "within", "-n", 3,
            "--alpha", 1e-2)  # 2-D in within mode defaults to HW
    assert r.exit_code == 0 and "assumed layout HW" in r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "hw2.npy"),
                                  np.load(tmp_path / "hw_out.npy"))


def test_within_mode_on_nc_layout_is_a_per_file_error(lrn, npy, tmp_path):
    src = npy("nc.npy", np.ones((3, 6), np.float32))
    out = tmp_path / "o.npy"
    r = lrn("apply", src, "--mode", "within", "--layout", "NC", "-o", out)
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "nc.npy" in line and "layout NC has no two spatial axes for within mode" in line
    assert "Traceback" not in r.stderr and not out.exists()


def test_across_mode_without_channel_axis_is_an_error(lrn, npy, tmp_path):
    src = npy("hw.npy", np.ones((3, 6), np.float32))
    r = lrn("apply", src, "--layout", "HW", "-o", tmp_path / "o.npy")
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "hw.npy" in line and "channel axis" in line


@pytest.mark.parametrize(("opts", "message"), [
    (["--layout", "NCH"], "layout NCH has 3 axes but the array has 4"),
    (["--layout", "ABCD"], "uses letters other than"),
    (["--channel-axis", "7"], "channel axis 7 is out of range"),
])
def test_bad_layout_for_the_array_fails_the_file(lrn, npy, tmp_path, acts, opts, message):
    src = npy("x.npy", acts)
    r = lrn("apply", src, "-o", tmp_path / "o.npy", *opts)
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "x.npy" in line and message in line
    assert not (tmp_path / "o.npy").exists()


def test_6d_array_needs_a_layout(lrn, npy, tmp_path):
    src = npy("x6.npy", np.ones((1, 2, 1, 2, 2, 2), np.float32))
    r = lrn("apply", src, "-o", tmp_path / "o.npy")
    assert r.exit_code == 1
    assert "no default layout for a 6-D array" in r.stderr
    r = lrn("apply", src, "-o", tmp_path / "o.npy", "--channel-axis", "1")
    assert r.exit_code == 0, r.stderr


# --------------------------------------------------------------------------- dtypes


def test_float64_in_float64_out_and_dtype_option(lrn, npy, tmp_path, acts):
    x64 = acts.astype(np.float64)
    src64 = npy("x64.npy", x64)
    src32 = npy("x32.npy", acts)
    lrn("apply", src64, "-o", tmp_path / "a.npy")
    a = np.load(tmp_path / "a.npy")
    assert a.dtype == np.float64
    np.testing.assert_allclose(a, reference_lrn(x64), rtol=1e-12)
    lrn("apply", src32, "-o", tmp_path / "b.npy", "--dtype", "float64")
    b = np.load(tmp_path / "b.npy")
    assert b.dtype == np.float64
    np.testing.assert_allclose(b, reference_lrn(acts), rtol=1e-12)
    r = lrn("apply", src64, "-o", tmp_path / "c.npy", "--dtype", "float32")
    assert np.load(tmp_path / "c.npy").dtype == np.float32
    assert "converted float64 to float32" in r.stderr


def test_integer_input_becomes_float32_with_a_note(lrn, npy, tmp_path):
    x = np.arange(2 * 6 * 3 * 3, dtype=np.uint8).reshape(2, 6, 3, 3)
    src = npy("u8.npy", x)
    r = lrn("apply", src, "-o", tmp_path / "o.npy")
    assert r.exit_code == 0, r.stderr
    assert "converted uint8 to float32" in r.stderr
    y = np.load(tmp_path / "o.npy")
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, reference_lrn(x.astype(np.float64)), rtol=3e-6)


# --------------------------------------------------------------------------- npz


def test_npz_in_npz_out_every_array(lrn, tmp_path, acts):
    src = tmp_path / "in.npz"
    vec = np.linspace(0, 40, 4 * 9, dtype=np.float64).reshape(4, 9)
    np.savez(src, conv=acts, fc=vec)
    out = tmp_path / "out.npz"
    r = lrn("apply", src, "-o", out, "--alpha", 1e-2)
    assert r.exit_code == 0, r.stderr
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == ["conv", "fc"]
        np.testing.assert_allclose(z["conv"], reference_lrn(acts, 5, 1e-2), rtol=3e-6)
        assert z["fc"].dtype == np.float64
        np.testing.assert_allclose(z["fc"], reference_lrn(vec, 5, 1e-2), rtol=1e-12)
    assert "array 'conv': assumed layout NCHW" in r.stderr
    assert "array 'fc': assumed layout NC" in r.stderr


def test_npz_key_picks_one_array(lrn, tmp_path, acts):
    src = tmp_path / "in.npz"
    np.savez(src, conv=acts, other=acts[:, :3])
    r = lrn("apply", src, "--key", "conv", "-o", tmp_path / "conv.npy")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "conv.npy"), lrn_cli.lrn(acts))
    r = lrn("apply", src, "--key", "conv", "-o", tmp_path / "conv.npz")
    with np.load(tmp_path / "conv.npz") as z:
        assert z.files == ["conv"]


def test_npz_key_missing_is_an_error(lrn, tmp_path, acts):
    src = "in.npz"
    np.savez(src, a=acts, b=acts)
    r = lrn("apply", src, "--key", "nope", "-o", "o.npz")
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "in.npz: " in line and "has no array named 'nope'" in line and "a, b" in line
    assert not (tmp_path / "o.npz").exists()


def test_npz_with_several_arrays_into_npy_is_refused(lrn, tmp_path, acts):
    src = tmp_path / "in.npz"
    np.savez(src, a=acts, b=acts)
    r = lrn("apply", src, "-o", tmp_path / "o.npy")
    assert r.exit_code == 1
    assert "input has 2 arrays" in r.stderr and "--key" in r.stderr
    assert not (tmp_path / "o.npy").exists()


def test_npz_key_ignores_other_non_numeric_members(lrn, tmp_path, acts):
    src = tmp_path / "mixed.npz"
    np.savez(src, acts=acts, labels=np.array(["cat", "dog"]))
    r = lrn("apply", src, "--key", "acts", "-o", tmp_path / "o.npy")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), lrn_cli.lrn(acts))


def test_npz_normalizes_every_numeric_array_and_skips_the_rest(lrn, tmp_path, acts):
    src = tmp_path / "mixed.npz"
    np.savez(src, acts=acts, labels=np.array(["cat", "dog"]))
    r = lrn("apply", src, "-o", tmp_path / "o.npz")
    assert r.exit_code == 0, r.stderr
    with np.load(tmp_path / "o.npz") as z:
        np.testing.assert_array_equal(z["acts"], lrn_cli.lrn(acts))


# --------------------------------------------------------------------------- images


def test_rgb_png_to_png_same_size_and_mode(lrn, tmp_path):
    out = tmp_path / "a.png"
    r = lrn("apply", IMAGES / "astronaut_rgb.png", "-o", out)
    assert r.exit_code == 0, r.stderr
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size == (256, 256)
    # default --rescale minmax, per channel: every channel spans 0..255
    c = codes(out).reshape(-1, 3)
    assert (c.min(0) == 0).all() and (c.max(0) == 255).all()


def test_gray_stays_gray(lrn, tmp_path):
    out = tmp_path / "g.png"
    r = lrn("apply", IMAGES / "camera_gray.png", "-o", out)
    assert r.exit_code == 0, r.stderr
    with Image.open(out) as im:
        assert im.mode == "L" and im.size == (256, 256)


def test_rgba_keeps_alpha_exactly(lrn, tmp_path):
    src = IMAGES / "chelsea_rgba.png"
    out = tmp_path / "c.png"
    r = lrn("apply", src, "-o", out, "--mode", "within", "--range", "byte")
    assert r.exit_code == 0, r.stderr
    with Image.open(out) as im:
        assert im.mode == "RGBA" and im.size == (256, 170)
    np.testing.assert_array_equal(codes(out)[..., 3], codes(src)[..., 3])
    assert not np.array_equal(codes(out)[..., :3], codes(src)[..., :3])
    # the statistics are of the three colour channels only: alpha is not normalized
    r = lrn("apply", src, "--json")
    arr = json.loads(r.stdout)["files"][0]["arrays"][0]
    assert arr["in"]["shape"] == [170, 256, 3] and arr["layout"] == "HWC"


def test_image_to_npy_gives_float32_hwc_raw_result(lrn, tmp_path):
    src = IMAGES / "astronaut_rgb.png"
    out = tmp_path / "a.npy"
    r = lrn("apply", src, "-o", out, "--alpha", 1.0)
    assert r.exit_code == 0, r.stderr
    y = np.load(out)
    assert y.dtype == np.float32 and y.shape == (256, 256, 3)
    px = load_pixels(src)
    np.testing.assert_allclose(y, lrn_cli.lrn(px, 5, 1.0, 0.75, 2.0, channel_axis=2),
                               rtol=1e-6)
    np.testing.assert_allclose(y, reference_lrn(px, 5, 1.0, 0.75, 2.0, channel_axis=2),
                               rtol=3e-6)
    gray = tmp_path / "g.npy"
    lrn("apply", IMAGES / "camera_gray.png", "-o", gray)
    assert np.load(gray).shape == (256, 256, 1)


def test_image_dtype_float64(lrn, tmp_path):
    src = IMAGES / "camera_gray.png"
    r = lrn("apply", src, "-o", "g.npy", "--dtype", "float64", "--alpha", 1.0)
    assert r.exit_code == 0, r.stderr
    y = np.load(tmp_path / "g.npy")
    assert y.dtype == np.float64 and y.shape == (256, 256, 1)
    np.testing.assert_allclose(y, reference_lrn(load_pixels(src), 5, 1.0, channel_axis=2),
                               rtol=1e-12)


@pytest.mark.parametrize(("value_range", "scale"), [("unit", 1 / 255), ("byte", 1.0),
                                                    ("raw", 1.0)])
def test_range_option_8bit(lrn, tmp_path, value_range, scale):
    src = IMAGES / "camera_gray.png"
    out = tmp_path / "g.npy"
    r = lrn("apply", src, "-o", out, "--range", value_range, "--mode", "within", "-n", 3)
    assert r.exit_code == 0, r.stderr
    px = load_pixels(src, divisor=round(1 / scale))
    np.testing.assert_allclose(
        np.load(out), reference_lrn(px, 3, mode="within", channel_axis=2), rtol=3e-6)


@pytest.mark.parametrize(("value_range", "divisor"), [("unit", 65535.0), ("byte", 257.0),
                                                      ("raw", 1.0)])
def test_range_option_16bit(lrn, tmp_path, value_range, divisor):
    src = IMAGES / "coffee_gray16.png"
    out = tmp_path / "c.npy"
    r = lrn("apply", src, "-o", out, "--range", value_range)
    assert r.exit_code == 0, r.stderr
    px = load_pixels(src, divisor=divisor)
    assert px.shape == (171, 256, 1)
    np.testing.assert_allclose(np.load(out), reference_lrn(px, channel_axis=2), rtol=3e-6)


def test_16bit_png_with_bits_16(lrn, tmp_path):
    src = IMAGES / "coffee_gray16.png"
    out = tmp_path / "c16.png"
    r = lrn("apply", src, "-o", out, "--bits", "16", "--rescale", "none", "--range", "raw",
            "--alpha", 1e-6)
    assert r.exit_code == 0, r.stderr
    with Image.open(out) as im:
        assert im.mode == "I;16" and im.size == (256, 171)
    got = codes(out).astype(np.int64)
    y = reference_lrn(load_pixels(src, 1.0), 5, 1e-6, channel_axis=2)[..., 0]
    expected = np.rint(np.clip(y / 65535.0, 0, 1) * 65535)
    assert np.abs(got - expected).max() <= 1
    # default --bits 8 writes an 8-bit gray image
    lrn("apply", src, "-o", tmp_path / "c8.png")
    with Image.open(tmp_path / "c8.png") as im:
        assert im.mode == "L"


def test_16bit_rgb_png_output(lrn, tmp_path):
    out = tmp_path / "a16.png"
    r = lrn("apply", IMAGES / "astronaut_rgb.png", "-o", out, "--bits", "16")
    assert r.exit_code == 0, r.stderr
    header = out.read_bytes()[:32]
    assert header[12:16] == b"IHDR"
    assert header[24] == 16 and header[25] == 2  # bit depth 16, colour type RGB


def test_bits_32_writes_a_float_gray_tiff(lrn, tmp_path):
    out = tmp_path / "g.tif"
    r = lrn("apply", IMAGES / "camera_gray.png", "-o", out, "--bits", "32")
    assert r.exit_code == 0, r.stderr
    with Image.open(out) as im:
        assert im.mode == "F" and im.size == (256, 256)
        arr = np.asarray(im)
    assert arr.min() == 0.0 and arr.max() == 1.0


def test_bits_32_rgb_is_refused_with_the_reason(lrn, tmp_path):
    out = tmp_path / "rgb.tif"
    r = lrn("apply", IMAGES / "astronaut_rgb.png", "-o", out, "--bits", "32")
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "rgb.tif" in line and "gray" in line
    assert not out.exists()


def test_rescale_none_keeps_the_scale(lrn, tmp_path):
    src = IMAGES / "astronaut_rgb.png"
    out = tmp_path / "n.png"
    r = lrn("apply", src, "-o", out, "--rescale", "none", "--alpha", 1.0)
    assert r.exit_code == 0, r.stderr
    y = reference_lrn(load_pixels(src), 5, 1.0, channel_axis=2)
    expected = np.rint(np.clip(y, 0, 1) * 255)
    assert np.abs(codes(out).astype(int) - expected).max() <= 1
    assert codes(out).max() < 200  # LRN with k=2 shrinks [0,1] values: no stretch


def test_global_rescale_keeps_the_balance_between_channels(lrn, tmp_path):
    src = IMAGES / "astronaut_rgb.png"
    out = tmp_path / "g.png"
    r = lrn("apply", src, "-o", out, "--global-rescale", "--alpha", 1.0)
    assert r.exit_code == 0, r.stderr
    y = reference_lrn(load_pixels(src), 5, 1.0, channel_axis=2)
    expected = np.rint((y - y.min()) / (y.max() - y.min()) * 255)
    assert np.abs(codes(out).astype(int) - expected).max() <= 1
    per = tmp_path / "p.png"
    lrn("apply", src, "-o", per, "--alpha", 1.0)
    assert not np.array_equal(codes(per), codes(out))


def test_percentile_rescale_saturates_the_tails(lrn, tmp_path):
    src = IMAGES / "astronaut_rgb.png"
    lrn("apply", src, "-o", tmp_path / "m.png")
    r = lrn("apply", src, "-o", tmp_path / "p.png", "--rescale", "percentile")
    assert r.exit_code == 0, r.stderr
    p = codes(tmp_path / "p.png").reshape(-1, 3)
    m = codes(tmp_path / "m.png").reshape(-1, 3)
    assert (p.min(0) == 0).all() and (p.max(0) == 255).all()
    # the 1st..99th percentiles are stretched: about 1 % of each channel is clipped to 255
    assert ((p == 255).mean(0) > 0.005).all()
    assert ((p == 255).mean(0) > (m == 255).mean(0)).all()


def test_jpeg_exif_orientation_is_applied(lrn, tmp_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "rot.jpg"
    stored = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(src, exif=exif.tobytes(), quality=95)
    r = lrn("apply", src, "-o", tmp_path / "rot.png", "--alpha", 1.0)
    assert r.exit_code == 0, r.stderr
    assert "EXIF orientation 6" in r.stderr
    with Image.open(tmp_path / "rot.png") as im:
        assert im.size == (20, 30)  # stored 30 wide x 20 high, shown rotated
    lrn("apply", src, "-o", tmp_path / "rot.npy", "--alpha", 1.0)
    y = np.load(tmp_path / "rot.npy")
    assert y.shape == (30, 20, 3)
    np.testing.assert_allclose(
        y, reference_lrn(load_pixels(src), 5, 1.0, channel_axis=2), rtol=3e-6)


def test_palette_png(lrn, tmp_path):
    rng = np.random.default_rng(5)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    src = tmp_path / "pal.png"
    pal.save(src)
    r = lrn("apply", src, "-o", tmp_path / "pal.npy", "--alpha", 1.0)
    assert r.exit_code == 0, r.stderr
    expected_px = np.asarray(pal.convert("RGB"), dtype=np.float32) / np.float32(255)
    np.testing.assert_allclose(np.load(tmp_path / "pal.npy"),
                               reference_lrn(expected_px, 5, 1.0, channel_axis=2), rtol=3e-6)
    r = lrn("apply", src, "-o", tmp_path / "pal_out.png")
    with Image.open(tmp_path / "pal_out.png") as im:
        assert im.mode == "RGB" and im.size == (16, 12)
    # a palette with a transparent entry keeps its transparency as alpha
    srct = tmp_path / "palt.png"
    pal.save(srct, transparency=0)
    r = lrn("apply", srct, "-o", tmp_path / "palt_out.png")
    assert r.exit_code == 0, r.stderr
    with Image.open(srct) as im:
        alpha = np.asarray(im.convert("RGBA"))[..., 3]
    with Image.open(tmp_path / "palt_out.png") as im:
        assert im.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(im)[..., 3], alpha)


def test_gray_with_alpha_stays_la(lrn, tmp_path):
    rng = np.random.default_rng(6)
    la = rng.integers(0, 256, (10, 14, 2), dtype=np.uint8)
    src = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(src)
    r = lrn("apply", src, "-o", tmp_path / "la_out.png")
    assert r.exit_code == 0, r.stderr
    with Image.open(tmp_path / "la_out.png") as im:
        assert im.mode == "LA"
        np.testing.assert_array_equal(np.asarray(im)[..., 1], la[..., 1])


INPUT_FORMATS = [".png", ".jpg", ".tif", ".bmp"] + (
    [".webp"] if features.check("webp") else [])


@pytest.mark.parametrize("suffix", INPUT_FORMATS)
def test_every_input_format(lrn, tmp_path, suffix):
    with Image.open(IMAGES / "astronaut_rgb.png") as im:
        small = im.resize((40, 32))
    src = tmp_path / f"in{suffix}"
    small.save(src, **({"lossless": True} if suffix == ".webp" else {}))
    gray = tmp_path / f"gray{suffix}"
    small.convert("L").save(gray)
    r = lrn("apply", src, "-o", tmp_path / "out.png")
    assert r.exit_code == 0, r.stderr
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "RGB" and im.size == (40, 32)
    r = lrn("apply", src, "-o", tmp_path / "out.npy", "--alpha", 1.0)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"),
                               reference_lrn(load_pixels(src), 5, 1.0, channel_axis=2),
                               rtol=3e-6)
    if suffix != ".webp":  # WebP has no gray mode
        r = lrn("apply", gray, "-o", tmp_path / "gray_out.png")
        assert r.exit_code == 0, r.stderr
        with Image.open(tmp_path / "gray_out.png") as im:
            assert im.mode == "L"


@pytest.mark.parametrize(("suffix", "fmt"), [(".png", "PNG"), (".jpg", "JPEG"),
                                             (".tif", "TIFF"), (".bmp", "BMP")]
                         + ([(".webp", "WEBP")] if features.check("webp") else []))
def test_every_output_format(lrn, tmp_path, suffix, fmt):
    out = tmp_path / f"out{suffix}"
    r = lrn("apply", IMAGES / "astronaut_rgb.png", "-o", out)
    assert r.exit_code == 0, r.stderr
    with Image.open(out) as im:
        assert im.format == fmt and im.mode == "RGB" and im.size == (256, 256)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_jpeg_output_of_rgba_is_refused(lrn, tmp_path):
    r = lrn("apply", IMAGES / "chelsea_rgba.png", "-o", tmp_path / "c.jpg")
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "c.jpg" in line and "alpha" in line


def test_image_output_needs_an_image_input(lrn, npy, tmp_path, acts):
    r = lrn("apply", npy("x.npy", acts), "-o", tmp_path / "x.png")
    assert r.exit_code == 1
    assert "image output needs an image input" in r.stderr
    r = lrn("apply", npy("y.npy", acts), "-o", tmp_path / "x.xyz")
    assert r.exit_code == 1
    assert "cannot write .xyz" in r.stderr


def test_layout_is_ignored_for_images_with_a_note(lrn, tmp_path):
    r = lrn("apply", IMAGES / "camera_gray.png", "--layout", "NCHW", "--csv")
    assert r.exit_code == 0, r.stderr
    assert "--layout/--channel-axis ignored for images" in r.stderr


# --------------------------------------------------------------------------- output naming


def test_existing_output_is_not_overwritten_without_overwrite(lrn, npy, tmp_path, acts):
    src = npy("x.npy", acts)
    out = tmp_path / "out.npy"
    out.write_bytes(b"precious")
    r = lrn("apply", src, "-o", "out.npy")
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "out.npy: already exists; refusing to overwrite it" in line
    assert out.read_bytes() == b"precious"
    r = lrn("apply", src, "-o", out, "--overwrite")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_array_equal(np.load(out), lrn_cli.lrn(acts))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("how", ["same", "dotted", "absolute", "symlink", "hardlink"])
def test_output_never_overwrites_the_input(lrn, npy, tmp_path, acts, how):
    src = npy("x.npy", acts)
    before = Path(src).read_bytes()
    target = {"same": "x.npy", "dotted": "./sub/../x.npy", "absolute": str(tmp_path / "x.npy"),
              "symlink": "link.npy", "hardlink": "hard.npy"}[how]
    if how == "dotted":
        (tmp_path / "sub").mkdir()
    if how == "symlink":
        os.symlink("x.npy", "link.npy")
    if how == "hardlink":
        os.link("x.npy", "hard.npy")
    r = lrn("apply", src, "-o", target, "--overwrite")
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "is an input file (x.npy); refusing to overwrite it" in line
    assert Path(src).read_bytes() == before


def test_several_inputs_go_to_a_directory(lrn, npy, tmp_path, acts):
    a = npy("in/a.npy", acts)
    b = npy("in/b.npy", acts[:, :4] * 2)
    img = tmp_path / "in" / "g.png"
    img.write_bytes((IMAGES / "camera_gray.png").read_bytes())
    out = tmp_path / "out"
    r = lrn("apply", a, b, img, "-o", out)
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.npy", "b.npy", "g.png"]
    np.testing.assert_array_equal(np.load(out / "a.npy"), lrn_cli.lrn(acts))
    np.testing.assert_array_equal(np.load(out / "b.npy"), lrn_cli.lrn(acts[:, :4] * 2))
    assert "3 processed, 0 skipped, 0 failed" in r.stderr


def test_several_inputs_into_an_existing_file_is_a_usage_error(lrn, npy, tmp_path, acts):
    a, b = npy("a.npy", acts), npy("b.npy", acts)
    out = tmp_path / "out.npy"
    out.write_bytes(b"keep")
    r = lrn("apply", a, b, "-o", out)
    assert r.exit_code == 2
    assert "is a file, but 2 inputs need a folder" in r.stderr
    assert out.read_bytes() == b"keep"


def test_one_input_into_an_existing_directory(lrn, npy, tmp_path, acts):
    src = npy("x.npy", acts)
    (tmp_path / "dest").mkdir()
    r = lrn("apply", src, "-o", tmp_path / "dest")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "dest" / "x.npy"), lrn_cli.lrn(acts))


def test_directory_output_onto_the_inputs_is_refused(lrn, npy, tmp_path, acts):
    a, b = npy("a.npy", acts), npy("b.npy", acts + 1)
    before = (Path(a).read_bytes(), Path(b).read_bytes())
    r = lrn("apply", a, b, "-o", tmp_path, "--overwrite")
    assert r.exit_code == 1
    assert len(error_lines(r.stderr)) == 2
    assert "is an input file" in r.stderr
    assert (Path(a).read_bytes(), Path(b).read_bytes()) == before


def test_one_failing_input_does_not_stop_the_others(lrn, npy, tmp_path, acts):
    good = npy("good.npy", acts)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(Path(good).read_bytes()[:-7])
    r = lrn("apply", bad, good, tmp_path / "missing.npy", "-o", tmp_path / "out")
    assert r.exit_code == 1
    assert np.array_equal(np.load(tmp_path / "out" / "good.npy"), lrn_cli.lrn(acts))
    assert not (tmp_path / "out" / "bad.npy").exists()
    assert "1 processed, 0 skipped, 2 failed" in r.stderr
    assert len(error_lines(r.stderr)) == 2


def test_fail_fast_stops_at_the_first_failure(lrn, npy, tmp_path, acts):
    good = npy("good.npy", acts)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(Path(good).read_bytes()[:-7])
    r = lrn("apply", bad, good, "-o", tmp_path / "out", "--fail-fast")
    assert r.exit_code == 1
    assert not (tmp_path / "out" / "good.npy").exists()
    r = lrn("apply", tmp_path / "missing.npy", good, "-o", tmp_path / "out2", "--fail-fast")
    assert r.exit_code == 1
    assert not (tmp_path / "out2" / "good.npy").exists()


def _tree(tmp_path, acts):
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    np.save(root / "a.npy", acts)
    np.save(root / "sub" / "b.npy", acts[:, :3])
    (root / "sub" / "c.png").write_bytes((IMAGES / "camera_gray.png").read_bytes())
    (root / "notes.txt").write_text("not an input")
    return root


def test_folder_input_is_mirrored(lrn, tmp_path, acts):
    root = _tree(tmp_path, acts)
    out = tmp_path / "out"
    r = lrn("apply", root, "-o", out)
    assert r.exit_code == 0, r.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["a.npy", "sub/b.npy", "sub/c.png"]
    np.testing.assert_array_equal(np.load(out / "sub" / "b.npy"), lrn_cli.lrn(acts[:, :3]))
    with Image.open(out / "sub" / "c.png") as im:
        assert im.mode == "L"


def test_glob_exclude_and_format(lrn, tmp_path, acts):
    root = _tree(tmp_path, acts)
    out = tmp_path / "out"
    r = lrn("apply", root, "-o", out, "--glob", "*.npy", "--exclude", "a*",
            "--output-suffix", "npz")
    assert r.exit_code == 0, r.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["sub/b.npz"]
    with np.load(out / "sub" / "b.npz") as z:
        np.testing.assert_array_equal(z[z.files[0]], lrn_cli.lrn(acts[:, :3]))


def test_output_folder_inside_the_input_folder(lrn, tmp_path, acts):
    root = _tree(tmp_path, acts)
    r = lrn("apply", root, "-o", root / "out")
    assert r.exit_code == 1
    assert "is inside the input folder" in r.stderr and "--allow-input-tree" in r.stderr
    assert not (root / "out").exists()
    r = lrn("apply", root, "-o", root / "out", "--allow-input-tree")
    assert r.exit_code == 0, r.stderr
    assert (root / "out" / "a.npy").exists()


def test_skip_existing(lrn, tmp_path, acts):
    root = _tree(tmp_path, acts)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "a.npy").write_bytes(b"old")
    r = lrn("apply", root, "-o", out)
    assert r.exit_code == 1  # a.npy exists
    r = lrn("apply", root, "-o", out, "--skip-existing")
    assert r.exit_code == 0, r.stderr
    assert (out / "a.npy").read_bytes() == b"old"
    assert "skipped" in r.stderr
    assert (out / "sub" / "b.npy").exists()
    r = lrn("apply", root, "-o", out, "--skip-existing", "--overwrite")
    assert r.exit_code == 2


def test_dry_run_writes_nothing(lrn, tmp_path, acts):
    root = _tree(tmp_path, acts)
    out = tmp_path / "out"
    r = lrn("apply", root, "-o", out, "--dry-run")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"{root / 'a.npy'} -> {out / 'a.npy'}" in lines
    assert f"{root / 'sub' / 'c.png'} -> {out / 'sub' / 'c.png'}" in lines
    assert len(lines) == 3
    assert not out.exists()
    assert "nothing written" in r.stderr


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_manifest(lrn, npy, tmp_path, acts, suffix):
    good = npy("good.npy", acts)
    man = tmp_path / f"manifest{suffix}"
    r = lrn("apply", good, tmp_path / "missing.npy", "-o", tmp_path / "out", "--manifest", man)
    assert r.exit_code == 1
    text = man.read_text()
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    by_status = {row["status"]: row for row in rows}
    assert set(by_status) == {"ok", "failed"}
    assert by_status["ok"]["file"] == good
    assert by_status["ok"]["output"] == str(tmp_path / "out" / "good.npy")
    assert by_status["ok"]["file_hex"] == ("" if suffix == ".csv" else None)  # shown exactly
    assert "missing.npy" in by_status["failed"]["error"]
    assert float(by_status["ok"]["in_mean"]) == pytest.approx(float(acts.mean(dtype=np.float64)))


def test_bad_manifest_and_stats_out_suffixes_are_usage_errors(lrn, npy, acts):
    src = npy("x.npy", acts)
    assert lrn("apply", src, "--manifest", "m.txt").exit_code == 2
    assert lrn("apply", src, "--stats-out", "s.txt").exit_code == 2


def test_parallel_jobs_give_the_same_results(lrn, npy, tmp_path, acts):
    srcs = [npy(f"in/{i}.npy", acts * (i + 1)) for i in range(3)]
    r = lrn("apply", *srcs, "-o", tmp_path / "out", "-j", 2)
    assert r.exit_code == 0, r.stderr
    for i in range(3):
        np.testing.assert_array_equal(np.load(tmp_path / "out" / f"{i}.npy"),
                                      lrn_cli.lrn(acts * (i + 1)))


def test_panel(lrn, tmp_path):
    panel = tmp_path / "panel.png"
    r = lrn("apply", IMAGES / "camera_gray.png", "--panel", panel, "-o", tmp_path / "o.png")
    assert r.exit_code == 0, r.stderr
    with Image.open(panel) as im:
        assert im.format == "PNG" and im.size[0] > 256
    r = lrn("apply", IMAGES / "camera_gray.png", "--panel", panel)
    assert r.exit_code == 1 and "already exists" in r.stderr
    r = lrn("apply", IMAGES / "camera_gray.png", IMAGES / "astronaut_rgb.png", "--panel",
            tmp_path / "p2.png")
    assert r.exit_code == 2 and "--panel draws one input" in r.stderr


# --------------------------------------------------------------------------- stdin / stdout


def test_output_dash_writes_npy_to_stdout(lrn, npy, acts):
    r = lrn("apply", npy("x.npy", acts), "-o", "-")
    assert r.exit_code == 0, r.stderr
    y = np.load(io.BytesIO(r.stdout_bytes), allow_pickle=False)
    np.testing.assert_array_equal(y, lrn_cli.lrn(acts))
    assert "statistic" in r.stderr  # the table moved to stderr


def test_output_dash_needs_exactly_one_input(lrn, npy, acts):
    r = lrn("apply", npy("a.npy", acts), npy("b.npy", acts), "-o", "-")
    assert r.exit_code == 2
    assert "-o - (stdout) takes exactly one input" in r.stderr


def test_output_dash_refuses_a_multi_array_npz(lrn, tmp_path, acts):
    src = tmp_path / "two.npz"
    np.savez(src, a=acts, b=acts[:, :3])
    r = lrn("apply", src, "-o", "-")
    assert r.exit_code == 1
    assert "2 arrays" in r.stderr


def test_stdin_input(lrn, npy, tmp_path, acts):
    data = Path(npy("x.npy", acts)).read_bytes()
    r = lrn("apply", "-", "-o", tmp_path / "o.npy", input=data)
    assert r.exit_code == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), lrn_cli.lrn(acts))
    r = lrn("apply", "-", "-o", "-", input=data)
    np.testing.assert_array_equal(np.load(io.BytesIO(r.stdout_bytes)), lrn_cli.lrn(acts))
    png = (IMAGES / "camera_gray.png").read_bytes()
    r = lrn("apply", "-", "-o", tmp_path / "g.png", input=png)
    assert r.exit_code == 0, r.stderr
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode == "L" and im.size == (256, 256)
    r = lrn("apply", "-", "-", input=data)
    assert r.exit_code == 2 and "can be given once" in r.stderr


# --------------------------------------------------------------------------- tables, JSON, CSV


def test_table_on_stdout_notes_on_stderr(lrn, npy, acts):
    r = lrn("apply", npy("x.npy", acts))
    assert r.exit_code == 0, r.stderr
    for label in ("mean", "std", "min", "max", "RMS contrast", "Michelson contrast",
                  "Hoyer sparsity", "channel dominance", "divisor D", "gain D^-beta",
                  "per channel"):
        assert label in r.stdout, label
    assert "note:" not in r.stdout
    assert "no -o given" in r.stderr
    from lrn_cli.cli.output import fmt

    before = array_stats(acts, 1)
    after = array_stats(lrn_cli.lrn(acts), 1)
    for value in (before.overall.mean, after.overall.mean, before.overall.hoyer_sparsity,
                  after.channel_dominance):
        assert fmt(value) in r.stdout


def test_per_channel_table_has_every_statistic(lrn, npy, acts):
    r = lrn("apply", npy("x.npy", acts))
    per_channel = r.stdout[r.stdout.index("per channel"):]
    header = per_channel.splitlines()[1]
    assert "min" in header and "Michelson" in header


def test_channels_option_limits_the_table(lrn, npy, acts):
    src = npy("x.npy", acts)
    r = lrn("apply", src, "--show-channels", 2)
    assert "5 more channels not shown" in r.stdout
    r = lrn("apply", src, "--show-channels", 0)
    assert "per channel" not in r.stdout and "statistic" in r.stdout


def test_many_files_get_one_row_each(lrn, npy, acts):
    srcs = [npy(f"f{i}.npy", acts * (i + 1)) for i in range(4)]
    r = lrn("apply", *srcs)
    assert r.exit_code == 0, r.stderr
    assert "4 files" in r.stdout
    for src in srcs:
        assert src in r.stdout


def test_many_files_table_keeps_long_names(lrn, tmp_path, acts):
    folder = tmp_path / ("long_folder_name_" * 4)
    folder.mkdir()
    srcs = []
    for i in range(4):
        np.save(folder / f"activations_{i}.npy", acts)
        srcs.append(str(folder / f"activations_{i}.npy"))
    r = lrn("apply", *srcs)
    assert r.exit_code == 0, r.stderr
    assert "…" not in r.stdout
    for src in srcs:
        assert src in r.stdout


def test_json_figures_are_the_library_figures(lrn, npy, tmp_path, acts):
    src = npy("x.npy", acts)
    out = tmp_path / "o.npy"
    r = lrn("apply", src, "-o", out, "--json", "--alpha", 1e-2, "-n", 3)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["settings"] == {"mode": "across", "size": 3, "alpha": 0.01, "beta": 0.75,
                               "k": 2.0, "convention": "default"}
    [f] = doc["files"]
    assert doc["schema"] == 1 and list(doc)[0] == "schema"
    assert f["file"] == src and f["output"] == str(out) and f["status"] == "ok"
    assert f["error"] is None
    assert any("assumed layout NCHW" in n for n in f["notes"])
    [arr] = f["arrays"]
    assert arr["layout"] == "NCHW" and arr["channel_axis"] == 1
    y, d = lrn_cli.lrn(acts, 3, 1e-2, 0.75, 2.0, return_divisor=True)
    assert arr["array"] is None  # a .npy has no members
    assert arr["in"] == array_stats(acts, 1).as_dict()
    assert arr["out"] == array_stats(y, 1).as_dict()
    div = divisor_stats(d, 0.75)
    assert arr["divisor"] == {"min": div.d_min, "max": div.d_max, "mean": div.d_mean}
    assert arr["gain"] == {"min": div.gain_min, "max": div.gain_max, "mean": div.gain_mean}
    ref_d = reference_divisor(acts, 3, 1e-2, 0.75, 2.0)
    assert arr["divisor"]["min"] == pytest.approx(ref_d.min(), rel=1e-6)
    assert arr["divisor"]["max"] == pytest.approx(ref_d.max(), rel=1e-6)
    assert arr["gain"]["min"] == pytest.approx(ref_d.max() ** -0.75, rel=1e-6)
    assert doc["summary"]["processed"] == 1 and doc["summary"]["failed"] == 0
    np.testing.assert_array_equal(np.load(out), y)


def test_csv_has_the_expected_columns_and_numbers(lrn, npy, acts):
    src = npy("x.npy", acts)
    r = lrn("apply", src, "--csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    expected = ["schema", "file", "array", "layout", "scope"]
    for name in (*STAT_NAMES, "nonfinite", "count"):
        expected += [f"in_{name}", f"out_{name}"]
    expected += ["in_channel_dominance", "out_channel_dominance", "divisor_min", "divisor_max",
                 "divisor_mean", "gain_min", "gain_max", "gain_mean"]
    assert list(rows[0]) == expected
    assert [row["scope"] for row in rows] == ["all"] + [f"c{i}" for i in range(7)]
    y, d = lrn_cli.lrn(acts, return_divisor=True)
    before, after, div = array_stats(acts, 1), array_stats(y, 1), divisor_stats(d, 0.75)
    top = rows[0]
    assert top["file"] == src and top["layout"] == "NCHW"
    for name in STAT_NAMES:
        assert float(top[f"in_{name}"]) == getattr(before.overall, name)
        assert float(top[f"out_{name}"]) == getattr(after.overall, name)
    assert int(top["in_count"]) == acts.size and top["schema"] == "1"
    assert float(top["out_channel_dominance"]) == after.channel_dominance
    assert float(top["divisor_max"]) == div.d_max
    assert float(top["gain_min"]) == div.gain_min
    for c in range(7):
        assert float(rows[c + 1]["out_max"]) == after.channels[c].max
        assert rows[c + 1]["divisor_min"] == ""


def test_json_and_csv_together_is_a_usage_error(lrn, npy, acts):
    r = lrn("apply", npy("x.npy", acts), "--json", "--csv")
    assert r.exit_code == 2
    assert "use just one of --json, --csv" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_stats_out_file(lrn, npy, tmp_path, acts, suffix):
    src = npy("x.npy", acts)
    target = tmp_path / f"stats{suffix}"
    r = lrn("apply", src, "--stats-out", target)
    assert r.exit_code == 0, r.stderr
    assert "statistic" in r.stdout  # the table is still printed
    fmt = suffix[1:]
    printed = lrn("apply", src, f"--{fmt}").stdout
    if suffix == ".json":
        doc, ref = json.loads(target.read_text()), json.loads(printed)
        for d in (doc, ref):
            d["summary"].pop("seconds")
            for f in d["files"]:
                f.pop("seconds")
        assert doc == ref
        y = lrn_cli.lrn(acts)
        assert doc["files"][0]["arrays"][0]["out"] == array_stats(y, 1).as_dict()
    else:
        assert target.read_text() == printed
        assert list(csv.DictReader(io.StringIO(target.read_text())))[0]["scope"] == "all"


def test_stats_out_does_not_overwrite_without_overwrite(lrn, npy, tmp_path, acts):
    target = tmp_path / "stats.csv"
    target.write_text("precious\n")
    r = lrn("apply", npy("x.npy", acts), "--stats-out", target)
    assert target.read_text() == "precious\n"
    assert r.exit_code == 1


def test_quiet_hides_notes_not_errors(lrn, npy, tmp_path, acts):
    src = npy("x.npy", acts)
    r = lrn("apply", src, "-q")
    assert r.exit_code == 0
    assert r.stderr == ""
    assert "statistic" in r.stdout
    r = lrn("apply", src, tmp_path / "missing.npy", "--quiet")
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "missing.npy" in line and "note:" not in r.stderr


# --------------------------------------------------------------------------- errors


class _Trap:
    """Unpickling this object creates a file: proof that a pickle was loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_object_array_is_refused_and_never_unpickled(lrn, tmp_path):
    trap = tmp_path / "UNPICKLED"
    src = tmp_path / "evil.npy"
    np.save(src, np.array([_Trap(str(trap)), None], dtype=object), allow_pickle=True)
    assert not trap.exists()
    r = lrn("apply", src, "-o", tmp_path / "o.npy")
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "evil.npy" in line and "pickled" in line and "refusing to unpickle" in line
    assert not trap.exists()
    npz = tmp_path / "evil.npz"
    np.savez(npz, ok=np.ones((1, 3, 2, 2), np.float32),
             bad=np.array([_Trap(str(trap))], dtype=object))
    r = lrn("apply", npz, "-o", tmp_path / "o.npz")
    assert r.exit_code == 1
    assert "refusing to unpickle" in r.stderr
    assert not trap.exists()


def _error_cases(tmp_path: Path, acts: np.ndarray) -> dict[str, tuple[str, str]]:
    good = tmp_path / "good.npy"
    np.save(good, acts)
    data = good.read_bytes()
    cases = {}
    trunc = tmp_path / "trunc.npy"
    trunc.write_bytes(data[:-10])
    cases["truncated npy"] = (trunc, "truncated")
    header = tmp_path / "header.npy"
    header.write_bytes(data[:20])
    cases["truncated npy header"] = (header, "truncated")
    notnpy = tmp_path / "text.npy"
    notnpy.write_text("hello")
    cases["not npy"] = (notnpy, "not a .npy file")
    text = tmp_path / "text.png"
    text.write_text("this is not a picture\n")
    cases["text named png"] = (text, "not an image")
    png = (IMAGES / "camera_gray.png").read_bytes()
    tpng = tmp_path / "trunc.png"
    tpng.write_bytes(png[: len(png) // 2])
    cases["truncated png"] = (tpng, "truncated")
    cases["missing"] = (tmp_path / "missing.npy", "no such file")
    scalar = tmp_path / "scalar.npy"
    np.save(scalar, np.float32(3))
    cases["scalar"] = (scalar, "scalar")
    cplx = tmp_path / "complex.npy"
    np.save(cplx, np.ones((1, 3), complex))
    cases["complex"] = (cplx, "complex128")
    notzip = tmp_path / "bad.npz"
    notzip.write_bytes(b"PK\x03\x04garbage")
    cases["bad npz"] = (notzip, "not a valid .npz")
    os.symlink(tmp_path / "nowhere.npy", tmp_path / "dangling.npy")
    cases["broken symlink"] = (tmp_path / "dangling.npy", "broken symlink")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.npy")
        cases["fifo"] = (tmp_path / "fifo.npy", "not a regular file")
    unreadable = tmp_path / "locked.npy"
    unreadable.write_bytes(data)
    unreadable.chmod(0)
    if not os.access(unreadable, os.R_OK):  # root can read anything
        cases["unreadable"] = (unreadable, "permission denied")
    # names relative to tmp_path, the current directory
    return {name: (os.path.relpath(path, tmp_path), cause)
            for name, (path, cause) in cases.items()}


def test_every_error_is_one_line_naming_file_and_cause(lrn, tmp_path, acts):
    for name, (path, cause) in _error_cases(tmp_path, acts).items():
        r = lrn("apply", path, "-o", tmp_path / "out.npy")
        assert r.exit_code == 1, name
        lines = error_lines(r.stderr)
        assert len(lines) == 1, (name, r.stderr)
        assert lines[0].startswith(f"error: {path}: ") and cause in lines[0], (name, lines[0])
        assert "Traceback" not in r.stderr, name
        assert r.stdout == "", name
        assert not (tmp_path / "out.npy").exists(), name


def test_traceback_option_shows_the_traceback(lrn, tmp_path, acts):
    bad = tmp_path / "bad.npy"
    np.save(bad, acts)
    bad.write_bytes(bad.read_bytes()[:-3])
    r = lrn("apply", bad)
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    r = lrn("apply", bad, "--traceback")
    assert r.exit_code == 1
    assert "Traceback (most recent call last)" in r.stderr
    assert "InputError" in r.stderr
    assert len(error_lines(r.stderr)) == 1


def test_long_error_stays_on_one_line(lrn, tmp_path, acts):
    deep = tmp_path / ("a" * 60) / ("b" * 60)
    deep.mkdir(parents=True)
    bad = deep / "truncated_activations.npy"
    np.save(bad, acts)
    bad.write_bytes(bad.read_bytes()[:-3])
    r = lrn("apply", bad)
    [line] = error_lines(r.stderr)
    assert str(bad) in line and "file has" in line


@pytest.mark.parametrize(("opts", "message"), [
    (["-n", 4, "--convention", "caffe"], "rejects even window sizes"),
    (["-n", 4, "--convention", "tensorflow"], "always uses an odd window"),
    (["-n", 5, "--depth-radius", 2], "give --size or --depth-radius, not both"),
    (["--layout", "NCHW", "--channel-axis", 1], "give --layout or --channel-axis, not both"),
    (["--channel-axis", "foo"], "is not an integer or 'none'"),
    (["--convention", "nope"], "Invalid value for '--convention'"),
    (["--mode", "within", "--convention", "tensorflow"], "has no within-channel LRN"),
    (["--convention", "cudnn", "-n", 17], "needs size <= 16"),
    (["--alpha", -1], "alpha must be >= 0"),
    (["--alpha", "nan"], "alpha must be finite"),
    (["-k", -1], "k must be >= 0"),
    (["-n", 0], "x>=1"),
    (["--mode", "sideways"], "Invalid value for '--mode'"),
    (["--bits", "12"], "Invalid value for '--bits'"),
    (["--dtype", "float16"], "Invalid value for '--dtype'"),
    (["--range", "kilo"], "Invalid value for '--range'"),
    (["--rescale", "log"], "Invalid value for '--rescale'"),
    (["-j", 0], "x>=1"),
    (["--no-such-option"], "No such option"),
])
def test_usage_errors_exit_2_before_reading(lrn, tmp_path, opts, message):
    out = tmp_path / "o.npy"
    # the input does not exist: a usage error must be reported first, without touching it
    r = lrn("apply", tmp_path / "missing.npy", "-o", out, *opts)
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_no_input_is_a_usage_error(lrn):
    r = lrn("apply")
    assert r.exit_code == 2
    assert "Missing argument" in r.stderr
