"""Issue 15: no upload can stall the server. Each hostile file is built here (small, with the
limit lowered where the mechanism allows) and must end in one SegError subclass with a clear
message, *before* the work the limit bounds, or in a clean result. The same builders make the
full-size files in ``bench/hostile.py``, which measures time and memory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from seg.errors import ModelFileError, TrainingError
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
