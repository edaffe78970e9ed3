"""Caffe ``.prototxt`` network definitions: the LRN layers, in both formats.

* Current: ``layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" lrn_param {...} }``
* V1 (old files): ``layers { name: "norm1" type: LRN ... }`` (the type is an enum word, or its
  number 15).  A file with both ``layer`` and ``layers`` is refused, as Caffe refuses it
  (``upgrade_proto.cpp``).

``LRNParameter`` (BVLC/caffe ``src/caffe/proto/caffe.proto``): ``local_size`` (uint32, 5),
``alpha`` (float, 1), ``beta`` (float, 0.75), ``norm_region`` (``ACROSS_CHANNELS`` = 0,
``WITHIN_CHANNEL`` = 1), ``k`` (float, 1), ``engine`` (``DEFAULT`` = 0, ``CAFFE`` = 1,
``CUDNN`` = 2).  Absent fields take these defaults; unknown fields, wrong types, unknown enum
words and a singular field given twice are refused with their line, as protobuf's parser
refuses them.  Even ``local_size`` is refused as Caffe's ``LRNLayer::LayerSetUp`` refuses it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from lrn_cli.errors import InputError, ParameterError
from lrn_cli.porting.models import MAX_LAYERS, ModelFile, RawLayer
from lrn_cli.porting.models.prototxt import Message, Scalar, TextFormatError, parse

_FLOAT_FIELDS = {"alpha": 1.0, "beta": 0.75, "k": 1.0}
_ENUMS = {
    "norm_region": ("ACROSS_CHANNELS", "WITHIN_CHANNEL"),
    "engine": ("DEFAULT", "CAFFE", "CUDNN"),
}
_LRN_FIELDS = ("local_size", "alpha", "beta", "norm_region", "k", "engine")
#: V1LayerParameter.LayerType LRN (caffe.proto)
_V1_LRN = 15


class _Bad(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message


def _int(value: Scalar, name: str, *, unsigned: bool = False) -> int:
    text = value.text
    is_hex = text.lstrip("+-").lower().startswith("0x")
    if value.kind != "number" or not is_hex and (re.search(r"[.eE]", text) or
                                                 text[-1] in "fF"):
        raise _Bad(value.line, f"{name} must be an integer, not {value.describe()}")
    try:
        sign = -1 if text.startswith("-") else 1
        body = text.lstrip("+-")
        if body.lower().startswith("0x"):
            number = int(body, 16)
        elif len(body) > 1 and body.startswith("0"):
            number = int(body, 8)
        else:
            number = int(body)
    except ValueError:
        raise _Bad(value.line, f"{name} must be an integer, not {text}") from None
    number *= sign
    if unsigned and number < 0:
        raise _Bad(value.line, f"{name} is unsigned; {number} is not allowed")
    if not -2**63 <= number < 2**64:
        raise _Bad(value.line, f"{name}: {number} is out of range")
    return number


def _float(value: Scalar, name: str) -> float:
    text = value.text
    if value.kind == "word":
        word = text.lower().lstrip("-")
        if word in ("inf", "infinity", "nan"):
            return float(text.lower().replace("infinity", "inf"))
        raise _Bad(value.line, f"{name} must be a number, not {text}")
    if value.kind != "number":
        raise _Bad(value.line, f"{name} must be a number, not {value.describe()}")
    body = text.rstrip("fF")
    try:
        if body.lower().lstrip("+-").startswith("0x"):
            return float(int(body, 16))
        return float(body)
    except ValueError:
        raise _Bad(value.line, f"{name} must be a number, not {text}") from None


def _enum(value: Scalar, name: str) -> str:
    names = _ENUMS[name]
    if value.kind == "word":
        if value.text in names:
            return value.text
        raise _Bad(value.line, f"{name}: unknown value {value.text} "
                               f"(Caffe knows {', '.join(names)})")
    if value.kind == "number":
        number = _int(value, name)
        if 0 <= number < len(names):
            return names[number]
        known = ", ".join(f"{n}={i}" for i, n in enumerate(names))
        raise _Bad(value.line, f"{name}: no value numbered {number} (Caffe knows {known})")
    raise _Bad(value.line, f"{name} is an enum ({', '.join(names)}), not the string "
                           f"{value.describe()}")


def _string(value: Scalar | Message, name: str) -> str:
    if isinstance(value, Message):
        raise _Bad(value.line, f"{name} must be a string, not a message")
    if value.kind != "string":
        raise _Bad(value.line, f"{name} must be a quoted string, not {value.text}")
    return value.text


def _single(msg: Message, name: str) -> Scalar | Message | None:
    values = msg.all(name)
    if len(values) > 1:
        raise _Bad(values[1].line, f"{name} is given twice (it is not a repeated field; "
                                   f"first on line {values[0].line})")
    return values[0] if values else None


def read(path: str, text: str) -> ModelFile:
    """The LRN layers of the Caffe network definition ``text`` (from ``path``)."""
    try:
        net = parse(text)
    except TextFormatError as exc:
        raise InputError(path, f"line {exc.line}: {exc.message}") from None
    try:
        return _read(path, net)
    except _Bad as exc:
        raise InputError(path, f"line {exc.line}: {exc.message}") from None


def _read(path: str, net: Message) -> ModelFile:
    current, v1 = net.all("layer"), net.all("layers")
    if current and v1:
        raise _Bad(v1[0].line, "the file has both 'layer' (current) and 'layers' (V1) "
                               "entries: Caffe refuses such a net (upgrade_proto.cpp)")
    notes = []
    if v1:
        notes.append("V1 format (layers { type: LRN }); Caffe upgrades it on load")
    layers: list[RawLayer] = []
    for entry in current or v1:
        if not isinstance(entry, Message):
            raise _Bad(entry.line, f"{'layer' if current else 'layers'} must be a message "
                                   "{ ... }")
        if not _is_lrn(entry, v1=bool(v1)):
            continue
        layers.append(_layer(entry, index=len(layers)))
        if len(layers) > MAX_LAYERS:
            raise _Bad(entry.line, f"more than {MAX_LAYERS} LRN layers")
    return ModelFile(path, "caffe", layers, notes)


def _is_lrn(entry: Message, *, v1: bool) -> bool:
    value = _single(entry, "type")
    if value is None:
        return False
    if isinstance(value, Message):
        raise _Bad(value.line, "type must be a value, not a message")
    if v1:
        if value.kind == "string":
            raise _Bad(value.line, f"V1 'layers' take the type as an enum word (type: "
                                   f"{value.text.upper()}), not the string {value.describe()}")
        if value.kind == "number":
            return _int(value, "type") == _V1_LRN
        return value.text == "LRN"
    if value.kind != "string":
        raise _Bad(value.line, f"type must be a quoted string (type: \"{value.text}\"); "
                               "unquoted enum words are the V1 'layers' format")
    return value.text == "LRN"


def _phase_notes(entry: Message) -> list[str]:
    """``include { phase: TEST }`` / ``exclude { phase: TRAIN }`` (NetStateRule): a
    train_val file may hold one layer per phase under the same name."""
    notes = []
    for rule, text in (("include", "phase {} only"), ("exclude", "not in phase {}")):
        for value in entry.all(rule):
            if not isinstance(value, Message):
                continue
            for phase in value.all("phase"):
                if isinstance(phase, Scalar) and phase.kind in ("word", "number"):
                    name = {"0": "TRAIN", "1": "TEST"}.get(phase.text, phase.text)
                    notes.append(text.format(name) + f" ({rule} {{ phase: {name} }})")
    return notes


def _layer(entry: Message, index: int) -> RawLayer:
    from lrn_cli.porting.semantics import Semantics

    name_value = _single(entry, "name")
    name = _string(name_value, "name") if name_value is not None else ""
    bottoms = [_string(v, "bottom") for v in entry.all("bottom")]
    tops = [_string(v, "top") for v in entry.all("top")]
    given = _single(entry, "lrn_param")
    if given is not None and not isinstance(given, Message):
        raise _Bad(given.line, "lrn_param must be a message { ... }")
    param = given if given is not None else Message(line=entry.line)
    for key, value in param.fields:
        if key not in _LRN_FIELDS:
            raise _Bad(value.line, f"lrn_param has no field {key!r} (it has "
                                   f"{', '.join(_LRN_FIELDS)})")
        if isinstance(value, Message):
            raise _Bad(value.line, f"{key} must be a value, not a message")
    written: dict[str, Any] = {}
    for key in _LRN_FIELDS:
        found = _single(param, key)
        if not isinstance(found, Scalar):
            continue
        value = found
        if key == "local_size":
            written[key] = _int(value, key, unsigned=True)
        elif key in _FLOAT_FIELDS:
            written[key] = _float(value, key)
        else:
            written[key] = _enum(value, key)
    defaults: dict[str, Any] = {"local_size": 5, **_FLOAT_FIELDS,
                                "norm_region": "ACROSS_CHANNELS", "engine": "DEFAULT"}
    params = {key: written.get(key, defaults[key]) for key in _LRN_FIELDS}
    defaulted = [key for key in _LRN_FIELDS if key not in written]
    shown = name or (tops[0] if tops else f"LRN #{index + 1}")
    line = (name_value.line if name_value is not None else entry.line)
    size = int(params["local_size"])
    mode = "within" if params["norm_region"] == "WITHIN_CHANNEL" else "across"
    where_line = (param.all("local_size") or [entry])[0].line
    for key in ("alpha", "beta", "k"):
        if not math.isfinite(params[key]):
            bad = param.all(key)[0].line
            raise _Bad(bad, f"layer {shown!r}: {key} is {params[key]}: LRN needs finite "
                            "constants")
    if size % 2 == 0:
        raise _Bad(where_line, f"layer {shown!r}: local_size {size} is even: Caffe refuses "
                               "it (CHECK_EQ(size_ % 2, 1) in LRNLayer::LayerSetUp)")
    try:
        sem = Semantics.of("caffe", mode, size, params["alpha"], params["beta"], params["k"],
                           channel_axis=1, spatial_axes=(2, 3))
    except ParameterError as exc:
        raise _Bad(where_line, f"layer {shown!r}: {exc}") from None
    notes = []
    flags = {f"engine:{params['engine']}"}
    if mode == "within" and params["k"] != 1.0:
        notes.append(f"k: {params['k']!r} is ignored: Caffe's WITHIN_CHANNEL hard-codes 1 "
                     "(lrn_layer.cpp, power_param.shift = 1)")
    if mode == "within" and params["engine"] != "CAFFE":
        which = ("engine: CUDNN" if params["engine"] == "CUDNN"
                 else "engine DEFAULT, which is CUDNN in a Caffe built with cuDNN")
        notes.append(f"{which}: WITHIN_CHANNEL then runs CuDNNLCNLayer "
                     "(cudnnDivisiveNormalizationForward, k passed to cuDNN), not Caffe's own "
                     "LRN: the semantics shown are Caffe's engine; cuDNN's divisive "
                     "normalization is NOT verified (layer_factory.cpp, cudnn_lcn_layer.cu)")
        flags.add("cudnn-lcn")
    notes += _phase_notes(entry)
    if not bottoms or not tops:
        notes.append("the layer names no bottom/top blob")
    return RawLayer(name=shown, inputs=bottoms, outputs=tops, convention="caffe",
                    params=params, size=size, semantics=sem, defaulted=defaulted, line=line,
                    flags=frozenset(flags), notes=notes, ndim=4, named=bool(name))
