"""Limits checked on an image's declared size before any pixel is decoded, and the decoder guard.

:func:`check_extent` refuses an image that is too large (pixels, frames, pixels per frame,
decoded bytes), too small (:data:`MIN_SIDE`) or has too many channels, from its header alone.
:func:`decoding` turns whatever a decoder raises on untrusted bytes into
:class:`~seg.errors.ImageError`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from seg.errors import ImageError, ImageTooLargeError, SettingsError
from seg.images.frames import MAX_CHANNELS

DEFAULT_MAX_PIXELS: int = 100_000_000
"""Largest frames x height x width :func:`read_image` accepts unless told otherwise."""

DEFAULT_MAX_FRAMES: int = 10_000
"""Largest number of frames (time points x z slices) :func:`read_image` accepts by default."""

MIN_SIDE: int = 4
"""Smallest accepted height and width: below this there is nothing to scribble on, and the
gradient and texture filters (finite differences over several pixels) degenerate."""

# Decoded bytes allowed per pixel of max_pixels: 4 float32 channels, or 16 uint8 channels.
_BYTES_PER_PIXEL = 16

_MAX_DETAIL = 200  # characters of a decoder's own message quoted in ours


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_frames: int
    max_frame_pixels: int | None = None

    @property
    def max_bytes(self) -> int:
        return self.max_pixels * _BYTES_PER_PIXEL


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise SettingsError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@contextmanager
def decoding(label: str, kind: str) -> Iterator[None]:
    """Turn whatever a decoder raises on untrusted bytes into an ImageError."""
    try:
        yield
    except ImageError:
        raise
    except MemoryError as exc:
        raise ImageError(
            f"Cannot read {label}: not enough memory to decode it. Close other images or open a smaller crop."
        ) from exc
    except Exception as exc:  # decoders raise many types (OSError, SyntaxError, struct.error, ...)
        detail = f"{type(exc).__name__}: {exc}"[:_MAX_DETAIL]
        raise ImageError(
            f"Cannot read {label}: the {kind} data is corrupt, truncated or unsupported "
            f"({detail}). Re-export the image (PNG or uncompressed TIFF are safest) and try again."
        ) from exc


def check_extent(
    label: str, frames: int, height: int, width: int, channels: int, itemsize: int, limits: Limits
) -> None:
    """Refuse a declared size before any pixel is decoded."""
    size = f"{width}×{height} pixels" + (f" × {frames:,} frames" if frames != 1 else "")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ImageError(
            f"Cannot use {label}: it is {size}, but images need at least {MIN_SIDE} pixels on each "
            "side to be scribbled on and filtered. Choose a larger image."
        )
    if frames > limits.max_frames:
        raise ImageTooLargeError(
            f"Cannot read {label}: {frames:,} frames exceed the limit of {limits.max_frames:,} "
            "frames. Open a subset of the frames, or raise the limit with max_frames=...",
            limit="max_frames",
            size=size,
        )
    if limits.max_frame_pixels is not None and height * width > limits.max_frame_pixels:
        raise ImageTooLargeError(
            f"Cannot read {label}: {width}×{height} = {height * width / 1e6:.1f} megapixels per frame "
            f"exceed the limit of {limits.max_frame_pixels / 1e6:.0f} megapixels per frame. Crop or "
            "downsample it, or segment it with the command line (python -m seg apply).",
            limit="max_frame_pixels",
            size=size,
        )
    pixels = frames * height * width
    if pixels > limits.max_pixels:
        raise ImageTooLargeError(
            f"Cannot read {label}: {size} = {pixels:,} pixels exceed the limit of "
            f"{limits.max_pixels:,} pixels (frames × height × width). Crop or downsample it, or "
            "raise the limit with max_pixels=... if the machine has the memory.",
            limit="max_pixels",
            size=size,
        )
    if channels > MAX_CHANNELS:
        raise ImageError(
            f"Cannot read {label}: {channels} channels exceed the limit of {MAX_CHANNELS}. If "
            "these are time points or z slices, save the file with T or Z axis metadata (e.g. an "
            "ImageJ hyperstack)."
        )
    nbytes = pixels * channels * itemsize
    if nbytes > limits.max_bytes:
        raise ImageTooLargeError(
            f"Cannot read {label}: {size} with {channels} channels of {itemsize}-byte values need "
            f"{nbytes:,} bytes, more than the {limits.max_bytes:,} allowed for "
            f"max_pixels={limits.max_pixels:,}. Keep fewer channels, or raise max_pixels.",
            limit="max_pixels",
            size=f"{size} × {channels} channels",
        )
