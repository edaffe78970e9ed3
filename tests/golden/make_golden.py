"""Record golden LRN fixtures from the real frameworks (torch, tensorflow, onnxruntime).

How to run (from the repository root, in an environment that has torch, tensorflow-cpu,
onnx and onnxruntime; ``lrn_cli`` is *not* imported, so the fixtures do not depend on it)::

    /work/peers/bin/python tests/golden/make_golden.py            # (re)write the fixtures
    /work/peers/bin/python tests/golden/make_golden.py --check    # compare, write nothing

What it writes: one ``tests/golden/<framework>.npz`` per framework (``torch.npz``,
``tensorflow.npz``, ``onnxruntime.npz``).  Case ``i`` of a file is stored under the keys

* ``case{i}_x``         the input (seeded; float32 or float64),
* ``case{i}_y``         the framework's output for it,
* ``case{i}_grad_out``  a seeded gradient of the output (torch and tensorflow only),
* ``case{i}_grad_x``    the framework's gradient w.r.t. ``x`` for that ``grad_out``
  (torch autograd / ``tf.GradientTape``),
* ``case{i}_meta``      a 0-d string array holding JSON: ``convention`` (the ``lrn_cli``
  convention name: ``pytorch`` / ``tensorflow`` / ``onnxruntime``), ``mode`` ("across"),
  ``size`` (the window width n), ``depth_radius`` (tensorflow only, n = 2r+1), ``alpha``,
  ``beta``, ``k``, ``channel_axis``, ``dtype``, ``shape``, ``input`` (how x was drawn),
  ``seed``, ``framework``, ``framework_version``, ``call`` (the exact framework call) and
  ``note``.

Parameters are passed to each framework in its own terms (torch ``size/alpha/beta/k``,
tensorflow ``depth_radius/bias/alpha/beta``, ONNX ``size/alpha/beta/bias``), so the meta
values are the framework's values, to be given unchanged to ``lrn_cli.lrn(...,
convention=meta["convention"])``.

What the cases cover:

* torch ``F.local_response_norm``: float32 and float64, sizes 1..7 (odd and even), NCHW,
  3-D ``(N, C, L)`` and 5-D ``(N, C, D, H, W)`` inputs, C=3 with size > C, C=1;
* tensorflow ``tf.nn.local_response_normalization``: NHWC float32 (TF has no float64 LRN
  kernel), depth_radius 0..3 (plus TF's own defaults r=5, and an L2-normalization case with
  bias 0), C=3 with 2r+1 > C, C=1, and the ``shared/lrn-conventions.md`` section 9 example
  exactly (``x = arange(1, 33).reshape(2, 2, 2, 4)``, r=2, bias=1, alpha=1, beta=0.75);
* onnxruntime (CPU) running a one-node ONNX model (``LRN``, opset 13) built with
  ``onnx.helper``: float32 (ORT's only LRN type), 4-D NCHW (the ORT CPU kernel rejects other
  ranks), odd sizes 1..9 including size > C and C=1.  The script also asserts that ORT
  rejects even sizes (session creation fails: ``size_ % 2 == 1 was false``) and non-4-D
  input; nothing is stored for those.

Inputs are drawn with ``numpy.random.default_rng(seed)`` and include values spanning
1e-4..1e4 in magnitude with both signs ("span"), plus normal ("normal") data.  Frameworks
run single-threaded (tensorflow with ``TF_ENABLE_ONEDNN_OPTS=0``, i.e. its own
``lrn_op.cc`` kernel; the oneDNN path was found bit-identical), so the fixtures are
reproducible; the npz files are written with fixed zip timestamps, so re-running the script
with the same framework versions rewrites identical bytes.  Keep the total under 300 KB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
MAX_TOTAL_BYTES = 300_000
ORT_OPSET = 13
ORT_IR_VERSION = 8  # onnx 1.23 writes IR 12+, newer than some onnxruntime builds accept


# ----------------------------------------------------------------------------------------
# inputs


def make_input(kind: str, shape: tuple[int, ...], seed: int, dtype) -> np.ndarray:
    """A seeded input: ``span`` = magnitudes 10**U(-4, 4) with random signs (the first
    four entries pinned to +1e-4, -1e-4, +1e4, -1e4), ``normal`` = N(0, 2**2)."""
    rng = np.random.default_rng(seed)
    if kind == "span":
        x = 10.0 ** rng.uniform(-4.0, 4.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        flat = x.reshape(-1)
        flat[: min(4, flat.size)] = [1e-4, -1e-4, 1e4, -1e4][: min(4, flat.size)]
    elif kind == "normal":
        x = 2.0 * rng.standard_normal(size=shape)
    elif kind == "arange":
        x = np.arange(1, 1 + int(np.prod(shape)), dtype=np.float64).reshape(shape)
    else:
        raise ValueError(kind)
    return np.ascontiguousarray(x, dtype=dtype)


def make_grad(shape: tuple[int, ...], seed: int, dtype) -> np.ndarray:
    """A seeded gradient of the output, N(0, 1)."""
    rng = np.random.default_rng(seed + 10_000)
    return np.ascontiguousarray(rng.standard_normal(size=shape), dtype=dtype)


# ----------------------------------------------------------------------------------------
# torch


# (shape, dtype, size, alpha, beta, k, input kind, note)
TORCH_CASES = [
    ((2, 6, 3, 4), "float32", 1, 1e-4, 0.75, 1.0, "span", "size 1"),
    ((2, 6, 3, 4), "float32", 2, 1e-3, 0.75, 1.0, "span", "even size"),
    ((2, 7, 3, 3), "float32", 3, 1e-2, 0.5, 2.0, "normal", ""),
    ((1, 8, 4, 3), "float32", 4, 1.0, 0.75, 1.0, "normal", "even size"),
    ((2, 6, 2, 3), "float32", 5, 1e-4, 0.75, 2.0, "span", "AlexNet constants"),
    ((1, 9, 3, 2), "float32", 6, 0.1, 1.0, 0.5, "normal", "even size"),
    ((2, 8, 2, 2), "float32", 7, 2e-4, 0.6, 1.5, "span", ""),
    ((2, 3, 4, 4), "float32", 5, 1.0, 0.75, 1.0, "normal", "C=3, size > C"),
    ((1, 3, 3, 3), "float32", 6, 1.0, 0.75, 1.0, "span", "C=3, even size > C"),
    ((2, 1, 4, 5), "float32", 3, 1.0, 0.75, 1.0, "normal", "C=1"),
    ((2, 5, 7), "float32", 4, 1e-2, 0.75, 1.0, "normal", "3-D (N, C, L), even size"),
    ((3, 6, 5), "float32", 3, 1e-4, 0.75, 1.0, "span", "3-D (N, C, L)"),
    ((1, 6, 2, 3, 3), "float32", 5, 1e-3, 0.75, 1.0, "span", "5-D (N, C, D, H, W)"),
    ((2, 4, 2, 2, 3), "float32", 2, 0.5, 0.75, 1.0, "normal", "5-D, even size"),
    ((2, 6, 3, 4), "float64", 1, 1e-4, 0.75, 1.0, "span", "size 1"),
    ((2, 6, 3, 4), "float64", 2, 1e-3, 0.75, 1.0, "span", "even size"),
    ((2, 7, 3, 3), "float64", 3, 1e-2, 0.5, 2.0, "normal", ""),
    ((1, 8, 4, 3), "float64", 4, 1.0, 0.75, 1.0, "normal", "even size"),
    ((2, 6, 2, 3), "float64", 5, 1e-4, 0.75, 2.0, "span", "AlexNet constants"),
    ((1, 9, 3, 2), "float64", 6, 0.1, 1.0, 0.5, "normal", "even size"),
    ((2, 8, 2, 2), "float64", 7, 2e-4, 0.6, 1.5, "span", ""),
    ((2, 3, 4, 4), "float64", 7, 1.0, 0.75, 1.0, "span", "C=3, size > C"),
    ((1, 3, 3, 3), "float64", 4, 1.0, 0.75, 1.0, "normal", "C=3, even size > C"),
    ((2, 1, 4, 5), "float64", 2, 1.0, 0.75, 1.0, "span", "C=1, even size"),
    ((2, 5, 7), "float64", 5, 1e-2, 0.75, 1.0, "span", "3-D (N, C, L)"),
    ((3, 6, 5), "float64", 6, 1e-4, 0.75, 1.0, "normal", "3-D (N, C, L), even size"),
    ((1, 6, 2, 3, 3), "float64", 3, 1e-3, 0.75, 1.0, "span", "5-D (N, C, D, H, W)"),
    ((2, 4, 2, 2, 3), "float64", 4, 0.5, 0.75, 1.0, "normal", "5-D, even size"),
]


def record_torch(seed0: int = 1000) -> list[dict[str, np.ndarray]]:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    cases = []
    for i, (shape, dtype, size, alpha, beta, k, kind, note) in enumerate(TORCH_CASES):
        seed = seed0 + i
        x = make_input(kind, shape, seed, dtype)
        g = make_grad(shape, seed, dtype)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        yt = F.local_response_norm(xt, size, alpha=alpha, beta=beta, k=k)
        yt.backward(torch.from_numpy(g.copy()))
        y = yt.detach().numpy().copy()
        dx = xt.grad.numpy().copy()
        assert y.dtype == x.dtype and dx.dtype == x.dtype
        meta = dict(
            convention="pytorch", mode="across", size=size, alpha=alpha, beta=beta, k=k,
            channel_axis=1, dtype=dtype, shape=list(shape), input=kind, seed=seed,
            framework="torch", framework_version=torch.__version__,
            call=f"F.local_response_norm(x, {size}, alpha={alpha}, beta={beta}, k={k}); "
                 "grad via autograd y.backward(grad_out)",
            note=note,
        )
        cases.append(dict(x=x, y=y, grad_out=g, grad_x=dx, meta=meta))
    return cases


# ----------------------------------------------------------------------------------------
# tensorflow

SEC9_NOTE = "shared/lrn-conventions.md section 9 example"

# (shape NHWC, depth_radius, alpha, beta, bias, input kind, note)
TF_CASES = [
    ((2, 2, 2, 4), 2, 1.0, 0.75, 1.0, "arange", SEC9_NOTE),
    ((2, 3, 3, 5), 0, 1e-4, 0.75, 1.0, "span", "depth_radius 0 (size 1)"),
    ((1, 4, 3, 6), 1, 1e-2, 0.5, 2.0, "normal", "beta 0.5 (rsqrt path)"),
    ((2, 3, 2, 8), 2, 2e-5, 0.75, 1.0, "span", "Caffe alpha 1e-4 / 5"),
    ((1, 3, 3, 7), 3, 0.1, 1.0, 1.0, "normal", "beta 1 (reciprocal path)"),
    ((2, 3, 3, 3), 3, 1.0, 0.75, 1.0, "span", "C=3, window 7 > C"),
    ((2, 3, 4, 1), 1, 1.0, 0.75, 1.0, "normal", "C=1"),
    ((1, 2, 2, 12), 5, 1.0, 0.5, 1.0, "normal", "TF defaults (r=5, alpha=1, beta=0.5)"),
    ((2, 2, 3, 4), 3, 1.0, 0.5, 0.0, "normal", "bias 0, alpha 1, beta 0.5: L2 normalization"),
    ((2, 2, 2, 6), 2, 1e-3, 0.65, 1.5, "span", ""),
]


def record_tensorflow(seed0: int = 2000) -> list[dict[str, np.ndarray]]:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cases = []
    for i, (shape, r, alpha, beta, bias, kind, note) in enumerate(TF_CASES):
        seed = seed0 + i
        x = make_input(kind, shape, seed, np.float32)
        g = make_grad(shape, seed, np.float32)
        xv = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xv)
            yv = tf.nn.local_response_normalization(
                xv, depth_radius=r, bias=bias, alpha=alpha, beta=beta
            )
        dx = tape.gradient(yv, xv, output_gradients=tf.constant(g)).numpy()
        y = yv.numpy()
        assert y.dtype == np.float32 and dx.dtype == np.float32
        meta = dict(
            convention="tensorflow", mode="across", size=2 * r + 1, depth_radius=r,
            alpha=alpha, beta=beta, k=bias, channel_axis=-1, dtype="float32",
            shape=list(shape), input=kind, seed=seed,
            framework="tensorflow", framework_version=tf.__version__,
            call=f"tf.nn.local_response_normalization(x, depth_radius={r}, bias={bias}, "
                 f"alpha={alpha}, beta={beta}); grad via tf.GradientTape output_gradients",
            note=note,
            tf_enable_onednn_opts=os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""),
        )
        cases.append(dict(x=x, y=y, grad_out=g, grad_x=dx, meta=meta))
    return cases


# ----------------------------------------------------------------------------------------
# onnxruntime


def ort_lrn_session(shape, size, alpha, beta, bias):
    """An onnxruntime CPU session running one ONNX ``LRN`` node (opset 13, float32)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=alpha, beta=beta, bias=bias)
    graph = helper.make_graph(
        [node], "lrn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ORT_OPSET)])
    model.ir_version = ORT_IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )


# (shape NCHW, size, alpha, beta, bias, input kind, note)
ORT_CASES = [
    ((2, 6, 3, 4), 1, 1e-4, 0.75, 1.0, "span", "size 1"),
    ((2, 7, 3, 3), 3, 1e-2, 0.5, 2.0, "normal", ""),
    ((2, 6, 2, 3), 5, 1e-4, 0.75, 2.0, "span", "AlexNet constants"),
    ((1, 8, 2, 2), 7, 2e-4, 0.6, 1.5, "span", ""),
    ((2, 3, 4, 4), 5, 1.0, 0.75, 1.0, "normal", "C=3, size > C"),
    ((1, 3, 3, 3), 9, 1.0, 0.75, 1.0, "span", "C=3, size 9 > C"),
    ((2, 1, 4, 5), 3, 1.0, 0.75, 1.0, "normal", "C=1"),
    ((1, 10, 2, 3), 5, 1.0, 1.0, 1.0, "normal", "beta 1"),
]


def check_ort_rejections() -> None:
    """Assert what ORT refuses (nothing is stored for these)."""
    x = np.ones((1, 4, 2, 2), dtype=np.float32)
    for size in (2, 4, 6):
        try:
            sess = ort_lrn_session(x.shape, size, 1e-4, 0.75, 1.0)
            sess.run(None, {"x": x})
        except Exception as exc:  # onnxruntime raises its own Fail type
            assert "size_ % 2 == 1" in str(exc), str(exc)
        else:
            raise AssertionError(f"onnxruntime accepted even size {size}")
    for shape in ((1, 4, 3), (1, 4, 2, 2, 2)):
        try:
            ort_lrn_session(shape, 3, 1e-4, 0.75, 1.0).run(
                None, {"x": np.ones(shape, dtype=np.float32)}
            )
        except Exception as exc:
            assert "NumDimensions" in str(exc), str(exc)
        else:
            raise AssertionError(f"onnxruntime accepted a {len(shape)}-D LRN input")


def record_onnxruntime(seed0: int = 3000) -> list[dict[str, np.ndarray]]:
    import onnx
    import onnxruntime as ort

    check_ort_rejections()
    cases = []
    for i, (shape, size, alpha, beta, bias, kind, note) in enumerate(ORT_CASES):
        seed = seed0 + i
        x = make_input(kind, shape, seed, np.float32)
        (y,) = ort_lrn_session(shape, size, alpha, beta, bias).run(None, {"x": x})
        assert y.dtype == np.float32 and y.shape == x.shape
        meta = dict(
            convention="onnxruntime", mode="across", size=size, alpha=alpha, beta=beta,
            k=bias, channel_axis=1, dtype="float32", shape=list(shape), input=kind,
            seed=seed, framework="onnxruntime", framework_version=ort.__version__,
            onnx_version=onnx.__version__, opset=ORT_OPSET,
            call=f"ONNX LRN(size={size}, alpha={alpha}, beta={beta}, bias={bias}) on "
                 "onnxruntime CPUExecutionProvider",
            note=note,
        )
        cases.append(dict(x=x, y=np.ascontiguousarray(y), meta=meta))
    return cases


# ----------------------------------------------------------------------------------------
# storage


def to_arrays(cases: list[dict]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for i, case in enumerate(cases):
        for key, value in case.items():
            if key == "meta":
                arrays[f"case{i}_meta"] = np.array(json.dumps(value, sort_keys=True))
            else:
                arrays[f"case{i}_{key}"] = np.ascontiguousarray(value)
    return arrays


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but byte-reproducible (fixed zip timestamps)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    path.write_bytes(buf.getvalue())


def same_arrays(path: Path, arrays: dict[str, np.ndarray]) -> list[str]:
    """Keys whose stored value differs from ``arrays`` (bitwise), or are missing/extra."""
    if not path.exists():
        return ["<file missing>"]
    with np.load(path, allow_pickle=False) as old:
        diff = sorted(set(old.files) ^ set(arrays))
        for key in sorted(set(old.files) & set(arrays)):
            a, b = old[key], arrays[key]
            if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                diff.append(key)
    return diff


RECORDERS = {
    "torch": record_torch,
    "tensorflow": record_tensorflow,
    "onnxruntime": record_onnxruntime,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="directory (default: here)")
    parser.add_argument("--check", action="store_true",
                        help="re-record and compare with the stored fixtures; write nothing")
    parser.add_argument("frameworks", nargs="*", metavar="FRAMEWORK",
                        help=f"subset to record, from {', '.join(RECORDERS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.frameworks) - set(RECORDERS))
    if unknown:
        parser.error(f"unknown framework(s) {unknown}; known: {', '.join(RECORDERS)}")
    names = args.frameworks or list(RECORDERS)
    status = 0
    for name in names:
        arrays = to_arrays(RECORDERS[name]())
        path = args.out / f"{name}.npz"
        ncases = sum(key.endswith("_meta") for key in arrays)
        if args.check:
            diff = same_arrays(path, arrays)
            print(f"{path}: {ncases} cases, " + ("identical" if not diff else f"DIFFER: {diff}"))
            status |= bool(diff)
        else:
            write_npz(path, arrays)
            print(f"{path}: {ncases} cases, {path.stat().st_size} bytes")
    total = sum((args.out / f"{n}.npz").stat().st_size
                for n in RECORDERS if (args.out / f"{n}.npz").exists())
    print(f"total {total} bytes (limit {MAX_TOTAL_BYTES})")
    if total >= MAX_TOTAL_BYTES:
        print("fixtures too large", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
