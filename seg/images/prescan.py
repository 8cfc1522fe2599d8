"""Structure counts checked before a decoder walks the file: PNG chunks, JPEG segments and
scans, TIFF pages and tags, BMP run-length data.

Decoders spend time per *structure*, not per byte: Pillow stores every PNG chunk before the
first ``IDAT`` and walks JPEG segments in Python, libjpeg decodes every progressive scan over the
whole image, tifffile parses every tag of every page it walks, and Pillow's BMP run-length
decoder is pure Python. A 200 MB file of tiny structures therefore cost tens of seconds and
gigabytes before any size check ran. :func:`check_structure` walks only the headers (seeking
over the data, or searching it at C speed for JPEG markers) and refuses absurd counts first,
with :class:`~seg.errors.ImageError`. It also refuses a JPEG whose entropy-coded data is too
short for its declared size (libjpeg would pad the missing rows with grey).

The limits are module constants; a host changes them by assigning new values
(``seg.images.prescan.MAX_JPEG_SCANS = ...``) before reading images.
"""

from __future__ import annotations

import io
import math
import mmap
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from seg.errors import ImageError

__all__ = [
    "MAX_PNG_CHUNKS",
    "MAX_PNG_ANCILLARY_CHUNKS",
    "MAX_PNG_ANCILLARY_BYTES",
    "MAX_JPEG_SEGMENTS",
    "MAX_JPEG_SCANS",
    "MAX_JPEG_SCAN_PIXELS",
    "MAX_TIFF_TAGS",
    "PAGES_PER_FRAME",
    "MAX_BMP_RLE_BYTES",
    "check_structure",
]

MAX_PNG_CHUNKS = 100_000
"""Chunks of all kinds in a PNG (a 200 MB file of 8 KB IDAT chunks has 25 000)."""
MAX_PNG_ANCILLARY_CHUNKS = 1_000
"""Chunks other than the image data (IHDR, PLTE, IDAT, IEND): text, colour profile, APNG frames..."""
MAX_PNG_ANCILLARY_BYTES = 16 << 20
"""Bytes of those ancillary chunks together (an ICC profile is a few hundred KB at most)."""
MAX_JPEG_SEGMENTS = 4_096
"""Marker segments of a JPEG (tables, metadata, scans; a camera JPEG has a few dozen)."""
MAX_JPEG_SCANS = 40
"""Scans (SOS markers) of a JPEG: a progressive JPEG has about ten, and libjpeg decodes each over
the whole image (~35 ms per scan of 16 MP on a busy 2-core machine)."""
MAX_JPEG_SCAN_PIXELS = 1_500_000_000
"""Scans x pixels of a progressive JPEG (libjpeg's work; ~3 s): 10 scans of 150 MP, 40 of 37 MP."""
MAX_TIFF_TAGS = 1_000_000
"""Tags over all TIFF pages walked (tifffile parses ~2 million per second)."""
PAGES_PER_FRAME = 4
"""A TIFF may store each channel of a frame as its own page (ImageJ does): more pages than this
per allowed frame (``max_frames``) are refused."""
MAX_BMP_RLE_BYTES = 2_000_000
"""Run-length-compressed BMP pixel data (Pillow decodes it in Python, ~1 s per 2 MB)."""

_PNG_DATA_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
# A JPEG marker: 0xFF (after optional fill bytes 0xFF) followed by a code that is neither a
# stuffed zero, a restart marker inside entropy-coded data, nor another fill byte.
_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")
_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), 0xD8})
_SOF_HUFFMAN = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7})
_SOF_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOF_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})


def check_structure(stream: BinaryIO, kind: str, label: str, *, max_frames: int = 10_000) -> None:
    """Refuse a file whose structure counts are absurd, before its decoder runs.

    Parameters
    ----------
    stream : seekable binary file
        Positioned anywhere; read from the start and left at the start.
    kind : {"PNG", "JPEG", "TIFF", "BMP"}
    label : str
        Name of the image in messages.
    max_frames : int
        ``read_image``'s frame limit; TIFF pages are bounded by ``PAGES_PER_FRAME`` times it.

    Raises
    ------
    ImageError
        A count above its limit, or (JPEG) too little image data for the declared size.
    """
    with _buffer(stream) as data:
        if kind == "TIFF":
            _check_tiff(data, label, max_frames * PAGES_PER_FRAME)
        else:
            {"PNG": _check_png, "JPEG": _check_jpeg, "BMP": _check_bmp}[kind](data, label)


@contextmanager
def _buffer(stream: BinaryIO) -> Iterator[memoryview | mmap.mmap | bytes]:
    """The whole stream as a buffer without copying it where possible (BytesIO, real files)."""
    stream.seek(0)
    try:
        if isinstance(stream, io.BytesIO):
            view = stream.getbuffer()
            try:
                yield view
            finally:
                view.release()
            return
        try:
            mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            yield stream.read()
            return
        with mapped:
            yield mapped
    finally:
        stream.seek(0)


def _refuse(label: str, what: str, advice: str) -> ImageError:
    return ImageError(f"Cannot read {label}: {what}. {advice}")


_RESAVE = "Re-save the image with an ordinary image program (PNG or TIFF) and try again."


# --------------------------------------------------------------------------------- PNG


def _check_png(data, label: str) -> None:
    """Walk the chunk headers (8 bytes each), seeking over the chunk data."""
    position, size = 8, len(data)
    chunks = ancillary = ancillary_bytes = 0
    while position + 8 <= size:
        length, name = struct.unpack_from(">L4s", data, position)
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _refuse(label, f"the PNG has more than {MAX_PNG_CHUNKS:,} chunks", _RESAVE)
        if name not in _PNG_DATA_CHUNKS:
            ancillary += 1
            ancillary_bytes += length
            if ancillary > MAX_PNG_ANCILLARY_CHUNKS:
                raise _refuse(
                    label, f"the PNG has more than {MAX_PNG_ANCILLARY_CHUNKS:,} metadata (ancillary) chunks", _RESAVE
                )
            if ancillary_bytes > MAX_PNG_ANCILLARY_BYTES:
                raise _refuse(
                    label,
                    f"the PNG holds more than {MAX_PNG_ANCILLARY_BYTES:,} bytes of metadata (ancillary chunks)",
                    _RESAVE,
                )
        if name == b"IEND":
            return
        position += 12 + length  # length, type, data, CRC; a chunk past the end: Pillow reports it


# --------------------------------------------------------------------------------- JPEG


def _check_jpeg(data, label: str) -> None:
    """Walk the marker segments; search each scan's entropy-coded data for its end."""
    position, size = 2, len(data)
    segments = scans = entropy = 0
    frame = None  # (height, width, max h sampling, max v sampling, arithmetic coded)
    progressive = False
    while position < size:
        match = _MARKER.match(data, position)
        if match is None:
            break  # not a marker where one must be: the decoder reports the damage
        marker, position = match.group(1)[0], match.end()
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _refuse(label, f"the JPEG has more than {MAX_JPEG_SEGMENTS:,} marker segments", _RESAVE)
        if marker in _STANDALONE:
            continue
        if marker == 0xD9 or position + 2 > size:  # EOI, or cut off
            break
        (length,) = struct.unpack_from(">H", data, position)
        if marker in _SOF_HUFFMAN or marker in _SOF_ARITHMETIC:
            frame = _jpeg_frame(data, position, marker in _SOF_ARITHMETIC) or frame
            progressive = marker in _SOF_PROGRESSIVE
        position += length
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise _refuse(
                    label,
                    f"the JPEG has more than {MAX_JPEG_SCANS} scans (progressive "
                    "passes); ordinary JPEGs have about ten",
                    _RESAVE,
                )
            if progressive and frame is not None and scans * frame[0] * frame[1] > MAX_JPEG_SCAN_PIXELS:
                raise _refuse(
                    label,
                    f"the progressive JPEG has {scans} or more scans of {frame[1]}×{frame[0]} "
                    f"pixels, more decoding than allowed ({MAX_JPEG_SCAN_PIXELS:,} scan-pixels)",
                    "Save it as a baseline (non-progressive) JPEG, PNG or TIFF.",
                )
            end = _ENTROPY_END.search(data, position)
            stop = end.start() if end else size
            entropy += stop - position
            position = stop
    if frame is not None and scans:
        _check_jpeg_data_length(label, frame, entropy)


def _jpeg_frame(data, position: int, arithmetic: bool) -> tuple | None:
    if position + 8 > len(data):
        return None
    _, _, height, width, components = struct.unpack_from(">HBHHB", data, position)
    sampling = [data[position + 9 + 3 * i] for i in range(components) if position + 10 + 3 * i <= len(data)]
    if not sampling:
        return None
    h_max = max(max(s >> 4 for s in sampling), 1)
    v_max = max(max(s & 15 for s in sampling), 1)
    return height, width, h_max, v_max, arithmetic


def _check_jpeg_data_length(label: str, frame: tuple, entropy: int) -> None:
    """Every MCU costs at least one bit of Huffman-coded data (its DC code), whatever the image:
    fewer bits than MCUs means the data ends early and libjpeg would pad the rest with grey."""
    height, width, h_max, v_max, arithmetic = frame
    if arithmetic or not height or not width:
        return
    mcus = math.ceil(width / (8 * h_max)) * math.ceil(height / (8 * v_max))
    if entropy * 8 < mcus:
        raise ImageError(
            f"Cannot read {label}: the JPEG declares {width}×{height} pixels but holds only "
            f"{entropy:,} bytes of image data, too few for that size; the file is truncated or "
            "corrupt. Export the image again."
        )


# --------------------------------------------------------------------------------- TIFF


def _check_tiff(data, label: str, max_pages: int) -> None:
    """Walk the chain of IFDs (pages), reading only each tag count and next offset."""
    size = len(data)
    order = "<" if bytes(data[:2]) == b"II" else ">"
    big = struct.unpack_from(order + "H", data, 2)[0] == 43
    if big:
        count_format, entry, offset_format, first = order + "Q", 20, order + "Q", 8
    else:
        count_format, entry, offset_format, first = order + "H", 12, order + "L", 4
    count_size, offset_size = struct.calcsize(count_format), struct.calcsize(offset_format)
    if first + offset_size > size:
        return
    offset = struct.unpack_from(offset_format, data, first)[0]
    seen: set[int] = set()
    pages = tags = 0
    while 0 < offset and offset + count_size <= size and offset not in seen:
        seen.add(offset)
        pages += 1
        if pages > max_pages:
            raise ImageError(
                f"Cannot read {label}: the TIFF has more than {max_pages:,} pages ({PAGES_PER_FRAME} per "
                f"frame of max_frames={max_pages // PAGES_PER_FRAME:,}). Open a subset of the frames, or "
                "raise the limit with max_frames=..."
            )
        (count,) = struct.unpack_from(count_format, data, offset)
        tags += count
        if tags > MAX_TIFF_TAGS:
            raise _refuse(label, f"its TIFF pages hold more than {MAX_TIFF_TAGS:,} tags", _RESAVE)
        following = offset + count_size + count * entry
        if following + offset_size > size:
            return  # cut off: tifffile reports it
        offset = struct.unpack_from(offset_format, data, following)[0]


# --------------------------------------------------------------------------------- BMP


def _check_bmp(data, label: str) -> None:
    if len(data) < 34:
        return
    pixel_offset, header_size = struct.unpack_from("<LL", data, 10)
    if header_size < 40:
        return  # OS/2 headers have no compression field
    (compression,) = struct.unpack_from("<L", data, 30)
    rle_bytes = len(data) - pixel_offset
    if compression in (1, 2) and rle_bytes > MAX_BMP_RLE_BYTES:
        raise _refuse(
            label,
            f"it is a run-length-compressed BMP with {rle_bytes:,} bytes of pixel "
            f"data, above the limit of {MAX_BMP_RLE_BYTES:,} for this slow format",
            "Save it as PNG or uncompressed BMP/TIFF.",
        )
