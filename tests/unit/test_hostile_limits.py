"""Issue 15: no upload can stall the server. Each hostile file is built here (small, with the
limit lowered where the mechanism allows) and must end in one SegError subclass with a clear
message, *before* the work the limit bounds, or in a clean result. The same builders make the
full-size files in ``bench/hostile.py``, which measures time and memory.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from seg.errors import AnnotationError, ImageError, ModelFileError, TrainingError
from seg.forest import MAX_CLASSES, MAX_TREE_DEPTH, MAX_TREES
from seg.images import prescan, read_image
from seg.persist import archive as archive_module
from seg.persist import describe_model, load_model, model_to_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import hostile  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return hostile.tiny_model()


@pytest.fixture(scope="module")
def bundle(model) -> bytes:
    return model_to_bytes(model)


# --------------------------------------------------------------------------------- 1. ZIP directory


def _zipfile_must_not_run(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("zipfile parsed the central directory before the limit was checked")

    monkeypatch.setattr(archive_module.zipfile, "ZipFile", refuse)


@pytest.mark.parametrize("entries", [300, 70_000])  # plain EOCD count, and ZIP64 record count
def test_a_central_directory_flood_is_refused_before_zipfile_parses_it(monkeypatch, entries):
    data = hostile.zip_directory_flood(entries)
    _zipfile_must_not_run(monkeypatch)
    with pytest.raises(ModelFileError, match=f"lists {entries:,} members, more than any seg bundle"):
        load_model(data)


def test_a_huge_central_directory_of_few_entries_is_refused(monkeypatch):
    data = bytearray(hostile.zip_directory_flood(2))
    data[-10:-6] = (50_000_000).to_bytes(4, "little")  # directory size field of the EOCD record
    _zipfile_must_not_run(monkeypatch)
    with pytest.raises(ModelFileError, match="ZIP directory is 50,000,000 bytes"):
        load_model(bytes(data))


def test_a_zip_without_end_record_is_refused_as_damaged():
    with pytest.raises(ModelFileError, match="end-of-central-directory record is missing"):
        load_model(b"PK\x03\x04" + bytes(100))


def test_a_real_bundle_passes_the_directory_check(bundle):
    archive_module.check_central_directory(bundle)
    commented = bytearray(bundle)
    commented[-2:] = (5).to_bytes(2, "little")  # a ZIP comment: the record is found by search
    archive_module.check_central_directory(bytes(commented) + b"hello")


# --------------------------------------------------------------------------------- 4. forest size


def test_a_chain_tree_deeper_than_the_settings_is_refused(model):
    data = hostile.bundle_with_forest(model, hostile.chain_forest(40, model.forest.n_features))
    with pytest.raises(ModelFileError, match="40 levels deep but the settings say max_depth = 6"):
        load_model(data)


def test_a_chain_tree_deeper_than_any_tree_is_refused_before_prediction(model):
    data = hostile.bundle_with_forest(model, hostile.chain_forest(2000, model.forest.n_features))
    with pytest.raises(ModelFileError, match=f"2,000 levels deep, more than {MAX_TREE_DEPTH}"):
        load_model(data)


def test_more_trees_than_the_settings_say_are_refused(model):
    data = hostile.bundle_with_forest(model, hostile.leaf_forest(17, model.forest.n_features))
    with pytest.raises(ModelFileError, match="17 trees but its settings say n_estimators = 16"):
        load_model(data)
    data = hostile.bundle_with_forest(model, hostile.leaf_forest(MAX_TREES + 1, model.forest.n_features))
    with pytest.raises(ModelFileError, match=f"{MAX_TREES + 1:,} trees, more than {MAX_TREES}"):
        load_model(data)


def test_a_tree_with_more_nodes_than_its_depth_allows_is_refused(model):
    arrays = hostile.chain_forest(200, model.forest.n_features)
    # Re-root the chain as one tree whose nodes exceed 2**7 - 1 while claiming depth 6:
    # the node count is checked from the roots before any depth is known.
    from seg.forest import Forest, ForestSettings

    forest = Forest(arrays)
    with pytest.raises(ModelFileError, match="a tree has 401 nodes, more than a tree of depth 6 can have"):
        forest.check_within(ForestSettings())


def test_describe_model_reports_the_forest_the_bundle_holds(model, bundle):
    info = describe_model(load_model(bundle))
    assert (info["trees"], info["depth"], info["nodes"]) == (
        model.forest.n_trees,
        model.forest.depth,
        model.forest.n_nodes,
    )
    assert 1 <= info["depth"] <= 6


# --------------------------------------------------------------------------------- 5. classes


def test_a_bundle_with_more_classes_than_the_limit_is_refused(bundle):
    data = hostile.many_classes(bundle, MAX_CLASSES + 1)
    with pytest.raises(ModelFileError, match=f"has {MAX_CLASSES + 1} entries; expected 1..{MAX_CLASSES}"):
        load_model(data)


def test_training_more_classes_than_the_limit_is_refused():
    from seg.model import train

    image = np.zeros((8, 8), np.uint8)
    labels = np.zeros((8, 8), np.uint8)
    labels[0, :2] = [1, 2]
    with pytest.raises(TrainingError, match=f"{MAX_CLASSES + 1} classes are more than a model may have"):
        train(image, labels, class_names=[f"c{i}" for i in range(MAX_CLASSES + 1)])


# --------------------------------------------------------------------------------- 8., 9. model.json


def test_a_lone_surrogate_class_name_is_refused_at_load(bundle, model):
    data = hostile.edit_manifest(bundle, lambda text: text.replace('"a"', '"\\ud800"', 1))
    with pytest.raises(ModelFileError, match="not valid Unicode"):
        load_model(data)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 400 + ".0"])
def test_a_number_beyond_float_range_in_model_json_is_refused(bundle, number):
    def edit(text: str) -> str:
        manifest = json.loads(text)
        manifest["training"]["huge"] = "HUGE"
        return json.dumps(manifest).replace('"HUGE"', number)

    with pytest.raises(ModelFileError, match="beyond the float range"):
        load_model(hostile.edit_manifest(bundle, edit))


def test_a_surrogate_class_name_cannot_be_trained():
    from seg.model import train

    labels = np.zeros((8, 8), np.uint8)
    labels[0, :2] = [1, 2]
    with pytest.raises(TrainingError, match="not valid Unicode"):
        train(np.zeros((8, 8), np.uint8), labels, class_names=["ok", "\ud800"])


# --------------------------------------------------------------------------------- 2., 3. images


def _decoders_must_not_run(monkeypatch):
    from seg.images import pillow, tiff

    def refuse(*args, **kwargs):
        raise AssertionError("a decoder ran before the structure was checked")

    monkeypatch.setattr(pillow, "read_pil", refuse)
    monkeypatch.setattr(tiff, "read_tiff", refuse)
    from seg.images import read as read_module

    monkeypatch.setattr(read_module, "read_pil", refuse)
    monkeypatch.setattr(read_module, "read_tiff", refuse)


def test_a_png_with_thousands_of_ancillary_chunks_is_refused_before_pillow(monkeypatch):
    data = hostile.png_chunk_flood(prescan.MAX_PNG_ANCILLARY_CHUNKS + 1)
    _decoders_must_not_run(monkeypatch)
    with pytest.raises(ImageError, match=f"more than {prescan.MAX_PNG_ANCILLARY_CHUNKS:,} metadata"):
        read_image(data)


def test_a_png_with_too_many_chunks_of_any_kind_is_refused(monkeypatch):
    monkeypatch.setattr(prescan, "MAX_PNG_CHUNKS", 50)
    with pytest.raises(ImageError, match="more than 50 chunks"):
        read_image(hostile.png_chunk_flood(60, name=b"IDAT"))


def test_a_png_with_a_few_ancillary_chunks_reads():
    assert read_image(hostile.png_chunk_flood(20)).shape == (1, 16, 16, 1)


def test_too_many_png_metadata_bytes_are_refused(monkeypatch):
    monkeypatch.setattr(prescan, "MAX_PNG_ANCILLARY_BYTES", 100)
    png = hostile.png_bytes(np.zeros((8, 8), np.uint8))
    at = png.index(b"IDAT") - 4
    data = png[:at] + hostile._png_chunk(b"tEXt", b"comment\x00" + b"x" * 200) + png[at:]
    with pytest.raises(ImageError, match="more than 100 bytes of metadata"):
        read_image(data)


def test_a_progressive_jpeg_scan_bomb_is_refused_before_decoding(monkeypatch):
    data = hostile.jpeg_scan_bomb(64, prescan.MAX_JPEG_SCANS + 5)
    _decoders_must_not_run(monkeypatch)
    with pytest.raises(ImageError, match=f"more than {prescan.MAX_JPEG_SCANS} scans"):
        read_image(data)


def test_a_jpeg_of_many_tiny_segments_is_refused(monkeypatch):
    monkeypatch.setattr(prescan, "MAX_JPEG_SEGMENTS", 30)
    data = hostile.jpeg_bytes(np.zeros((16, 16), np.uint8))
    data = data[:2] + b"\xff\xfe\x00\x02" * 40 + data[2:]  # empty COM segments
    with pytest.raises(ImageError, match="more than 30 marker segments"):
        read_image(data)


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"subsampling": 2, "quality": 5}])
def test_flat_and_progressive_jpegs_are_not_mistaken_for_truncated_ones(options):
    for image in (np.full((600, 800), 200, np.uint8), np.full((600, 800, 3), 10, np.uint8)):
        assert read_image(hostile.jpeg_bytes(image, **options)).shape[1:3] == (600, 800)


def test_a_jpeg_declaring_more_pixels_than_its_data_holds_is_refused():
    with pytest.raises(ImageError, match="declares 4000×4000 pixels but holds only .* bytes of image data"):
        read_image(hostile.jpeg_lying_size(64, 4000))


def test_a_tiff_whose_pages_hold_too_many_tags_is_refused_before_tifffile(monkeypatch):
    monkeypatch.setattr(prescan, "MAX_TIFF_TAGS", 1000)
    data = hostile.tiff_tag_flood(20, 100)
    _decoders_must_not_run(monkeypatch)
    with pytest.raises(ImageError, match="pages hold more than 1,000 tags"):
        read_image(data)


def test_a_tiff_with_more_pages_than_frames_allow_is_refused_before_tifffile(monkeypatch):
    data = hostile.tiff_tag_flood(41, 0)
    _decoders_must_not_run(monkeypatch)
    with pytest.raises(ImageError, match="more than 40 pages"):
        read_image(data, max_frames=10)


def test_a_tiff_whose_page_chain_loops_is_walked_once():
    data = bytearray(hostile.tiff_tag_flood(2, 0))
    data[-4:] = struct.pack("<L", 72)  # the last page's "next page" points back at the first
    assert read_image(bytes(data)).shape[1:3] == (8, 8)  # tifffile, too, stops at the loop


def test_a_big_run_length_bmp_is_refused(monkeypatch):
    monkeypatch.setattr(prescan, "MAX_BMP_RLE_BYTES", 10_000)
    with pytest.raises(ImageError, match="run-length-compressed BMP with 20,202 bytes"):
        read_image(hostile.bmp_rle8(100))
    monkeypatch.setattr(prescan, "MAX_BMP_RLE_BYTES", 30_000)
    assert read_image(hostile.bmp_rle8(100)).shape == (1, 100, 100, 1)


def test_a_fifo_or_device_is_not_read_as_an_image(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="named pipe"):
        read_image(fifo)
    with pytest.raises(ImageError, match="a device"):
        read_image("/dev/zero")


def test_a_finite_float_image_of_extreme_range_gets_a_range_message_not_nan():
    from seg.images import Normalization, normalize

    frame = np.zeros((16, 16), np.float32)
    frame[0, 0], frame[1, 1] = -3e38, 3e38
    with pytest.raises(ImageError, match=r"range from -3e\+38 to 3e\+38, too wide to stretch"):
        normalize(frame, Normalization())


# --------------------------------------------------------------------------------- 6. painting


def test_painting_is_budgeted_in_pixels_not_rows(monkeypatch):
    from seg.strokes import Annotations, raster

    monkeypatch.setattr(raster, "MAX_RASTER_PIXELS", 10 * 100 * 100)
    annotations = Annotations.from_json(hostile.annotations_rect_flood(11, 100, 100))
    with pytest.raises(AnnotationError, match="paint more than 100,000 pixels"):
        annotations.label_stack()
    # ten full frames fit the budget, and the last rectangle wins
    labels = Annotations.from_json(hostile.annotations_rect_flood(10, 100, 100)).label_stack()
    assert (labels == 2).all()


def test_overlapping_brush_strokes_of_one_class_count_once():
    from seg.strokes import RasterBudget, Stroke, rasterize

    dot = Stroke("path", 1, [[25.0, 25.0]], 20.0, 0)
    once = rasterize([dot], (50, 50))
    budget = RasterBudget(pixels=int(once.sum()) + 10)
    # 200 copies of one class are merged before painting: the pixels are spent once
    assert np.array_equal(rasterize([dot] * 200, (50, 50), budget=budget), once)
    assert budget.pixels == 10


def test_the_budget_is_shared_by_all_frames_of_a_file(monkeypatch):
    from seg.strokes import Annotations, raster

    monkeypatch.setattr(raster, "MAX_RASTER_PIXELS", 3 * 20 * 20)
    document = json.loads(hostile.annotations_rect_flood(4, 20, 20))
    document["image_shape"] = [4, 20, 20]
    for frame, stroke in enumerate(document["strokes"]):
        stroke["frame"] = frame
    with pytest.raises(AnnotationError, match="paint more than 1,200 pixels"):
        Annotations.from_json(json.dumps(document)).label_stack()


# --------------------------------------------------------------------------------- 7. JSON, CLI


def test_a_json_flood_of_empty_lists_is_refused_before_parsing(monkeypatch):
    from seg.strokes import Annotations, checks

    def refuse(*args, **kwargs):
        raise AssertionError("json parsed the text before its structure was counted")

    monkeypatch.setattr(checks.json, "loads", refuse)
    with pytest.raises(AnnotationError, match=r"holds 3,333,333 JSON arrays and objects, more than 2,500,000"):
        Annotations.from_json(hostile.json_empty_lists(10_000_000))


def test_a_json_flood_of_numbers_is_refused_before_parsing():
    from seg.strokes import MAX_JSON_ITEMS, Annotations

    with pytest.raises(AnnotationError, match=f"more than {MAX_JSON_ITEMS:,}"):
        Annotations.from_json(b"[" + b"0," * (MAX_JSON_ITEMS + 1) + b"0]")


@pytest.fixture
def train_files(tmp_path):
    from PIL import Image

    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    return tmp_path, image


def test_seg_train_refuses_a_fifo_as_annotations_without_blocking(train_files, capsys):
    from seg.cli import main

    folder, image = train_files
    fifo = folder / "annotations.json"
    os.mkfifo(fifo)  # nobody writes: opening it for reading would block forever
    assert main(["train", str(image), str(fifo), "--out", str(folder / "m.segmodel")]) == 1
    assert "named pipe (FIFO), not a regular file" in capsys.readouterr().err


def test_seg_train_refuses_a_device_as_annotations_without_reading_it(train_files, capsys):
    from seg.cli import main

    folder, image = train_files
    assert main(["train", str(image), "/dev/zero", "--out", str(folder / "m.segmodel")]) == 1
    assert "it is a device, not a regular file" in capsys.readouterr().err


def test_seg_train_reads_at_most_the_json_limit(train_files, capsys, monkeypatch):
    from seg.cli import main
    from seg.strokes import checks

    folder, image = train_files
    big = folder / "big.json"
    big.write_bytes(b" " * 5000)
    monkeypatch.setattr("seg.strokes.MAX_JSON_BYTES", 1000)
    monkeypatch.setattr(checks, "MAX_JSON_BYTES", 1000)
    assert main(["train", str(image), str(big), "--out", str(folder / "m.segmodel")]) == 1
    assert "5,000 bytes, above the limit of 1,000 bytes" in capsys.readouterr().err


def test_seg_apply_refuses_a_fifo_as_the_model_without_blocking(train_files, capsys):
    from seg.cli import main

    folder, image = train_files
    fifo = folder / "model.segmodel"
    os.mkfifo(fifo)
    assert main(["apply", str(fifo), str(image), "--out", str(folder / "out"), "-q"]) == 1
    assert "named pipe (FIFO), not a regular file" in capsys.readouterr().err


# --------------------------------------------------------------------------------- 8. names


def test_a_lone_surrogate_class_name_in_an_annotation_file_is_refused():
    from seg.strokes import Annotations

    with pytest.raises(AnnotationError, match="not valid Unicode text"):
        Annotations.from_json(hostile.annotations_with_class_name('"\\ud800"'))


def test_seg_train_prints_class_names_without_terminal_escapes(tmp_path, capsys):
    from PIL import Image

    from seg.cli import main

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8)).save(tmp_path / "i.png")
    text = hostile.annotations_with_class_name('"\\u001b[31mred\\u001b]0;owned\\u0007"')
    document = json.loads(text)
    document["image_shape"] = [1, 16, 16]
    document["strokes"].append({"kind": "path", "label": 2, "frame": 0, "width": 2, "points": [[9, 9], [12, 12]]})
    (tmp_path / "a.json").write_text(json.dumps(document))
    out_file = str(tmp_path / "m.segmodel")
    assert main(["train", str(tmp_path / "i.png"), str(tmp_path / "a.json"), "--out", out_file]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "[31mred" in out


def test_a_progressive_jpeg_is_bounded_by_scans_times_pixels(monkeypatch):
    data = hostile.jpeg_scan_bomb(64, 10)
    monkeypatch.setattr(prescan, "MAX_JPEG_SCAN_PIXELS", 64 * 64 * 12)
    with pytest.raises(ImageError, match=r"13 or more scans of 64×64 pixels"):
        read_image(data)
    monkeypatch.setattr(prescan, "MAX_JPEG_SCAN_PIXELS", 64 * 64 * 40)
    assert read_image(data).shape == (1, 64, 64, 1)


def test_a_zipped_store_directory_flood_is_refused_before_zipfile_parses_it(monkeypatch, tmp_path):
    from seg.errors import OmeZarrError
    from seg.io import zipped

    monkeypatch.setattr(zipped, "MAX_ZIP_MEMBERS", 100)
    path = tmp_path / "store.zip"
    path.write_bytes(hostile.zip_directory_flood(70_000))

    def refuse(*args, **kwargs):
        raise AssertionError("zipfile parsed the central directory before the limit was checked")

    monkeypatch.setattr(zipped.zipfile, "ZipFile", refuse)
    with pytest.raises(OmeZarrError, match="lists 70,000 members"):
        zipped.check_zip_store(path)
