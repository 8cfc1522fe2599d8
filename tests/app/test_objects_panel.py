"""The objects panel on the main page (AppTest, strokes injected): table, filter, picture, downloads."""

from __future__ import annotations

import csv
import io

import numpy as np
import tifffile

from tests.app.conftest import coins_strokes, download, draw


def _open_panel(app):
    draw(app, coins_strokes(app))
    assert app.session_state["seg.objects"] == {}  # nothing computed while closed
    app.session_state["objects_panel"] = True
    app.run()
    assert not app.exception, [e.message for e in app.exception]


def _objects_table(app):
    return next(d.value for d in app.dataframe if "solidity" in d.value.columns)


def test_objects_of_the_coins_are_found_measured_and_filtered(app):
    _open_panel(app)
    found = app.session_state["seg.objects"]["found"]
    table = _objects_table(app)
    assert len(table) >= 15  # 24 coins (touching ones split, some over-split)
    assert list(table.columns)[:4] == ["label", "area", "centroid_y", "centroid_x"]
    assert "probability_mean" in table.columns and "intensity_mean_c0" in table.columns
    before = app.session_state["seg.objects"]["picture"].copy()

    # Filter: keep objects with area >= the median; the table and the picture follow.
    areas = found.table["area"].to_numpy()
    threshold = float(np.median(areas))
    slider = app.slider(key="w_obj_range_area")
    slider.set_value((threshold, float(slider.max))).run()
    assert not app.exception, [e.message for e in app.exception]
    filtered = _objects_table(app)
    assert len(filtered) == int((areas >= threshold).sum()) < len(table)
    assert (filtered["area"] >= threshold).all()
    after = app.session_state["seg.objects"]["picture"]
    assert after.shape == before.shape and not np.array_equal(after, before)

    # The downloads hold the filtered objects: CSV rows and TIFF values match the table.
    name, data = download(app, "w_dl_objects_csv")
    assert name.endswith("_coin_objects.csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert [int(r["object"]) for r in rows] == filtered["label"].tolist()
    assert {r["frame"] for r in rows} == {"0"} and all(r["image"] for r in rows)
    assert [int(r["area"]) for r in rows] == filtered["area"].tolist()
    name, data = download(app, "w_dl_objects_tiff")
    instances = tifffile.imread(io.BytesIO(data))
    assert instances.dtype == np.uint16 and instances.shape == (303, 384)
    assert sorted(set(np.unique(instances)) - {0}) == sorted(filtered["label"].tolist())


def test_splitting_and_class_choice_change_the_objects(app):
    _open_panel(app)
    split = len(_objects_table(app))
    app.checkbox(key="w_obj_split").uncheck().run()
    unsplit = len(_objects_table(app))
    assert unsplit < split  # touching coins become one object
    app.number_input(key="w_obj_pixel_size").set_value(0.5).run()
    table = _objects_table(app)
    np.testing.assert_allclose(table["area_um2"], table["area"] * 0.25)
    app.selectbox(key="w_obj_class").set_value(1).run()  # background: one big region
    assert not app.exception
    assert len(_objects_table(app)) <= 3


def test_a_selected_row_is_highlighted(app):
    _open_panel(app)
    plain = app.session_state["seg.objects"]["picture"].copy()
    # A click on a row sets this chooser (AppTest cannot click table rows; the browser test does).
    table = _objects_table(app)
    largest = int(table.loc[table["area"].idxmax(), "label"])
    app.selectbox(key="w_obj_pick").set_value(largest).run()
    assert not app.exception, [e.message for e in app.exception]
    highlighted = app.session_state["seg.objects"]["picture"]
    changed = np.any(highlighted != plain, axis=-1)
    instances = app.session_state["seg.objects"]["found"].instances
    assert changed.sum() >= 0.5 * (instances == largest).sum()  # its inside is filled (image at 1:1)
    assert not changed[instances != largest].any()  # and nothing else changes


def test_the_batch_page_writes_objects_when_asked():
    import zipfile
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import png_bytes
    from tests.unit.test_batch import synthetic_scene, train_small

    image, truth = synthetic_scene(seed=0)
    model = train_small(image, truth)
    page = AppTest.from_file(
        str(Path(__file__).resolve().parents[2] / "pages" / "1_Batch_apply.py"), default_timeout=60
    )
    page.session_state["seg.model"] = model
    page.run()
    page.selectbox(key="w_batch_objects").set_value(2).run()
    page.file_uploader(key="w_batch_images").set_value([("blobs.png", png_bytes(image), "image/png")])
    page.run()
    page.button(key="w_batch_run").click()
    page.run()
    assert not page.exception, [e.message for e in page.exception]
    archive = zipfile.ZipFile(io.BytesIO(page.session_state["batch.zip"]))
    assert sorted(archive.namelist()) == ["blobs_mask.png", "blobs_objects.tif", "measurements.csv", "objects.csv"]
    rows = list(csv.DictReader(io.StringIO(archive.read("objects.csv").decode())))
    instances = tifffile.imread(io.BytesIO(archive.read("blobs_objects.tif")))
    assert len(rows) == instances.max() >= 3
    assert [int(r["area"]) for r in rows] == [int((instances == k).sum()) for k in range(1, len(rows) + 1)]
    assert page.session_state["batch.objects_csv"] == archive.read("objects.csv").decode()


def test_too_many_objects_are_drawn_and_downloadable_but_not_measured(app, monkeypatch):
    from seg.ui import objects as panel

    monkeypatch.setattr(panel, "MAX_MEASURED_OBJECTS", 5)  # the coins give ~50 objects
    _open_panel(app)
    assert any("more than 5 are not measured here" in w.value for w in app.warning)
    assert not [d for d in app.dataframe if "solidity" in d.value.columns]
    found = app.session_state["seg.objects"]["found"]
    assert found.table is None and found.instances.max() > 5
    _, data = download(app, "w_dl_objects_tiff")
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(data)), found.instances)
