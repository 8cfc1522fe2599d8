""":func:`read_image`: a path, bytes or file object -> ``(T, H, W, C)`` array.

Opens the source (reading a stream only up to what the size limits allow), names the format
from the first bytes (PNG, JPEG, BMP, TIFF; everything else is refused with advice) and hands
the stream to the Pillow (:mod:`seg.images.pillow`) or tifffile (:mod:`seg.images.tiff`) reader.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import numpy as np

from seg.errors import ImageError, ImageTooLargeError
from seg.files import open_regular
from seg.images.frames import frames_from_pages
from seg.images.guards import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, Limits, positive_int
from seg.images.pillow import read_pil
from seg.images.prescan import check_structure
from seg.images.tiff import read_tiff

_FORMATS = "PNG, JPEG, TIFF or BMP"

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""File-name suffixes of the formats :func:`read_image` reads (lowercase, with the dot).

The one list of accepted image types: the command line and batch folders pick files by it and
the upload widgets offer it. :func:`read_image` itself goes by the content, not the name.
"""


def read_image(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_frame_pixels: int | None = None,
) -> np.ndarray:
    """Read a PNG, JPEG, TIFF or BMP image into a ``(T, H, W, C)`` array.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        A path, the encoded file content, or a binary file object (read from its current
        position, e.g. a Streamlit ``UploadedFile``).
    max_pixels : int, optional
        Largest accepted frames x height x width, checked on the declared size before decoding.
        Raise it to open larger images (memory permitting).
    max_frames : int, optional
        Largest accepted number of frames (time points x z slices).
    max_frame_pixels : int, optional
        Largest accepted height x width of one frame, also checked before decoding (None: only
        ``max_pixels`` applies).

    Returns
    -------
    image : (T, H, W, C) ndarray of uint8, uint16 or float32
        Alpha dropped, palettes expanded; float data is finite.

    Raises
    ------
    ImageError
        The file cannot be opened, is not a supported image, is corrupt or truncated, is too
        large or too small, has axes that cannot be mapped to frames and channels, or holds
        NaN/inf values.
    SettingsError
        ``max_pixels`` or ``max_frames`` is not a positive integer.
    TypeError
        ``source`` is none of the accepted types.
    """
    limits = Limits(
        positive_int(max_pixels, "max_pixels"),
        positive_int(max_frames, "max_frames"),
        None if max_frame_pixels is None else positive_int(max_frame_pixels, "max_frame_pixels"),
    )
    with open_source(source, limits) as (stream, label):
        kind = _sniff(stream, label)
        check_structure(stream, kind, label, max_frames=limits.max_frames)
        if kind == "TIFF":
            image = read_tiff(stream, label, limits)
        else:
            image = read_pil(stream, kind, label, limits)
    return frames_from_pages(image, label)


@contextmanager
def open_source(source: Any, limits: Limits) -> Iterator[tuple[BinaryIO, str]]:
    """Yield a seekable binary stream positioned at the start of the image, and its label."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(source), "the image"
    elif isinstance(source, (str, os.PathLike)):
        label = repr(os.path.basename(os.fspath(source)) or os.fspath(source))
        try:
            stream = open_regular(source)
        except OSError as exc:
            raise ImageError(
                f"Cannot open {label}: {exc.strerror or exc}. Check that the path points to an image file."
            ) from exc
        with stream:
            _check_stream_size(os.fstat(stream.fileno()).st_size, label, limits)
            yield stream, label
    elif hasattr(source, "read"):
        name = getattr(source, "name", None)
        label = repr(os.path.basename(os.fspath(name))) if isinstance(name, (str, os.PathLike)) else "the image"
        # Read a bounded amount: a stream is not allowed to exhaust memory before any check runs.
        data = source.read(_file_limit(limits) + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"read_image needs a binary file object (mode 'rb'), got {source!r}")
        _check_stream_size(len(data), label, limits)
        yield io.BytesIO(data), label
    else:
        raise TypeError(f"read_image reads a path, bytes or a binary file object, got {type(source).__name__}")


def _file_limit(limits: Limits) -> int:
    """Largest file any image within the limits needs: its decoded bytes plus 64 MiB of slack."""
    return limits.max_bytes + (1 << 26)


def _check_stream_size(size: int, label: str, limits: Limits) -> None:
    limit = _file_limit(limits)
    if size > limit:
        raise ImageTooLargeError(
            f"Cannot read {label}: the file is larger than {limit:,} bytes, more than any "
            f"image within max_pixels={limits.max_pixels:,} needs. Raise max_pixels to open it.",
            limit="max_pixels",
            size=f"more than {limit:,} bytes",
        )


def _sniff(stream: BinaryIO, label: str) -> str:
    """Name the format from the first bytes: 'PNG', 'JPEG', 'BMP' or 'TIFF'; refuse the rest."""
    head = stream.read(16)
    stream.seek(0)
    if not head:
        raise ImageError(f"Cannot read {label}: the file is empty (0 bytes). Choose a {_FORMATS} image.")
    if len(head) < 8:
        raise ImageError(
            f"Cannot read {label}: {len(head)} byte(s) is too short to be an image; the upload may "
            f"have been cut off. Choose a {_FORMATS} image."
        )
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    raise ImageError(f"Cannot read {label}: it {_guess_content(head)}, not a {_FORMATS} image. {_advice(head)}")


def _guess_content(head: bytes) -> str:
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "is a GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "is a WebP image"
    if head.startswith(b"PK\x03\x04"):
        return "is a ZIP archive (a .segmodel model file or a zipped folder?)"
    if head.startswith(b"\x93NUMPY"):
        return "is a NumPy .npy file"
    text = head.decode("utf-8", errors="replace")
    if all(char.isprintable() or char in "\r\n\t" for char in text):
        return "looks like a text file"
    return f"starts with the bytes {head[:8]!r}"


def _advice(head: bytes) -> str:
    if head.startswith((b"GIF87a", b"GIF89a", b"RIFF")):
        return "Convert it to PNG, or to a multi-page TIFF if it is animated."
    return "Export the image as PNG or TIFF and try again."
