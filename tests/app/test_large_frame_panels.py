"""A frame above 4 MP (features per tile, viewport-first prediction) keeps the accuracy panel,
the objects panel and the probabilities download (AppTest, strokes injected)."""

from __future__ import annotations

import io

import numpy as np
import tifffile

from tests.app.conftest import class_colors, download, draw, png_bytes, upload
from tests.app.test_accuracy_panel import click, metric, open_panel

HEIGHT, WIDTH = 1200, 4096
CENTRES = [(300 + 600 * (i % 7), 300 if i < 7 else 900) for i in range(14)]  # (x, y) of the disks
RADIUS = 70


def disks_image() -> np.ndarray:
    """(1200, 4096) uint8: 14 bright disks on a dark, noisy background."""
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    image = np.full((HEIGHT, WIDTH), 40, np.uint8)
    for x, y in CENTRES:
        image[(cols - x) ** 2 + (rows - y) ** 2 <= RADIUS**2] = 200
    image += np.random.default_rng(0).integers(0, 25, image.shape).astype(np.uint8)
    return image


def model_features(app) -> int:
    return int(app.session_state["seg.model"].n_features)


def test_a_4096_by_1200_frame_has_accuracy_objects_and_probabilities(app):
    from seg.tiling import frame_statistics, predict_window, quantize_probabilities

    image = disks_image()
    upload(app, "w_image_upload", "disks.png", png_bytes(image), "image/png")
    assert app.session_state["seg.image"].shape == (1, HEIGHT, WIDTH)
    back, disk = class_colors(app)[:2]
    draw(
        app,
        [
            ([(100.0, 600.0), (4000.0, 600.0)], back),
            ([(100.0, 80.0), (4000.0, 80.0)], back),
            ([(100.0, 1120.0), (4000.0, 1120.0)], back),
            ([(270.0, 300.0), (330.0, 300.0)], disk),
            ([(1470.0, 900.0), (1530.0, 900.0)], disk),
            ([(3270.0, 300.0), (3330.0, 300.0)], disk),
        ],
        width=3.0,  # canvas pixels: about 16 image pixels at the fit view
    )
    prediction = app.session_state["seg.prediction"]
    assert prediction.tiled and not prediction.has_labels

    # Accuracy: estimated from the labelled tiles' features, before any whole-frame pass.
    open_panel(app)
    click(app, "w_estimate_accuracy")
    report = app.session_state["seg.accuracy"]["report"]
    assert report.n_groups == 6 and report.accuracy is not None and report.accuracy > 0.8
    assert metric(app, "Strokes").value == "6"
    assert app.button(key="w_suggest_settings").disabled  # would need whole feature stacks
    click(app, "w_permutation_importance")  # held-out strokes from the tiles too
    table = app.session_state["seg.accuracy"]["permutation"]
    assert len(table) == model_features(app) and table["importance"].notna().all()

    # The whole frame, on demand: then probabilities, objects and label-next boxes from it.
    app.button(key="w_segment_whole").click().run()
    assert not app.exception, [e.message for e in app.exception]
    prediction = app.session_state["seg.prediction"]
    assert prediction.has_labels
    model = app.session_state["seg.model"]
    keys = [spec.key for spec in app.session_state["seg.downloads"]]
    assert "w_dl_proba" in keys
    name, data = download(app, "w_dl_proba")
    pages = tifffile.imread(io.BytesIO(data))
    assert pages.dtype == np.uint8 and pages.shape == (2, HEIGHT, WIDTH)
    # A disk's edge, predicted with full context and the whole frame's normalisation statistics.
    window = (slice(250, 380), slice(230, 400))
    assert model.feature_settings.margin() < 200
    _, proba = predict_window(
        model, image[:600, :800], frame_statistics(image, model.normalization), window, labels=False, proba=True
    )
    expected = quantize_probabilities(proba)
    assert np.abs(pages[:, window[0], window[1]].astype(int) - np.moveaxis(expected, -1, 0)).max() <= 1
    regions = app.session_state["seg.accuracy"]["next"][1]
    assert regions and all(0 <= r.row0 < r.row1 <= HEIGHT and 0 <= r.col0 < r.col1 <= WIDTH for r in regions)
    # "Go there" moves the view of the large frame onto the box (and the canvas draws it there).
    region = regions[0]
    click(app, "w_go_to_region")
    view = app.session_state["seg.canvas"].viewport
    assert view.zoom > 0.5 and not view.shows_whole_image
    assert view.top <= region.row0 and region.row1 <= view.top + view.height
    assert view.left <= region.col0 and region.col1 <= view.left + view.width
    assert ("boxes", 0) == app.session_state["seg.signature"][3][-1][0][:2]  # the boxes are on the canvas
    app.selectbox(key="w_zoom").set_value("fit").run()

    app.session_state["objects_panel"] = True
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    found = app.session_state["seg.objects"]["found"]
    assert found.instances.shape == (HEIGHT, WIDTH)
    table = found.table
    assert len(table) == len(CENTRES)  # one object per disk
    assert table["probability_mean"].between(0.5, 1.0).all()
    centres = sorted(zip(table["centroid_x"].round(), table["centroid_y"].round()))
    assert np.abs(np.array(centres) - np.array(sorted(CENTRES))).max() <= 3
    assert "w_dl_objects_csv" in [spec.key for spec in app.session_state["seg.downloads"]]
