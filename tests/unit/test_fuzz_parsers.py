"""Structure-aware fuzzing of every parser that reads user bytes: only the documented error escapes.

The byte-level fuzzers in test_images.py, test_strokes.py and test_persist.py flip, cut and
insert bytes, which mostly breaks checksums and framing, so decoders refuse early. These
fuzzers keep the container valid (PNG chunks with correct CRCs, TIFF IFD entries rewritten in
place, BMP and JPEG header fields, ZIP members with valid CRCs, JSON trees) and put hostile
values *inside* it, where the deeper code paths are:

=========================================  ===================================================
parser                                      only this may escape
=========================================  ===================================================
``seg.images.read_image``                   ``ImageError``
``seg.strokes.parse_canvas``                ``AnnotationError`` (also from ``rasterize``)
``seg.strokes.Annotations.from_json``       ``AnnotationError``
``seg.persist.load_model``                  ``ModelFileError``; never unpickles, never writes
=========================================  ===================================================

Whatever is accepted must be usable: a finite array in the documented layout, strokes with
finite coordinates, a model that predicts. Runs are bounded and reproducible
(``derandomize=True``, no example database).
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import io
import json
import math
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from seg.errors import AnnotationError, ImageError, ModelFileError
from seg.images import read_image
from seg.strokes import (
    ERASER_COLOR,
    MAX_COORDINATE,
    STROKE_KINDS,
    Annotations,
    BackgroundFit,
    Stroke,
    parse_canvas,
    rasterize,
)

EXAMPLES = 300
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Decoded images are bounded by this in the fuzzers (fast, and a bomb shows up as a refusal).
MAX_PIXELS = 1_000_000


def _image_or_refusal(data: bytes) -> None:
    """read_image either refuses with ImageError or returns a valid (T, H, W, C) array."""
    try:
        image = read_image(data, max_pixels=MAX_PIXELS)
    except ImageError as exc:
        assert str(exc), "an ImageError needs a message"
        return
    assert image.ndim == 4 and image.dtype in (np.uint8, np.uint16, np.float32), (image.shape, image.dtype)
    t, h, w, c = image.shape
    assert t >= 1 and h >= 4 and w >= 4 and 1 <= c <= 64 and t * h * w <= MAX_PIXELS
    if image.dtype == np.float32:
        assert np.isfinite(image).all()


# --------------------------------------------------------------------------- PNG chunks


def _png(mode: str, size=(16, 12), **save) -> bytes:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        picture = Image.fromarray(rng.integers(0, 65535, size[::-1]).astype(np.uint16))
    elif mode == "RGB":
        picture = Image.fromarray(rng.integers(0, 255, (*size[::-1], 3)).astype(np.uint8))
    elif mode == "P":
        picture = Image.fromarray(rng.integers(0, 4, size[::-1]).astype(np.uint8), "L").convert("P")
        picture.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
        save.setdefault("transparency", 0)
    elif mode == "1":
        picture = Image.fromarray(rng.integers(0, 2, size[::-1]).astype(bool))
    else:
        picture = Image.fromarray(rng.integers(0, 255, size[::-1]).astype(np.uint8), mode)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", **save)
    return buffer.getvalue()


PNG_SEEDS = [_png("L"), _png("RGB"), _png("I;16"), _png("P"), _png("1"), _png("RGB", size=(5, 4), optimize=True)]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(data: bytes) -> list[list]:
    """[[type, payload], ...] of a (well-formed) PNG."""
    chunks, at = [], len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        chunks.append([kind, data[at + 8 : at + 8 + length]])
        at += 12 + length
    return chunks


def _assemble(chunks) -> bytes:
    out = [PNG_SIGNATURE]
    for kind, payload in chunks:
        out.append(
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )
    return b"".join(out)


_BOMB = zlib.compress(bytes(8 << 20), 9)  # 8 MiB of zeros in ~8 KB
_EXTRA_CHUNKS = [
    (b"acTL", struct.pack(">II", 2, 0)),  # animated PNG control
    (b"fcTL", struct.pack(">IIIIIHHBB", 0, 16, 12, 0, 0, 1, 1, 0, 0)),
    (b"PLTE", bytes(range(48))),
    (b"tRNS", b"\x00\x01"),
    (b"iCCP", b"icc\x00\x00" + _BOMB),  # compressed-profile bomb
    (b"zTXt", b"Comment\x00\x00" + _BOMB),  # compressed-text bomb
    (b"iTXt", b"k\x00\x01\x00\x00\x00" + _BOMB),
    (b"tEXt", b"<img src=x onerror=alert(1)>\x00" + b"A" * 200),
    (b"pHYs", b"\xff" * 9),
    (b"sBIT", b"\x10\x10\x10"),
    (b"IDAT", _BOMB),  # a second, inflating IDAT
    (b"IEND", b""),
    (b"ABCD", b"unknown critical chunk"),
    (b"abcd", b"unknown ancillary chunk"),
]
_IHDR_FIELDS = {  # offset in IHDR payload, struct format, hostile values
    "width": (0, ">I", [0, 1, 3, 4, 17, 70_000, 2**31 - 1, 2**32 - 1]),
    "height": (4, ">I", [0, 1, 3, 4, 13, 70_000, 2**31 - 1, 2**32 - 1]),
    "bit depth": (8, ">B", [0, 1, 2, 3, 4, 8, 16, 32, 255]),
    "colour type": (9, ">B", [0, 1, 2, 3, 4, 5, 6, 7, 255]),
    "compression": (10, ">B", [0, 1, 255]),
    "filter": (11, ">B", [0, 1, 255]),
    "interlace": (12, ">B", [0, 1, 2, 255]),
}

_png_edit = st.one_of(
    st.tuples(st.just("ihdr"), st.sampled_from(sorted(_IHDR_FIELDS)), st.integers(0, 8)),
    st.tuples(st.just("insert"), st.integers(0, 16), st.integers(0, len(_EXTRA_CHUNKS) - 1)),
    st.tuples(st.just("drop"), st.integers(0, 16)),
    st.tuples(st.just("duplicate"), st.integers(0, 16)),
    st.tuples(st.just("swap"), st.integers(0, 16), st.integers(0, 16)),
    st.tuples(st.just("idat"), st.binary(max_size=400), st.booleans()),
)


@FUZZ
@given(st.integers(0, len(PNG_SEEDS) - 1), st.lists(_png_edit, min_size=1, max_size=4))
def test_png_with_valid_checksums_and_hostile_chunks_only_raises_image_error(seed, edits):
    chunks = _chunks(PNG_SEEDS[seed])
    for edit in edits:
        if not chunks:
            break
        kind = edit[0]
        if kind == "ihdr" and chunks[0][0] == b"IHDR":
            offset, fmt, values = _IHDR_FIELDS[edit[1]]
            payload = bytearray(chunks[0][1])
            struct.pack_into(fmt, payload, offset, values[edit[2] % len(values)])
            chunks[0][1] = bytes(payload)
        elif kind == "insert":
            chunks.insert(edit[1] % (len(chunks) + 1), list(_EXTRA_CHUNKS[edit[2]]))
        elif kind == "drop":
            del chunks[edit[1] % len(chunks)]
        elif kind == "duplicate":
            index = edit[1] % len(chunks)
            chunks.insert(index, list(chunks[index]))
        elif kind == "swap":
            i, j = edit[1] % len(chunks), edit[2] % len(chunks)
            chunks[i], chunks[j] = chunks[j], chunks[i]
        elif kind == "idat":
            # Recompressed (or raw) bytes of the wrong length, filter types and all.
            payload = zlib.compress(edit[1]) if edit[2] else edit[1]
            for chunk in chunks:
                if chunk[0] == b"IDAT":
                    chunk[1] = payload
                    break
    _image_or_refusal(_assemble(chunks))


# --------------------------------------------------------------------------- TIFF IFDs


def _tiff(array: np.ndarray, **kwargs) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


_rng = np.random.default_rng(1)
TIFF_SEEDS = [
    _tiff(_rng.integers(0, 255, (12, 16)).astype(np.uint8)),
    _tiff(_rng.integers(0, 65535, (3, 12, 16)).astype(np.uint16), photometric="minisblack"),
    _tiff(_rng.integers(0, 255, (12, 16, 3)).astype(np.uint8), photometric="rgb"),
    _tiff(_rng.random((2, 12, 16)).astype(np.float32), photometric="minisblack", planarconfig="separate"),
    _tiff(_rng.integers(0, 255, (4, 12, 16)).astype(np.uint8), imagej=True, metadata={"axes": "TYX"}),
    _tiff(_rng.integers(0, 255, (12, 16)).astype(np.uint8), compression="zlib"),
    _tiff(_rng.integers(0, 255, (32, 32)).astype(np.uint8), tile=(16, 16)),
]
_TIFF_TAGS = [256, 257, 258, 259, 262, 270, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 338, 339]
_TIFF_VALUES = [0, 1, 2, 3, 4, 5, 7, 8, 16, 32, 64, 255, 32773, 34712, 50000, 65535, 70_000, 2**31 - 1, 2**32 - 1]
_IMAGEJ_TEXT = [
    b"ImageJ=1.11a\nimages=10000\nslices=10000\n\x00",
    b"ImageJ=1.11a\nimages=-1\nchannels=70\n\x00",
    b"<?xml version='1.0'?><OME><Image><Pixels SizeT='99999'/></Image></OME>\x00",
    b'{"shape": [100000, 70000, 70000]}\x00',
]


def _ifd_entries(data: bytes) -> list[int]:
    """Byte offsets of every 12-byte IFD entry of a little-endian classic TIFF (and the
    next-IFD offsets, marked negative)."""
    entries, seen = [], set()
    (offset,) = struct.unpack_from("<I", data, 4)
    while 8 <= offset < len(data) - 2 and offset not in seen:
        seen.add(offset)
        (count,) = struct.unpack_from("<H", data, offset)
        entries += [offset + 2 + 12 * i for i in range(count) if offset + 14 + 12 * i <= len(data)]
        next_at = offset + 2 + 12 * count
        if next_at + 4 > len(data):
            break
        entries.append(-next_at)
        (offset,) = struct.unpack_from("<I", data, next_at)
    return entries


_tiff_edit = st.tuples(
    st.integers(0, 10_000),  # which entry
    st.sampled_from(["value", "count", "type", "tag", "next", "text"]),
    st.integers(0, 10_000),  # which hostile value
)


@FUZZ
@given(st.integers(0, len(TIFF_SEEDS) - 1), st.lists(_tiff_edit, min_size=1, max_size=4))
def test_tiff_with_hostile_ifd_entries_only_raises_image_error(seed, edits):
    data = bytearray(TIFF_SEEDS[seed])
    entries = _ifd_entries(bytes(data))
    for which, field, value in edits:
        at = entries[which % len(entries)]
        if at < 0 or field == "next":  # a next-IFD offset: loops, self-references, out of range
            targets = [0, 8, abs(at) - 2, len(data) - 1, len(data) + 64, 2**32 - 1]
            struct.pack_into("<I", data, abs(entries[-1] if at >= 0 else at), targets[value % len(targets)])
        elif field == "value":
            struct.pack_into("<I", data, at + 8, _TIFF_VALUES[value % len(_TIFF_VALUES)])
        elif field == "count":
            struct.pack_into("<I", data, at + 4, _TIFF_VALUES[value % len(_TIFF_VALUES)])
        elif field == "type":
            struct.pack_into("<H", data, at + 2, value % 20)
        elif field == "tag":
            struct.pack_into("<H", data, at, _TIFF_TAGS[value % len(_TIFF_TAGS)])
        else:  # replace the image description (ImageJ / OME / tifffile metadata) in place
            text = _IMAGEJ_TEXT[value % len(_IMAGEJ_TEXT)]
            data = data + text
            struct.pack_into("<HHII", data, at, 270, 2, len(text), len(data) - len(text))
    _image_or_refusal(bytes(data))


# --------------------------------------------------------------------------- BMP and JPEG headers


def _bmp(mode: str) -> bytes:
    rng = np.random.default_rng(2)
    shape = (12, 16, 3) if mode == "RGB" else (12, 16)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, shape).astype(np.uint8), mode).save(buffer, format="BMP")
    return buffer.getvalue()


BMP_SEEDS = [_bmp("L"), _bmp("RGB")]
_BMP_FIELDS = {  # offset, struct format, hostile values
    "file size": (2, "<I", [0, 1, 2**32 - 1]),
    "pixel offset": (10, "<I", [0, 14, 54, 2**31, 2**32 - 1]),
    "header size": (14, "<I", [0, 12, 40, 56, 108, 124, 2**32 - 1]),
    "width": (18, "<i", [0, 1, 4, -16, 70_000, 2**31 - 1, -(2**31)]),
    "height": (22, "<i", [0, 1, -12, 4, 70_000, 2**31 - 1, -(2**31)]),
    "planes": (26, "<H", [0, 2, 65535]),
    "bits": (28, "<H", [0, 1, 2, 4, 8, 16, 24, 32, 64, 65535]),
    "compression": (30, "<I", [0, 1, 2, 3, 4, 5, 6, 2**32 - 1]),
    "image size": (34, "<I", [0, 2**32 - 1]),
    "palette colours": (46, "<I", [0, 1, 256, 257, 2**24, 2**32 - 1]),
}


@FUZZ
@given(
    st.integers(0, 1),
    st.lists(st.tuples(st.sampled_from(sorted(_BMP_FIELDS)), st.integers(0, 100)), min_size=1, max_size=3),
    st.integers(20, 2000),
)
def test_bmp_with_hostile_header_fields_only_raises_image_error(seed, edits, keep):
    data = bytearray(BMP_SEEDS[seed])
    for name, value in edits:
        offset, fmt, values = _BMP_FIELDS[name]
        struct.pack_into(fmt, data, offset, values[value % len(values)])
    _image_or_refusal(bytes(data[:keep]) if keep < len(data) else bytes(data))


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (16, 16, 3)).astype(np.uint8)).save(
        buffer, format="JPEG", quality=80
    )
    return buffer.getvalue()


JPEG_SEED = _jpeg()


@FUZZ
@given(
    st.sampled_from([0, 1, 3, 4, 16, 65_500, 65_535]),
    st.sampled_from([0, 1, 3, 4, 16, 65_500, 65_535]),
    st.sampled_from([0, 1, 2, 3, 4, 5, 255]),
    st.sampled_from([0, 8, 12, 16, 255]),
    st.integers(100, 5000),
)
def test_jpeg_with_hostile_frame_header_only_raises_image_error(height, width, components, precision, keep):
    data = bytearray(JPEG_SEED)
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">BHHB", data, sof + 4, precision, height, width, components)
    _image_or_refusal(bytes(data[:keep]) if keep < len(data) else bytes(data))


# --------------------------------------------------------------------------- JSON trees

_HOSTILE = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    -(2**63),
    2**64,
    10**30,
    10**400,
    -0.0,
    0.5,
    1e308,
    -1e308,
    5e-324,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    "12",
    "NaN",
    "1e999",
    "#ff0000",
    "red",
    "rgb(0,0,0)",
    "<img src=x onerror=alert(1)>",
    "**bold** [link](javascript:alert(1))",
    "../../etc/passwd",
    "\x00\u202e",
    "M",
    "Q",
    "path",
    "Path",
    "rect",
    "line",
    [],
    {},
    [[]],
    [["M"]],
    [["M", 1, 2], ["Q", 1]],
    ["M", 1, 2],
    [[1e308, 1e308]],
    [[float("nan"), 0]],
    {"type": "path"},
    {"objects": []},
]
_FABRIC_KEYS = [
    "type",
    "left",
    "top",
    "width",
    "height",
    "scaleX",
    "scaleY",
    "angle",
    "skewX",
    "skewY",
    "flipX",
    "flipY",
    "originX",
    "originY",
    "stroke",
    "strokeWidth",
    "strokeUniform",
    "strokeLineCap",
    "path",
    "x1",
    "y1",
    "x2",
    "y2",
    "visible",
    "objects",
    "version",
    "rx",
    "ry",
    "fill",
    "pathOffset",
]
_ANNOTATION_KEYS = [
    "format",
    "version",
    "image_name",
    "image_shape",
    "classes",
    "name",
    "color",
    "strokes",
    "kind",
    "label",
    "frame",
    "width",
    "points",
]

_hostile = st.sampled_from(_HOSTILE)


def _json_values(keys: list[str]):
    # Copies: a shared [] or {} from _HOSTILE must not be mutated by a later edit.
    scalar = _hostile.map(copy.deepcopy) | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)
    return st.recursive(
        scalar,
        lambda inner: (
            st.lists(inner, max_size=5)
            | st.dictionaries(st.sampled_from(keys) | st.text(max_size=4), inner, max_size=5)
        ),
        max_leaves=12,
    )


def _paths(tree, prefix=()):
    """Every location in a JSON tree: (path to container, key or index)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield prefix, key
            yield from _paths(value, prefix + (key,))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield prefix, index
            yield from _paths(value, prefix + (index,))


def _mutate(tree, data, keys: list[str], edits: int):
    """Replace, delete or add values anywhere in a deep copy of ``tree``."""
    tree = json.loads(json.dumps(tree))
    values = _json_values(keys)
    for _ in range(edits):
        locations = list(_paths(tree))
        if not locations:
            break
        where, key = data.draw(st.sampled_from(locations), label="where")
        container = tree
        for step in where:
            container = container[step]
        action = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]), label="action")
        if action == "replace":
            container[key] = data.draw(values, label="value")
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[data.draw(st.sampled_from(keys), label="new key")] = data.draw(values, label="value")
        else:
            container.insert(key, data.draw(values, label="value"))
    return tree


def _valid_drawing() -> dict:
    red, blue = "#ff0000", "#0000ff"
    return {
        "version": "7.4.0",
        "background": "",
        "objects": [
            {
                "type": "Path",
                "originX": "center",
                "originY": "center",
                "left": 40,
                "top": 30,
                "width": 40,
                "height": 20,
                "stroke": red,
                "strokeWidth": 6,
                "strokeLineCap": "round",
                "scaleX": 1,
                "scaleY": 1,
                "angle": 0,
                "path": [["M", 20, 20], ["Q", 30, 25, 40, 30], ["L", 60, 40]],
            },
            {
                "type": "Line",
                "left": 50,
                "top": 50,
                "x1": -10,
                "y1": -5,
                "x2": 10,
                "y2": 5,
                "stroke": blue,
                "strokeWidth": 4,
            },
            {
                "type": "Rect",
                "left": 70,
                "top": 20,
                "width": 15,
                "height": 10,
                "angle": 30,
                "stroke": blue,
                "strokeWidth": 2,
                "fill": "rgba(0, 0, 255, 0.3)",
            },
            {
                "type": "Path",
                "left": 30,
                "top": 60,
                "width": 10,
                "height": 0,
                "stroke": ERASER_COLOR,
                "strokeWidth": 12,
                "path": [["M", 25, 60], ["L", 35, 60]],
            },
        ],
    }


_FIT = BackgroundFit.from_component(
    {"natural_width": 50, "natural_height": 40, "scale_x": 2.0, "scale_y": 2.0, "offset_x": 0, "offset_y": 0}, (40, 50)
)


def _check_strokes(strokes: list[Stroke], labels: set[int], frames: set[int]) -> None:
    for stroke in strokes:
        assert stroke.kind in STROKE_KINDS and stroke.label in labels and stroke.frame in frames, stroke
        xy = np.asarray(stroke.points, dtype=float)
        assert xy.ndim == 2 and xy.shape[1] == 2 and len(xy) >= 1
        assert np.isfinite(xy).all() and np.abs(xy).max() <= MAX_COORDINATE
        assert math.isfinite(stroke.width) and stroke.width > 0


def _strokes_or_refusal(call, labels: set[int], frames: set[int], shape=(40, 50)):
    try:
        strokes = call()
    except AnnotationError as exc:
        assert str(exc)
        return None
    _check_strokes(strokes, labels, frames)
    try:
        painted = rasterize(strokes, shape)
    except AnnotationError:
        return strokes  # e.g. more raster work than allowed: refused, not crashed
    assert painted.shape == shape and set(np.unique(painted)) <= labels | {0}
    return strokes


@FUZZ
@given(st.data())
def test_canvas_json_with_hostile_values_only_raises_annotation_error(data):
    drawing = _mutate(_valid_drawing(), data, _FABRIC_KEYS, data.draw(st.integers(1, 4), label="edits"))
    mapping = {"#ff0000": 1, "#0000ff": 2}
    as_text = data.draw(st.booleans(), label="as text")
    # As text, NaN/Infinity become JSON's non-standard constants, which must be refused too.
    source = json.dumps(drawing, allow_nan=True) if as_text else drawing
    _strokes_or_refusal(lambda: parse_canvas(source, _FIT, mapping), {0, 1, 2}, {0})


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "natural_width",
                "naturalWidth",
                "natural_height",
                "scale_x",
                "scaleX",
                "scale_y",
                "offset_x",
                "offsetY",
                "offset_y",
            ]
        ),
        _hostile | st.floats() | st.integers(-(2**40), 2**40),
        max_size=9,
    ),
    st.tuples(st.integers(-5, 10**6), st.integers(-5, 10**6)),
)
def test_reported_canvas_fit_with_hostile_values_only_raises_annotation_error(reported, shape):
    try:
        fit = BackgroundFit.from_component(reported, shape)
    except AnnotationError:
        return
    _strokes_or_refusal(
        lambda: parse_canvas(_valid_drawing(), fit, {"#ff0000": 1, "#0000ff": 2}), {0, 1, 2}, {0}, shape=(40, 50)
    )


def _valid_annotations() -> dict:
    strokes = [
        Stroke("path", 1, [(1, 2), (10, 12), (20, 5)], 3.0),
        Stroke("rect", 2, [(5, 5), (20, 5), (20, 15), (5, 15)], 2.0, frame=1),
        Stroke("line", 0, [(3, 3), (30, 30)], 4.0),
    ]
    text = Annotations(
        ["background", "cell"], ["#e69f00", "#56b4e9"], (2, 40, 50), strokes, image_name="plate 1.tif"
    ).to_json()
    return json.loads(text)


@FUZZ
@given(st.data())
def test_annotation_file_with_hostile_values_only_raises_annotation_error(data):
    tree = _mutate(_valid_annotations(), data, _ANNOTATION_KEYS, data.draw(st.integers(1, 4), label="edits"))
    text = json.dumps(tree, allow_nan=True)
    encoding = data.draw(st.sampled_from(["str", "utf-8", "utf-8-sig", "utf-16", "latin-1"]), label="encoding")
    source = text if encoding == "str" else text.encode(encoding, errors="replace")
    try:
        annotations = Annotations.from_json(source)
    except AnnotationError as exc:
        assert str(exc)
        return
    frames, height, width = annotations.image_shape
    labels = set(range(len(annotations.class_names) + 1))
    _check_strokes(annotations.strokes, labels, set(range(frames)))
    assert len(annotations.class_names) == len(annotations.class_colors)
    # Round trip: whatever was accepted is written back identically.
    again = Annotations.from_json(annotations.to_json())
    assert again.strokes == annotations.strokes and again.class_names == annotations.class_names
    if height * width <= 4_000_000:  # the app compares the shape with the open image first
        for frame in range(min(frames, 3)):
            try:
                painted = annotations.labels(frame)
            except AnnotationError:
                continue
            assert painted.shape == (height, width)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # nesting beyond the recursion limit
        '{"objects": [' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "]}",
        '{"objects": [], "objects": 5}',  # duplicate keys
        '{"objects": [{"type": "Path", "stroke": "#ff0000", "path": [["M", 1' + "0" * 5000 + ", 2]]}]}",
        "\ufeff{}",
    ],
)
def test_pathological_json_text_is_refused_or_harmless(text):
    _strokes_or_refusal(lambda: parse_canvas(text, _FIT, {"#ff0000": 1}), {0, 1}, {0})
    try:
        Annotations.from_json(text)
    except AnnotationError:
        pass


# --------------------------------------------------------------------------- model bundles


class _Bundle(tuple):
    def __repr__(self) -> str:  # keeps hypothesis' falsifying-example report short
        return f"<bundle of {len(self[0])} bytes>"


@pytest.fixture(scope="module")
def bundle() -> tuple[bytes, np.ndarray]:
    from seg.features import FeatureSettings
    from seg.forest import ForestSettings
    from seg.model import train
    from seg.persist import load_model, model_to_bytes

    rng = np.random.default_rng(0)
    image = rng.normal(0.3, 0.05, (24, 24)).astype(np.float32)
    image[:, 12:] += 0.5
    labels = np.zeros((24, 24), np.uint8)
    labels[2:5, 2:8], labels[18:22, 15:22] = 1, 2
    model = train(
        image,
        labels,
        FeatureSettings(feature_set="basic", sigma_min=1.0, sigma_max=2.0),
        ["a", "b"],
        forest=ForestSettings(
            n_estimators=3, max_depth=4, max_samples=None, class_weight=None, random_state=0, n_jobs=1
        ),
    )
    data = model_to_bytes(model)
    load_model(data).predict(image)  # loads every kernel before the no-write guard is on
    return _Bundle((data, image))


def _members(data: bytes) -> list[list]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [[info.filename, archive.read(info.filename), zipfile.ZIP_DEFLATED] for info in archive.infolist()]


def _zip(members, *, lies: dict | None = None) -> bytes:
    """A ZIP written by hand: valid CRCs, any names, methods and (lying) sizes."""
    lies = lies or {}
    out, central = io.BytesIO(), []
    for index, (name, payload, method) in enumerate(members):
        raw_name = name.encode("utf-8", "surrogatepass")
        crc = zlib.crc32(payload) & 0xFFFFFFFF
        if method == zipfile.ZIP_DEFLATED:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            stored = compressor.compress(payload) + compressor.flush()
        else:
            stored = payload  # stored, or a method/flag that must be refused
        flags = 0x800 | (1 if lies.get("encrypted") == index else 0)
        size = lies.get("size", {}).get(index, len(payload))
        offset = out.tell()
        out.write(
            struct.pack(
                "<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(stored), size, len(raw_name), 0
            )
            + raw_name
            + stored
        )
        central.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                flags,
                method,
                0,
                0x21,
                crc,
                len(stored),
                size,
                len(raw_name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + raw_name
        )
    directory = b"".join(central)
    count = lies.get("count", len(members))
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), out.tell(), 0)
    return out.getvalue() + directory + end


def _npy_with_header(header: str, body: bytes) -> bytes:
    text = header.encode("latin-1")
    pad = (64 - (10 + len(text) + 1) % 64) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + body


_HOSTILE_NAMES = [
    "../model.json",
    "/model.json",
    "arrays/../model.json",
    "arrays\\feature.npy",
    "C:/model.json",
    "model.json/",
    "./model.json",
    "arrays//feature.npy",
    "ARRAYS/feature.npy",
    "arrays/feature.NPY",
    "model.js\u03bfn",
    "arrays/feature.npy\x00.txt",
    "arrays/",
    "../../../../tmp/seg-pwned",
    "arrays/__init__.py",
    "model.pkl",
    "a" * 300,
]
_HOSTILE_PAYLOADS = [
    b"",
    pickle.dumps({"x": 1}),
    pickle.dumps(os.system, protocol=0),
    b"PK\x03\x04",
    zlib.compress(bytes(1 << 20)),
    _npy_with_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x00" * 8),
]
_NPY_HEADERS = [
    "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<U8', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (-1,), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (1099511627776,), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
    "{'descr': '<i8', 'fortran_order': 'yes', 'shape': (3,), }",
    "{'descr': '<i8', 'shape': (3,), }",
    "__import__('os').system('echo pwned')",
    "{'descr': '<M8[s]', 'fortran_order': False, 'shape': (3,), }",
]

_bundle_edit = st.one_of(
    st.tuples(st.just("rename"), st.integers(0, 50), st.integers(0, len(_HOSTILE_NAMES) - 1)),
    st.tuples(st.just("add"), st.integers(0, len(_HOSTILE_NAMES) - 1), st.integers(0, len(_HOSTILE_PAYLOADS) - 1)),
    st.tuples(st.just("drop"), st.integers(0, 50)),
    st.tuples(st.just("duplicate"), st.integers(0, 50)),
    st.tuples(st.just("method"), st.integers(0, 50), st.sampled_from([0, 1, 6, 9, 12, 14, 93, 98, 99])),
    st.tuples(st.just("npy header"), st.integers(0, 50), st.integers(0, len(_NPY_HEADERS) - 1)),
    st.tuples(st.just("size lie"), st.integers(0, 50), st.sampled_from([0, 1, 2**31, 2**32 - 1])),
    st.tuples(st.just("encrypted"), st.integers(0, 50)),
    st.tuples(st.just("count lie"), st.sampled_from([0, 1, 300, 65535])),
    st.tuples(st.just("nest"), st.integers(0, 50)),
)


class _Forbidden(AssertionError):
    """Raised by the guards: loading a bundle tried to unpickle or to write a file."""


@contextlib.contextmanager
def _no_pickle_no_writes():
    """Make unpickling and opening files for writing fail loudly while the block runs."""
    real_open, real_os_open, real_np_load = builtins.open, os.open, np.load

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(flag in str(mode) for flag in "wax+"):
            raise _Forbidden(f"load_model opened {file!r} for writing")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise _Forbidden(f"load_model opened {path!r} for writing")
        return real_os_open(path, flags, *args, **kwargs)

    def guarded_np_load(*args, allow_pickle=False, **kwargs):
        if allow_pickle:
            raise _Forbidden("load_model called np.load with allow_pickle=True")
        return real_np_load(*args, allow_pickle=False, **kwargs)

    def refuse(*args, **kwargs):
        raise _Forbidden("load_model unpickled user bytes")

    patches = [
        (builtins, "open", guarded_open),
        (io, "open", guarded_open),
        (os, "open", guarded_os_open),
        (np, "load", guarded_np_load),
        (pickle, "loads", refuse),
        (pickle, "load", refuse),
        (pickle, "Unpickler", refuse),
        (zipfile.ZipFile, "extract", refuse),
        (zipfile.ZipFile, "extractall", refuse),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


@FUZZ
@given(st.data())
def test_bundles_with_hostile_zip_structure_only_raise_model_file_error(bundle, data):
    from seg.persist import load_model

    original, image = bundle
    members = _members(original)
    lies: dict = {}
    for edit in data.draw(st.lists(_bundle_edit, min_size=1, max_size=3), label="edits"):
        kind, index = edit[0], (edit[1] if len(edit) > 1 and isinstance(edit[1], int) else 0) % max(len(members), 1)
        if kind == "add":
            members.append([_HOSTILE_NAMES[edit[1]], _HOSTILE_PAYLOADS[edit[2]], zipfile.ZIP_DEFLATED])
        elif kind == "count lie":
            lies["count"] = edit[1]
        elif not members:
            continue
        elif kind == "rename":
            members[index][0] = _HOSTILE_NAMES[edit[2]]
        elif kind == "drop":
            del members[index]
        elif kind == "duplicate":
            members.append(list(members[index]))
        elif kind == "method":
            members[index][2] = edit[2]
        elif kind == "npy header":
            npy = [m for m in members if m[0].endswith(".npy")] or members
            target = npy[edit[1] % len(npy)]
            target[1] = _npy_with_header(_NPY_HEADERS[edit[2]], target[1][128:] if len(target[1]) > 128 else b"")
        elif kind == "size lie":
            lies.setdefault("size", {})[index] = edit[2]
        elif kind == "encrypted":
            lies["encrypted"] = index
        elif kind == "nest":  # the whole bundle again, as a member
            members[index][1] = original
    hostile = _zip(members, lies=lies)
    with _no_pickle_no_writes():
        try:
            model = load_model(hostile)
        except ModelFileError as exc:
            assert str(exc)
            return
    prediction = model.predict(image)  # whatever loads must also work
    assert prediction.shape == image.shape and prediction.min() >= 1 and prediction.max() <= model.n_classes


# --------------------------------------------------------------------------------- structure pre-scan

_MAGIC = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8", "TIFF": b"II*\x00", "BMP": b"BM"}


@FUZZ
@given(
    st.sampled_from(sorted(_MAGIC)),
    st.lists(
        st.one_of(
            st.binary(max_size=12),
            st.sampled_from(
                [
                    b"\xff\xda\x00\x02",
                    b"\xff\xc2\x00\x0b\x08\xff\xff\xff\xff\x01\x01\x11\x00",
                    b"\x00\x00\x00\x00IEND",
                    b"\x00\x00\x00\x00prVt\x00\x00\x00\x00",
                    b"\xff\xff\xff\xd9",
                    b"\x08\x00\x00\x00",
                    b"\x00\x00",
                ]
            ),
        ),
        max_size=40,
    ),
)
def test_the_structure_prescan_ends_in_a_result_or_an_image_error(kind, pieces):
    """Whatever follows a format's magic bytes, the pre-scan walks it to the end and either
    passes or refuses with ImageError (no struct.error, IndexError or endless loop)."""
    from seg.images.prescan import check_structure

    data = _MAGIC[kind] + b"".join(pieces)
    try:
        check_structure(io.BytesIO(data), kind, "fuzz", max_frames=2)
    except ImageError as exc:
        assert str(exc)
