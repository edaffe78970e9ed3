"""ONNX models: every ``LRN`` node, wherever it sits.

Read with the ``onnx`` package (``pip install "lrn-cli[onnx]"``), from the bytes already
read, so external data is never loaded.  LRN nodes are found in the main graph, in subgraphs
(``If``/``Loop``/``Scan`` bodies, at any depth) and in model-local functions (one layer per
call site when the function's LRN takes its attributes from the caller).  QDQ models are read
like any other: an LRN between ``DequantizeLinear`` and ``QuantizeLinear`` runs on float
values and says so.

The operator (onnx/onnx ``onnx/defs/nn/defs.cc``, LRN-1 and LRN-13): ``size`` (INT,
required), ``alpha`` (FLOAT, 1e-4), ``beta`` (FLOAT, 0.75), ``bias`` (FLOAT, 1).  ONNX stores
float32: a float attribute is reported as the shortest decimal that reads back to the same
float32 (``0.0001``, not ``9.999999747378752e-05``).  A binary file has no lines: problems
name the node and where it sits.
"""

from __future__ import annotations

from typing import Any

from lrn_cli.errors import InputError, ParameterError
from lrn_cli.porting.models import MAX_LAYERS, ModelFile, RawLayer

#: Shape inference is skipped for models above this size (it serializes the model again).
INFER_LIMIT = 256 * 2**20
_ATTRS: dict[str, tuple[str, Any]] = {"size": ("INT", None), "alpha": ("FLOAT", 1e-4),
                                      "beta": ("FLOAT", 0.75), "bias": ("FLOAT", 1.0)}
_DTYPES = {"FLOAT": "float32", "FLOAT16": "float16", "DOUBLE": "float64",
           "BFLOAT16": "bfloat16", "INT8": "int8", "UINT8": "uint8"}


class _Bad(Exception):
    pass


def _f32(value: float) -> float:
    import numpy as np

    return float(str(np.float32(value)))


def read(path: str, data: bytes) -> ModelFile:
    """The LRN nodes of the serialized ONNX model ``data`` (from ``path``)."""
    try:
        import onnx
    except ImportError:
        raise InputError(path, "an ONNX model: reading it needs the onnx package "
                               "(pip install \"lrn-cli[onnx]\")") from None
    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError and kin: the bytes are not a model
        raise InputError(path, f"not a readable ONNX model ({type(exc).__name__}: "
                               f"{str(exc)[:200] or 'truncated or corrupt'})") from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise InputError(path, "not an ONNX model (no ir_version or no graph)")
    try:
        return _Reader(path, model, data).run()
    except _Bad as exc:
        raise InputError(path, str(exc)) from None


class _Reader:
    def __init__(self, path: str, model: Any, data: bytes) -> None:
        self.path = path
        self.model = model
        self.data = data
        self.layers: list[RawLayer] = []
        self.notes: list[str] = []
        self.types: dict[str, tuple[str | None, list[int | None] | None]] = {}

    def run(self) -> ModelFile:
        self._shapes()
        opsets = {op.domain or "ai.onnx": op.version for op in self.model.opset_import}
        version = opsets.get("ai.onnx")
        if self.model.producer_name:
            self.notes.append(f"produced by {self.model.producer_name} "
                              f"{self.model.producer_version}".strip())
        if version is not None:
            self.notes.append(f"ai.onnx opset {version}" + (
                " (LRN-1)" if version < 13 else " (LRN-13)"))
        functions = {(f.domain, f.name): f for f in self.model.functions}
        self._graph(self.model.graph, None, functions, depth=0)
        for f in self.model.functions:
            self._function(f, functions)
        return ModelFile(self.path, "onnx", self.layers, self.notes)

    # -- shapes and element types ---------------------------------------------------------
    def _shapes(self) -> None:
        import onnx

        model = self.model
        if len(self.data) <= INFER_LIMIT:
            try:
                model = onnx.shape_inference.infer_shapes(self.model)
            except Exception:  # shape inference is a help, never a requirement
                model = self.model
        graph = model.graph
        for info in (*graph.input, *graph.value_info, *graph.output):
            t = info.type.tensor_type if info.type.HasField("tensor_type") else None
            if t is None:
                continue
            dtype = _DTYPES.get(onnx.TensorProto.DataType.Name(t.elem_type)) \
                if t.elem_type else None
            dims = None
            if t.HasField("shape"):
                dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            self.types[info.name] = (dtype, dims)

    # -- walking --------------------------------------------------------------------------
    def _graph(self, graph: Any, where: str | None, functions: dict, depth: int) -> None:
        import onnx

        if depth > 64:
            raise _Bad(f"{where}: subgraphs nested deeper than 64")
        producers = {out: node.op_type for node in graph.node for out in node.output}
        consumers: dict[str, list[str]] = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node.op_type)
        for index, node in enumerate(graph.node):
            if node.op_type == "LRN" and node.domain in ("", "ai.onnx"):
                self._add(node, where, index, producers, consumers, bindings=None)
            for attr in node.attribute:
                label = node.name or f"{node.op_type} #{index + 1}"
                inner = f"{where + '/' if where else ''}{label}.{attr.name}"
                if attr.type == onnx.AttributeProto.GRAPH:
                    self._graph(attr.g, inner, functions, depth + 1)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    for j, sub in enumerate(attr.graphs):
                        self._graph(sub, f"{inner}[{j}]", functions, depth + 1)

    def _function(self, f: Any, functions: dict) -> None:
        lrns = [(i, n) for i, n in enumerate(f.node)
                if n.op_type == "LRN" and n.domain in ("", "ai.onnx")]
        if not lrns:
            return
        fname = f"{f.domain + '.' if f.domain else ''}{f.name}"
        defaults = {a.name: a for a in f.attribute_proto}
        calls = [n for n in _all_nodes(self.model.graph) if n.op_type == f.name
                 and n.domain == f.domain]
        for fn in self.model.functions:
            calls += [n for n in fn.node if n.op_type == f.name and n.domain == f.domain]
        producers = {out: node.op_type for node in f.node for out in node.output}
        consumers: dict[str, list[str]] = {}
        for node in f.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node.op_type)
        for index, node in lrns:
            refs = [a for a in node.attribute if a.ref_attr_name]
            if not refs:
                self._add(node, f"function {fname}", index, producers, consumers,
                          bindings=None)
                continue
            if not calls:
                self.notes.append(f"function {fname}: its LRN {node.name or '#' + str(index + 1)} "
                                  "takes attributes from its caller, and nothing calls it: "
                                  "not reported")
                continue
            for call in calls:
                given = {a.name: a for a in call.attribute}
                bindings = {}
                for a in refs:
                    bound = given.get(a.ref_attr_name, defaults.get(a.ref_attr_name))
                    bindings[a.name] = bound
                label = call.name or (call.output[0] if call.output else call.op_type)
                # the function's formal inputs/outputs are the call's tensors there
                # (a call may leave out trailing optional ones: not strict)
                actual = dict(zip(f.input, call.input, strict=False)) | dict(
                    zip(f.output, call.output, strict=False))
                self._add(node, f"function {fname} called by {label}", index, producers,
                          consumers, bindings=bindings, prefix=f"{label}/", rename=actual)

    # -- one node -------------------------------------------------------------------------
    def _add(self, node: Any, where: str | None, index: int, producers: dict,
             consumers: dict, *, bindings: dict | None, prefix: str = "",
             rename: dict[str, str] | None = None) -> None:
        import onnx

        from lrn_cli.porting.semantics import Semantics

        inputs, outputs = list(node.input), list(node.output)
        named = bool(node.name)
        name = prefix + (node.name or (outputs[0] if outputs else f"LRN #{index + 1}"))
        local_in = inputs[0] if inputs else None
        if rename:
            inputs = [rename.get(t, t) for t in inputs]
            outputs = [rename.get(t, t) for t in outputs]
        here = f"LRN node {name!r}" + (f" in {where}" if where else "")
        written: dict[str, Any] = {}
        notes: list[str] = []
        for attr in node.attribute:
            source = attr
            if attr.ref_attr_name:
                source = (bindings or {}).get(attr.name)
                if source is None:
                    if attr.name == "size":
                        raise _Bad(f"{here}: size comes from the caller's attribute "
                                   f"{attr.ref_attr_name!r}, which the call does not set")
                    continue
            if attr.name not in _ATTRS:
                notes.append(f"attribute {attr.name!r} is not one of LRN's (size, alpha, beta, "
                             "bias): the checker refuses it, runtimes ignore it")
                continue
            want = _ATTRS[attr.name][0]
            have = onnx.AttributeProto.AttributeType.Name(source.type)
            if have != want:
                raise _Bad(f"{here}: attribute {attr.name} is {have}; LRN's is {want}")
            written[attr.name] = int(source.i) if want == "INT" else _f32(source.f)
        if "size" not in written:
            raise _Bad(f"{here}: no size attribute (required by the LRN operator)")
        size = written["size"]
        if size < 1:
            raise _Bad(f"{here}: size {size} (the operator needs size >= 1)")
        params = {key: written.get(key, _ATTRS[key][1]) for key in _ATTRS}
        defaulted = [key for key in _ATTRS if key not in written]
        dtype, dims = self.types.get(inputs[0], (None, None)) if inputs else (None, None)
        ndim = len(dims) if dims is not None else None
        channels = dims[1] if dims is not None and len(dims) > 1 else None
        channels = channels if channels else None
        flags = set()
        if self.model.producer_name:
            flags.add(f"producer:{self.model.producer_name.strip().lower()}")
        if local_in is not None and producers.get(local_in) == "DequantizeLinear" or any(
                op == "QuantizeLinear" for out in node.output
                for op in consumers.get(out, [])):
            flags.add("qdq")
            notes.append("QDQ: the LRN runs on dequantized float values (DequantizeLinear -> "
                         "LRN -> QuantizeLinear)")
        try:
            sem = Semantics.of("onnx", "across", size, float(params["alpha"]),
                               float(params["beta"]), float(params["bias"]), channel_axis=1)
        except ParameterError as exc:
            raise _Bad(f"{here}: {exc}") from None
        if len(self.layers) >= MAX_LAYERS:
            raise _Bad(f"more than {MAX_LAYERS} LRN nodes")
        self.layers.append(RawLayer(
            name=name, inputs=inputs, outputs=outputs, convention="onnx", params=params,
            size=size, semantics=sem, defaulted=defaulted, where=where,
            flags=frozenset(flags), notes=notes, dtype=dtype, ndim=ndim,
            axis_length=channels, named=named))


def _all_nodes(graph: Any, depth: int = 0):
    import onnx

    for node in graph.node:
        yield node
        if depth > 64:
            continue
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g, depth + 1)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _all_nodes(sub, depth + 1)
