"""Which files are images: the extensions read and written, the formats Pillow may open.

Part of :mod:`lrn_cli.images` (which re-exports everything public here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lrn_cli.atomic import PathLike

if TYPE_CHECKING:
    pass

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

