"""Stroke colours: colour text -> lowercase ``"#rrggbb"``, and the eraser's reserved colour.

The accepted notations are those of :func:`seg.render.colors.parse_rgba`, the package's one
colour parser (hex, ``rgb()``/``rgba()``, CSS colour names). Colours compare after
normalisation (``"#FF0000"``, ``"#f00"``, ``"red"`` and ``"rgba(255,0,0,1)"`` are one colour);
alpha is ignored except that a fully transparent colour is no colour.
:data:`ERASER_COLOR` is reserved: a class may not use it.
"""

from __future__ import annotations

from typing import Any

from seg.errors import AnnotationError, SettingsError, describe_value
from seg.render.colors import parse_rgba

ERASER_COLOR: str = "#ffffff"
"""Stroke colour of the eraser tool; strokes of this colour write label 0."""


def parse_stroke_color(value: Any) -> str | None:
    """``"#rrggbb"`` for a visible colour :func:`~seg.render.colors.parse_rgba` accepts, else None."""
    try:
        red, green, blue, alpha = parse_rgba(value)
    except SettingsError:
        return None
    return f"#{red:02x}{green:02x}{blue:02x}" if alpha > 0.0 else None


def normalize_color(color: str) -> str:
    """Normalise a colour to lowercase ``"#rrggbb"``.

    Parameters
    ----------
    color : str
        Any notation :func:`seg.render.colors.parse_rgba` accepts. Alpha is ignored.

    Raises
    ------
    AnnotationError
        If ``color`` is not such a colour or is fully transparent.
    """
    try:
        red, green, blue, alpha = parse_rgba(color)
    except SettingsError as error:
        raise AnnotationError(str(error)) from None
    if alpha == 0.0:
        raise AnnotationError(f"colour {describe_value(color)} is fully transparent: give it alpha above 0")
    return f"#{red:02x}{green:02x}{blue:02x}"
