"""Live conformance: lrn_cli against torch, tensorflow and onnxruntime, when they are installed.

Every test is marked ``conformance`` and skips cleanly when its framework is absent (CI has
none; ``tests/test_golden.py`` replays recorded outputs there).  Run them with e.g.
``PYTHONPATH=. /path/to/env-with-frameworks/bin/python -m pytest tests/test_conformance.py``.

Measures (tolerances 1e-5 for float32, 1e-12 for float64, as in ``test_golden.py``):

* forward: ``max |got - want| / max(|want|, tol/10 * max|want|)``: LRN's output has no
  cancellation, so each element is compared relative to itself;
* backward: ``|got - want|`` relative to ``|g D^-beta| + |2 beta a' x u|``, the two terms
  the gradient is the difference of (floored the same way).  A float32 autograd result is
  only good to ~eps32 of those terms, not of their difference (see ``KNOWN_EXCEEDANCES`` in
  ``test_golden.py``: up to 1.4e-4 in a plain relative measure); a wrong window, alpha or
  sign would still give errors of order 1.

onnxruntime gets inputs of moderate dynamic range (normal data): with values spanning
1e-4..1e4 its float32 running sum loses up to ~2e-4 relative (``test_golden.py`` records
and explains that case).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from lrn_cli import lrn, lrn_backward
from lrn_cli.errors import ParameterError
from lrn_cli.reference import reference_divisor, reference_lrn_backward

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def _import(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip(name)


@pytest.fixture(scope="module")
def torch():
    return _import("torch")


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return _import("tensorflow")


@pytest.fixture(scope="module")
def ort():
    _import("onnx")
    return _import("onnxruntime")


# ----------------------------------------------------------------------------------------
# helpers


def rel_err(got, want) -> float:
    want = np.asarray(want)
    tol = TOL[want.dtype]
    got = np.asarray(got, dtype=np.float64)
    want = want.astype(np.float64)
    assert got.shape == want.shape and np.all(np.isfinite(got))
    denom = np.maximum(np.abs(want), tol / 10 * np.max(np.abs(want), initial=0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(got == want, 0.0, np.abs(got - want) / denom)
    return float(np.max(err, initial=0.0))


def grad_err(got, want, x, g, **ref_kwargs) -> float:
    """Error of a gradient relative to the two terms it subtracts (see the module docstring)."""
    want = np.asarray(want)
    tol = TOL[want.dtype]
    x64 = np.asarray(x, dtype=np.float64)
    g64 = np.asarray(g, dtype=np.float64)
    first = g64 * reference_divisor(x64, **ref_kwargs) ** -ref_kwargs["beta"]
    terms = np.abs(first) + np.abs(first - reference_lrn_backward(x64, g64, **ref_kwargs))
    denom = np.maximum(terms, tol / 10 * np.max(terms, initial=0.0))
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape and np.all(np.isfinite(got))
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(got == want, 0.0, np.abs(got - want.astype(np.float64)) / denom)
    return float(np.max(err, initial=0.0))


def draw_input(rng, shape, dtype, span: bool) -> np.ndarray:
    if span:  # magnitudes 1e-4..1e4, both signs
        x = 10.0 ** rng.uniform(-4, 4, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    else:
        x = 2.0 * rng.standard_normal(size=shape)
    return np.ascontiguousarray(x, dtype=dtype)


def draw_params(rng) -> tuple[float, float, float]:
    alpha = float(rng.choice([1e-4, 1e-2, 0.5, 2.0]))
    beta = float(rng.choice([0.5, 0.75, 1.0, 1.3]))
    k = float(rng.choice([0.5, 1.0, 2.0]))
    return alpha, beta, k


def shapes_for(rng, size: int, channel_last: bool = False, ndims=(3, 4, 5)):
    """A random shape, plus one with fewer channels than the window (C=1 for size 1)."""
    out = []
    for channels in (int(rng.integers(1, 11)), max(1, size - 2)):
        ndim = int(rng.choice(ndims))
        spatial = [int(v) for v in rng.integers(1, 5, size=ndim - 2)]
        batch = int(rng.integers(1, 4))
        out.append(tuple([batch, *spatial, channels] if channel_last
                         else [batch, channels, *spatial]))
    return out


# ----------------------------------------------------------------------------------------
# torch


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("size", range(1, 9))
def test_torch_forward_backward(torch, size, dtype):
    import torch.nn.functional as F

    rng = np.random.default_rng(100 * size + np.dtype(dtype).itemsize)
    for shape in shapes_for(rng, size):
        for span in (False, True):
            alpha, beta, k = draw_params(rng)
            x = draw_input(rng, shape, dtype, span)
            g = draw_input(rng, shape, dtype, False)
            xt = torch.from_numpy(x.copy()).requires_grad_(True)
            yt = F.local_response_norm(xt, size, alpha=alpha, beta=beta, k=k)
            yt.backward(torch.from_numpy(g.copy()))
            kw = dict(alpha=alpha, beta=beta, k=k, convention="pytorch", channel_axis=1)
            where = f"shape={shape} size={size} alpha={alpha} beta={beta} k={k} span={span}"
            y = lrn(x, size, **kw)
            assert y.dtype == dtype
            assert rel_err(y, yt.detach().numpy()) <= TOL[np.dtype(dtype)], where
            dx = lrn_backward(x, g, size, **kw)
            assert dx.dtype == dtype
            err = grad_err(dx, xt.grad.numpy(), x, g, size=size, **kw)
            assert err <= TOL[np.dtype(dtype)], where


# ----------------------------------------------------------------------------------------
# tensorflow


@pytest.mark.parametrize("radius", range(5))
def test_tensorflow_forward_gradient(tf, radius):
    rng = np.random.default_rng(200 + radius)
    for shape in shapes_for(rng, 2 * radius + 1, channel_last=True, ndims=(4,)):
        for span in (False, True):
            alpha, beta, k = draw_params(rng)
            x = draw_input(rng, shape, np.float32, span)
            g = draw_input(rng, shape, np.float32, False)
            xv = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(xv)
                yv = tf.nn.local_response_normalization(
                    xv, depth_radius=radius, bias=k, alpha=alpha, beta=beta
                )
            dxv = tape.gradient(yv, xv, output_gradients=tf.constant(g))
            kw = dict(alpha=alpha, beta=beta, k=k, convention="tensorflow", channel_axis=-1)
            where = f"shape={shape} r={radius} alpha={alpha} beta={beta} bias={k} span={span}"
            y = lrn(x, depth_radius=radius, **kw)
            assert rel_err(y, yv.numpy()) <= TOL[np.dtype(np.float32)], where
            dx = lrn_backward(x, g, depth_radius=radius, **kw)
            err = grad_err(dx, dxv.numpy(), x, g, size=2 * radius + 1, **kw)
            assert err <= TOL[np.dtype(np.float32)], where


# ----------------------------------------------------------------------------------------
# onnxruntime


def ort_session(ort, shape, size, alpha, beta, bias):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=alpha, beta=beta, bias=bias)
    graph = helper.make_graph(
        [node], "lrn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("size", [1, 3, 5, 7, 9, 11])
def test_onnxruntime_forward(ort, size):
    rng = np.random.default_rng(300 + size)
    for shape in shapes_for(rng, size, ndims=(4,)):  # ORT's CPU LRN takes 4-D input only
        alpha, beta, k = draw_params(rng)
        x = draw_input(rng, shape, np.float32, span=False)
        (want,) = ort_session(ort, shape, size, alpha, beta, k).run(None, {"x": x})
        got = lrn(x, size, alpha=alpha, beta=beta, k=k, convention="onnxruntime")
        where = f"shape={shape} size={size} alpha={alpha} beta={beta} bias={k}"
        assert rel_err(got, want) <= TOL[np.dtype(np.float32)], where


@pytest.mark.parametrize(
    ("size", "alpha", "beta"),
    [(2, 1e-4, 0.75), (4, 1e-4, 0.75), (8, 1e-4, 0.75), (3, 0.0, 0.75), (3, 1e-4, 0.0)],
)
def test_onnxruntime_rejections_match(ort, size, alpha, beta):
    """Even sizes, alpha <= 0 and beta <= 0: ORT refuses them, and so does our convention."""
    x = np.ones((1, 4, 2, 2), dtype=np.float32)
    with pytest.raises(Exception, match=r"size_ % 2 == 1|alpha_ > 0|beta_ > 0"):
        ort_session(ort, x.shape, size, alpha, beta, 1.0).run(None, {"x": x})
    with pytest.raises(ParameterError):
        lrn(x, size, alpha=alpha, beta=beta, k=1.0, convention="onnxruntime")
    # the ONNX spec itself (convention "onnx") accepts all of these
    lrn(x, size, alpha=alpha, beta=beta, k=1.0, convention="onnx")
