"""Canvas drawing -> strokes: :func:`parse_canvas` reads Fabric 7 JSON into image-pixel strokes.

The drawing canvas (streamlit-drawable-canvas 0.13, Fabric.js 7) reports every stroke as a Fabric
object in *canvas* pixels; a :class:`~seg.strokes.fit.BackgroundFit` maps them to
*full-resolution image* pixels.

Fabric objects are placed by their own transform: a local point ``p`` lands on the canvas at
``centre + R(angle) * S(scaleX, scaleY, flips) * Skew * p``, where ``centre`` follows from
``left/top`` and ``originX/originY`` (offset by the object's scaled size, stroke included) and
``p = point - pathOffset`` for paths (``pathOffset`` = centre of the path's bounds, recomputed as
Fabric does on load), ``p = (x1, y1), (x2, y2)`` for lines and ``p = (+-width/2, +-height/2)`` for
rectangles. Quadratic and cubic Beziers are flattened to within ``FLATNESS`` image pixels (see
:mod:`seg.strokes.paths`).

What is skipped and what is refused (objects of other types, strokes of unknown colours,
malformed JSON, the limits ``MAX_OBJECTS``, ``MAX_PATH_COMMANDS``, ``MAX_TOTAL_POINTS``) is
listed in the :mod:`seg.strokes` docstring.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from seg.errors import AnnotationError
from seg.strokes.checks import MAX_COORDINATE, check_integer, check_number, describe_value, load_json
from seg.strokes.colors import ERASER_COLOR, normalize_color, parse_stroke_color
from seg.strokes.fit import BackgroundFit
from seg.strokes.paths import flatten_path, path_bounds, read_commands
from seg.strokes.stroke import MAX_LABEL, Stroke

MAX_OBJECTS = 10_000  # objects in one canvas drawing
MAX_PATH_COMMANDS = 100_000  # commands in one Fabric path
MAX_TOTAL_POINTS = 2_000_000  # points of all strokes of one drawing or file

_ORIGINS = {"left": -0.5, "top": -0.5, "center": 0.0, "bottom": 0.5, "right": 0.5}


def parse_canvas(
    json_data: dict | str | None,
    fit: BackgroundFit,
    color_to_label: Mapping[str, int],
    *,
    frame: int = 0,
) -> list[Stroke]:
    """Turn the canvas drawing (Fabric 7 JSON) into strokes in full-resolution image pixels.

    Parameters
    ----------
    json_data : dict, str or None
        ``result.json_data`` of the canvas (or its JSON text). None means no drawing yet.
    fit : BackgroundFit
        Canvas -> image mapping, see :meth:`BackgroundFit.from_component`.
    color_to_label : mapping of str to int
        Class colour (any notation :func:`normalize_color` accepts) -> label 1..K.
        :data:`ERASER_COLOR` always maps to 0.
    frame : int
        Frame stored in the returned strokes.

    Returns
    -------
    list of Stroke
        One stroke per drawn path / line / rectangle (a path with several ``M`` sub-paths gives
        several), in drawing order. Objects of other types and strokes of unknown colours are
        skipped (see the :mod:`seg.strokes` docstring).

    Raises
    ------
    AnnotationError
        If the JSON is malformed, non-finite, beyond the size limits, or ``fit`` is invalid.
    """
    if not isinstance(fit, BackgroundFit):
        raise AnnotationError(f"fit must be a BackgroundFit, got {type(fit).__name__}")
    frame = check_integer(frame, "frame", high=2**31 - 1)
    lookup = _label_lookup(color_to_label)
    objects = _canvas_objects(json_data)
    strokes: list[Stroke] = []
    total_points = 0
    for index, obj in enumerate(objects):
        for stroke in _parse_object(obj, index, fit, lookup, frame):
            total_points += len(stroke.points)
            _check_total_points(total_points)
            strokes.append(stroke)
    return strokes


def _parse_object(obj: Any, index: int, fit: BackgroundFit, lookup: dict[str, int], frame: int) -> list[Stroke]:
    """Strokes of canvas object number ``index`` (none for a skipped object)."""
    if not isinstance(obj, dict):
        raise AnnotationError(f"canvas object {index} must be a JSON object, got {describe_value(obj)}")
    kind = obj.get("type")
    parser = _PARSERS.get(kind.lower()) if isinstance(kind, str) else None
    if parser is None or obj.get("visible", True) is False:
        return []  # a shape this tool does not label, or hidden
    label = lookup.get(parse_stroke_color(obj.get("stroke")))  # type: ignore[arg-type]
    if label is None:
        return []  # stale stroke of a removed class, or no stroke colour
    return parser(obj, f"canvas object {index} ({kind})", fit, label, frame)


def _check_total_points(total: int) -> None:
    if total > MAX_TOTAL_POINTS:
        raise AnnotationError(f"the drawing has more than {MAX_TOTAL_POINTS} points: reset the canvas")


class CanvasParser:
    """:func:`parse_canvas` for a drawing that changes a little at a time.

    The canvas reports its whole drawing after every stroke: a stroke appends one object, undo
    removes the last one. Parsing every object again after each stroke costs time in proportion
    to the length of the session (~0.2 s at 500 strokes). ``parse(json_data)`` returns exactly
    ``tuple(parse_canvas(json_data, fit, color_to_label, frame=frame))``, but parses only the
    objects that differ from the previous call's object at the same position, and returns the
    previous :class:`Stroke` objects for the others (callers can recognise unchanged strokes by
    identity, see :func:`seg.strokes.raster.repaint`). Drawings are treated as values: the same
    object passed again is taken as unchanged, so give a changed drawing as a new object (as the
    canvas does).

    Parameters
    ----------
    fit, color_to_label, frame
        As for :func:`parse_canvas`; fixed for the parser's life (make a new parser when they
        change).
    """

    def __init__(self, fit: BackgroundFit, color_to_label: Mapping[str, int], *, frame: int = 0) -> None:
        if not isinstance(fit, BackgroundFit):
            raise AnnotationError(f"fit must be a BackgroundFit, got {type(fit).__name__}")
        self.fit = fit
        self.frame = check_integer(frame, "frame", high=2**31 - 1)
        self._lookup = _label_lookup(color_to_label)
        self._objects: list = []  # the previous drawing's objects (own copies)
        self._parsed: list[tuple[Stroke, ...]] = []  # their strokes, object by object
        self._points: list[int] = []  # running total of points after each object
        self._last: tuple[Any, tuple[Stroke, ...]] | None = None

    def parse(self, json_data: dict | str | None) -> tuple[Stroke, ...]:
        """The drawing's strokes, in drawing order; raises like :func:`parse_canvas`.

        On an error the parser keeps its previous state.
        """
        if self._last is not None and json_data is self._last[0]:
            return self._last[1]
        objects = _canvas_objects(json_data)
        same = 0
        limit = min(len(objects), len(self._objects))
        while same < limit and objects[same] == self._objects[same]:
            same += 1
        parsed = self._parsed[:same]
        points = self._points[:same]
        for index in range(same, len(objects)):
            strokes = tuple(_parse_object(objects[index], index, self.fit, self._lookup, self.frame))
            points.append((points[-1] if points else 0) + sum(len(s.points) for s in strokes))
            _check_total_points(points[-1])
            parsed.append(strokes)
        # Own copies of the new objects: a caller mutating its drawing later cannot make a
        # changed object compare equal to what was parsed.
        self._objects = self._objects[:same] + copy.deepcopy(objects[same:])
        self._parsed, self._points = parsed, points
        result = tuple(stroke for strokes in parsed for stroke in strokes)
        self._last = (json_data, result)
        return result


def _label_lookup(color_to_label: Mapping[str, int]) -> dict[str, int]:
    """Normalised colour -> label, with the eraser colour mapped to 0."""
    if not isinstance(color_to_label, Mapping):
        raise AnnotationError(f"color_to_label must map colours to labels, got {type(color_to_label).__name__}")
    lookup = {ERASER_COLOR: 0}
    for key, value in color_to_label.items():
        colour = normalize_color(key)
        label = check_integer(value, f"label of colour {key!r}", high=MAX_LABEL)
        if colour == ERASER_COLOR and label != 0:
            raise AnnotationError(
                f"colour {key!r} is the eraser colour {ERASER_COLOR}; give class {label} another colour"
            )
        if lookup.get(colour, label) != label:
            raise AnnotationError(
                f"colour {key!r} is mapped to labels {lookup[colour]} and {label}; give every class its own colour"
            )
        lookup[colour] = label
    return lookup


def _canvas_objects(json_data: Any) -> list:
    """The ``objects`` list of a canvas drawing (validated container, not yet its items)."""
    if json_data is None:
        return []
    if isinstance(json_data, (str, bytes)):
        json_data = load_json(json_data, "canvas drawing")
    if not isinstance(json_data, dict):
        raise AnnotationError(f"the canvas drawing must be a JSON object, got {describe_value(json_data)}")
    objects = json_data.get("objects", [])
    if not isinstance(objects, list):
        raise AnnotationError(f"the canvas drawing's 'objects' must be a list, got {describe_value(objects)}")
    if len(objects) > MAX_OBJECTS:
        raise AnnotationError(f"the canvas holds {len(objects)} objects, more than {MAX_OBJECTS}: reset the canvas")
    return objects


def _origin(value: Any, what: str) -> float:
    """Fabric's origin offset: 'left'/'top' -0.5, 'center' 0, 'right'/'bottom' +0.5, x -> x-0.5."""
    if isinstance(value, str):
        if value not in _ORIGINS:
            raise AnnotationError(f"{what} must be one of {sorted(_ORIGINS)}, got {describe_value(value)}")
        return _ORIGINS[value]
    return check_number(value, what) - 0.5


def _object_affine(obj: dict, where: str, width: float, height: float) -> np.ndarray:
    """(2, 3) matrix of a Fabric object: local object coordinates -> canvas (calcOwnMatrix)."""

    def get(name: str, default: float) -> float:
        return _optional_number(obj, name, default, where)

    scale_x, scale_y = get("scaleX", 1.0), get("scaleY", 1.0)
    angle = math.radians(get("angle", 0.0))
    skew_x, skew_y = math.radians(get("skewX", 0.0)), math.radians(get("skewY", 0.0))
    stroke_width = get("strokeWidth", 1.0)
    flip_x = -1.0 if obj.get("flipX") is True else 1.0
    flip_y = -1.0 if obj.get("flipY") is True else 1.0
    # scale/flip, then skewX, then skewY (Fabric's composeMatrix order)
    shape = np.array([[flip_x * scale_x, 0.0], [0.0, flip_y * scale_y]])
    shape = shape @ np.array([[1.0, math.tan(skew_x)], [0.0, 1.0]])
    shape = shape @ np.array([[1.0, 0.0], [math.tan(skew_y), 1.0]])
    if not np.all(np.isfinite(shape)):
        raise AnnotationError(f"{where} has a degenerate skew")
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    # Fabric positions left/top by the object's scaled size including the stroke
    uniform = obj.get("strokeUniform") is True
    pre, post = (0.0, stroke_width) if uniform else (stroke_width, 0.0)
    if skew_x == 0.0 and skew_y == 0.0:
        size = np.array([(width + pre) * scale_x, (height + pre) * scale_y])
    else:
        half = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]]) * [(width + pre) / 2, (height + pre) / 2]
        corners = half @ shape.T
        size = corners.max(axis=0) - corners.min(axis=0)
    size = size + post
    anchor = np.array([get("left", 0.0), get("top", 0.0)])
    origin = np.array(
        [
            _origin(obj.get("originX", "center"), f"{where} originX"),
            _origin(obj.get("originY", "center"), f"{where} originY"),
        ]
    )
    centre = anchor + rotation @ (-origin * size)
    return np.hstack([rotation @ shape, centre[:, None]])


def _apply(affine: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return xy @ affine[:, :2].T + affine[:, 2]


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) affine ``outer o inner``."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def _optional_number(obj: dict, name: str, default: float, where: str) -> float:
    """A numeric Fabric property; missing or null means Fabric's default."""
    value = obj.get(name)
    return default if value is None else check_number(value, f"{where} {name}")


def _stroke_width(obj: dict, where: str, fit: BackgroundFit) -> float:
    """Stroke width in image pixels (scaled with the object unless strokeUniform)."""
    width = _optional_number(obj, "strokeWidth", 1.0, where)
    if width < 0:
        raise AnnotationError(f"{where} strokeWidth must be >= 0, got {width}")
    if obj.get("strokeUniform") is not True:
        scale_x = abs(_optional_number(obj, "scaleX", 1.0, where))
        scale_y = abs(_optional_number(obj, "scaleY", 1.0, where))
        width *= (scale_x + scale_y) / 2
    return width * fit.image_pixels_per_canvas_pixel


def _to_image(points: np.ndarray, affine: np.ndarray, where: str) -> np.ndarray:
    xy = _apply(affine, points)
    if not np.all(np.isfinite(xy)) or np.any(np.abs(xy) > MAX_COORDINATE):
        raise AnnotationError(f"{where} lies beyond +-{MAX_COORDINATE:g} pixels: the drawing is corrupt")
    return xy


# --- paths -----------------------------------------------------------------------------------


def _parse_path(obj: dict, where: str, fit: BackgroundFit, label: int, frame: int) -> list[Stroke]:
    commands = obj.get("path")
    if commands is None:
        return []
    if not isinstance(commands, list):
        raise AnnotationError(f"{where} 'path' must be a list of commands, got {describe_value(commands)}")
    if len(commands) > MAX_PATH_COMMANDS:
        raise AnnotationError(
            f"{where} has {len(commands)} path commands, more than {MAX_PATH_COMMANDS}: draw shorter strokes"
        )
    segments, bounds_points = read_commands(commands, where)
    if not segments:
        return []  # nothing but moves: Fabric draws nothing
    # Fabric recomputes pathOffset (the centre of the path's bounds) whenever a path is loaded.
    low, high = path_bounds(segments, bounds_points)
    centre = (low + high) / 2
    to_local = np.array([[1.0, 0.0, -centre[0]], [0.0, 1.0, -centre[1]]])
    size = high - low
    affine = _compose(fit._affine(), _compose(_object_affine(obj, where, size[0], size[1]), to_local))
    subpaths = np.array([segment[0] for segment in segments])
    orders = np.array([segment[1] for segment in segments])
    controls: np.ndarray = np.array([segment[2] for segment in segments], dtype=np.float64).reshape(-1, 2)
    controls = _to_image(controls, affine, where).reshape(-1, 4, 2)
    width = _stroke_width(obj, where, fit)
    return [_stroke("path", label, xy, width, frame, where) for xy in flatten_path(orders, controls, subpaths, where)]


# --- lines and rectangles ----------------------------------------------------------------------


def _parse_line(obj: dict, where: str, fit: BackgroundFit, label: int, frame: int) -> list[Stroke]:
    x1, y1, x2, y2 = (_optional_number(obj, name, 0.0, where) for name in ("x1", "y1", "x2", "y2"))
    # Fabric 7 re-derives the end points from the line's size and direction (calcLinePoints).
    width, height = abs(x2 - x1), abs(y2 - y1)
    sign_x = -0.5 if x1 <= x2 else 0.5
    sign_y = -0.5 if y1 <= y2 else 0.5
    local = np.array([[sign_x * width, sign_y * height], [-sign_x * width, -sign_y * height]])
    affine = _compose(fit._affine(), _object_affine(obj, where, width, height))
    ends = _to_image(local, affine, where)
    stroke_width = _stroke_width(obj, where, fit)
    cap = obj.get("strokeLineCap", "butt")
    if cap == "round":
        return [_stroke("path", label, ends, stroke_width, frame, where)]
    length = float(np.hypot(*(ends[1] - ends[0])))
    if length == 0.0:
        return []  # a zero-length butt or square line draws nothing in Fabric
    if cap == "square":
        direction = (ends[1] - ends[0]) / length * stroke_width / 2
        ends = np.array([ends[0] - direction, ends[1] + direction])
    return [_stroke("line", label, ends, stroke_width, frame, where)]


def _parse_rect(obj: dict, where: str, fit: BackgroundFit, label: int, frame: int) -> list[Stroke]:
    width, height = (_optional_number(obj, name, 0.0, where) for name in ("width", "height"))
    if width < 0 or height < 0:
        raise AnnotationError(f"{where} width and height must be >= 0, got {width} x {height}")
    affine = _compose(fit._affine(), _object_affine(obj, where, width, height))
    # The border is centred on the edge; its outer edge (square corners in the object's own
    # frame) bounds what the canvas shows. A uniform stroke keeps its canvas width when scaled.
    stroke_width = _optional_number(obj, "strokeWidth", 1.0, where)
    if stroke_width < 0:
        raise AnnotationError(f"{where} strokeWidth must be >= 0, got {stroke_width}")
    if obj.get("strokeUniform") is True:
        # (a zero scale collapses the object anyway: avoid dividing by it)
        scale_x = abs(_optional_number(obj, "scaleX", 1.0, where)) or 1.0
        scale_y = abs(_optional_number(obj, "scaleY", 1.0, where)) or 1.0
        outer = (width + stroke_width / scale_x, height + stroke_width / scale_y)
    else:
        outer = (width + stroke_width, height + stroke_width)
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * np.array(outer) / 2
    corners = _to_image(local, affine, where)
    return [_stroke("rect", label, corners, _stroke_width(obj, where, fit), frame, where)]


def _stroke(kind: str, label: int, xy: np.ndarray, width: float, frame: int, where: str) -> Stroke:
    try:
        return Stroke(kind, label, xy, width, frame)  # type: ignore[arg-type]  # Stroke takes any (N, 2) points
    except AnnotationError as error:
        raise AnnotationError(f"{where}: {error}") from None


_PARSERS = {"path": _parse_path, "line": _parse_line, "rect": _parse_rect}
