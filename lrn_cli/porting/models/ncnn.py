"""ncnn ``.param`` text files: the LRN layers, read as ncnn's own loader reads them.

A current file starts with the magic ``7767517``, then ``layer_count blob_count``, then one
layer per line::

    LRN  norm1  1 1 conv1 norm1 0=0 1=5 2=1.000000e-04 3=7.500000e-01 4=2.000000e+00

``0`` region (0 across, 1 within), ``1`` local_size, ``2`` alpha, ``3`` beta, ``4`` bias
(Tencent/ncnn ``src/layer/lrn.cpp`` ``load_param``: defaults 0, 5, 1, 0.75, 1).  Values are
typed as ``src/paramdict.cpp`` types them: a value with ``.`` or ``e`` is a float, else an
int, read into one union; a float parameter written as an integer (``2=1``) is read back as
the integer's bits, so such files are refused with the line, as are values longer than the
15 characters ncnn reads.  Floats are converted by an exact copy of ncnn's
``vstr_to_float`` (its 32-bit digit counters overflow past 9 digits: the value ncnn computes
is the one reported, with a note when it differs from the decimal written).

Files from before the magic line (2017) carry positional parameters
(``region local_size alpha beta``, read by ``fscanf("%d %d %f %f")``); the only revision of
that loader on record (Tencent/ncnn@b7db8be4 ``src/layer/lrn.cpp``) sums channels
``[c-n/2, c+n-1]`` with ``alpha/n`` in both modes and no bias: that is what is reported.

ncnn blobs are CHW per sample (no batch axis).  The semantics use NCHW axes (channel axis 1,
spatial axes 2 and 3), the layout every other reader reports; on a CHW dump of one blob the
channel axis is 0.
"""

from __future__ import annotations

import re
import struct

from lrn_cli.errors import InputError, ParameterError
from lrn_cli.porting.models import MAX_LAYERS, ModelFile, RawLayer

MAGIC = "7767517"
#: ParamDict slots in current ncnn (src/paramdict.h NCNN_MAX_PARAM_COUNT)
MAX_PARAM_ID = 32
_NAMES = {0: "region", 1: "local_size", 2: "alpha", 3: "beta", 4: "bias"}
_DEFAULTS = {0: 0, 1: 5, 2: 1.0, 3: 0.75, 4: 1.0}
_INT_IDS = (0, 1)
_M32 = 0xFFFFFFFF

LAYOUT_NOTE = ("ncnn blobs are CHW per sample (no batch axis): the semantics use NCHW axes "
               "(channel axis 1, spatial axes 2, 3); on a CHW dump of one blob the channel "
               "axis is 0")


class _Bad(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message


def ncnn_float(vstr: str) -> float:
    """``vstr`` converted exactly as ncnn's ``vstr_to_float`` (src/paramdict.cpp) converts
    it: 32-bit unsigned digit counters, a double accumulator, the result cast to float32."""
    import numpy as np

    p, n = 0, len(vstr)
    positive = not vstr.startswith("-")
    if p < n and vstr[p] in "+-":
        p += 1
    v1 = 0
    while p < n and vstr[p] in "0123456789":
        v1 = (v1 * 10 + int(vstr[p])) & _M32
        p += 1
    v = float(v1)
    if p < n and vstr[p] == ".":
        p += 1
        pow10, v2 = 1, 0
        while p < n and vstr[p] in "0123456789":
            v2 = (v2 * 10 + int(vstr[p])) & _M32
            pow10 = (pow10 * 10) & _M32
            p += 1
        v += float("nan") if pow10 == 0 and v2 == 0 else (
            float("inf") if pow10 == 0 else v2 / float(pow10))
    if p < n and vstr[p] in "eE":
        p += 1
        up = not (p < n and vstr[p] == "-")
        if p < n and vstr[p] in "+-":
            p += 1
        expon = 0
        while p < n and vstr[p] in "0123456789":
            expon = (expon * 10 + int(vstr[p])) & _M32
            p += 1
        scale = 1.0
        expon = min(expon, 400)  # further factors change nothing: 1e8**40 is already inf
        while expon >= 8:
            scale *= 1e8
            expon -= 8
        while expon > 0:
            scale *= 10.0
            expon -= 1
        v = v * scale if up else v / scale
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.float32(v if positive else -v))


def _bits_as_float(i: int) -> float:
    return struct.unpack("<f", struct.pack("<i", i))[0]


def _bits_as_int(f: float) -> int:
    return struct.unpack("<i", struct.pack("<f", f))[0]


def _is_float(vstr: str) -> bool:
    return any(ch == "." or ch in "eE" for ch in vstr[:16])


def _c_int(vstr: str) -> int | None:
    """``sscanf("%d")``: leading integer, the rest ignored; None when there is none."""
    m = re.match(r"[+-]?\d+", vstr)
    if m is None:
        return None
    value = int(m.group())
    return ((value + 2**31) & _M32) - 2**31  # int wraps like the C int it is stored in


def read(path: str, text: str) -> ModelFile:
    """The LRN layers of the ncnn ``.param`` text ``text`` (from ``path``)."""
    try:
        return _read(path, text)
    except _Bad as exc:
        raise InputError(path, f"line {exc.line}: {exc.message}") from None


def _read(path: str, text: str) -> ModelFile:
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise _Bad(1, "empty .param")
    notes = [LAYOUT_NOTE]
    legacy = lines[0][1].strip() != MAGIC
    if not legacy:
        lines = lines[1:]
        if not lines:
            raise _Bad(1, "the file ends after the magic number (no layer count line)")
    else:
        notes.append("no 7767517 magic line: an ncnn .param from 2017, positional "
                     "parameters; read as that loader reads them (Tencent/ncnn@b7db8be4)")
    count_line, header = lines[0]
    parts = header.split()
    if len(parts) != 2 or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise _Bad(count_line, f"expected 'layer_count blob_count', found {header.strip()!r}")
    layer_count = int(parts[0])
    body = lines[1:]
    if len(body) < layer_count:
        last = body[-1][0] if body else count_line
        raise _Bad(last, f"the file ends after {len(body)} of the {layer_count} layers its "
                         "header announces (truncated?)")
    if len(body) > layer_count:
        notes.append(f"line {body[layer_count][0]} onwards: past the {layer_count} layers "
                     "the header announces; ncnn never reads them")
        body = body[:layer_count]
    layers: list[RawLayer] = []
    for lineno, line in body:
        tokens = line.split()
        if len(tokens) < 4:
            raise _Bad(lineno, f"expected 'type name bottoms tops [params]', found "
                               f"{line.strip()!r}")
        kind, name, nb, nt = tokens[:4]
        if not (re.fullmatch(r"\d+", nb) and re.fullmatch(r"\d+", nt)):
            raise _Bad(lineno, f"layer {name!r}: the bottom and top counts must be integers, "
                               f"not {nb!r} {nt!r}")
        nb_i, nt_i = int(nb), int(nt)
        if len(tokens) < 4 + nb_i + nt_i:
            raise _Bad(lineno, f"layer {name!r}: {nb_i} bottoms and {nt_i} tops announced, "
                               f"{len(tokens) - 4} names given")
        for token in (kind, name):
            if len(token) > 255:
                raise _Bad(lineno, "a name longer than the 255 characters ncnn reads")
        bottoms = tokens[4:4 + nb_i]
        tops = tokens[4 + nb_i:4 + nb_i + nt_i]
        rest = tokens[4 + nb_i + nt_i:]
        if kind != "LRN":
            if not legacy:
                for token in rest:
                    if not re.match(r"-?\d+=", token):
                        raise _Bad(lineno, f"layer {name!r}: expected key=value, found "
                                           f"{token!r}")
            continue
        if legacy:
            layers.append(_legacy_layer(lineno, name, bottoms, tops, rest))
        else:
            layers.append(_layer(lineno, name, bottoms, tops, rest))
        if len(layers) > MAX_LAYERS:
            raise _Bad(lineno, f"more than {MAX_LAYERS} LRN layers")
    return ModelFile(path, "ncnn", layers, notes)


def _layer(lineno: int, name: str, bottoms: list[str], tops: list[str],
           rest: list[str]) -> RawLayer:
    written: dict[int, int | float] = {}
    texts: dict[int, str] = {}
    notes: list[str] = []
    for token in rest:
        m = re.fullmatch(r"(-?\d+)=(.*)", token)
        if m is None:
            raise _Bad(lineno, f"layer {name!r}: expected key=value, found {token!r}")
        key, vstr = int(m.group(1)), m.group(2)
        if key <= -23300:
            ident = -key - 23300
            if ident in _NAMES:
                raise _Bad(lineno, f"layer {name!r}: {key}= is an array for parameter "
                                   f"{ident} ({_NAMES[ident]}), which ncnn reads as a scalar")
            notes.append(f"array parameter {key}= is not an LRN parameter; ignored")
            continue
        if key < 0 or key >= MAX_PARAM_ID:
            raise _Bad(lineno, f"layer {name!r}: parameter id {key} is outside ncnn's "
                               f"0..{MAX_PARAM_ID - 1}")
        if key in written:
            notes.append(f"{key}= is given twice; ncnn keeps the last ({vstr})")
        if not vstr:
            raise _Bad(lineno, f"layer {name!r}: {key}= has no value")
        if len(vstr) > 15:
            raise _Bad(lineno, f"layer {name!r}: the value of {key}= has {len(vstr)} "
                               "characters; ncnn reads at most 15 (ParamDict %15s) and "
                               "would take the rest for the next parameter")
        if key not in _NAMES:
            notes.append(f"{key}={vstr} is not an LRN parameter; ncnn ignores it")
            continue
        label = f"{key}={vstr} ({_NAMES[key]})"
        if _is_float(vstr):
            value = ncnn_float(vstr)
            if key in _INT_IDS:
                as_int = _bits_as_int(value)
                if float(as_int) != value:
                    raise _Bad(lineno, f"layer {name!r}: {label} is written as a float; ncnn "
                                       f"reads the integer parameter from its bits "
                                       f"({as_int}): write it as an integer")
                written[key] = as_int
            else:
                written[key] = _shortest(value)
                _float_note(vstr, value, label, notes)
        else:
            number = _c_int(vstr)
            if number is None:
                raise _Bad(lineno, f"layer {name!r}: {label}: not a number")
            if key in _INT_IDS:
                written[key] = number
            else:
                as_float = _bits_as_float(number)
                if as_float != float(number):
                    raise _Bad(lineno, f"layer {name!r}: {label} is written as an integer; "
                                       f"ncnn reads the float parameter from its bits "
                                       f"({as_float!r}), not {number}: write "
                                       f"{key}={number}.0")
                written[key] = _shortest(as_float)
        texts[key] = vstr
    values = {k: written.get(k, _DEFAULTS[k]) for k in _NAMES}
    region = int(values[0])
    if region not in (0, 1):
        raise _Bad(lineno, f"layer {name!r}: 0={region}: ncnn knows region 0 (across) and 1 "
                           "(within); any other leaves the blob unchanged")
    size = int(values[1])
    mode = "within" if region == 1 else "across"
    params = {_NAMES[k]: values[k] for k in _NAMES}
    defaulted = [_NAMES[k] for k in _NAMES if k not in written]
    from lrn_cli.porting.semantics import Semantics

    try:
        sem = Semantics.of("ncnn", mode, size, values[2], values[3], values[4],
                           channel_axis=1, spatial_axes=(2, 3))
    except ParameterError as exc:
        raise _Bad(lineno, f"layer {name!r}: {exc}") from None
    return RawLayer(name=name, inputs=bottoms, outputs=tops, convention="ncnn", params=params,
                    size=size, semantics=sem, defaulted=defaulted, line=lineno,
                    flags=frozenset({"ncnn-bias"} if 4 in written else set()), notes=notes,
                    ndim=4)


def _shortest(value: float) -> float:
    """A float32 value as the shortest decimal that reads back to it (``0.0005``, not
    ``0.0005000000237487257``)."""
    import numpy as np

    return float(str(np.float32(value)))


def _float_note(vstr: str, value: float, label: str, notes: list[str]) -> None:
    import numpy as np

    try:
        decimal = float(np.float32(float(vstr.rstrip("fF"))))
    except ValueError:
        notes.append(f"{label}: ncnn reads it as {value!r}")
        return
    if decimal != value and not (decimal != decimal and value != value):
        notes.append(f"{label}: ncnn's vstr_to_float reads it as {_shortest(value)!r}, not "
                     f"{_shortest(decimal)!r} "
                     "(its 32-bit digit counters overflow past 9 digits; src/paramdict.cpp)")


def _legacy_layer(lineno: int, name: str, bottoms: list[str], tops: list[str],
                  rest: list[str]) -> RawLayer:
    from lrn_cli.porting.semantics import Semantics

    if len(rest) < 4:
        raise _Bad(lineno, f"layer {name!r}: the 2017 loader reads 4 values (region "
                           f"local_size alpha beta), {len(rest)} given")
    region_s, size_s, alpha_s, beta_s = rest[:4]
    for label, vstr in (("region", region_s), ("local_size", size_s)):
        if not re.fullmatch(r"[+-]?\d+", vstr):
            raise _Bad(lineno, f"layer {name!r}: {label} must be an integer, not {vstr!r}")
    try:
        alpha, beta = float(alpha_s), float(beta_s)
    except ValueError:
        raise _Bad(lineno, f"layer {name!r}: alpha and beta must be numbers, not "
                           f"{alpha_s!r} {beta_s!r}") from None
    region, size = int(region_s), int(size_s)
    if region not in (0, 1):
        raise _Bad(lineno, f"layer {name!r}: region {region}: ncnn knows 0 (across) and 1 "
                           "(within)")
    if size < 1:
        raise _Bad(lineno, f"layer {name!r}: local_size {size} must be >= 1")
    # validate alpha/beta with an ordinary convention first (finite, alpha >= 0)
    try:
        Semantics.of("ncnn", "across", size, alpha, beta, 1.0)
    except ParameterError as exc:
        raise _Bad(lineno, f"layer {name!r}: {exc}") from None
    a = float(alpha) / size
    if region == 0:
        sem = Semantics("across", size // 2, size - 1, a, 1.0, beta, channel_axis=1)
    else:
        sem = Semantics("within", size // 2, size - size // 2 - 1, a, 1.0, beta,
                        channel_axis=None, spatial_axes=(2, 3))
    notes = ["2017 ncnn: no bias (always 1); alpha/n in both modes; across sums channels "
             "[c-n/2, c+n-1] (the loop 'p < q + local_size' of Tencent/ncnn@b7db8be4 "
             "src/layer/lrn.cpp)"]
    params = {"region": region, "local_size": size, "alpha": alpha, "beta": beta}
    return RawLayer(name=name, inputs=bottoms, outputs=tops, convention="ncnn", params=params,
                    size=size, semantics=sem, line=lineno, flags=frozenset({"legacy"}),
                    notes=notes, ndim=4)
