"""Exception types raised by the engine on bad input.

Every problem caused by what a user supplied (an image, a canvas drawing, an annotation file,
settings, scribbles, a model file) is raised as a subclass of :class:`SegError`, with a message
that names the thing, the offending value and what to do about it. Callers (the app, the command
line) catch ``SegError`` and show its message; anything else is a bug and is allowed to surface.
"""

from __future__ import annotations

import numbers
import reprlib
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

__all__ = [
    "SegError",
    "ImageError",
    "AnnotationError",
    "SettingsError",
    "TrainingError",
    "ModelFileError",
    "ModelMismatchError",
    "VolumeHeaderError",
    "VoxelSizeError",
    "OmeZarrError",
    "describe_value",
    "is_whole_number",
    "check_keys",
]


class SegError(ValueError):
    """Base class of every error caused by user-supplied input."""


class ImageError(SegError):
    """An image could not be read or is not usable (corrupt, unsupported, too large, NaN/inf)."""


class ImageTooLargeError(ImageError):
    """An image is over one of :func:`seg.images.read_image`'s size limits (seen in its header).

    Attributes
    ----------
    limit : str
        The argument whose limit was exceeded: ``"max_pixels"`` (also for decoded bytes),
        ``"max_frames"`` or ``"max_frame_pixels"``; callers with their own limits (the app) can
        phrase their own advice.
    size : str
        The image's size as the message gives it, e.g. ``"5000×5000 pixels × 30 frames"``.
    """

    def __init__(self, message: str, *, limit: str, size: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.size = size


class AnnotationError(SegError):
    """Canvas stroke JSON or an annotation file is malformed or out of bounds."""


class SettingsError(SegError):
    """Feature, forest or normalisation settings have an invalid value."""


class TrainingError(SegError):
    """The scribbles cannot train a model (no labels, one class only, labels out of range)."""


class ModelFileError(SegError):
    """A model bundle was refused (not a bundle, a pickle, truncated, wrong schema, foreign content)."""


class ModelMismatchError(SegError):
    """A valid model was applied to an image it cannot handle (e.g. a different channel count)."""


class VolumeHeaderError(ImageError):
    """A volume file's header is broken or declares absurd dimensions (seen before any voxel is read)."""


class VoxelSizeError(ImageError):
    """A voxel size (spacing) is zero, negative, not finite or not three numbers (dz, dy, dx)."""


class OmeZarrError(ImageError):
    """An OME-Zarr store, an OME-Zarr zip or a lazily read TIFF was refused: malformed, oversized
    or unsupported metadata (version, axes, dtype, chunk size), or an unsafe zip member."""


_SHORT = reprlib.Repr()
_SHORT.maxlevel = 2
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = _SHORT.maxfrozenset = 4
_MAX_DESCRIPTION = 80


def describe_value(value: Any) -> str:
    """A short description of a (possibly huge or hostile) value, for an error message.

    ``repr``-like (``'abc'``, ``12``, ``[1, 2, 3, 4, ...]``, ``{'a': [...]}``) but bounded: long
    strings and numbers, long or deeply nested containers are elided by :mod:`reprlib` before
    any text is built, so a 1 GB string or a million-element list costs no more than a short
    one; at most 80 characters. A value whose ``repr`` fails is described by its type name.
    """
    try:
        text = _SHORT.repr(value)
    except Exception:  # e.g. int('9' * 5000): repr refuses integers over 4300 digits
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 3] + "..."


def is_whole_number(value: object, low: int | None = None, high: int | None = None) -> TypeGuard[int]:
    """Whether ``value`` is an integer (Python or NumPy, not a bool) within ``low..high``.

    The one check behind every "must be a whole number from ``low`` to ``high``" refusal: floats
    (even ``3.0``), strings and bools (``True`` is an ``int`` in Python) are not whole numbers here.
    Bounds are inclusive; ``None`` leaves that side open. (Typed as a guard for ``int``: NumPy
    integers take part in arithmetic as ints do.)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return False  # numpy.bool_ is not Integral
    number = int(value)
    return (low is None or number >= low) and (high is None or number <= high)


def check_keys(
    data: object,
    required: Iterable[str],
    optional: Iterable[str] = (),
    *,
    what: str,
    error: type[SegError] = SettingsError,
    hint: str = "",
) -> Mapping[str, Any]:
    """``data`` if it is a mapping with every ``required`` key and no key beyond ``optional``.

    The one check of a JSON object's keys read from an untrusted file (settings in a model file,
    an annotation file, a manifest). Raises ``error`` naming ``what``, the missing and the unknown
    keys (bounded by :func:`describe_value`, however many a hostile file holds) and what was
    expected, followed by ``hint``.
    """
    if not isinstance(data, Mapping):
        raise error(f"{what} must be a JSON object (dict), got {type(data).__name__}")
    required = list(required)
    expected = required + [key for key in optional if key not in required]
    missing = [key for key in required if key not in data]
    unknown = sorted(str(key)[:50] for key in data if key not in expected)
    if missing or unknown:
        problems = [f"missing key(s) {describe_value(missing)}"] if missing else []
        problems += [f"unknown key(s) {describe_value(unknown)}"] if unknown else []
        raise error(f"{what} has {' and '.join(problems)}; expected {expected}. {hint}".rstrip())
    return data
