"""Reading and writing ``.npy`` / ``.npz`` activation tensors without trusting the file.

A ``.npy`` file can hold pickled Python objects, and unpickling runs arbitrary code; its
header can also claim any shape, so a naive reader may allocate gigabytes for a file of a
few bytes. Here the header is parsed with numpy's own literal parser (never a pickle),
checked against the file's real size before any allocation, object/structured/complex
dtypes are refused, and the data is then loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import math
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from lrn_cli.atomic import PathLike, atomic_write, os_error_reason
from lrn_cli.errors import InputError, ParameterError

__all__ = [
    "NpyHeader",
    "read_npy",
    "read_npy_bytes",
    "read_npy_header",
    "read_npz",
    "write_npy",
    "write_npz",
]

_ZIP_MAGIC = b"PK\x03\x04"
_MAX_DIM = np.iinfo(np.intp).max


@dataclass(frozen=True)
class NpyHeader:
    """What a validated ``.npy`` header says, enough to stream the data without loading it.

    Attributes
    ----------
    shape
        Array shape.
    dtype
        Element type (bool, integer or floating point; byte order as stored).
    fortran_order
        Whether the data is stored column-major.
    data_offset
        Byte offset of the first data byte in the file.
    version
        ``.npy`` format version, ``(1, 0)`` or ``(2, 0)``.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_offset: int
    version: tuple[int, int]

    @property
    def nbytes(self) -> int:
        """Size of the array data in bytes."""
        return math.prod(self.shape) * self.dtype.itemsize


class _UnsupportedDtype(InputError):
    """The data is well-formed but not plain real numbers (so an archive may skip it).

    Not raised for pickled Python objects: an archive holding a pickle is refused whole.
    """


def _dtype_problem(dtype: np.dtype) -> str | None:
    """Why `dtype` is refused, or None; LRN needs plain real numbers."""
    if dtype.hasobject:
        return "contains pickled Python objects; refusing to unpickle"
    if dtype.names is not None:
        return f"structured arrays (fields {', '.join(dtype.names)}) are not supported"
    if dtype.subdtype is not None:
        return f"sub-array dtype {dtype} is not supported"
    if dtype.kind == "c":
        return f"{dtype.name} arrays are not supported"
    if dtype.kind not in "biuf":
        return f"{dtype.name} arrays are not supported (need bool, integer or floating point)"
    return None


def _parse_header(fp: IO[bytes], data_size: int, name: object, what: str = "file") -> NpyHeader:
    """Read and validate a header from `fp` (positioned at the magic string).

    `data_size` is the number of bytes from the magic string to the end of the stream; the
    header's claimed array size must match it exactly before anything is allocated.
    """
    try:
        version = npy_format.read_magic(fp)
    except ValueError:
        raise _bad_magic(fp, name, what) from None
    if version == (3, 0):
        raise _UnsupportedDtype(
            name,
            "uses .npy format 3.0 (structured dtype with non-Latin-1 field names), "
            "which is not supported",
        )
    if version not in ((1, 0), (2, 0)):
        raise InputError(name, f"unsupported .npy format version {version[0]}.{version[1]}")
    reader = (
        npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    )
    try:
        shape, fortran_order, dtype = reader(fp)
    except (ValueError, TypeError, SyntaxError, RecursionError, OverflowError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if message.startswith("EOF"):
            raise InputError(name, f"truncated: the .npy header is cut short ({message})") from None
        raise InputError(name, f"corrupt .npy header: {message}") from None
    data_offset = fp.tell()
    if any(d < 0 or d > _MAX_DIM for d in shape):
        raise InputError(name, f"corrupt .npy header: impossible shape {shape}")
    problem = _dtype_problem(dtype)
    if problem is not None:
        raise (InputError if dtype.hasobject else _UnsupportedDtype)(name, problem)
    header = NpyHeader(tuple(shape), dtype, bool(fortran_order), data_offset, version)
    available = data_size - data_offset
    if available < header.nbytes:
        raise InputError(
            name, f"truncated: header says {header.nbytes} bytes of data, {what} has {available}"
        )
    if available > header.nbytes:
        raise InputError(
            name,
            f"{available - header.nbytes} unexpected bytes after the array data (header says "
            f"{header.nbytes} bytes of data, {what} has {available}); several arrays saved "
            "into one file?",
        )
    return header


def _bad_magic(fp: IO[bytes], name: object, what: str) -> InputError:
    """The error for a stream that does not start like a .npy file, with a hint if possible."""
    try:
        fp.seek(0)
        start = fp.read(len(npy_format.MAGIC_PREFIX))
    except (OSError, ValueError):
        start = b""
    if start == npy_format.MAGIC_PREFIX:
        return InputError(name, "truncated: the .npy header is cut short")
    if not start:
        return InputError(name, f"not a .npy {what} (bad magic: it is empty)")
    hint = "; it looks like a .npz (zip) archive" if start.startswith(_ZIP_MAGIC) else ""
    return InputError(name, f"not a .npy {what} (bad magic){hint}")


@contextmanager
def _open_for_reading(path: PathLike) -> Iterator[tuple[IO[bytes], int]]:
    """Open `path` as a seekable stream and give its size; OS errors become `InputError`.

    Pipes and devices (``/dev/stdin``, ``<(...)``) have no size and cannot seek, so they are
    read into memory first.
    """
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputError(path, os_error_reason(exc)) from exc
    with handle:
        try:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode):
                stream: IO[bytes] = handle
                size = info.st_size
            else:
                stream = io.BytesIO(handle.read())
                size = len(stream.getbuffer())
            yield stream, size
        except OSError as exc:
            raise InputError(path, os_error_reason(exc)) from exc


def read_npy_header(path: PathLike) -> NpyHeader:
    """Validate a ``.npy`` file's header and size without reading its data.

    For callers that process a large file in pieces (memory map or seek to `data_offset`).

    Parameters
    ----------
    path
        The ``.npy`` file.

    Returns
    -------
    NpyHeader
        Shape, dtype, order, data offset and format version.

    Raises
    ------
    InputError
        Unreadable, not a ``.npy`` file, truncated or with trailing bytes, or an unsupported
        dtype (object, structured, complex, string, ...).
    """
    with _open_for_reading(path) as (fp, size):
        return _parse_header(fp, size, path)


def _load(fp: IO[bytes], name: object) -> np.ndarray:
    """Load the data after a successful `_parse_header`; pickles are never allowed."""
    fp.seek(0)
    try:
        return npy_format.read_array(fp, allow_pickle=False)
    except ValueError as exc:  # e.g. the file shrank since the header check
        raise InputError(name, f"cannot read the array data: {str(exc).splitlines()[0]}") from exc


def read_npy(path: PathLike) -> np.ndarray:
    """Load a ``.npy`` file safely (see the module docstring for what is checked).

    Parameters
    ----------
    path
        The ``.npy`` file.

    Returns
    -------
    numpy.ndarray
        The array, with the stored dtype and memory order (Fortran-order files give
        Fortran-ordered arrays).

    Raises
    ------
    InputError
        As for `read_npy_header`, or if reading the data fails.
    """
    with _open_for_reading(path) as (fp, size):
        _parse_header(fp, size, path)
        return _load(fp, path)


def read_npy_bytes(data: bytes | bytearray | memoryview, name: str = "<stdin>") -> np.ndarray:
    """Load a ``.npy`` image held in memory (e.g. read from standard input), safely.

    Parameters
    ----------
    data
        The complete ``.npy`` file content.
    name
        What to call the source in error messages.

    Returns
    -------
    numpy.ndarray
        The array (a copy; it does not keep `data` alive).

    Raises
    ------
    InputError
        As for `read_npy`.
    """
    fp = io.BytesIO(data)
    _parse_header(fp, len(fp.getbuffer()), name, what="input")
    return _load(fp, name)


def read_npz(
    source: PathLike | IO[bytes],
    *,
    name: str | None = None,
    keys: Iterable[str] | None = None,
    on_skip: Callable[[str, str], object] | None = None,
) -> dict[str, np.ndarray]:
    """Load the arrays of a ``.npz`` archive, each checked like a ``.npy`` file.

    Parameters
    ----------
    source
        The ``.npz`` file (compressed or not), or a binary file object holding one (e.g. a
        `io.BytesIO` of standard input; non-seekable streams are read into memory).
    name
        What to call the source in messages (default: the path, or the stream's name).
    keys
        Load only these arrays (names without ``.npy``), in this order; the other members
        are neither read nor checked (whatever their dtype), and members that are not
        ``.npy`` files are ignored.  Default: every member.
    on_skip
        When given, a member whose dtype is not supported (structured, complex, string,
        datetime, ...) is left out and reported as ``on_skip(key, reason)`` instead of
        failing the archive; the archive fails only when no array is left.  A member holding
        pickled Python objects still fails the archive (select the others with `keys`).
        Nothing is ever unpickled: the dtype is read from the member's header first.

    Returns
    -------
    dict of str to numpy.ndarray
        Arrays by name (the member name without ``.npy``), in archive order (or in the
        order of `keys`).

    Raises
    ------
    InputError
        Unreadable, not a zip file, empty, a member that is not a ``.npy`` file, a duplicate
        name, a key that is not in the archive (the message lists the names it has), or a
        (selected) member failing the ``.npy`` checks (the message names the member).
    """
    wanted = None if keys is None else list(dict.fromkeys(keys))
    if isinstance(source, (str, os.PathLike)):
        with _open_for_reading(source) as (fp, _):
            return _read_npz(fp, name if name is not None else os.fspath(source), wanted,
                             on_skip)
    display = name if name is not None else str(getattr(source, "name", "<stream>"))
    try:
        seekable = source.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    try:
        stream = source if seekable else io.BytesIO(source.read())
        return _read_npz(stream, display, wanted, on_skip)
    except OSError as exc:
        raise InputError(display, os_error_reason(exc)) from exc


def _read_npz(
    fp: IO[bytes],
    path: object,
    keys: list[str] | None = None,
    on_skip: Callable[[str, str], object] | None = None,
) -> dict[str, np.ndarray]:
    try:
        archive = zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise InputError(path, "not a valid .npz (zip) file") from exc
    arrays: dict[str, np.ndarray] = {}
    with archive:
        members: dict[str, zipfile.ZipInfo] = {}
        duplicates: set[str] = set()
        for info in archive.infolist():
            if info.is_dir():
                continue
            if not info.filename.endswith(".npy"):
                if keys is None:
                    raise InputError(path, f"member {info.filename!r} is not a .npy array")
                continue
            key = info.filename[: -len(".npy")]
            if key in members:
                if keys is None:
                    raise InputError(path, f"array {key!r} appears twice in the archive")
                duplicates.add(key)
            members.setdefault(key, info)
        if not members:
            raise InputError(path, "contains no arrays (empty .npz)")
        if keys is not None:
            for key in keys:
                if key not in members:
                    have = ", ".join(members)
                    raise InputError(path, f"has no array named {key!r} (it has: {have})")
                if key in duplicates:
                    raise InputError(path, f"array {key!r} appears twice in the archive")
        skipped: list[tuple[str, str]] = []
        for key in members if keys is None else keys:
            try:
                arrays[key] = _read_member(archive, members[key], path, key)
            except _UnsupportedDtype as exc:
                if on_skip is None:
                    raise
                reason = exc.reason.removeprefix(f"array {key!r}: ")
                skipped.append((key, reason))
                on_skip(key, reason)
    if not arrays:  # every member skipped
        if len(skipped) == 1:
            key, reason = skipped[0]
            raise InputError(path, f"array {key!r}: {reason}")
        listed = "; ".join(f"{key!r}: {reason}" for key, reason in skipped)
        raise InputError(path, f"contains no supported arrays ({listed})")
    return arrays


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: object, key: str
) -> np.ndarray:
    """Validate then load one archive member; zip-level errors become `InputError`."""
    try:
        with archive.open(info) as member:
            try:
                _parse_header(member, info.file_size, path, what="member")
            except InputError as exc:
                kind = _UnsupportedDtype if isinstance(exc, _UnsupportedDtype) else InputError
                raise kind(path, f"array {key!r}: {exc.reason}") from None
        with archive.open(info) as member:
            return npy_format.read_array(member, allow_pickle=False)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        ValueError,
        RuntimeError,
        NotImplementedError,
    ) as exc:
        # Bad CRC, corrupt deflate data, encrypted member, unsupported compression, ...
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, f"array {key!r} cannot be read: {message}") from exc


def _checked_array(arr: object, what: str) -> np.ndarray:
    """Turn `arr` into an ndarray that can be written without pickling."""
    array = np.asanyarray(arr)
    if isinstance(array, np.ma.MaskedArray):
        raise ParameterError(f"{what}: masked arrays cannot be saved to .npy; fill them first")
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise ParameterError(f"{what}: object arrays would need pickling; refusing to save")
    return array


def write_npy(
    path: PathLike,
    arr: np.ndarray,
    *,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
) -> Path:
    """Save one array as ``.npy``, atomically and without pickling.

    Parameters
    ----------
    path
        Destination file.
    arr
        The array (anything `numpy.asarray` accepts, except object data).
    overwrite, protect
        See `lrn_cli.atomic.atomic_write`.

    Returns
    -------
    pathlib.Path
        The destination.

    Raises
    ------
    ParameterError
        If `arr` has object dtype.
    OutputError
        If the destination is refused or cannot be written.
    """
    array = _checked_array(arr, "array")

    def writer(handle: IO[bytes]) -> None:
        npy_format.write_array(handle, array, allow_pickle=False)

    return atomic_write(path, writer, overwrite=overwrite, protect=protect)


def write_npz(
    path: PathLike,
    arrays: Mapping[str, np.ndarray],
    *,
    compressed: bool = False,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
) -> Path:
    """Save named arrays as a ``.npz`` archive, atomically and without pickling.

    Uncompressed by default: activations compress poorly and uncompressed members can be
    read faster.

    Parameters
    ----------
    path
        Destination file.
    arrays
        Arrays by name; names must be non-empty strings without ``/``.
    compressed
        Deflate the members (like `numpy.savez_compressed`).
    overwrite, protect
        See `lrn_cli.atomic.atomic_write`.

    Returns
    -------
    pathlib.Path
        The destination.

    Raises
    ------
    ParameterError
        If there are no arrays, a name is invalid, or an array has object dtype.
    OutputError
        If the destination is refused or cannot be written.
    """
    if not arrays:
        raise ParameterError("no arrays to save in the .npz file")
    checked: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key or "/" in key or "\\" in key:
            raise ParameterError(
                f"invalid .npz array name {key!r} (need a non-empty string without slashes)"
            )
        checked[key] = _checked_array(value, f"array {key!r}")
    compression = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED

    def writer(handle: IO[bytes]) -> None:
        # What numpy.savez does, minus its keyword-argument API (an array named "file" would
        # collide with it) and with pickling off.
        with zipfile.ZipFile(handle, mode="w", compression=compression, allowZip64=True) as zf:
            for key, array in checked.items():
                with zf.open(f"{key}.npy", mode="w", force_zip64=True) as member:
                    npy_format.write_array(member, array, allow_pickle=False)

    return atomic_write(path, writer, overwrite=overwrite, protect=protect)
