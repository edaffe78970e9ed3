"""Model readers for ``lrn inspect``: find the LRN layers of a model file and say what each
computes.

* :func:`read_model` detects the format from the content (not only the suffix) and returns a
  :class:`ModelFile` of :class:`RawLayer` records.  Text formats: Caffe ``.prototxt``
  (:mod:`.caffe`, on :mod:`.prototxt`), ncnn ``.param`` (:mod:`.ncnn`); binary: ONNX
  (:mod:`.onnx_reader`, with the optional ``onnx`` package).
* Binaries that hold weights rather than a definition (``.caffemodel``, ncnn ``.param.bin`` and
  ``.bin``), and formats that would need code to be run to read (pickles, ``.pt``/``.pth``
  archives, Keras HDF5, TFLite flatbuffers) are refused in one line that says which file to
  give instead.  Nothing read is ever executed or unpickled; sizes are checked before reading.

Every problem with a file is an :class:`~lrn_cli.errors.InputError` naming the file (and the
line, for text formats).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lrn_cli.errors import InputError

if TYPE_CHECKING:
    from lrn_cli.porting.semantics import Semantics

#: The largest text model (``.prototxt``, ``.param``) read; real ones are a few hundred kB.
MAX_TEXT_BYTES = 64 * 2**20
#: The largest ONNX model read (protobuf's own limit is 2 GiB); weights are read with it.
MAX_ONNX_BYTES = 2**31 - 1
#: The largest number of layers reported per file.
MAX_LAYERS = 100_000

FORMATS = ("onnx", "caffe", "ncnn")


@dataclass
class RawLayer:
    """One LRN layer as a model file defines it."""

    name: str
    inputs: list[str]
    outputs: list[str]
    convention: str
    """The :mod:`lrn_cli.conventions` name whose rules the file's runtime follows."""
    params: dict[str, Any]
    """The parameters in the file's own names, as written (absent ones at their defaults)."""
    size: int
    """The window width ``n`` the file means (the ``size``/``local_size`` written)."""
    semantics: Semantics
    defaulted: list[str] = field(default_factory=list)
    """Parameters absent from the file, taken at the format's defaults."""
    line: int | None = None
    """1-based line of the layer (text formats)."""
    where: str | None = None
    """Where in the model the layer sits when not at the top (ONNX subgraphs, functions)."""
    flags: frozenset[str] = frozenset()
    """Facts the hazard table reads: ``qdq``, ``engine:CUDNN``, ``legacy`` ..."""
    notes: list[str] = field(default_factory=list)
    dtype: str | None = None
    """The input's element type when the file says (``float32``, ``float16`` ...)."""
    ndim: int | None = None
    """The input's rank when the file says (ncnn blobs count as NCHW: 4)."""
    axis_length: int | None = None
    """The length of the summed axis when the file says (the channel count, across)."""
    named: bool = True
    """False when the file gives the layer no name (it is then named by its output)."""


@dataclass
class ModelFile:
    """What a reader found in one file."""

    path: str
    format: str
    layers: list[RawLayer]
    notes: list[str] = field(default_factory=list)


def _refuse(path: str, what: str) -> InputError:
    return InputError(path, what)


def sniff(path: str, head: bytes) -> str:
    """The format of a file from its first bytes (and its name): ``"onnx"``, ``"caffe"`` or
    ``"ncnn"``; raise :class:`InputError` for anything else, saying what to give instead."""
    name = os.path.basename(path).lower()
    if not head:
        raise _refuse(path, "empty file")
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        raise _refuse(path, "an HDF5 file (a Keras .h5 model?): not read; export the model "
                            "to ONNX (tf2onnx) and inspect the .onnx")
    if head.startswith(b"PK\x03\x04"):
        raise _refuse(path, "a zip archive (a PyTorch .pt/.pth checkpoint or a Keras "
                            ".keras file?): not read, never unpickled; export the model to "
                            "ONNX and inspect the .onnx")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise _refuse(path, "a Python pickle: never unpickled; export the model to ONNX "
                            "and inspect the .onnx")
    if head[4:8] == b"TFL3":
        raise _refuse(path, "a TensorFlow Lite flatbuffer: not read (TFLite's LRN is "
                            "TensorFlow's); inspect the model it came from")
    if head[:4] == (7767517).to_bytes(4, "little"):
        raise _refuse(path, "an ncnn binary param (.param.bin): give the text .param "
                            "(ncnn2mem reads one; the converters write one)")
    text = _as_text(head)
    if text is not None:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        if first == "7767517":
            return "ncnn"
        if _looks_like_prototxt(text):
            return "caffe"
        parts = first.split()
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return "ncnn"  # an ncnn .param from before the 7767517 magic line
        if name.endswith(".param"):
            raise _refuse(path, "line 1: an ncnn .param starts with the magic number 7767517 "
                                f"(found {first[:40]!r})")
        raise _refuse(path, "text that is neither a Caffe .prototxt nor an ncnn .param "
                            "(lrn inspect reads ONNX, Caffe prototxt and ncnn .param)")
    if name.endswith(".caffemodel"):
        raise _refuse(path, "a binary Caffe model (.caffemodel, the weights): give its "
                            "deploy .prototxt (the network definition)")
    if name.endswith((".param.bin", ".bin")):
        raise _refuse(path, "an ncnn binary file (.bin weights or .param.bin): give the "
                            "text .param")
    if name.endswith(".onnx") or head[:1] == b"\x08":
        return "onnx"  # ModelProto starts with ir_version (field 1, varint: 0x08)
    if head[:1] in (b"\x0a", b"\x12") or head[:2] == b"\xa2\x06":
        raise _refuse(path, "a binary protobuf that is not ONNX (a .caffemodel or a "
                            "TensorFlow .pb?): for Caffe give the deploy .prototxt; convert "
                            "TensorFlow graphs to ONNX (tf2onnx)")
    raise _refuse(path, "a binary file lrn inspect cannot read: give an ONNX model, a "
                        "Caffe .prototxt or an ncnn .param")


_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\r\f\v\x1b")


def _as_text(head: bytes) -> str | None:
    """``head`` as text for sniffing, or None when it looks binary: a NUL, or a control
    character among the first 64 bytes (protobuf and flatbuffer headers have them).  Bytes
    that are not UTF-8 are replaced here; reading the file refuses them with their line."""
    if b"\x00" in head or any(b in _CONTROL for b in head[:64]):
        return None
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    return body.decode("utf-8", errors="replace")


def _looks_like_prototxt(text: str) -> bool:
    import re

    return re.search(r"^\s*(layers?|input|input_dim|input_shape|name|force_backward|state|"
                     r"debug_info|profile_info|profile_rank|propagate_down)\s*[:{<]",
                     text, re.M) is not None


def read_model(path: str | os.PathLike) -> ModelFile:
    """Read the LRN layers of the model file at ``path`` (format detected from content).

    Raises
    ------
    InputError
        The file cannot be read, is too large, is malformed (with the line), or is a format
        that is not read (with what to give instead).
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(path, "a folder, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(path, "not a regular file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
            fmt = sniff(path, head)
            limit = MAX_ONNX_BYTES if fmt == "onnx" else MAX_TEXT_BYTES
            if st.st_size > limit:
                raise InputError(path, f"{st.st_size} bytes: larger than the {limit} bytes "
                                       f"lrn inspect reads for a {fmt} model")
            data = head + fh.read(limit + 1 - len(head))
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(path, f"larger than the {limit} bytes lrn inspect reads")
    if fmt == "onnx":
        from lrn_cli.porting.models import onnx_reader

        return onnx_reader.read(path, data)
    text = _decode(path, data, comments=fmt == "caffe")
    if fmt == "caffe":
        from lrn_cli.porting.models import caffe

        return caffe.read(path, text)
    from lrn_cli.porting.models import ncnn

    return ncnn.read(path, text)


def _decode_line(path: str, number: int, raw: bytes) -> str:
    """One line of a prototxt whose ``#`` comment may be in another encoding (GBK, Latin-1
    ...): protobuf's text parser skips comments byte by byte, so Caffe reads such files.
    Outside a comment the bytes must be UTF-8."""
    quote = None
    escaped = False
    cut = len(raw)
    for i, byte in enumerate(raw):
        ch = chr(byte)
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            cut = i
            break
    try:
        code = raw[:cut].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"line {number}: not UTF-8 text (byte "
                               f"0x{raw[exc.start]:02x})") from None
    return code + raw[cut:].decode("utf-8", errors="replace")


def _decode(path: str, data: bytes, *, comments: bool = False) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not comments:
            line = data.count(b"\n", 0, exc.start) + 1
            raise InputError(path, f"line {line}: not UTF-8 text (byte "
                                   f"0x{data[exc.start]:02x})") from None
        text = "\n".join(_decode_line(path, i + 1, raw)
                         for i, raw in enumerate(data.split(b"\n")))
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError(path, f"line {line}: a NUL byte: binary data in a text model")
    return text
