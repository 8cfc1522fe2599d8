"""Sizes for display: the size to show an image at, resized display images and labels.

Labels are resized by exact nearest-neighbour sampling (no new label values), with the same
display -> image mapping that turns canvas strokes into image pixels. Sizes are
``(height, width)`` like numpy shapes, never PIL's ``(width, height)``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
from PIL import Image

from seg.errors import ImageError, SettingsError


def display_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The ``(height, width)`` to show an image at so its longer side is at most ``max_side``.

    Keeps the aspect ratio, never enlarges, and every side is at least 1 pixel.
    """
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ImageError(f"image {name} must be a positive integer, got {value!r}")
    if not isinstance(max_side, (int, np.integer)) or max_side < 1:
        raise SettingsError(f"max_side must be a positive integer number of pixels, got {max_side!r}")
    scale = min(1.0, max_side / max(height, width))
    return max(1, min(int(height), round(height * scale))), max(1, min(int(width), round(width * scale)))


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        height, width = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        raise SettingsError(f"size must be (height, width) integers, got {size!r}") from None
    if height < 1 or width < 1:
        raise SettingsError(f"size must be positive (height, width), got {size!r}")
    return height, width


def resize_rgb(rgb: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize a display image to ``size = (height, width)``.

    Shrinking averages the source pixels each output pixel covers (box filter); enlarging is
    bilinear. Returns ``rgb`` itself when it already has that size.

    Parameters
    ----------
    rgb : (H, W, 3) or (H, W) uint8
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] not in (3, 4)):
        raise ImageError(
            f"resize_rgb needs an (H, W, 3) or (H, W) uint8 image, got shape {rgb.shape} dtype {rgb.dtype}"
        )
    height, width = _check_size(size)
    if (height, width) == rgb.shape[:2]:
        return rgb
    shrinking = height <= rgb.shape[0] and width <= rgb.shape[1]
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    resized = Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), resample=resample)
    return np.asarray(resized)


def _centre_indices(display: int, natural: int) -> np.ndarray:
    """Source index under the centre of each display pixel: floor((i + 0.5) * natural / display)."""
    return (2 * np.arange(display, dtype=np.int64) + 1) * natural // (2 * display)


def resize_labels(labels: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize labels by exact nearest-neighbour sampling (no new label values are invented).

    Display pixel ``(i, j)`` takes the label of the image pixel under its centre,
    ``floor((i + 0.5) * H / height)``, ``floor((j + 0.5) * W / width)`` — the same
    image = display * (natural / display) mapping that turns canvas strokes into image pixels.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) array (any dtype)
    size : (height, width)

    Returns
    -------
    (height, width) or (T, height, width), same dtype; ``labels`` itself when the size matches.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ImageError(f"labels must be (H, W) or (T, H, W), got shape {labels.shape}")
    height, width = _check_size(size)
    natural_h, natural_w = labels.shape[-2:]
    if (height, width) == (natural_h, natural_w):
        return labels
    if natural_h == 0 or natural_w == 0:
        raise ImageError(f"labels of shape {labels.shape} are empty")
    rows = np.take(labels, _centre_indices(height, natural_h), axis=-2)
    return np.take(rows, _centre_indices(width, natural_w), axis=-1)
