"""``lrn explain`` through the real CLI: reports, --json, exit codes, inputs and errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import error_lines, stderr_of, stdout_of

from lrn_cli import lrn as lrn_fn
from lrn_cli.porting.semantics import Semantics


def _acts(shape=(1, 8, 5, 6), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 20.0, size=shape).astype(np.float32)
    x[rng.random(shape) < 0.3] = 0.0
    return x


@pytest.fixture
def pair(npy):
    x = _acts()
    npy("in.npy", x)
    npy("caffe.npy", Semantics.of("caffe", "across", 5, 1e-3, 0.75, 2.0).apply(x))
    npy("ncnn.npy", Semantics.of("ncnn", "across", 5, 1e-3, 0.75, 1.0).apply(x))
    return x


def test_one_output_report(lrn, pair):
    res = lrn("explain", "in.npy", "caffe.npy")
    assert res.exit_code == 0, stderr_of(res)
    out = stdout_of(res)
    assert [line.split() for line in out.splitlines() if line.startswith("verdict")] == [
        ["verdict", "lrn"]]
    assert "across axis 1, window [c-2, c+2] (5 taps), a'=0.0002, k'=2, beta=0.75" in out
    assert "local_size=5 alpha=0.001 beta=0.75 k=2.0" in out  # caffe's own terms
    assert "ignores k" in out  # opencv cannot express k=2


def test_one_output_json(lrn, pair):
    res = lrn("explain", "in.npy", "caffe.npy", "--json")
    assert res.exit_code == 0
    doc = json.loads(stdout_of(res))
    assert doc["schema"] == 1 and doc["verdict"] == "lrn"
    fit = doc["fit"]
    assert (fit["mode"], fit["channel_axis"], fit["window"], fit["taps"]) == ("across", 1,
                                                                            [2, 2], 5)
    assert (fit["alpha_eff"], fit["k_eff"], fit["beta"]) == (2e-4, 2.0, 0.75)
    assert fit["max_ulps"] == 0 and fit["bound"] == "direct"
    assert doc["equivalents"]["caffe"]["params"] == {"local_size": 5, "alpha": 0.001,
                                                     "beta": 0.75, "k": 2.0}
    assert doc["equivalents"]["opencv"]["params"] is None
    assert doc["alternatives"] == [] and doc["unidentifiable"] == []


def test_two_outputs_k_dropped(lrn, pair):
    res = lrn("explain", "in.npy", "caffe.npy", "ncnn.npy")
    assert res.exit_code == 0, stderr_of(res)
    assert "caffe2ncnn" in stdout_of(res) and "k_eff" in stdout_of(res)
    doc = json.loads(stdout_of(lrn("explain", "in.npy", "caffe.npy", "ncnn.npy", "--json")))
    assert doc["schema"] == 1
    assert [d["field"] for d in doc["differences"]] == ["k_eff"]
    d = doc["differences"][0]
    assert (d["reference"], d["candidate"]) == (2.0, 1.0)
    assert doc["reference"]["verdict"] == doc["candidate"]["verdict"] == "lrn"
    assert doc["same_semantics"] is False


def test_two_outputs_candidate_input_in_another_layout(lrn, npy, pair):
    x = pair
    xt = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    npy("in_nhwc.npy", xt)
    npy("tf.npy", lrn_fn(xt, 5, 2e-4, 0.75, 2.0, convention="tensorflow", channel_axis=-1))
    res = lrn("explain", "in.npy", "caffe.npy", "tf.npy", "--candidate-input", "in_nhwc.npy",
              "--layout", "NCHW", "--json")
    assert res.exit_code == 0, stderr_of(res)
    doc = json.loads(stdout_of(res))
    assert [d["field"] for d in doc["differences"]] == ["channel_axis"]
    assert "layout NCHW -> NHWC" in stderr_of(res)


def test_candidate_layout_when_it_cannot_be_told(lrn, npy, pair):
    x = pair
    # the candidate's input is not exactly the input transposed (its own upstream layers)
    xt = np.ascontiguousarray(np.moveaxis(x, 1, -1)) * np.float32(1.001)
    npy("in2.npy", xt)
    npy("tf.npy", lrn_fn(xt, 5, 2e-4, 0.75, 2.0, convention="tensorflow", channel_axis=-1))
    res = lrn("explain", "in.npy", "caffe.npy", "tf.npy", "--candidate-input", "in2.npy",
              "--layout", "NCHW", "--json")
    assert res.exit_code == 0
    assert "cannot be told" in stderr_of(res)
    doc = json.loads(stdout_of(res))
    assert len(doc["candidate"]["tried"]) > 2  # every axis
    res = lrn("explain", "in.npy", "caffe.npy", "tf.npy", "--candidate-input", "in2.npy",
              "--layout", "NCHW", "--candidate-layout", "NHWC", "--json", "-q")
    assert res.exit_code == 0 and stderr_of(res) == ""
    doc = json.loads(stdout_of(res))
    assert doc["candidate"]["tried"] == ["across axis 3", "within axes [1, 2]"]
    assert [d["field"] for d in doc["differences"]] == ["channel_axis"]


def test_alternatives_are_listed_and_capped(lrn, npy):
    x = _acts((2, 6, 5, 4), seed=4)
    x[:, 1:] = 0  # every window reaching back to channel 0 is the same
    npy("x0.npy", x)
    npy("y0.npy", Semantics("across", 1, 2, 1e-3, 1.0, 0.75).apply(x))
    res = lrn("explain", "x0.npy", "y0.npy", "--layout", "NCHW", "--mode", "across",
              "--alternatives", "1")
    assert res.exit_code == 0
    out = stdout_of(res)
    assert "also fits 1" in out and "also fits 2" not in out
    assert "more alternatives" in out and "unidentified" in out


def test_same_semantics_says_arithmetic(lrn, npy, pair):
    res = lrn("explain", "in.npy", "caffe.npy", "caffe.npy")
    assert res.exit_code == 0
    assert "same LRN, identical outputs" in stdout_of(res)


def test_not_lrn_exits_1_with_cause(lrn, npy, pair):
    npy("noise.npy", np.random.default_rng(3).random(pair.shape).astype(np.float32))
    res = lrn("explain", "in.npy", "noise.npy")
    assert res.exit_code == 1
    assert "not-lrn" in stdout_of(res) and "unrelated" in stdout_of(res)
    res = lrn("explain", "in.npy", "caffe.npy", "noise.npy")
    assert res.exit_code == 1
    assert "candidate output is not explained" in stdout_of(res)


def test_no_effect_exits_0(lrn, npy, pair):
    npy("same.npy", pair)
    res = lrn("explain", "in.npy", "same.npy", "--json")
    assert res.exit_code == 0
    doc = json.loads(stdout_of(res))
    assert doc["verdict"] == "no-effect" and doc["no_effect"]["identity"] is True
    res = lrn("explain", "in.npy", "caffe.npy", "same.npy")
    assert res.exit_code == 0 and "missing" in stdout_of(res)


def test_mode_and_layout_restrict_the_search(lrn, npy, pair):
    res = lrn("explain", "in.npy", "caffe.npy", "--mode", "within", "--json")
    assert res.exit_code == 1
    doc = json.loads(stdout_of(res))
    assert doc["verdict"] == "not-lrn" and all(t.startswith("within") for t in doc["tried"])
    res = lrn("explain", "in.npy", "caffe.npy", "--layout", "NCHW", "--json")
    assert json.loads(stdout_of(res))["tried"] == ["across axis 1", "within axes [2, 3]"]
    res = lrn("explain", "in.npy", "caffe.npy", "--channel-axis", "3", "--mode", "across")
    assert res.exit_code == 1


def test_usage_errors_exit_2(lrn, pair):
    assert lrn("explain", "in.npy", "caffe.npy", "--layout", "NCHW", "--channel-axis",
               "1").exit_code == 2
    assert lrn("explain", "in.npy", "caffe.npy", "--candidate-input", "in.npy").exit_code == 2
    assert lrn("explain", "in.npy", "caffe.npy", "--layout", "NCQW").exit_code == 2
    assert lrn("explain", "in.npy", "caffe.npy", "--layout", "NCH").exit_code == 2
    assert lrn("explain", "in.npy").exit_code == 2


def _one_error(res, name):
    assert res.exit_code == 1, stdout_of(res)
    lines = error_lines(stderr_of(res))
    assert len(lines) == 1 and name in lines[0], stderr_of(res)
    assert "Traceback" not in stderr_of(res)
    return lines[0]


def test_bad_files_one_line_exit_1(lrn, npy, in_tmp, pair):
    npy("short.npy", pair[:, :4])
    assert "differs" in _one_error(lrn("explain", "in.npy", "short.npy"), "short.npy")
    npy("empty.npy", np.zeros((0, 4), np.float32))
    assert "empty" in _one_error(lrn("explain", "empty.npy", "empty.npy"), "empty.npy")
    npy("nan.npy", np.full(pair.shape, np.nan, np.float32))
    assert "no finite" in _one_error(lrn("explain", "in.npy", "nan.npy"), "nan.npy")
    np.save(in_tmp / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "pickled" in _one_error(lrn("explain", "obj.npy", "in.npy"), "obj.npy")
    (in_tmp / "junk.npy").write_bytes(b"\x93NUMPY junk")
    _one_error(lrn("explain", "in.npy", "junk.npy"), "junk.npy")
    _one_error(lrn("explain", "in.npy", "missing.npy"), "missing.npy")
    (in_tmp / "notes.txt").write_text("hello")
    assert "onnx" not in _one_error(lrn("explain", "notes.txt", "in.npy"), "notes.txt")
    (in_tmp / "model.onnx").write_bytes(b"\x08\x03")
    assert "lrn inspect" in _one_error(lrn("explain", "model.onnx", "in.npy"), "model.onnx")
    res = lrn("explain", "in.npy", "nan.npy", "--traceback")
    assert res.exit_code == 1 and "Traceback" in stderr_of(res)


def test_npz_key(lrn, in_tmp, pair):
    np.savez(in_tmp / "dump.npz", x=pair, y=lrn_fn(pair, 5, 1e-3, 0.75, 2.0))
    assert "--key" in _one_error(lrn("explain", "dump.npz", "dump.npz"), "dump.npz")
    np.savez(in_tmp / "xin.npz", y=pair)
    res = lrn("explain", "xin.npz", "dump.npz", "--key", "y", "--json")
    assert res.exit_code == 0 and json.loads(stdout_of(res))["verdict"] == "lrn"
    res = lrn("explain", "xin.npz", "dump.npz", "dump.npz", "--key", "y", "--json")
    assert res.exit_code == 0 and json.loads(stdout_of(res))["same_semantics"] is True
    assert "has no array named 'nope'" in _one_error(
        lrn("explain", "xin.npz", "dump.npz", "--key", "nope"), "xin.npz")


def test_pb_tensors(lrn, in_tmp, pair):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    y = lrn_fn(pair, 5, 1e-3, 0.75, 2.0)
    (in_tmp / "input_0.pb").write_bytes(numpy_helper.from_array(pair).SerializeToString())
    (in_tmp / "output_0.pb").write_bytes(numpy_helper.from_array(y).SerializeToString())
    res = lrn("explain", "input_0.pb", "output_0.pb", "--json")
    assert res.exit_code == 0, stderr_of(res)
    assert json.loads(stdout_of(res))["fit"]["window"] == [2, 2]
    t = numpy_helper.from_array(pair)
    t.data_location = onnx.TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    t.ClearField("raw_data")
    (in_tmp / "ext.pb").write_bytes(t.SerializeToString())
    assert "external" in _one_error(lrn("explain", "ext.pb", "output_0.pb"), "ext.pb")


def test_pb_without_onnx_names_the_extra(lrn, in_tmp, pair, monkeypatch):
    pytest.importorskip("onnx")
    from onnx import numpy_helper

    (in_tmp / "x.pb").write_bytes(numpy_helper.from_array(pair).SerializeToString())
    monkeypatch.setitem(sys.modules, "onnx", None)
    line = _one_error(lrn("explain", "x.pb", "x.pb"), "x.pb")
    assert 'lrn-cli[onnx]' in line


def test_help_does_not_import_heavy_modules(run_lrn):
    code = ("import sys; from lrn_cli.cli import main\n"
            "try:\n    main(['explain', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numba', 'onnx', 'PIL') if m in sys.modules))")
    import subprocess

    from conftest import clean_env

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=clean_env(), timeout=60, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
