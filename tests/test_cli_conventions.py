"""``lrn conventions`` (list, show one, translate) through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import error_lines

from lrn_cli.conventions import CONVENTIONS, translate
from lrn_cli.reference import reference_lrn

NAMES = ["default", "pytorch", "tensorflow", "caffe", "onnx", "onnxruntime", "opencv", "mxnet",
         "onednn", "cudnn", "cuda-convnet", "chainer", "paddle", "paddle-legacy", "ncnn", "alexnet"]


def test_there_are_16_conventions():
    assert list(CONVENTIONS) == NAMES


def test_ncnn_even_windows_follow_its_source():
    """ncnn's lrn.cpp: across sums p = q-n/2 .. q+n/2 (n+1 taps for even n) with alpha/n;
    within pads n/2 before and n-n/2-1 after with alpha/n², bias as k."""
    from lrn_cli import lrn

    x = np.arange(1.0, 7.0).reshape(1, 6, 1, 1)
    sq = x[0, :, 0, 0] ** 2
    want = [x[0, c, 0, 0] * (1.5 + 1.0 / 4 * sq[max(0, c - 2):c + 3].sum()) ** -0.75
            for c in range(6)]
    got = lrn(x, 4, 1.0, 0.75, 1.5, convention="ncnn")
    np.testing.assert_allclose(got[0, :, 0, 0], want, rtol=1e-14)
    plane = np.arange(1.0, 26.0).reshape(1, 1, 5, 5)
    padded = np.pad(plane[0, 0] ** 2, ((2, 1), (2, 1)))
    within = [[plane[0, 0, i, j] * (1.5 + 1.0 / 16 * padded[i:i + 4, j:j + 4].sum()) ** -0.75
               for j in range(5)] for i in range(5)]
    got = lrn(plane, 4, 1.0, 0.75, 1.5, convention="ncnn", mode="within")
    np.testing.assert_allclose(got[0, 0], within, rtol=1e-14)


def test_list_shows_every_convention(lrn):
    r = lrn("conventions")
    assert r.exit_code == 0, r.stderr
    first_cells = [line.split()[0] for line in r.stdout.splitlines()
                   if line.strip() and line.split()[0] in NAMES]
    assert first_cells == NAMES
    assert "rejected" in r.stdout and "alpha/n" in r.stdout
    assert r.stderr == ""


def test_list_names_survive_a_narrow_terminal(lrn):
    r = lrn("conventions", env={"COLUMNS": "80"})
    assert r.exit_code == 0
    cells = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert set(NAMES) <= cells


def test_list_json(lrn):
    r = lrn("conventions", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == ["schema", "conventions"] and doc["schema"] == 1
    assert [c["name"] for c in doc["conventions"]] == NAMES
    by_name = {c["name"]: c for c in doc["conventions"]}
    caffe = by_name["caffe"]
    assert caffe["modes"]["within"]["k"] == "ignored (always 1)"
    assert caffe["modes"]["across"]["even_size"] == "rejected"
    assert caffe["modes"]["across"]["alpha"] == "alpha/n"
    assert caffe["parameters"]["size"] == "local_size"
    assert by_name["tensorflow"]["size_is_radius"] is True
    assert by_name["tensorflow"]["layout"] == "NHWC" and by_name["caffe"]["layout"] == "NCHW"
    assert by_name["tensorflow"]["defaults"] == {"size": 5, "alpha": 1.0, "beta": 0.5, "k": 1.0}
    assert by_name["pytorch"]["modes"]["across"]["even_size"] == "accepted"
    assert by_name["cudnn"]["limits"]["size_max"] == 16
    assert set(by_name["default"]["modes"]) == {"across", "within"}
    assert by_name["default"]["defaults"] == {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}


def test_show_caffe(lrn):
    r = lrn("conventions", "caffe")
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert out.startswith("caffe: Caffe LRN layer")
    assert "WITHIN_CHANNEL ignores k" in out
    assert "k ignored (always 1)" in out
    assert "even n: rejected" in out
    assert "local_size=5, alpha=1, beta=0.75, k=1" in out
    assert "lrn_layer.cpp" in out


@pytest.mark.parametrize("name", NAMES)
def test_show_every_convention(lrn, name):
    r = lrn("conventions", name)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"{name}: {CONVENTIONS[name].title}")
    assert "defaults:" in r.stdout and "channel axis:" in r.stdout
    r = lrn("conventions", "--json", name)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["name"] == name


def test_show_tensorflow_says_radius(lrn):
    r = lrn("conventions", "tensorflow")
    assert "size is a radius r; n = 2r+1" in r.stdout
    assert "depth_radius=5" in r.stdout and "last (NHWC)" in r.stdout


def test_show_accepts_aliases_and_case(lrn):
    for alias in ("tf", "TensorFlow", "TF"):
        r = lrn("conventions", alias)
        assert r.exit_code == 0, alias
        assert r.stdout.startswith("tensorflow:")


def test_show_unknown_name(lrn):
    r = lrn("conventions", "nope")
    assert r.exit_code == 2
    assert "unknown convention 'nope'" in r.stderr
    assert "caffe" in r.stderr  # lists the known names
    assert "Traceback" not in r.stderr


def test_unknown_name_usage_does_not_mention_hidden_show(lrn):
    r = lrn("conventions", "nope")
    assert "conventions show" not in r.stderr


def test_show_json_after_the_name(lrn):
    r = lrn("conventions", "caffe", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc)[:2] == ["schema", "name"] and doc["name"] == "caffe"


# --------------------------------------------------------------------------- translate


def test_translate_tensorflow_to_caffe(lrn):
    r = lrn("conventions", "translate", "--from", "tensorflow", "--to", "caffe",
            "--depth-radius", "2", "--alpha", "2e-5")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "local_size=5 alpha=0.0001 beta=0.5 k=1\n"
    assert "transpose the tensor" in r.stderr  # layout note, on stderr
    r = lrn("conventions", "translate", "--from", "tensorflow", "--to", "caffe", "--size", "5",
            "--alpha", "2e-5", "--beta", "0.75", "-k", "2")
    assert r.stdout == "local_size=5 alpha=0.0001 beta=0.75 k=2\n"


def test_translate_json(lrn):
    r = lrn("conventions", "--json", "translate", "--from", "tensorflow", "--to", "caffe",
            "--depth-radius", "2", "--alpha", "2e-5")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc)[0] == "schema" and doc["schema"] == 1
    assert doc["from"] == "tensorflow" and doc["to"] == "caffe" and doc["mode"] == "across"
    assert doc["params"]["local_size"] == 5
    assert doc["params"]["alpha"] == pytest.approx(1e-4, rel=1e-12)
    assert doc["params"]["beta"] == 0.5 and doc["params"]["k"] == 1.0
    assert any("transpose" in note for note in doc["notes"])


def test_translate_json_after_the_subcommand(lrn):
    r = lrn("conventions", "translate", "--from", "tensorflow", "--to", "caffe",
            "--depth-radius", "2", "--alpha", "2e-5", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["params"]["local_size"] == 5


def test_translate_into_tensorflow_gives_a_radius(lrn):
    r = lrn("conventions", "translate", "--from", "caffe", "--to", "tensorflow", "-n", "5",
            "--alpha", "1e-4", "--beta", "0.75", "-k", "1")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "depth_radius=2 alpha=2e-05 beta=0.75 bias=1\n"


def test_translate_even_size_into_a_framework_that_rejects_it(lrn):
    r = lrn("conventions", "translate", "--from", "pytorch", "--to", "caffe", "--size", "4")
    assert r.exit_code == 1
    assert r.stdout == ""
    lines = error_lines(r.stderr)
    assert len(lines) >= 1
    text = " ".join(r.stderr.split())  # the reason, however the console wrapped it
    assert "no exact translation from pytorch to caffe" in text
    assert "rejects even sizes" in text
    assert "[c-2, c+1]" in text


def test_translate_reason_is_one_line(lrn):
    r = lrn("conventions", "translate", "--from", "pytorch", "--to", "caffe", "--size", "4")
    [line] = error_lines(r.stderr)
    assert line.endswith("(it rejects even sizes)")


def test_translate_k_into_a_framework_that_ignores_it(lrn):
    r = lrn("conventions", "translate", "--from", "default", "--to", "caffe", "--mode",
            "within", "-n", "3", "-k", "2")
    assert r.exit_code == 1
    assert "ignores k" in " ".join(r.stderr.split())
    r = lrn("conventions", "translate", "--from", "default", "--to", "caffe", "--mode",
            "within", "-n", "3", "-k", "1", "--alpha", "1e-4", "--beta", "0.75")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "local_size=3 alpha=0.0001 beta=0.75 k=1\n"
    assert "ignores k" in r.stderr


def test_translate_mode_the_target_lacks(lrn):
    r = lrn("conventions", "translate", "--from", "default", "--to", "pytorch", "--mode",
            "within", "-n", "3")
    assert r.exit_code == 1
    assert "no within-channel LRN" in " ".join(r.stderr.split())


def test_translate_uses_source_defaults(lrn):
    # TensorFlow's own defaults: depth_radius=5, alpha=1, beta=0.5, bias=1
    r = lrn("conventions", "translate", "--from", "tensorflow", "--to", "pytorch")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "size=11 alpha=11 beta=0.5 k=1\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "onednn", "--to", "caffe"], "has no default size"),
    (["--from", "onednn", "--to", "caffe", "-n", "5"], "has no default alpha"),
    (["--from", "pytorch", "--to", "caffe", "-n", "5", "--depth-radius", "2"],
     "give --size or --depth-radius, not both"),
    (["--from", "caffe", "--to", "pytorch", "-n", "4"], "rejects even window sizes"),
    (["--from", "nope", "--to", "caffe"], "Invalid value for '--from'"),
    (["--to", "caffe"], "Missing option '--from'"),
    (["--from", "caffe"], "Missing option '--to'"),
])
def test_translate_usage_errors(lrn, args, message):
    r = lrn("conventions", "translate", *args)
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr


@pytest.mark.parametrize(("source", "target", "size"), [
    ("tensorflow", "caffe", 5),
    ("caffe", "tensorflow", 7),
    ("caffe", "alexnet", 3),
    ("pytorch", "cuda-convnet", 4),  # both put the extra tap before c
    ("onnx", "cudnn", 4),  # both put it after c
    ("onednn", "default", 4),  # oneDNN's 4 sums 3 taps: default n=3 with alpha scaled
    ("alexnet", "caffe", 4),  # AlexNet's literal 4 sums 5 taps
])
def test_translation_really_computes_the_same(lrn, tmp_path, acts, source, target, size):
    """Apply with the source's parameters and with the translated ones: same numbers."""
    alpha, beta, k = 3e-3, 0.75, 1.0
    r = lrn("conventions", "--json", "translate", "--from", source, "--to", target, "-n", size,
            "--alpha", alpha, "--beta", beta, "-k", k)
    assert r.exit_code == 0, r.stderr
    params = json.loads(r.stdout)["params"]
    names = CONVENTIONS[target].param_names
    p = {ours: params[theirs] for ours, theirs in names.items()}
    np.save(tmp_path / "x.npy", acts)
    size_opt = (["--depth-radius", p["size"]] if CONVENTIONS[target].size_is_radius
                else ["-n", p["size"]])
    r1 = lrn("apply", "x.npy", "-o", "a.npy", "--convention", source, "-n", size,
             "--alpha", alpha, "--beta", beta, "-k", k)
    r2 = lrn("apply", "x.npy", "-o", "b.npy", "--convention", target, *size_opt,
             "--alpha", repr(p["alpha"]), "--beta", p["beta"], "-k", p["k"])
    assert r1.exit_code == r2.exit_code == 0, (r1.stderr, r2.stderr)
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(
        a, reference_lrn(acts, size, alpha, beta, k, convention=source), rtol=3e-6)


@pytest.mark.parametrize(("source", "target", "size"), [
    ("pytorch", "onnx", 4),  # [c-2, c+1] vs [c-1, c+2]
    ("onnx", "chainer", 6),
    ("pytorch", "tensorflow", 2),
])
def test_no_exact_translation_agrees_with_the_library(lrn, source, target, size):
    r = lrn("conventions", "translate", "--from", source, "--to", target, "-n", size,
            "--alpha", "1e-3", "--beta", "0.75", "-k", "1")
    assert r.exit_code == 1
    assert r.stdout == ""
    with pytest.raises(ValueError) as exc:
        translate(source, target, size=size, alpha=1e-3, beta=0.75, k=1.0)
    assert " ".join(str(exc.value).split()) in " ".join(r.stderr.split())
