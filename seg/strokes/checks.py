"""Validators shared by the strokes modules: untrusted values -> checked Python values.

Every value read from a canvas drawing or an annotation file passes through one of these: a
finite number within ``MAX_COORDINATE``, a bounded integer, an image shape within
``MAX_IMAGE_PIXELS``, JSON text within ``MAX_JSON_BYTES``, ``MAX_JSON_CONTAINERS`` and
``MAX_JSON_ITEMS`` (counted before the text is parsed). Anything else raises
:class:`~seg.errors.AnnotationError` naming the field and the value (shortened by :func:`seg.errors.describe_value`).
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

from seg.errors import AnnotationError, describe_value

MAX_JSON_BYTES = 64 * 1024 * 1024
# Python objects cost ~50-70 bytes each: a 64 MiB file of "[]," parses into 22 million lists
# (1.7 GB). The structure is counted before parsing. The largest valid annotation file
# (MAX_TOTAL_POINTS [x, y] pairs) has ~2 million arrays and ~4 million commas.
MAX_JSON_CONTAINERS = 2_500_000  # "[" and "{" (also inside strings: an upper bound)
MAX_JSON_ITEMS = 5_000_000  # "," separators (also inside strings)
MAX_COORDINATE = 1e7  # |coordinate| in canvas or image pixels
MAX_IMAGE_PIXELS = 1_000_000_000  # T * H * W of an annotated image


def check_number(value: Any, what: str, *, limit: float = MAX_COORDINATE) -> float:
    """A finite float with ``|value| <= limit``, or AnnotationError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AnnotationError(f"{what} must be a number, got {describe_value(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise AnnotationError(f"{what} is too large: {describe_value(value)}") from None
    if not math.isfinite(number):
        raise AnnotationError(f"{what} must be finite, got {number}")
    if abs(number) > limit:
        raise AnnotationError(f"{what} = {number:g} is beyond +-{limit:g}; the drawing is corrupt")
    return number


def check_integer(value: Any, what: str, *, low: int = 0, high: int | None = None) -> int:
    """An int in ``[low, high]`` (bools refused), or AnnotationError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise AnnotationError(f"{what} must be an integer, got {describe_value(value)}")
    number = int(value)
    if number < low or (high is not None and number > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise AnnotationError(f"{what} must be in {bound}, got {number}")
    return number


def load_json(text: str | bytes, what: str) -> Any:
    """Decode bounded, UTF-8 JSON text; any decoder failure becomes AnnotationError."""
    if len(text) > MAX_JSON_BYTES:
        raise AnnotationError(f"the {what} is {len(text)} bytes, more than {MAX_JSON_BYTES}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise AnnotationError(f"the {what} is not UTF-8 text: {error}") from None
    containers = text.count("[") + text.count("{")
    if containers > MAX_JSON_CONTAINERS:
        raise AnnotationError(
            f"the {what} holds {containers:,} JSON arrays and objects, more than "
            f"{MAX_JSON_CONTAINERS:,}; it was not written by seg"
        )
    items = text.count(",")
    if items > MAX_JSON_ITEMS:
        raise AnnotationError(
            f"the {what} holds {items:,} JSON items, more than {MAX_JSON_ITEMS:,}; it was not written by seg"
        )

    def refuse_constant(name: str) -> float:
        raise AnnotationError(f"the {what} contains {name}; numbers must be finite")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, int-digit limit, deep nesting
        if isinstance(error, AnnotationError):
            raise
        raise AnnotationError(f"the {what} is not valid JSON: {str(error)[:200]}") from None


def check_shape(shape: Any) -> tuple[int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise AnnotationError(f"image shape must be (H, W), got {describe_value(shape)}")
    height = check_integer(shape[0], "image height", low=1)
    width = check_integer(shape[1], "image width", low=1)
    if height * width > MAX_IMAGE_PIXELS:
        raise AnnotationError(f"image shape {height}x{width} exceeds {MAX_IMAGE_PIXELS} pixels")
    return height, width
