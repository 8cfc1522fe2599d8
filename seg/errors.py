"""Exception types raised by the engine on bad input.

Every problem caused by what a user supplied (an image, a canvas drawing, an annotation file,
settings, scribbles, a model file) is raised as a subclass of :class:`SegError`, with a message
that names the thing, the offending value and what to do about it. Callers (the app, the command
line) catch ``SegError`` and show its message; anything else is a bug and is allowed to surface.
"""

from __future__ import annotations

__all__ = [
    "SegError",
    "ImageError",
    "AnnotationError",
    "SettingsError",
    "TrainingError",
    "ModelFileError",
    "ModelMismatchError",
]


class SegError(ValueError):
    """Base class of every error caused by user-supplied input."""


class ImageError(SegError):
    """An image could not be read or is not usable (corrupt, unsupported, too large, NaN/inf)."""


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
