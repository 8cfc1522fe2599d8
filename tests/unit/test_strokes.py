"""Scribbles: canvas JSON -> image-pixel strokes -> label images, and the annotation file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from seg.errors import AnnotationError, SettingsError
from seg.strokes import (
    ERASER_COLOR,
    MAX_OBJECTS,
    MAX_PATH_COMMANDS,
    MIN_STROKE_RADIUS,
    Annotations,
    BackgroundFit,
    Stroke,
    normalize_color,
    parse_canvas,
    rasterize,
)
from tests.fabric import fabric_path

RED, BLUE = "#ff0000", "#0072b2"
CLASSES = {RED: 1, BLUE: 2}


# --------------------------------------------------------------------------- helpers


def component_fit(natural: tuple[int, int], canvas: tuple[int, int], mode: str = "stretch") -> dict:
    """What the component reports (snake_case), computed as its JS does. Sizes are (W, H)."""
    (nw, nh), (cw, ch) = natural, canvas
    if mode == "contain":
        scale = min(cw / nw, ch / nh)
        return {
            "natural_width": nw,
            "natural_height": nh,
            "scale_x": scale,
            "scale_y": scale,
            "offset_x": (cw - nw * scale) / 2,
            "offset_y": (ch - nh * scale) / 2,
        }
    return {
        "natural_width": nw,
        "natural_height": nh,
        "scale_x": cw / nw,
        "scale_y": ch / nh,
        "offset_x": 0.0,
        "offset_y": 0.0,
    }


def line_path(points, color=RED, width=10.0, **extra) -> dict:
    return fabric_path(points, color, width, **extra)


def quadratic(p0, c, p1, t):
    t = np.asarray(t)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p1


def pencil_path(points, color=RED, width=10.0) -> dict:
    """A path as Fabric's PencilBrush builds it: M, Q to midpoints, final L (no decimation).

    left/top come from Fabric's bounds rule (each Q bounded as the cubic with both control points
    at the Q's control), computed here independently by dense sampling.
    """
    pts = [np.asarray(p, dtype=float) for p in points]
    commands = [["M", *pts[0]]]
    for a, b in zip(pts[:-1], pts[1:]):
        commands.append(["Q", *a, *((a + b) / 2)])
    commands.append(["L", *pts[-1]])
    t = np.linspace(0, 1, 20001)[:, None]
    samples, current = [], pts[0]
    for command in commands[1:-1]:
        c, end = np.array(command[1:3]), np.array(command[3:5])
        samples.append((1 - t) ** 3 * current + 3 * (1 - t) * t * c + t**3 * end)
        current = end
    samples.append(np.array([commands[0][1:], pts[-1]]))
    allpoints = np.vstack(samples)
    low, high = allpoints.min(axis=0), allpoints.max(axis=0)
    return {
        "type": "Path",
        "originX": "center",
        "originY": "center",
        "left": (low[0] + high[0]) / 2,
        "top": (low[1] + high[1]) / 2,
        "stroke": color,
        "strokeWidth": width,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
        "path": [[c, *map(float, rest)] for c, *rest in commands],
    }


def drawing(*objects) -> dict:
    return {"version": "7.4.0", "objects": list(objects)}


def identity(height: int, width: int) -> BackgroundFit:
    return BackgroundFit.from_component(None, (height, width))


def disc(shape, centre, radius):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    return (cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 <= radius**2


def distance_mask(stroke: Stroke, shape) -> np.ndarray:
    """Brute force: pixel centres within the stroke radius of a round-capped polyline."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    p = np.stack([cols, rows], axis=-1)
    radius = max(stroke.width / 2, MIN_STROKE_RADIUS)
    xy = stroke.xy
    pairs = [(xy[0], xy[0])] if len(xy) == 1 else list(zip(xy[:-1], xy[1:]))
    mask = np.zeros(shape, dtype=bool)
    for a, b in pairs:
        d = b - a
        t = np.clip(((p - a) @ d) / (d @ d), 0, 1) if d @ d > 0 else np.zeros(shape)
        mask |= (((p - a) - t[..., None] * d) ** 2).sum(axis=-1) <= radius**2
    return mask


# --------------------------------------------------------------------------- canvas -> image mapping


def test_horizontal_stroke_on_downscaled_canvas_lands_on_full_resolution_pixels():
    # 2048 x 1024 image shown as a 512 x 256 copy on a 512 x 256 canvas: factor 4
    fit = BackgroundFit.from_component(component_fit((512, 256), (512, 256)), (1024, 2048))
    strokes = parse_canvas(drawing(line_path([(50, 100), (450, 100)], width=10)), fit, CLASSES)
    assert strokes == [Stroke("path", 1, ((200.0, 400.0), (1800.0, 400.0)), 40.0)]
    labels = rasterize(strokes, (1024, 2048))
    rows, cols = np.nonzero(labels)
    assert (rows.min(), rows.max()) == (380, 419)  # centres within 20 px of y = 400
    assert (cols.min(), cols.max()) == (180, 1819)  # round caps reach 20 px past the ends
    assert set(np.unique(labels)) == {0, 1}


def test_contain_fit_with_margins_maps_through_the_offset():
    # a 1000 x 500 image shown as 500 x 250 on a 600 x 400 canvas with background_image_fit="contain"
    reported = component_fit((500, 250), (600, 400), "contain")
    assert reported["offset_y"] == pytest.approx(50.0)  # scale 1.2, 300 px high, centred
    fit = BackgroundFit.from_component(reported, (500, 1000))
    (stroke,) = parse_canvas(drawing(line_path([(0, 50), (600, 350)], width=6)), fit, CLASSES)
    np.testing.assert_allclose(stroke.xy, [[0, 0], [1000, 500]])
    assert stroke.width == pytest.approx(10.0)


def test_from_component_accepts_camel_case_snake_case_and_none():
    snake = component_fit((256, 128), (512, 256))
    camel = {"naturalWidth": 256, "naturalHeight": 128, "scaleX": 2.0, "scaleY": 2.0, "offsetX": 0, "offsetY": 0}
    a = BackgroundFit.from_component(snake, (512, 1024))
    b = BackgroundFit.from_component(camel, (512, 1024))
    assert a == b == BackgroundFit(1024, 512, 0.5, 0.5, 0.0, 0.0)
    assert BackgroundFit.from_component(None, (30, 40)) == BackgroundFit(40, 30)


GOOD_FIT = {"natural_width": 100, "natural_height": 100, "scale_x": 1.0, "scale_y": 1.0, "offset_x": 0, "offset_y": 0}


@pytest.mark.parametrize(
    "reported",
    [
        {**GOOD_FIT, "scale_x": 0},
        {**GOOD_FIT, "scale_x": -1},
        {**GOOD_FIT, "scale_x": float("nan")},
        {**GOOD_FIT, "scale_x": float("inf")},
        {**GOOD_FIT, "scale_x": "1"},
        {**GOOD_FIT, "natural_width": 0},
        {key: value for key, value in GOOD_FIT.items() if key != "offset_y"},
        {**GOOD_FIT, "natural_height": 30},
        [1, 2, 3],
        "fit",
    ],
    ids=[
        "zero scale",
        "negative scale",
        "nan",
        "inf",
        "string",
        "zero size",
        "missing key",
        "other image's aspect",
        "list",
        "string fit",
    ],
)
def test_from_component_refuses_invalid_fits(reported):
    with pytest.raises(AnnotationError):
        BackgroundFit.from_component(reported, (100, 100))


@pytest.mark.parametrize("shape", [(0, 10), (10,), (10, -1), (1.5, 10), "100x100", (True, 10)])
def test_from_component_refuses_invalid_image_shapes(shape):
    with pytest.raises(AnnotationError):
        BackgroundFit.from_component(None, shape)


# --------------------------------------------------------------------------- what a stroke labels


def test_a_single_click_labels_a_disc_of_the_stroke_width():
    strokes = parse_canvas(drawing(line_path([(20.3, 15.6)], width=9)), identity(40, 50), CLASSES)
    assert [s.points for s in strokes] == [((20.3, 15.6),)]
    labels = rasterize(strokes, (40, 50))
    np.testing.assert_array_equal(labels > 0, disc((40, 50), (20.3, 15.6), 4.5))


def test_a_real_click_from_the_pencil_brush_is_a_disc():
    # PencilBrush turns a click into two points width/1000 apart
    click = {
        "type": "Path",
        "originX": "center",
        "originY": "center",
        "left": 30,
        "top": 20,
        "stroke": RED,
        "strokeWidth": 10,
        "path": [["M", 29.99, 20], ["Q", 30, 20, 30, 20], ["L", 30.01, 20]],
    }
    labels = rasterize(parse_canvas(drawing(click), identity(40, 60), CLASSES), (40, 60))
    assert labels.sum() == pytest.approx(disc((40, 60), (30, 20), 5).sum(), abs=4)
    assert labels[20, 30] == 1 and labels[20, 36] == 0


def test_rasterisation_matches_the_distance_rule_exactly():
    rng = np.random.default_rng(7)
    for _ in range(60):
        points = rng.uniform(-8, 48, size=(int(rng.integers(1, 7)), 2))
        stroke = Stroke("path", 1, points, float(rng.uniform(0.2, 20)))
        np.testing.assert_array_equal(rasterize([stroke], (32, 40)) > 0, distance_mask(stroke, (32, 40)))


def test_a_hair_thin_stroke_still_labels_the_pixel_under_it():
    labels = rasterize([Stroke("path", 1, ((10.5, 7.4),), 0.05)], (20, 20))
    assert labels[7, 10] == 1 and labels.sum() == 1
    corner = rasterize([Stroke("path", 1, ((10.0, 7.0),), 0.05)], (20, 20))
    assert corner[6:8, 9:11].all() and corner.sum() == 4  # on a corner: the 4 pixels around it


@pytest.mark.parametrize(
    "notation",
    [
        "#FF0000",
        "#ff0000",
        "#f00",
        "rgb(255,0,0)",
        "rgba(255, 0, 0, 1)",
        "rgb(100%, 0%, 0%)",
        " red ",
        "#ff0000ff",
        "rgba(255,0,0,0.5)",
    ],
)
def test_stroke_class_is_found_by_colour_in_any_notation(notation):
    strokes = parse_canvas(
        drawing(line_path([(5, 5), (15, 5)], color=notation)), identity(20, 20), {"rgb(255, 0, 0)": 1, "#0072B2": 2}
    )
    assert [s.label for s in strokes] == [1]


def test_class_colour_mapping_accepts_any_notation_too():
    strokes = parse_canvas(
        drawing(line_path([(5, 5), (15, 5)], color="#0072b2")), identity(20, 20), {"#FF0000": 1, "RGB(0, 114, 178)": 2}
    )
    assert [s.label for s in strokes] == [2]


def test_normalize_color():
    assert normalize_color("#ABC") == "#aabbcc"
    assert normalize_color("rgba(0,114,178,0.4)") == "#0072b2"
    for bad in ["#12", "rgb(300,0,0)", "rgba(0,0,0,0)", "transparent", "hsl(0,100%,50%)", "", None, 3]:
        with pytest.raises(AnnotationError):
            normalize_color(bad)


@pytest.mark.parametrize(
    "notation",
    [
        "#e69f00",
        "#E69F00",
        "#fc0",
        "#fc08",
        "#e69f0080",
        "rgb(230, 159, 0)",
        "rgba(230,159,0,0.5)",
        "rgb(230 159 0 / 40%)",
        "orange",
        " Navy ",
    ],
)
def test_stroke_and_class_colours_accept_the_same_notations(notation):
    from seg.render import normalize_color as class_color

    assert normalize_color(notation) == class_color(notation)


@pytest.mark.parametrize("junk", ["reddish", "hsl(0,100%,50%)", "rgb(256,0,0)", "#12345", "rgb(1,2)", ""])
def test_stroke_and_class_colours_refuse_the_same_junk(junk):
    from seg.render import normalize_color as class_color

    with pytest.raises(AnnotationError):
        normalize_color(junk)
    with pytest.raises(SettingsError):
        class_color(junk)


def test_strokes_of_unknown_colours_and_shapes_are_skipped():
    objects = [
        line_path([(5, 5), (15, 5)], color="#123456"),  # a removed class
        line_path([(5, 9), (15, 9)], color="rgba(255,0,0,0)"),  # invisible
        line_path([(5, 9), (15, 9)], color=None),
        {"type": "Circle", "left": 5, "top": 5, "radius": 3, "stroke": RED},
        {"type": "image", "src": "data:..."},
        {"type": "Textbox", "text": "hi", "stroke": RED},
        {"type": {"nested": ["junk"]}},
        {"no": "type"},
        line_path([(5, 12), (15, 12)], visible=False),
        line_path([(5, 15), (15, 15)]),  # the one real stroke
    ]
    strokes = parse_canvas(drawing(*objects), identity(20, 20), CLASSES)
    assert [(s.label, s.points) for s in strokes] == [(1, ((5.0, 15.0), (15.0, 15.0)))]


def test_eraser_removes_labels_and_later_strokes_win():
    objects = [
        line_path([(5, 10), (35, 10)], color=RED, width=8),
        line_path([(20, 0), (20, 20)], color=BLUE, width=4),
        line_path([(30, 10)], color=ERASER_COLOR, width=6),
    ]
    strokes = parse_canvas(drawing(*objects), identity(20, 40), CLASSES)
    assert [s.label for s in strokes] == [1, 2, 0]
    labels = rasterize(strokes, (20, 40))
    assert labels[10, 20] == 2  # blue crosses over red
    assert labels[10, 10] == 1
    assert labels[10, 30] == 0 and labels[10, 34] == 1  # erased disc of radius 3 around x = 30
    erased = disc((20, 40), (30, 10), 3)
    assert not labels[erased].any()


def test_strokes_of_other_frames_are_not_painted():
    fit = identity(10, 10)
    strokes = parse_canvas(drawing(line_path([(2, 2), (8, 2)])), fit, CLASSES, frame=0) + parse_canvas(
        drawing(line_path([(2, 7), (8, 7)], color=BLUE)), fit, CLASSES, frame=2
    )
    assert [s.frame for s in strokes] == [0, 2]
    assert set(np.unique(rasterize(strokes, (10, 10), frame=0))) == {0, 1}
    assert set(np.unique(rasterize(strokes, (10, 10), frame=2))) == {0, 2}
    assert not rasterize(strokes, (10, 10), frame=1).any()
    stack = Annotations(["a", "b"], [RED, BLUE], (3, 10, 10), strokes).label_stack()
    assert stack.shape == (3, 10, 10) and stack.dtype == np.uint8
    assert stack[0].max() == 1 and not stack[1].any() and stack[2].max() == 2


def test_rectangle_labels_its_area_and_border_as_drawn_by_the_rect_tool():
    # what the rect tool stores: left/top origin, strokeUniform, left/top at the stroke's outer edge
    rect = {
        "type": "Rect",
        "originX": "left",
        "originY": "top",
        "left": 100,
        "top": 50,
        "width": 200,
        "height": 100,
        "strokeWidth": 10,
        "strokeUniform": True,
        "stroke": BLUE,
        "fill": "rgba(0,0,0,0)",
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
    }
    (stroke,) = parse_canvas(drawing(rect), identity(300, 400), CLASSES)
    assert stroke.kind == "rect" and stroke.label == 2 and stroke.width == 10
    labels = rasterize([stroke], (300, 400))
    expected = np.zeros((300, 400), dtype=np.uint8)
    expected[50:160, 100:310] = 2  # outer edge 100..310 x 50..160, square corners
    np.testing.assert_array_equal(labels, expected)


def test_rotated_rectangle_keeps_mitred_corners():
    rect = {
        "type": "Rect",
        "left": 50,
        "top": 50,
        "width": 40,
        "height": 20,
        "angle": 30,
        "strokeWidth": 4,
        "stroke": RED,
    }
    (stroke,) = parse_canvas(drawing(rect), identity(100, 100), CLASSES)
    rows, cols = np.mgrid[0:100, 0:100] + 0.5
    theta = math.radians(30)
    u = (cols - 50) * math.cos(theta) + (rows - 50) * math.sin(theta)  # along the rect
    v = -(cols - 50) * math.sin(theta) + (rows - 50) * math.cos(theta)
    # the border is centred on the edge: the outer edge lies half the 4 px stroke outside
    inside = (np.abs(u) <= 22) & (np.abs(v) <= 12)
    np.testing.assert_array_equal(rasterize([stroke], (100, 100)) > 0, inside)


def test_line_tool_labels_a_flat_ended_segment():
    line = {
        "type": "Line",
        "originX": "center",
        "originY": "center",
        "left": 50,
        "top": 30,
        "x1": -40,
        "y1": 0,
        "x2": 40,
        "y2": 0,
        "width": 80,
        "height": 0,
        "strokeWidth": 6,
        "stroke": RED,
    }
    (stroke,) = parse_canvas(drawing(line), identity(60, 100), CLASSES)
    assert stroke.kind == "line" and stroke.points == ((10.0, 30.0), (90.0, 30.0))
    expected = np.zeros((60, 100), dtype=bool)
    expected[27:33, 10:90] = True  # no caps: columns 10..89, rows 27..32
    np.testing.assert_array_equal(rasterize([stroke], (60, 100)) > 0, expected)


def test_round_capped_and_zero_length_lines():
    base = {"type": "Line", "left": 20, "top": 20, "strokeWidth": 4, "stroke": RED}
    round_line = {**base, "x1": -5, "y1": -5, "x2": 5, "y2": 5, "strokeLineCap": "round"}
    dot_line = {**base, "x1": 0, "y1": 0, "x2": 0, "y2": 0}
    strokes = parse_canvas(drawing(round_line, dot_line), identity(40, 40), CLASSES)
    assert [(s.kind, s.points) for s in strokes] == [("path", ((15.0, 15.0), (25.0, 25.0)))]


def test_a_moved_scaled_rotated_path_lands_where_the_canvas_shows_it():
    drawn = line_path([(10, 10), (30, 10), (30, 20)])  # bounds centre (20, 15)
    moved = {**drawn, "left": 60, "top": 40, "scaleX": 2, "scaleY": 1.5, "angle": 90}
    (stroke,) = parse_canvas(drawing(moved), identity(100, 100), CLASSES)
    local = np.array([[10, 10], [30, 10], [30, 20]]) - (20, 15)
    scaled = local * (2, 1.5)
    expected = np.stack([-scaled[:, 1], scaled[:, 0]], axis=1) + (60, 40)  # +90 deg, y down
    np.testing.assert_allclose(stroke.xy, expected, atol=1e-9)
    assert stroke.width == pytest.approx(10 * 1.75)


def test_origin_left_top_places_the_path_by_its_outer_corner():
    drawn = line_path([(10, 10), (30, 20)], width=4)
    corner = {**drawn, "originX": "left", "originY": "top", "left": 50, "top": 60}
    (stroke,) = parse_canvas(drawing(corner), identity(100, 100), CLASSES)
    # Fabric counts the stroke width in the object's size: centre = left/top + (size + stroke) / 2
    np.testing.assert_allclose(stroke.xy, [[52, 62], [72, 72]])


def test_an_unmoved_pencil_stroke_follows_its_curves():
    raw = [(10, 40), (30, 12), (60, 50), (90, 20), (120, 45)]
    obj = pencil_path(raw, width=6)
    (stroke,) = parse_canvas(drawing(obj), identity(60, 140), CLASSES)
    # exact up to the test's own sampled estimate of Fabric's bounds
    np.testing.assert_allclose(stroke.xy[[0, -1]], [raw[0], raw[-1]], atol=1e-6)
    # every polyline vertex lies on the drawn quadratic curves
    curves, current = [], np.array(raw[0], dtype=float)
    for command in obj["path"][1:-1]:
        c, end = np.array(command[1:3]), np.array(command[3:5])
        curves.append(quadratic(current, c, end, np.linspace(0, 1, 4001)))
        current = end
    curves.append(np.array([current, raw[-1]]))
    dense = np.vstack(curves)
    gaps = np.min(np.linalg.norm(stroke.xy[:, None, :] - dense[None, :, :], axis=-1), axis=1)
    assert gaps.max() < 0.02
    assert len(stroke.points) > len(raw)  # curves were flattened into several chords


def test_strokes_outside_the_image_are_clipped():
    objects = [line_path([(-500, 5), (500, 5)], width=2), line_path([(1e6, 1e6), (2e6, 2e6)])]
    strokes = parse_canvas(drawing(*objects), identity(10, 10), CLASSES)
    labels = rasterize(strokes, (10, 10))
    assert labels.shape == (10, 10)
    np.testing.assert_array_equal(np.nonzero(labels.any(axis=1))[0], [4, 5])


def test_a_canvas_wide_freehand_stroke_on_a_large_image_rasterises():
    # performance sanity (no timing assert): 2000 points, width 20, 4096 x 4096
    t = np.linspace(0, 1, 2000)
    points = np.stack([48 + 4000 * t, 2048 + 1500 * np.sin(20 * t)], axis=1)
    labels = rasterize([Stroke("path", 1, points, 20.0)], (4096, 4096))
    length = np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1))
    assert labels.sum() == pytest.approx(length * 20 + math.pi * 100, rel=0.02)


def test_a_path_of_100000_points_is_handled():
    xs = np.linspace(0, 99, 100_000)
    path = [["M", 0.0, 5.0]] + [["L", float(x), 5.0 + (i % 2) * 0.01] for i, x in enumerate(xs[1:])]
    obj = {"type": "path", "left": 49.5, "top": 5.005, "stroke": RED, "strokeWidth": 2, "path": path}
    (stroke,) = parse_canvas(drawing(obj), identity(10, 100), CLASSES)
    labels = rasterize([stroke], (10, 100))
    assert labels[5].all() and labels[4].all() and not labels[7].any()


def test_thousands_of_small_strokes_are_handled():
    objects = [line_path([(i % 100, i // 100), (i % 100 + 1, i // 100)], width=1) for i in range(3000)]
    strokes = parse_canvas(drawing(*objects), identity(30, 101), CLASSES)
    assert len(strokes) == 3000
    assert rasterize(strokes, (30, 101)).all(axis=1).sum() == 30


# --------------------------------------------------------------------------- hostile canvas JSON


def _nested(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "json_data",
    [
        "{not json",
        b"\xff\xfe{}",
        "[" * 100_000 + "]" * 100_000,
        '{"objects": [{"type": "path", "stroke": "#f00", "path": [["M", NaN, 1]]}]}',
        [1, 2],
        42,
        {"objects": "many"},
        {"objects": [1, 2]},
        {"objects": [{"type": "path", "stroke": RED, "path": "M 0 0 L 5 5"}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", "10", "20"], ["L", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", True, 2], ["L", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", float("nan"), 2], ["L", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", float("inf"), 2], ["L", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", 1e300, 2], ["L", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", 10**400, 2], ["L", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", 1, 2], ["A", 5, 5, 0, 0, 1, 9, 9]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", 1, 2], ["l", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["L", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", 1], ["L", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [[], ["L", 5, 5]]}]},
        {"objects": [{"type": "path", "stroke": RED, "path": _nested(5000)}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", 1, 2]] + [["L", 3, 4]] * MAX_PATH_COMMANDS}]},
        {"objects": [line_path([(0, 0), (5, 5)])] * (MAX_OBJECTS + 1)},
        {"objects": [line_path([(0, 0), (5, 5)], left="12")]},
        {"objects": [line_path([(0, 0), (5, 5)], scaleX=1e300)]},
        {"objects": [line_path([(0, 0), (5, 5)], scaleX=1e6, left=9e6)]},
        {"objects": [line_path([(0, 0), (5, 5)], strokeWidth=-3)]},
        {"objects": [line_path([(0, 0), (5, 5)], strokeWidth="wide")]},
        {"objects": [line_path([(0, 0), (5, 5)], originX="middle")]},
        {"objects": [{"type": "rect", "stroke": RED, "width": -5, "height": 5}]},
        {"objects": [{"type": "rect", "stroke": RED, "width": [5], "height": 5}]},
        {"objects": [{"type": "line", "stroke": RED, "x1": 0, "y1": 0, "x2": None, "y2": float("nan")}]},
        {"objects": [{"type": "line", "stroke": RED, "x1": {"a": 1}, "y1": 0, "x2": 3, "y2": 4}]},
    ],
    ids=[
        "invalid text",
        "not utf-8",
        "deeply nested text",
        "NaN literal",
        "list",
        "number",
        "objects not a list",
        "objects not dicts",
        "path string",
        "string numbers",
        "bool number",
        "nan",
        "inf",
        "1e300",
        "huge int",
        "arc command",
        "relative command",
        "no M",
        "short command",
        "empty command",
        "nested junk",
        "too many commands",
        "too many objects",
        "string left",
        "huge scale",
        "far beyond the limit",
        "negative width",
        "string width",
        "bad origin",
        "negative rect",
        "list size",
        "nan line",
        "dict coordinate",
    ],
)
def test_malformed_canvas_json_raises_annotation_error(json_data):
    with pytest.raises(AnnotationError):
        parse_canvas(json_data, identity(100, 100), CLASSES)


@pytest.mark.parametrize(
    "json_data",
    [
        None,
        {},
        {"objects": []},
        {"objects": [], "background": ""},
        '{"objects": []}',
        {"objects": [{"type": "path", "stroke": RED}]},
        {"objects": [{"type": "path", "stroke": RED, "path": []}]},
        {"objects": [{"type": "path", "stroke": RED, "path": [["M", 3, 3]]}]},
        {"objects": [{"type": "path", "stroke": "#abcdef", "path": "junk of a removed class"}]},
    ],
)
def test_empty_or_strokeless_drawings_give_no_strokes(json_data):
    assert parse_canvas(json_data, identity(100, 100), CLASSES) == []


def test_missing_optional_fields_take_fabric_defaults():
    bare = {"type": "path", "stroke": RED, "path": [["M", 10, 10], ["L", 20, 10]]}  # no left/top
    (stroke,) = parse_canvas(drawing(bare), identity(50, 50), CLASSES)
    # Fabric 7 default origin is the centre, left/top default 0: the path is centred on (0, 0)
    assert stroke.points == ((-5.0, 0.0), (5.0, 0.0)) and stroke.width == 1.0


@pytest.mark.parametrize(
    "mapping",
    [{"#ff0000": 1, "red": 2}, {"nope": 1}, {RED: "1"}, {RED: -1}, {RED: True}, {ERASER_COLOR: 3}, ["#ff0000"]],
)
def test_invalid_colour_mappings_raise(mapping):
    with pytest.raises(AnnotationError):
        parse_canvas(drawing(), identity(10, 10), mapping)


def test_parse_canvas_refuses_bad_fit_and_frame():
    with pytest.raises(AnnotationError):
        parse_canvas(drawing(), {"scale_x": 1}, CLASSES)
    with pytest.raises(AnnotationError):
        parse_canvas(drawing(), identity(10, 10), CLASSES, frame=-1)


# --------------------------------------------------------------------------- strokes and rasterize


def test_stroke_normalises_points():
    path = Stroke("path", 1, [[1, 2], [1, 2], [3, 4], [3, 4], [1, 2]], 2)
    assert path.points == ((1.0, 2.0), (3.0, 4.0), (1.0, 2.0))
    counter_clockwise = Stroke("rect", 1, [(0, 0), (0, 5), (5, 5), (5, 0)], 1)
    assert counter_clockwise.points == ((0.0, 0.0), (5.0, 0.0), (5.0, 5.0), (0.0, 5.0))


@pytest.mark.parametrize(
    "args",
    [
        ("blob", 1, [(0, 0)], 1),
        ("path", -1, [(0, 0)], 1),
        ("path", 70000, [(0, 0)], 1),
        ("path", 1.0, [(0, 0)], 1),
        ("path", 1, [], 1),
        ("path", 1, [(0, 0, 0)], 1),
        ("path", 1, [(0, float("nan"))], 1),
        ("path", 1, [(0, 1e300)], 1),
        ("path", 1, [("a", 0)], 1),
        ("path", 1, "points", 1),
        ("path", 1, [(0, 0)], -1),
        ("path", 1, [(0, 0)], float("inf")),
        ("line", 1, [(0, 0)], 1),
        ("rect", 1, [(0, 0), (1, 1)], 1),
        ("path", 1, [(0, 0)] * 200_001, 1),
    ],
)
def test_invalid_strokes_raise(args):
    with pytest.raises(AnnotationError):
        Stroke(*args)


def test_rasterize_refuses_bad_arguments():
    stroke = Stroke("path", 300, [(1, 1)], 2)
    with pytest.raises(AnnotationError, match="uint16"):
        rasterize([stroke], (4, 4))
    assert rasterize([stroke], (4, 4), dtype=np.uint16).max() == 300
    for shape in [(0, 4), (4,), (4, 4, 4), (10**6, 10**6)]:
        with pytest.raises(AnnotationError):
            rasterize([stroke], shape)
    with pytest.raises(AnnotationError):
        rasterize([stroke], (4, 4), dtype=np.float32)
    with pytest.raises(AnnotationError):
        rasterize(["not a stroke"], (4, 4))


def test_rasterize_bounds_its_work():
    # a zig-zag of 100 000 image-high segments would take minutes: refused, not attempted
    zigzag = [(float(i % 50), 0.0 if i % 2 else 4000.0) for i in range(100_000)]
    with pytest.raises(AnnotationError, match="too large"):
        rasterize([Stroke("path", 1, zigzag, 2)], (4000, 50))


# --------------------------------------------------------------------------- annotation file


def _annotations() -> Annotations:
    strokes = [
        Stroke("path", 1, [(3.25, 4.5), (40.125, 20.0), (41, 22)], 6.5),
        Stroke("path", 2, [(10, 10)], 9, frame=1),
        Stroke("line", 2, [(1, 30), (45, 31)], 3),
        Stroke("rect", 1, [(20, 2), (35, 2), (35, 12), (20, 12)], 2, frame=1),
        Stroke("path", 0, [(38, 20), (42, 24)], 5),
    ]
    return Annotations(["membrane", "cell"], ["#E69F00", "rgb(86,180,233)"], (2, 40, 50), strokes, "slice.tif")


def test_annotation_file_round_trip_keeps_strokes_and_labels():
    original = _annotations()
    assert original.class_colors == ["#e69f00", "#56b4e9"]
    text = original.to_json()
    document = json.loads(text)
    assert document["format"] == "seg-annotations" and document["version"] == 1
    assert document["image_shape"] == [2, 40, 50]
    for loaded in (Annotations.from_json(text), Annotations.from_json(text.encode("utf-8"))):
        assert loaded == original
        np.testing.assert_array_equal(loaded.label_stack(), original.label_stack())
    assert original.labels(0)[20, 40] == 0  # the eraser stroke
    assert original.labels(1)[10, 10] == 2


def _file(**changes) -> str:
    document = json.loads(_annotations().to_json())
    document.update(changes)
    return json.dumps(document)


def _with_stroke(**changes) -> str:
    document = json.loads(_annotations().to_json())
    document["strokes"][0].update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        b"\xc3\x28",
        b"{" * 10,
        "[]",
        '"text"',
        _file(format="something-else"),
        _file(version=2),
        _file(version=True),
        _file(version="1"),
        _file(image_shape=[0, 40, 50]),
        _file(image_shape=[40, 50]),
        _file(image_shape="40x50"),
        _file(image_shape=[100_000, 100_000, 100_000]),
        _file(classes=[{"name": "a", "color": "#e69f00"}]),  # label 2 now out of range
        _file(classes=[{"name": "a", "color": "#e69f00"}, {"name": "b", "color": "#E69F00"}]),
        _file(classes=[{"name": "a", "color": "#e69f00"}, {"name": "b", "color": ERASER_COLOR}]),
        _file(classes=[{"name": "a", "color": "nope"}, {"name": "b", "color": "#000000"}]),
        _file(classes=[{"name": 1, "color": "#e69f00"}, {"name": "b", "color": "#000000"}]),
        _file(classes="a,b"),
        _file(strokes={}),
        _file(extra=1),
        _file(image_name=5),
        _with_stroke(label=3),
        _with_stroke(label=-1),
        _with_stroke(label="1"),
        _with_stroke(frame=2),
        _with_stroke(kind="circle"),
        _with_stroke(width=-1),
        _with_stroke(width="2"),
        _with_stroke(points=[]),
        _with_stroke(points=[[1, 2, 3]]),
        _with_stroke(points=[["1", 2]]),
        _with_stroke(points=[[1e300, 2]]),
        _with_stroke(points=[[1, 2]] * 200_001),
        _with_stroke(points=[[True, 2]]),
        _with_stroke(colour="red"),
        _file(format=None).replace('"format":null,', ""),
        '{"format": "seg-annotations", "version": 1, "image_shape": [1, 4, 4], "classes": [],'
        ' "strokes": [{"kind": "path", "label": 0, "frame": 0, "width": NaN, "points": [[1, 2]]}]}',
        '{"format": "seg-annotations", "version": 1, "image_shape": [1, 4, 4], "classes": [],'
        ' "strokes": [{"kind": "path", "label": 0, "frame": 0, "width": 1, "points": [[1, Infinity]]}]}',
        b" " * (64 * 1024 * 1024 + 1),
    ],
    ids=[
        "empty",
        "not json",
        "not utf-8",
        "truncated",
        "list",
        "string",
        "other format",
        "version 2",
        "version true",
        "version string",
        "zero frames",
        "2-d shape",
        "shape string",
        "huge shape",
        "label beyond classes",
        "duplicate colours",
        "eraser colour",
        "bad colour",
        "numeric name",
        "classes string",
        "strokes dict",
        "unknown key",
        "numeric image name",
        "label 3",
        "label -1",
        "label string",
        "frame 2",
        "kind circle",
        "negative width",
        "width string",
        "no points",
        "3-d point",
        "string coordinate",
        "1e300",
        "too many points",
        "bool coordinate",
        "unknown stroke key",
        "missing format",
        "NaN width",
        "Infinity point",
        "too large",
    ],
)
def test_invalid_annotation_files_raise_annotation_error(text):
    with pytest.raises(AnnotationError):
        Annotations.from_json(text)


def test_annotation_file_refuses_non_text():
    with pytest.raises(AnnotationError):
        Annotations.from_json(None)  # type: ignore[arg-type]


def test_replace_frame_swaps_one_frames_strokes():
    annotations = _annotations()
    new = [Stroke("path", 2, [(5, 5), (6, 6)], 3, frame=1)]
    replaced = annotations.replace_frame(1, new)
    assert [s for s in replaced.strokes if s.frame == 1] == new
    assert [s for s in replaced.strokes if s.frame == 0] == [s for s in annotations.strokes if s.frame == 0]
    assert len(annotations.strokes) == 5  # the original is unchanged
    with pytest.raises(AnnotationError):
        annotations.replace_frame(0, new)  # strokes of another frame
    with pytest.raises(AnnotationError):
        annotations.replace_frame(2, [])  # no such frame


def test_canvas_json_restores_the_strokes_where_they_were_drawn():
    annotations = _annotations()
    fit = BackgroundFit.from_component(component_fit((25, 20), (300, 200), "contain"), (40, 50))
    for frame in (0, 1):
        restored = annotations.to_canvas_json(frame, fit)
        assert json.loads(json.dumps(restored)) == restored  # plain JSON for the component
        mine = [s for s in annotations.strokes if s.frame == frame]
        colours = {o["stroke"] for o in restored["objects"]}
        assert colours <= {"#e69f00", "#56b4e9", ERASER_COLOR}
        again = parse_canvas(restored, fit, annotations.color_to_label(), frame=frame)
        _assert_same_strokes(again, mine)


def test_canvas_json_refuses_a_fit_for_another_image():
    with pytest.raises(AnnotationError):
        _annotations().to_canvas_json(0, identity(40, 40))
    with pytest.raises(AnnotationError):
        _annotations().to_canvas_json(5, identity(40, 50))


def _assert_same_strokes(actual, expected, tol=2e-6):
    # a path's points are kept to 1e-6 pixel: recomputed through the canvas, one may land a step away
    assert [(s.kind, s.label, s.frame, len(s.points)) for s in actual] == [
        (s.kind, s.label, s.frame, len(s.points)) for s in expected
    ]
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a.xy, b.xy, atol=tol, rtol=0)
        assert a.width == pytest.approx(b.width, abs=tol)


# --------------------------------------------------------------------------- property-based


@st.composite
def canvas_strokes(draw):
    """An image, how the canvas shows it, and one stroke drawn inside the displayed image."""
    height, width = draw(st.integers(4, 120)), draw(st.integers(4, 120))
    factor = draw(st.floats(0.3, 4.0))
    natural = (max(1, round(width * factor)), max(1, round(height * factor)))
    canvas = (draw(st.integers(40, 700)), draw(st.integers(40, 500)))
    reported = component_fit(natural, canvas, draw(st.sampled_from(["stretch", "contain"])))
    fit = BackgroundFit.from_component(reported, (height, width))

    def canvas_point(u, v):
        return (
            reported["offset_x"] + u * natural[0] * reported["scale_x"],
            reported["offset_y"] + v * natural[1] * reported["scale_y"],
        )

    unit = st.floats(0.0, 1.0)
    color = draw(st.sampled_from([RED, "RGB(0, 114, 178)", ERASER_COLOR]))
    stroke_width = draw(st.floats(0.5, 40.0))
    kind = draw(st.sampled_from(["path", "pencil", "line", "rect"]))
    if kind in ("path", "pencil"):
        points = [canvas_point(draw(unit), draw(unit)) for _ in range(draw(st.integers(1, 12)))]
        obj = (
            line_path(points, color, stroke_width)
            if kind == "path" or len(points) < 2
            else pencil_path(points, color, stroke_width)
        )
    elif kind == "line":
        (x1, y1), (x2, y2) = canvas_point(draw(unit), draw(unit)), canvas_point(draw(unit), draw(unit))
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        obj = {
            "type": "Line",
            "left": cx,
            "top": cy,
            "x1": x1 - cx,
            "y1": y1 - cy,
            "x2": x2 - cx,
            "y2": y2 - cy,
            "stroke": color,
            "strokeWidth": stroke_width,
        }
    else:
        cx, cy = canvas_point(draw(unit), draw(unit))
        obj = {
            "type": "Rect",
            "left": cx,
            "top": cy,
            "width": draw(st.floats(0.0, 60.0)),
            "height": draw(st.floats(0.0, 60.0)),
            "angle": draw(st.floats(-180, 180)),
            "stroke": color,
            "strokeWidth": stroke_width,
            "strokeUniform": draw(st.booleans()),
        }
    return (height, width), fit, obj, kind


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(canvas_strokes())
def test_any_stroke_inside_the_shown_image_lands_inside_the_image_and_round_trips(case):
    (height, width), fit, obj, kind = case
    mapping = {RED: 1, "#0072b2": 2}
    strokes = parse_canvas(drawing(obj), fit, mapping, frame=0)
    if kind == "line" and not strokes:
        return  # a zero-length butt line draws nothing, on the canvas too
    (stroke,) = strokes
    inside = stroke.xy
    if stroke.kind == "rect":  # the border's outer corners, which may stick out of the image
        assume(np.all((inside >= 0) & (inside <= (width, height))))
        along, across = inside[1] - inside[0], inside[3] - inside[0]
        area = abs(along[0] * across[1] - along[1] * across[0])
        # wide enough in both directions to hold a pixel centre wherever it lies
        thickness = [area / max(np.linalg.norm(side), 1e-12) for side in (along, across)]
        assume(min(thickness) >= 1.5)
    else:
        assert np.all((inside >= -1e-6) & (inside <= np.array([width, height]) + 1e-6))
    if stroke.kind == "line":  # a flat-ended segment must be long and wide enough to hold a pixel
        assume(np.linalg.norm(inside[1] - inside[0]) >= 1.5 and stroke.width >= 1.5)
    painted = stroke.label or 1
    probe = Stroke(stroke.kind, painted, stroke.points, stroke.width)
    labels = rasterize([probe], (height, width))
    assert labels.any()
    reach = max(stroke.width / 2, MIN_STROKE_RADIUS) * math.sqrt(2) + 1e-6
    rows, cols = np.nonzero(labels)
    assert cols.min() + 0.5 >= inside[:, 0].min() - reach and cols.max() + 0.5 <= inside[:, 0].max() + reach
    assert rows.min() + 0.5 >= inside[:, 1].min() - reach and rows.max() + 0.5 <= inside[:, 1].max() + reach

    annotations = Annotations(["a", "b"], [RED, "#0072b2"], (1, height, width), strokes)
    loaded = Annotations.from_json(annotations.to_json())
    assert loaded.strokes == strokes
    np.testing.assert_array_equal(loaded.labels(0), annotations.labels(0))
    again = parse_canvas(annotations.to_canvas_json(0, fit), fit, mapping)
    _assert_same_strokes(again, strokes)


def test_a_path_whose_points_nearly_coincide_round_trips_through_the_canvas():
    # found by Hypothesis: two canvas points 1 ulp apart came back from the canvas as one point
    fit = BackgroundFit(2, 43, 13.674577186313847, 14.532329021523536, 0.0, 25.09648019003241)
    drawn = fabric_path([(6.179199563090757, 592.6565334786449), (6.179199563090756, 592.6565334786449)], RED, 2.0)
    strokes = parse_canvas(drawing(drawn), fit, {RED: 1})
    annotations = Annotations(["a"], [RED], (1, 43, 2), strokes)
    again = parse_canvas(annotations.to_canvas_json(0, fit), fit, {RED: 1})
    _assert_same_strokes(again, strokes)
