"""Main page, driven by AppTest: what the views show, class removal with strokes, an RGB sample,
and the measurement CSV downloads as a visitor receives them.

The views are checked against an independent oracle: the session's model applied to the whole
frame (``Model.predict_proba``), sampled at the canvas pixels, coloured with ``seg.render``.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from seg.measure import COLUMNS, FRAME_COLUMNS
from seg.model import uncertainty
from seg.render import blend_images, heatmap
from tests.app.conftest import BACKGROUND_STROKE, COIN_STROKES, class_colors, coins_strokes, draw, errors, new_app

# --------------------------------------------------------------------------- helpers


@pytest.fixture
def lossless(monkeypatch):
    """Backgrounds as PNG whatever their size (JPEG's rounding would blur an exact comparison)."""
    monkeypatch.setattr("seg.ui.views.PNG_MAX_PIXELS", 10**8)


def _background(at, view: str) -> np.ndarray:
    """(h, w, 3) uint8: the canvas background the app rendered for ``view`` in its last run."""
    at.selectbox(key="w_view").set_value(view).run()
    assert not at.exception, [e.message for e in at.exception]
    cache = at.session_state["seg.backgrounds"]
    prediction = at.session_state["seg.prediction"]
    shown = [key for key in cache if key[3] == prediction.key and key[4] == view]
    assert len(shown) == 1, list(cache)
    return np.asarray(Image.open(io.BytesIO(cache[shown[0]])).convert("RGB"))


def _oracle_proba(at) -> np.ndarray:
    """(h, w, K) probabilities of the canvas pixels from the model applied to the whole frame."""
    record = at.session_state["seg.image"]
    viewport = at.session_state["seg.canvas"].viewport
    frame = record.frames[0]
    proba = at.session_state["seg.model"].predict_proba(frame[..., 0] if frame.shape[-1] == 1 else frame)
    return proba[np.ix_(viewport.display_rows(), viewport.display_columns())]


def _expected(plain: np.ndarray, values: np.ndarray, opacity: float) -> np.ndarray:
    return blend_images(plain, heatmap(values), opacity)


def _assert_shows(picture: np.ndarray, expected: np.ndarray, other: np.ndarray) -> None:
    """``picture`` is ``expected`` (to PNG rounding), and clearly not ``other``."""
    difference = np.abs(picture.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.01, (difference.max(), difference.mean())
    assert np.abs(picture.astype(int) - other.astype(int)).mean() > 10


# --------------------------------------------------------------------------- views


def test_probability_and_uncertainty_views_show_the_chosen_class_values(app, lossless):
    draw(app, coins_strokes(app))
    opacity = float(app.session_state["w_opacity"])
    plain = _background(app, "image")
    proba = _oracle_proba(app)
    assert proba.shape[:2] == plain.shape[:2] and proba.shape[2] == 2
    background_id, coin_id = (c.id for c in app.session_state["seg.classes"])

    coin = _background(app, f"probability:{coin_id}")
    _assert_shows(coin, _expected(plain, proba[..., 1], opacity), _expected(plain, proba[..., 0], opacity))
    # Bright (hot) where the model says "coin": the coin strokes' canvas pixels.
    fit = app.session_state["seg.canvas"].fit_dict()
    x, y = (int(v * s) for v, s in zip(COIN_STROKES[0][0], (fit["scale_x"], fit["scale_y"])))
    assert proba[y, x, 1] > 0.5

    background = _background(app, f"probability:{background_id}")
    _assert_shows(background, _expected(plain, proba[..., 0], opacity), coin)

    unsure = _background(app, "uncertainty")
    _assert_shows(unsure, _expected(plain, uncertainty(proba), opacity), coin)


# --------------------------------------------------------------------------- classes


def test_removing_a_class_with_strokes_drops_them_and_renumbers_the_rest(app, lossless):
    app.button(key="w_new_class").click().run()
    app.text_input(key=f"w_class_name_{app.session_state['seg.classes'][2].id}").input("big coin").run()
    background, coin, big = class_colors(app)
    draw(
        app, [(BACKGROUND_STROKE, background), (COIN_STROKES[0], coin), (COIN_STROKES[1], coin), (COIN_STROKES[2], big)]
    )
    labels = app.session_state["seg.labels"][0][1]
    coin_pixels, big_pixels = labels == 2, labels == 3
    assert coin_pixels.sum() > 100 and big_pixels.sum() > 100
    assert app.session_state["seg.model"].class_names == ("background", "coin", "big coin")
    version = app.session_state["seg.model_version"]

    coin_id = app.session_state["seg.classes"][1].id
    app.button(key=f"w_class_remove_{coin_id}").click().run()
    assert not app.exception and errors(app) == []

    assert [c.name for c in app.session_state["seg.classes"]] == ["background", "big coin"]
    labels = app.session_state["seg.labels"][0][1]
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels[coin_pixels] == 0).all()  # the removed class's strokes are gone
    assert (labels[big_pixels] == 2).all()  # the next class's strokes moved down to label 2
    model = app.session_state["seg.model"]
    assert model.class_names == ("background", "big coin") and app.session_state["seg.model_version"] > version
    prediction = app.session_state["seg.prediction"]
    assert set(np.unique(prediction.labels)) <= {1, 2}
    assert (prediction.labels[big_pixels] == 2).mean() > 0.95

    # "Probability of big coin" now shows the model's second column.
    opacity = float(app.session_state["w_opacity"])
    plain = _background(app, "image")
    proba = _oracle_proba(app)
    big_id = app.session_state["seg.classes"][1].id
    shown = _background(app, f"probability:{big_id}")
    _assert_shows(shown, _expected(plain, proba[..., 1], opacity), _expected(plain, proba[..., 0], opacity))


# --------------------------------------------------------------------------- an RGB sample


def _stained_truth(rgb: np.ndarray) -> np.ndarray:
    """Rough mask of the brown (DAB-stained) tissue of the immunohistochemistry sample (Otsu)."""
    from skimage.color import rgb2hed
    from skimage.filters import gaussian, threshold_otsu

    dab = gaussian(rgb2hed(rgb)[..., 2], sigma=4)
    return dab > threshold_otsu(dab)


def test_an_rgb_sample_is_segmented_with_its_colours():
    from scipy import ndimage

    at = new_app()
    at.run()
    at.selectbox(key="w_sample").set_value("immunohistochemistry").run()
    assert not at.exception and errors(at) == []
    record = at.session_state["seg.image"]
    assert record.shape == (1, 512, 512) and record.n_channels == 3
    truth = _stained_truth(record.frames[0])

    # Strokes along rows: three through stained tissue (class 2), three through the rest (class 1).
    inner = ndimage.binary_erosion(truth, iterations=8)
    outer = ndimage.binary_erosion(~truth, iterations=8)
    strokes = []
    for mask, color in ((inner, class_colors(at)[1]), (outer, class_colors(at)[0])):
        components, count = ndimage.label(mask)
        sizes = ndimage.sum(mask, components, range(1, count + 1))
        for label in np.argsort(sizes)[::-1][:3] + 1:
            rows, cols = np.nonzero(components == label)
            row = int(np.median(rows))
            on_row = cols[rows == row]
            strokes.append(([(float(on_row.min()), float(row)), (float(on_row.max()), float(row))], color))
    draw(at, strokes, width=4)

    model = at.session_state["seg.model"]
    assert model.n_channels == 3 and model.class_names == ("background", "nucleus")
    prediction = at.session_state["seg.prediction"]
    assert prediction.labels.shape == (512, 512)
    agreement = ((prediction.labels == 2) == truth).mean()
    assert agreement > 0.85, agreement
    assert 0.4 < (prediction.labels == 2).mean() < 0.7


# --------------------------------------------------------------------------- CSV downloads


@pytest.fixture
def media(monkeypatch):
    """The in-memory media stores of AppTest runs (where download button bytes are kept)."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    stores: list = []

    class Recorded(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recorded)
    return stores


def _downloaded(at, stores: list, key: str) -> tuple[str, bytes]:
    """(file name, bytes) a visitor gets from the download button ``key`` of the last run."""
    button = next(b for b in at.get("download_button") if b.proto.id.endswith(key))
    file_id = button.proto.url.rsplit("/", 1)[1].split(".")[0]
    media_file = stores[-1].get_file(file_id)
    return media_file.filename, media_file.content


def test_measurement_csv_downloads_parse_to_the_table(media):
    at = new_app()
    at.run()
    draw(at, coins_strokes(at))
    at.session_state["measure_panel"] = True
    at.run()
    assert not at.exception
    name, data = _downloaded(at, media, "w_dl_measure_csv")
    assert name == "coins_measurements.csv"
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert list(rows[0]) == list(COLUMNS)
    labels = at.session_state["seg.prediction"].labels
    assert [r["class"] for r in rows] == ["background", "coin"]
    assert [int(r["pixels"]) for r in rows] == [int((labels == 1).sum()), int((labels == 2).sum())]
    assert sum(float(r["area_fraction"]) for r in rows) == pytest.approx(1.0)
    table = at.dataframe[0].value
    assert [int(v) for v in table["objects"]] == [int(r["objects"]) for r in rows]


def test_measurements_over_frames_csv_has_a_row_per_frame_and_class(media):
    from tests.app.conftest import tiff_bytes, upload

    at = new_app()
    at.run()
    rng = np.random.default_rng(3)
    stack = rng.integers(20, 60, (3, 48, 64)).astype(np.uint8)
    for t in range(3):
        stack[t, 10:30, 10 + 10 * t : 30 + 10 * t] += 150  # a bright square moving right
    upload(at, "w_image_upload", "moving.tif", tiff_bytes(stack), "image/tiff")
    background, square = class_colors(at)[:2]
    draw(at, [([(2.0, 40.0), (60.0, 40.0)], background), ([(14.0, 20.0), (26.0, 20.0)], square)], width=3)
    at.session_state["stack_panel"] = True
    at.run()
    at.button(key="w_measure_stack").click().run()
    assert not at.exception
    name, data = _downloaded(at, media, "w_dl_stack_csv")
    assert name == "moving_frames_measurements.csv"
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert list(rows[0]) == list(FRAME_COLUMNS)
    assert [(r["frame"], r["class"]) for r in rows] == [
        (str(t), c)
        for t in range(3)
        for c in ("background", "coin")  # the classes carry over
    ]
    for t in range(3):
        square_pixels = int(next(r for r in rows if r["frame"] == str(t) and r["class"] == "coin")["pixels"])
        assert 300 <= square_pixels <= 500, (t, square_pixels)  # the 20 x 20 square in every frame
