"""Hostile files, through the app: refused with a friendly message, no code run, nothing written,
memory bounded, and the app keeps working afterwards.

Model uploads go through the main page's "Model (.segmodel)" uploader and the batch page's
"Model bundle" uploader; images through the main page's image uploader and the batch page.
Everything is driven with Streamlit's AppTest (in process, like the app's own AppTest suite in
``tests/app``), so the real callbacks, ``seg.ui`` code and engine run. Each payload that could
run code tries to create a marker file when unpickled; no marker may ever appear, and no file
may appear in the working directory.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import coins_strokes, draw, errors, new_app, png_bytes, tiff_bytes, upload

BATCH_PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "1_Batch_apply.py")
MB = 2**20


class OpensFile:
    """Unpickling this creates ``path``: a stand-in for arbitrary code execution."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty working directory for the app (relative paths in payloads land here)."""
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def hosted_limits(monkeypatch) -> None:
    """The app's pixel limits lowered to what a public host would set (16 MP per frame, 64 MP per
    image; the defaults in seg/ui/config.py allow 1 G / 2 G since zoom and pan), so that the
    bombs below stay small files."""
    from seg.ui import config

    monkeypatch.setattr(config, "MAX_FRAME_PIXELS", 16_000_000)
    monkeypatch.setattr(config, "MAX_TOTAL_PIXELS", 64_000_000)


def _plain(message: str) -> str:
    """A message as the user reads it: without Markdown escapes and invisible word joiners."""
    return message.replace("\\", "").replace("\u2060", "")


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --------------------------------------------------------------------------- payloads


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, idat: bytes, colour_type: int = 0) -> bytes:
    """A PNG with this IHDR and IDAT, valid checksums, whatever the data holds."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _zeros_png(width: int, height: int, channels: int = 1) -> bytes:
    """An honest decompression bomb: a real PNG of zeros, ~1000x smaller than its pixels."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + width * channels)  # filter byte + pixels
    chunks = [compressor.compress(row) for _ in range(height)]
    chunks.append(compressor.flush())
    return _png(width, height, b"".join(chunks), colour_type={1: 0, 3: 2}[channels])


def _animated_gif() -> bytes:
    frames = [Image.fromarray(np.full((32, 32), 60 * i, np.uint8)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _tiff_declaring_pages(pages: int, side: int) -> bytes:
    """A classic TIFF with ``pages`` IFDs of side x side uint8 pixels all pointing at the same
    8 bytes: huge on paper, ~130 bytes per page on disk."""
    out = bytearray(b"II*\x00" + struct.pack("<I", 16) + bytes(8))
    ifd = 2 + 9 * 12 + 4
    for index in range(pages):
        start = 16 + index * ifd
        entries = [
            (256, 4, 1, side),
            (257, 4, 1, side),
            (258, 3, 1, 8),
            (259, 3, 1, 1),
            (262, 3, 1, 1),
            (273, 4, 1, 8),
            (277, 3, 1, 1),
            (278, 4, 1, side),
            (279, 4, 1, side * side),
        ]
        out += struct.pack("<H", len(entries))
        for entry in entries:
            out += struct.pack("<HHII", *entry)
        out += struct.pack("<I", start + ifd if index < pages - 1 else 0)
    return bytes(out)


def _small_model():
    from seg.features import FeatureSettings
    from seg.forest import ForestSettings
    from seg.model import train

    rng = np.random.default_rng(0)
    image = rng.normal(0.3, 0.05, (32, 32)).astype(np.float32)
    image[:, 16:] += 0.5
    labels = np.zeros((32, 32), np.uint8)
    labels[2:6, 2:10], labels[20:26, 20:30] = 1, 2
    return train(
        image,
        labels,
        FeatureSettings(feature_set="basic", sigma_min=1.0, sigma_max=4.0),
        ["background", "cell"],
        forest=ForestSettings(
            n_estimators=4, max_depth=6, max_samples=None, class_weight=None, random_state=0, n_jobs=1
        ),
    )


@pytest.fixture(scope="module")
def bundle() -> bytes:
    from seg.persist import model_to_bytes

    return model_to_bytes(_small_model())


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _raw_zip(entries: list[tuple[str, bytes, int]], *, declared: dict[str, int] | None = None) -> bytes:
    """A ZIP written by hand: (name, stored bytes, method) entries, CRCs of the *inflated* data
    computed by the caller's choice (``declared`` sizes may lie)."""
    out, central = io.BytesIO(), []
    for name, payload, method in entries:
        raw_name = name.encode()
        if method == zipfile.ZIP_DEFLATED:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            stored, size, crc = compressor.compress(payload) + compressor.flush(), len(payload), zlib.crc32(payload)
        else:
            stored, size, crc = payload, len(payload), zlib.crc32(payload)
        size = (declared or {}).get(name, size)
        offset = out.tell()
        out.write(
            struct.pack(
                "<4s5H3L2H",
                b"PK\x03\x04",
                20,
                0,
                method,
                0,
                0x21,
                crc & 0xFFFFFFFF,
                len(stored),
                size,
                len(raw_name),
                0,
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
                0,
                method,
                0,
                0x21,
                crc & 0xFFFFFFFF,
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
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), out.tell(), 0)
    return out.getvalue() + directory + end


def _deflated_zeros_entry(name: str, n_mib: int) -> bytes:
    """A one-member ZIP whose member inflates to ``n_mib`` MiB of zeros (built in milliseconds)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = block * n_mib + compressor.flush()
    crc = 0
    zero = bytes(1 << 20)
    for _ in range(n_mib):
        crc = zlib.crc32(zero, crc)
    raw_name = name.encode()
    size = n_mib << 20
    local = (
        struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(stream), size & 0xFFFFFFFF, len(raw_name), 0
        )
        + raw_name
        + stream
    )
    central = (
        struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            8,
            0,
            0x21,
            crc,
            len(stream),
            size & 0xFFFFFFFF,
            len(raw_name),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        + raw_name
    )
    return local + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local), 0)


def _npy_object_array(marker: str) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([OpensFile(marker)], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _model_payloads(bundle: bytes, marker: str) -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """name -> (file bytes, words the refusal must contain)."""
    import joblib

    members = _members(bundle)
    manifest = json.loads(members["model.json"])
    joblib_file = io.BytesIO()
    joblib.dump({"model": OpensFile(marker)}, joblib_file, compress=3)
    foreign_dtype = {**manifest, "arrays": {**manifest["arrays"], "value": {"dtype": "object", "shape": [1]}}}
    foreign_json = {**manifest, "class_names": [{"__class__": "os.system", "args": ["touch " + marker]}, "cell"]}
    rebuilt = lambda changed: _raw_zip([(n, changed.get(n, d), zipfile.ZIP_DEFLATED) for n, d in members.items()])  # noqa: E731
    return {
        "pickle": (pickle.dumps(OpensFile(marker)), ("pickle",)),
        "pickle protocol 0": (pickle.dumps(OpensFile(marker), protocol=0), ("pickle",)),
        "joblib": (joblib_file.getvalue(), ("pickle",)),
        "object array in the bundle": (rebuilt({"arrays/value.npy": _npy_object_array(marker)}), ("value",)),
        "object dtype declared": (rebuilt({"model.json": json.dumps(foreign_dtype).encode()}), ("dtype",)),
        "foreign JSON types": (rebuilt({"model.json": json.dumps(foreign_json).encode()}), ("class_names",)),
        "zip bomb": (_deflated_zeros_entry("model.json", 1024), ("bytes",)),
        "zip with ../ path": (
            _raw_zip([*[(n, d, 8) for n, d in members.items()], ("../../pwned.txt", b"x", 8)]),
            ("unexpected", "../../pwned.txt"),
        ),
        "zip with absolute path": (
            _raw_zip([*[(n, d, 8) for n, d in members.items()], ("/tmp/pwned.txt", b"x", 8)]),
            ("unexpected",),
        ),
        "truncated bundle": (bundle[: len(bundle) // 2], ("truncated",)),
        "one byte": (b"P", ("too short",)),
        "not a bundle": (b"GIF89a" + bytes(100), ("zip",)),
    }


# --------------------------------------------------------------------------- model uploads


def test_hostile_model_uploads_on_the_main_page_are_refused_and_nothing_runs(bundle, workdir, tmp_path):
    marker = str(tmp_path / "code-ran")
    at = new_app()
    at.run()
    draw(at, coins_strokes(at))
    model = at.session_state["seg.model"]
    assert model is not None
    for name, (data, words) in _model_payloads(bundle, marker).items():
        upload(at, "w_model_upload", f"{name}.segmodel", data)
        shown = errors(at)
        assert len(shown) == 1, (name, shown)
        plain = _plain(shown[0])  # the message is Markdown-escaped
        for word in words:
            assert word.lower() in plain.lower(), (name, plain)
        assert "Traceback" not in plain and not at.exception
        assert at.session_state["seg.model"] is model, name  # the session's model is kept
        assert at.session_state["seg.model_source"] == "trained", name
        assert not os.path.exists(marker), f"{name}: unpickling ran code"
    assert _files_under(tmp_path / "work") == ["deeper"], "a file was written next to the app"
    # The app keeps working: a new stroke still retrains and segments.
    version = at.session_state["seg.model_version"]
    draw(at, coins_strokes(at)[:3])
    assert at.session_state["seg.model_version"] == version + 1 and at.session_state["seg.prediction"] is not None


@pytest.mark.slow
def test_a_model_file_over_200_mb_is_refused_on_the_main_page(workdir):
    at = new_app()
    at.run()
    upload(at, "w_model_upload", "huge.segmodel", b"PK\x03\x04" + bytes(200_000_001))
    assert len(errors(at)) == 1 and "above the limit" in _plain(errors(at)[0])
    assert at.session_state["seg.model"] is None and not at.exception


def test_hostile_model_uploads_on_the_batch_page_are_refused_and_nothing_runs(bundle, workdir, tmp_path):
    from streamlit.testing.v1 import AppTest

    marker = str(tmp_path / "code-ran")
    at = AppTest.from_file(BATCH_PAGE, default_timeout=60).run()
    at.file_uploader(key="w_batch_images").set_value([("a.png", png_bytes(np.zeros((16, 16), np.uint8)), "image/png")])
    at.run()
    for name, (data, words) in _model_payloads(bundle, marker).items():
        at.file_uploader(key="w_batch_model_upload").set_value((f"{name}.segmodel", data, "application/octet-stream"))
        at.run()
        assert not at.exception, (name, [e.message for e in at.exception])
        assert [e.value for e in at.error] == ["This model file cannot be used."], name
        reason = " ".join(t.value for t in at.text)
        for word in words:
            assert word.lower() in reason.lower(), (name, reason)
        assert at.button(key="w_batch_run").disabled, name
        assert not os.path.exists(marker), f"{name}: unpickling ran code"
    assert _files_under(tmp_path / "work") == ["deeper"]
    # A good bundle afterwards is accepted and the batch runs.
    at.file_uploader(key="w_batch_model_upload").set_value(("good.segmodel", bundle, "application/octet-stream"))
    at.run()
    assert not at.error and not at.button(key="w_batch_run").disabled
    at.button(key="w_batch_run").click().run()
    assert "1 of 1 image done" in at.session_state["batch.summary"]


# --------------------------------------------------------------------------- image uploads

_IMAGE_CASES = {
    # name: (file name, bytes factory, words the refusal must contain)
    "one byte": ("tiny.png", lambda: b"\x89", ("too short",)),
    "empty": ("empty.png", lambda: b"", ("empty",)),
    "70000 x 70000 declared": (
        "huge.png",
        lambda: _png(70_000, 70_000, zlib.compress(bytes(1000))),
        ("megapixels per frame exceed",),
    ),
    "lying header": ("liar.png", lambda: _png(4000, 4000, zlib.compress(bytes(5000))), ("corrupt", "truncated")),
    "bomb over the frame limit": ("bomb.png", lambda: _zeros_png(9000, 9000), ("megapixels per frame exceed",)),
    "stack over the total limit": (
        "stack.tif",
        lambda: _tiff_declaring_pages(300, 512),
        ("more than this app opens", "python -m seg apply"),
    ),
    "animated GIF named .png": ("animation.png", _animated_gif, ("GIF", "multi-page TIFF")),
    "10 000 pages of 512 x 512": (
        "pages.tif",
        lambda: _tiff_declaring_pages(10_000, 512),
        ("more than this app opens",),
    ),
    "10 001 pages": ("pages.tif", lambda: _tiff_declaring_pages(10_001, 4), ("too many frames", "python -m seg apply")),
    "a model bundle": ("model.png", lambda: _raw_zip([("model.json", b"{}", 8)]), ("ZIP",)),
}


@pytest.mark.parametrize("case", list(_IMAGE_CASES))
def test_hostile_images_on_the_main_page_are_refused_within_bounded_memory(case, workdir, hosted_limits):
    name, make, words = _IMAGE_CASES[case]
    data = make()
    at = new_app()
    at.run()
    digest = at.session_state["seg.image"].digest
    tracemalloc.start()
    try:
        upload(at, "w_image_upload", name, data, "image/png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    shown = errors(at)
    assert len(shown) == 1, shown
    plain = _plain(shown[0])
    for word in words:
        assert word.lower() in plain.lower(), plain
    assert "max_" not in plain  # no advice only a Python caller can follow
    assert repr(name) in plain  # the refusal names the uploaded file
    assert not at.exception
    assert at.session_state["seg.image"].digest == digest  # the previous image stays
    assert peak < 64 * MB + 3 * len(data), f"{peak / MB:.0f} MB traced to refuse a {len(data) / MB:.1f} MB file"
    # The app keeps working.
    draw(at, coins_strokes(at))
    assert at.session_state["seg.prediction"] is not None


def test_a_file_type_the_uploader_does_not_list_is_refused_by_streamlit_itself(workdir):
    """The browser's file picker offers only the listed types (and refuses others dropped on
    it); Streamlit's server checks the extension again, so a .gif sent by a hand-made client
    never reaches the app's code: Streamlit stops that run with its own message."""
    at = new_app()
    at.run()
    at.file_uploader(key="w_image_upload").set_value(("animation.gif", _animated_gif(), "image/gif"))
    at.run()
    # "Invalid file extension: `.gif`. Allowed: [...]" (less with client.showErrorDetails set).
    assert len(at.exception) == 1
    assert "coins" in at.session_state["seg.image"].name


def test_a_stack_of_10_000_small_pages_is_handled(workdir):
    stack = np.zeros((10_000, 8, 8), np.uint8)
    stack[:, 2:6, 2:6] = 200
    at = new_app()
    at.run()
    tracemalloc.start()
    try:
        upload(at, "w_image_upload", "pages.tif", tiff_bytes(stack), "image/tiff")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not at.exception and errors(at) == []
    assert at.session_state["seg.image"].shape == (10_000, 8, 8)
    assert at.slider(key="w_frame").max == 9_999
    assert peak < 256 * MB, peak / MB


def test_a_frame_over_the_per_frame_limit_is_refused_before_it_is_decoded(workdir, hosted_limits):
    """A 64-megapixel RGB PNG of zeros is 200 KB on disk and 192 MB decoded: the app's limit of
    16 MP per frame must refuse it from its header, as the total limit does."""
    data = _zeros_png(8000, 8000, channels=3)
    at = new_app()
    at.run()
    tracemalloc.start()
    try:
        upload(at, "w_image_upload", "bomb.png", data, "image/png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert any("megapixels per frame" in _plain(e) for e in errors(at))
    assert peak < 64 * MB, f"{peak / MB:.0f} MB traced to refuse a {len(data) / 1e3:.0f} KB file"


def test_hostile_images_in_a_batch_are_reported_and_the_rest_is_segmented(bundle, workdir):
    from streamlit.testing.v1 import AppTest

    good = png_bytes(np.clip(np.random.default_rng(0).normal(100, 20, (40, 40)), 0, 255).astype(np.uint8))
    files = [("good.png", good)] + [
        (name, make())
        for name, make, _ in (
            _IMAGE_CASES[c] for c in ("one byte", "70000 x 70000 declared", "animated GIF named .png", "lying header")
        )
    ]
    at = AppTest.from_file(BATCH_PAGE, default_timeout=120).run()
    at.file_uploader(key="w_batch_model_upload").set_value(("m.segmodel", bundle, "application/octet-stream"))
    at.run()
    at.file_uploader(key="w_batch_images").set_value([(n, d, "image/png") for n, d in files])
    at.run()
    at.button(key="w_batch_run").click().run()
    assert not at.exception
    assert "1 of 5 images done" in at.session_state["batch.summary"]
    report = " ".join(t.value for t in at.text)
    for name, _ in files[1:]:
        assert name in report, (name, report)
    assert "Traceback" not in report
