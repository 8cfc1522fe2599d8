"""Validators shared by the strokes modules: untrusted values -> checked Python values.

Every value read from a canvas drawing or an annotation file passes through one of these: a
finite number within ``MAX_COORDINATE``, a bounded integer, an image shape within
``MAX_IMAGE_PIXELS``, JSON text within ``MAX_JSON_BYTES``. Anything else raises
:class:`~seg.errors.AnnotationError` naming the field and the value (shortened by :func:`seg.errors.describe_value`).
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

from seg.errors import AnnotationError, describe_value

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_COORDINATE = 1e7             # |coordinate| in canvas or image pixels
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
