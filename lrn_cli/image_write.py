"""Writing images atomically (:func:`write_image`), with a 16-bit PNG encoder of our own.

Part of :mod:`lrn_cli.images`.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from lrn_cli.atomic import PathLike, atomic_write
from lrn_cli.errors import ParameterError
from lrn_cli.image_formats import WRITABLE_IMAGE_SUFFIXES
from lrn_cli.image_rescale import _absolute_scale, _fast_float32, _unit_ranges

if TYPE_CHECKING:
    pass

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


#: zlib level of written PNGs unless told otherwise: Pillow's (and zlib's) default.
PNG_COMPRESSION = 6


def check_png_compression(level: int) -> int:
    """``level`` if it is a zlib level (0-9), else a :class:`ParameterError`."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
        raise ParameterError(f"PNG compression must be an integer 0..9, not {level!r}")
    return level


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
    png_compression: int = PNG_COMPRESSION,
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
    png_compression
        zlib level of a PNG, 0 (none, fastest) to 9 (smallest); the pixels are the same at
        every level.  Other formats ignore it.

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
    pixels, alpha = _checked_planes(unit_pixels, alpha)
    level = check_png_compression(png_compression)
    fmt = check_image_output(
        path,
        channels=pixels.shape[2],
        has_alpha=alpha is not None,
        bit_depth=bit_depth,
        file_format=file_format,
    )
    planes = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
    if bit_depth == 32:
        samples = np.ascontiguousarray(planes[..., :1], dtype=np.float32)
    elif bit_depth == 16:
        samples = _quantize(planes if fmt == "PNG" else planes[..., :1], 65535, np.uint16)
    else:
        samples = _quantize(planes, 255, np.uint8)
    return _write_samples(path, samples, fmt, pixels.shape[2], bit_depth, icc_profile, level,
                          overwrite=overwrite, protect=protect)


def write_codes(
    path: PathLike,
    codes: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    icc_profile: bytes | None = None,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
    png_compression: int = PNG_COMPRESSION,
) -> Path:
    """:func:`write_image` of pixels already quantised (see :func:`rescaled_codes`).

    ``codes`` (and ``alpha``, if any) are uint8 (8-bit output) or uint16 (16-bit) codes,
    ``(H, W, C)`` with C 1 or 3 (alpha ``(H, W)`` or ``(H, W, 1)``); the file is the one
    :func:`write_image` writes for the values those codes quantise.  Parameters, returns
    and raises as :func:`write_image` (the bit depth is the codes' dtype).
    """
    codes = np.asarray(codes)
    bit_depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(codes.dtype)
    if bit_depth is None:
        raise ParameterError(f"image codes must be uint8 or uint16, not {codes.dtype}")
    codes, alpha = _checked_planes(codes, alpha)
    if alpha is not None and alpha.dtype != codes.dtype:
        raise ParameterError(f"alpha codes are {alpha.dtype}, the pixels {codes.dtype}")
    level = check_png_compression(png_compression)
    fmt = check_image_output(path, channels=codes.shape[2], has_alpha=alpha is not None,
                             bit_depth=bit_depth)
    samples = codes if alpha is None else np.concatenate([codes, alpha[..., None]], axis=2)
    if bit_depth == 16 and fmt != "PNG":
        samples = samples[..., :1]
    return _write_samples(path, samples, fmt, codes.shape[2], bit_depth, icc_profile, level,
                          overwrite=overwrite, protect=protect)


def _checked_planes(pixels: np.ndarray,
                    alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(H, W, C)`` pixels and ``(H, W)`` alpha of an image to write, or a ParameterError."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ParameterError(f"image pixels must be (H, W, 1) or (H, W, 3), got {pixels.shape}")
    height, width, _ = pixels.shape
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
    return pixels, alpha


def _write_samples(path: PathLike, samples: np.ndarray, fmt: str, channels: int,
                   bit_depth: int, icc_profile: bytes | None, level: int, *,
                   overwrite: bool, protect: Iterable[PathLike]) -> Path:
    """Encode ``(H, W, N)`` samples (codes, or float32 for 32 bits) as ``fmt``, atomically."""
    if bit_depth == 16 and fmt == "PNG":

        def write_png16(handle: IO[bytes]) -> None:
            _write_png16(handle, samples, icc_profile, level)

        return atomic_write(path, write_png16, overwrite=overwrite, protect=protect)

    data = samples[..., 0] if samples.shape[2] == 1 else samples
    params: dict[str, object] = {}
    if fmt == "JPEG":
        params.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        params.update(lossless=True)
    elif fmt == "PNG":
        params.update(compress_level=level)
    if icc_profile and fmt != "BMP" and not (fmt == "WEBP" and channels == 1):
        params["icc_profile"] = icc_profile

    def write_pillow(handle: IO[bytes]) -> None:
        from PIL import Image

        Image.fromarray(data).save(handle, format=fmt, **params)

    return atomic_write(path, write_pillow, overwrite=overwrite, protect=protect)


def rescaled_codes(values: np.ndarray, method: str, *, per_channel: bool = True,
                   value_range: str = "unit", bit_depth: int = 8, out_bits: int = 8,
                   ranges: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray | None:
    """``_quantize(rescale(values, ...))`` in one pass, bit for bit, without the float32
    display image in between: uint8 codes for ``out_bits`` 8, uint16 for 16.

    ``values`` is a native float32 ``(H, W, C)`` array (any strides); ``method`` ``minmax``
    or ``none``.  ``ranges`` (``minmax`` only): the smallest and largest finite value of each
    channel (of all values, one entry, without ``per_channel``) when the caller has them
    already (the output's statistics), so they are not scanned for again.  Returns None,
    computing nothing, for anything else (the caller then rescales and quantises).
    """
    if out_bits not in (8, 16) or not _fast_float32(values, method, value_range, bit_depth):
        return None
    from lrn_cli import _image_kernels as kernels

    groups = values.shape[2] if per_channel else 1
    if method == "minmax" and ranges is not None and len(ranges[0]) == len(ranges[1]) == groups:
        lo, hi = (np.array(r, dtype=np.float64) for r in ranges)
    else:
        lo, hi = _unit_ranges(values, method, per_channel)
    top, dtype = (255, np.uint8) if out_bits == 8 else (65535, np.uint16)
    out = np.empty(values.shape, dtype=dtype)
    kernels.unit_codes(values, out, lo, hi, _absolute_scale(value_range, bit_depth),
                       per_channel, top)
    return out


def rescale_in_place(values: np.ndarray, method: str, *, per_channel: bool = True,
                     value_range: str = "unit", bit_depth: int = 8) -> bool:
    """:func:`lrn_cli.images.rescale` written over ``values`` itself, when it can be: a
    native float32 ``(H, W, C)`` writable array, ``minmax`` or ``none`` (the same kernels
    and arithmetic as ``rescale``, which writes each value from itself alone).  Returns
    False, touching nothing, otherwise (the caller then calls ``rescale``)."""
    if not (_fast_float32(values, method, value_range, bit_depth) and values.flags.writeable):
        return False
    from lrn_cli import _image_kernels as kernels

    lo, hi = _unit_ranges(values, method, per_channel)
    kernels.to_unit(values, values, lo, hi, _absolute_scale(value_range, bit_depth),
                    per_channel)
    return True


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


def _write_png16(handle: IO[bytes], samples: np.ndarray, icc_profile: bytes | None,
                 level: int = PNG_COMPRESSION) -> None:
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
    compressor = zlib.compressobj(level)
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
