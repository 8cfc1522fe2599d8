"""Fabric path geometry: path commands -> Bezier segments, Fabric's bounds, flattened polylines.

A Fabric path is a list of absolute ``M, L, H, V, Q, C, Z`` commands. :func:`read_commands`
validates them into line, quadratic and cubic segments, :func:`path_bounds` reproduces the
bounds Fabric 7 centres the path on, and :func:`flatten_path` turns the segments (already mapped to
image pixels) into one polyline per sub-path: quadratic and cubic Beziers are flattened to within
``FLATNESS`` image pixels, with at most ``MAX_CURVE_PIECES`` chords per curve.
"""

from __future__ import annotations

import numpy as np

from seg.errors import AnnotationError
from seg.strokes.checks import check_number, describe_value
from seg.strokes.stroke import MAX_STROKE_POINTS

MAX_CURVE_PIECES = 1_000
FLATNESS = 0.02  # max distance (image px) between a Bezier and its polyline

_COMMAND_ARITY = {"M": 2, "L": 2, "H": 1, "V": 1, "Q": 4, "C": 6, "Z": 0}


def read_commands(commands: list, where: str) -> tuple[list, list]:
    """Validate Fabric path commands.

    Returns segments ``(subpath, order, [p0, p1, p2, p3])`` (order 1 line, 2 quadratic, 3 cubic;
    cubic control points, quadratic given as p1 = p2 = control) and the extra points Fabric adds to
    the path's bounds for ``L`` commands (the sub-path start and the end point).
    """
    segments: list = []
    bounds_points: list = []
    current: tuple[float, float] | None = None
    start: tuple[float, float] = (0.0, 0.0)  # set with current by every M
    subpath = -1
    for number, command in enumerate(commands):
        if not isinstance(command, (list, tuple)) or not command or not isinstance(command[0], str):
            raise AnnotationError(f"{where} path command {number} must be a list like ['L', x, y]")
        name = command[0]
        arity = _COMMAND_ARITY.get(name)
        if arity is None:
            raise AnnotationError(
                f"{where} path command {number} is {describe_value(name)}; "
                "only absolute M, L, H, V, Q, C, Z are supported"
            )
        if len(command) != arity + 1:
            raise AnnotationError(f"{where} path command {number} ({name}) needs {arity} numbers")
        values = [check_number(v, f"{where} path command {number}") for v in command[1:]]
        if name == "M":
            current = start = (values[0], values[1])
            subpath += 1
            continue
        if current is None:
            raise AnnotationError(f"{where} path must start with an 'M' command, not {name!r}")
        if name in ("L", "H", "V", "Z"):
            if name == "L":
                end = (values[0], values[1])
            elif name == "H":
                end = (values[0], current[1])
            elif name == "V":
                end = (current[0], values[0])
            else:
                end = start
            segments.append((subpath, 1, [current, current, end, end]))
            if name != "Z":
                bounds_points += [start, end]
        elif name == "Q":
            control, end = (values[0], values[1]), (values[2], values[3])
            segments.append((subpath, 2, [current, control, control, end]))
        else:
            end = (values[4], values[5])
            segments.append((subpath, 3, [current, (values[0], values[1]), (values[2], values[3]), end]))
        current = end
    return segments, bounds_points


def path_bounds(segments: list, bounds_points: list) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of a path exactly as Fabric 7 computes them (``Path._calcBoundsFromPath``).

    Fabric bounds a quadratic ``Q`` as the cubic with both control points at the quadratic's
    control point, and an ``L`` by the sub-path start and its end; reproducing that (rather than
    the true bounds) puts an unmoved path exactly where it was drawn.
    """
    points = [np.array(bounds_points, dtype=np.float64).reshape(-1, 2)]
    curves = np.array([s[2] for s in segments if s[1] > 1], dtype=np.float64).reshape(-1, 4, 2)
    if len(curves):
        p0, p1, p2, p3 = curves[:, 0], curves[:, 1], curves[:, 2], curves[:, 3]
        points += [p0, p3]
        a = 6 * p0 - 12 * p1 + 6 * p2
        b = -3 * p0 + 9 * p1 - 9 * p2 + 3 * p3
        c = 3 * p1 - 3 * p0
        with np.errstate(divide="ignore", invalid="ignore"):
            linear = np.abs(b) < 1e-12
            root = np.sqrt(a * a - 4 * c * b)
            single = np.where(np.abs(a) < 1e-12, np.nan, -c / a)
            candidates = [
                np.where(linear, single, (-a + root) / (2 * b)),
                np.where(linear, np.nan, (-a - root) / (2 * b)),
            ]
        for t in candidates:
            t = np.where((t > 0) & (t < 1), t, np.nan)  # per axis; NaN where no extremum
            s = 1 - t
            value = s**3 * p0 + 3 * s * s * t * p1 + 3 * s * t * t * p2 + t**3 * p3
            points.append(np.where(np.isnan(value), p0, value))  # p0 is already in the bounds
    allpoints = np.concatenate(points)
    if len(allpoints) == 0:
        return np.zeros(2), np.zeros(2)
    return allpoints.min(axis=0), allpoints.max(axis=0)


def flatten_path(orders: np.ndarray, controls: np.ndarray, subpaths: np.ndarray, where: str) -> list[np.ndarray]:
    """Polylines (one per sub-path) through the segments' end points and flattened curves.

    ``controls`` (S, 4, 2) are in image pixels, so the flatness tolerance is in image pixels:
    a quadratic cut into n chords strays ``|p0 - 2c + p3| / (4 n^2)`` from them, a cubic at most
    ``3/4 max|second difference| / n^2``.
    """
    p0, p1, p2, p3 = controls[:, 0], controls[:, 1], controls[:, 2], controls[:, 3]
    if subpaths[0] == subpaths[-1] and np.all(orders == 1):  # the common M, L, L, ... path
        if len(orders) + 1 > MAX_STROKE_POINTS:
            raise AnnotationError(f"{where} has more than {MAX_STROKE_POINTS} points: draw shorter strokes")
        return [np.vstack([p0[:1], p3])]
    quadratic_error = np.hypot(*(p0 - 2 * p1 + p3).T) / 4
    cubic_error = 0.75 * np.maximum(np.hypot(*(p0 - 2 * p1 + p2).T), np.hypot(*(p1 - 2 * p2 + p3).T))
    error = np.where(orders == 2, quadratic_error, cubic_error)
    pieces = np.where(orders == 1, 1, np.ceil(np.sqrt(error / FLATNESS)))
    pieces = np.clip(pieces, 1, MAX_CURVE_PIECES).astype(np.int64)
    starts = np.flatnonzero(np.diff(subpaths, prepend=-1))  # first segment of each sub-path
    total = int(pieces.sum()) + len(starts)
    if total > MAX_STROKE_POINTS:
        raise AnnotationError(
            f"{where} has {total} points after curve flattening, more than {MAX_STROKE_POINTS}: draw shorter strokes"
        )
    owner = np.repeat(np.arange(len(orders)), pieces)
    t = ((np.arange(len(owner)) - (np.cumsum(pieces) - pieces)[owner] + 1) / pieces[owner])[:, None]
    s = 1 - t
    a, b, c, d, order = p0[owner], p1[owner], p2[owner], p3[owner], orders[owner][:, None]
    xy = np.where(
        order == 3,
        s**3 * a + 3 * s * s * t * b + 3 * s * t * t * c + t**3 * d,
        np.where(order == 2, s * s * a + 2 * s * t * b + t * t * d, s * a + t * d),
    )
    # sub-path k owns the points of its segments, preceded by its start point
    bounds = np.searchsorted(owner, starts[1:])
    return [np.vstack([p0[first], part]) for first, part in zip(starts, np.split(xy, bounds))]
