"""The :class:`Stroke` record: one scribble in full-resolution image pixels, validated on creation.

Image coordinates are continuous ``(x, y) = (column, row)``: pixel ``(row, col)`` covers
``[col, col + 1) x [row, row + 1)`` and its centre is ``(col + 0.5, row + 0.5)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seg.errors import AnnotationError
from seg.render.overlays import MAX_LABEL
from seg.strokes.checks import MAX_COORDINATE, check_integer, check_number, describe_value

STROKE_KINDS = ("path", "line", "rect")
MAX_STROKE_POINTS = 200_000  # points of one stroke, after flattening curves
POINT_DECIMALS = 6  # a path's points are kept to 1e-6 image pixel


@dataclass(frozen=True)
class Stroke:
    """One scribble in full-resolution image pixels.

    Attributes
    ----------
    kind : {"path", "line", "rect"}
        "path": polyline with round caps and joins (1 point = a dot). "line": a straight
        segment of exactly 2 points with flat (butt) ends. "rect": exactly 4 corners of the
        labelled area, i.e. of the rectangle's outer edge, border included; filled.
    label : int
        Class label 1..K, or 0 for the eraser.
    points : tuple of (x, y)
        ``(column, row)`` image coordinates (pixel centres at ``+ 0.5``). Normalised on creation:
        floats; a path's points rounded to ``POINT_DECIMALS`` (1e-6 pixel) and consecutive
        duplicates dropped; rectangle corners ordered clockwise on screen.
    width : float
        Stroke width in image pixels (of a rectangle: its border, kept to draw it back).
    frame : int
        Frame (time point / slice) the stroke belongs to.
    """

    kind: str
    label: int
    points: tuple[tuple[float, float], ...]
    width: float
    frame: int = 0

    def __post_init__(self) -> None:
        if self.kind not in STROKE_KINDS:
            raise AnnotationError(f"stroke kind must be one of {STROKE_KINDS}, got {describe_value(self.kind)}")
        object.__setattr__(self, "label", check_integer(self.label, "stroke label", high=MAX_LABEL))
        object.__setattr__(self, "frame", check_integer(self.frame, "stroke frame", high=2**31 - 1))
        object.__setattr__(self, "width", check_number(self.width, "stroke width"))
        if self.width < 0:
            raise AnnotationError(f"stroke width must be >= 0, got {self.width}")
        xy = _points_array(self.points)
        if self.kind == "path" and len(xy) > 1:
            # On a grid of 1e-6 pixel: a path sent to the canvas and read back (image -> canvas ->
            # image, off by ~1e-14) lands on the same points, so it keeps the same duplicates.
            xy = np.round(xy, POINT_DECIMALS) + 0.0  # + 0.0: no -0.0
            keep = np.ones(len(xy), dtype=bool)
            keep[1:] = np.any(xy[1:] != xy[:-1], axis=1)
            xy = xy[keep]
        expected = {"line": 2, "rect": 4}.get(self.kind)
        if expected is not None and len(xy) != expected:
            raise AnnotationError(f"a {self.kind} stroke needs {expected} points, got {len(xy)}")
        if self.kind == "rect" and _signed_area(xy) < 0:
            xy = xy[[0, 3, 2, 1]]
        xy.setflags(write=False)
        object.__setattr__(self, "points", tuple(map(tuple, xy.tolist())))
        object.__setattr__(self, "_xy", xy)

    @property
    def xy(self) -> np.ndarray:
        """The points as a read-only ``(N, 2)`` float64 array."""
        return self._xy  # type: ignore[attr-defined]


def _points_array(points: Any) -> np.ndarray:
    """Validate stroke points -> (N, 2) float64 array, 1 <= N <= MAX_STROKE_POINTS."""
    if isinstance(points, np.ndarray):
        array = points
    else:
        if not isinstance(points, Sequence) or isinstance(points, (str, bytes)):
            raise AnnotationError(f"stroke points must be a sequence of (x, y), got {describe_value(points)}")
        if len(points) > MAX_STROKE_POINTS:
            raise AnnotationError(
                f"stroke has {len(points)} points, more than {MAX_STROKE_POINTS}: draw shorter strokes"
            )
        try:
            array = np.array(points, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise AnnotationError("stroke points must be (x, y) number pairs") from None
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] == 0:
        raise AnnotationError(f"stroke points must have shape (N, 2) with N >= 1, got {array.shape}")
    if array.shape[0] > MAX_STROKE_POINTS:
        raise AnnotationError(
            f"stroke has {array.shape[0]} points, more than {MAX_STROKE_POINTS}: draw shorter strokes"
        )
    try:
        array = np.array(array, dtype=np.float64)  # own copy, never a view of the caller's array
    except (TypeError, ValueError):
        raise AnnotationError("stroke points must be (x, y) number pairs") from None
    if not np.all(np.isfinite(array)):
        raise AnnotationError("stroke points must be finite numbers (found NaN or infinity)")
    if np.any(np.abs(array) > MAX_COORDINATE):
        raise AnnotationError(f"stroke points lie beyond +-{MAX_COORDINATE:g} pixels: the drawing is corrupt")
    return array


def _signed_area(xy: np.ndarray) -> float:
    """Shoelace sum; positive for clockwise-on-screen polygons (y axis pointing down)."""
    x, y = xy[:, 0], xy[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
