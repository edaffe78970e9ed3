"""``lrn stats`` and ``lrn compare`` through the real CLI."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from conftest import ARRAYS, IMAGES, error_lines
from PIL import Image

import lrn_cli
from lrn_cli.cli.output import fmt
from lrn_cli.compare import compare_arrays
from lrn_cli.reference import reference_lrn
from lrn_cli.stats import STAT_NAMES, array_stats

STATS_COLUMNS = ["schema", "file", "array", "scope", *STAT_NAMES, "nonfinite", "count",
                 "channel_dominance"]


# --------------------------------------------------------------------------- stats


def test_stats_table(lrn, npy, acts):
    src = npy("x.npy", acts)
    r = lrn("stats", src)
    assert r.exit_code == 0, r.stderr
    for label in ("mean", "std", "min", "max", "RMS contrast", "Michelson contrast",
                  "Hoyer sparsity", "channel dominance"):
        assert label in r.stdout, label
    st = array_stats(acts, 1)
    assert "NCHW" in r.stdout and "2x7x5x6" in r.stdout and "float32" in r.stdout
    for value in (st.overall.mean, st.overall.std, st.overall.max, st.overall.rms_contrast,
                  st.overall.michelson_contrast, st.overall.hoyer_sparsity,
                  st.channels[6].mean, st.channel_dominance):
        assert fmt(value) in r.stdout
    assert [line.split()[0] for line in r.stdout.splitlines() if line.strip().startswith("c")
            and line.split()[0][1:].isdigit()] == [f"c{i}" for i in range(7)]
    assert "assumed layout NCHW" in r.stderr and "assumed" not in r.stdout


def test_stats_does_not_normalize(lrn, npy, tmp_path, acts):
    src = npy("x.npy", acts)
    before = (tmp_path / src).read_bytes()
    r = lrn("stats", src, "--json")
    assert r.exit_code == 0
    assert (tmp_path / src).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
    assert json.loads(r.stdout)["files"][0]["stats"]["overall"]["max"] == float(acts.max())


def test_stats_json_equals_library(lrn, npy, acts):
    src = npy("x.npy", acts)
    nhwc = npy("nhwc.npy", np.ascontiguousarray(acts.transpose(0, 2, 3, 1)))
    r = lrn("stats", src, nhwc, "--layout", "NCHW", "--json")
    assert r.exit_code == 0, r.stderr
    docs = json.loads(r.stdout)["files"]
    assert [d["file"] for d in docs] == [src, nhwc]
    assert docs[0]["layout"] == "NCHW" and docs[0]["array"] is None
    assert docs[0]["stats"] == array_stats(acts, 1).as_dict()
    r = lrn("stats", nhwc, "--layout", "NHWC", "--json")
    doc = json.loads(r.stdout)["files"][0]
    assert doc["stats"] == array_stats(np.load(nhwc), 3).as_dict()
    # the same per-channel figures whatever the layout
    for a, b in zip(doc["stats"]["channels"], array_stats(acts, 1).as_dict()["channels"],
                    strict=True):
        assert a == pytest.approx(b, rel=1e-12)


def test_stats_of_images_and_npz(lrn, tmp_path, acts):
    r = lrn("stats", IMAGES / "astronaut_rgb.png", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)["files"][0]
    with Image.open(IMAGES / "astronaut_rgb.png") as im:
        px = np.asarray(im, dtype=np.float32) / np.float32(255)
    assert doc["layout"] == "HWC"
    assert doc["stats"] == array_stats(px, 2).as_dict()
    r = lrn("stats", IMAGES / "coffee_gray16.png", "--json", "--range", "raw")
    with Image.open(IMAGES / "coffee_gray16.png") as im:
        codes = np.asarray(im)
    overall = json.loads(r.stdout)["files"][0]["stats"]["overall"]
    assert overall["max"] == float(codes.max()) and overall["min"] == float(codes.min())
    np.savez(tmp_path / "z.npz", a=acts, b=acts[:, :2] * 3)
    r = lrn("stats", "z.npz", "--json")
    docs = json.loads(r.stdout)["files"]
    assert [d["array"] for d in docs] == ["a", "b"]
    assert docs[1]["stats"] == array_stats(acts[:, :2] * 3, 1).as_dict()
    r = lrn("stats", "z.npz", "--key", "b", "--json")
    assert [d["array"] for d in json.loads(r.stdout)["files"]] == ["b"]


def test_stats_of_a_folder(lrn, npy, tmp_path, acts):
    npy("d/a.npy", acts)
    npy("d/sub/b.npy", acts[:, :2])
    (tmp_path / "d" / "notes.txt").write_text("skipped")
    r = lrn("stats", "d", "--json")
    assert r.exit_code == 0, r.stderr
    docs = json.loads(r.stdout)["files"]
    assert [d["file"] for d in docs] == ["d/a.npy", "d/sub/b.npy"]
    assert docs[1]["stats"] == array_stats(acts[:, :2], 1).as_dict()


def test_stats_csv(lrn, npy, acts):
    src = npy("x.npy", acts)
    r = lrn("stats", src, "--csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == STATS_COLUMNS
    assert [row["scope"] for row in rows] == ["all"] + [f"c{i}" for i in range(7)]
    st = array_stats(acts, 1)
    for name in STAT_NAMES:
        assert float(rows[0][name]) == getattr(st.overall, name)
        assert float(rows[3][name]) == getattr(st.channels[2], name)
    assert int(rows[0]["count"]) == acts.size and int(rows[0]["nonfinite"]) == 0
    assert float(rows[0]["channel_dominance"]) == st.channel_dominance
    assert rows[1]["channel_dominance"] == ""
    assert all(row["file"] == src for row in rows)


def test_stats_counts_nonfinite(lrn, npy):
    x = np.array([[1.0, np.nan, 3.0, np.inf]], np.float32)
    r = lrn("stats", npy("nan.npy", x), "--csv")
    top = next(csv.DictReader(io.StringIO(r.stdout)))
    assert top["nonfinite"] == "2" and float(top["max"]) == 3.0
    r = lrn("stats", "nan.npy")
    assert "2 non-finite values ignored" in r.stdout
    # 33 samples: the statistics' fixed 32 chunks of 2 leave the last chunks empty
    x = np.ones((33, 3, 4, 4), np.float32)
    x[5, 1, 2, 2] = np.nan
    r = lrn("stats", npy("batch33.npy", x))
    assert "1 non-finite values ignored" in r.stdout


def test_stats_layout_options(lrn, npy, acts):
    chw = npy("chw.npy", acts[0])
    r = lrn("stats", chw, "--json")
    assert "assumed layout CHW" in r.stderr
    assert json.loads(r.stdout)["files"][0]["stats"]["channel_axis"] == 0
    r = lrn("stats", chw, "--channel-axis", "-1", "--json")
    doc = json.loads(r.stdout)["files"][0]
    assert doc["stats"]["channel_axis"] == 2 and len(doc["stats"]["channels"]) == 6
    plane = npy("hw.npy", acts[0, 0])
    r = lrn("stats", plane, "--mode", "within", "--json")
    doc = json.loads(r.stdout)["files"][0]
    assert doc["layout"] == "HW" and doc["stats"]["channels"] == []
    r = lrn("stats", plane, "--json")
    assert json.loads(r.stdout)["files"][0]["layout"] == "NC"
    r = lrn("stats", chw, "--layout", "CHW", "--channel-axis", "0")
    assert r.exit_code == 2


def test_stats_channels_option(lrn, npy, acts):
    src = npy("x.npy", acts)
    r = lrn("stats", src, "--show-channels", 2)
    assert "5 more channels" in r.stdout
    assert " c1 " in r.stdout and " c2 " not in r.stdout


def test_stats_quiet(lrn, npy, acts):
    r = lrn("stats", npy("x.npy", acts), "-q")
    assert r.exit_code == 0 and r.stderr == ""


def test_stats_stdin(lrn, npy, tmp_path, acts):
    data = (tmp_path / npy("x.npy", acts)).read_bytes()
    r = lrn("stats", "-", "--json", input=data)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)["files"][0]
    assert doc["file"] == "<stdin>" and doc["stats"] == array_stats(acts, 1).as_dict()


def test_stats_errors(lrn, npy, tmp_path, acts):
    good = npy("good.npy", acts)
    (tmp_path / "bad.npy").write_bytes((tmp_path / good).read_bytes()[:-5])
    r = lrn("stats", good, "bad.npy", "missing.npy", "--csv")
    assert r.exit_code == 1
    lines = error_lines(r.stderr)
    assert len(lines) == 2
    assert any(line.startswith("error: bad.npy: truncated") for line in lines)
    assert any(line.startswith("error: missing.npy: no such file") for line in lines)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {row["file"] for row in rows} == {good}  # the good file is still reported
    assert "Traceback" not in r.stderr
    r = lrn("stats", "bad.npy", "--traceback")
    assert r.exit_code == 1 and "Traceback (most recent call last)" in r.stderr


def test_stats_usage_errors(lrn, npy, acts):
    src = npy("x.npy", acts)
    r = lrn("stats", src, "--json", "--csv")
    assert r.exit_code == 2 and "use just one of --json, --csv" in r.stderr
    assert lrn("stats").exit_code == 2
    assert lrn("stats", src, "--range", "kilo").exit_code == 2


def test_stats_of_lrn_output_equals_apply_output_figures(lrn, tmp_path):
    src = ARRAYS / "conv2_relu_nchw.npy"
    r = lrn("apply", src, "-o", "out.npy", "--json")
    applied = json.loads(r.stdout)["files"][0]["arrays"][0]
    r = lrn("stats", "out.npy", src, "--json")
    out_doc, in_doc = json.loads(r.stdout)["files"]
    assert out_doc["stats"] == applied["out"]
    assert in_doc["stats"] == applied["in"]


# --------------------------------------------------------------------------- compare


def test_compare_identical(lrn, npy, acts):
    a, b = npy("a.npy", acts), npy("b.npy", acts.copy())
    r = lrn("compare", a, b)
    assert r.exit_code == 0, r.stderr
    assert "agree within rtol=1e-05, atol=1e-06" in r.output
    assert "max |A-B|" in r.stdout and "max ulps" in r.stdout and "0 of 420" in r.stdout
    for c in range(7):
        assert f"c{c}" in r.stdout


def test_compare_perturbed_beyond_rtol_differs(lrn, npy, acts):
    b = acts.copy()
    b[1, 4, 2, 3] = 50.0
    pert = b.copy()
    pert[1, 4, 2, 3] *= 1.001  # 1e-3 relative: beyond the default rtol=1e-5
    a_path, b_path = npy("a.npy", pert), npy("b.npy", b)
    r = lrn("compare", a_path, b_path)
    assert r.exit_code == 1
    assert "DIFFER within rtol=1e-05, atol=1e-06; worst at (1, 4, 2, 3)" in r.stderr
    assert "1 of 420" in r.stdout
    r = lrn("compare", a_path, b_path, "--rtol", "2e-3")
    assert r.exit_code == 0
    assert "agree within rtol=0.002" in r.stderr
    r = lrn("compare", a_path, b_path, "--rtol", "0", "--atol", "0.1")
    assert r.exit_code == 0
    r = lrn("compare", a_path, b_path, "--rtol", "0", "--atol", "0.01")
    assert r.exit_code == 1


def test_compare_json(lrn, npy, acts):
    b = acts.copy()
    a = acts.copy()
    a[0, 2, 1, 1] += 1.0
    pa, pb = npy("a.npy", a), npy("b.npy", b)
    r = lrn("compare", pa, pb, "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    ref = compare_arrays(a, b, channel_axis=1, rtol=1e-5, atol=1e-6).as_dict()
    assert doc == {"schema": 1, "a_file": pa, "b_file": pb, "layout": "NCHW", **ref}
    assert list(doc)[:3] == ["schema", "a_file", "b_file"]
    assert doc["agree"] is False
    assert doc["overall"]["mismatched"] == 1 and doc["overall"]["count"] == acts.size
    assert doc["overall"]["max_abs"] == pytest.approx(1.0, rel=1e-5)
    assert doc["worst_index"] == [0, 2, 1, 1]
    assert doc["channels"][2]["mismatched"] == 1 and doc["channels"][3]["mismatched"] == 0
    assert doc["dtype"] == "float32" and doc["shape"] == list(acts.shape)
    for key in ("max_abs", "max_rel", "max_ulp", "mismatched", "count"):
        assert key in doc["overall"]


def test_compare_csv(lrn, npy, acts):
    r = lrn("compare", npy("a.npy", acts), npy("b.npy", acts), "--csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == ["schema", "a_file", "b_file", "scope", "max_abs", "max_rel",
                             "max_ulp", "mismatched", "count"]
    assert rows[0]["a_file"] == "a.npy" and rows[0]["b_file"] == "b.npy"
    assert [row["scope"] for row in rows] == ["all"] + [f"c{i}" for i in range(7)]
    assert rows[0]["count"] == str(acts.size) and rows[1]["count"] == str(acts.size // 7)


def test_compare_shape_mismatch(lrn, npy, acts):
    r = lrn("compare", npy("a.npy", acts), npy("b.npy", acts[:, :3]))
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert "a.npy" in line and "b.npy" in line and "(2, 7, 5, 6)" in line
    assert "(2, 3, 5, 6)" in line
    assert "Traceback" not in r.stderr


def test_compare_float64_reference_and_ulps(lrn, npy, acts):
    ours = lrn_cli.lrn(acts, 5, 1e-2)
    theirs = reference_lrn(acts, 5, 1e-2)
    r = lrn("compare", npy("ours.npy", ours), npy("ref.npy", theirs), "--json")
    assert r.exit_code == 0, r.stdout
    doc = json.loads(r.stdout)
    assert doc["dtype"] == "float64"
    expected = compare_arrays(ours, theirs, channel_axis=1)
    assert doc["overall"]["max_ulp"] == expected.overall.max_ulp
    r = lrn("compare", "ours.npy", npy("ref32.npy", theirs.astype(np.float32)), "--json")
    assert json.loads(r.stdout)["dtype"] == "float32"
    assert json.loads(r.stdout)["overall"]["max_ulp"] <= 4


def test_compare_applied_output_against_a_framework_dump(lrn, tmp_path):
    """The intended workflow: our output vs another framework's, in its layout."""
    x = np.load(ARRAYS / "tf_example_nhwc.npy")
    np.save(tmp_path / "tf_out.npy",
            reference_lrn(x, 5, 1.0, 0.75, 1.0, convention="tensorflow", channel_axis=-1)
            .astype(np.float32))
    lrn("apply", ARRAYS / "tf_example_nhwc.npy", "-o", "ours.npy", "--convention",
        "tensorflow", "--depth-radius", 2, "--alpha", 1, "--beta", 0.75, "-k", 1,
        "--layout", "NHWC")
    r = lrn("compare", "ours.npy", "tf_out.npy", "--layout", "NHWC", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["layout"] == "NHWC" and len(doc["channels"]) == 4


def test_compare_images(lrn, tmp_path):
    src = IMAGES / "camera_gray.png"
    assert lrn("compare", src, src).exit_code == 0
    with Image.open(src) as im:
        arr = np.asarray(im).copy()
    arr[0, 0] = 255 - arr[0, 0]
    Image.fromarray(arr).save(tmp_path / "changed.png")
    r = lrn("compare", "changed.png", src)
    assert r.exit_code == 1 and "DIFFER" in r.stderr


def test_compare_npz_needs_a_key(lrn, tmp_path, acts):
    np.savez(tmp_path / "z.npz", a=acts, b=acts)
    np.save(tmp_path / "a.npy", acts)
    r = lrn("compare", "z.npz", "a.npy")
    assert r.exit_code == 1
    assert "z.npz: holds 2 arrays; pick one with --key" in r.stderr
    r = lrn("compare", "z.npz", "a.npy", "--key", "b")
    assert r.exit_code == 0


def test_compare_input_errors(lrn, npy, tmp_path, acts):
    good = npy("good.npy", acts)
    r = lrn("compare", good, "missing.npy")
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert line.startswith("error: missing.npy: ")
    (tmp_path / "text.png").write_text("no image here")
    r = lrn("compare", "text.png", good)
    assert r.exit_code == 1
    [line] = error_lines(r.stderr)
    assert line.startswith("error: text.png: not an image")
    assert "Traceback" not in r.stderr


def test_compare_layout_range_channels_and_quiet_options(lrn, npy, tmp_path, acts):
    nhwc = np.ascontiguousarray(acts.transpose(0, 2, 3, 1))
    a = npy("a.npy", nhwc)
    r = lrn("compare", a, a, "--channel-axis", "-1", "--json")
    doc = json.loads(r.stdout)
    assert doc["layout"] == "NHWC" and doc["channel_axis"] == 3 and len(doc["channels"]) == 7
    r = lrn("compare", a, a, "--show-channels", "2")
    assert " c1 " in r.stdout and " c2 " not in r.stdout
    assert "more channels" in r.stdout
    r = lrn("compare", a, a, "-q")
    assert r.exit_code == 0 and r.stderr == ""
    gray = np.full((4, 5), 100, np.uint8)
    Image.fromarray(gray).save(tmp_path / "g1.png")
    gray[2, 3] = 101
    Image.fromarray(gray).save(tmp_path / "g2.png")
    assert lrn("compare", "g1.png", "g2.png", "--rtol", "0", "--atol", "0.01").exit_code == 0
    r = lrn("compare", "g1.png", "g2.png", "--rtol", "0", "--atol", "0.01", "--range", "raw")
    assert r.exit_code == 1
    assert lrn("compare", "g1.png", "g2.png", "--rtol", "0", "--atol", "1",
               "--range", "raw").exit_code == 0


def test_compare_traceback_option(lrn, npy, acts):
    good = npy("good.npy", acts)
    r = lrn("compare", good, "missing.npy", "--traceback")
    assert r.exit_code == 1
    assert "Traceback (most recent call last)" in r.stderr


@pytest.mark.parametrize(("opts", "message"), [
    (["--rtol", "-1"], "Invalid value for '--rtol'"),
    (["--atol", "-1"], "Invalid value for '--atol'"),
    (["--json", "--csv"], "use just one of --json, --csv"),
    (["--layout", "NCHW", "--channel-axis", "1"], "give --layout or --channel-axis, not both"),
])
def test_compare_usage_errors(lrn, npy, acts, opts, message):
    a = npy("a.npy", acts)
    r = lrn("compare", a, a, *opts)
    assert r.exit_code == 2
    assert message in r.stderr
    assert lrn("compare", a).exit_code == 2


def test_stats_table_never_cuts_numbers_in_a_narrow_terminal(lrn, npy, acts):
    r = lrn("stats", npy("small.npy", acts / 1e5 + 1e-9), env={"COLUMNS": "80"})
    assert r.exit_code == 0
    assert "…" not in r.stdout
    st = array_stats(np.load("small.npy"), 1)
    assert fmt(st.overall.min) in r.stdout and fmt(st.overall.max) in r.stdout
