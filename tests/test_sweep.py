"""``lrn sweep``: several values of one LRN parameter, one table, through the real CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ARRAYS, IMAGES, LRN_EXE, stderr_of, stdout_of
from conftest import run_wide as run
from PIL import Image

from lrn_cli.errors import ParameterError
from lrn_cli.pipeline import Item, Settings
from lrn_cli.sweep import check_sweep, parse_sweep, run_sweep

CONV2 = ARRAYS / "conv2_relu_nchw.npy"
CAMERA = IMAGES / "camera_gray.png"
ASTRONAUT = IMAGES / "astronaut_rgb.png"


def sweep_json(*args: object) -> dict:
    result = run("sweep", *args, "--json", "-q")
    assert result.exit_code == 0, stderr_of(result)
    return json.loads(stdout_of(result))


def out_means(doc: dict) -> list[float]:
    return [row["out"]["overall"]["mean"] for row in doc["arrays"][0]["rows"]]


# --------------------------------------------------------------------------- through the CLI


def test_beta_sweep_rows_and_monotonic_effect() -> None:
    # k = 2 > 1 makes D > 1 everywhere, so D**-beta, and with it every (non-negative) output,
    # shrinks as beta grows
    doc = sweep_json(CONV2, "--param", "beta", "0.25:1.5:6")
    assert doc["param"] == "beta"
    assert doc["values"] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    assert doc["settings"]["beta"] is None and doc["settings"]["k"] == 2.0
    rows = doc["arrays"][0]["rows"]
    assert [r["settings"]["beta"] for r in rows] == doc["values"]
    means = out_means(doc)
    assert all(a > b for a, b in zip(means, means[1:], strict=False))
    assert means[0] < doc["arrays"][0]["in"]["overall"]["mean"]
    gains = [r["gain"]["max"] for r in rows]
    assert gains == pytest.approx([2.0 ** -b for b in doc["values"]], rel=1e-5)


def test_beta_sweep_table() -> None:
    result = run("sweep", CONV2, "--param", "beta", "0.25:1.5:6")
    assert result.exit_code == 0, stderr_of(result)
    out = stdout_of(result)
    for header in ("beta", "mean out", "std out", "RMS contrast", "Michelson", "Hoyer",
                   "dominance", "gain"):
        assert header in out
    first_cells = [ln.split("│")[0].strip() for ln in out.splitlines() if "│" in ln]
    assert first_cells == ["0.25", "0.5", "0.75", "1", "1.25", "1.5"]
    assert "sweep of beta" in out and "assumed layout NCHW" in stderr_of(result)


def test_alpha_log_sweep_csv() -> None:
    result = run("sweep", CONV2, "--param", "alpha", "log:1e-5:1e-2:4", "--csv", "-q")
    assert result.exit_code == 0, stderr_of(result)
    rows = list(csv.DictReader(io.StringIO(stdout_of(result))))
    assert len(rows) == 4
    assert [float(r["value"]) for r in rows] == [1e-5, 1e-4, 1e-3, 1e-2]
    assert [float(r["alpha"]) for r in rows] == [1e-5, 1e-4, 1e-3, 1e-2]
    assert {r["param"] for r in rows} == {"alpha"} and {r["file"] for r in rows} == {str(CONV2)}
    for name in ("in_mean", "out_mean", "out_std", "in_rms_contrast", "out_rms_contrast",
                 "out_michelson_contrast", "in_hoyer_sparsity", "out_hoyer_sparsity",
                 "in_channel_dominance", "out_channel_dominance", "gain_min", "gain_max",
                 "divisor_min", "divisor_max"):
        assert name in rows[0], name
    # more alpha, more inhibition: the smallest gain falls and the divisor grows
    gain_min = [float(r["gain_min"]) for r in rows]
    d_max = [float(r["divisor_max"]) for r in rows]
    assert all(a > b for a, b in zip(gain_min, gain_min[1:], strict=False))
    assert all(a < b for a, b in zip(d_max, d_max[1:], strict=False))


def test_size_sweep_default_convention() -> None:
    doc = sweep_json(CONV2, "--param", "size", "1:9:5")
    assert doc["values"] == [1, 3, 5, 7, 9]
    assert all(isinstance(v, int) for v in doc["values"])
    sizes = [r["settings"]["size"] for r in doc["arrays"][0]["rows"]]
    assert sizes == [1, 3, 5, 7, 9]


def test_size_sweep_even_sizes_rejected_by_caffe() -> None:
    result = run("sweep", CONV2, "--param", "size", "1:6:6", "--convention", "caffe")
    assert result.exit_code == 2
    err = stderr_of(result)
    assert "even" in err and "size=2" in err and "size=4" in err and "size=6" in err
    assert "size=3" not in err
    ok = run("sweep", CONV2, "--param", "size", "1,3,5", "--convention", "caffe", "-q")
    assert ok.exit_code == 0, stderr_of(ok)


@pytest.mark.parametrize(
    ("param", "spec", "message"),
    [
        ("beta", "1:2", "start:stop:count"),
        ("beta", "a:b:3", "not a number"),
        ("beta", "0:1:0", "count"),
        ("beta", "0:1:x", "count"),
        ("alpha", "log:0:1e-2:3", "positive"),
        ("alpha", "log:1,2", "log"),
        ("beta", "1,,2", "empty"),
        ("size", "3:8:4", "whole number"),
        ("size", "0,1", ">= 1"),
        ("k", "-1,1", "k must be >= 0"),
        ("gamma", "1,2", "gamma"),
    ],
)
def test_bad_spec_is_a_usage_error(param: str, spec: str, message: str) -> None:
    result = run("sweep", CONV2, "--param", param, spec)
    assert result.exit_code == 2
    assert message in stderr_of(result)


def test_size_sweep_with_size_option_is_a_usage_error() -> None:
    result = run("sweep", CONV2, "--param", "size", "1,3", "--size", "5")
    assert result.exit_code == 2 and "--size" in stderr_of(result)


def test_json_and_csv_together_is_a_usage_error() -> None:
    assert run("sweep", CONV2, "--param", "beta", "1,2", "--json", "--csv").exit_code == 2


def test_missing_input_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.npy"
    result = run("sweep", missing, "--param", "beta", "1,2")
    assert result.exit_code == 1
    lines = stderr_of(result).strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and lines[0].startswith("error:")


def test_json_structure_image() -> None:
    doc = sweep_json(ASTRONAUT, "--param", "k", "1,2")
    assert list(doc) == ["schema", "file", "param", "values", "settings", "arrays"]
    (arr,) = doc["arrays"]
    assert arr["layout"] == "HWC" and arr["channel_axis"] == 2
    assert set(arr["in"]) >= {"shape", "overall", "channels", "channel_dominance"}
    assert len(arr["rows"]) == 2
    row = arr["rows"][0]
    assert list(row) == ["value", "settings", "out", "divisor", "gain"]
    assert len(row["out"]["channels"]) == 3
    assert list(row["divisor"]) == list(row["gain"]) == ["min", "max", "mean"]


def test_npz_sweeps_every_array(tmp_path: Path) -> None:
    x = np.load(CONV2)
    src = tmp_path / "two.npz"
    np.savez(src, first=x[:, :16], second=x[:, 16:40])
    doc = sweep_json(src, "--param", "beta", "0.5,1")
    assert [a["array"] for a in doc["arrays"]] == ["first", "second"]
    doc = sweep_json(src, "--param", "beta", "0.5,1", "--key", "second")
    assert [a["array"] for a in doc["arrays"]] == ["second"]


def test_stdin_input() -> None:
    result = run("sweep", "-", "--param", "beta", "0.5,1", "--csv", "-q",
                 input=CAMERA.read_bytes())
    assert result.exit_code == 0, stderr_of(result)
    rows = list(csv.DictReader(io.StringIO(stdout_of(result))))
    assert [r["file"] for r in rows] == ["<stdin>", "<stdin>"]


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def test_panel_array(tmp_path: Path) -> None:
    panel = tmp_path / "sweep.png"
    result = run("sweep", CONV2, "--param", "beta", "0.25:1.5:6", "--panel", panel,
                 "--panel-channel", "3")
    assert result.exit_code == 0, stderr_of(result)
    assert "panel written" in stderr_of(result)
    px = _png(panel)
    h, w = px.shape[:2]
    # input + 6 settings, 27x27 maps enlarged to >= 110 px, two rows
    assert 7 * 110 < w <= 2400 and 2 * 110 < h < 1200
    assert px.var() > 0 and len(np.unique(px.reshape(-1, 3), axis=0)) > 20


def test_panel_image_and_overwrite(tmp_path: Path) -> None:
    panel = tmp_path / "sweep.png"
    args = ("sweep", ASTRONAUT, "--param", "size", "1,3,5", "--mode", "within", "--range",
            "byte", "--alpha", "1e-3", "--panel", panel, "-q")
    assert run(*args).exit_code == 0
    px = _png(panel)
    assert px.shape[1] <= 2400 and px.var() > 0
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 200  # colour photographs
    again = run(*args)
    assert again.exit_code == 1
    assert str(panel) in stderr_of(again) and "already exists" in stderr_of(again)
    assert run(*args, "--overwrite").exit_code == 0


def test_panel_bad_channel_and_suffix(tmp_path: Path) -> None:
    result = run("sweep", CONV2, "--param", "beta", "1,2", "--panel", tmp_path / "p.png",
                 "--panel-channel", "256")
    assert result.exit_code == 1
    assert str(CONV2) in stderr_of(result) and "256" in stderr_of(result)
    assert not (tmp_path / "p.png").exists()
    result = run("sweep", CONV2, "--param", "beta", "1,2", "--panel", tmp_path / "p.jpg")
    assert result.exit_code == 2


def test_many_settings_wrap_within_width(tmp_path: Path) -> None:
    panel = tmp_path / "many.png"
    result = run("sweep", CAMERA, "--param", "beta", "0.1:2:20", "--panel", panel, "-q")
    assert result.exit_code == 0, stderr_of(result)
    assert _png(panel).shape[1] <= 2400


@pytest.mark.skipif(not LRN_EXE.exists(), reason="the lrn script is not installed next to python")
def test_real_executable() -> None:
    proc = subprocess.run(
        [str(LRN_EXE), "sweep", str(CONV2), "--param", "beta", "0.5,1", "--csv", "-q"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"},
    )
    assert proc.returncode == 0, proc.stderr
    assert len(list(csv.DictReader(io.StringIO(proc.stdout)))) == 2
    bad = subprocess.run([str(LRN_EXE), "sweep", str(CONV2), "--param", "beta", "1:2"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2


# --------------------------------------------------------------------------- library


def test_parse_sweep() -> None:
    assert parse_sweep("beta", "0.25:1.5:6") == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    assert parse_sweep("alpha", "log:1e-5:1e-2:4") == [1e-5, 1e-4, 1e-3, 1e-2]
    assert parse_sweep("k", "2, 1 ,0.5") == [2.0, 1.0, 0.5]
    assert parse_sweep("BETA", "0.1:0.3:3") == [0.1, 0.2, 0.3]  # no 0.30000000000000004
    assert parse_sweep("size", "1:9:5") == [1, 3, 5, 7, 9]
    assert parse_sweep("size", "log:1:16:5") == [1, 2, 4, 8, 16]
    assert parse_sweep("size", "5") == [5]
    assert parse_sweep("beta", "0.5:0.5:1") == [0.5]
    for param, spec in [("beta", "1:2"), ("beta", ""), ("size", "2.5"), ("size", "-1,1"),
                        ("beta", "inf,1"), ("beta", "0:1:101"), ("beta", "0:1:1"),
                        ("depth", "1,2")]:
        with pytest.raises(ParameterError):
            parse_sweep(param, spec)


def test_check_sweep() -> None:
    check_sweep(Settings(convention="caffe"), "size", [1, 3, 5])
    with pytest.raises(ParameterError, match="size=2.*size=4"):
        check_sweep(Settings(convention="caffe"), "size", [1, 2, 3, 4])
    with pytest.raises(ParameterError, match="alpha=-1"):
        check_sweep(Settings(), "alpha", [1e-4, -1.0])
    with pytest.raises(ParameterError):
        check_sweep(Settings(), "beta", [])


def test_run_sweep_keeps_only_what_is_asked() -> None:
    x = np.load(CONV2)[:, :32]
    item = Item("", x, "NCHW", 1, False)
    rows = run_sweep(item, Settings(), "beta", [0.5, 1.0])
    assert [r.value for r in rows] == [0.5, 1.0] and all(r.output is None for r in rows)
    assert rows[0].before is rows[1].before
    assert rows[0].label == "beta=0.5" and rows[1].settings.beta == 1.0
    assert rows[1].after.overall.mean < rows[0].after.overall.mean
    kept = run_sweep(item, Settings(), "size", [3, 5], keep=lambda y: y[0, 0].copy())
    assert all(r.output.shape == (27, 27) for r in kept)
    record = kept[0].record()
    assert record["param"] == "size" and record["value"] == 3 and record["size"] == 3
    assert "out_mean" in record and "gain_min" in record


def test_sweep_traceback_only_with_the_option(tmp_path: Path) -> None:
    """An unreadable input: one error line; with --traceback also the real traceback (the
    exception is handled by then, so printing 'the current one' gave 'NoneType: None')."""
    bad = tmp_path / "bad.npy"
    np.save(bad, np.ones(2, np.complex64))
    r = run("sweep", bad, "--param", "size", "3,5")
    assert r.exit_code == 1 and "Traceback" not in stderr_of(r)
    assert "complex64 arrays are not supported" in stderr_of(r)
    r = run("sweep", bad, "--param", "size", "3,5", "--traceback")
    err = stderr_of(r)
    assert r.exit_code == 1 and "Traceback (most recent call last)" in err
    assert "NoneType: None" not in err
