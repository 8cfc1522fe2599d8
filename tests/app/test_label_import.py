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


def test_imported_labels_are_drawn_on_the_canvas_saved_and_restored(app):
    import io
    import json

    from PIL import Image

    from tests.app.conftest import class_colors, download, draw, new_app

    mask = coins_mask()
    app.selectbox(key="w_view").set_value("image").run()  # no segmentation tint on the canvas
    upload(app, "w_mask_upload", "labels.png", png_bytes(mask), "image/png")
    app.button(key="w_use_mask").click().run()
    assert not app.exception and not errors(app)

    def canvas() -> np.ndarray:
        data = list(app.session_state["seg.backgrounds"].values())[-1]
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int64)

    def on_canvas(rows, cols):
        """Canvas pixels over image box rows x cols (inner part, away from its border)."""
        view = app.session_state["seg.canvas"].viewport
        shown_rows, shown_cols = view.display_rows(), view.display_columns()
        r = np.flatnonzero((shown_rows >= rows[0] + 2) & (shown_rows < rows[1] - 2))
        c = np.flatnonzero((shown_cols >= cols[0] + 2) & (shown_cols < cols[1] - 2))
        return canvas()[np.ix_(r, c)].reshape(-1, 3)

    coin = np.array([int(class_colors(app)[1][i : i + 2], 16) for i in (1, 3, 5)])
    tinted = on_canvas((186, 200), (190, 230))  # an imported coin region: half image, half class colour
    app.toggle(key="w_show_imported").set_value(False).run()
    plain = on_canvas((186, 200), (190, 230))
    assert np.abs(tinted - (plain + coin) / 2).mean() < 12  # tinted by the coin colour at 0.5
    assert np.abs(tinted - plain).mean() > 20
    app.toggle(key="w_show_imported").set_value(True).run()

    # A drawn stroke too; the annotations file holds both and restores both.
    back = class_colors(app)[0]
    draw(app, [([(20.0, 250.0), (120.0, 250.0)], back)])
    labels_before = app.session_state["seg.model"].training["labelled_pixels"]
    name, data = download(app, "w_dl_annotations")
    document = json.loads(data)
    assert [entry["frame"] for entry in document["label_images"]] == [0] and len(document["strokes"]) == 1

    fresh = new_app()
    fresh.run()
    upload(fresh, "w_annotations_upload", name, data, "application/json")
    assert not fresh.exception and not errors(fresh)
    restored = fresh.session_state["seg.imported_labels"][0]
    assert np.array_equal(restored, mask)
    assert len(fresh.session_state["seg.drawings"][0]["objects"]) == 1
    assert fresh.session_state["seg.model"].training["labelled_pixels"] == labels_before


def test_a_mask_too_detailed_for_an_annotation_file_is_refused(app, monkeypatch):
    import seg.strokes.annotations as annotations

    # a noise-like mask barely compresses; with a small limit the coins' 303x384 pixels are too many
    monkeypatch.setattr(annotations, "MAX_LABEL_IMAGES_TEXT", 20_000)
    noise = np.random.default_rng(0).integers(1, 3, (303, 384), dtype=np.uint8)
    upload(app, "w_mask_upload", "noise.png", png_bytes(noise), "image/png")
    app.button(key="w_use_mask").click().run()
    assert not app.exception
    assert any("Labels not imported" in e and "annotation file" in e for e in errors(app))
    assert app.session_state["seg.imported_labels"] == {}
    assert app.session_state["seg.model"] is None  # nothing trained from the refused labels
