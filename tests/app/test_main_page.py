"""The main page, driven by AppTest with strokes injected as the canvas reports them.

Uses the real engine. One AppTest session per test (a fresh browser session each).
"""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import tifffile
from PIL import Image

from tests.app.conftest import (
    BACKGROUND_STROKE,
    class_colors,
    coins_strokes,
    download,
    draw,
    errors,
    new_app,
    png_bytes,
    status,
    tiff_bytes,
    upload,
)


def _stroke_pixels(at, frame: int = 0) -> dict[int, np.ndarray]:
    """{label: boolean mask of its scribbled pixels} from the app's own label image."""
    labels = at.session_state["seg.labels"][frame][1]
    return {int(k): labels == k for k in np.unique(labels) if k}


def _prediction(at):
    prediction = at.session_state["seg.prediction"]
    assert prediction is not None, (status(at), [i.value for i in at.info], errors(at))
    return prediction


def _update_number(at) -> int:
    return int(status(at).split("update #")[1].split(" ")[0])


# --------------------------------------------------------------------------- 1. start


def test_starts_on_the_coins_sample_with_two_classes_and_a_hint(app):
    assert not app.exception
    assert [str(o) for o in app.radio(key="w_active").options] == ["background", "coin"]
    assert any("Draw a few strokes on each class" in c.value for c in app.caption)
    assert "coins" in app.session_state["seg.image"].name
    assert app.session_state["seg.image"].shape == (1, 303, 384)
    assert status(app).startswith("ready · update #")
    assert app.session_state["seg.canvas"].key.startswith("canvas-")
    assert app.session_state["seg.model"] is None
    # Only the annotations download exists before any segmentation.
    assert [s.key for s in app.session_state["seg.downloads"]] == ["w_dl_annotations"]


# --------------------------------------------------------------------------- 4. live segmentation


def test_strokes_of_two_classes_segment_the_whole_image_under_the_strokes(app):
    before = _update_number(app)
    draw(app, coins_strokes(app))
    prediction = _prediction(app)
    assert prediction.labels.shape == (303, 384)
    for label, mask in _stroke_pixels(app).items():
        agreement = (prediction.labels[mask] == label).mean()
        assert agreement > 0.95, (label, agreement)
    # Both classes are found beyond the strokes too: coins cover roughly a third of the image.
    coin_fraction = (prediction.labels == 2).mean()
    assert 0.15 < coin_fraction < 0.6
    text = status(app)
    assert _update_number(app) == before + 1
    assert "train" in text and "predict" in text  # features were prepared after the first run
    assert app.session_state["seg.model"].class_names == ("background", "coin")

    # A rerun from an unrelated widget neither retrains nor counts as an update.
    version = app.session_state["seg.model_version"]
    app.slider(key="w_width").set_value(20).run()
    assert app.session_state["seg.model_version"] == version
    assert _update_number(app) == before + 1

    # View switches change the picture, not the model.
    for view in ("uncertainty", f"probability:{app.session_state['seg.classes'][1].id}", "image"):
        app.selectbox(key="w_view").set_value(view).run()
        assert not app.exception
    assert app.session_state["seg.model_version"] == version


def test_one_class_only_explains_what_is_missing(app):
    background = class_colors(app)[0]
    draw(app, [(BACKGROUND_STROKE, background)])
    assert app.session_state["seg.prediction"] is None
    assert any("at least two classes" in i.value for i in app.info)


def test_eraser_unlabels_pixels_and_undo_follows_the_canvas(app):
    from seg.strokes import ERASER_COLOR

    strokes = coins_strokes(app)
    draw(app, strokes)
    full = _stroke_pixels(app)[1].sum()
    # Erase the middle of the background stroke: those pixels become unlabelled (0).
    draw(app, strokes + [([(100.0, 158.0), (200.0, 158.0)], ERASER_COLOR, 30.0)])
    labels = app.session_state["seg.labels"][0][1]
    assert labels[158, 150] == 0
    assert 0 < _stroke_pixels(app)[1].sum() < full
    # The toolbar's Undo sends the JSON without the last object: labels follow the whole JSON.
    draw(app, strokes)
    assert _stroke_pixels(app)[1].sum() == full


def test_a_visit_to_another_page_keeps_strokes_settings_and_model(app):
    draw(app, coins_strokes(app))
    app.slider(key="w_opacity").set_value(0.8).run()
    app.selectbox(key="w_preset").set_value("fine detail").run()
    model = app.session_state["seg.model"]
    app.switch_page("pages/1_Batch_apply.py").run()
    app.switch_page("streamlit_app.py").run()
    assert not app.exception
    assert app.slider(key="w_opacity").value == 0.8
    assert app.selectbox(key="w_preset").value == "fine detail"
    assert app.session_state["seg.model"] is model  # nothing retrained
    # The canvas is mounted again with every stroke drawn so far.
    mounted = app.session_state["seg.canvas"]
    assert mounted.key in app.session_state and len(mounted.initial_drawing["objects"]) == 4


def test_a_tab_that_comes_back_after_its_caches_were_released_sees_the_same_segmentation(app):
    """When a tab disconnects, Streamlit releases the session's session-scoped resources and the
    app empties its feature stacks, pictures and prediction (most of its memory) at once. A tab
    that reconnects still has its strokes and model, and sees the same segmentation again."""
    import streamlit as st

    draw(app, coins_strokes(app))
    before = _prediction(app)
    labels, features = before.labels.copy(), app.session_state["seg.features"]
    assert features and before.display_labels.size
    st.cache_resource.clear()  # what Streamlit does for the session's resources on disconnect
    assert not features and before.released and not app.session_state["seg.backgrounds"]
    version = app.session_state["seg.model_version"]
    app.run()
    assert not app.exception and errors(app) == []
    after = _prediction(app)
    assert not after.released and app.session_state["seg.model_version"] == version  # not retrained
    assert np.array_equal(after.labels, labels)


# --------------------------------------------------------------------------- 3. classes


def test_classes_can_be_added_renamed_recoloured_and_removed(app):
    draw(app, coins_strokes(app))
    app.button(key="w_new_class").click().run()
    classes = app.session_state["seg.classes"]
    assert len(classes) == 3 and classes[2].color not in class_colors(app)[:2]
    assert app.radio(key="w_active").value == classes[2].id  # the new class is active

    # Markdown in a name is shown literally (escaped), never rendered.
    third = classes[2]
    app.text_input(key=f"w_class_name_{third.id}").input("![x](http://example.com/a.png) *edge*").run()
    assert app.session_state["seg.classes"][2].name == "![x](http://example.com/a.png) *edge*"
    shown = app.radio(key="w_active").options[2]
    assert "\\!\\[x\\]" in shown and "\\*edge\\*" in shown

    # Duplicate names are refused with a warning; the old name stays.
    app.text_input(key=f"w_class_name_{third.id}").input("coin").run()
    assert app.session_state["seg.classes"][2].name != "coin"
    assert any("already called" in w.value for w in app.warning)

    # Recolouring keeps the strokes of that class (they are redrawn in the new colour).
    coin = app.session_state["seg.classes"][1]
    coin_pixels = _stroke_pixels(app)[2].sum()
    app.color_picker(key=f"w_class_color_{coin.id}").pick("#123456").run()
    assert app.session_state["seg.classes"][1].color == "#123456"
    assert _stroke_pixels(app)[2].sum() == coin_pixels
    assert _prediction(app) is not None

    # Removing a class removes its strokes and its name from the model.
    app.button(key=f"w_class_remove_{third.id}").click().run()
    assert [c.name for c in app.session_state["seg.classes"]] == ["background", "coin"]
    assert app.session_state["seg.model"].class_names == ("background", "coin")

    # Renaming never retrains: the model just carries the new name.
    version = app.session_state["seg.model_version"]
    app.text_input(key=f"w_class_name_{coin.id}").input("penny").run()
    assert app.session_state["seg.model"].class_names == ("background", "penny")
    assert app.session_state["seg.model_version"] == version


# --------------------------------------------------------------------------- 2. images


def test_uploading_a_16_bit_tiff_and_an_rgb_png(app):
    rng = np.random.default_rng(0)
    grey16 = (rng.integers(0, 1000, (64, 80)) + 30000).astype(np.uint16)
    grey16[20:40, 20:50] += 20000
    upload(app, "w_image_upload", "plate 1.tif", tiff_bytes(grey16), "image/tiff")
    record = app.session_state["seg.image"]
    assert record.shape == (1, 64, 80) and record.frames.dtype == np.uint16
    assert errors(app) == []
    background, fg = class_colors(app)[:2]
    draw(app, [([(2.0, 5.0), (70.0, 5.0)], background), ([(25.0, 30.0), (45.0, 30.0)], fg)], width=4)
    assert _prediction(app).labels[30, 35] == 2
    assert _prediction(app).labels[55, 5] == 1

    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0] = 200
    upload(app, "w_image_upload", "photo.png", png_bytes(rgb), "image/png")
    record = app.session_state["seg.image"]
    assert record.shape == (1, 40, 60) and record.n_channels == 3
    assert app.session_state["seg.prediction"] is None  # a new image starts without strokes
    assert app.session_state["seg.drawings"] == {}


def test_a_large_image_is_shown_smaller_but_segmented_at_full_resolution(app):
    from seg.render import resize_labels

    image = np.zeros((300, 1500), np.uint8)
    image[:, 700:] = 200
    image += np.random.default_rng(2).integers(0, 30, image.shape).astype(np.uint8)
    upload(app, "w_image_upload", "wide.png", png_bytes(image), "image/png")
    fit = app.session_state["seg.canvas"].fit_dict()
    assert round(fit["scale_x"] * 1500) == 760  # the canvas fits the page
    background, bright = class_colors(app)[:2]
    draw(app, [([(50.0, 150.0), (600.0, 150.0)], background), ([(800.0, 150.0), (1400.0, 150.0)], bright)])
    prediction = _prediction(app)
    shown = prediction.display_labels
    assert shown.shape == (152, 760)
    assert prediction.labels.shape == (300, 1500)  # full resolution, computed on demand
    assert np.array_equal(shown, resize_labels(prediction.labels, shown.shape))
    assert prediction.labels[:, :690].max() == 1 and prediction.labels[:, 710:].min() == 2
    # The next stroke reuses the gathered display features (fast path): still exactly the
    # full-resolution labels resized for display, for the retrained model.
    draw(
        app,
        [
            ([(50.0, 150.0), (600.0, 150.0)], background),
            ([(800.0, 150.0), (1400.0, 150.0)], bright),
            ([(100.0, 40.0), (650.0, 260.0)], background),
        ],
    )
    again = _prediction(app)
    assert again is not prediction and again._shown is prediction._shown
    assert np.array_equal(again.display_labels, resize_labels(again.labels, shown.shape))


def test_a_large_image_is_zoomed_panned_and_segmented_tile_by_tile(app, monkeypatch):
    """Above WHOLE_FEATURES_MAX_PIXELS features are computed per tile; strokes drawn on zoomed,
    panned views land at exact image pixels, and the whole image is segmented on demand,
    equal to Model.predict."""
    from seg.features.tiles import TileFeatures
    from seg.ui import config

    monkeypatch.setattr(config, "WHOLE_FEATURES_MAX_PIXELS", 100_000)  # "large" = above 0.1 MP here
    image = np.full((900, 1600), 40, np.uint8)
    image[:, 800:] = 200
    image += np.random.default_rng(3).integers(0, 30, image.shape).astype(np.uint8)
    upload(app, "w_image_upload", "large.png", png_bytes(image), "image/png")
    app.selectbox(key="w_zoom").set_value(2.0).run()  # 2:1 around the centre
    view = app.session_state["seg.canvas"].viewport
    assert (view.zoom, view.width, view.left) == (2.0, 380, 610)
    background, bright = class_colors(app)[:2]
    draw(
        app, [([(700.0, 450.0), (760.0, 450.0)], background), ([(850.0, 460.0), (900.0, 460.0)], bright)], width=4.0
    )  # 4 canvas px = 2 image px
    labels = app.session_state["seg.labels"][0][1]
    assert labels[450, 700] == 1 and labels[450, 760] == 1 and labels[460, 899] == 2
    assert labels[452, 730] == 0 and labels[448, 730] == 0  # 2 px wide around y = 450
    prediction = _prediction(app)
    assert prediction.tiled and not prediction.has_labels
    assert isinstance(app.session_state["seg.tiles"][next(iter(app.session_state["seg.tiles"]))], TileFeatures)
    shown = prediction.display_labels
    assert shown[:, :340].max() == 1 and shown[:, 420:].min() == 2  # dark left of x = 800, bright right
    for _ in range(3):  # far right, out of the first view
        app.button(key="w_pan_right").click().run()
    view = app.session_state["seg.canvas"].viewport
    assert view.left == 1600 - 380
    draw(app, [([(1300.0, 100.0), (1500.0, 100.0)], bright)], width=4.0)
    labels = app.session_state["seg.labels"][0][1]
    assert labels[450, 700] == 1 and labels[100, 1300] == 2 and labels[100, 1499] == 2  # all strokes kept
    assert len(app.session_state["seg.drawings"][0]["objects"]) == 3
    assert app.session_state["seg.canvas"].initial_drawing["objects"] == []  # the first strokes are off screen
    assert _prediction(app).display_labels.min() == 2
    app.selectbox(key="w_zoom").set_value("fit").run()  # the overview: 8 tiles of 512 fit
    app.button(key="w_segment_whole").click().run()
    prediction = _prediction(app)
    assert prediction.has_labels
    model = app.session_state["seg.model"]
    assert np.array_equal(prediction.labels, model.predict(image))
    _, mask = download(app, "w_dl_mask")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(mask))), model.predict(image))
    _, proba = download(app, "w_dl_proba")  # kept as uint8 by the whole-frame pass
    pages = tifffile.imread(io.BytesIO(proba))
    expected = np.rint(model.predict_proba(image) * 255)
    assert pages.dtype == np.uint8 and np.abs(np.moveaxis(pages, 0, -1) - expected).max() <= 1


def test_frames_beyond_the_frame_limit_are_refused(app, monkeypatch):
    from seg.ui import config

    monkeypatch.setattr(config, "MAX_FRAME_PIXELS", 1000)
    upload(app, "w_image_upload", "huger.png", png_bytes(np.zeros((40, 60), np.uint8)), "image/png")
    assert any("megapixels per frame" in e for e in errors(app))
    assert app.session_state["seg.image"].name != "huger.png"


def test_refused_uploads_show_the_reason_and_keep_the_work(app):
    draw(app, coins_strokes(app))
    digest = app.session_state["seg.image"].digest
    upload(app, "w_image_upload", "notes.png", b"these are my notes, not an image\n", "image/png")
    assert len(errors(app)) == 1, errors(app)
    assert "Cannot read 'notes.png'" in errors(app)[0].replace("\\", ""), errors(app)  # shown markdown-escaped
    assert app.session_state["seg.image"].digest == digest
    assert _prediction(app) is not None
    truncated = png_bytes(np.full((50, 50), 7, np.uint8))[:60]
    upload(app, "w_image_upload", "cut.png", truncated, "image/png")
    assert len(errors(app)) == 1
    assert app.session_state["seg.image"].digest == digest
    assert not app.exception
    # The app keeps working: another stroke still updates the segmentation.
    before = _update_number(app)
    draw(app, coins_strokes(app)[:2])
    assert _update_number(app) == before + 1 and _prediction(app) is not None


def test_a_stack_gets_a_frame_slider_and_strokes_on_two_frames_train_one_model(app):
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 40, (3, 48, 64)).astype(np.uint8)
    stack[:, 10:30, 20:40] += 150
    upload(app, "w_image_upload", "movie.tif", tiff_bytes(stack), "image/tiff")
    assert app.session_state["seg.image"].shape == (3, 48, 64)
    assert app.slider(key="w_frame").max == 2
    background, fg = class_colors(app)[:2]
    draw(app, [([(2.0, 3.0), (60.0, 3.0)], background)], width=4)  # frame 0: background only
    assert app.session_state["seg.prediction"] is None
    app.slider(key="w_frame").set_value(2).run()
    assert "-f2-n" in app.session_state["seg.canvas"].key
    draw(app, [([(25.0, 20.0), (35.0, 20.0)], fg)], width=4)  # frame 2: foreground only
    model = app.session_state["seg.model"]
    assert model is not None, status(app)  # only the two frames together have two classes
    assert _prediction(app).frame == 2 and _prediction(app).labels[20, 30] == 2
    assert sorted(app.session_state["seg.drawings"]) == [0, 2]
    # Back on frame 0 its canvas is mounted again with frame 0's strokes.
    app.slider(key="w_frame").set_value(0).run()
    mounted = app.session_state["seg.canvas"]
    assert "-f0-" in mounted.key
    assert [o["stroke"] for o in mounted.initial_drawing["objects"]] == [background]
    assert _prediction(app).frame == 0 and app.session_state["seg.model"] is model  # no retraining

    # Measure all frames: one row per class and frame, plotted over time.
    app.session_state["stack_panel"] = True
    app.run()
    app.button(key="w_measure_stack").click().run()
    rows = app.session_state["seg.stack_measurements"][1]
    assert sorted({r["frame"] for r in rows}) == [0, 1, 2]
    assert len(app.get("arrow_line_chart")) + len(app.get("vega_lite_chart")) >= 1
    name, data = download(app, "w_dl_stack_mask")
    assert name == "movie_masks.tif"
    assert tifffile.imread(io.BytesIO(data)).shape == (3, 48, 64)


# --------------------------------------------------------------------------- settings


def test_a_new_preset_recomputes_features_and_keeps_the_strokes(app):
    draw(app, coins_strokes(app))
    version = app.session_state["seg.model_version"]
    strokes = app.session_state["seg.drawings"]
    app.selectbox(key="w_preset").set_value("large structures").run()
    assert app.session_state["seg.model_version"] == version + 1
    assert app.session_state["seg.model"].feature_settings.sigma_min == 2.0
    assert app.session_state["seg.drawings"] == strokes
    (key,) = [k for k in app.session_state["seg.features"]]
    assert '"sigma_min": 2.0' in key[2]
    assert _prediction(app) is not None
    app.number_input(key="w_trees").set_value(20).run()
    assert app.session_state["seg.model"].forest_settings.n_estimators == 20
    # Switching every feature group off is refused with a message, not a traceback.
    for key in ("w_intensity", "w_edges", "w_texture"):
        app.checkbox(key=key).uncheck()
    app.run()
    assert not app.exception and errors(app)
    assert app.session_state["seg.drawings"] == strokes


def test_pause_live_update_and_update_button(app):
    app.toggle(key="w_live").set_value(False).run()
    draw(app, coins_strokes(app))
    assert app.session_state["seg.model"] is None
    assert "paused" in status(app)
    app.button(key="w_update").click().run()
    assert app.session_state["seg.model"] is not None and _prediction(app) is not None


# --------------------------------------------------------------------------- 5. downloads and resume


def test_downloads_have_sensible_names_and_contents(app):
    draw(app, coins_strokes(app))
    keys = [s.key for s in app.session_state["seg.downloads"]]
    assert keys == ["w_dl_mask", "w_dl_overlay", "w_dl_proba", "w_dl_annotations", "w_dl_model"]
    assert len(app.get("download_button")) >= 5

    name, data = download(app, "w_dl_mask")
    assert name == "coins_mask.png"
    mask = np.asarray(Image.open(io.BytesIO(data)))
    assert mask.shape == (303, 384) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1, 2}
    assert np.array_equal(mask, _prediction(app).labels)

    name, data = download(app, "w_dl_overlay")
    assert name == "coins_overlay.png"
    assert Image.open(io.BytesIO(data)).size == (384, 303)

    name, data = download(app, "w_dl_proba")
    assert name == "coins_probabilities.tif"
    proba = tifffile.imread(io.BytesIO(data))
    assert proba.shape == (2, 303, 384) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=0), 1.0, atol=1e-5)

    name, data = download(app, "w_dl_model")
    assert name == "coins.segmodel" and data[:2] == b"PK"


def test_annotations_round_trip_resumes_strokes_and_classes(app):
    draw(app, coins_strokes(app))
    app.text_input(key=f"w_class_name_{app.session_state['seg.classes'][1].id}").input("penny").run()
    name, annotations = download(app, "w_dl_annotations")
    assert name == "coins_annotations.json" and json.loads(annotations)
    labels_before = app.session_state["seg.labels"][0][1].copy()
    prediction_before = _prediction(app).labels.copy()

    fresh = new_app()  # a reload: a new, empty session
    fresh.run()
    upload(fresh, "w_annotations_upload", name, annotations, "application/json")
    assert [c.name for c in fresh.session_state["seg.classes"]] == ["background", "penny"]
    assert np.array_equal(fresh.session_state["seg.labels"][0][1], labels_before)
    assert np.array_equal(_prediction(fresh).labels, prediction_before)
    # The canvas is remounted with the strokes drawn back on it.
    mounted = fresh.session_state["seg.canvas"]
    assert len(mounted.initial_drawing["objects"]) == 4

    # Annotations of another image are refused with the reason; nothing changes.
    other = new_app()
    other.run()
    upload(other, "w_image_upload", "small.png", png_bytes(np.zeros((20, 30), np.uint8)), "image/png")
    upload(other, "w_annotations_upload", name, annotations, "application/json")
    shown = [e.replace("\\", "") for e in errors(other)]  # errors are shown markdown-escaped
    assert len(shown) == 1 and "drawn on an image of shape (frames, height, width) = (1, 303, 384)" in shown[0]
    assert "the current image 'small.png' is (1, 20, 30)" in shown[0], shown
    upload(other, "w_annotations_upload", "junk.json", b"{not json", "application/json")
    shown = [e.replace("\\", "") for e in errors(other)]
    assert len(shown) == 1 and "not valid JSON" in shown[0], shown
    assert not other.exception


def test_model_bundle_upload_segments_and_a_pickle_is_refused(app):
    draw(app, coins_strokes(app))
    _, bundle = download(app, "w_dl_model")
    expected = _prediction(app).labels.copy()

    fresh = new_app()
    fresh.run()
    upload(fresh, "w_model_upload", "coins.segmodel", bundle)
    assert fresh.session_state["seg.model_source"] == "uploaded"
    assert np.array_equal(_prediction(fresh).labels, expected)  # no strokes needed
    assert any("Uploaded model" in c.value for c in fresh.caption)
    # New strokes retrain with the model's feature settings.
    settings = fresh.session_state["seg.model"].feature_settings
    draw(fresh, coins_strokes(fresh)[:2])
    assert fresh.session_state["seg.model_source"] == "trained"
    assert fresh.session_state["seg.model"].feature_settings == settings

    evil = pickle.dumps({"not": "a model"})
    upload(fresh, "w_model_upload", "model.segmodel", evil)
    assert errors(fresh) and "pickle" in errors(fresh)[0].lower()
    assert fresh.session_state["seg.model_source"] == "trained"


# --------------------------------------------------------------------------- 6. measurements


def test_measurements_table_chart_and_csv(app):
    draw(app, coins_strokes(app))
    assert app.session_state["seg.measurements"] is None  # not computed while the panel is closed
    app.session_state["measure_panel"] = True
    app.run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table.columns)[:8] == [
        "class",
        "label",
        "pixels",
        "area_fraction",
        "objects",
        "mean_object_size",
        "median_object_size",
        "max_object_size",
    ]
    assert list(table["class"]) == ["background", "coin"]
    assert table["pixels"].sum() == 303 * 384
    assert table.loc[1, "objects"] >= 10  # two dozen coins (some merge or split)
    assert len(app.get("arrow_bar_chart")) + len(app.get("vega_lite_chart")) >= 1
    csv = app.session_state["seg.measurements"][1]
    assert csv[0]["class"] == "background"
