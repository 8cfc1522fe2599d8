"""What the panels mark on the canvas itself: "label here next" boxes and object outlines are
drawn into the canvas background at the viewport's coordinates, follow the filter and toggles,
and "go there" / a picked object move the view (AppTest, strokes injected)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.app.conftest import coins_strokes, draw
from tests.app.test_accuracy_panel import click, open_panel, strokes


def background(app) -> np.ndarray:
    """(h, w, 3) int of the canvas background shown in the last run (the most recently used)."""
    cache = app.session_state["seg.backgrounds"]
    data = list(cache.values())[-1]
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int64)


def canvas_box(view, region) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) canvas pixels of an image box, computed from the viewport fields."""
    sy, sx = view.canvas_height / view.height, view.canvas_width / view.width
    return (
        int(np.floor((region.row0 - view.top) * sy)),
        int(np.floor((region.col0 - view.left) * sx)),
        int(np.ceil((region.row1 - view.top) * sy)),
        int(np.ceil((region.col1 - view.left) * sx)),
    )


def yellow(pixels: np.ndarray) -> np.ndarray:
    """Which pixels look like the highlight (#ffd400), allowing for JPEG."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return (r > 190) & (g > 150) & (b < 110)


def _selected_box_shows(app, region) -> tuple[np.ndarray, tuple]:
    view = app.session_state["seg.canvas"].viewport
    top, left, bottom, right = canvas_box(view, region)
    picture = background(app)
    h, w = picture.shape[:2]
    cols = slice(max(left + 6, 0), min(right - 6, w))
    rows = slice(max(top + 6, 0), min(bottom - 6, h))
    edges = []
    if 0 <= top < h:
        edges.append(yellow(picture[top + 1, cols]).mean())
    if 0 <= bottom - 2 < h:
        edges.append(yellow(picture[bottom - 2, cols]).mean())
    if 0 <= left < w:
        edges.append(yellow(picture[rows, left + 1]).mean())
    if 0 <= right - 2 < w:
        edges.append(yellow(picture[rows, right - 2]).mean())
    return np.array(edges), (top, left, bottom, right)


def test_label_next_boxes_are_on_the_canvas_at_any_zoom_and_can_be_hidden(app):
    app.selectbox(key="w_view").set_value("image").run()  # no class tint: yellow is the box's
    draw(app, strokes(app))
    open_panel(app)
    regions = app.session_state["seg.accuracy"]["next"][1]
    assert regions
    region = regions[0]
    edges, _ = _selected_box_shows(app, region)
    assert len(edges) >= 2 and edges.min() > 0.9, edges  # the selected box's sides are yellow on the canvas

    # Another box selected: the first one is no longer yellow, the second one is.
    if len(regions) > 1:
        app.radio(key="w_next_region").set_value(1).run()
        assert _selected_box_shows(app, regions[1])[0].min() > 0.9
        assert _selected_box_shows(app, region)[0].max() < 0.2
        app.radio(key="w_next_region").set_value(0).run()

    # "Go there" zooms the canvas in; the box is drawn where the zoomed view shows it.
    click(app, "w_go_to_region")
    view = app.session_state["seg.canvas"].viewport
    assert view.zoom > 2.5
    edges, (top, left, bottom, right) = _selected_box_shows(app, region)
    assert 0 <= top and bottom <= view.canvas_height and 0 <= left and right <= view.canvas_width
    assert len(edges) == 4 and edges.min() > 0.9, edges

    # Switched off: no yellow box on the canvas.
    app.toggle(key="w_next_on_canvas").set_value(False).run()
    assert _selected_box_shows(app, region)[0].max() < 0.2


def _objects(app):
    app.selectbox(key="w_view").set_value("image").run()  # no class tint under the outlines
    draw(app, coins_strokes(app))
    app.session_state["objects_panel"] = True
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app.session_state["seg.objects"]["found"]


def _outline_difference(app) -> np.ndarray:
    """(h, w) bool: canvas pixels that change when the outlines are switched off."""
    with_outlines = background(app)
    app.toggle(key="w_obj_on_canvas").set_value(False).run()
    without = background(app)
    app.toggle(key="w_obj_on_canvas").set_value(True).run()
    return np.abs(with_outlines - without).sum(axis=-1) > 60


def _display(app, instances: np.ndarray) -> np.ndarray:
    view = app.session_state["seg.canvas"].viewport
    return instances[np.ix_(view.display_rows(), view.display_columns())]


def _near(mask: np.ndarray, distance: int = 2) -> np.ndarray:
    from scipy import ndimage as ndi

    return ndi.binary_dilation(mask, iterations=distance)


def test_object_outlines_on_the_canvas_follow_the_filter(app):
    found = _objects(app)
    changed = _outline_difference(app)
    shown = _display(app, found.instances)
    from seg.render import outline

    edges = outline(shown) > 0
    assert changed[edges].mean() > 0.8  # every object's outline is drawn on the canvas
    assert not changed[~_near(edges)].any()  # and nothing away from them

    # Filter: keep the larger half; the outlines of the dropped objects leave the canvas.
    areas = found.table["area"].to_numpy()
    threshold = float(np.median(areas))
    slider = app.slider(key="w_obj_range_area")
    slider.set_value((threshold, float(slider.max))).run()
    dropped = [int(label) for label, area in zip(found.table["label"], areas) if area < threshold]
    kept = [int(label) for label, area in zip(found.table["label"], areas) if area >= threshold]
    changed = _outline_difference(app)
    dropped_edges = edges & np.isin(shown, dropped) & ~_near(np.isin(shown, kept), 3)
    kept_edges = edges & np.isin(shown, kept)
    assert dropped_edges.sum() > 50 and kept_edges.sum() > 50
    assert changed[kept_edges].mean() > 0.8
    assert changed[dropped_edges].mean() < 0.05


def test_a_picked_object_is_filled_on_the_canvas_and_brought_into_view(app):
    found = _objects(app)
    table = found.table
    largest = table.loc[table["area"].idxmax()]
    label = int(largest["label"])
    app.selectbox(key="w_obj_pick").set_value(label).run()
    picture = background(app)
    inside = _display(app, found.instances) == label
    core = inside & ~_near(~inside, 3)
    assert core.sum() > 20 and yellow(picture[core]).mean() > 0.5  # its inside is filled yellow

    # Zoomed in elsewhere, a picked object moves the view onto it (the callback of a row click).
    app.selectbox(key="w_zoom").set_value(8.0).run()
    app.button(key="w_pan_left").click().run()
    app.button(key="w_pan_up").click().run()
    assert app.session_state["seg.objects"]["found"] is found  # same labels: not searched again per view
    box = tuple(int(largest[k]) for k in ("bbox_top", "bbox_left", "bbox_bottom", "bbox_right"))
    before = app.session_state["seg.viewport"]
    assert not (before.top <= box[0] and box[2] <= before.top + before.height)  # off screen now
    # Picking it again (a row click or the chooser) moves the view onto it at the same zoom.
    app.selectbox(key="w_obj_pick").set_value(None).run()
    app.selectbox(key="w_obj_pick").set_value(label).run()
    assert not app.exception, [e.message for e in app.exception]
    after = app.session_state["seg.canvas"].viewport
    assert after.zoom == before.zoom
    assert after.top <= box[0] and box[2] <= after.top + after.height
    assert after.left <= box[1] and box[3] <= after.left + after.width
    picture = background(app)
    inside = _display(app, found.instances) == label
    core = inside & ~_near(~inside, 3)
    assert core.sum() > 100 and yellow(picture[core]).mean() > 0.5  # filled in the zoomed view too
