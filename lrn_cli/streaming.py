"""LRN on ``.npy`` files larger than memory, one slab along the first axis at a time.

LRN never mixes samples, so a (N, ...) array can be cut along N with no halo in either mode
(as long as N is neither the channel axis in across mode nor a spatial axis within).  The
header is parsed safely and checked against the file size before anything is allocated;
slabs are read with plain ``readinto`` into one reused buffer (no memory map, whose pages
would count towards the resident set), normalized, and appended to a temporary file that
is renamed onto the output only when complete.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Literal

import numpy as np

from lrn_cli.conventions import DEFAULT_CONVENTION, DEFAULTS, Convention
from lrn_cli.errors import InputError, ParameterError

if TYPE_CHECKING:
    from lrn_cli.arrays import NpyHeader

#: Inputs above this size are streamed by default (``lrn apply --stream-threshold``).
DEFAULT_THRESHOLD = 256 * 2**20
#: Target bytes of input per slab.
DEFAULT_SLAB_BYTES = 64 * 2**20


@dataclass
class StreamResult:
    """Statistics of a streamed run (the arrays themselves never sit in memory).

    ``before`` describes the array LRN saw, as in memory: integer and bool input is converted
    to float32 first, so its statistics report float32.  ``layout``/``channel_axis`` are the
    resolved layout (as given, or the default for the rank); ``notes`` say what was assumed or
    converted, worded like the in-memory path's notes.
    """

    before: object
    after: object
    divisor: object
    slabs: int
    layout: str = ""
    channel_axis: int | None = None
    notes: list[str] = field(default_factory=list)


def can_stream(shape: tuple[int, ...], mode: str, channel_axis: int | None) -> str | None:
    """Why an array of this shape cannot be streamed along axis 0 (None when it can)."""
    if len(shape) < 2:
        return "a 1-D array has no sample axis to cut"
    if mode == "across" and channel_axis == 0:
        return "axis 0 is the channel axis"
    if mode == "within":
        others = [a for a in range(len(shape)) if a != channel_axis]
        if 0 in others[-2:]:
            return "axis 0 is a spatial axis"
    return None


def refusal(header: NpyHeader, mode: str, channel_axis: int | None) -> str | None:
    """Why the ``.npy`` file with this header cannot be streamed (None when it can).

    ``header`` is an :class:`lrn_cli.arrays.NpyHeader`; ``channel_axis`` the resolved one.
    The reason reads after the file name (``"x.npy: is Fortran-ordered; ..."``).
    """
    if header.fortran_order:
        return "is Fortran-ordered; streaming needs C order"
    why = can_stream(tuple(header.shape), mode, channel_axis)
    return None if why is None else f"cannot be streamed: {why}"


def layout_note(layout: str, ndim: int) -> str:
    """The note for a layout assumed from the number of dimensions."""
    return f"assumed layout {layout} for a {ndim}-D array; use --layout to change"


def input_conversion(dtype: np.dtype, requested: np.dtype | None = None
                     ) -> tuple[np.dtype, str | None]:
    """The dtype an input array is normalized in, and the note that says so (None: no note).

    Shared by the in-memory path (:mod:`lrn_cli.pipeline`) and streaming, so both convert
    alike and say so in the same words: ``requested`` (``--dtype``) wins; integers and bool
    become float32 (as :func:`lrn_cli.lrn` would, with a warning); float16 stays float16.
    """
    if requested is not None and dtype != requested:
        return requested, f"converted {dtype} to {requested}"
    if dtype.kind in "biu":
        return np.dtype(np.float32), f"converted {dtype} to float32"
    if dtype.kind == "f" and dtype.itemsize == 2:
        return dtype, "float16 computed in float32, saved as float16"
    return dtype, None


def _write_header(fh: IO[bytes], shape: tuple[int, ...], dtype: np.dtype) -> None:
    from numpy.lib import format as npy_format

    header = {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": tuple(shape)}
    try:
        npy_format.write_array_header_1_0(fh, header)
    except ValueError:  # header longer than 65535 bytes
        npy_format.write_array_header_2_0(fh, header)


def stream_npy(
    source: str | os.PathLike,
    output: str | os.PathLike | None,
    size: int | None = None,
    alpha: float = DEFAULTS.alpha,
    beta: float = DEFAULTS.beta,
    k: float = DEFAULTS.k,
    *,
    mode: Literal["across", "within"] = "across",
    convention: str | Convention = DEFAULT_CONVENTION,
    depth_radius: int | None = None,
    layout: str | None = None,
    channel_axis: int | None = None,
    channel_axis_given: bool = False,
    slab_bytes: int = DEFAULT_SLAB_BYTES,
    overwrite: bool = False,
    protect=(),
    on_progress: Callable[[int, int], None] | None = None,
) -> StreamResult:
    """Normalize the ``.npy`` file ``source`` into ``output`` with bounded memory.

    Parameters
    ----------
    source, output
        Input and output ``.npy`` paths (``output`` None: statistics only).
    size, alpha, beta, k, mode, convention, depth_radius
        As for :func:`lrn_cli.lrn`.
    layout, channel_axis, channel_axis_given
        As for in-memory inputs (4-D defaults to NCHW).
    slab_bytes
        Input bytes per slab (at least one sample).
    on_progress
        Called with (samples done, samples in all) after each slab.

    Returns
    -------
    StreamResult
        Statistics (the input's as LRN saw it: integers and bool as float32, like in
        memory), the resolved layout and channel axis, and notes for the user (layout
        assumed, dtype converted) worded like :func:`lrn_cli.pipeline.load`'s.

    Raises
    ------
    InputError
        Unreadable or invalid file, a layout that does not fit, or a file that cannot be cut
        along axis 0 (:func:`refusal`); nothing is written then.
    OutputError
        The output is refused or cannot be written.
    """
    from lrn_cli.arrays import read_npy_header
    from lrn_cli.atomic import atomic_write
    from lrn_cli.core import lrn, result_dtype
    from lrn_cli.layouts import resolve_layout
    from lrn_cli.stats import DivisorAccumulator, StatsAccumulator

    name = os.fspath(source)
    header = read_npy_header(name)  # validated: safe dtype, size matches the file
    shape = tuple(header.shape)
    if header.fortran_order:  # before the layout: whatever the layout, the order is wrong
        raise InputError(name, f"{refusal(header, mode, None)} (use --no-stream)")
    try:
        layout, axis, assumed = resolve_layout(len(shape), mode, layout, channel_axis,
                                               channel_axis_given=channel_axis_given)
        out_dtype = result_dtype(header.dtype)
    except ParameterError as exc:
        raise InputError(name, str(exc)) from None
    why = refusal(header, mode, axis)
    if why:
        raise InputError(name, f"{why} (use --no-stream)")
    # as in memory: integers and bool become float32 before LRN (the input statistics
    # describe float32 data there too)
    in_dtype, conversion = input_conversion(header.dtype)
    notes = [layout_note(layout, len(shape))] if assumed else []
    notes += [conversion] if conversion else []
    n = shape[0]
    per_sample = math.prod(shape[1:]) * header.dtype.itemsize
    rows = max(1, slab_bytes // max(1, per_sample))
    channels = None if axis is None else shape[axis]
    before = StatsAccumulator(channels, channel_axis=axis, dtype=in_dtype)
    after = StatsAccumulator(channels, channel_axis=axis, dtype=out_dtype)
    divisor = DivisorAccumulator(beta)
    slabs = 0

    def run(out_fh: IO[bytes] | None) -> None:
        nonlocal slabs
        buf = np.empty(rows * per_sample, dtype=np.uint8)
        # output and divisor slabs are reused too: fresh memory would be faulted in per slab
        y_buf = np.empty((min(rows, n), *shape[1:]), dtype=out_dtype)
        d_buf = np.empty_like(y_buf)
        x_buf = None if in_dtype == header.dtype else np.empty_like(y_buf, dtype=in_dtype)
        with open(name, "rb") as fh:
            fh.seek(header.data_offset)
            done = 0
            while done < n:
                take = min(rows, n - done)
                view = buf.data[: take * per_sample]
                got = fh.readinto(view)
                if got != take * per_sample:
                    raise InputError(name, "truncated while reading (file changed?)")
                x = np.frombuffer(buf[: take * per_sample], dtype=header.dtype).reshape(
                    (take, *shape[1:]))
                if x_buf is not None:  # converted here, so lrn() has nothing to warn about
                    np.copyto(x_buf[:take], x, casting="unsafe")
                    x = x_buf[:take]
                try:
                    y, d = lrn(x, size, alpha, beta, k, mode=mode, convention=convention,
                               depth_radius=depth_radius, channel_axis=axis, out=y_buf[:take],
                               divisor_out=d_buf[:take])
                except ParameterError as exc:
                    raise InputError(name, str(exc)) from None
                before.add(x, axis)
                after.add(y, axis)
                divisor.add(d)
                if out_fh is not None:
                    out_fh.write(np.ascontiguousarray(y, dtype=out_dtype).data)
                done += take
                slabs += 1
                if on_progress is not None:
                    on_progress(done, n)

    if output is None:
        run(None)
    else:
        def writer(fh: IO[bytes]) -> None:
            _write_header(fh, shape, out_dtype)
            run(fh)

        atomic_write(output, writer, overwrite=overwrite, protect=protect)
    return StreamResult(before.result(shape), after.result(shape), divisor.result(), slabs,
                        layout=layout, channel_axis=axis, notes=notes)
