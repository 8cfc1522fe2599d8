"""Helpers for driving the main page with Streamlit's AppTest.

Strokes are injected the way the browser reports them: the canvas component's value in
``session_state[<canvas key>]`` is ``{"drawing": {"raw": <Fabric JSON>, "data": None},
"backgroundFit": {...}}``; the app exposes the canvas it shows in ``seg.canvas`` (a
:class:`seg.ui.canvas.MountedCanvas`: its ``key`` and its canvas -> image mapping ``fit_dict()``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.fabric import fabric_path

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")

# Coins sample (303 x 384): image (x, y) = (column, row) points on background and on coins.
BACKGROUND_STROKE = [(10.0, 158.0), (300.0, 158.0)]
COIN_STROKES = [[(198.0, 193.0), (226.0, 193.0)], [(195.0, 123.0), (215.0, 123.0)], [(258.0, 118.0), (282.0, 118.0)]]


def new_app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=60)


@pytest.fixture
def app():
    """The main page after its first run."""
    at = new_app()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def canvas_report(objects: list, fit: dict) -> dict:
    """What the canvas component reports to the app: its Fabric ``objects`` and the background fit."""
    return {
        "drawing": {"raw": {"version": "7.4.0", "objects": list(objects), "background": ""}, "data": None},
        "backgroundFit": {
            "naturalWidth": fit["natural_width"],
            "naturalHeight": fit["natural_height"],
            "scaleX": fit["scale_x"],
            "scaleY": fit["scale_y"],
            "offsetX": 0,
            "offsetY": 0,
        },
    }


def canvas_fit(at) -> dict:
    """The canvas -> image mapping of the canvas shown (``background_fit`` form)."""
    return at.session_state["seg.canvas"].fit_dict()


def canvas_key(at) -> str:
    return at.session_state["seg.canvas"].key


def to_canvas(at, points_xy):
    fit = canvas_fit(at)
    return [(x * fit["scale_x"] + fit["offset_x"], y * fit["scale_y"] + fit["offset_y"]) for x, y in points_xy]


def draw(at, strokes: list[tuple], width: float = 12.0) -> None:
    """Replace the canvas content by ``strokes`` = [(image points, colour[, canvas width]), ...], rerun."""
    key = canvas_key(at)
    fit = canvas_fit(at)
    objects = [fabric_path(to_canvas(at, s[0]), s[1], s[2] if len(s) > 2 else width) for s in strokes]
    at.session_state[key] = canvas_report(objects, fit)
    at.run()
    assert not at.exception, [e.message for e in at.exception]


def class_colors(at) -> list[str]:
    return [c.color for c in at.session_state["seg.classes"]]


def coins_strokes(at) -> list[tuple[list[tuple[float, float]], str]]:
    background, coin = class_colors(at)[:2]
    return [(BACKGROUND_STROKE, background)] + [(s, coin) for s in COIN_STROKES]


def status(at) -> str:
    """Text of the status marker (the last element of every run)."""
    texts = [c.value for c in at.caption if c.value.startswith("ready")]
    assert texts, "status marker missing"
    return texts[-1]


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def tiff_bytes(array: np.ndarray) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack")
    return buffer.getvalue()


def upload(at, key: str, name: str, data: bytes, mime: str = "application/octet-stream") -> None:
    at.file_uploader(key=key).set_value((name, data, mime))
    at.run()
    assert not at.exception, [e.message for e in at.exception]


def download(at, key: str):
    """(file name, bytes) of the download button ``key`` offered in the last run."""
    spec = next(s for s in at.session_state["seg.downloads"] if s.key == key)
    return spec.file_name, spec.make()
