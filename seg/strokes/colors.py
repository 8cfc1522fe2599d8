"""Stroke colours: CSS colour text -> lowercase ``"#rrggbb"``, and the eraser's reserved colour.

Colours compare after normalisation (``"#FF0000"``, ``"#f00"``, ``"rgb(255,0,0)"`` and
``"rgba(255,0,0,1)"`` are one colour; alpha is ignored except that a fully transparent colour is
no colour). :data:`ERASER_COLOR` is reserved: a class may not use it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from seg.errors import AnnotationError
from seg.strokes.checks import describe_value

ERASER_COLOR: str = "#ffffff"
"""Stroke colour of the eraser tool; strokes of this colour write label 0."""

_NAMED_COLORS = {
    "black": "#000000", "white": "#ffffff", "red": "#ff0000", "lime": "#00ff00",
    "green": "#008000", "blue": "#0000ff", "yellow": "#ffff00", "cyan": "#00ffff",
    "aqua": "#00ffff", "magenta": "#ff00ff", "fuchsia": "#ff00ff", "gray": "#808080",
    "grey": "#808080", "silver": "#c0c0c0", "maroon": "#800000", "olive": "#808000",
    "navy": "#000080", "purple": "#800080", "teal": "#008080", "orange": "#ffa500",
}


def parse_stroke_color(value: Any) -> str | None:
    """``"#rrggbb"`` for a CSS colour (hex, rgb()/rgba(), a few names), None when not a colour."""
    if not isinstance(value, str) or len(value) > 80:
        return None
    text = value.strip().lower()
    if text in _NAMED_COLORS:
        return _NAMED_COLORS[text]
    if text.startswith("#"):
        return _parse_hex(text[1:])
    match = re.fullmatch(r"rgba?\((.*)\)", text)
    if match is None:
        return None
    parts = [part for part in re.split(r"[\s,/]+", match.group(1).strip()) if part]
    if len(parts) not in (3, 4):
        return None
    channels = [_css_number(part, 255.0) for part in parts[:3]]
    alpha = _css_number(parts[3], 1.0) if len(parts) == 4 else 1.0
    if any(c is None or not 0.0 <= c <= 255.0 for c in channels) or alpha is None:
        return None
    if not 0.0 <= alpha <= 1.0 or alpha == 0.0:
        return None
    red, green, blue = (int(c + 0.5) for c in channels)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _parse_hex(digits: str) -> str | None:
    if len(digits) not in (3, 4, 6, 8) or not all(c in "0123456789abcdef" for c in digits):
        return None
    if len(digits) in (3, 4):
        digits = "".join(c * 2 for c in digits)
    if len(digits) == 8 and digits[6:] == "00":
        return None  # fully transparent
    return "#" + digits[:6]


def _css_number(text: str, full: float) -> float | None:
    """A CSS number or percentage (of ``full``); None when unparseable or not finite."""
    try:
        number = float(text[:-1]) * full / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def normalize_color(color: str) -> str:
    """Normalise a CSS colour to lowercase ``"#rrggbb"``.

    Parameters
    ----------
    color : str
        ``"#rgb"``, ``"#rrggbb"`` (with or without alpha digits), ``"rgb(r, g, b)"``,
        ``"rgba(r, g, b, a)"`` or a basic CSS colour name. Alpha is ignored.

    Raises
    ------
    AnnotationError
        If ``color`` is not such a colour or is fully transparent.
    """
    normalised = parse_stroke_color(color)
    if normalised is None:
        raise AnnotationError(
            f"colour {describe_value(color)} is not a colour: use '#rrggbb' or 'rgb(r, g, b)'"
        )
    return normalised
