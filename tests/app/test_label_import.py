"""Importing an existing label/mask image as scribbles in the sidebar (AppTest)."""

from __future__ import annotations

import numpy as np

from tests.app.conftest import errors, png_bytes, upload


def coins_mask() -> np.ndarray:
    """(303, 384) uint8 partial mask of the coins sample: 0 unlabelled, 1 background, 2 coin."""
    mask = np.zeros((303, 384), np.uint8)
    mask[2:12, 10:300] = 1  # background margin along the top
    mask[150:165, 10:300] = 1  # background between the coin rows
    mask[186:200, 190:230] = 2  # inside three coins
    mask[116:130, 190:220] = 2
    mask[112:124, 255:285] = 2
    return mask


def test_a_mask_trains_the_model_without_strokes(app):
    assert app.session_state["seg.model"] is None
    mask = coins_mask()
    counts = np.bincount(mask.ravel())
    upload(app, "w_mask_upload", "labels.png", png_bytes(mask), "image/png")
    labels = [s.label for s in app.selectbox if s.key and s.key.startswith("w_mask_value_")]
    assert labels == [f"Value {v} ({counts[v]:,} px)" for v in (0, 1, 2)]
    assert [s.value for s in app.selectbox if s.key and s.key.startswith("w_mask_value_")] == [0, 1, 2]
    assert [e.proto.imgs[0].caption for e in app.get("image")] == ["Preview"]
    app.button(key="w_use_mask").click().run()
    assert not app.exception and not errors(app)
    model = app.session_state["seg.model"]
    assert model is not None
    assert list(model.training["labelled_pixels"].values()) == [counts[1], counts[2]]
    prediction = app.session_state["seg.prediction"].labels
    assert prediction[190, 210] == 2 and prediction[5, 350] == 1

    app.button(key="w_remove_imported").click().run()
    assert app.session_state["seg.imported_labels"] == {}


def test_a_mask_of_another_size_is_refused_with_its_name(app):
    upload(app, "w_mask_upload", "other.png", png_bytes(np.zeros((10, 10), np.uint8)), "image/png")
    assert any("other" in e and "png" in e and "but the image is 384×303" in e for e in errors(app)), errors(app)
