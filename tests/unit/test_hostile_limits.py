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

from seg.errors import ImageError, ModelFileError, TrainingError
from seg.images import prescan, read_image
from seg.forest import MAX_CLASSES, MAX_TREE_DEPTH, MAX_TREES
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
        model.forest.n_trees, model.forest.depth, model.forest.n_nodes)
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
