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

Targets: every case <= 3 s and <= 1.5 GB peak RSS on a 2-core machine. The table gives wall
and process CPU seconds: on a shared, loaded machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
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
    return {
        "feature": feature,
        "threshold": threshold,
        "children_left": left,
        "children_right": right,
        "value": value,
        "roots": np.array([0], np.int32),
        "n_features": np.array(n_features, np.int64),
    }


def leaf_forest(n_trees: int, n_features: int) -> dict:
    """``n_trees`` trees of one leaf each."""
    return {
        "feature": np.full(n_trees, -1, np.int32),
        "threshold": np.zeros(n_trees),
        "children_left": np.full(n_trees, -1, np.int32),
        "children_right": np.full(n_trees, -1, np.int32),
        "value": np.tile([1.0, 0.0], (n_trees, 1)),
        "roots": np.arange(n_trees, dtype=np.int32),
        "n_features": np.array(n_features, np.int64),
    }


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
    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0) + name
    directory = entry * entries
    offset = len(local)
    tail = b""
    if entries > 0xFFFF:
        record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, len(directory), offset)
        locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + len(directory), 1)
        tail = record + locator
    short = min(entries, 0xFFFF)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, short, short, min(len(directory), 0xFFFFFFFF), offset, 0)
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
    data[sof + 5 : sof + 9] = struct.pack(">HH", declared, declared)
    return bytes(data)


def tiff_tag_flood(pages: int, tags_per_page: int) -> bytes:
    """A classic TIFF of ``pages`` 8x8 pages, each IFD padded with ``tags_per_page`` private tags."""
    image = [
        (256, 3, 1, 8),
        (257, 3, 1, 8),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (278, 3, 1, 8),
        (279, 4, 1, 64),
    ]
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
    return (
        '{"format":"seg-annotations","version":1,"image_shape":[1,%d,%d],"classes":'
        '[{"name":"a","color":"#ff0000"},{"name":"b","color":"#00ff00"}],"strokes":[%s]}' % (height, width, strokes)
    )


def json_empty_lists(nbytes: int) -> bytes:
    """A JSON document of ``nbytes`` made of empty lists ``[[],[],...]``."""
    count = max((nbytes - 2) // 3, 1)
    return b"[" + b"[]," * (count - 1) + b"[]]"


def annotations_with_class_name(name_json: str) -> str:
    """A valid one-stroke annotation file whose first class name is the JSON text ``name_json``."""
    return (
        '{"format":"seg-annotations","version":1,"image_shape":[1,8,8],"classes":'
        '[{"name":%s,"color":"#ff0000"},{"name":"b","color":"#00ff00"}],"strokes":'
        '[{"kind":"path","label":1,"frame":0,"width":2,"points":[[1,1],[3,3]]}]}' % name_json
    )


def annotations_line_flood(lines: int, height: int, width: int) -> str:
    """An annotation file of ``lines`` thin full-height vertical lines of one class: the most
    row spans (segment, row pairs) for the fewest painted pixels."""
    stroke = '{"kind":"line","label":1,"frame":0,"width":1,"points":[[%d.5,0],[%d.5,%d]]}'
    strokes = ",".join(stroke % (i % width, i % width, height) for i in range(lines))
    return (
        '{"format":"seg-annotations","version":1,"image_shape":[1,%d,%d],"classes":'
        '[{"name":"a","color":"#ff0000"},{"name":"b","color":"#00ff00"}],"strokes":[%s]}' % (height, width, strokes)
    )


# --------------------------------------------------------------------------------- cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile input: ``build(folder)`` writes its files and returns the action's arguments."""

    name: str
    issue_item: str
    what: str
    action: str
    build: Callable[[Path], list[str]]


def _write(folder: Path, name: str, data: bytes | str) -> str:
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def _bundle(folder: Path, name: str, make: Callable) -> list[str]:
    model = tiny_model()
    return [_write(folder, name, make(model, model_to_bytes_of(model)))]


def model_to_bytes_of(model) -> bytes:
    from seg.persist import model_to_bytes

    return model_to_bytes(model)


def _grey_png(folder: Path, side: int = 64) -> str:
    return _write(folder, "image.png", png_bytes(np.random.default_rng(0).integers(0, 255, (side, side), np.uint8)))


def _surrogate(model, bundle: bytes) -> bytes:
    return edit_manifest(bundle, lambda text: text.replace('"a"', '"\\ud800"', 1))


def _infinite(model, bundle: bytes) -> bytes:
    return edit_manifest(bundle, lambda text: text.replace('"training": {', '"training": {"x": 1e400, ', 1))


def _fifo(folder: Path) -> list[str]:
    fifo = folder / "annotations.json"
    os.mkfifo(fifo)
    return [_grey_png(folder), str(fifo)]


CASES = [
    Case(
        "zip_directory",
        "1",
        "196 MB .segmodel: central directory of 3.5 M empty entries",
        "load_model",
        lambda f: [_write(f, "flood.segmodel", zip_directory_flood(3_500_000))],
    ),
    Case(
        "png_chunks",
        "2",
        "192 MB PNG: 16 M empty ancillary chunks before IDAT",
        "read_image",
        lambda f: [_write(f, "chunks.png", png_chunk_flood(16_000_000))],
    ),
    Case(
        "jpeg_scans",
        "3",
        "16 MP progressive JPEG, 20 000 repeated scans",
        "read_image",
        lambda f: [_write(f, "scans.jpg", jpeg_scan_bomb(4000, 20_000))],
    ),
    Case(
        "zarr_zip_directory",
        "1 (general)",
        "196 MB zipped OME-Zarr store: directory of 3.5 M entries",
        "zarr_zip",
        lambda f: [_write(f, "store.zip", zip_directory_flood(3_500_000))],
    ),
    Case(
        "forest_chain",
        "4",
        "bundle: one tree, a chain of 200 000 splits (settings: 16 x depth 6)",
        "load_model",
        lambda f: _bundle(
            f, "chain.segmodel", lambda m, b: bundle_with_forest(m, chain_forest(200_000, m.forest.n_features))
        ),
    ),
    Case(
        "forest_trees",
        "4",
        "bundle: 2 000 000 single-leaf trees (settings: 16)",
        "load_model",
        lambda f: _bundle(
            f, "trees.segmodel", lambda m, b: bundle_with_forest(m, leaf_forest(2_000_000, m.forest.n_features))
        ),
    ),
    Case(
        "classes",
        "5",
        "bundle listing 65 535 classes",
        "load_model",
        lambda f: _bundle(f, "classes.segmodel", lambda m, b: many_classes(b, 65_535)),
    ),
    Case(
        "classes_65",
        "5",
        "bundle listing 65 classes (MAX_CLASSES 64)",
        "load_model",
        lambda f: _bundle(f, "classes65.segmodel", lambda m, b: many_classes(b, 65)),
    ),
    Case(
        "rectangles",
        "6",
        "annotations: 12 499 full-frame rectangles, alternating classes, 4000x4000",
        "label_stack",
        lambda f: [_write(f, "rects.json", annotations_rect_flood(12_499, 4000, 4000))],
    ),
    Case(
        "line_spans",
        "6",
        "annotations: 12 499 full-height 1-px lines of one class, 4000x4000 (50 M row spans)",
        "label_stack",
        lambda f: [_write(f, "lines.json", annotations_line_flood(12_499, 4000, 4000))],
    ),
    Case(
        "line_spans_within",
        "6",
        "the same with 499 lines (2.0 M row spans, within the budget)",
        "label_stack",
        lambda f: [_write(f, "lines.json", annotations_line_flood(499, 4000, 4000))],
    ),
    Case(
        "strokes_over",
        "6",
        "annotations: 100 000 strokes (limit 20 000)",
        "label_stack",
        lambda f: [_write(f, "many.json", annotations_line_flood(100_000, 100, 100))],
    ),
    Case(
        "strokes_within",
        "6",
        "annotations: 20 000 strokes (at the limit), painted",
        "label_stack",
        lambda f: [_write(f, "many.json", annotations_line_flood(20_000, 100, 100))],
    ),
    Case("cli_fifo", "7", "seg train with a FIFO as the annotations", "cli_train", _fifo),
    Case(
        "cli_dev_zero",
        "7",
        "seg train with /dev/zero as the annotations",
        "cli_train",
        lambda f: [_grey_png(f), "/dev/zero"],
    ),
    Case(
        "json_lists",
        "7",
        "seg train: 64 MiB annotations file of empty lists",
        "cli_train",
        lambda f: [_grey_png(f), _write(f, "lists.json", json_empty_lists(64 * 1024 * 1024 - 1))],
    ),
    Case(
        "surrogate_name",
        "8",
        'bundle with class name "\\ud800"',
        "load_model",
        lambda f: _bundle(f, "surrogate.segmodel", _surrogate),
    ),
    Case(
        "infinite_number",
        "9",
        "bundle with 1e400 in its training summary",
        "load_model",
        lambda f: _bundle(f, "infinite.segmodel", _infinite),
    ),
    Case(
        "jpeg_lying_size",
        "small",
        "JPEG declaring 4000x4000, holding 64x64 data",
        "read_image",
        lambda f: [_write(f, "lying.jpg", jpeg_lying_size(64, 4000))],
    ),
    Case(
        "tiff_tags",
        "general",
        "192 MB TIFF: 4 000 pages x 4 000 tags",
        "read_image",
        lambda f: [_write(f, "tags.tif", tiff_tag_flood(4000, 4000))],
    ),
    Case(
        "tiff_pages",
        "general",
        "TIFF of 1 000 000 pages (8 MB per 100 000 pages)",
        "read_image",
        lambda f: [_write(f, "pages.tif", tiff_tag_flood(1_000_000, 0))],
    ),
    Case(
        "bmp_rle",
        "general",
        "16 MP run-length BMP of one-pixel runs (32 MB)",
        "read_image",
        lambda f: [_write(f, "runs.bmp", bmp_rle8(4000))],
    ),
]


def _act(action: str, args: list[str]) -> str:
    """Run one action in this process; the outcome as text (an error's type and message)."""
    from seg.errors import SegError

    try:
        if action == "load_model":
            from seg.persist import describe_model, load_model

            return f"loaded: {describe_model(load_model(args[0]))['trees']} trees"
        if action == "zarr_zip":
            from seg.io.zipped import check_zip_store

            check_zip_store(args[0])
            return "accepted"
        if action == "read_image":
            from seg.images import read_image

            return f"read: {read_image(args[0]).shape}"
        if action == "label_stack":
            from seg.strokes import Annotations

            return f"painted: {Annotations.from_json(Path(args[0]).read_bytes()).label_stack().shape}"
        if action == "cli_train":
            from contextlib import redirect_stderr

            from seg.cli import main

            err = io.StringIO()
            with redirect_stderr(err):
                code = main(["train", args[0], args[1], "--out", str(Path(args[0]).with_suffix(".segmodel"))])
            return f"exit {code}: {err.getvalue().strip()}"
    except SegError as exc:
        return f"{type(exc).__name__}: {exc}"
    raise ValueError(f"unknown action {action!r}")


def _child(action: str, args: list[str]) -> None:
    import common

    import seg.forest
    import seg.persist  # noqa: F401

    seg.forest.warm_up()  # as the app does at start-up: imports and kernels are not the case's cost
    baseline = common.rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    outcome = _act(action, args)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mb": common.peak_rss_mb(),
                "baseline_mb": baseline,
                "outcome": outcome,
            }
        )
    )


def run_case(case: Case, *, timeout: float = 300.0) -> dict:
    """Build the case in a temporary folder, run it in a fresh process, delete the files."""
    with tempfile.TemporaryDirectory(prefix=f"hostile-{case.name}-") as folder:
        args = case.build(Path(folder))
        size = sum(os.path.getsize(a) for a in args if os.path.isfile(a) and not a.startswith("/dev/"))
        command = [sys.executable, str(Path(__file__).resolve()), "--child", case.action, *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=folder)
            result = json.loads(done.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            result = {"seconds": timeout, "peak_mb": None, "outcome": f"still running after {timeout:.0f} s"}
        except (json.JSONDecodeError, IndexError):
            result = {"seconds": None, "peak_mb": None, "outcome": f"crashed: {done.stderr.strip()[-300:]}"}
    # Judged on CPU seconds and peak RSS; the wall time is judged too unless the machine is
    # loaded beyond its cores (then each process gets a fraction of a core and waits in line).
    cpu = result.get("cpu_seconds")
    loaded = os.getloadavg()[0] > (os.cpu_count() or 1)
    ok = (
        cpu is not None
        and cpu <= TARGET_SECONDS
        and result["peak_mb"] is not None
        and result["peak_mb"] <= TARGET_MB
        and (loaded or result["seconds"] <= TARGET_SECONDS)
    )
    return {
        "case": case.name,
        "item": case.issue_item,
        "what": case.what,
        "file_mb": size / 1e6,
        **result,
        "load_average": list(os.getloadavg()),
        "within_target": ok,
    }


def class_cost(classes=(2, 8, 16, 32, 64), pixels: int = 300_000) -> list[dict]:
    """CPU seconds per megapixel of the compiled forest (default ForestSettings, 20 features) as
    the class count K grows: labels only, and probabilities. Scribble-like data: the class is
    a band of one feature, so leaves are nearly pure, plus a random-label forest (mixed leaves)."""
    from seg.forest import Forest, ForestSettings

    rng = np.random.default_rng(0)
    x = rng.random((20_000, 20), np.float32)
    features = rng.random((pixels, 20), np.float32)
    rows = []
    for k in classes:
        for kind, y in (
            ("banded", 1 + np.minimum((x[:, 0] * k).astype(int), k - 1)),
            ("random", rng.integers(1, k + 1, len(x))),
        ):
            forest = Forest.fit(x, y, k, ForestSettings())
            forest.predict(features[:100])
            forest.predict_proba(features[:100])
            cpu = time.process_time()
            forest.predict(features)
            labels = time.process_time() - cpu
            cpu = time.process_time()
            forest.predict_proba(features)
            proba = time.process_time() - cpu
            rows.append(
                {
                    "classes": k,
                    "leaves": kind,
                    "labels_cpu_s_per_mp": labels * 1e6 / pixels,
                    "proba_cpu_s_per_mp": proba * 1e6 / pixels,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="CASE", choices=[c.name for c in CASES])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "hostile.json"))
    parser.add_argument(
        "--no-class-cost", dest="class_cost", action="store_false", help="skip the prediction cost per class count"
    )
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1:])
        return 0
    import common

    before = common.load_average()
    rows = []
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        row = run_case(case)
        rows.append(row)
        print(
            f"{row['case']:16s} {row['seconds'] if row['seconds'] is None else round(row['seconds'], 3)} s "
            f"{row['peak_mb'] if row['peak_mb'] is None else round(row['peak_mb'])} MB  {row['outcome'][:90]}",
            flush=True,
        )
    table = common.format_table(
        ["case", "item", "input", "file MB", "time to outcome s", "CPU s", "peak RSS MB", "(after imports)", "outcome"],
        [
            [
                r["case"],
                r["item"],
                r["what"],
                f"{r['file_mb']:.1f}",
                "-" if r["seconds"] is None else f"{r['seconds']:.2f}",
                "-" if r.get("cpu_seconds") is None else f"{r['cpu_seconds']:.2f}",
                "-" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}",
                "-" if r.get("baseline_mb") is None else f"{r['baseline_mb']:.0f}",
                r["outcome"][:70],
            ]
            for r in rows
        ],
        align="lllrrrrrl",
    )
    print(table)
    costs = class_cost() if args.class_cost else []
    if costs:
        print(
            common.format_table(
                ["classes K", "leaves", "labels CPU s / MP", "probabilities CPU s / MP"],
                [
                    [c["classes"], c["leaves"], f"{c['labels_cpu_s_per_mp']:.2f}", f"{c['proba_cpu_s_per_mp']:.2f}"]
                    for c in costs
                ],
            )
        )
    machine = common.machine_info()
    common.write_json(
        args.out,
        {
            "machine": machine,
            "load_before": before,
            "load_after": common.load_average(),
            "targets": {"seconds": TARGET_SECONDS, "peak_mb": TARGET_MB},
            "cases": rows,
            "class_cost": costs,
        },
    )
    failed = [r["case"] for r in rows if not r["within_target"]]
    print(
        f"load average before {before}, after {common.load_average()}; "
        + (f"over target: {failed}" if failed else "all within 3 s and 1.5 GB")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
