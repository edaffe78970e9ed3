"""Reading the tensors ``lrn explain`` is given: ``.npy``, ``.npz`` and ONNX ``TensorProto``
``.pb`` files (what the ONNX model zoo's ``test_data_set_*`` folders hold and
``onnx.numpy_helper.from_array`` writes).

``.npy``/``.npz`` go through :mod:`lrn_cli.arrays` (no pickle, header checked against the
file size).  A ``.pb`` is parsed by the ``onnx`` package (``pip install "lrn-cli[onnx]"``),
only after its size is checked against :data:`MAX_PB_BYTES`; a TensorProto whose data lives
in external files is refused (reading it would open other files), and so is one whose data
does not match its shape.  Float16, float32 and float64 are read as they are, integers and
bool are returned as stored (the caller converts).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lrn_cli.errors import InputError

#: The largest ``.pb`` read (protobuf itself stops at 2 GiB).
MAX_PB_BYTES = 1 << 30

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def kind_of(path: str | os.PathLike) -> str:
    """``npy``, ``npz`` or ``pb``: from the magic bytes, else the suffix."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        head = b""
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_ZIP_MAGIC):
        return "npz"
    suffix = Path(os.fspath(path)).suffix.lower()
    return {".npy": "npy", ".npz": "npz", ".pb": "pb"}.get(suffix, "unknown")


def read_tensor(path: str | os.PathLike, key: str | None = None, *,
                max_pb_bytes: int = MAX_PB_BYTES) -> np.ndarray:
    """Read one tensor from a ``.npy``, ``.npz`` (``key`` names the member; needed when it
    holds several arrays) or ``.pb`` file.

    Raises
    ------
    InputError
        One line naming the file: unreadable, wrong format, pickled, truncated, external
        data, too large, several arrays without ``key``, ``onnx`` not installed, ...
    """
    from lrn_cli import arrays

    name = os.fspath(path)
    kind = kind_of(name)
    if kind == "npy":
        return arrays.read_npy(name)
    if kind == "npz":
        if key is not None:
            return arrays.read_npz(name, keys=[key])[key]
        members = arrays.read_npz(name)
        if len(members) != 1:
            raise InputError(name, f"holds {len(members)} arrays ({', '.join(members)}); "
                             "pick one with --key")
        return next(iter(members.values()))
    if kind == "pb":
        return read_pb(name, max_bytes=max_pb_bytes)
    if not os.path.exists(name):
        raise InputError(name, "no such file")
    hint = ""
    if Path(name).suffix.lower() == ".onnx":
        hint = " (an ONNX model: `lrn inspect` reads those; dump its LRN's tensors to explain)"
    raise InputError(name, f"not a .npy, .npz or ONNX TensorProto .pb file{hint}")


def read_pb(path: str | os.PathLike, *, max_bytes: int = MAX_PB_BYTES) -> np.ndarray:
    """Read an ONNX ``TensorProto`` file (see the module docstring)."""
    name = os.fspath(path)
    try:
        size = os.path.getsize(name)
    except OSError as exc:
        raise InputError(name, exc.strerror or str(exc)) from None
    if size > max_bytes:
        raise InputError(name, f"is {size} bytes, more than the {max_bytes} read from a .pb")
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise InputError(name, 'reading .pb tensors needs the onnx package: pip install '
                         '"lrn-cli[onnx]"') from None
    try:
        with open(name, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(name, exc.strerror or str(exc)) from None
    if len(data) > max_bytes:
        raise InputError(name, f"is more than the {max_bytes} bytes read from a .pb")
    tensor = onnx.TensorProto()
    try:
        tensor.ParseFromString(data)
    except Exception:  # protobuf's DecodeError and friends
        raise InputError(name, "not an ONNX TensorProto (.pb) file") from None
    if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
        raise InputError(name, "the TensorProto keeps its data in external files; refusing "
                         "to read them (save it with the data inside)")
    if not tensor.dims and not tensor.raw_data and not _field_values(tensor):
        raise InputError(name, "not an ONNX TensorProto (.pb) file (no dims, no data)")
    kind = onnx.TensorProto.DataType.Name(tensor.data_type) \
        if tensor.data_type in onnx.TensorProto.DataType.values() else str(tensor.data_type)
    allowed = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
               onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT16,
               onnx.TensorProto.UINT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
               onnx.TensorProto.BOOL}
    if tensor.data_type not in allowed:
        raise InputError(name, f"holds {kind} data; need float16, float32 or float64 "
                         "(or integers)")
    count = int(np.prod(tensor.dims, dtype=np.int64)) if tensor.dims else 1
    if any(d < 0 for d in tensor.dims):
        raise InputError(name, f"impossible shape {list(tensor.dims)}")
    itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    if tensor.raw_data:
        if len(tensor.raw_data) != count * itemsize:
            raise InputError(name, f"shape {list(tensor.dims)} needs {count * itemsize} bytes "
                             f"of {kind}, the file holds {len(tensor.raw_data)}")
    elif _field_values(tensor) != count:
        raise InputError(name, f"shape {list(tensor.dims)} needs {count} values, the file "
                         f"holds {_field_values(tensor)}")
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as exc:  # a malformed proto onnx itself refuses
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(name, f"cannot read the TensorProto: {reason}") from None
    return np.ascontiguousarray(array)


def _field_values(tensor) -> int:
    return max(len(tensor.float_data), len(tensor.int32_data), len(tensor.int64_data),
               len(tensor.double_data), len(tensor.uint64_data))
