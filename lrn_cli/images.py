"""Images in and out, as float32 ``(H, W, C)`` arrays, via Pillow.

Pillow is imported inside the functions only, so importing this module (and hence starting
the CLI for ``--help``) stays fast.

Value range
-----------
LRN divides by ``(k + alpha/n * sum(x**2)) ** beta``; the effect of ``alpha`` therefore
depends on the scale of ``x``, and the scale is a choice, made by ``value_range``:

``"unit"`` (default)
    8-bit codes are divided by 255 and 16-bit codes by 65535: values in [0, 1].
``"byte"``
    Values in [0, 255] whatever the bit depth (16-bit codes are divided by 257, which maps
    65535 to exactly 255), the scale of the Caffe/AlexNet-era pipelines.
``"raw"``
    The integer codes as floats: [0, 255] for 8-bit, [0, 65535] for 16-bit.

Floating-point images (Pillow mode ``F``, e.g. 32-bit float TIFF) are kept as stored
whatever ``value_range`` says; their `ImageData.value_range` is ``"raw"``.

Pillow capabilities this module works around (checked with Pillow 13)
----------------------------------------------------------------------
* Pillow has no 16-bit RGB(A) or gray+alpha mode: 16-bit RGB PNG/TIFF/PPM files are
  decoded to 8 bits per channel (reported in `ImageData.notes`), and cannot be written by
  Pillow at all. 16-bit PNG output is therefore written by a small built-in PNG encoder
  (gray, gray+alpha, RGB, RGBA); 16-bit TIFF output is gray only (Pillow ``I;16``).
* Pillow's float mode ``F`` has one channel: 32-bit output is a gray float TIFF only;
  write ``.npy`` for float RGB.
* JPEG has no alpha and 8 bits only; BMP has no gray+alpha; WebP has no gray (gray is
  stored as RGB). JPEG is written at quality 95 without chroma subsampling and WebP
  losslessly, since these files are for looking at results closely.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import numpy as np

from lrn_cli.atomic import PathLike, atomic_write, os_error_reason
from lrn_cli.errors import InputError, ParameterError

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "IMAGE_SUFFIXES",
    "VALUE_RANGES",
    "WRITABLE_IMAGE_SUFFIXES",
    "ImageData",
    "check_image_output",
    "is_image_path",
    "read_image",
    "rescale",
    "write_image",
]

ValueRange = Literal["unit", "byte", "raw"]
VALUE_RANGES: tuple[str, ...] = ("unit", "byte", "raw")

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm"}
)
"""The common image extensions (lower case, with the dot); folders contribute every
extension of :func:`readable_image_suffixes`."""

#: Formats whose Pillow plugin runs another program on what it reads (EPS: Ghostscript):
#: read only when asked for by name (an input file or a ``--glob``), never found in a folder
#: nor guessed from the content of a file with another extension.
EXTERNAL_PROGRAM_FORMATS: frozenset[str] = frozenset({"EPS"})


def readable_image_suffixes() -> frozenset[str]:
    """Every extension of a format Pillow can open (``Image.OPEN``: not save-only, not a
    stub plugin that only identifies files), except :data:`EXTERNAL_PROGRAM_FORMATS`."""
    global _READABLE
    if _READABLE is None:
        from PIL import Image, ImageFile

        Image.init()
        readable = {fmt for fmt, (factory, _accept) in Image.OPEN.items()
                    if fmt not in EXTERNAL_PROGRAM_FORMATS
                    and not (isinstance(factory, type)
                             and issubclass(factory, ImageFile.StubImageFile))}
        _READABLE = frozenset(ext for ext, fmt in Image.registered_extensions().items()
                              if fmt in readable) | IMAGE_SUFFIXES
    return _READABLE


_READABLE: frozenset[str] | None = None


def _open_formats(display: str) -> list[str] | None:
    """The formats ``Image.open`` may try for a file called ``display``: all but those that
    run another program, unless the name asks for one of them (``x.eps``)."""
    from PIL import Image

    Image.init()
    named = Image.registered_extensions().get(Path(display).suffix.lower())
    if named in EXTERNAL_PROGRAM_FORMATS:
        return None
    return [fmt for fmt in Image.OPEN if fmt not in EXTERNAL_PROGRAM_FORMATS]

WRITABLE_IMAGE_SUFFIXES: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
}
"""Output extensions and the Pillow format each one selects."""

# Modes whose colour data is converted to RGB on reading (the note says so).
_TO_RGB = {"CMYK", "YCbCr", "LAB", "HSV", "RGBX"}
_GRAY16 = {"I;16", "I;16L", "I;16B", "I;16N"}


def is_image_path(path: PathLike) -> bool:
    """Whether `path` has an image extension (decides how the CLI reads an input)."""
    return Path(os.fspath(path)).suffix.lower() in IMAGE_SUFFIXES


@dataclass
class ImageData:
    """An image as LRN sees it, plus what is needed to write the result back faithfully.

    Attributes
    ----------
    pixels
        float32, shape ``(H, W, C)``; C is 1 (gray) or 3 (RGB). Scaled per `value_range`.
    alpha
        float32 ``(H, W)`` with the same scaling as `pixels`, or None. Not normalized.
    mode
        The file's original Pillow mode (``"P"``, ``"I;16"``, ``"CMYK"``...).
    bit_depth
        8 or 16 for integer data as decoded, 32 for float images.
    channel_names
        ``("L",)`` or ``("R", "G", "B")``.
    icc_profile
        The embedded ICC profile if it describes `pixels` (gray or RGB), else None.
    source_format
        Pillow's format name (``"PNG"``, ``"JPEG"``...).
    notes
        Conversions and oddities worth telling the user (EXIF rotation, CMYK to RGB, extra
        frames ignored, Pillow warnings...).
    value_range
        The scaling applied: the requested one, or ``"raw"`` for float images.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    mode: str
    bit_depth: int
    channel_names: tuple[str, ...]
    icc_profile: bytes | None
    source_format: str
    notes: list[str] = field(default_factory=list)
    value_range: str = "unit"

    @property
    def height(self) -> int:
        """Rows."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Columns."""
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """1 or 3."""
        return int(self.pixels.shape[2])


def _check_value_range(value_range: str) -> None:
    if value_range not in VALUE_RANGES:
        raise ParameterError(
            f"value range must be one of {', '.join(VALUE_RANGES)}, not {value_range!r}"
        )


def _divisor(value_range: str, bit_depth: int) -> float:
    """What integer codes of `bit_depth` bits are divided by for `value_range`."""
    if value_range == "raw" or bit_depth == 32:
        return 1.0
    if value_range == "unit":
        return 255.0 if bit_depth == 8 else 65535.0
    return 1.0 if bit_depth == 8 else 257.0  # byte


def _icc_color_space(profile: bytes) -> str | None:
    """The data colour space an ICC profile describes (header bytes 16-19), e.g. 'RGB'."""
    if len(profile) < 128:
        return None
    return profile[16:20].decode("ascii", "replace").strip() or None


def _display_name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


def _probe(fp: IO[bytes]) -> tuple[PILImage.Image | None, list[str]]:
    """Run Pillow's format plugins on `fp` the way `Image.open` does, keeping their reasons.

    `Image.open` reduces every failure to "cannot identify image file" (Pillow#5631); the
    plugin's own error ("broken PNG file", ...) is what tells the user what is wrong. The
    plugins also skip the decompression-bomb check, which lets us report the claimed size.
    """
    from PIL import Image

    reasons: list[str] = []
    try:
        Image.init()
        fp.seek(0)
        prefix = fp.read(16)
        plugins = list(Image.OPEN.items())
    except Exception:  # diagnostics only; Pillow internals may change
        return None, reasons
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fmt, (factory, accept) in plugins:
            try:
                verdict = accept(prefix) if accept is not None else False
            except Exception:
                continue
            if fmt in EXTERNAL_PROGRAM_FORMATS:
                if verdict and not isinstance(verdict, str):
                    reasons.append(f"{fmt} data, read only from a file named for it "
                                   "(its reader runs another program)")
                continue
            if isinstance(verdict, str):
                reasons.append(f"{fmt}: {verdict}")
                continue
            if not verdict:
                continue
            try:
                fp.seek(0)
                return factory(fp, ""), reasons
            except Exception as exc:
                reasons.append(f"{fmt}: {exc}" if str(exc) else f"{fmt}: {type(exc).__name__}")
    return None, reasons


def read_image(
    source: PathLike | IO[bytes],
    *,
    value_range: str = "unit",
    name: str | None = None,
) -> ImageData:
    """Decode an image into float32 ``(H, W, C)`` pixels plus alpha, mode and profile.

    EXIF orientation is applied (so results line up with what viewers show); palette images
    become RGB (RGBA when they have transparency); 1-bit becomes 8-bit gray; CMYK, YCbCr,
    LAB and HSV become RGB; only the first frame of an animation is used. Each such step
    adds a note. Pillow's decompression-bomb guard is kept: images above
    `PIL.Image.MAX_IMAGE_PIXELS` only get a note, those above twice that are refused.

    Parameters
    ----------
    source
        A path, or a binary file object (e.g. ``sys.stdin.buffer``; non-seekable streams are
        read into memory first).
    value_range
        ``"unit"``, ``"byte"`` or ``"raw"``; see the module docstring.
    name
        What to call the source in messages (default: the path or the stream's name).

    Returns
    -------
    ImageData
        The decoded image.

    Raises
    ------
    ParameterError
        If `value_range` is unknown.
    InputError
        Missing or unreadable file, not an image, truncated or corrupt data, too large,
        or an unsupported mode (e.g. 32-bit integers beyond 16 bits).
    """
    _check_value_range(value_range)
    display = name if name is not None else _display_name(source)
    if isinstance(source, (str, os.PathLike)):
        source = _buffer_if_pipe(source, display)
    else:
        seekable = getattr(source, "seekable", None)
        if not (callable(seekable) and seekable()):
            try:
                source = io.BytesIO(source.read())
            except OSError as exc:
                raise InputError(display, os_error_reason(exc)) from exc
    notes: list[str] = []
    printed: list[str] = []  # what the C decoders (libtiff, ...) print on stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _decoder_messages(printed):
                try:
                    image = _read_image(source, display, value_range, notes)
                except _Unidentified:
                    # The plugins' own complaints; failing that, what Image.open warned.
                    reasons = (_unidentified_reasons(source)
                               or [str(w.message) for w in caught])
                    raise InputError(display, "not an image Pillow can read"
                                     + _detail(reasons)) from None
        except InputError as exc:
            if not printed:
                raise
            raise InputError(exc.path, _fold_decoder_messages(exc.reason, printed)) from exc
    from PIL import Image

    image.notes.extend(f"decoder: {line}" for line in printed)
    for warning in caught:
        if issubclass(warning.category, Image.DecompressionBombWarning):
            image.notes.append(
                f"large image ({image.width} x {image.height} pixels) is above Pillow's "
                "decompression-bomb warning threshold"
            )
        else:
            image.notes.append(f"Pillow: {warning.message}")
    return image


def _detail(reasons: Iterable[str]) -> str:
    reasons = list(dict.fromkeys(reasons))
    return f" ({'; '.join(reasons)})" if reasons else ""


def _fold_decoder_messages(reason: str, printed: list[str]) -> str:
    """``reason`` with the decoder's own words added (inside its parentheses, if any)."""
    extra = "; ".join(f"decoder: {line}" for line in printed)
    if reason.endswith(")"):
        return f"{reason[:-1]}; {extra})"
    return f"{reason} ({extra})"


@contextlib.contextmanager
def _decoder_messages(sink: list[str]) -> Iterator[None]:
    """Collect what C libraries print on file descriptor 2 during the block (libtiff's
    "More samples per pixel than can be decoded: 9"), so that it joins the file's error or
    notes instead of appearing outside the one-line message.  Lines that are terminal
    control output (a progress bar redrawing from another thread) are passed through."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            _sort_decoder_output(capture.read(1 << 16), sink)


def _sort_decoder_output(data: bytes, sink: list[str]) -> None:
    passthrough = []
    for line in data.decode("utf-8", "replace").splitlines(keepends=True):
        if "\x1b" in line or "\r" in line:
            passthrough.append(line)
        elif line.strip() and line.strip() not in sink:
            sink.append(line.strip())
    if passthrough:
        with contextlib.suppress(OSError):
            os.write(2, "".join(passthrough).encode())


def _buffer_if_pipe(path: PathLike, display: str) -> PathLike | IO[bytes]:
    """Read pipes and devices (``/dev/stdin``, ``<(...)``) into memory: Pillow must seek."""
    try:
        info = os.stat(path)
    except OSError:
        return path  # let Image.open report it
    if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
        return path
    try:
        with open(path, "rb") as handle:
            return io.BytesIO(handle.read())
    except OSError as exc:
        raise InputError(display, os_error_reason(exc)) from exc


class _Unidentified(Exception):
    """Pillow could not identify the image; the caller gathers the reasons."""


def _reopen(source: PathLike | IO[bytes]) -> IO[bytes] | None:
    if isinstance(source, (str, os.PathLike)):
        try:
            return open(source, "rb")
        except OSError:
            return None
    return source


def _unidentified_reasons(source: PathLike | IO[bytes]) -> list[str]:
    fp = _reopen(source)
    if fp is None:
        return []
    try:
        _, reasons = _probe(fp)
    finally:
        if fp is not source:
            fp.close()
    return reasons


def _bomb_error(source: PathLike | IO[bytes], display: str, exc: Exception) -> InputError:
    """Refuse an image over Pillow's limit, saying how big its header claims it is."""
    size = None
    fp = _reopen(source)
    if fp is not None:
        try:
            probed, _ = _probe(fp)
            size = probed.size if probed is not None else None
        finally:
            if fp is not source:
                fp.close()
    claimed = f"{size[0]} x {size[1]} pixels" if size else str(exc)
    return InputError(display, f"image too large (decompression bomb guard): {claimed}")


def _read_image(
    source: PathLike | IO[bytes], display: str, value_range: str, notes: list[str]
) -> ImageData:
    from PIL import Image, UnidentifiedImageError

    try:
        opened = Image.open(source, formats=_open_formats(display))
    except UnidentifiedImageError:
        raise _Unidentified from None
    except Image.DecompressionBombError as exc:
        raise _bomb_error(source, display, exc) from None
    except OSError as exc:  # missing file, permission denied, directory...
        raise InputError(display, os_error_reason(exc)) from exc
    except Exception as exc:  # a plugin choking on a malformed header
        raise InputError(display, f"cannot read image header: {exc}") from exc
    with opened as im:
        return _decode(im, display, value_range, notes)


def _decode(im: PILImage.Image, display: str, value_range: str, notes: list[str]) -> ImageData:
    from PIL import Image, ImageOps

    source_format = im.format or "unknown"
    original_mode = im.mode
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        notes.append(f"{source_format} file has {frames} frames; only the first is used")
    icc = im.info.get("icc_profile") or None
    squeezed = _decodes_16_to_8(im)
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise InputError(display, f"image too large (decompression bomb guard): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(display, f"truncated or corrupt image data (Pillow: {text})") from exc
    if squeezed:
        notes.append("16-bit samples decoded to 8 bits per channel (a Pillow limitation)")

    try:
        orientation = int(im.getexif().get(0x0112, 1))
    except Exception:  # unreadable EXIF: keep the image as stored
        notes.append("EXIF data unreadable; orientation not applied")
        orientation = 1
    if orientation in range(2, 9):
        im = ImageOps.exif_transpose(im)
        notes.append(f"rotated/flipped according to EXIF orientation {orientation}")

    im = _normalize_mode(im, display, notes)
    if im.mode in ("L", "LA"):
        channel_names: tuple[str, ...] = ("L",)
        wanted_space = "GRAY"
    else:
        channel_names = ("R", "G", "B")
        wanted_space = "RGB"
    if icc is not None and _icc_color_space(icc) != wanted_space:
        space = _icc_color_space(icc) or "unknown"
        notes.append(f"ICC profile dropped: it describes {space} data, not {wanted_space}")
        icc = None

    arr = np.asarray(im)
    if im.mode == "F":
        bit_depth, applied = 32, "raw"
        notes.append("floating-point image: values kept as stored (value range not applied)")
    elif im.mode == "I":
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise InputError(
                display,
                f"32-bit integer pixel values {lo}..{hi} do not fit in 16 bits; "
                "convert the image to .npy",
            )
        bit_depth, applied = 16, value_range
    elif im.mode in _GRAY16:
        bit_depth, applied = 16, value_range
    else:
        bit_depth, applied = 8, value_range

    if arr.ndim == 2:
        color, alpha = arr[..., np.newaxis], None
    elif im.mode in ("LA", "RGBA"):
        color, alpha = arr[..., :-1], arr[..., -1]
    else:
        color, alpha = arr, None
    divisor = _divisor(applied, bit_depth)
    return ImageData(
        pixels=_as_float(color, divisor),
        alpha=None if alpha is None else _as_float(alpha, divisor),
        mode=original_mode,
        bit_depth=bit_depth,
        channel_names=channel_names,
        icc_profile=icc,
        source_format=source_format,
        notes=notes,
        value_range=applied,
    )


def _as_float(values: np.ndarray, divisor: float) -> np.ndarray:
    """float32 copy of ``(H, W)`` or ``(H, W, C)`` codes.

    Colour channels are stored planar (each channel contiguous) behind the ``(H, W, C)``
    view: LRN across channels, statistics and per-channel rescaling all walk a channel's
    pixels, which then vectorise (the values are the same; only the memory order differs).
    """
    if values.ndim == 3 and values.shape[2] > 1:
        out = np.empty((values.shape[2], *values.shape[:2]), dtype=np.float32).transpose(1, 2, 0)
        np.copyto(out, values, casting="unsafe")
    else:
        out = np.array(values, dtype=np.float32, order="C", copy=True)
    if divisor != 1.0:
        out /= np.float32(divisor)  # division is exact at the top code: 255/255 == 1
    return out


_SQUEEZED_RAWMODE = re.compile(r"(RGB|RGBA|RGBX|LA);16[BLN]?")


def _decodes_16_to_8(im: PILImage.Image) -> bool:
    """Whether Pillow is about to squeeze 16-bit samples into an 8-bit mode (before load)."""
    try:
        for tile in getattr(im, "tile", ()):  # ImageFile only (what open() returns)
            args = tile[3]
            rawmode = args if isinstance(args, str) else args[0] if args else ""
            if isinstance(rawmode, str) and _SQUEEZED_RAWMODE.fullmatch(rawmode):
                return True
    except Exception:  # best effort; tiles are a Pillow internal
        return False
    return False


def _normalize_mode(im: PILImage.Image, display: str, notes: list[str]) -> PILImage.Image:
    """Convert to one of L, LA, RGB, RGBA, I;16*, I, F."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA", "I", "F") or mode in _GRAY16:
        return im
    if mode == "1":
        return im.convert("L")
    if mode == "La":
        return im.convert("LA")
    if mode == "RGBa":
        return im.convert("RGBA")
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in im.info
        return im.convert("RGBA" if transparent else "RGB")
    if mode in _TO_RGB:
        try:
            converted = im.convert("RGB")
        except ValueError as exc:
            raise InputError(display, f"cannot convert {mode} image to RGB: {exc}") from exc
        if mode != "RGBX":
            notes.append(
                f"converted from {mode} to RGB (Pillow's conversion, no colour management)"
            )
        return converted
    raise InputError(display, f"unsupported image mode {mode!r}")


def rescale(
    values: np.ndarray,
    method: str = "minmax",
    *,
    per_channel: bool = True,
    percentiles: Sequence[float] = (1.0, 99.0),
    value_range: str = "unit",
    bit_depth: int = 8,
) -> np.ndarray:
    """Map LRN output to [0, 1] for display or saving as an image.

    LRN shrinks values by a data-dependent factor, so its output rarely spans the input's
    range; stretching it (``minmax``/``percentile``) makes the result visible, while
    ``none`` keeps the absolute scale for comparison with the input.

    Parameters
    ----------
    values
        ``(H, W, C)`` (or ``(H, W)``, one channel).
    method
        ``"minmax"``: ``(v - min) / (max - min)``, exactly 0 and 1 at the extremes.
        ``"percentile"``: the same with the given percentiles, values beyond them clipped.
        ``"none"``: values read in `value_range` (unit as is, byte / 255, raw / 255 or
        / 65535 by `bit_depth`; float images, bit depth 32, as is), clipped to [0, 1].
        A constant channel (max == min) cannot be stretched and is mapped as by ``"none"``,
        so a black image stays black instead of turning mid-grey.
    per_channel
        Compute the statistics of each channel (last axis) separately, rather than once
        over all values (which keeps the balance between colours).
    percentiles
        Low and high percentiles for ``"percentile"``, ``0 <= low < high <= 100``.
    value_range
        The scale `values` are in (see the module docstring).
    bit_depth
        8, 16 or 32; used by ``"none"`` with ``value_range="raw"``.

    Returns
    -------
    numpy.ndarray
        float32 in [0, 1], same shape as `values`. Statistics ignore NaN and infinities;
        NaN maps to 0, +inf to 1 and -inf to 0.

    Raises
    ------
    ParameterError
        Unknown method or value range, bad percentiles, or unsupported bit depth.
    """
    if method not in ("minmax", "percentile", "none"):
        raise ParameterError(f"rescale method must be minmax, percentile or none, not {method!r}")
    _check_value_range(value_range)
    if bit_depth not in (8, 16, 32):
        raise ParameterError(f"bit depth must be 8, 16 or 32, not {bit_depth!r}")
    low_pct, high_pct = _check_percentiles(percentiles) if method == "percentile" else (0, 100)
    if value_range == "raw" and bit_depth != 32:
        absolute_scale = 255.0 if bit_depth == 8 else 65535.0
    else:
        absolute_scale = {"unit": 1.0, "byte": 255.0, "raw": 1.0}[value_range]
    values = np.asarray(values)
    if method != "percentile" and values.ndim in (2, 3) and values.size:
        return _rescale_fast(values, method, per_channel, absolute_scale)
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 0:
        raise ParameterError("rescale needs an array, not a scalar")
    out = np.empty(data.shape, dtype=np.float64)
    groups = range(data.shape[-1]) if per_channel and data.ndim == 3 else [None]
    for channel in groups:
        part = data if channel is None else data[..., channel]
        target = out if channel is None else out[..., channel]
        if method == "none":
            target[...] = part / absolute_scale
            continue
        finite = part[np.isfinite(part)]
        if finite.size == 0:
            lo = hi = 0.0
        elif method == "minmax":
            lo, hi = float(finite.min()), float(finite.max())
        else:
            lo, hi = (float(p) for p in np.percentile(finite, [low_pct, high_pct]))
        if hi > lo:
            target[...] = (part - lo) / (hi - lo)
        else:
            target[...] = part / absolute_scale
    np.clip(out, 0.0, 1.0, out=out)
    np.nan_to_num(out, copy=False, nan=0.0)
    return out.astype(np.float32)


def _rescale_fast(values: np.ndarray, method: str, per_channel: bool,
                  absolute_scale: float) -> np.ndarray:
    """``minmax``/``none`` of :func:`rescale` in two passes of a Numba kernel (the same
    float64 arithmetic as the NumPy formulas, without their temporaries)."""
    from lrn_cli import _image_kernels as kernels

    cube = values if values.ndim == 3 else values[..., np.newaxis]
    if cube.dtype.kind not in "fiu" or cube.dtype.itemsize > 8 or not cube.dtype.isnative:
        cube = cube.astype(np.float64)
    per_channel = per_channel and values.ndim == 3
    groups = cube.shape[2] if per_channel else 1
    lo = np.zeros(groups)
    hi = np.zeros(groups)
    if method == "minmax":
        kernels.finite_range(cube, lo, hi, per_channel)
        none = lo > hi  # no finite value: 0 and 0, as the NumPy formula
        lo[none] = hi[none] = 0.0
    out = np.empty_like(cube, dtype=np.float32)
    kernels.to_unit(cube, out, lo, hi, absolute_scale, per_channel)
    return out if values.ndim == 3 else out[..., 0]


def _check_percentiles(percentiles: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ParameterError(f"percentiles must be two numbers, not {percentiles!r}") from None
    if not (0.0 <= low < high <= 100.0):
        raise ParameterError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    return low, high


def check_image_output(
    path: PathLike,
    *,
    channels: int = 1,
    has_alpha: bool = False,
    bit_depth: int = 8,
    file_format: str | None = None,
) -> str:
    """Check that an image of this kind can be written to `path`, before computing it.

    Parameters
    ----------
    path
        Output file; its extension selects the format unless `file_format` is given.
    channels
        1 (gray) or 3 (RGB).
    has_alpha
        Whether an alpha channel will be written.
    bit_depth
        8, 16 or 32 (float).
    file_format
        Pillow format name (``"PNG"``, ``"JPEG"``, ``"TIFF"``, ``"BMP"``, ``"WEBP"``) to
        use instead of the extension's.

    Returns
    -------
    str
        The Pillow format name.

    Raises
    ------
    ParameterError
        If the format is unknown or cannot hold this image (see the module docstring).
    """
    suffix = Path(os.fspath(path)).suffix.lower()
    if file_format is None:
        if suffix not in WRITABLE_IMAGE_SUFFIXES:
            known = ", ".join(sorted(WRITABLE_IMAGE_SUFFIXES))
            raise ParameterError(
                f"cannot write images with extension {suffix or '(none)'!r}; use one of "
                f"{known}, or .npy for raw values"
            )
        fmt = WRITABLE_IMAGE_SUFFIXES[suffix]
    else:
        fmt = file_format.upper()
        if fmt not in set(WRITABLE_IMAGE_SUFFIXES.values()):
            raise ParameterError(f"unsupported image format {file_format!r}")
    if channels not in (1, 3):
        raise ParameterError(f"images must have 1 or 3 channels, not {channels}")
    if bit_depth not in (8, 16, 32):
        raise ParameterError(f"bit depth must be 8, 16 or 32, not {bit_depth!r}")
    if fmt == "JPEG" and has_alpha:
        raise ParameterError("JPEG cannot store an alpha channel; use .png")
    if fmt in ("JPEG", "BMP", "WEBP") and bit_depth != 8:
        raise ParameterError(f"{fmt} stores 8-bit images only; use .png or .tif")
    if fmt == "BMP" and has_alpha and channels == 1:
        raise ParameterError("BMP cannot store gray with alpha; use .png")
    if bit_depth == 16 and fmt == "TIFF" and (channels != 1 or has_alpha):
        raise ParameterError(
            "16-bit TIFF output is gray without alpha only (Pillow has no 16-bit RGB or alpha "
            "TIFF writer); use .png for 16-bit colour or alpha, or .npy"
        )
    if bit_depth == 32 and (fmt != "TIFF" or channels != 1 or has_alpha):
        raise ParameterError(
            "32-bit float images can only be written as gray .tif without alpha "
            "(Pillow's float mode has one channel); use .npy for float RGB output"
        )
    return fmt


def write_image(
    path: PathLike,
    unit_pixels: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    icc_profile: bytes | None = None,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
    file_format: str | None = None,
) -> Path:
    """Save ``(H, W, C)`` values in [0, 1] as an image, atomically.

    Gray stays gray and RGB stays RGB (except WebP, which has no gray). 8- and 16-bit codes
    are ``round(x * 255)`` / ``round(x * 65535)`` after clipping to [0, 1] (NaN -> 0);
    32-bit float TIFF stores the values unchanged.

    Parameters
    ----------
    path
        Output file; the extension selects the format (see `WRITABLE_IMAGE_SUFFIXES`).
    unit_pixels
        ``(H, W, C)`` with C 1 or 3, or ``(H, W)``; values in [0, 1] (see `rescale`).
    alpha
        ``(H, W)`` (or ``(H, W, 1)``) alpha in [0, 1], or None.
    bit_depth
        8, 16 (PNG any, TIFF gray) or 32 (float gray TIFF).
    icc_profile
        ICC profile to embed (PNG, JPEG, TIFF, WebP); it must describe the output's colour
        space. Ignored for BMP, and for gray images saved as WebP.
    overwrite, protect
        See `lrn_cli.atomic.atomic_write`.
    file_format
        Pillow format name overriding the extension.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ParameterError
        Bad shapes, or a format that cannot hold this image (`check_image_output`).
    OutputError
        The destination is refused or cannot be written.
    """
    pixels = np.asarray(unit_pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ParameterError(f"image pixels must be (H, W, 1) or (H, W, 3), got {pixels.shape}")
    height, width, channels = pixels.shape
    if height == 0 or width == 0:
        raise ParameterError(f"cannot write an empty image ({height} x {width})")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[..., 0]
        if alpha.shape != (height, width):
            raise ParameterError(
                f"alpha shape {alpha.shape} does not match the image ({height}, {width})"
            )
    fmt = check_image_output(
        path,
        channels=channels,
        has_alpha=alpha is not None,
        bit_depth=bit_depth,
        file_format=file_format,
    )
    planes = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)

    if bit_depth == 16 and fmt == "PNG":
        samples = _quantize(planes, 65535, np.uint16)

        def write_png16(handle: IO[bytes]) -> None:
            _write_png16(handle, samples, icc_profile)

        return atomic_write(path, write_png16, overwrite=overwrite, protect=protect)

    if bit_depth == 32:
        data = np.ascontiguousarray(planes[..., 0], dtype=np.float32)
    elif bit_depth == 16:
        data = _quantize(planes[..., 0], 65535, np.uint16)
    else:
        data = _quantize(planes, 255, np.uint8)
        if data.shape[2] == 1:
            data = data[..., 0]
    params: dict[str, object] = {}
    if fmt == "JPEG":
        params.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        params.update(lossless=True)
    if icc_profile and fmt != "BMP" and not (fmt == "WEBP" and channels == 1):
        params["icc_profile"] = icc_profile

    def write_pillow(handle: IO[bytes]) -> None:
        from PIL import Image

        Image.fromarray(data).save(handle, format=fmt, **params)

    return atomic_write(path, write_pillow, overwrite=overwrite, protect=protect)


def _quantize(values: np.ndarray, top: int, dtype: type[np.integer]) -> np.ndarray:
    """[0, 1] floats to integer codes 0..top, rounding to nearest; NaN becomes 0."""
    values = np.asarray(values)
    if values.ndim in (2, 3) and values.dtype.kind == "f" and values.dtype.isnative:
        from lrn_cli import _image_kernels as kernels

        cube = values if values.ndim == 3 else values[..., np.newaxis]
        out = np.empty(cube.shape, dtype=dtype)
        kernels.quantize(cube, out, top)
        return out if values.ndim == 3 else out[..., 0]
    scaled = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    return np.ascontiguousarray(np.rint(scaled * top).astype(dtype))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # samples per pixel -> PNG colour type


def _png_chunk(handle: IO[bytes], kind: bytes, data: bytes) -> None:
    handle.write(struct.pack(">I", len(data)))
    handle.write(kind)
    handle.write(data)
    handle.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def _write_png16(handle: IO[bytes], samples: np.ndarray, icc_profile: bytes | None) -> None:
    """Encode ``(H, W, N)`` uint16 samples as a 16-bit PNG (N: 1 gray, 2 gray+alpha, 3 RGB,
    4 RGBA), which Pillow cannot write except for gray.

    Each row uses PNG filter 2 ("Up", difference with the row above), which is computed
    without loops and compresses smooth images well.
    """
    height, width, planes = samples.shape
    header = struct.pack(">IIBBBBB", width, height, 16, _PNG_COLOR_TYPES[planes], 0, 0, 0)
    handle.write(_PNG_SIGNATURE)
    _png_chunk(handle, b"IHDR", header)
    if icc_profile:
        _png_chunk(handle, b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile))
    rows = samples.astype(">u2").view(np.uint8).reshape(height, width * planes * 2)
    compressor = zlib.compressobj(6)
    block = max(1, (1 << 20) // max(1, rows.shape[1]))  # ~1 MiB of rows at a time
    previous = np.zeros(rows.shape[1], dtype=np.uint8)
    for start in range(0, height, block):
        chunk_rows = rows[start : start + block]
        above = np.concatenate([previous[np.newaxis], chunk_rows[:-1]], axis=0)
        filtered = np.empty((chunk_rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
        filtered[:, 0] = 2
        np.subtract(chunk_rows, above, out=filtered[:, 1:])  # uint8 arithmetic wraps mod 256
        previous = chunk_rows[-1]
        data = compressor.compress(filtered.tobytes())
        if data:
            _png_chunk(handle, b"IDAT", data)
    _png_chunk(handle, b"IDAT", compressor.flush())
    _png_chunk(handle, b"IEND", b"")
