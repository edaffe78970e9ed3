"""``lrn norms`` and :mod:`lrn_cli.norms`: LRN beside L2, BatchNorm, LayerNorm, InstanceNorm.

Each method is checked against a plain float64 formula written here with explicit loops over
its groups and ``math.fsum`` (not the vectorized code under test), on several layouts; the
optional conformance tests compare with torch; the CLI is run for real (table, JSON, CSV, -o,
--panel, errors).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import ARRAYS, IMAGES, error_lines
from PIL import Image

import lrn_cli
from lrn_cli.errors import ParameterError
from lrn_cli.norms import METHODS, normalizations, parse_methods

EPS = 1e-5


# --------------------------------------------------------------------------- references


def _groups(x: np.ndarray, keep: tuple[int, ...]):
    """Every index tuple selecting one group: fixed on the ``keep`` axes, all else free."""
    ranges = [range(x.shape[i]) if i in keep else [slice(None)] for i in range(x.ndim)]
    for index in itertools.product(*ranges):
        yield tuple(index)


def ref_standardize(x: np.ndarray, keep: tuple[int, ...]) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps)`` of each group (the ``keep`` axes fixed), in float64."""
    x = x.astype(np.float64)
    y = np.empty_like(x)
    for index in _groups(x, keep):
        vals = x[index].ravel().tolist()
        mean = math.fsum(vals) / len(vals)
        var = math.fsum((v - mean) ** 2 for v in vals) / len(vals)
        y[index] = (x[index] - mean) / math.sqrt(var + EPS)
    return y


def ref_l2(x: np.ndarray, channel_axis: int) -> np.ndarray:
    """``x / ||x||`` over the channels of each pixel; a zero norm gives 0, NaN stays NaN."""
    x = x.astype(np.float64)
    y = np.empty_like(x)
    keep = tuple(i for i in range(x.ndim) if i != channel_axis)
    for index in _groups(x, keep):
        v = x[index]
        norm = math.sqrt(math.fsum((v * v).tolist()))
        y[index] = 0.0 if norm == 0 else v / norm
    return y


def keep_axes(layout: str, method: str) -> tuple[int, ...]:
    """The axes a method's groups are fixed on (its statistics run over the others)."""
    batch = tuple(i for i, c in enumerate(layout) if c == "N")
    channel = tuple(i for i, c in enumerate(layout) if c == "C")
    return {"batchnorm": channel, "layernorm": batch,
            "instancenorm": tuple(sorted(batch + channel))}[method]


def data(shape, dtype=np.float32, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 3.0, size=shape)
    x[rng.random(shape) < 0.3] = 0.0  # ReLU-like zeros
    return x.astype(dtype)


LAYOUTS = [("NCHW", (2, 5, 4, 3)), ("NHWC", (2, 4, 3, 5)), ("HWC", (6, 5, 3)),
           ("NC", (7, 4)), ("NCL", (3, 4, 6)), ("NCDHW", (2, 3, 2, 3, 4)), ("CHW", (4, 3, 5))]


# --------------------------------------------------------------------------- the library


@pytest.mark.parametrize("layout,shape,method", [
    (layout, shape, method) for layout, shape in LAYOUTS
    for method in ("batchnorm", "layernorm", "instancenorm")
    if method != "instancenorm" or set(layout) & set("DHWL")])
def test_standardizations_match_the_formula(layout, shape, method):
    x64 = data(shape, np.float64)
    want = ref_standardize(x64, keep_axes(layout, method))
    got = normalizations(x64, [method], layout=layout)[method].output
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    x32 = x64.astype(np.float32)
    got32 = normalizations(x32, [method], layout=layout)[method].output
    assert got32.dtype == np.float32
    # float64 accumulation: the float32 result is the float64 one rounded
    want32 = ref_standardize(x32, keep_axes(layout, method))
    np.testing.assert_allclose(got32, want32, rtol=2e-7, atol=2e-7)


@pytest.mark.parametrize("layout,shape", [s for s in LAYOUTS if s[0] != "NC"][:4])
def test_l2_matches_x_over_its_norm(layout, shape):
    ch = layout.index("C")
    x = data(shape, np.float64)
    got = normalizations(x, ["l2"], layout=layout)["l2"]
    np.testing.assert_allclose(got.output, ref_l2(x, ch), rtol=1e-14, atol=1e-15)
    norms = np.sqrt(np.sum(got.output.astype(np.float64) ** 2, axis=ch))
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-12)


def test_l2_zero_norm_pixels_become_zero_and_nan_stays_nan():
    x = data((2, 4, 3, 3), np.float32)
    x[0, :, 0, 0] = 0.0  # zero norm
    x[1, :, 2, 1] = 0.0  # zero norm
    x[1, :, 1, 1] = -0.0  # zero norm, negative zeros
    x[0, 2, 1, 2] = np.nan  # one NaN: its pixel's norm is NaN
    r = normalizations(x, ["l2"])["l2"]
    want = ref_l2(x, 1)
    nan = np.isnan(want)
    assert nan.sum() == 4 and np.isnan(want[0, :, 1, 2]).all()  # the whole NaN pixel
    np.testing.assert_array_equal(np.isnan(r.output), nan)
    np.testing.assert_allclose(r.output[~nan], want[~nan], rtol=3e-7, atol=1e-7)
    for n, h, w in ((0, 0, 0), (1, 2, 1), (1, 1, 1)):
        assert (r.output[n, :, h, w] == 0).all()
    assert r.zero_norm_pixels == 3
    assert any("3 pixels with a zero channel norm set to 0" in note for note in r.notes)
    assert r.divisor.d_min == 0.0  # D = ||x||^2 is 0 there; the gain leaves those out
    assert math.isfinite(r.divisor.gain_max)


def test_l2_float32_beyond_float32_squares():
    """Computed in float64: squares of float32 values that under- or overflow float32 are
    no problem (an LRN kernel in float32 would give inf and 0 here)."""
    x = np.zeros((1, 3, 1, 4), np.float32)
    x[0, :, 0, 0] = [1e-30, 2e-30, 2e-30]
    x[0, :, 0, 1] = [1e30, 2e30, 2e30]
    x[0, :, 0, 2] = [3e38, 3e38, 0]
    x[0, :, 0, 3] = [1e-45, 0, 0]  # the smallest subnormal
    y = normalizations(x, ["l2"])["l2"].output
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref_l2(x, 1), rtol=1e-6)
    np.testing.assert_allclose(y[0, :, 0, 0], [1 / 3, 2 / 3, 2 / 3], rtol=1e-6)


def test_l2_is_the_lrn_special_case_to_the_bit():
    """tensorflow's LRN with depth_radius = C-1, alpha=1, beta=0.5, bias=0 (alpha undivided,
    window over all channels) gives the same bits where the norm is not zero."""
    x = data((2, 6, 5, 4), np.float64, seed=3)
    x[0, :, 1, 1] = 0.0
    y_l2 = normalizations(x, ["l2"])["l2"].output
    with np.errstate(invalid="ignore"):
        y_tf = lrn_cli.lrn(x, convention="tensorflow", depth_radius=5, alpha=1.0, beta=0.5,
                           k=0.0, channel_axis=1)
    zero = np.isnan(y_tf)
    assert zero.sum() == 6 and (y_l2[zero] == 0).all()
    np.testing.assert_array_equal(y_l2[~zero], y_tf[~zero])


def test_lrn_method_is_lrn_exactly():
    x = np.load(ARRAYS / "tf_example_nhwc.npy")
    r = normalizations(x, ["lrn"], layout="NHWC", size=3, alpha=2e-5, beta=0.6, k=1.0,
                       convention="pytorch", keep_divisors=True)
    y, d = lrn_cli.lrn(x, 3, 2e-5, 0.6, 1.0, convention="pytorch", channel_axis=-1,
                       return_divisor=True)
    np.testing.assert_array_equal(r["lrn"].output, y)
    np.testing.assert_array_equal(r["lrn"].divisor_array, d)
    assert r["lrn"].divisor.gain_min == pytest.approx(float(np.min(d.astype(np.float64)
                                                                    ** -0.6)))


@pytest.mark.parametrize("dtype,out", [(np.float32, np.float32), (np.float64, np.float64),
                                       (np.uint8, np.float32), (np.int32, np.float32),
                                       (np.float16, np.float32)])
def test_output_dtypes(dtype, out):
    x = (data((1, 3, 4, 4), np.float64) * 10).astype(dtype)
    r = normalizations(x)
    assert r.names == METHODS
    assert {m.output.dtype for m in r} == {np.dtype(out)}
    if np.dtype(dtype).kind in "iu" or dtype == np.float16:
        assert any("computed as float32" in n for n in r.notes)


def test_one_sample_batchnorm_and_instancenorm_coincide():
    x = data((1, 3, 5, 5), np.float64)
    r = normalizations(x)
    np.testing.assert_allclose(r["batchnorm"].output, r["instancenorm"].output, rtol=1e-13,
                               atol=1e-13)
    assert any("coincide" in n for n in r.notes)
    two = normalizations(data((2, 3, 5, 5), np.float64))
    assert not any("coincide" in n for n in two.notes)
    assert not np.allclose(two["batchnorm"].output, two["instancenorm"].output)
    image = normalizations(data((5, 5, 3)), ["batchnorm", "instancenorm"], layout="HWC")
    assert any("coincide" in n for n in image.notes)


def test_statistics_are_lrn_applys(tmp_path):
    from lrn_cli.stats import array_stats

    x = data((2, 3, 4, 4))
    r = normalizations(x)
    assert r.input_stats == array_stats(x, 1)
    for m in r:
        assert m.stats == array_stats(m.output, 1)
        assert (m.divisor is not None) == (m.name in ("lrn", "l2"))
    assert r["batchnorm"].stats.overall.mean == pytest.approx(0.0, abs=1e-6)
    assert r["batchnorm"].stats.overall.std == pytest.approx(1.0, abs=1e-3)


def test_parse_methods_and_layout_errors():
    assert parse_methods(None) == METHODS
    assert parse_methods("L2, lrn,l2") == ("l2", "lrn")
    with pytest.raises(ParameterError, match="unknown method 'softmax'"):
        parse_methods("lrn,softmax")
    with pytest.raises(ParameterError, match="no method"):
        parse_methods(" , ")
    with pytest.raises(ParameterError, match="instancenorm: layout NC has no spatial axis"):
        normalizations(np.ones((3, 4)), ["instancenorm"])
    with pytest.raises(ParameterError, match="l2: layout HW has no channel axis"):
        normalizations(np.ones((3, 4)), ["l2"], layout="HW", mode="within")
    with pytest.raises(ParameterError, match="batchnorm: layout C has no batch or spatial"):
        normalizations(np.ones(4), ["batchnorm"])
    # within-mode LRN needs no channel axis; layernorm neither
    r = normalizations(data((5, 6), np.float64), ["lrn", "layernorm"], layout="HW",
                       mode="within", size=3)
    assert r.channel_axis is None and r.names == ("lrn", "layernorm")


# --------------------------------------------------------------------------- torch


@pytest.fixture(scope="module")
def torch():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("torch")


@pytest.mark.conformance
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conformance_torch(torch, dtype):
    import torch.nn.functional as F

    x = data((3, 4, 5, 6), dtype, seed=7)
    r = normalizations(x)
    t = torch.from_numpy(x)
    tol = {np.float32: 2e-6, np.float64: 1e-12}[dtype]
    want = {
        "batchnorm": F.batch_norm(t, None, None, training=True, eps=EPS),
        "layernorm": F.layer_norm(t, t.shape[1:], eps=EPS),
        "instancenorm": F.instance_norm(t, eps=EPS),
        "l2": F.normalize(t, p=2.0, dim=1),
    }
    for name, w in want.items():
        got = r[name].output
        assert got.dtype == dtype, name
        np.testing.assert_allclose(got, w.numpy(), rtol=tol, atol=tol, err_msg=name)
    # NHWC through the layout gives torch's NCHW result transposed
    nhwc = normalizations(x.transpose(0, 2, 3, 1), layout="NHWC")
    for name, w in want.items():
        np.testing.assert_allclose(nhwc[name].output, w.numpy().transpose(0, 2, 3, 1),
                                   rtol=tol, atol=tol, err_msg=name)


# --------------------------------------------------------------------------- the CLI

CONV = "conv.npy"


@pytest.fixture
def conv(in_tmp: Path) -> np.ndarray:
    x = np.load(ARRAYS / "conv2_relu_nchw.npy")[:, :12, :9, :9].copy()
    x = np.concatenate([x, x[:, ::-1] * 0.5])  # two samples
    x[1, :, 0, 0] = 0.0  # a zero-norm pixel
    np.save(in_tmp / CONV, x)
    return x


def test_cli_table(lrn, conv):
    r = lrn("norms", CONV, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "conv.npy (NCHW, float32, shape 2x12x9x9): 5 normalizations" in lines[0]
    header = lines[1]
    for column in ("method", "mean", "std", "RMS contrast", "Michelson", "Hoyer", "dominance",
                   "D min..max", "gain min..max"):
        assert column in header
    rows = {line.split()[0]: line for line in lines[3:] if line.split()[0] in
            ("input", *METHODS)}
    assert list(rows) == ["input", *METHODS]
    # divisor and gain only for lrn and l2
    for name, line in rows.items():
        cells = [c.strip() for c in line.split("│")]
        assert (cells[-1] == "-") == (name not in ("lrn", "l2")), line
    err = r.stderr
    assert "l2: L2 across channels as LRN with k=0, a'=1, beta=0.5, window [c-11, c+11]" in err
    zero = int((conv == 0).all(axis=1).sum())
    assert zero >= 1
    assert f"l2: {zero} pixel{'s' if zero > 1 else ''} with a zero channel norm set to 0" in err
    assert "coincide" not in err  # two samples


def test_cli_json(lrn, conv):
    r = lrn("norms", CONV, "--methods", "l2,batchnorm,lrn", "--json", "-q")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc)[:3] == ["schema", "file", "array"]
    assert doc["schema"] == 1 and doc["file"] == CONV and doc["layout"] == "NCHW"
    assert [m["name"] for m in doc["methods"]] == ["input", "l2", "batchnorm", "lrn"]
    lib = normalizations(conv, ["l2", "batchnorm", "lrn"])
    for m in doc["methods"]:
        assert set(m) >= {"name", "stats", "output", "divisor", "gain", "description"}
        assert m["output"] is None
        want = lib.input_stats if m["name"] == "input" else lib[m["name"]].stats
        assert m["stats"]["overall"]["mean"] == pytest.approx(want.overall.mean)
        assert len(m["stats"]["channels"]) == 12
        assert (m["divisor"] is None) == (m["name"] not in ("lrn", "l2"))
    l2 = doc["methods"][1]
    assert l2["zero_norm_pixels"] == int((conv == 0).all(axis=1).sum())
    assert l2["gain"]["max"] > 0
    assert any("zero channel norm" in n for n in doc["notes"])


def test_cli_csv(lrn, conv):
    r = lrn("norms", CONV, "--csv", "-q")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    header = r.stdout.splitlines()[0].split(",")
    assert header[:6] == ["schema", "file", "array", "layout", "method", "scope"]
    assert {"mean", "hoyer_sparsity", "channel_dominance", "divisor_min", "gain_max",
            "output"} <= set(header)
    assert len(rows) == 6 * 13  # (input + 5 methods) x (all + 12 channels)
    whole = {row["method"]: row for row in rows if row["scope"] == "all"}
    assert list(whole) == ["input", *METHODS]
    assert whole["lrn"]["divisor_min"] and not whole["batchnorm"]["divisor_min"]
    assert float(whole["batchnorm"]["std"]) == pytest.approx(1.0, abs=1e-3)


def test_cli_output_folder(lrn, conv, in_tmp):
    r = lrn("norms", CONV, "-o", "out", "--json", "-q")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    lib = normalizations(conv)
    for m in doc["methods"][1:]:
        path = Path("out") / f"conv_{m['name']}.npy"
        assert m["output"] == str(path)
        np.testing.assert_array_equal(np.load(path), lib[m["name"]].output)
    # an existing output is refused (nothing written), --overwrite replaces
    before = (in_tmp / "out" / "conv_l2.npy").stat().st_mtime_ns
    r = lrn("norms", CONV, "-o", "out", "-q")
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert len(error_lines(r.stderr)) == 1
    assert (in_tmp / "out" / "conv_l2.npy").stat().st_mtime_ns == before
    assert lrn("norms", CONV, "-o", "out", "-q", "--overwrite").exit_code == 0
    # never over the input, even with --overwrite
    np.save(in_tmp / "conv_l2.npy", conv)
    r = lrn("norms", "conv_l2.npy", "--methods", "l2", "-o", ".", "--overwrite", "-q")
    assert r.exit_code == 0, r.stderr  # writes conv_l2_l2.npy next to it
    assert np.array_equal(np.load(in_tmp / "conv_l2.npy"), conv)
    r = lrn("norms", CONV, "-o", CONV, "-q")
    assert r.exit_code == 2 and "is a file" in r.stderr


def test_cli_image_outputs_and_panel(lrn, in_tmp):
    src = in_tmp / "small.png"
    with Image.open(IMAGES / "astronaut_rgb.png") as im:
        im.resize((64, 48)).save(src)
    r = lrn("norms", src, "--range", "byte", "-o", "imgs", "--panel", "p.png", "-q")
    assert r.exit_code == 0, r.stderr
    for name in METHODS:
        with Image.open(in_tmp / "imgs" / f"small_{name}.png") as im:
            assert im.size == (64, 48) and im.mode == "RGB"
    with Image.open(in_tmp / "p.png") as im:
        px = np.asarray(im.convert("RGB"))
    # six rows (input + 5 methods) of at least HIST_MIN_HEIGHT pixels each
    assert px.shape[0] > 6 * 200 and px.shape[1] <= 2400
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 200
    fewer = lrn("norms", src, "--methods", "l2", "--panel", "p2.png", "-q")
    assert fewer.exit_code == 0, fewer.stderr
    with Image.open(in_tmp / "p2.png") as im:
        assert im.height < px.shape[0] / 2  # two rows
    r = lrn("norms", src, "--panel", "p.png", "-q")
    assert r.exit_code == 1 and "already exists" in r.stderr
    r = lrn("norms", src, "-o", "again", "--panel", "again/small_l2.png", "-q")
    assert r.exit_code == 1 and "is also an -o output" in r.stderr
    assert not (in_tmp / "again" / "small_lrn.png").exists()  # refused before writing


def test_cli_panel_of_an_array_with_nan(lrn, conv, in_tmp):
    x = conv.copy()
    x[0, 0, 2, 2] = np.nan
    np.save(in_tmp / "nan.npy", x)
    r = lrn("norms", "nan.npy", "--panel", "p.png", "-q")
    assert r.exit_code == 0, r.stderr
    with Image.open(in_tmp / "p.png") as im:
        px = np.asarray(im.convert("RGB"))
    assert (px == (255, 0, 255)).all(axis=-1).any()  # NaN in magenta


def test_cli_usage_errors_are_one_line_and_exit_2(lrn, conv):
    r = lrn("norms", CONV, "--methods", "lrn,softmax")
    assert r.exit_code == 2
    assert error_lines(r.stderr) == ["error: --methods: unknown method 'softmax' (choose from "
                                     "lrn, l2, batchnorm, layernorm, instancenorm)"]
    np.save("nc.npy", np.ones((3, 4)))
    r = lrn("norms", "nc.npy", "--methods", "l2,instancenorm")
    assert r.exit_code == 2
    assert error_lines(r.stderr) == ["error: nc.npy: instancenorm: layout NC has no spatial "
                                     "axis (D, H, W or L)"]
    assert r.stdout == ""
    r = lrn("norms", CONV, "--panel", "p.jpg")
    assert r.exit_code == 2 and len(error_lines(r.stderr)) == 1


def test_cli_default_methods_skip_what_the_layout_cannot_use(lrn, in_tmp):
    np.save("nc.npy", data((6, 4), np.float64))
    r = lrn("norms", "nc.npy", "--json")
    assert r.exit_code == 0, r.stderr
    names = [m["name"] for m in json.loads(r.stdout)["methods"]]
    assert names == ["input", "lrn", "l2", "batchnorm", "layernorm"]
    assert "instancenorm: layout NC has no spatial axis" in r.stderr


def test_cli_npz_needs_one_array_and_stdin_works(lrn, conv, in_tmp):
    np.savez("two.npz", a=conv, b=conv[:, :3])
    r = lrn("norms", "two.npz", "-q")
    assert r.exit_code == 1 and "pick one with --key" in r.stderr
    r = lrn("norms", "two.npz", "--key", "b", "-o", "o", "--methods", "l2", "-q")
    assert r.exit_code == 0, r.stderr
    assert (in_tmp / "o" / "two_b_l2.npy").exists()
    r = lrn("norms", "-", "--methods", "layernorm", "--json", "-q",
            input=(in_tmp / CONV).read_bytes())
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["file"] == "<stdin>"


def test_empty_array(lrn, in_tmp):
    r = normalizations(np.zeros((0, 3, 4, 4), np.float32))
    assert [m.output.shape for m in r] == [(0, 3, 4, 4)] * 5
    np.save("empty.npy", np.zeros((0, 3, 4, 4), np.float32))
    out = lrn("norms", "empty.npy", "--json", "-q")
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["methods"][1]["stats"]["overall"]["count"] == 0
    out = lrn("norms", "empty.npy", "--panel", "p.png", "-q")
    assert out.exit_code == 1
    assert error_lines(out.stderr) == ["error: empty.npy: cannot draw a panel: cannot draw an "
                                       "empty array"]


def test_docstring_examples_run():
    import doctest

    import lrn_cli.norms

    failed, tried = doctest.testmod(lrn_cli.norms)
    assert tried >= 4 and failed == 0


def test_cli_table_counts_each_methods_non_finite_values(lrn, in_tmp):
    """One NaN in the input spreads through layernorm's sample and batchnorm's channel; the
    caption says how many values each row's figures ignore, not only the input's."""
    x = np.random.default_rng(3).standard_normal((2, 4, 5, 5)).astype(np.float32)
    x[0, 1, 2, 2] = np.nan
    np.save(in_tmp / "nan.npy", x)
    r = lrn("norms", "nan.npy", "--layout", "NCHW", env={"COLUMNS": "300", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.stderr
    caption = [line for line in r.stdout.splitlines() if "non-finite" in line]
    assert len(caption) == 1, r.stdout
    counts = dict(part.split() for part in caption[0].split(": ", 1)[1].split(", "))
    assert counts["input"] == "1" and counts["layernorm"] == "100"
    assert counts["batchnorm"] == "50" and counts["instancenorm"] == "25"
