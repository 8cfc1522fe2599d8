"""seg.ui.canvas: strokes kept in image pixels, shown through a viewport, merged back after undo."""

from __future__ import annotations

import numpy as np

from seg.strokes import BackgroundFit, parse_canvas
from seg.ui.canvas import EMPTY_DRAWING, MountedCanvas, transform_drawing
from seg.viewport import Viewport
from tests.fabric import fabric_path

RED, BLUE = "#ff0000", "#0000ff"
COLORS = {RED: 1, BLUE: 2}


def path(points, color, width=4.0) -> dict:
    return fabric_path(points, color, width)


def image_strokes(objects, shape=(4000, 4000)):
    fit = BackgroundFit(shape[1], shape[0])
    return [
        (s.label, np.round(s.xy, 6).tolist(), round(s.width, 6))
        for s in parse_canvas({"objects": objects}, fit, COLORS)
    ]


def test_projection_shows_strokes_where_they_are_and_maps_back():
    view = Viewport.at(4000, 4000, 2.0, (1000, 1000))  # window x, y 810..1190, canvas 760
    stored = [
        path([(900.0, 950.0), (950.0, 960.0)], RED, 3.0),
        {
            "type": "Line",
            "originX": "center",
            "originY": "center",
            "left": 1000.0,
            "top": 1000.0,
            "width": 20.0,
            "height": 0.0,
            "x1": -10.0,
            "y1": 0.0,
            "x2": 10.0,
            "y2": 0.0,
            "stroke": BLUE,
            "strokeWidth": 2.0,
            "strokeLineCap": "butt",
        },
        {
            "type": "Rect",
            "originX": "left",
            "originY": "top",
            "left": 1100.0,
            "top": 1050.0,
            "width": 30.0,
            "height": 10.0,
            "stroke": BLUE,
            "strokeWidth": 2.0,
            "strokeUniform": True,
        },
    ]
    mounted = MountedCanvas.mount("k", "digest", 0, view, {**EMPTY_DRAWING, "objects": stored})
    shown = mounted.initial_drawing["objects"]
    seen = [
        (s.label, np.round(s.xy, 6).tolist(), round(s.width, 6))
        for s in parse_canvas({"objects": shown}, BackgroundFit.from_component(view.fit_dict(), (4000, 4000)), COLORS)
    ]
    assert seen == image_strokes(stored)  # the canvas shows them at the same image pixels
    assert shown[0]["strokeWidth"] == 6.0  # 3 image px at 2:1
    back = transform_drawing(shown, (0.5, 0.5), (view.left, view.top))
    assert image_strokes(back) == image_strokes(stored)


def test_merge_keeps_strokes_outside_the_view_in_order_and_follows_undo():
    view = Viewport.at(4000, 4000, 1.0, (1000, 1000))  # window 620..1380
    far = path([(3000.0, 3000.0), (3100.0, 3000.0)], RED)  # off screen: not sent, always kept
    near_a = path([(900.0, 900.0), (950.0, 900.0)], BLUE)
    near_b = path([(1000.0, 1100.0), (1050.0, 1100.0)], RED)
    mounted = MountedCanvas.mount("k", "d", 0, view, {"objects": [near_a, far, near_b]})
    assert mounted.shown == (0, 2) and len(mounted.initial_drawing["objects"]) == 2
    sent = mounted.initial_drawing["objects"]
    new = path([(10.0, 10.0), (40.0, 10.0)], BLUE)  # drawn on the canvas: canvas pixels
    merged = mounted.merge({"objects": [*sent, new]})["objects"]
    assert merged[:3] == [near_a, far, near_b]
    assert image_strokes(merged[3:]) == image_strokes([path([(630.0, 630.0), (660.0, 630.0)], BLUE)])
    # undo twice (the new stroke, then near_b), then a different stroke: near_b is gone
    other = path([(100.0, 100.0), (130.0, 100.0)], RED)
    merged = mounted.merge({"objects": [sent[0], other]})["objects"]
    assert merged[:2] == [near_a, far] and len(merged) == 3
    # reset (clear) removes what the canvas showed, never what it did not show
    assert mounted.merge({"objects": []})["objects"] == [far]
