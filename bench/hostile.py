"""Hostile uploads at full size: time and peak memory until each is refused (or read).

Every case of issue 15 is built here, at the size that used to stall the server (the ~200 MB
ones included), written to a temporary folder, and handed to the public entry point a host
uses (``load_model``, ``read_image``, ``Annotations.from_json``, ``rasterize``, the command
line) in a fresh Python process per case, so the peak RSS is that case's alone. The builders
are plain functions of their size, so the unit tests (``tests/unit/test_hostile_limits.py``)
build the same files small.

Run::

    python bench/hostile.py            # all cases; table + bench/results/hostile.json
    python bench/hostile.py --only png_chunks zip_directory

Targets: every case <= 3 s and <= 1.5 GB peak RSS on a 2-core machine.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 3.0
TARGET_MB = 1500.0


# --------------------------------------------------------------------------------- model bundles


def tiny_model():
    """A real two-class model trained on a 32x32 grey image (seconds, once per process)."""
    from seg.model import train

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32), dtype=np.uint8)
    labels = np.zeros((32, 32), np.uint8)
    labels[2:6, 2:30] = 1
    labels[20:24, 2:30] = 2
    return train(image, labels, class_names=["a", "b"])


def bundle_with_forest(model, arrays: dict) -> bytes:
    """``model`` saved with other forest arrays (the Forest constructor trusts them)."""
    from seg.forest import Forest
    from seg.persist import model_to_bytes

    return model_to_bytes(dataclasses.replace(model, forest=Forest(arrays)))


def chain_forest(depth: int, n_features: int) -> dict:
    """One tree that is a chain of ``depth`` splits (every right child a leaf)."""
    n_nodes = 2 * depth + 1
    split = np.arange(0, 2 * depth, 2)
    feature = np.full(n_nodes, -1, np.int32)
    feature[split] = 0
    threshold = np.zeros(n_nodes)
    threshold[split] = np.arange(depth, dtype=np.float64)
    left = np.full(n_nodes, -1, np.int32)
    right = np.full(n_nodes, -1, np.int32)
    left[split], right[split] = split + 2, split + 1
    value = np.tile([1.0, 0.0], (n_nodes, 1))
    value[-1] = [0.0, 1.0]
    return {"feature": feature, "threshold": threshold, "children_left": left, "children_right": right,
            "value": value, "roots": np.array([0], np.int32), "n_features": np.array(n_features, np.int64)}


def leaf_forest(n_trees: int, n_features: int) -> dict:
    """``n_trees`` trees of one leaf each."""
    return {"feature": np.full(n_trees, -1, np.int32), "threshold": np.zeros(n_trees),
            "children_left": np.full(n_trees, -1, np.int32), "children_right": np.full(n_trees, -1, np.int32),
            "value": np.tile([1.0, 0.0], (n_trees, 1)), "roots": np.arange(n_trees, dtype=np.int32),
            "n_features": np.array(n_features, np.int64)}


def edit_manifest(bundle: bytes, edit: Callable[[str], str]) -> bytes:
    """The bundle with its model.json text replaced by ``edit(text)`` (other members kept)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "model.json":
                data = edit(data.decode("utf-8")).encode("utf-8")
            target.writestr(info.filename, data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def many_classes(bundle: bytes, n_classes: int) -> bytes:
    """model.json listing ``n_classes`` classes (the forest keeps its own)."""
    def edit(text: str) -> str:
        manifest = json.loads(text)
        manifest["class_names"] = [f"c{i}" for i in range(n_classes)]
        manifest["class_colors"] = [f"#{i:06x}" for i in range(n_classes)]
        return json.dumps(manifest)
    return edit_manifest(bundle, edit)


def zip_directory_flood(entries: int) -> bytes:
    """A ZIP whose central directory lists ``entries`` empty members (ZIP64 records past 65535)."""
    name = b"model.json"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0,
                        len(name), 0, 0, 0, 0, 0, 0) + name
    directory = entry * entries
    offset = len(local)
    tail = b""
    if entries > 0xFFFF:
        record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                             len(directory), offset)
        locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + len(directory), 1)
        tail = record + locator
    short = min(entries, 0xFFFF)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, short, short, min(len(directory), 0xFFFFFFFF),
                      offset, 0)
    return local + directory + tail + end


# --------------------------------------------------------------------------------- images


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, "PNG")
    return out.getvalue()


def _png_chunk(name: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">L", len(data)) + name + data + struct.pack(">L", zlib.crc32(name + data))


def png_chunk_flood(chunks: int, *, name: bytes = b"prVt") -> bytes:
    """A 16x16 PNG with ``chunks`` empty private ancillary chunks before its image data."""
    png = png_bytes(np.zeros((16, 16), np.uint8))
    at = png.index(b"IDAT") - 4
    return png[:at] + _png_chunk(name) * chunks + png[at:]


def jpeg_bytes(image: np.ndarray, **options) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", **options)
    return out.getvalue()


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each marker segment, entropy-coded data included with its SOS."""
    import re

    segments, position = [], 2
    while position < len(data):
        marker = data[position + 1]
        if marker == 0xD9:
            segments.append((marker, position, position + 2))
            break
        length = struct.unpack_from(">H", data, position + 2)[0]
        end = position + 2 + length
        if marker == 0xDA:
            end = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, end).start()
        segments.append((marker, position, end))
        position = end
    return segments


def jpeg_scan_bomb(side: int, scans: int) -> bytes:
    """A flat ``side`` x ``side`` progressive JPEG whose last AC scan is repeated ``scans`` times
    (libjpeg warns about the bogus progression and decodes every repeat over the whole image)."""
    data = jpeg_bytes(np.full((side, side), 128, np.uint8), progressive=True, quality=90)
    segments = _jpeg_segments(data)
    marker, start, end = [s for s in segments if s[0] == 0xDA][-1]
    eoi = segments[-1][1]
    return data[:eoi] + data[start:end] * scans + data[eoi:]


def jpeg_lying_size(side: int, declared: int) -> bytes:
    """A ``side`` x ``side`` JPEG whose frame header declares ``declared`` x ``declared``."""
    data = bytearray(jpeg_bytes(np.random.default_rng(0).integers(0, 255, (side, side), dtype=np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", declared, declared)
    return bytes(data)


def tiff_tag_flood(pages: int, tags_per_page: int) -> bytes:
    """A classic TIFF of ``pages`` 8x8 pages, each IFD padded with ``tags_per_page`` private tags."""
    image = [(256, 3, 1, 8), (257, 3, 1, 8), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
             (273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, 8), (279, 4, 1, 64)]
    junk = [(60000 + i % 5000, 3, 1, 7) for i in range(tags_per_page)]
    entries = b"".join(struct.pack("<HHLL", *tag) for tag in sorted(image + junk, key=lambda t: t[0]))
    ifd_size = 2 + len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<L", 72) + bytes(64))
    for page in range(pages):
        following = len(out) + ifd_size if page < pages - 1 else 0
        out += struct.pack("<H", len(image) + len(junk)) + entries + struct.pack("<L", following)
    return bytes(out)


def bmp_rle8(side: int) -> bytes:
    """A ``side`` x ``side`` 8-bit run-length BMP of one-pixel runs (the slowest to decode)."""
    row = b"\x01\x07" * side + b"\x00\x00"
    pixels = row * side + b"\x00\x01"
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<LHHL", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<LllHHLLllLL", 40, side, side, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return header + info + palette + pixels


# --------------------------------------------------------------------------------- annotations


def annotations_rect_flood(rectangles: int, height: int, width: int) -> str:
    """An annotation file of ``rectangles`` full-frame rectangles of alternating classes."""
    corners = [[0, 0], [width, 0], [width, height], [0, height]]
    stroke = '{"kind":"rect","label":%d,"frame":0,"width":1,"points":' + json.dumps(corners) + "}"
    strokes = ",".join(stroke % (1 + i % 2) for i in range(rectangles))
    return ('{"format":"seg-annotations","version":1,"image_shape":[1,%d,%d],"classes":'
            '[{"name":"a","color":"#ff0000"},{"name":"b","color":"#00ff00"}],"strokes":[%s]}'
            % (height, width, strokes))


def json_empty_lists(nbytes: int) -> bytes:
    """A JSON document of ``nbytes`` made of empty lists ``[[],[],...]``."""
    count = max((nbytes - 2) // 3, 1)
    return b"[" + b"[]," * (count - 1) + b"[]]"


def annotations_with_class_name(name_json: str) -> str:
    """A valid one-stroke annotation file whose first class name is the JSON text ``name_json``."""
    return ('{"format":"seg-annotations","version":1,"image_shape":[1,8,8],"classes":'
            '[{"name":%s,"color":"#ff0000"},{"name":"b","color":"#00ff00"}],"strokes":'
            '[{"kind":"path","label":1,"frame":0,"width":2,"points":[[1,1],[3,3]]}]}' % name_json)
