"""One file through LRN: load (npy, npz or image), normalize, measure, save.

This is what ``lrn apply`` does per input, without any CLI: it raises
:class:`~lrn_cli.errors.InputError`/:class:`~lrn_cli.errors.OutputError` naming the file, and
returns plain records that a caller can print, aggregate or send across processes.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lrn_cli.conventions import DEFAULTS
from lrn_cli.errors import InputError, LrnError, OutputError, ParameterError, one_line
from lrn_cli.layouts import resolve_layout

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
ARRAY_SUFFIXES = {".npy": "npy", ".npz": "npz"}


@dataclass(frozen=True)
class Settings:
    """LRN parameters, as the user gave them (``size`` is always the window width)."""

    size: int = DEFAULTS.size
    alpha: float = DEFAULTS.alpha
    beta: float = DEFAULTS.beta
    k: float = DEFAULTS.k
    mode: str = "across"
    convention: str = "default"

    def text(self, *, omit: str | None = None) -> str:
        """``"across, default, n=5, alpha=0.0001, beta=0.75, k=2"`` (see
        :func:`lrn_cli.conventions.settings_text`)."""
        from lrn_cli.conventions import settings_text

        return settings_text(self.mode, self.convention, self.size, self.alpha, self.beta,
                             self.k, omit=omit)

    def lrn_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`lrn_cli.lrn`."""
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k,
                "mode": self.mode, "convention": self.convention}


@dataclass(frozen=True)
class ReadOptions:
    """How to read inputs: which layout arrays have, which npz member, image value range."""

    layout: str | None = None
    channel_axis: int | None = None
    channel_axis_given: bool = False
    key: str | None = None
    value_range: str = "unit"
    dtype: str | None = None  # "float32" / "float64": compute in this dtype
    stream: str = "auto"  # "auto" | "always" | "never": .npy slab by slab
    stream_threshold: int = 256 * 2**20


@dataclass(frozen=True)
class WriteOptions:
    """How to write outputs."""

    rescale: str = "minmax"
    per_channel: bool = True
    bits: int = 8
    overwrite: bool = False
    png_compression: int = 6  # zlib level of PNG outputs and panels (0-9)


@dataclass
class Item:
    """One array of an input file (an ``.npz`` has several)."""

    key: str
    array: np.ndarray
    layout: str
    channel_axis: int | None
    assumed: bool


@dataclass
class Loaded:
    """A decoded input file."""

    source: str
    kind: str  # "npy" | "npz" | "image"
    items: list[Item]
    image: Any = None  # lrn_cli.images.ImageData for images
    notes: list[str] = field(default_factory=list)


@dataclass
class ItemResult:
    """LRN of one array, with the statistics of its input, output and divisor."""

    key: str
    layout: str
    channel_axis: int | None
    output: np.ndarray | None
    before: Any  # lrn_cli.stats.ArrayStats
    after: Any
    divisor: Any  # lrn_cli.stats.DivisorStats
    #: Only with ``keep_arrays`` (what a panel draws): the input as LRN saw it, and ``D``.
    input_array: np.ndarray | None = None
    divisor_array: np.ndarray | None = None

    def without_output(self) -> ItemResult:
        """A copy that carries none of the (large) arrays, to send between processes."""
        return replace(self, output=None, input_array=None, divisor_array=None)


def input_kind(path: str | os.PathLike, head: bytes | None = None) -> str:
    """``"npy"``, ``"npz"`` or ``"image"``: from the magic bytes when given, else the suffix."""
    if head is not None:
        if head.startswith(NPY_MAGIC):
            return "npy"
        if head.startswith(ZIP_MAGIC):
            return "npz"
        return "image"
    suffix = Path(os.fspath(path)).suffix.lower()
    return ARRAY_SUFFIXES.get(suffix, "image")


def output_kind(path: str | os.PathLike) -> str:
    """The kind of file an output path asks for, from its suffix."""
    from lrn_cli.images import WRITABLE_IMAGE_SUFFIXES

    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return ARRAY_SUFFIXES[suffix]
    if suffix in WRITABLE_IMAGE_SUFFIXES:
        return "image"
    known = ", ".join([".npy", ".npz", *sorted(WRITABLE_IMAGE_SUFFIXES)])
    raise ParameterError(f"cannot write {suffix or 'files without an extension'}; use {known}")


def _array_item(source: str, key: str, arr: np.ndarray, opts: ReadOptions, mode: str,
                notes: list[str]) -> Item:
    if arr.dtype.kind not in "biuf":
        raise InputError(source, f"{arr.dtype} data is not supported (expected real numbers)")
    if arr.ndim == 0:
        raise InputError(source, "holds a scalar, not an array")
    try:
        layout, axis, assumed = resolve_layout(
            arr.ndim, mode, opts.layout, opts.channel_axis,
            channel_axis_given=opts.channel_axis_given,
        )
    except ParameterError as exc:
        raise InputError(source, f"{_label(key)}shape {arr.shape}: {exc}") from None
    if mode == "within" and len([c for c in layout if c != "C"]) < 2:
        raise InputError(
            source, f"{_label(key)}layout {layout} has no two spatial axes for within mode"
        )
    from lrn_cli.streaming import input_conversion, layout_note

    if assumed:
        notes.append(_label(key) + layout_note(layout, arr.ndim))
    target, conversion = input_conversion(
        arr.dtype, None if opts.dtype is None else np.dtype(opts.dtype))
    if conversion:
        notes.append(_label(key) + conversion)
    if target != arr.dtype:
        arr = arr.astype(target)
    return Item(key, arr, layout, axis, assumed)


def _label(key: str) -> str:
    return f"array {key!r}: " if key else ""


def load(source: str | os.PathLike, opts: ReadOptions, mode: str,
         data: bytes | None = None) -> Loaded:
    """Read one input (``data`` holds its bytes when it came from stdin)."""
    from lrn_cli import arrays

    name = os.fspath(source)
    kind = input_kind(name, data[:8] if data is not None else None)
    notes: list[str] = []
    if kind == "npy":
        arr = arrays.read_npy_bytes(data, name) if data is not None else arrays.read_npy(name)
        items = [_array_item(name, "", arr, opts, mode, notes)]
        return Loaded(name, kind, items, notes=notes)
    if kind == "npz":
        archive = io.BytesIO(data) if data is not None else name
        if opts.key is not None:  # only that member is read: the others may be anything
            members = arrays.read_npz(archive, name=name, keys=[opts.key])
        else:  # labels, names, ... next to the activations: skipped (never unpickled)
            members = arrays.read_npz(
                archive, name=name,
                on_skip=lambda key, why: notes.append(f"array {key!r} skipped: {why}"))
        items = [_array_item(name, key, arr, opts, mode, notes) for key, arr in members.items()]
        return Loaded(name, kind, items, notes=notes)
    from lrn_cli.images import read_image

    image = read_image(io.BytesIO(data) if data is not None else name,
                       value_range=opts.value_range, name=name)
    notes.extend(image.notes)
    pixels = image.pixels
    if opts.dtype == "float64":
        pixels = pixels.astype(np.float64)
    if opts.layout is not None or opts.channel_axis_given:
        notes.append("--layout/--channel-axis ignored for images (always height, width, channel)")
    if mode == "within" and (image.height < 1 or image.width < 1):
        raise InputError(name, "image has no pixels")
    return Loaded(name, "image", [Item("", pixels, "HWC", 2, False)], image=image, notes=notes)


def normalize(loaded: Loaded, settings: Settings, *, keep_output: bool = True,
              keep_arrays: bool = False, reuse_input: bool = False) -> list[ItemResult]:
    """Apply LRN to every array of ``loaded``; measure input, output and divisor.

    ``keep_arrays`` also keeps each input array and its divisor ``D`` in the results (for a
    panel, which draws them instead of computing them again).  ``reuse_input`` (without
    ``keep_arrays``) lets a picture's output overwrite its input pixels, slab by slab, with
    the divisor measured per slab and never held whole: a 12 MP RGB picture then needs one
    float32 image and two slabs instead of three images (``loaded`` is not usable afterwards).
    """
    from lrn_cli.core import DtypeConversionWarning, lrn
    from lrn_cli.stats import array_stats, divisor_stats

    results = []
    for item in loaded.items:
        in_place = (reuse_input and not keep_arrays and loaded.kind == "image"
                    and item.array.ndim == 3 and item.array.flags.writeable)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DtypeConversionWarning)  # _array_item said so
            try:
                if in_place:
                    before = array_stats(item.array, item.channel_axis)
                    y, div = _lrn_in_place(item, settings)
                    d = None
                else:
                    y, d = lrn(item.array, **settings.lrn_kwargs(),
                               channel_axis=item.channel_axis, return_divisor=True)
            except ParameterError as exc:
                raise InputError(loaded.source, f"{_label(item.key)}{exc}") from None
        if d is not None:
            before = array_stats(item.array, item.channel_axis)
            if loaded.kind == "image" and d.ndim == 3:  # the in-place path's sums, in its order
                div = _divisor_by_slabs(d, settings)
            else:
                div = divisor_stats(d, settings.beta)
        after = array_stats(y, item.channel_axis)
        results.append(ItemResult(item.key, item.layout, item.channel_axis,
                                  y if keep_output or keep_arrays else None, before, after, div,
                                  item.array if keep_arrays else None,
                                  d if keep_arrays else None))
        del d
    return results


#: Slabs of a picture LRN'd in place across channels (rows of pixels; within channels a
#: slab is a channel plane).
_IN_PLACE_SLABS = 8


def _lrn_in_place(item: Item, settings: Settings) -> tuple[np.ndarray, Any]:
    """LRN of ``item.array`` (``(H, W, C)``) written back into it slab by slab: channel
    planes within channels, rows of pixels across them (slabs LRN reads nothing outside
    of).  Returns the output (the input's memory) and the divisor's statistics, accumulated
    slab by slab (the same figures as of the whole divisor to rounding)."""
    from lrn_cli.core import lrn
    from lrn_cli.stats_divisor import DivisorAccumulator

    x = item.array
    acc = DivisorAccumulator(settings.beta)
    y_slab = d_slab = np.empty(0, x.dtype)
    across = settings.mode != "within"
    for idx in _picture_slabs(x.shape, settings.mode):
        xs = x[idx]
        if across:
            # a contiguous (1, C, pixels) copy: the same kernel (and so the same compiled
            # code on a first run) as a C-contiguous array's output and divisor; an across
            # window reads only along the channels, so the bits are the same in any layout
            xs = np.ascontiguousarray(np.moveaxis(xs, 2, 0)).reshape(1, xs.shape[2], -1)
        if y_slab.shape != xs.shape:
            y_slab, d_slab = np.empty_like(xs), np.empty_like(xs)
        lrn(xs, **settings.lrn_kwargs(), channel_axis=1 if across else item.channel_axis,
            out=y_slab, divisor_out=d_slab)
        if across:
            rows = x[idx]
            acc.add(np.moveaxis(d_slab.reshape(rows.shape[2], *rows.shape[:2]), 0, 2))
            rows[...] = np.moveaxis(y_slab.reshape(rows.shape[2], *rows.shape[:2]), 0, 2)
        else:
            acc.add(d_slab)
            xs[...] = y_slab  # LRN of the other slabs reads nothing of this one
    return x, acc.result()


def _picture_slabs(shape: tuple[int, ...], mode: str) -> list[Any]:
    """The slabs of an ``(H, W, C)`` picture that LRN reads nothing outside of: channel
    planes within channels, :data:`_IN_PLACE_SLABS` runs of pixel rows across them."""
    height, _, channels = shape
    if mode == "within":
        return [np.s_[:, :, c:c + 1] for c in range(channels)]
    step = max(1, -(-height // _IN_PLACE_SLABS))
    return [np.s_[h:h + step] for h in range(0, height, step)]


def _divisor_by_slabs(d: np.ndarray, settings: Settings) -> Any:
    """Statistics of a picture's whole divisor summed slab by slab as the in-place path
    sums them, so a picture prints the same figures to the last digit with or without a
    panel (a whole-array sum adds in another order: the last bits differ)."""
    from lrn_cli.stats_divisor import DivisorAccumulator

    acc = DivisorAccumulator(settings.beta)
    for idx in _picture_slabs(d.shape, settings.mode):
        acc.add(d[idx])
    return acc.result()


def default_output_suffix(loaded_kind: str, source: str, fmt: str | None = None) -> str:
    """The suffix an output gets when ``-o`` names a directory."""
    if fmt:
        return fmt if fmt.startswith(".") else "." + fmt
    if loaded_kind in ("npy", "npz"):
        return "." + loaded_kind
    return ".png"  # lossless, holds 16 bits and alpha, whatever the input format


def check_output(kind: str, out: str | os.PathLike, *, image=None, items: int = 1,
                 wopts: WriteOptions) -> str:
    """Raise early when ``out`` cannot hold the result of an input of ``kind``."""
    okind = output_kind(out)
    if okind == "npy" and items != 1:
        raise OutputError(out, f"input has {items} arrays: write .npz, or pick one with --key")
    if okind == "image":
        if kind != "image":
            raise OutputError(out, "image output needs an image input; write .npy or .npz")
        from lrn_cli.images import check_image_output

        try:
            check_image_output(out, channels=image.channels if image else 1,
                               has_alpha=image is not None and image.alpha is not None,
                               bit_depth=wopts.bits)
        except ParameterError as exc:
            raise OutputError(out, str(exc)) from None
    return okind


def _kept(result: ItemResult) -> np.ndarray:
    """The output array of a result normalized with ``keep_output`` (what :func:`save` needs)."""
    if result.output is None:
        raise ValueError(f"{result.key or 'the array'}: normalized without keep_output")
    return result.output


def save(loaded: Loaded, results: list[ItemResult], out: str | os.PathLike,
         wopts: WriteOptions, protect=(), *, consume: bool = False) -> Path:
    """Write the results of ``loaded`` to ``out`` atomically (format from the suffix).

    ``consume``: the output arrays are not needed afterwards, so a picture's output may be
    rescaled in place (one float32 image less at the peak)."""
    from lrn_cli import arrays

    okind = check_output(loaded.kind, out, image=loaded.image, items=len(results), wopts=wopts)
    if okind == "npy":
        return arrays.write_npy(out, _kept(results[0]), overwrite=wopts.overwrite,
                                protect=protect)
    if okind == "npz":
        members = {r.key or "arr_0": _kept(r) for r in results}
        return arrays.write_npz(out, members, overwrite=wopts.overwrite, protect=protect)
    from lrn_cli.image_write import rescale_in_place, rescaled_codes, write_codes
    from lrn_cli.images import rescale, write_image

    image = loaded.image
    y = _kept(results[0])
    codes = None
    if wopts.bits in (8, 16) and okind == "image":
        codes = rescaled_codes(y, wopts.rescale, per_channel=wopts.per_channel,
                               value_range=image.value_range, bit_depth=image.bit_depth,
                               out_bits=wopts.bits,
                               ranges=_finite_ranges(results[0].after, y, wopts.per_channel))
    if codes is not None:
        alpha_codes = None
        if image.alpha is not None:
            alpha_codes = rescaled_codes(image.alpha[..., None], "none",
                                         value_range=image.value_range,
                                         bit_depth=image.bit_depth, out_bits=wopts.bits)
        if image.alpha is None or alpha_codes is not None:
            return write_codes(out, codes, alpha=alpha_codes, icc_profile=image.icc_profile,
                               overwrite=wopts.overwrite, protect=protect,
                               png_compression=wopts.png_compression)
    if consume and rescale_in_place(y, wopts.rescale, per_channel=wopts.per_channel,
                                    value_range=image.value_range, bit_depth=image.bit_depth):
        unit = y
    else:
        unit = rescale(y, wopts.rescale, per_channel=wopts.per_channel,
                       value_range=image.value_range, bit_depth=image.bit_depth)
    alpha = None
    if image.alpha is not None:
        alpha = rescale(image.alpha[..., None], "none", value_range=image.value_range,
                        bit_depth=image.bit_depth)[..., 0]
    return write_image(out, unit, alpha=alpha, bit_depth=wopts.bits,
                       icc_profile=image.icc_profile, overwrite=wopts.overwrite,
                       protect=protect, png_compression=wopts.png_compression)


def _finite_ranges(after: Any, y: np.ndarray,
                   per_channel: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """The smallest and largest finite value of each channel of ``y`` (of all of it without
    ``per_channel``) from its statistics ``after``, as ``rescale`` finds them (0 and 0 for
    none), or None when ``after`` does not describe ``y`` that way.

    Only for float32 ``y``: its squares never overflow float64, so the statistics never
    rescale it, and the min and max of finite values are exact in any order.
    """
    from lrn_cli.stats import ArrayStats

    if (not isinstance(after, ArrayStats) or y.dtype != np.float32 or y.ndim != 3
            or tuple(after.shape) != y.shape or after.channel_axis not in (2, -1)
            or len(after.channels) != y.shape[2]):
        return None
    figures = after.channels if per_channel else (after.overall,)
    lo = np.array([f.min if f.count else 0.0 for f in figures], dtype=np.float64)
    hi = np.array([f.max if f.count else 0.0 for f in figures], dtype=np.float64)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo <= hi).all()):
        return None
    return lo, hi


@dataclass
class JobResult:
    """What happened to one input: status, output, notes, statistics (no large arrays)."""

    source: str
    output: str | None
    status: str  # "ok" | "failed" | "skipped"
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    items: list[ItemResult] = field(default_factory=list)
    seconds: float = 0.0
    traceback: str | None = None
    kind: str | None = None  # "npy" | "npz" | "image" when the input was loaded in memory


@dataclass(frozen=True)
class StreamChoice:
    """Whether an input is streamed, and why not when the user could expect it to be.

    ``reason`` (a note for the user) is set when the input is processed in memory although
    ``--stream`` asked for streaming, or although it is larger than the threshold.
    """

    stream: bool
    reason: str | None = None


def choose_streaming(source: str, output: str | None, ropts: ReadOptions,
                     data: bytes | None = None, *, mode: str = "across",
                     keep_output: bool = False) -> StreamChoice:
    """Decide whether ``source`` goes through :mod:`lrn_cli.streaming` (``.npy`` to ``.npy``).

    ``--stream`` (``ropts.stream == "always"``) streams every ``.npy`` to ``.npy`` (or to
    statistics only), and :func:`~lrn_cli.streaming.stream_npy` refuses the files it cannot
    cut; in auto mode a file above the threshold is streamed only when its header says it
    can be (C order, axis 0 is a sample axis for ``mode`` and the layout of ``ropts``), else
    it is processed in memory like a small one.  ``keep_output``: the caller needs the output
    array itself (``-o -``, ``--panel``), which streaming never holds.
    """
    if ropts.stream == "never":
        return StreamChoice(False)
    forced = ropts.stream == "always"

    def in_memory(why: str) -> StreamChoice:
        return StreamChoice(False, f"--stream ignored: {why}; processed in memory"
                            if forced else None)

    if data is not None:
        return in_memory("standard input is read whole")
    if keep_output:
        return in_memory("the whole output array is needed (-o - or --panel)")
    if input_kind(source) != "npy":
        return in_memory("only .npy inputs are streamed")
    if output == "-":
        return in_memory("-o - writes to standard output")
    if output is not None:
        suffix = Path(output).suffix.lower()
        if suffix != ".npy":
            return in_memory(f"streaming writes .npy only, not {suffix or 'this output'}")
    if ropts.dtype is not None:
        return in_memory(f"--dtype {ropts.dtype} is not supported when streaming")
    if forced:
        return StreamChoice(True)
    try:
        if os.path.getsize(source) <= ropts.stream_threshold:
            return StreamChoice(False)
    except OSError:
        return StreamChoice(False)  # the in-memory path reports it
    why = _stream_refusal(source, ropts, mode)
    if why is None:
        return StreamChoice(True)
    what = why.split(";")[0]  # "is Fortran-ordered", "cannot be streamed: axis 0 is ..."
    return StreamChoice(False, f"larger than --stream-threshold but {what}; processed in memory")


def _stream_refusal(source: str, ropts: ReadOptions, mode: str) -> str | None:
    """Why a large ``.npy`` cannot be streamed, from its header (None: it can, or it is bad).

    A header that cannot be read or a layout that does not fit is left to the streaming path,
    which reports it without loading the file.
    """
    from lrn_cli.arrays import read_npy_header
    from lrn_cli.streaming import refusal

    try:
        header = read_npy_header(source)
    except InputError:
        return None
    axis = None
    if not header.fortran_order:
        try:
            _, axis, _ = resolve_layout(len(header.shape), mode, ropts.layout,
                                        ropts.channel_axis,
                                        channel_axis_given=ropts.channel_axis_given)
        except ParameterError:
            return None
    return refusal(header, mode, axis)


def should_stream(source: str, output: str | None, ropts: ReadOptions,
                  data: bytes | None = None, *, mode: str = "across") -> bool:
    """Whether ``source`` goes through :mod:`lrn_cli.streaming`; see :func:`choose_streaming`."""
    return choose_streaming(source, output, ropts, data, mode=mode).stream


def _run_streamed(source: str, output: str | None, settings: Settings, ropts: ReadOptions,
                  wopts: WriteOptions, protect,
                  on_progress) -> tuple[list[ItemResult], list[str]]:
    from lrn_cli.streaming import stream_npy

    res = stream_npy(source, output, **settings.lrn_kwargs(), layout=ropts.layout,
                     channel_axis=ropts.channel_axis,
                     channel_axis_given=ropts.channel_axis_given,
                     overwrite=wopts.overwrite, protect=protect, on_progress=on_progress)
    items = [ItemResult("", res.layout, res.channel_axis, None, res.before, res.after,
                        res.divisor)]
    return items, [*res.notes, "streamed slab by slab"]


def run_job(source: str, output: str | None, settings: Settings, ropts: ReadOptions,
            wopts: WriteOptions, *, data: bytes | None = None, protect=(),
            want_traceback: bool = False, keep_output: bool = False,
            keep_arrays: bool = False, on_progress=None) -> JobResult:
    """Load, normalize and (when ``output`` is given) save one input; never raises for bad data.

    Expected problems (unreadable input, refused output) become ``status="failed"`` with a
    one-line ``error``; unexpected exceptions too, with the traceback kept when asked.
    ``keep_output`` keeps the output arrays in the result; ``keep_arrays`` the input arrays
    and divisors too (see :func:`normalize`; both run in memory, never streamed).
    """
    start = time.perf_counter()
    loaded = None
    notes: list[str] = []
    try:
        choice = choose_streaming(source, output, ropts, data, mode=settings.mode,
                                  keep_output=keep_output or keep_arrays)
        if choice.stream:
            items, notes = _run_streamed(source, output, settings, ropts, wopts, protect,
                                         on_progress)
            return JobResult(source, output, "ok", notes=notes, items=items,
                             seconds=time.perf_counter() - start)
        if choice.reason:
            notes.append(choice.reason)
        loaded = load(source, ropts, settings.mode, data)
        notes.extend(loaded.notes)
        if output is not None and output != "-":
            check_output(loaded.kind, output, image=loaded.image, items=len(loaded.items),
                         wopts=wopts)
        keep = keep_output or keep_arrays
        results = normalize(loaded, settings, keep_arrays=keep_arrays,
                            reuse_input=not keep_arrays)
        if output is not None and output != "-":
            save(loaded, results, output, wopts, protect, consume=not keep)
        items = results if keep else [r.without_output() for r in results]
        return JobResult(source, output, "ok", notes=notes, items=items,
                         seconds=time.perf_counter() - start, kind=loaded.kind)
    except (LrnError, MemoryError) as exc:
        return JobResult(source, output, "failed", error=one_line(exc, source),
                         notes=notes if isinstance(exc, LrnError) else [],
                         seconds=time.perf_counter() - start,
                         traceback=_tb() if want_traceback else None)
    except Exception as exc:  # a bug: report it per file and go on with the batch
        return JobResult(source, output, "failed", error=one_line(exc, source),
                         seconds=time.perf_counter() - start, traceback=_tb())


def _tb() -> str:
    import traceback

    return traceback.format_exc()
