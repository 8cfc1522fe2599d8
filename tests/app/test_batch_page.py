"""The batch page (pages/1_Batch_apply.py) driven by Streamlit's AppTest.

Uploads go through AppTest's own ``file_uploader.set_value`` (supported by streamlit 1.67);
the model comes from session state (``seg.model``, as the main page leaves it) or an uploaded
bundle.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.unit.test_batch import synthetic_scene, train_small

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "1_Batch_apply.py")
TIMEOUT = 60


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model():
    image, truth = synthetic_scene(seed=0)
    return train_small(image, truth)


def _page(model=None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if model is not None:
        at.session_state["seg.model"] = model
    return at.run()


def _upload_images(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    uploader = at.file_uploader(key="w_batch_images")
    uploader.set_value([(name, data, "image/png") for name, data in files])
    return at.run()


def test_without_a_model_the_page_asks_for_one():
    at = _page()
    assert not at.exception
    assert any("Upload a model bundle" in info.value for info in at.info)
    assert at.button(key="w_batch_run").disabled


def test_batch_with_the_session_model_gives_a_zip_a_gallery_and_reports_a_bad_file(model):
    at = _page(model)
    assert at.radio(key="w_batch_model_choice").value == "Model trained in this session"
    first, second = synthetic_scene(seed=1)[0], synthetic_scene(seed=2)[0]
    at = _upload_images(
        at,
        [
            ("first.png", _png(first)),
            ("../second.png", _png(second)),
            ("broken *evil*.png", b"\x89PNG\r\n\x1a\nnot a png"),
        ],
    )
    assert at.button(key="w_batch_run").label == "Segment 3 images"
    at.button(key="w_batch_run").click()
    at = at.run()
    assert not at.exception
    assert "2 of 3 images done" in at.session_state["batch.summary"]
    # the bad file is named, as plain text (not markdown), and the others finished
    assert any("broken *evil*.png: " in text.value for text in at.text)
    assert at.download_button(key="w_batch_zip") is not None
    archive = zipfile.ZipFile(io.BytesIO(at.session_state["batch.zip"]))
    assert sorted(archive.namelist()) == ["first_mask.png", "measurements.csv", "second_mask.png"]
    mask = np.asarray(Image.open(io.BytesIO(archive.read("first_mask.png"))))
    np.testing.assert_array_equal(mask, model.predict(first))
    rows = list(csv.DictReader(io.StringIO(archive.read("measurements.csv").decode())))
    assert [(r["image"], r["class"]) for r in rows] == [
        ("first", "background"),
        ("first", "blob"),
        ("second", "background"),
        ("second", "blob"),
    ]
    assert len(at.session_state["batch.thumbnails"]) == 2
    assert max(at.session_state["batch.thumbnails"][0][1].shape[:2]) <= 160
    assert len(at.dataframe) == 1


def test_an_uploaded_bundle_and_a_stack_give_a_chart_over_frames(model, tmp_path):
    import tifffile

    from seg.persist import model_to_bytes

    at = _page()
    at.file_uploader(key="w_batch_model_upload").set_value(
        ("blobs.segmodel", model_to_bytes(model), "application/octet-stream")
    )
    at = at.run()
    assert not at.error
    stack = np.stack([synthetic_scene(seed=s)[0] for s in (3, 4, 5)])
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, stack, photometric="minisblack")
    at.file_uploader(key="w_batch_images").set_value([("stack.tif", buffer.getvalue(), "image/tiff")])
    at = at.run()
    at.button(key="w_batch_run").click()
    at = at.run()
    assert not at.exception
    assert "1 of 1 image done" in at.session_state["batch.summary"]
    assert list(at.session_state["batch.stacks"]) == ["stack"]
    assert at.selectbox(key="w_batch_stack").value == "stack"
    archive = zipfile.ZipFile(io.BytesIO(at.session_state["batch.zip"]))
    assert sorted(archive.namelist()) == ["measurements.csv", "stack_mask.tif"]


def test_a_pickle_uploaded_as_model_is_refused_without_traceback():
    import pickle

    at = _page()
    at.file_uploader(key="w_batch_model_upload").set_value(
        ("model.segmodel", pickle.dumps({"not": "a model"}), "application/octet-stream")
    )
    at = at.run()
    assert not at.exception
    assert at.error and "cannot be used" in at.error[0].value
    assert at.button(key="w_batch_run").disabled
