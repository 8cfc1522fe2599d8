"""Canvas objects as the browser's Fabric 7 sends them, for tests that inject strokes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fabric_path(points_xy: Sequence[Sequence[float]], color: str, width: float, **extra) -> dict:
    """A freehand Path through canvas points ``points_xy``, unmoved: left/top = centre of its bounds.

    One point becomes a zero-length segment (a dot), as the pencil brush sends a click. ``extra``
    overrides any field (e.g. ``left`` for a path the user dragged).
    """
    xy = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    low, high = xy.min(axis=0), xy.max(axis=0)
    commands = [["M", *xy[0]]] + [["L", *p] for p in xy[1:]]
    if len(xy) == 1:
        commands.append(["L", *xy[0]])
    obj = {
        "type": "Path",
        "originX": "center",
        "originY": "center",
        "left": float(low[0] + high[0]) / 2,
        "top": float(low[1] + high[1]) / 2,
        "width": float(high[0] - low[0]),
        "height": float(high[1] - low[1]),
        "stroke": color,
        "strokeWidth": width,
        "strokeLineCap": "round",
        "strokeLineJoin": "round",
        "fill": None,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
        "path": [[c, *map(float, rest)] for c, *rest in commands],
    }
    obj.update(extra)
    return obj
