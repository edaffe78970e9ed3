"""``lrn export``: the exported ONNX model, PyTorch module and TensorFlow function.

In CI (no torch, tensorflow or onnxruntime): the generated Python parses and imports only its
framework, its header says what it computes, the ONNX graph passes ``onnx.checker`` with no
LRN node unless ``--native``, and ``onnx.reference`` runs a few graphs exactly; the CLI's
usage errors and files.

Marked ``conformance`` (skipped without the framework): for every convention x mode x odd/even
size x layout, onnxruntime, the PyTorch module and the TF function (in ``tf.function``) agree
with ``lrn`` on float32 data spanning 1e-4..1e4 within 1e-5 (max relative error, against
``lrn`` in float64 on the same values); PyTorch float64 within 1e-10 and its autograd
gradient within 1e-9 of ``lrn_backward`` in the normalised error (max |diff| / max |ref|,
``shared/lrn-conventions.md`` section 5).
Run them: ``python -m pytest -m conformance tests/test_export.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from lrn_cli.conventions import CONVENTIONS, resolve
from lrn_cli.errors import OutputError, ParameterError
from lrn_cli.porting.export import (
    NativeRefused,
    export,
    export_onnx_model,
    probe_input,
    pytorch_source,
    semantics_from,
    tensorflow_source,
)
from lrn_cli.porting.semantics import Semantics
from tests.conftest import clean_env, invoke, stderr_of, stdout_of

# ---------------------------------------------------------------------------- the matrix

PARAMS = {"alpha": 1e-4, "beta": 0.75, "k": 2.0}


def _cases() -> list[tuple[str, str, int]]:
    """Every convention x mode it defines x an odd and an even size it accepts."""
    out = []
    for name, conv in CONVENTIONS.items():
        for mode in conv.modes:
            for size in (5, 4):
                try:
                    resolve(conv, mode, size, **PARAMS)
                except ParameterError:
                    continue
                out.append((name, mode, size))
    # window wider than the axis, one tap, another alpha/beta/k (some with k ignored)
    out += [("onnx", "across", 10), ("default", "within", 8), ("pytorch", "across", 1),
            ("caffe", "within", 7)]
    return out


CASES = _cases()
LAYOUTS = ("NCHW", "NHWC")
MATRIX = [(c, m, n, lay) for (c, m, n) in CASES for lay in LAYOUTS]


def _id(case) -> str:
    return "-".join(map(str, case))


def _params(convention: str, size: int) -> dict:
    if convention == "caffe" and size == 7:  # strong alpha, beta > 1 (k ignored within)
        return {"alpha": 1.0, "beta": 1.5, "k": 0.5}
    if convention == "pytorch" and size == 1:
        return {"alpha": 3e-3, "beta": 0.5, "k": 1.0}
    return dict(PARAMS)


def _shape(layout: str) -> tuple[int, int, int, int]:
    # C=7, H=6, W=5: distinct sizes catch an axis mix-up; 7 channels < a 10-wide window
    return (2, 7, 6, 5) if layout == "NCHW" else (2, 6, 5, 7)


def _semantics(convention: str, mode: str, size: int) -> tuple[Semantics, dict]:
    return semantics_from(convention, mode, size, **_params(convention, size))


def _reference(x: np.ndarray, convention: str, mode: str, size: int, layout: str):
    """``lrn`` on the same values in float64 (the convention's own parameters, not the
    export's semantics: an independent path)."""
    from lrn_cli import lrn

    axis = 1 if layout == "NCHW" else 3
    return lrn(x.astype(np.float64), size, mode=mode, convention=convention,
               channel_axis=axis, **_params(convention, size))


def _max_rel(got, want) -> float:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    assert np.all(np.isfinite(got))
    assert np.all(want != 0)
    return float(np.max(np.abs(got - want) / np.abs(want)))


def _normalised(got, want) -> float:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def test_the_matrix_covers_every_convention_mode_and_even_size():
    conv_modes = {(c, m) for c, m, _ in CASES}
    assert conv_modes == {(c, m) for c, conv in CONVENTIONS.items() for m in conv.modes}
    evens = {(c, m) for c, m, n in CASES if n % 2 == 0}
    assert ("onnx", "across") in evens and ("onednn", "within") in evens
    assert ("caffe", "across") not in evens  # Caffe rejects them
    assert len(MATRIX) >= 70


# ---------------------------------------------------------------------------- ONNX (CI)

onnx = pytest.importorskip("onnx")


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("case", MATRIX, ids=_id)
def test_onnx_graph_is_valid_standard_ops_symbolic_dims(case):
    convention, mode, size, layout = case
    sem, origin = _semantics(convention, mode, size)
    model = export_onnx_model(sem, layout=layout, origin=origin)
    onnx.checker.check_model(model, full_check=True)
    ops = [node.op_type for node in model.graph.node]
    assert "LRN" not in ops
    assert set(ops) <= {"Mul", "Transpose", "Pad", "AveragePool", "Add", "Pow", "Div"}
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(inp) == _dims(out) == list(layout)  # N, C, H, W all symbolic
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert _dims(inferred.graph.output[0]) == list(layout)
    meta = {p.key: p.value for p in model.metadata_props}
    back = Semantics.from_dict(json.loads(meta["lrn.semantics"]))
    assert (back.mode, back.window, back.alpha_eff, back.k_eff, back.beta) == \
        (sem.mode, sem.window, sem.alpha_eff, sem.k_eff, sem.beta)
    assert meta["lrn.layout"] == layout and meta["lrn.native"] == "false"
    assert json.loads(meta["lrn.origin"])["convention"] == convention
    assert f"[c-{sem.lo}, c+{sem.hi}]" in model.doc_string or f"[h-{sem.lo}, h+{sem.hi}]" \
        in model.doc_string
    assert f"convention {convention}" in model.doc_string


@pytest.mark.parametrize("case", [("onnx", "across", 4, "NCHW"), ("pytorch", "across", 4, "NHWC"),
                                  ("default", "within", 4, "NHWC"),
                                  ("caffe", "within", 3, "NCHW"),
                                  ("alexnet", "across", 4, "NCHW"),
                                  ("onnx", "across", 10, "NHWC")], ids=_id)
def test_onnx_graph_computes_the_layer_in_onnx_reference(case):
    """onnx.reference runs the graph (it is wrong only for the LRN op itself, which the
    graph does not use): the same numbers as lrn, without onnxruntime."""
    from onnx.reference import ReferenceEvaluator

    convention, mode, size, layout = case
    sem, origin = semantics_from(convention, mode, size, **PARAMS)
    x = probe_input(_shape(layout), seed=3)
    got = ReferenceEvaluator(export_onnx_model(sem, layout=layout, origin=origin)).run(
        None, {"x": x})[0]
    assert got.dtype == np.float32
    assert _max_rel(got, _reference(x, convention, mode, size, layout)) < 1e-5


def test_onnx_channels_can_be_fixed_and_names_chosen():
    sem, _ = semantics_from("onnx", "across", 3)
    model = export_onnx_model(sem, channels=96, input_name="conv1", output_name="norm1")
    assert _dims(model.graph.input[0]) == ["N", 96, "H", "W"]
    assert model.graph.input[0].name == "conv1" and model.graph.output[0].name == "norm1"
    with pytest.raises(ParameterError, match="different names"):
        export_onnx_model(sem, input_name="t", output_name="t")


def test_onnx_constants_must_fit_float32():
    for alpha in (1e39, 1e-46):
        with pytest.raises(ParameterError, match="float32"):
            export_onnx_model(Semantics("across", 1, 1, alpha, 1.0, 0.75))
    export_onnx_model(Semantics("across", 1, 1, 0.0, 1.0, 0.75))  # alpha 0: just x / k^beta


def test_native_is_one_lrn_node_with_the_attributes_that_compute_it():
    sem, origin = semantics_from("caffe", "across", 5, alpha=1e-4, beta=0.75, k=2.0)
    model = export_onnx_model(sem, native=True, origin=origin)
    onnx.checker.check_model(model, full_check=True)
    (node,) = model.graph.node
    assert node.op_type == "LRN"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["size"] == 5 and attrs["bias"] == 2.0 and attrs["beta"] == 0.75
    assert np.isclose(attrs["alpha"], 1e-4, rtol=1e-7)  # float32 attribute
    assert {p.key: p.value for p in model.metadata_props}["lrn.native"] == "true"
    # TensorFlow's r=2, alpha=2e-5 is the same layer: the same node
    sem_tf, _ = semantics_from("tensorflow", "across", 5, alpha=2e-5, beta=0.75, k=2.0)
    (node_tf,) = export_onnx_model(sem_tf, native=True).graph.node
    assert [a.i for a in node_tf.attribute if a.name == "size"] == [5]


@pytest.mark.parametrize("why, convention, mode, size, layout, params, said", [
    ("even", "onnx", "across", 4, "NCHW", PARAMS, "rejects even sizes"),
    ("extra tap", "pytorch", "across", 4, "NCHW", PARAMS, "rejects even sizes"),
    ("within", "caffe", "within", 3, "NCHW", PARAMS, "no within-channel mode"),
    ("nhwc", "caffe", "across", 5, "NHWC", PARAMS, "NCHW"),
    ("alpha 0", "caffe", "across", 5, "NCHW", {"alpha": 0.0, "beta": 0.75, "k": 1.0},
     "alpha > 0"),
    ("beta 0", "caffe", "across", 5, "NCHW", {"alpha": 1.0, "beta": 0.0, "k": 1.0},
     "beta > 0"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_native_refused_with_the_reason(why, convention, mode, size, layout, params, said):
    sem, _ = semantics_from(convention, mode, size, **params)
    with pytest.raises(NativeRefused, match=said):
        export_onnx_model(sem, layout=layout, native=True)


# ---------------------------------------------------------------------------- Python (CI)

ALLOWED_IMPORTS = {"pytorch": {"torch", "torch.nn.functional"}, "tensorflow": {"tensorflow"}}
FORBIDDEN_NAMES = {"open", "exec", "eval", "compile", "__import__", "getattr", "globals",
                   "input", "breakpoint"}


def _source(target: str, sem: Semantics, layout: str, origin: dict) -> str:
    make = pytorch_source if target == "pytorch" else tensorflow_source
    return make(sem, layout=layout, origin=origin)


def _check_source(text: str, target: str) -> ast.Module:
    tree = ast.parse(text)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
        elif isinstance(node, ast.Name):
            assert node.id not in FORBIDDEN_NAMES, node.id
        elif isinstance(node, ast.Attribute):
            assert node.attr not in {"system", "popen", "remove", "unlink", "urlopen"}
    assert imported == ALLOWED_IMPORTS[target]
    return tree


@pytest.mark.parametrize("target", ["pytorch", "tensorflow"])
@pytest.mark.parametrize("case", MATRIX, ids=_id)
def test_python_source_parses_imports_only_its_framework_and_says_what_it_computes(
        case, target):
    convention, mode, size, layout = case
    sem, origin = _semantics(convention, mode, size)
    text = _source(target, sem, layout, origin)
    tree = _check_source(text, target)
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert "lrn" in defined
    if target == "pytorch":
        (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LRN"]
        init = next(n for n in cls.body if isinstance(n, ast.FunctionDef)
                    and n.name == "__init__")
        args = init.args
        assert len(args.defaults) == len(args.args) - 1  # LRN() needs no arguments
    head = text.split("\n\n", 1)[0].splitlines()
    assert all(line.startswith("#") for line in head)
    joined = "\n".join(head)
    from lrn_cli import __version__

    assert f"lrn {__version__}" in joined and f"convention {convention}" in joined
    assert f"a' = {sem.alpha_eff!r}" in joined and f"k' = {sem.k_eff!r}" in joined
    assert f"beta = {sem.beta!r}" in joined and f"layout {layout}" in joined
    window = f"[c-{sem.lo}, c+{sem.hi}]" if mode == "across" else f"[h-{sem.lo}, h+{sem.hi}]"
    assert window in joined
    constants = {t.id: ast.literal_eval(n.value) for n in tree.body
                 if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
                 and isinstance(n.value, ast.Constant)}
    assert constants["ALPHA"] == sem.alpha_eff and constants["K"] == sem.k_eff  # bit-exact
    assert constants["BETA"] == sem.beta and constants["LAYOUT"] == layout
    assert "cumsum" not in text and "cumulative" not in text


def test_names_from_a_model_cannot_break_out_of_the_comment():
    sem, _ = semantics_from("onnx", "across", 5)
    origin = {"file": "evil\nimport os\r\nos.system('x')\u2028.onnx",
              "layer": "n1\n__import__('os')", "convention": "onnx",
              "params": {"size\nimport sys": 5}}
    for target in ("pytorch", "tensorflow"):
        text = _source(target, sem, "NCHW", origin)
        tree = _check_source(text, target)
        assert not any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                       for n in tree.body)
        head = text.split("\n\n", 1)[0]
        assert all(line.startswith("#") for line in head.splitlines())
        assert "\\nimport os" in head
    model = export_onnx_model(sem, origin=origin)
    assert "\nimport os" not in model.doc_string


# ---------------------------------------------------------------------------- API and CLI


def test_export_writes_atomically_refuses_existing_and_inputs(tmp_path):
    import lrn_cli

    path = tmp_path / "m.py"
    result = lrn_cli.export("pytorch", convention="caffe", mode="within", size=3, path=path)
    assert result.path == path and path.read_bytes() == result.content
    assert result.semantics.spatial_axes == (2, 3) and result.layout == "NCHW"
    assert result.as_dict()["origin"]["params"] == {"local_size": 3, "alpha": 1e-4,
                                                    "beta": 0.75, "k": 2.0}
    with pytest.raises(OutputError, match="already exists"):
        export("pytorch", path=path)
    export("tensorflow", path=path, overwrite=True)
    assert b"import tensorflow" in path.read_bytes()
    with pytest.raises(OutputError, match="input"):
        export("tensorflow", path=path, overwrite=True, protect=[path])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_export_takes_semantics_objects_and_dicts_and_replaces_their_axes():
    sem = Semantics("across", 0, 3, 0.01, 1.0, 0.5, channel_axis=1)
    a = export("tensorflow", sem)
    b = export("tensorflow", sem.as_dict())
    assert a.content == b.content and a.layout == "NHWC" and a.semantics.channel_axis == 3
    assert b"LO, HI = 0, 3" in a.content
    with pytest.raises(ParameterError, match="NCHW or NHWC"):
        export("onnx", sem, layout="NCDHW")
    with pytest.raises(ParameterError, match="finite"):
        export("pytorch", Semantics("across", 1, 1, float("nan"), 1.0, 0.75))
    with pytest.raises(ParameterError, match="offset"):
        export("pytorch", Semantics("across", -1, 1, 1.0, 1.0, 0.75))
    with pytest.raises(ParameterError, match="rejects even"):
        export("onnx", convention="caffe", size=4)
    with pytest.raises(NativeRefused):
        export("pytorch", native=True)


def test_cli_writes_each_target(in_tmp):
    for target, name in (("onnx", "a.onnx"), ("pytorch", "a.py"), ("tensorflow", "b.py")):
        r = invoke(["export", target, "--convention", "onnx", "-n", "4", "-o", name])
        assert r.exit_code == 0, stderr_of(r)
        assert stdout_of(r) == ""
        assert f"wrote {name}" in stderr_of(r) and "[c-1, c+2]" in stderr_of(r)
    model = onnx.load(str(in_tmp / "a.onnx"))
    onnx.checker.check_model(model)
    assert "axis 3" in (in_tmp / "b.py").read_text()  # tensorflow defaults to NHWC


def test_cli_json_describes_what_was_written(in_tmp):
    r = invoke(["export", "onnx", "--convention", "tensorflow", "--depth-radius", "2",
                "--alpha", "2e-5", "--layout", "nhwc", "-o", "tf.onnx", "--json"])
    assert r.exit_code == 0, stderr_of(r)
    doc = json.loads(stdout_of(r))
    assert doc["schema"] == 1 and doc["target"] == "onnx" and doc["output"] == "tf.onnx"
    assert doc["layout"] == "NHWC" and doc["native"] is False and doc["opset"] == 13
    assert doc["semantics"] == {"mode": "across", "channel_axis": 3, "window": [2, 2],
                                "taps": 5, "alpha_eff": 2e-5, "k_eff": 2.0, "beta": 0.75}
    assert doc["origin"] == {"convention": "tensorflow", "mode": "across",
                             "params": {"depth_radius": 2, "alpha": 2e-5, "beta": 0.75,
                                        "bias": 2.0}}
    assert "LRN" not in doc["ops"] and doc["bytes"] == (in_tmp / "tf.onnx").stat().st_size


@pytest.mark.parametrize("target, args, call", [
    ("pytorch", ["--convention", "caffe", "-n", "5", "--k", "1"],
     "torch.nn.LocalResponseNorm(size=5, alpha=0.0001, beta=0.75, k=1.0)"),
    ("tensorflow", ["--convention", "pytorch", "-n", "5", "--alpha", "5e-4"],
     "tf.nn.local_response_normalization(depth_radius=2, alpha=0.0001, beta=0.75, bias=2.0)"),
    ("onnx", ["--convention", "tensorflow", "--depth-radius", "1", "--alpha", "1e-3"],
     "ONNX LRN(size=3, alpha=0.003, beta=0.75, bias=2.0)"),
    ("pytorch", ["--convention", "onnx", "-n", "4"], None),
    ("tensorflow", ["--convention", "pytorch", "-n", "5", "--layout", "NCHW"], None),
    ("onnx", ["--mode", "within", "-n", "3"], None),
])
def test_cli_names_the_frameworks_own_op_when_it_is_exact(in_tmp, target, args, call):
    r = invoke(["export", target, *args, "-o", "f", "--json"])
    assert r.exit_code == 0, stderr_of(r)
    own = json.loads(stdout_of(r))["own_op"]
    if call is None:
        assert own is None and "computes this layer too" not in stderr_of(r)
    else:
        assert own["call"] == call and f"{call} computes this layer too" in stderr_of(r)


def test_cli_stdout(in_tmp):
    r = invoke(["export", "pytorch", "-n", "3", "-o", "-"])
    assert r.exit_code == 0
    ast.parse(stdout_of(r))
    assert not list(in_tmp.iterdir())


@pytest.mark.parametrize("args, said", [
    (["onnx", "--convention", "caffe", "-n", "4", "-o", "x.onnx"], "rejects even window"),
    (["onnx", "--convention", "pytorch", "--mode", "within", "-o", "x.onnx"],
     "no within-channel"),
    (["onnx", "--convention", "onnx", "-n", "4", "--native", "-o", "x.onnx"],
     "--native refused"),
    (["onnx", "--mode", "within", "--native", "-o", "x.onnx"], "no within-channel mode"),
    (["onnx", "-n", "5", "--native", "--layout", "NHWC", "-o", "x.onnx"], "NCHW"),
    (["pytorch", "--native", "-o", "x.py"], "--native is for onnx"),
    (["tensorflow", "--channel-count", "3", "-o", "x.py"], "--channel-count is for onnx"),
    (["pytorch", "--layer", "norm1", "-o", "x.py"], "--layer needs --from-model"),
    (["pytorch", "--from-model", "m.onnx", "-n", "5", "-o", "x.py"], "leave out --size"),
    (["pytorch", "--from-model", "m.onnx", "--convention", "caffe", "-o", "x.py"],
     "leave out --convention"),
    (["pytorch", "-n", "3", "--depth-radius", "1", "-o", "x.py"], "not both"),
    (["pytorch", "-o", "-", "--json"], "no --json"),
    (["onnx", "--layout", "NCDHW", "-o", "x.onnx"], "NCDHW"),
])
def test_cli_usage_errors_exit_2_and_write_nothing(in_tmp, args, said):
    r = invoke(["export", *args])
    assert r.exit_code == 2, stderr_of(r)
    assert said in stderr_of(r)
    assert not list(in_tmp.iterdir())


def test_cli_existing_output_exit_1_untouched(in_tmp):
    (in_tmp / "x.py").write_text("keep")
    r = invoke(["export", "pytorch", "-o", "x.py"])
    assert r.exit_code == 1
    assert "already exists" in stderr_of(r) and "--overwrite" in stderr_of(r)
    assert (in_tmp / "x.py").read_text() == "keep"
    assert invoke(["export", "pytorch", "-o", "x.py", "--overwrite"]).exit_code == 0
    assert "class LRN" in (in_tmp / "x.py").read_text()


def test_export_imports_neither_numba_nor_a_framework():
    """Writing an export needs only the parameters (and onnx for onnx): no kernels."""
    probe = ("import sys\nfrom lrn_cli.cli import main\n"
             "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
             "heavy = {m.split('.')[0] for m in sys.modules} & "
             "{'numba', 'llvmlite', 'PIL', 'torch', 'tensorflow', 'onnxruntime', 'onnx'}\n"
             "print('PROBE', code, sorted(heavy))\n")
    for args, allowed in ((["export", "--help"], []),
                          (["export", "pytorch", "-n", "4", "-o", "-"], [])):
        p = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                           env=clean_env(), timeout=60, check=False,
                           cwd=os.path.dirname(os.path.dirname(__file__)))
        last = p.stdout.decode(errors="replace").rstrip().splitlines()[-1]
        assert last == f"PROBE 0 {allowed}", p.stderr.decode()


def test_onnx_export_without_the_onnx_package_says_how_to_get_it(tmp_path):
    probe = ("import sys\nsys.modules['onnx'] = None\nfrom lrn_cli.cli import main\n"
             "sys.argv = ['lrn', 'export', 'onnx', '-o', sys.argv[1]]\nmain()\n")
    out = tmp_path / "m.onnx"
    p = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True,
                       env=clean_env(), timeout=60, check=False)
    assert p.returncode == 1
    assert p.stderr.decode().strip() == ("error: lrn export onnx needs the onnx package "
                                         "(pip install 'lrn-cli[onnx]')")
    assert not out.exists()


# ---------------------------------------------------------------------------- --from-model


def _inspect_available() -> bool:
    try:
        importlib.import_module("lrn_cli.porting.inspect")
    except ImportError:
        return False
    return True


needs_inspect = pytest.mark.skipif(not _inspect_available(),
                                   reason="lrn_cli.porting.inspect does not import yet")


def _lrn_model(path: Path, layers: list[tuple[str, dict]]) -> Path:
    """An ONNX model: input -> LRN -> LRN ... with the given (name, attributes)."""
    from onnx import TensorProto, helper

    nodes, prev = [], "data"
    for i, (name, attrs) in enumerate(layers):
        out = f"{name}_out" if i < len(layers) - 1 else "prob"
        nodes.append(helper.make_node("LRN", [prev], [out], name=name, **attrs))
        prev = out
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 8, 5, 5])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 8, 5, 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


@needs_inspect
def test_from_model_one_layer(in_tmp):
    _lrn_model(in_tmp / "m.onnx", [("norm1", {"size": 4, "alpha": 1e-3, "beta": 0.75,
                                              "bias": 2.0})])
    r = invoke(["export", "pytorch", "--from-model", "m.onnx", "-o", "n.py", "--json"])
    assert r.exit_code == 0, stderr_of(r)
    doc = json.loads(stdout_of(r))
    assert doc["semantics"]["window"] == [1, 2]  # ONNX's even window: extra tap after c
    assert doc["semantics"]["alpha_eff"] == pytest.approx(1e-3 / 4, rel=1e-7)
    assert doc["origin"]["file"] == "m.onnx" and doc["origin"]["layer"] == "norm1"
    text = (in_tmp / "n.py").read_text()
    assert "layer 'norm1' of m.onnx" in text
    r = invoke(["export", "onnx", "--from-model", "m.onnx", "-o", "m.onnx", "--overwrite"])
    assert r.exit_code == 1 and "input" in stderr_of(r)  # never over the input
    r = invoke(["export", "onnx", "--from-model", "m.onnx", "-o", "n.onnx"])
    assert r.exit_code == 0, stderr_of(r)
    model = onnx.load(str(in_tmp / "n.onnx"))
    assert model.graph.input[0].name == "data" and model.graph.output[0].name == "prob"


@needs_inspect
def test_from_model_picks_the_layer_by_node_or_output_name(in_tmp):
    _lrn_model(in_tmp / "m.onnx", [
        ("norm1", {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}),
        ("norm2", {"size": 3, "alpha": 2e-4, "beta": 0.5, "bias": 2.0})])
    r = invoke(["export", "tensorflow", "--from-model", "m.onnx", "-o", "t.py"])
    assert r.exit_code == 2 and "norm1" in stderr_of(r) and "norm2" in stderr_of(r)
    r = invoke(["export", "tensorflow", "--from-model", "m.onnx", "--layer", "norm9",
                "-o", "t.py"])
    assert r.exit_code == 2 and "no LRN layer named" in stderr_of(r)
    for pick, taps in (("norm2", 3), ("norm1_out", 5), ("prob", 3)):
        r = invoke(["export", "tensorflow", "--from-model", "m.onnx", "--layer", pick,
                    "-o", "-"])
        assert r.exit_code == 0, stderr_of(r)
        assert f"({taps} taps)" in stdout_of(r)
    assert not (in_tmp / "t.py").exists()


SAMPLE_MODELS = Path(__file__).resolve().parent.parent / "samples" / "models"


@needs_inspect
def test_from_model_caffe_within_channel_layer(in_tmp):
    """py-faster-rcnn ZF's norm1 (V1 prototxt, WITHIN_CHANNEL, k ignored): the layer that
    neither PyTorch nor TensorFlow nor ONNX can express with its own op."""
    model = SAMPLE_MODELS / "zf_v1.prototxt"
    r = invoke(["export", "pytorch", "--from-model", model, "-o", "zf.py", "--json"])
    assert r.exit_code == 0, stderr_of(r)
    doc = json.loads(stdout_of(r))
    want, _ = semantics_from("caffe", "within", 3, alpha=5e-5, beta=0.75, k=1.0)
    assert doc["semantics"] == want.as_dict()
    assert doc["origin"]["convention"] == "caffe" and doc["origin"]["layer"] == "norm1"
    _check_source((in_tmp / "zf.py").read_text(), "pytorch")
    r = invoke(["export", "onnx", "--from-model", model, "-o", "zf.onnx", "--layout", "NHWC"])
    assert r.exit_code == 0, stderr_of(r)
    assert "the model's layer sums a box on axes [2, 3]" in stderr_of(r)
    graph = onnx.load(str(in_tmp / "zf.onnx")).graph
    assert (graph.input[0].name, graph.output[0].name) == ("conv1", "norm1")


@needs_inspect
def test_from_model_layer_name_matching_two_layers_is_refused(in_tmp):
    """A train_val prototxt holds one LRN per phase under one name: --layer cannot say which
    (it used to take the first silently)."""
    layer = ('layer {{ name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" '
             'include {{ phase: {phase} }} lrn_param {{ local_size: 5 alpha: {alpha} }} }}\n')
    (in_tmp / "tv.prototxt").write_text(layer.format(phase="TRAIN", alpha="0.0001")
                                        + layer.format(phase="TEST", alpha="0.0005"))
    r = invoke(["export", "pytorch", "--from-model", "tv.prototxt", "--layer", "norm1",
                "-o", "x.py"])
    assert r.exit_code == 2
    assert "2 LRN layers match --layer 'norm1' (lines 1, 2)" in stderr_of(r)
    assert not (in_tmp / "x.py").exists()


@needs_inspect
@pytest.mark.parametrize("args, code, said", [
    (["--layer", "norm3"], 2, "no LRN layer named 'norm3'"),
    ([], 2, "pick one with --layer (norm1, norm2)"),
])
def test_from_model_layer_choice_errors(in_tmp, args, code, said):
    r = invoke(["export", "onnx", "--from-model", SAMPLE_MODELS / "vgg_cnn_m.prototxt",
                *args, "-o", "v.onnx"])
    assert r.exit_code == code and said in stderr_of(r)
    assert not (in_tmp / "v.onnx").exists()


@needs_inspect
def test_from_model_unreadable_or_without_lrn_exit_1(in_tmp):
    (in_tmp / "plain.prototxt").write_text('name: "x"\nlayer { name: "c" type: "ReLU" }\n')
    (in_tmp / "junk.onnx").write_bytes(b"\x00\x01 not a model")
    for name in ("plain.prototxt", "junk.onnx", "missing.onnx"):
        r = invoke(["export", "pytorch", "--from-model", name, "-o", "x.py"])
        assert r.exit_code == 1, (name, stderr_of(r))
        assert stderr_of(r).startswith("error: ") and "Traceback" not in stderr_of(r)
    assert not (in_tmp / "x.py").exists()


# ---------------------------------------------------------------------------- conformance

_CONFORMANCE_MARKS = (pytest.mark.conformance,
                      pytest.mark.filterwarnings("ignore::DeprecationWarning"),
                      pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
                      pytest.mark.filterwarnings("ignore::FutureWarning"),
                      pytest.mark.filterwarnings("ignore::UserWarning"))


def conformance(fn):
    """Mark a test as needing a real framework (and quiet its import-time warnings)."""
    for mark in _CONFORMANCE_MARKS:
        fn = mark(fn)
    return fn


def _import(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip(name)


@pytest.fixture(scope="module")
def torch():
    return _import("torch")


@pytest.fixture(scope="module")
def ort():
    return _import("onnxruntime")


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return _import("tensorflow")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Every case of the matrix exported once per target: ``{(target, case): Exported}``."""
    folder = tmp_path_factory.mktemp("exports")
    out = {}
    for case in MATRIX:
        convention, mode, size, layout = case
        sem, origin = _semantics(convention, mode, size)
        for target, suffix in (("onnx", ".onnx"), ("pytorch", ".py"), ("tensorflow", ".py")):
            path = folder / f"{target}_{_id(case)}{suffix}"
            out[target, case] = export(target, sem, layout=layout, origin=origin, path=path)
    return out


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"export_{path.stem.replace('-', '_')}",
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ort_errors(ort, written):
    """onnxruntime's float32 error on every case (one session each, one thread)."""
    from lrn_cli.porting.export import run_artefact

    errors = {}
    for case in MATRIX:
        x = probe_input(_shape(case[3]), seed=1)
        got = run_artefact("onnx", written["onnx", case].path, x)
        errors[case] = _max_rel(got, _reference(x, *case))
    return errors


@pytest.fixture(scope="module")
def tf_errors(tf, written):
    """TensorFlow's float32 error on every case, each run inside tf.function (TF imports
    slowly: once, here)."""
    errors = {}
    for case in MATRIX:
        module = _load(written["tensorflow", case].path)
        fn = tf.function(module.lrn, input_signature=[
            tf.TensorSpec([None, None, None, None], tf.float32)])
        x = probe_input(_shape(case[3]), seed=2)
        got = fn(tf.constant(x)).numpy()
        assert got.dtype == np.float32
        errors[case] = _max_rel(got, _reference(x, *case))
        # the same trace serves another shape (symbolic sizes)
        x2 = probe_input((1,) + _shape(case[3])[1:], seed=5)
        errors[case] = max(errors[case], _max_rel(fn(tf.constant(x2)).numpy(),
                                                  _reference(x2, *case)))
    return errors


@pytest.mark.parametrize("case", MATRIX, ids=_id)
@conformance
def test_onnxruntime_matches_lrn_float32(case, ort_errors):
    assert ort_errors[case] < 1e-5


@pytest.mark.parametrize("case", MATRIX, ids=_id)
@conformance
def test_tensorflow_function_matches_lrn_float32(case, tf_errors):
    assert tf_errors[case] < 1e-5


@pytest.mark.parametrize("case", MATRIX, ids=_id)
@conformance
def test_pytorch_module_matches_lrn_and_lrn_backward(case, torch, written):
    from lrn_cli import lrn_backward

    convention, mode, size, layout = case
    module = _load(written["pytorch", case].path)
    layer = module.LRN()
    x32 = probe_input(_shape(layout), seed=4)
    with torch.no_grad():
        got32 = layer(torch.from_numpy(x32)).numpy()
    assert got32.dtype == np.float32
    assert _max_rel(got32, _reference(x32, *case)) < 1e-5

    x64 = x32.astype(np.float64)
    xt = torch.from_numpy(x64.copy()).requires_grad_(True)
    y = layer(xt)
    assert y.dtype == torch.float64
    assert _max_rel(y.detach().numpy(), _reference(x64, *case)) < 1e-10
    g = np.random.default_rng(7).standard_normal(x64.shape)
    y.backward(torch.from_numpy(g))
    axis = 1 if layout == "NCHW" else 3
    want = lrn_backward(x64, g, size, mode=mode, convention=convention, channel_axis=axis,
                        **_params(convention, size))
    assert _normalised(xt.grad.numpy(), want) < 1e-9


@conformance
def test_own_op_claims_hold_in_the_frameworks(torch, tf):
    """What own_op names computes what the export computes."""
    from lrn_cli.porting.export import own_op

    x = probe_input((2, 7, 6, 5), seed=9)
    for convention, size, params in (("caffe", 5, {"alpha": 1e-4, "beta": 0.75, "k": 1.0}),
                                     ("pytorch", 4, PARAMS), ("tensorflow", 3, PARAMS)):
        sem, _ = semantics_from(convention, "across", size, **params)
        want = sem.apply(x.astype(np.float64))
        torch_op = own_op("pytorch", sem, "NCHW")
        with torch.no_grad():
            got = torch.nn.LocalResponseNorm(**torch_op["params"])(torch.from_numpy(x))
        assert _max_rel(got.numpy(), want) < 1e-5
        tf_op = own_op("tensorflow", sem, "NHWC")
        if size % 2:
            got = tf.nn.local_response_normalization(np.moveaxis(x, 1, -1), **tf_op["params"])
            assert _max_rel(np.moveaxis(got.numpy(), -1, 1), want) < 1e-5
        else:
            assert tf_op is None


@pytest.mark.parametrize("target", ["onnx", "pytorch", "tensorflow"])
@conformance
def test_cli_check_runs_the_file_in_its_framework(in_tmp, target):
    _import({"onnx": "onnxruntime", "pytorch": "torch", "tensorflow": "tensorflow"}[target])
    r = invoke(["export", target, "--convention", "onnx", "-n", "4", "-o", "f", "--check",
                "--json"])
    assert r.exit_code == 0, stderr_of(r)
    doc = json.loads(stdout_of(r))
    assert doc["check"]["ok"] is True and doc["check"]["max_rel_error"] < 1e-5
    assert "checked in" in stderr_of(r)


@conformance
def test_native_node_runs_in_onnxruntime(ort, tmp_path):
    """The native node computes the layer (on moderate data: its float32 running sum loses
    ~1e-4 on values spanning 1e-4..1e4, which --check reports)."""
    from lrn_cli.porting.export import run_artefact

    for convention, params in (("caffe", PARAMS), ("tensorflow", {"alpha": 2e-5,
                                                                  "beta": 0.6, "k": 1.5})):
        res = export("onnx", convention=convention, size=5, native=True,
                     path=tmp_path / f"{convention}.onnx", **params)
        assert res.ops == ("LRN",)
        x = np.random.default_rng(0).standard_normal((2, 7, 6, 5)).astype(np.float32) * 10
        got = run_artefact("onnx", res.path, x)
        want = res.semantics.apply(x.astype(np.float64))
        assert _max_rel(got, want) < 1e-5
