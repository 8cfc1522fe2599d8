"""The batch page with OME-Zarr: a zipped store is segmented out of core and its labels come back
as a zipped OME-Zarr store; any mask can be downloaded as one; a hostile zip is refused by name."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from seg.io import open_lazy_image, zip_store
from tests.app.test_batch_page import PAGE, TIMEOUT, _png
from tests.unit.test_batch import synthetic_scene, train_small
from tests.unit.zarr_helpers import write_ome_zarr


@pytest.fixture(scope="module")
def model():
    image, truth = synthetic_scene(seed=0)
    return train_small(image, truth)


def _run(model, files) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["seg.model"] = model
    at = at.run()
    at.file_uploader(key="w_batch_images").set_value(files)
    at = at.run()
    return at


def _labels_of(zip_bytes: bytes, tmp_path: Path) -> np.ndarray:
    """Unzip a downloaded store as a user would and read its label image (an OME-Zarr image)."""
    folder = tmp_path / "downloaded.ome.zarr"
    zipfile.ZipFile(io.BytesIO(zip_bytes)).extractall(folder)
    return open_lazy_image(folder / "labels" / "segmentation").data.compute()[..., 0]


def test_a_zipped_ome_zarr_upload_gives_a_zipped_label_store(model, tmp_path):
    image = synthetic_scene((200, 260), seed=7)[0]
    store = write_ome_zarr(tmp_path / "big.ome.zarr", [image[np.newaxis]], "cyx", version="0.5", chunks=(1, 64, 64))
    at = _run(model, [("big.ome.zarr.zip", zip_store(store), "application/zip")])
    at.button(key="w_batch_run").click()
    at = at.run()
    assert not at.exception
    assert "1 of 1 image done" in at.session_state["batch.summary"]
    stores = at.session_state["batch.zarr"]
    assert list(stores) == ["big_labels.ome.zarr.zip"]
    assert at.download_button(key="w_batch_zarr_0") is not None
    labels_zip = next(iter(stores.values()))
    inner = zipfile.ZipFile(io.BytesIO(labels_zip)).namelist()
    assert "labels/segmentation/zarr.json" in inner  # 0.5 in, 0.5 out
    np.testing.assert_array_equal(_labels_of(labels_zip, tmp_path)[0], model.predict(image))
    rows = at.session_state["batch.outcomes"][0].rows
    counts = np.bincount(model.predict(image).ravel(), minlength=3)
    assert [(r["class"], r["pixels"]) for r in rows] == [("background", counts[1]), ("blob", counts[2])]


def test_masks_of_ordinary_images_can_be_downloaded_as_ome_zarr(model, tmp_path):
    image = synthetic_scene(seed=3)[0]
    at = _run(model, [("cells.png", _png(image), "image/png")])
    at.checkbox(key="w_batch_zarr_masks").check()
    at = at.run()
    at.button(key="w_batch_run").click()
    at = at.run()
    assert not at.exception
    stores = at.session_state["batch.zarr"]
    assert list(stores) == ["cells_mask.ome.zarr.zip"]
    np.testing.assert_array_equal(_labels_of(stores["cells_mask.ome.zarr.zip"], tmp_path)[0], model.predict(image))
    archive = zipfile.ZipFile(io.BytesIO(at.session_state["batch.zip"]))
    assert "cells_mask.ome.zarr.zip" in archive.namelist() and "cells_mask.png" in archive.namelist()


def test_a_hostile_zip_is_refused_by_name_without_traceback(model):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(".zattrs", "{}")
        archive.writestr("../../escape.txt", "x")
    at = _run(model, [("evil.zip", buffer.getvalue(), "application/zip")])
    at.button(key="w_batch_run").click()
    at = at.run()
    assert not at.exception
    assert any("evil.zip: " in text.value and "plain relative names" in text.value for text in at.text)
