"""The ONNX export: LRN from standard opset-13 ops, or one native ``LRN`` node.

The graph (one float32 input, one output of the same shape)::

    sq  = Mul(x, x)
    sq' = Transpose(sq)            only where the summed axes are not the last two
    p   = Pad(sq', zeros: lo before, hi after, on each summed axis)
    m   = AveragePool(p, kernel taps on each summed axis, 1 elsewhere; no padding)
    m'  = Transpose(m)             back, if transposed
    D   = Add(Mul(m', a' * count), k')     count = taps (across) or taps² (within)
    y   = Div(x, Pow(D, beta))

2-D pooling only (every runtime has it: TensorRT, WebNN, CoreML ...), explicit zero
padding (no reliance on ``count_include_pad``), and each window's squares are summed by the
pool itself, never as differences of running sums.
"""

from __future__ import annotations

import json
from typing import Any

from lrn_cli.errors import ParameterError
from lrn_cli.porting.export import NativeRefused, lrn_version, origin_text, what_text
from lrn_cli.porting.semantics import Semantics

OPSET = 13
IR_VERSION = 7  # the IR of opset 13: loadable by every runtime that knows the opset


def _plan(sem: Semantics, layout: str) -> tuple[list[int] | None, list[int] | None,
                                                 list[int], list[int]]:
    """``(perm, back, pads, kernel)`` for the 4-D tensor after ``perm``: AveragePool pools
    axes 2 and 3, so the summed axes are moved there."""
    lo, hi, taps = sem.lo, sem.hi, sem.taps
    if sem.mode == "across":
        if layout == "NCHW":  # (N, C, H, W) -> (N, H, C, W): C on axis 2
            perm = back = [0, 2, 1, 3]
            return perm, back, [0, 0, lo, 0, 0, 0, hi, 0], [taps, 1]
        # (N, H, W, C): C is already axis 3
        return None, None, [0, 0, 0, lo, 0, 0, 0, hi], [1, taps]
    if layout == "NCHW":
        return None, None, [0, 0, lo, lo, 0, 0, hi, hi], [taps, taps]
    # (N, H, W, C) -> (N, C, H, W) and back
    return [0, 3, 1, 2], [0, 2, 3, 1], [0, 0, lo, lo, 0, 0, hi, hi], [taps, taps]


def _doc(sem: Semantics, layout: str, origin: dict[str, Any], native: bool) -> str:
    lines = [f"Local Response Normalization exported by lrn {lrn_version()} "
             f"({'one native LRN node' if native else 'standard ops only'})."]
    lines += what_text(sem, layout)
    lines.append(f"From: {origin_text(origin)}.")
    return "\n".join(lines)


def native_params(sem: Semantics, layout: str) -> dict[str, float | int]:
    """The ``LRN`` node's attributes computing exactly ``sem`` in onnxruntime, or
    :class:`NativeRefused` saying why there are none."""
    from lrn_cli.conventions import NoExactTranslation, express

    if sem.mode != "across":
        raise NativeRefused("the ONNX LRN operator has no within-channel mode: export "
                            "without --native (standard ops compute it exactly)")
    if layout != "NCHW":
        raise NativeRefused("the ONNX LRN operator normalizes axis 1 (NCHW); for NHWC it "
                            "would need transposes around it: export without --native")
    try:
        found = express("onnxruntime", "across", sem.lo, sem.hi, sem.alpha_eff, sem.k_eff,
                        sem.beta, what="this layer")
    except NoExactTranslation as exc:
        raise NativeRefused(f"no native LRN node computes it in onnxruntime: {exc}; export "
                            "without --native") from None
    return found.params


def build_model(sem: Semantics, *, layout: str, native: bool, origin: dict[str, Any],
                channels: int | None, input_name: str, output_name: str):
    """The :class:`onnx.ModelProto` (checked by ``onnx.checker``, shapes inferred)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if input_name == output_name:
        raise ParameterError(
            f"input and output need different names, not both {input_name!r}")
    if channels is not None and (isinstance(channels, bool) or int(channels) < 1):
        raise ParameterError(f"channels must be >= 1, not {channels!r}")
    dims: dict[str, Any] = {"N": "N", "C": "C" if channels is None else int(channels),
                            "H": "H", "W": "W"}
    shape = [dims[letter] for letter in layout]
    x_info = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)
    y_info = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, shape)
    nodes = []
    inits = []

    def const(name: str, value, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    if native:
        params = native_params(sem, layout)
        nodes.append(helper.make_node("LRN", [input_name], [output_name], name="lrn",
                                      size=int(params["size"]), alpha=float(params["alpha"]),
                                      beta=float(params["beta"]),
                                      bias=float(params["bias"])))
    else:
        perm, back, pads, kernel = _plan(sem, layout)
        count = sem.taps if sem.mode == "across" else sem.taps * sem.taps
        for what, value in (("a' * taps", sem.alpha_eff * count), ("k'", sem.k_eff),
                            ("beta", sem.beta)):
            if not (value == 0 or 1.2e-38 <= abs(value) <= 3.4e38):  # normal float32
                raise ParameterError(f"{what} = {value!r} does not fit a float32 constant")
        nodes.append(helper.make_node("Mul", [input_name, input_name], ["lrn_sq"],
                                      name="lrn_square"))
        src = "lrn_sq"
        if perm is not None:
            nodes.append(helper.make_node("Transpose", [src], ["lrn_sq_t"], perm=perm,
                                          name="lrn_to_pool_axes"))
            src = "lrn_sq_t"
        nodes.append(helper.make_node("Pad", [src, const("lrn_pads", pads, np.int64)],
                                      ["lrn_padded"], mode="constant", name="lrn_zero_pad"))
        nodes.append(helper.make_node("AveragePool", ["lrn_padded"], ["lrn_mean"],
                                      kernel_shape=kernel, strides=[1, 1],
                                      pads=[0, 0, 0, 0], count_include_pad=1,
                                      name="lrn_window_mean"))
        src = "lrn_mean"
        if back is not None:
            nodes.append(helper.make_node("Transpose", [src], ["lrn_mean_t"], perm=back,
                                          name="lrn_from_pool_axes"))
            src = "lrn_mean_t"
        nodes.append(helper.make_node("Mul", [src, const("lrn_scale",
                                                         sem.alpha_eff * count)],
                                      ["lrn_scaled"], name="lrn_times_alpha"))
        nodes.append(helper.make_node("Add", ["lrn_scaled", const("lrn_k", sem.k_eff)],
                                      ["lrn_divisor"], name="lrn_plus_k"))
        nodes.append(helper.make_node("Pow", ["lrn_divisor", const("lrn_beta", sem.beta)],
                                      ["lrn_gain_inv"], name="lrn_power"))
        nodes.append(helper.make_node("Div", [input_name, "lrn_gain_inv"], [output_name],
                                      name="lrn_divide"))
    doc = _doc(sem, layout, origin, native)
    graph = helper.make_graph(nodes, "lrn", [x_info], [y_info], initializer=inits,
                              doc_string=doc)
    model = helper.make_model(graph, producer_name="lrn", producer_version=lrn_version(),
                              opset_imports=[helper.make_opsetid("", OPSET)], doc_string=doc)
    model.ir_version = IR_VERSION
    meta = {
        "lrn.version": lrn_version(),
        "lrn.computes": "; ".join(
            " ".join(line.split()) for line in what_text(sem, layout)).replace(",; ", ", "),
        "lrn.semantics": json.dumps(sem.as_dict(), sort_keys=True),
        "lrn.layout": layout,
        "lrn.native": "true" if native else "false",
        "lrn.origin": json.dumps(origin, sort_keys=True, default=str),
        "lrn.from": origin_text(origin),
    }
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model
