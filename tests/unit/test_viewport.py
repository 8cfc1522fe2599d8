"""seg.viewport: the window shown on the canvas and the canvas <-> image mapping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seg.errors import SettingsError
from seg.render import resize_labels
from seg.strokes import BackgroundFit
from seg.viewport import Viewport, zoom_label

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)

sizes = st.integers(1, 20_000)
zooms = st.sampled_from([1 / 32, 1 / 8, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0]) | st.floats(0.01, 16.0)


@PROPERTY
@given(height=sizes, width=sizes, zoom=zooms, fx=st.floats(-0.5, 1.5), fy=st.floats(-0.5, 1.5))
def test_round_trip_and_window_inside_image(height, width, zoom, fx, fy):
    view = Viewport.at(height, width, zoom, (fx * width, fy * height))
    assert 0 <= view.top and view.top + view.height <= height
    assert 0 <= view.left and view.left + view.width <= width
    assert view.canvas_height <= 760 and view.canvas_width <= 760
    canvas = np.array([[0.0, 0.0], [view.canvas_width, view.canvas_height], [12.25, 7.5]])
    assert np.allclose(view.to_canvas(view.to_image(canvas)), canvas, rtol=0, atol=1e-7)
    image = np.array([[view.left, view.top], [view.left + view.width, view.top + view.height]], float)
    corners = view.to_canvas(image)
    assert np.allclose(corners, [[0, 0], [view.canvas_width, view.canvas_height]], atol=1e-7)


@PROPERTY
@given(height=sizes, width=sizes, zoom=zooms, fx=st.floats(0, 1), fy=st.floats(0, 1))
def test_fit_dict_is_the_strokes_mapping(height, width, zoom, fx, fy):
    view = Viewport.at(height, width, zoom, (fx * width, fy * height))
    fit = BackgroundFit.from_component(view.fit_dict(), image_shape=(height, width))
    points = np.array([[0.5, 0.5], [view.canvas_width - 0.25, 3.0]])
    assert np.allclose(fit.canvas_to_image(points), view.to_image(points), rtol=1e-12, atol=1e-9)


@PROPERTY
@given(height=st.integers(1, 3000), width=st.integers(1, 3000), zoom=zooms, fx=st.floats(0, 1), fy=st.floats(0, 1))
def test_display_pixels_are_the_resized_window(height, width, zoom, fx, fy):
    view = Viewport.at(height, width, zoom, (fx * width, fy * height))
    ramp = np.arange(height * width, dtype=np.int64).reshape(height, width)
    expected = resize_labels(ramp[view.window], view.canvas_size)
    shown = ramp[np.ix_(view.display_rows(), view.display_columns())]
    assert np.array_equal(shown, expected)
    # the display pixel centre maps into the image pixel it shows
    centres = view.to_image(np.stack([np.arange(view.canvas_width) + 0.5, np.full(view.canvas_width, 0.5)], -1))
    assert np.array_equal(np.floor(centres[:, 0] + 1e-9).astype(int), view.display_columns())


def test_fit_is_the_old_canvas_geometry():
    view = Viewport.fit(512, 384)
    assert view.shows_whole_image and view.canvas_size == (760, 570)
    small = Viewport.fit(100, 50)
    assert small.canvas_size == (200, 100) and small.zoom == 2.0


def test_one_to_one_shows_exact_pixels_and_pans_by_screens():
    view = Viewport.at(8192, 8192, 1.0, (4000, 3000))
    assert (view.height, view.width, view.canvas_height, view.canvas_width) == (760, 760, 760, 760)
    assert (view.left, view.top) == (3620, 2620)
    assert np.array_equal(view.to_image([[10.0, 20.0]]), [[3630.0, 2640.0]])
    moved = view.panned(1, 0)
    assert (moved.left, moved.top) == (4380, 2620)
    far = view.panned(100, -100)
    assert (far.left, far.top) == (8192 - 760, 0)
    assert view.zoomed(4).width == 190 and view.zoomed(4).centre == view.centre
    assert view.centred_at(0, 0).left == 0


def test_zoom_out_of_a_small_axis_shows_it_whole():
    view = Viewport.at(100, 5000, 1.0, (2500, 50))
    assert (view.top, view.height, view.canvas_height) == (0, 100, 100)
    assert view.width == 760


def test_refuses_windows_outside_the_image():
    with pytest.raises(SettingsError, match="outside the image"):
        Viewport(100, 100, 50, 0, 60, 10, 60, 10)
    with pytest.raises(SettingsError, match="zoom"):
        Viewport.at(100, 100, 0.0, (0, 0))


def test_zoom_labels():
    assert [zoom_label(z) for z in (1, 2, 0.25, 1.48)] == ["1:1", "2:1", "1:4", "1.48:1"]
