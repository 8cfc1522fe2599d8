"""The engine's image convention: ``(T, H, W, C)`` arrays of uint8, uint16 or finite float32.

:func:`as_frames` brings any array to that layout and dtype (the rules are in its docstring);
:func:`image_digest` identifies an image's values, e.g. as a cache key; :func:`describe` gives the
one-line summary shown in status lines.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from seg.errors import ImageError

MAX_CHANNELS: int = 64
"""Most channels an image may have; more almost always means frames stored on the last axis."""


def as_frames(image: np.ndarray) -> np.ndarray:
    """Return ``image`` in the ``(T, H, W, C)`` layout with a supported dtype.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` greyscale, ``(H, W, C)`` channels last (C <= 64), or ``(T, H, W, C)``.

    Returns
    -------
    frames : (T, H, W, C) ndarray of uint8, uint16 or float32
        A view of ``image`` when its dtype is already supported. bool becomes uint8 0/255;
        other integers become uint16 when every value fits 0..65535 (uint8 for non-negative
        int8), else float32; float16/float64 become float32.

    Raises
    ------
    ImageError
        Wrong number of dimensions, an empty axis, more than 64 channels, complex or
        non-numeric values, or NaN/inf.
    """
    return frames_from_pages(image, "the image")


def frames_from_pages(image: Any, label: str) -> np.ndarray:
    array = np.asarray(image)
    frames, height, width, channels = _frames_shape(array.shape, label)
    if 0 in (frames, height, width, channels):
        raise ImageError(f"Cannot use {label}: it has an empty axis (shape {array.shape}).")
    if channels > MAX_CHANNELS:
        hint = ""
        if array.ndim == 3:
            hint = " If the first axis holds frames, pass image[..., None] (T, H, W, 1)."
        raise ImageError(
            f"Cannot use {label}: {channels} channels (shape {array.shape}) exceed the limit of "
            f"{MAX_CHANNELS}; channels go last.{hint}"
        )
    return supported_dtype(array.reshape(frames, height, width, channels), label)


def _frames_shape(shape: tuple[int, ...], label: str) -> tuple[int, int, int, int]:
    if len(shape) == 2:
        return (1, *shape, 1)
    if len(shape) == 3:
        return (1, *shape)
    if len(shape) == 4:
        return shape
    raise ImageError(
        f"Cannot use {label}: it has {len(shape)} dimensions (shape {shape}); expected (H, W), "
        "(H, W, C) or (T, H, W, C)."
    )


def supported_dtype(array: np.ndarray, label: str) -> np.ndarray:
    """Convert to uint8, uint16 or finite float32 (no copy when already one of them)."""
    dtype = array.dtype
    if dtype.kind == "u" and dtype.itemsize in (1, 2):
        return array.astype(dtype.newbyteorder("="), copy=False)
    if dtype.kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if dtype.kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 255 and dtype.itemsize == 1:
            return array.astype(np.uint8)
        if low >= 0 and high <= 65535:
            return array.astype(np.uint16)
        return array.astype(np.float32)
    if dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):  # overflow shows up as inf below
            floats = array.astype(np.float32, copy=False)
        if not np.isfinite(floats).all():
            bad = int(np.count_nonzero(~np.isfinite(floats)))
            raise ImageError(
                f"Cannot use {label}: {bad:,} of {floats.size:,} values are NaN, infinite or "
                "beyond the float32 range. Replace them (e.g. numpy.nan_to_num) and save the "
                "image again."
            )
        return floats
    raise ImageError(
        f"Cannot use {label}: pixels of type {dtype} are not supported. Use 8/16-bit integers or real floats."
    )


def image_digest(image: np.ndarray) -> str:
    """Hex digest of an image's values, shape and dtype, e.g. as a cache key.

    Parameters
    ----------
    image : ndarray
        Any array; non-contiguous views hash like their contiguous copy.

    Returns
    -------
    digest : str
        32 hex characters (BLAKE2b, 16 bytes).
    """
    array = np.ascontiguousarray(image)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.view(np.uint8).reshape(-1).data if array.size else b"")
    return digest.hexdigest()


def describe(image: np.ndarray) -> str:
    """One-line summary for status lines: ``"3 frames · 640×480 px · 2 channels · uint16"``.

    The size is width × height, as image viewers show it. ``image`` is (H, W), (H, W, C) or
    (T, H, W, C).
    """
    frames, height, width, channels = _frames_shape(np.shape(image), "the image")
    return (
        f"{frames} frame{'s' if frames != 1 else ''} · {width}×{height} px · "
        f"{channels} channel{'s' if channels != 1 else ''} · {np.asarray(image).dtype}"
    )
