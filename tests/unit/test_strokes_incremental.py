"""Long sessions: re-parsing and re-painting only what changed gives exactly the full result.

The app keeps a :class:`CanvasParser` and the last label image per frame, and after each stroke
parses only the new canvas object and paints only the new stroke (``repaint``). Whatever the
user does (draw, undo, erase, recolour a class, draw with other tools), the strokes and the
label image must be exactly what parsing and painting everything from scratch gives.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from seg.errors import AnnotationError
from seg.strokes import ERASER_COLOR, CanvasParser, parse_canvas, rasterize, repaint
from tests.unit.test_strokes import BLUE, CLASSES, RED, drawing, identity, line_path, pencil_path

SHAPE = (120, 160)
FIT = identity(*SHAPE)
GREEN = "#009e73"


def _random_object(rng: np.random.Generator) -> dict:
    color = rng.choice([RED, BLUE, BLUE, RED, ERASER_COLOR, GREEN])  # GREEN: no class (skipped)
    kind = rng.integers(4)
    x, y = rng.uniform(-10, 170), rng.uniform(-10, 130)
    width = float(rng.uniform(1, 14))
    if kind == 0:
        points = [(x + 4 * k, y + 3 * np.sin(k)) for k in range(int(rng.integers(1, 12)))]
        return pencil_path(points, color=color, width=width) if len(points) > 1 else line_path(points, color, width)
    if kind == 1:
        return line_path([(x, y), (x + rng.uniform(-40, 40), y + rng.uniform(-40, 40))], color, width)
    if kind == 2:
        return {
            "type": "Line",
            "left": x,
            "top": y,
            "x1": -10.0,
            "y1": -5.0,
            "x2": 10.0,
            "y2": 5.0,
            "stroke": color,
            "strokeWidth": width,
        }
    return {
        "type": "Rect",
        "originX": "left",
        "originY": "top",
        "left": x,
        "top": y,
        "width": float(rng.uniform(2, 40)),
        "height": float(rng.uniform(2, 30)),
        "stroke": color,
        "strokeWidth": width,
        "fill": None,
    }


def _session(seed: int, steps: int):
    """Drawings as a user makes them: mostly new strokes, sometimes undo, a recoloured class
    (every object of one colour changes), or an object edited in place of the canvas."""
    rng = np.random.default_rng(seed)
    objects: list[dict] = []
    for _ in range(steps):
        action = rng.random()
        if action < 0.7 or not objects:
            objects = objects + [_random_object(rng)]
        elif action < 0.85:
            objects = objects[:-1]  # undo
        elif action < 0.93:
            old, new = (RED, GREEN) if rng.random() < 0.5 else (GREEN, RED)
            objects = [dict(o, stroke=new) if o.get("stroke") == old else o for o in objects]
        else:
            index = int(rng.integers(len(objects)))  # an earlier stroke moved
            moved = dict(objects[index], left=float(objects[index]["left"]) + 7.0)
            objects = objects[:index] + [moved] + objects[index + 1 :]
        yield drawing(*copy.deepcopy(objects))  # the canvas sends a fresh JSON every time


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parsing_and_painting_only_changes_equals_doing_everything_again(seed, in_place):
    parser = CanvasParser(FIT, CLASSES)
    painted: tuple = ()
    labels = rasterize([], SHAPE)
    for json_data in _session(seed, 80):
        strokes = parser.parse(json_data)
        assert strokes == tuple(parse_canvas(json_data, FIT, CLASSES))
        previous = labels
        labels = repaint(labels, painted, strokes, in_place=in_place)
        kept = strokes[: len(painted)] == painted and (in_place or strokes == painted)
        assert (labels is previous) == kept  # in place: new strokes painted without a copy
        painted = strokes
        assert np.array_equal(labels, rasterize(list(strokes), SHAPE)), len(strokes)
    assert len(painted) > 10 and labels.any()


def test_a_new_stroke_keeps_the_earlier_stroke_objects_and_paints_over_a_copy():
    first = [pencil_path([(10, 10), (60, 20), (90, 50)], RED), line_path([(20, 90), (140, 90)], BLUE)]
    parser = CanvasParser(FIT, CLASSES)
    before = parser.parse(drawing(*first))
    labels = rasterize(list(before), SHAPE)
    kept = labels.copy()
    after = parser.parse(drawing(*copy.deepcopy(first), line_path([(20, 60), (140, 60)], ERASER_COLOR, 30)))
    assert len(after) == 3 and all(a is b for a, b in zip(before, after))
    updated = repaint(labels, before, after)
    assert np.array_equal(labels, kept)  # the previous label image is untouched
    assert not updated[45:75].any() and (updated[85:95, 30:130] == 2).all()
    assert repaint(updated, after, after) is updated  # nothing new: nothing painted


def test_the_app_drops_a_label_image_it_failed_to_paint_in_place(monkeypatch):
    from seg.strokes import raster
    from seg.ui import pipeline
    from seg.ui.state import LABELS

    class Record:
        shape = (1, *SHAPE)

    first = CanvasParser(FIT, CLASSES).parse(drawing(pencil_path([(10, 10), (60, 20)], RED)))
    state = {LABELS: {}}
    pipeline.label_images(state, Record(), pipeline.Strokes({0: first}))
    more = CanvasParser(FIT, CLASSES).parse(
        drawing(pencil_path([(10, 10), (60, 20)], RED), line_path([(0, 60), (160, 60)], BLUE, 40))
    )
    monkeypatch.setattr(raster, "MAX_RASTER_PIXELS", 100)  # the wide stroke is over the budget
    with pytest.raises(AnnotationError):
        pipeline.label_images(state, Record(), pipeline.Strokes({0: (*first, more[1])}))
    assert 0 not in state[LABELS]  # not kept half painted: painted afresh next time
    monkeypatch.undo()
    labels = pipeline.label_images(state, Record(), pipeline.Strokes({0: (*first, more[1])}))
    assert np.array_equal(labels[0], rasterize([*first, more[1]], SHAPE))


def test_a_bad_object_is_refused_and_the_parser_keeps_working():
    good = [line_path([(10, 10), (100, 10)], RED)]
    parser = CanvasParser(FIT, CLASSES)
    parser.parse(drawing(*good))
    bad = dict(line_path([(10, 40), (100, 40)], BLUE), strokeWidth=float("nan"))
    with pytest.raises(AnnotationError, match="canvas object 1"):
        parser.parse(drawing(*copy.deepcopy(good), bad))
    fixed = drawing(*copy.deepcopy(good), line_path([(10, 40), (100, 40)], BLUE))
    assert parser.parse(fixed) == tuple(parse_canvas(fixed, FIT, CLASSES))


def test_the_point_limit_holds_for_a_drawing_that_grew_stroke_by_stroke(monkeypatch):
    import seg.strokes.canvas as canvas

    monkeypatch.setattr(canvas, "MAX_TOTAL_POINTS", 25)
    parser = CanvasParser(FIT, CLASSES)
    objects = []
    for k in range(4):  # 10 points each: the third stroke crosses the limit
        objects.append(line_path([(5 + 3 * i, 10 + 20 * k) for i in range(10)], RED))
        if k < 2:
            parser.parse(drawing(*copy.deepcopy(objects)))
        else:
            with pytest.raises(AnnotationError, match="more than 25 points"):
                parser.parse(drawing(*copy.deepcopy(objects)))


def test_an_object_changed_in_place_by_the_caller_is_parsed_again():
    obj = line_path([(10, 10), (100, 10)], RED)
    parser = CanvasParser(FIT, CLASSES)
    assert parser.parse(drawing(obj))[0].label == 1
    obj["stroke"] = BLUE  # the same dict, changed: a new drawing holding it must not reuse the parse
    assert parser.parse(drawing(obj))[0].label == 2


def test_onto_must_be_a_label_image_of_the_frame_shape():
    with pytest.raises(AnnotationError, match=r"onto must be an \(120, 160\) label image"):
        rasterize([], SHAPE, onto=np.zeros((10, 10), np.uint8))
