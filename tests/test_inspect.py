"""``lrn inspect`` and ``lrn_cli.porting.inspect``: model readers, hazards, --against.

ONNX tests need the ``onnx`` package (in the test extra) and skip cleanly without it.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, clean_env, error_lines, invoke

from lrn_cli.errors import InputError, LrnError, ParameterError
from lrn_cli.porting.hazards import HAZARDS, TARGETS
from lrn_cli.porting.inspect import compare_models, inspect_model
from lrn_cli.porting.models.ncnn import ncnn_float
from lrn_cli.porting.semantics import Semantics, convention_semantics

MODELS = ROOT / "samples" / "models"
VGG = MODELS / "vgg_cnn_m.prototxt"
VGG_NCNN = MODELS / "vgg_cnn_m.param"
ZF = MODELS / "zf_v1.prototxt"


def _light(name: str) -> Path:
    onnx = pytest.importorskip("onnx")
    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / name
    if not path.exists():
        pytest.skip(f"{name} is not shipped with this onnx")
    return path


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def refused(path: str) -> str:
    with pytest.raises(InputError) as info:
        inspect_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message[len(path) + 2:]


def _ulps(a: float, b: float) -> float:
    return 0.0 if a == b else abs(a - b) / math.ulp(max(abs(a), abs(b)))


# =============================================================================== ONNX

def test_light_bvlc_alexnet():
    report = inspect_model(_light("light_bvlc_alexnet.onnx"))
    assert report.format == "onnx"
    assert [(lay.name, lay.inputs, lay.outputs) for lay in report.layers] == [
        ("n2", ["r1"], ["r2"]), ("n6", ["r5"], ["r6"])]
    for layer in report.layers:
        assert layer.convention == "onnx"
        assert layer.params == {"size": 5, "alpha": 0.0001, "beta": 0.75, "bias": 1.0}
        assert layer.defaulted == []
        s = layer.semantics
        assert (s.mode, s.window, s.alpha_eff, s.k_eff, s.beta, s.channel_axis) == (
            "across", (2, 2), 2e-05, 1.0, 0.75, 1)
        assert layer.equivalents["tensorflow"]["params"] == {
            "depth_radius": 2, "alpha": 2e-05, "beta": 0.75, "bias": 1.0}
        assert layer.equivalents["caffe"]["params"]["local_size"] == 5
        targets = {h["target"] for h in layer.hazards}
        assert "onnxruntime" in targets and "TensorRT" not in targets
        assert all(h["cite"] for h in layer.hazards)
    assert report.layers[0].raw.axis_length == 96 and report.layers[1].raw.axis_length == 256


def test_light_zfnet512_keeps_bias_2():
    report = inspect_model(_light("light_zfnet512.onnx"))
    assert [lay.name for lay in report.layers] == ["n2", "n6"]
    for layer in report.layers:
        assert layer.params == {"size": 5, "alpha": 0.0005, "beta": 0.75, "bias": 2.0}
        assert layer.semantics.k_eff == 2.0 and layer.semantics.alpha_eff == 0.0001
        assert layer.equivalents["opencv"]["params"] is None  # OpenCV's Caffe path drops k
        assert "k=2" in layer.equivalents["opencv"]["reason"]
        hz = {h["target"]: h["text"] for h in layer.hazards}
        assert "onnx2caffe" in hz and "k = 2 becomes 1" in hz["onnx2caffe"]


def test_light_inception_v1(lrn):
    path = _light("light_inception_v1.onnx")
    r = lrn("inspect", path, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc)[:1] == ["schema"] and doc["differences"] == []
    (model,) = doc["models"]
    assert model["file"] == str(path) and model["format"] == "onnx"
    names = [layer["name"] for layer in model["layers"]]
    assert names == ["n3", "n8"]
    layer = model["layers"][0]
    for key in ("name", "inputs", "outputs", "convention", "params", "mode", "channel_axis",
                "window", "taps", "alpha_eff", "k_eff", "beta", "equivalents", "hazards"):
        assert key in layer
    assert layer["window"] == [2, 2] and layer["taps"] == 5
    assert set(layer["hazards"][0]) == {"target", "text", "cite"}


def _onnx_file(tmp_path, name, nodes, *, inputs=None, outputs=None, functions=(),
               initializers=(), opset=13, elem=None, producer=None):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    elem = TensorProto.FLOAT if elem is None else elem
    inputs = inputs or [helper.make_tensor_value_info("x", elem, [1, 6, 4, 5])]
    outputs = outputs or [helper.make_tensor_value_info("y", elem, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(f.domain, 1)
                                                 for f in functions]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    if producer:
        model.producer_name = producer
    del onnx
    return write(tmp_path, name, model.SerializeToString())


def _lrn(inp="x", out="y", name="lrn", **attrs):
    from onnx import helper

    return helper.make_node("LRN", [inp], [out], name=name, **attrs)


def test_onnx_even_size_and_defaults(tmp_path):
    path = _onnx_file(tmp_path, "even.onnx", [_lrn(size=4)])
    (layer,) = inspect_model(path).layers
    assert layer.params == {"size": 4, "alpha": 0.0001, "beta": 0.75, "bias": 1.0}
    assert layer.defaulted == ["alpha", "beta", "bias"]
    assert layer.semantics.window == (1, 2)  # ONNX: the extra tap after c
    assert layer.raw.dtype == "float32" and layer.raw.ndim == 4 and layer.raw.axis_length == 6
    hz = {h["target"]: h["text"] for h in layer.hazards}
    for target in ("onnxruntime", "TensorRT", "OpenVINO", "onnx2torch", "onnx-tensorflow",
                   "onnx2tf", "onnx2ncnn", "MXNet", "OpenCV", "onnx2caffe"):
        assert target in hz, target
    assert "3 taps" in hz["OpenVINO"] and "5 taps" in hz["OpenVINO"]
    assert "absent alpha as 1" in " ".join(h["text"] for h in layer.hazards
                                           if h["target"] == "onnx2ncnn")
    assert layer.equivalents["pytorch"]["params"] is None  # torch puts the extra tap before
    assert layer.equivalents["cudnn"]["params"]["lrnN"] == 4


def test_onnx_subgraphs_functions_and_qdq(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    then_g = helper.make_graph([_lrn("x", "t", name="in_then", size=3)], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    else_g = helper.make_graph([_lrn("x", "e", name="in_else", size=7, bias=2.0)], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    cond = helper.make_tensor("c", TensorProto.BOOL, [], [True])
    if_node = helper.make_node("If", ["c"], ["y_if"], name="branch", then_branch=then_g,
                               else_branch=else_g)
    inner = helper.make_node("LRN", ["X"], ["Y"], name="fn_lrn", alpha=3e-4)
    ref = onnx.AttributeProto()
    ref.name, ref.ref_attr_name, ref.type = "size", "width", onnx.AttributeProto.INT
    inner.attribute.append(ref)
    fn = helper.make_function("custom", "Norm", ["X"], ["Y"], [inner],
                              [helper.make_opsetid("", 13)], attributes=["width"])
    call1 = helper.make_node("Norm", ["x"], ["y1"], domain="custom", name="call1", width=3)
    call2 = helper.make_node("Norm", ["x"], ["y2"], domain="custom", name="call2", width=5)
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("z", TensorProto.INT8, [], [0])
    q = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"])
    dq = helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])
    qlrn = _lrn("xd", "yd", name="q_lrn", size=5)
    rq = helper.make_node("QuantizeLinear", ["yd", "s", "z"], ["y"])
    path = _onnx_file(tmp_path, "nested.onnx", [if_node, call1, call2, q, dq, qlrn, rq],
                      functions=[fn], initializers=[cond, scale, zero])
    report = inspect_model(path)
    by_name = {lay.name: lay for lay in report.layers}
    assert set(by_name) == {"in_then", "in_else", "q_lrn", "call1/fn_lrn", "call2/fn_lrn"}
    assert by_name["in_then"].where == "branch.then_branch"
    assert by_name["in_else"].semantics.k_eff == 2.0 and by_name["in_else"].semantics.taps == 7
    assert by_name["call1/fn_lrn"].semantics.taps == 3
    assert by_name["call2/fn_lrn"].semantics.taps == 5
    assert by_name["call2/fn_lrn"].params["alpha"] == 0.0003
    assert "function custom.Norm called by call2" == by_name["call2/fn_lrn"].where
    assert "qdq" in by_name["q_lrn"].raw.flags
    assert any("QDQ" in note for note in by_name["q_lrn"].notes)
    assert "qdq" not in by_name["in_then"].raw.flags
    # a call site's layer carries the call's tensors (what a user dumps), not the
    # function's formal X/Y, so --layer y2 and --against by output find it
    assert by_name["call2/fn_lrn"].inputs == ["x"] and by_name["call2/fn_lrn"].outputs == ["y2"]
    assert report.layer("y2") is by_name["call2/fn_lrn"]


@pytest.mark.parametrize(("attrs", "said"), [
    ({}, "no size attribute"),
    ({"size": 2.5}, "attribute size is FLOAT; LRN's is INT"),
    ({"size": 5, "alpha": 2}, "attribute alpha is INT; LRN's is FLOAT"),
    ({"size": 0}, "size 0"),
    ({"size": 5, "alpha": -1.0}, "alpha must be >= 0"),
])
def test_onnx_bad_attributes_are_refused_naming_the_node(tmp_path, attrs, said):
    path = _onnx_file(tmp_path, "bad.onnx", [_lrn(name="norm9", **attrs)])
    message = refused(path)
    assert "LRN node 'norm9'" in message and said in message


def test_onnx_float16_and_unnamed_nodes(tmp_path):
    from onnx import TensorProto

    path = _onnx_file(tmp_path, "half.onnx", [_lrn(name="", size=3)], elem=TensorProto.FLOAT16)
    (layer,) = inspect_model(path).layers
    assert layer.name == "y" and not layer.raw.named  # named by its output
    assert layer.raw.dtype == "float16"
    assert any("float32 only" in h["text"] and h["target"] == "onnxruntime"
               for h in layer.hazards)
    assert any(h["target"] == "PyTorch" for h in layer.hazards)


def test_onnx_garbage_and_truncation(tmp_path):
    real = _light("light_bvlc_alexnet.onnx").read_bytes()
    message = refused(write(tmp_path, "cut.onnx", real[:len(real) // 2]))
    assert "not a readable ONNX model" in message
    message = refused(write(tmp_path, "noise.onnx", b"\x08" + os.urandom(1) + b"\xff" * 40))
    assert "ONNX" in message


def test_onnx_needs_the_onnx_package(tmp_path):
    path = _light("light_bvlc_alexnet.onnx")
    code = ("import sys; sys.modules['onnx'] = None\n"
            "from lrn_cli.cli import main\n"
            f"sys.argv = ['lrn', 'inspect', {str(path)!r}]\nmain()")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, env=clean_env(),
                       timeout=60, check=False)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "needs the onnx package" in err and "lrn-cli[onnx]" in err
    assert "Traceback" not in err


# =============================================================================== Caffe

CURRENT = """\
# a deploy file: comments, both quote styles, fields in any order
name: 'net'
layer {
  bottom: "conv1"   # before the name
  name: "norm1"
  type: "LRN"
  top: "norm1"
  lrn_param {
    k: 2  alpha: 1e-4 local_size: 7 beta: 0.5
    norm_region: ACROSS_CHANNELS
    engine: CAFFE
  }
}
layer { name: 'norm2' type: 'LRN' bottom: 'x' bottom: "y" top: "norm2" }
layer <
  name: "n" "orm3"
  type: "LRN"
  lrn_param: { norm_region: 1 local_size: 3 alpha: 9 k: 5 engine: CUDNN }
>
layer { name: "conv" type: "Convolution" convolution_param { kernel_size: [3, 3] } }
"""


def test_caffe_every_field_and_default(tmp_path):
    report = inspect_model(write(tmp_path, "net.prototxt", CURRENT))
    assert report.format == "caffe"
    n1, n2, n3 = report.layers
    assert (n1.name, n1.inputs, n1.outputs, n1.line) == ("norm1", ["conv1"], ["norm1"], 5)
    assert n1.params == {"local_size": 7, "alpha": 0.0001, "beta": 0.5,
                         "norm_region": "ACROSS_CHANNELS", "k": 2.0, "engine": "CAFFE"}
    assert n1.defaulted == []
    assert n1.semantics == Semantics("across", 3, 3, 0.0001 / 7, 2.0, 0.5, channel_axis=1)
    # absent lrn_param: Caffe's defaults (caffe.proto)
    assert n2.inputs == ["x", "y"]
    assert n2.params == {"local_size": 5, "alpha": 1.0, "beta": 0.75,
                         "norm_region": "ACROSS_CHANNELS", "k": 1.0, "engine": "DEFAULT"}
    assert n2.defaulted == list(n2.params)
    assert any(h["target"] == "Caffe" and "not the AlexNet paper's 2" in h["text"]
               for h in n2.hazards)
    # adjacent strings join; WITHIN by number; k ignored within; CUDNN flagged unverified
    assert n3.name == "norm3" and n3.outputs == []
    assert n3.semantics.mode == "within" and n3.semantics.k_eff == 1.0
    assert n3.semantics.alpha_eff == 1.0 and n3.semantics.spatial_axes == (2, 3)
    assert any("ignored" in note for note in n3.notes)
    assert any("NOT verified" in note for note in n3.notes)
    assert any(h["target"] == "Caffe" and "NOT verified" in h["text"] for h in n3.hazards)


def test_caffe_v1_format():
    report = inspect_model(ZF)
    (layer,) = report.layers
    assert report.notes and "V1" in report.notes[0]
    assert (layer.name, layer.inputs, layer.outputs) == ("norm1", ["conv1"], ["norm1"])
    assert layer.params["norm_region"] == "WITHIN_CHANNEL" and layer.params["engine"] == "CAFFE"
    assert layer.semantics.window == (1, 1) and layer.semantics.alpha_eff == 5e-05 / 9
    assert layer.defaulted == ["k"]
    targets = {h["target"] for h in layer.hazards}
    assert {"caffe2onnx", "caffe-tensorflow", "X2Paddle", "PyTorch", "TensorRT"} <= targets
    assert "caffe2ncnn" not in targets  # ncnn within ignores nothing Caffe uses


def test_caffe_v1_type_by_number(tmp_path):
    text = 'layers { name: "a" type: 15 top: "a" }\nlayers { name: "b" type: RELU }\n'
    (layer,) = inspect_model(write(tmp_path, "v1.prototxt", text)).layers
    assert layer.name == "a" and layer.semantics.taps == 5


def test_caffe_within_k_openvino_keeps_it(tmp_path):
    # Caffe ignores k within channels; OpenVINO's Model Optimizer passes it on as bias
    text = ('layer { name: "a" type: "LRN" bottom: "x" top: "a"\n'
            '  lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL k: 2 } }\n'
            'layer { name: "b" type: "LRN" bottom: "x" top: "b"\n'
            '  lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL } }\n')
    a, b = inspect_model(write(tmp_path, "w.prototxt", text)).layers
    assert a.semantics.k_eff == 1.0
    rows = [h for h in a.hazards if h["target"] == "OpenVINO" and "lrn_ext.py" in h["cite"]]
    assert len(rows) == 1 and "k = 2" in rows[0]["text"]
    assert not any("lrn_ext.py" in h["cite"] for h in b.hazards)


def test_caffe_phases_are_noted_and_a_shared_name_is_ambiguous(tmp_path):
    # a train_val.prototxt: the same layer name in two phases with different parameters
    text = ('layer { name: "norm1" type: "LRN" bottom: "c" top: "norm1"\n'
            '  include { phase: TRAIN } lrn_param { local_size: 5 } }\n'
            'layer { name: "norm1" type: "LRN" bottom: "c" top: "norm1"\n'
            '  include { phase: TEST } lrn_param { local_size: 3 } }\n'
            'layer { name: "norm2" type: "LRN" bottom: "d" top: "norm2"\n'
            '  exclude { phase: TRAIN } }\n')
    report = inspect_model(write(tmp_path, "train_val.prototxt", text))
    first, second, third = report.layers
    assert any("phase TRAIN only" in n for n in first.notes)
    assert any("phase TEST only" in n for n in second.notes)
    assert any("not in phase TRAIN" in n for n in third.notes)
    with pytest.raises(ParameterError, match="2 LRN layers match 'norm1'.*lines 1, 3"):
        report.layer("norm1")
    assert report.layer("norm2") is third


def test_caffe_no_lrn(lrn, tmp_path):
    path = write(tmp_path, "plain.prototxt", 'layer { name: "c" type: "Convolution" }\n')
    r = lrn("inspect", path)
    assert r.exit_code == 0 and r.stdout == f"{path}: no LRN layer\n"
    r = lrn("inspect", path, "--json")
    assert json.loads(r.stdout)["models"][0]["layers"] == []


BAD_CAFFE = [
    ('layer { name: "n" type: "LRN" lrn_param { local_size: 5\n', 1, "file ends inside"),
    ('layer { name: "n" type: "LRN"\n lrn_param { local_size: 5.5 } }', 2,
     "local_size must be an integer"),
    ('layer { name: "n" type: "LRN"\n lrn_param { alpha: "x" } }', 2, "alpha must be a number"),
    ('layer { name: norm1 type: "LRN" }', 1, "name must be a quoted string"),
    ('layer {\n name: "n" type: LRN }', 2, "type must be a quoted string"),
    ('layers {\n type: "LRN" }', 2, "enum word"),
    ('layer { type: "LRN"\n lrn_param { norm_region: ACROSS } }', 2,
     "unknown value ACROSS"),
    ('layer { type: "LRN"\n lrn_param { engine: 3 } }', 2, "no value numbered 3"),
    ('layer { type: "LRN" lrn_param {\n size: 5 } }', 2, "no field 'size'"),
    ('layer { type: "LRN" lrn_param { alpha: 1\n alpha: 2 } }', 2, "given twice"),
    ('layer { name: "n" type: "LRN" lrn_param {\n local_size: 4 } }', 2, "even"),
    ('layer { name: "n" type: "LRN" lrn_param { local_size: -3 } }', 1, "unsigned"),
    ('layer { type: "LRN" lrn_param {\n k: inf } }', 2, "finite"),
    ('layer { type: "Convolution" }\n\nlayers { type: RELU }', 3, "both 'layer'"),
    ('layer { name: "n\n', 1, "unterminated string"),
    ('layer { name: "n" }\n}', 2, "unexpected '}'"),
    ('layer { name "n" }', 1, "expected ':' or '{'"),
    ('layer { name: }', 1, "expected a value"),
    ('name: "x"\nlayer { bottom: [ "a", "b" }', 2, "expected ',' or ']'"),
    ('name: "x"\n# ' + "-" * 70 + '\n\x01', 3, "unexpected character"),
    ('layer { type: "LRN" lrn_param { alpha: 1e } }', 1, "malformed number"),
]


@pytest.mark.parametrize(("text", "line", "said"), BAD_CAFFE)
def test_caffe_malformed_is_refused_with_the_line(tmp_path, text, line, said):
    message = refused(write(tmp_path, "bad.prototxt", "# header\n" + text))
    assert message.startswith(f"line {line + 1}: "), message
    assert said in message


def test_caffe_binary_and_weights_are_refused(tmp_path):
    assert "deploy .prototxt" in refused(write(tmp_path, "w.caffemodel",
                                               b"\x0a\x07AlexNet\xa2\x06\x10"))
    assert "binary" in refused(write(tmp_path, "w.prototxt", b"layer {\x00\x01\x02 }"))
    message = refused(write(tmp_path, "latin.prototxt", b'name: "caf\xe9"\nlayer { }'))
    assert message.startswith("line 1: not UTF-8")


def test_caffe_comments_in_another_encoding_are_skipped(tmp_path):
    # GBK comments ("\xb9\xe9\xd2\xbb\xbb\xaf" is GBK for 'normalization'): protobuf's text
    # parser skips comments byte by byte, so Caffe loads such files; so does inspect
    text = (b'# \xb9\xe9\xd2\xbb\xbb\xaf\nlayer { name: "norm1" type: "LRN"  # \xb9\xe9\n'
            b'  bottom: "c" top: "norm1" lrn_param { local_size: 3 k: 2 } }\n')
    (layer,) = inspect_model(write(tmp_path, "gbk.prototxt", text)).layers
    assert layer.name == "norm1" and layer.params["k"] == 2.0
    # a '#' inside a string is no comment: the bytes after it are still refused
    message = refused(write(tmp_path, "s.prototxt", b'name: "a#\xb9\xe9"\nlayer { }\n'))
    assert message.startswith("line 1: not UTF-8")
    # ncnn .param files have no comments
    assert "not UTF-8" in refused(write(tmp_path, "g.param",
                                        b"7767517\n1 1\nInput d\xb9\xe9 0 1 data\n"))


# =============================================================================== ncnn

def test_ncnn_without_bias_is_k_1():
    report = inspect_model(VGG_NCNN)
    assert report.format == "ncnn"
    assert any("CHW per sample" in note for note in report.notes)
    n1, n2 = report.layers
    assert (n1.name, n1.inputs, n1.outputs, n1.line) == ("norm1", ["conv1_relu1"], ["norm1"], 6)
    assert n1.params == {"region": 0, "local_size": 5, "alpha": 0.0005, "beta": 0.75,
                         "bias": 1.0}
    assert n1.defaulted == ["bias"]
    assert n1.semantics.k_eff == 1.0 and n1.semantics.alpha_eff == 0.0001
    assert n2.name == "norm2"


NCNN_HEAD = "7767517\n2 2\nInput data 0 1 data 0=8\n"


def test_ncnn_with_bias_and_even_sizes(tmp_path):
    text = NCNN_HEAD + "LRN norm 1 1 data out 0=0 1=4 2=1.0 3=0.75 4=2.5 7=3\n"
    (layer,) = inspect_model(write(tmp_path, "m.param", text)).layers
    assert layer.params["bias"] == 2.5 and layer.defaulted == []
    assert layer.semantics.window == (2, 2) and layer.semantics.alpha_eff == 0.25  # n+1 taps
    assert any("7=3" in note for note in layer.notes)
    hz = {h["target"]: h["text"] for h in layer.hazards if h["target"] in ("ncnn", "OpenVINO")}
    texts = [h["text"] for h in layer.hazards if h["target"] == "ncnn"]
    assert any("Vulkan path sums 4 taps" in t for t in texts)
    assert any("before the 4=bias" in t for t in texts)
    assert "k = 2.5 runs as 2" in hz["OpenVINO"]
    within = NCNN_HEAD + "LRN norm 1 1 data out 0=1 1=4 2=16.0\n"
    (layer,) = inspect_model(write(tmp_path, "w.param", within)).layers
    assert layer.semantics.mode == "within" and layer.semantics.window == (2, 1)
    assert layer.semantics.alpha_eff == 1.0


def test_ncnn_reads_floats_as_ncnn_does(tmp_path):
    assert ncnn_float("1.000000e-04") == float(np.float32(1e-4))
    assert ncnn_float("-0.5") == -0.5
    # ten digits after the point overflow ncnn's 32-bit counter: 10**10 mod 2**32
    assert ncnn_float("0.0000500000") == float(np.float32(500000 / (10**10 % 2**32)))
    text = NCNN_HEAD + "LRN norm 1 1 data out 2=0.0000500000\n"
    (layer,) = inspect_model(write(tmp_path, "m.param", text)).layers
    assert layer.params["alpha"] == float(str(np.float32(500000 / (10**10 % 2**32))))
    assert any("vstr_to_float" in note for note in layer.notes)


def test_ncnn_2017_positional_file(tmp_path):
    text = "2 2\nInput data 0 1 data\nLRN norm1 1 1 data norm1 0 5 0.0001 0.75\n"
    report = inspect_model(write(tmp_path, "old.param", text))
    (layer,) = report.layers
    assert layer.semantics == Semantics("across", 2, 4, 0.0001 / 5, 1.0, 0.75, channel_axis=1)
    assert any(h["target"] == "ncnn" and "2017" in h["text"] for h in layer.hazards)


BAD_NCNN = [
    (NCNN_HEAD.replace("2 2", "3 3") + "LRN n 1 1 data o\n", 4, "ends after 2 of the 3"),
    (NCNN_HEAD + "LRN n 1 1 data o 2=1\n", 4, "written as an integer"),
    (NCNN_HEAD + "LRN n 1 1 data o 1=5.0\n", 4, "written as a float"),
    (NCNN_HEAD + "LRN n 1 1 data o 0=2\n", 4, "region"),
    (NCNN_HEAD + "LRN n 1 1 data o 2=0.00010000000000\n", 4, "at most 15"),
    (NCNN_HEAD + "LRN n 1 1 data o 2=abc\n", 4, "not a number"),
    (NCNN_HEAD + "LRN n 1 1 data o alpha=1\n", 4, "expected key=value"),
    (NCNN_HEAD + "LRN n 1 x data o\n", 4, "counts must be integers"),
    (NCNN_HEAD + "LRN n 2 1 data\n", 4, "names given"),
    (NCNN_HEAD + "LRN n 1 1 data o 1=0\n", 4, "size must be >= 1"),
    (NCNN_HEAD + "LRN n 1 1 data o -23300=2,1,2\n", 4, "array"),
    (NCNN_HEAD + "LRN n 1 1 data o 40=1\n", 4, "outside"),
    (NCNN_HEAD + "LRN n 1 1 data o 3=1e999\n", 4, "finite"),
    ("7767517\nabc\n", 2, "layer_count blob_count"),
]


@pytest.mark.parametrize(("text", "line", "said"), BAD_NCNN)
def test_ncnn_malformed_is_refused_with_the_line(tmp_path, text, line, said):
    message = refused(write(tmp_path, "bad.param", text))
    assert message.startswith(f"line {line}: "), message
    assert said in message


def test_ncnn_binaries_are_refused(tmp_path):
    assert "text .param" in refused(write(tmp_path, "m.param.bin",
                                          struct.pack("<ii", 7767517, 2) + b"\x00" * 8))
    assert "text .param" in refused(write(tmp_path, "m.bin", os.urandom(64) + b"\x00"))
    assert "7767517" in refused(write(tmp_path, "m.param", "hello\n"))


def test_other_binaries_are_refused_never_read(tmp_path):
    assert "never unpickled" in refused(write(tmp_path, "m.pkl", b"\x80\x04\x95" + b"x" * 20))
    assert "not read" in refused(write(tmp_path, "m.pth", b"PK\x03\x04" + b"\x00" * 20))
    assert "HDF5" in refused(write(tmp_path, "m.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 8))
    assert "empty" in refused(write(tmp_path, "e.prototxt", b""))
    assert "folder" in refused(str(tmp_path))
    assert "no such file" in refused(str(tmp_path / "missing.onnx"))


# =============================================================================== properties

def _mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for kind, pos, value in ops:
        if not buf:
            buf.append(value)
            continue
        i = pos % len(buf)
        if kind == 0:
            buf[i] = value
        elif kind == 1:
            buf.insert(i, value)
        elif kind == 2:
            del buf[i]
        elif kind == 3:
            del buf[i:]
        else:
            buf[i:i] = buf[max(0, i - 8):i]  # repeat a few bytes
    return bytes(buf)


def _sources() -> list[tuple[str, bytes]]:
    out = [("m.prototxt", VGG.read_bytes()), ("m.prototxt", ZF.read_bytes()),
           ("m.prototxt", CURRENT.encode()), ("m.param", VGG_NCNN.read_bytes()),
           ("m.param", (NCNN_HEAD + "LRN norm 1 1 data out 0=1 1=4 2=1.0 4=2.5\n").encode())]
    try:
        import onnx

        light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
        out.append(("m.onnx", (light / "light_bvlc_alexnet.onnx").read_bytes()))
    except ImportError:
        pass
    return out


def test_mutated_files_never_raise_anything_but_lrn_errors(tmp_path):
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    sources = _sources()
    ops = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2**20), st.integers(0, 255)),
                   min_size=1, max_size=6)

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(range(len(sources))), ops)
    def check(which, mutation):
        name, data = sources[which]
        path = tmp_path / name
        path.write_bytes(_mutate(data, mutation))
        try:
            report = inspect_model(path)
        except LrnError as exc:
            assert str(exc).startswith(str(path))
            return
        for layer in report.layers:  # whatever was read is whole
            json.dumps(layer.as_dict())
            assert layer.semantics.taps >= 1

    check()
    del hypothesis


def test_mutated_files_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(7)
    for i, (name, data) in enumerate(_sources() * 3):
        ops = [(int(rng.integers(5)), int(rng.integers(2**20)), int(rng.integers(256)))
               for _ in range(3)]
        path = f"{i}{name}"
        Path(path).write_bytes(_mutate(data, ops))
        r = invoke(["inspect", path, "--json"])  # invoke fails on any crash
        assert r.exit_code in (0, 1), r.stderr
        if r.exit_code == 1:
            assert len(error_lines(r.stderr)) == 1 and path in r.stderr
            assert "Traceback" not in r.stderr


# =============================================================================== equivalents

def _npy(tmp_path) -> tuple[str, np.ndarray]:
    x = (np.random.default_rng(3).standard_normal((1, 7, 5, 6)) * 20).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    return str(path), x


def _equivalence_layers(tmp_path):
    layers = []
    for path in (VGG, ZF, VGG_NCNN):
        layers += inspect_model(path).layers
    even = NCNN_HEAD + "LRN a 1 1 data a 1=4 2=3.0 3=0.6 4=1.5\nLRN b 1 1 a b 0=1 1=2 2=0.7\n"
    layers += inspect_model(write(tmp_path, "even.param", even.replace("2 2", "3 3"))).layers
    layers += inspect_model(write(tmp_path, "k.prototxt", CURRENT)).layers
    try:
        import onnx  # noqa: F401
    except ImportError:
        return layers
    layers += inspect_model(_light("light_zfnet512.onnx")).layers[:1]
    layers += inspect_model(_onnx_file(tmp_path, "even.onnx", [_lrn(size=4, alpha=3e-4,
                                                                     bias=1.5)])).layers
    return layers


def test_every_equivalent_gives_the_same_lrn_through_lrn_apply(tmp_path):
    """Each convention's parameters that inspect prints, given to ``lrn apply --convention``,
    compute the same window, k' and beta, a' within one ulp, and float32 outputs within one
    ulp of the layer's semantics."""
    src, x = _npy(tmp_path)
    seen = 0
    for layer in _equivalence_layers(tmp_path):
        sem = layer.semantics
        want = sem.apply(x)
        for conv_name, entry in layer.equivalents.items():
            if entry["params"] is None:
                assert entry["reason"]
                continue
            from lrn_cli.conventions import get_convention

            conv = get_convention(conv_name)
            back = {ours: entry["params"][theirs] for ours, theirs in conv.param_names.items()}
            out = tmp_path / f"y{seen}.npy"
            size_opt = (["--depth-radius", str(back["size"])] if conv.size_is_radius
                        else ["--size", str(back["size"])])
            args = ["apply", src, "-o", str(out), "--convention", conv_name, "--mode",
                    sem.mode, "--layout", "NCHW", *size_opt, "--alpha", repr(back["alpha"]),
                    "--beta", repr(back["beta"]), "--k", repr(back["k"]), "--quiet", "--json"]
            r = invoke(args)
            assert r.exit_code == 0, (conv_name, args, r.stderr)
            settings = json.loads(r.stdout)["settings"]
            got = Semantics.of(conv_name, sem.mode, settings["size"], settings["alpha"],
                               settings["beta"], settings["k"])
            assert got.window == sem.window, (layer.name, conv_name)
            assert got.k_eff == sem.k_eff and got.beta == sem.beta, (layer.name, conv_name)
            assert _ulps(got.alpha_eff, sem.alpha_eff) <= 1, (layer.name, conv_name)
            y = np.load(out)
            assert y.dtype == np.float32
            diff = np.abs(y.view(np.int32).astype(np.int64) - want.view(np.int32))
            assert diff.max() <= 1, (layer.name, conv_name, int(diff.max()))
            assert convention_semantics(conv_name, sem.mode, entry["params"]).window == \
                sem.window
            seen += 1
    assert seen >= 60


# =============================================================================== --against

def test_against_lost_k(lrn):
    r = lrn("inspect", str(VGG), "--against", str(VGG_NCNN), "--json")
    assert r.exit_code == 1, r.stderr
    doc = json.loads(r.stdout)
    assert [m["format"] for m in doc["models"]] == ["caffe", "ncnn"]
    diffs = doc["differences"]
    assert [(d["layer"], d["candidate_layer"], d["field"], d["reference"], d["candidate"])
            for d in diffs] == [("norm1", "norm1", "k_eff", 2.0, 1.0),
                                ("norm2", "norm2", "k_eff", 2.0, 1.0)]
    assert [h["target"] for h in diffs[0]["hazards"]] == ["caffe2ncnn"]
    assert diffs[0]["hazards"][0]["cite"].startswith("Tencent/ncnn")
    r = lrn("inspect", str(VGG), "--against", str(VGG_NCNN))
    assert r.exit_code == 1 and "caffe2ncnn" in r.stdout and "2 differences" in r.stderr
    r = lrn("inspect", str(VGG), "--against", str(VGG_NCNN), "--target", "MNN", "--json")
    doc = json.loads(r.stdout)
    assert [d["hazards"] for d in doc["differences"]] == [[], []]  # MNN does not write ncnn
    assert {h["target"] for h in doc["models"][0]["layers"][0]["hazards"]} == {"MNN"}


def test_against_an_exact_conversion_lists_none(lrn, tmp_path):
    fixed = VGG_NCNN.read_text().replace("3=7.500000e-01", "3=7.500000e-01 4=2.000000e+00")
    path = write(tmp_path, "fixed.param", fixed)
    assert compare_models(VGG, path) == []
    r = lrn("inspect", str(VGG), "--against", path)
    assert r.exit_code == 0 and "exact" in r.stderr
    r = lrn("inspect", str(VGG), "--against", path, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["differences"] == []


def test_against_each_difference_class(tmp_path):
    # mode: WITHIN_CHANNEL written as an across LRN (caffe2onnx, caffe-tensorflow ...)
    across = ZF.read_text().replace("norm_region: WITHIN_CHANNEL", "")
    diffs = compare_models(ZF, write(tmp_path, "across.prototxt", across))
    assert diffs[0].field == "mode" and diffs[0].reference == "within"
    # window: an even size moved to the other side, and n+1 taps
    a = NCNN_HEAD + "LRN n 1 1 data o 1=4 2=1.0\n"
    b = "# one\nlayer { name: \"n\" type: \"LRN\" top: \"o\" lrn_param { local_size: 3 } }\n"
    diffs = compare_models(write(tmp_path, "a.param", a), write(tmp_path, "b.prototxt", b))
    assert [d.field for d in diffs] == ["window", "alpha_eff"]
    # alpha not divided by n, beta changed, layer missing on each side
    c = NCNN_HEAD + "LRN n 1 1 data o 1=5 2=5.0 3=0.5\n"
    d = NCNN_HEAD.replace("2 2", "3 3") + ("LRN n 1 1 data o 1=5 2=1.0\n"
                                           "LRN extra 1 1 o p 1=3\n")
    diffs = compare_models(write(tmp_path, "c.param", d), write(tmp_path, "d.param", c))
    by = {(x.field, x.layer, x.candidate_layer): x for x in diffs}
    assert ("alpha_eff", "n", "n") in by and "not divided by n" in by[
        ("alpha_eff", "n", "n")].text
    assert ("beta", "n", "n") in by
    assert ("layer", "extra", None) in by
    diffs = compare_models(write(tmp_path, "c2.param", c), write(tmp_path, "d2.param", d))
    assert any(x.field == "layer" and x.layer is None and x.candidate_layer == "extra"
               for x in diffs)


def test_against_onnx_to_ncnn_names_onnx2ncnn(tmp_path):
    onnx_path = _onnx_file(tmp_path, "m.onnx", [_lrn(name="norm", size=4)])
    ncnn = NCNN_HEAD + "LRN norm 1 1 x y 1=4 2=1.0 3=0.5\n"
    diffs = compare_models(onnx_path, write(tmp_path, "m.param", ncnn))
    by = {d.field: d for d in diffs}
    assert set(by) == {"window", "alpha_eff", "beta"}
    assert "n+1" in by["window"].text and "x1e+04" in by["alpha_eff"].text
    for field in by:
        assert any(h["target"] == "onnx2ncnn" for h in by[field].hazards), field


def test_against_matches_by_output_then_order(tmp_path):
    ref = NCNN_HEAD.replace("2 2", "3 3") + ("LRN a 1 1 data x 1=3\n"
                                             "LRN b 1 1 x y 1=5\n")
    cand = NCNN_HEAD.replace("2 2", "3 3") + ("LRN q 1 1 data r 1=5\n"
                                              "LRN p 1 1 r x 1=3\n")
    from lrn_cli.porting.inspect import match_layers

    pairs = match_layers(inspect_model(write(tmp_path, "r.param", ref)),
                         inspect_model(write(tmp_path, "c.param", cand)))
    assert [(p.reference.name, p.candidate.name, p.by) for p in pairs] == [
        ("a", "p", "output"), ("b", "q", "order")]


def test_against_needs_one_model(lrn):
    r = lrn("inspect", str(VGG), str(ZF), "--against", str(VGG_NCNN))
    assert r.exit_code == 2 and "exactly one MODEL" in r.stderr


def test_against_with_a_broken_candidate(lrn, tmp_path):
    path = write(tmp_path, "bad.param", "7767517\n")
    r = lrn("inspect", str(VGG), "--against", path)
    assert r.exit_code == 1 and error_lines(r.stderr) == [
        f"error: {path}: line 1: the file ends after the magic number (no layer count line)"]


# =============================================================================== CLI

def test_target_narrows_the_hazards(lrn):
    r = lrn("inspect", str(VGG), "--target", "caffe2ncnn", "--target", "opencv", "--json")
    assert r.exit_code == 0, r.stderr
    layer = json.loads(r.stdout)["models"][0]["layers"][0]
    assert {h["target"] for h in layer["hazards"]} == {"caffe2ncnn", "OpenCV"}
    r = lrn("inspect", str(ZF), "--target", "trt", "--json")
    layer = json.loads(r.stdout)["models"][0]["layers"][0]
    assert [h["target"] for h in layer["hazards"]] == ["TensorRT"]
    r = lrn("inspect", str(ZF), "--target", "caffe2ncnn", "--json")
    assert json.loads(r.stdout)["models"][0]["layers"][0]["hazards"] == []
    r = lrn("inspect", str(ZF), "--target", "caffe2ncnn")
    assert "hazards (norm1): none known" in r.stdout
    r = lrn("inspect", str(VGG), "--target", "nosuch")
    assert r.exit_code == 2 and "unknown target 'nosuch'" in r.stderr and "TensorRT" in r.stderr


def test_several_models_one_broken(lrn, tmp_path):
    bad = write(tmp_path, "bad.prototxt", 'layer { type: "LRN" lrn_param { k: x } }')
    r = lrn("inspect", str(VGG), bad, str(ZF), "--json")
    assert r.exit_code == 1
    assert error_lines(r.stderr) == [f"error: {bad}: line 1: k must be a number, not x"]
    assert [m["file"] for m in json.loads(r.stdout)["models"]] == [str(VGG), str(ZF)]
    r = lrn("inspect", str(VGG), bad)
    assert r.exit_code == 1 and "norm1" in r.stdout and len(error_lines(r.stderr)) == 1


def test_table_output(lrn):
    r = lrn("inspect", str(VGG_NCNN), env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "vgg_cnn_m.param (ncnn, 2 LRN layers)" in out
    assert "bias=1.0 (default)" in out and "k'=1" in out
    assert "equivalents (norm1, norm2)" in out and "depth_radius=2" in out
    assert "hazards (norm1, norm2)" in out
    assert "CHW per sample" in r.stderr  # notes go to stderr
    r = lrn("inspect", str(VGG_NCNN), "--quiet")
    assert r.stderr == ""


def test_help_does_not_import_onnx_and_text_models_skip_numba(tmp_path):
    code = ("import sys, json\nfrom lrn_cli.cli import main\n"
            "sys.argv = ['lrn', *json.loads(sys.argv[1])]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "print('PROBE', json.dumps([code, sorted({m.split('.')[0] for m in sys.modules}"
            " & {'onnx', 'numba', 'PIL'})]))")
    for args, heavy in ((["inspect", "--help"], []), (["inspect", str(VGG)], [])):
        p = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True,
                           env=clean_env(), timeout=60, check=False)
        last = p.stdout.decode().strip().splitlines()[-1]
        code_, mods = json.loads(last.split(" ", 1)[1])
        assert code_ in (0, None) and mods == heavy, (args, mods, p.stderr.decode())


def test_hazard_table_rows_cite_and_targets_resolve():
    assert len(HAZARDS) >= 40
    for row in HAZARDS:
        assert row.target and row.cite and (callable(row.text) or row.text)
        if row.converts is not None:
            assert row.changes
    from lrn_cli.porting.hazards import resolve_targets

    assert resolve_targets(["TRT", "ort", "OPENVINO"]) == ("TensorRT", "onnxruntime", "OpenVINO")
    assert set(TARGETS) >= {"TensorRT", "OpenVINO", "CoreML", "ncnn", "onnxruntime", "tf2onnx",
                            "onnx-tensorflow", "onnx2tf", "onnx2torch", "caffe2ncnn", "MNN",
                            "caffe-tensorflow", "X2Paddle", "caffe2onnx", "onnx2caffe",
                            "OpenCV"}
    with pytest.raises(ParameterError):
        resolve_targets(["nope"])


def test_report_layer_lookup_for_export():
    report = inspect_model(VGG)
    assert report.layer("norm2").outputs == ["norm2"]
    assert report.layer("norm1").semantics.k_eff == 2.0
    with pytest.raises(ParameterError, match="norm1"):
        report.layer("nope")
    from lrn_cli import inspect_model as exported

    assert exported is inspect_model


@pytest.mark.parametrize(("name", "text", "line"),
                         [("bad.prototxt", "# header\n" + t, n + 1) for t, n, _ in BAD_CAFFE]
                         + [("bad.param", t, n) for t, n, _ in BAD_NCNN])
def test_malformed_files_through_the_cli(lrn, name, text, line):
    Path(name).write_text(text)
    r = lrn("inspect", name, str(ZF), "--json")
    assert r.exit_code == 1
    (err,) = error_lines(r.stderr)
    assert err.startswith(f"error: {name}: line {line}: "), err
    assert [m["file"] for m in json.loads(r.stdout)["models"]] == [str(ZF)]
