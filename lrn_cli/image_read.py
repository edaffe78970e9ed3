"""Reading and decoding images into float32 ``(H, W, C)`` arrays (:func:`read_image`).

Part of :mod:`lrn_cli.images` (see its docstring for the value ranges and what Pillow
cannot do); Pillow's own C-level messages are folded into the file's error or notes.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import sys
import tempfile
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

import numpy as np

from lrn_cli.atomic import PathLike, os_error_reason
from lrn_cli.errors import InputError, ParameterError
from lrn_cli.image_formats import (
    _GRAY16,
    _TO_RGB,
    EXTERNAL_PROGRAM_FORMATS,
    VALUE_RANGES,
    _open_formats,
)

if TYPE_CHECKING:
    from PIL import Image as PILImage

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

