"""Class colours: the default palette, colour text -> RGB, and per-label colour lookup tables.

Colours are lowercase ``"#rrggbb"`` strings; :func:`parse_rgba` (the package's one colour
parser) also reads the ``"#rgb"``, ``"rgb(...)"``, ``"rgba(...)"`` and CSS-name forms that canvas
JSON and hand-edited files contain.
``colors[i]`` is the colour of label ``i + 1``; labels without a colour get :func:`color_for`.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Sequence

import numpy as np

from seg.errors import SettingsError, describe_value

PALETTE: tuple[str, ...] = (
    # Okabe & Ito (2008), "Color Universal Design", in their order, without black: black means
    # "unlabelled" in masks and would vanish on dark images.
    "#e69f00",  # orange
    "#56b4e9",  # sky blue
    "#009e73",  # bluish green
    "#f0e442",  # yellow
    "#0072b2",  # blue
    "#d55e00",  # vermillion
    "#cc79a7",  # reddish purple
    # Paul Tol's "muted" qualitative scheme (also colour-blind safe) for the 8th class onwards,
    # without its pale grey, which is reserved for missing data.
    "#332288",  # indigo
    "#88ccee",  # cyan
    "#44aa99",  # teal
    "#117733",  # green
    "#999933",  # olive
    "#ddcc77",  # sand
    "#cc6677",  # rose
    "#882255",  # wine
    "#aa4499",  # purple
)

_MAX_COLOR_TEXT = 80


def color_for(index: int) -> str:
    """Default colour of the class at position ``index`` (0-based; label ``index + 1``).

    Cycles through :data:`PALETTE`, so any number of classes gets a colour.
    """
    try:
        position = operator.index(index)
    except TypeError:
        raise SettingsError(
            f"class index must be an integer, got {index!r}; pass the class position 0, 1, 2, ..."
        ) from None
    if position < 0:
        raise SettingsError(f"class index must be >= 0, got {position}")
    return PALETTE[position % len(PALETTE)]


def default_colors(n_classes: int) -> list[str]:
    """Default colours for ``n_classes`` classes: ``[color_for(0), ..., color_for(n - 1)]``."""
    return [color_for(i) for i in range(n_classes)]


_HEX = re.compile(r"#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})")
_NUMBER = r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)%?)"
_FUNCTIONAL = (
    # CSS legacy syntax, rgb(r, g, b) / rgba(r, g, b, a), and modern syntax, rgb(r g b / a).
    re.compile(rf"rgba?\(\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*(?:,\s*{_NUMBER}\s*)?\)"),
    re.compile(rf"rgba?\(\s*{_NUMBER}\s+{_NUMBER}\s+{_NUMBER}\s*(?:/\s*{_NUMBER}\s*)?\)"),
)
_ACCEPTED = "'#rrggbb' (e.g. '#e69f00'), '#rgb', 'rgb(r, g, b)', 'rgba(r, g, b, a)' or a CSS colour name"


def parse_rgba(color: str) -> tuple[int, int, int, float]:
    """Read a colour string as ``(r, g, b, alpha)``: the one colour parser of the package.

    Parameters
    ----------
    color : str
        One of, with case and surrounding spaces ignored:

        - hex: ``"#rgb"``, ``"#rgba"``, ``"#rrggbb"``, ``"#rrggbbaa"``;
        - functional: ``"rgb(r, g, b)"``, ``"rgba(r, g, b, a)"`` or ``"rgb(r g b / a)"``, with
          components as 0..255 numbers or percentages and alpha as 0..1 or a percentage;
        - a CSS colour name (``"red"``, ``"rebeccapurple"``: the 148 names of CSS Color 4).

        Class colours, stroke colours of canvas JSON and hand-edited annotation files all go
        through here, so every place accepts the same colours.

    Returns
    -------
    (int, int, int, float)
        Red, green, blue in 0..255 (halves round up, as browsers do) and alpha in 0..1.

    Raises
    ------
    SettingsError
        Anything else: other notations (``"hsl(...)"``, ``"transparent"``), out-of-range
        components, text over 80 characters, non-strings. Nothing is guessed.
    """
    if not isinstance(color, str):
        raise SettingsError(
            f"colour must be a string like '#e69f00', got {type(color).__name__} {describe_value(color)}"
        )
    text = color.strip().lower()
    if len(text) > _MAX_COLOR_TEXT:
        raise SettingsError(f"colour {color[:_MAX_COLOR_TEXT]!r}... is too long; use '#rrggbb'")
    if text.isalpha():
        from PIL import ImageColor  # its table is CSS Color 4's named colours

        # Pillow's table maps a name to '#rrggbb' until ImageColor.getrgb has resolved that name
        # once anywhere in the process; then it holds the (r, g, b) tuple instead.
        named = ImageColor.colormap.get(text, text)
        text = named if isinstance(named, str) else "#{:02x}{:02x}{:02x}".format(*named[:3])
    match = _HEX.fullmatch(text)
    if match:
        digits = match.group(1)
        if len(digits) <= 4:
            digits = "".join(d * 2 for d in digits)
        alpha = int(digits[6:8], 16) / 255.0 if len(digits) == 8 else 1.0
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16), alpha
    for pattern in _FUNCTIONAL:
        match = pattern.fullmatch(text)
        if match:
            red, green, blue, alpha_text = match.groups()
            red, green, blue = (_color_component(value, color) for value in (red, green, blue))
            alpha = 1.0 if alpha_text is None else _alpha_component(alpha_text, color)
            return red, green, blue, alpha
    raise SettingsError(f"colour {color!r} is not understood; use {_ACCEPTED}")


def parse_color(color: str) -> tuple[int, int, int]:
    """Read a colour string as ``(r, g, b)`` integers in 0..255, ignoring its alpha.

    Accepts exactly what :func:`parse_rgba` accepts and raises the same :class:`SettingsError`.
    """
    red, green, blue, _ = parse_rgba(color)
    return red, green, blue


def _color_component(text: str, color: str) -> int:
    value = float(text[:-1]) * 255.0 / 100.0 if text.endswith("%") else float(text)
    if not 0.0 <= value <= 255.0:
        raise SettingsError(f"colour {color!r} has component {text} outside 0..255 (0%..100%)")
    return math.floor(value + 0.5)  # halves round up, as browsers do


def _alpha_component(text: str, color: str) -> float:
    value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"colour {color!r} has alpha {text} outside 0..1 (0%..100%)")
    return value


def normalize_color(color: str) -> str:
    """Any colour :func:`parse_color` accepts, as the canonical lowercase ``"#rrggbb"``."""
    red, green, blue = parse_color(color)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _rgb_of(color: object) -> tuple[int, int, int]:
    """A colour given as a string or as three 0..255 integers."""
    if isinstance(color, str):
        return parse_color(color)
    try:
        values = [operator.index(v) for v in np.asarray(color).tolist()]
    except TypeError:
        values = []
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise SettingsError(f"colour {describe_value(color)} is neither a colour string nor three integers 0..255")
    return values[0], values[1], values[2]


@functools.lru_cache(maxsize=8)
def _palette_table(size: int) -> np.ndarray:
    """``(size, 3) uint8``: row 0 black, row i the default colour of label i (read-only, cached)."""
    palette = np.array([parse_color(color) for color in PALETTE], np.uint8)
    table = palette[(np.arange(size) - 1) % len(PALETTE)]
    table[0] = 0
    table.setflags(write=False)
    return table


def color_table(colors: Sequence[object], size: int) -> np.ndarray:
    """``(size, 3) uint8`` RGB per label: row 0 black, row i the colour of label i."""
    if isinstance(colors, str):
        raise SettingsError(
            f"colors must be a list of colours (one per class), got the string {describe_value(colors)}"
        )
    table = _palette_table(max(size, 1)).copy()
    for label, color in enumerate(colors, start=1):
        if label >= size:
            break
        table[label] = _rgb_of(color)
    return table
