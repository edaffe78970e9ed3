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

Modules: :mod:`lrn_cli.image_formats` (extensions, formats), :mod:`lrn_cli.image_read`
(reading and decoding), :mod:`lrn_cli.image_rescale` (to [0, 1] for display),
:mod:`lrn_cli.image_write` (atomic writing, the 16-bit PNG encoder).
"""

from __future__ import annotations

# The module is split along its seams (formats, reading, rescaling, writing); every name
# keeps its home here too.
from lrn_cli.image_formats import (
    EXTERNAL_PROGRAM_FORMATS,
    IMAGE_SUFFIXES,
    VALUE_RANGES,
    WRITABLE_IMAGE_SUFFIXES,
    ValueRange,
    _open_formats,
    is_image_path,
    readable_image_suffixes,
)
from lrn_cli.image_read import ImageData, _as_float, read_image
from lrn_cli.image_rescale import rescale
from lrn_cli.image_write import (
    PNG_COMPRESSION,
    _quantize,
    check_image_output,
    check_png_compression,
    write_image,
)

__all__ = [
    "EXTERNAL_PROGRAM_FORMATS",
    "IMAGE_SUFFIXES",
    "PNG_COMPRESSION",
    "VALUE_RANGES",
    "WRITABLE_IMAGE_SUFFIXES",
    "ImageData",
    "ValueRange",
    "_as_float",
    "_open_formats",
    "_quantize",
    "check_image_output",
    "check_png_compression",
    "is_image_path",
    "read_image",
    "readable_image_suffixes",
    "rescale",
    "write_image",
]
