"""Labels drawn over images: class colours, tinted overlays, two images mixed, class outlines.

The overlay is redrawn after every stroke, so :func:`blend` mixes in fixed point in one compiled
pass (numba, cached on disk) instead of float arithmetic per pixel.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from seg.errors import ImageError, SettingsError
from seg.render.colors import color_table

MAX_LABEL = 65535
"""Largest value of a label image (it fits uint16 mask files): the one label limit for strokes,
label images and their colour tables."""


def check_labels(labels: np.ndarray, name: str = "labels") -> tuple[np.ndarray, int]:
    """Validate a label array; returns it (bool viewed as uint8) and a lookup-table size > max."""
    labels = np.asarray(labels)
    if labels.dtype == bool:
        return labels.view(np.uint8), 2
    if labels.dtype.kind not in "ui":
        raise ImageError(f"{name} must be an integer array (0 = unlabelled, 1..K = classes), got dtype {labels.dtype}")
    if labels.size == 0:
        raise ImageError(f"{name} is empty (shape {labels.shape}); pass a non-empty label image")
    if labels.dtype == np.uint8:
        return labels, 256  # no pass over the data needed: every uint8 value indexes the table
    if labels.dtype.kind == "i" and int(labels.min()) < 0:
        raise ImageError(f"{name} contains negative value {int(labels.min())}; labels must be 0..K")
    top = int(labels.max())
    if top > MAX_LABEL:
        raise ImageError(f"{name} contains label {top}; at most {MAX_LABEL} classes are supported")
    return labels, top + 1


def colorize(labels: np.ndarray, colors: Sequence[object]) -> np.ndarray:
    """Paint each label in its class colour.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) non-negative integer array
        0 = unlabelled, 1..K = classes.
    colors : sequence of colours
        ``colors[i]`` is the colour of label ``i + 1`` (strings :func:`parse_color` accepts, or
        three 0..255 integers). Labels beyond ``len(colors)`` get :func:`color_for` colours.

    Returns
    -------
    (..., 3) uint8
        Label 0 is black.
    """
    labels, size = check_labels(labels)
    return np.take(color_table(colors, size), labels, axis=0)


def _check_alpha(alpha: float) -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise SettingsError(f"overlay opacity alpha must be a number in 0..1, got {alpha!r}") from None
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"overlay opacity alpha must be in 0..1, got {alpha!r}")
    return value


def _check_rgb(rgb: np.ndarray, name: str = "rgb") -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageError(
            f"{name} must be an (H, W, 3) uint8 RGB image, got shape {rgb.shape} dtype {rgb.dtype}; "
            "convert with to_display_rgb"
        )
    return rgb


def blend(rgb: np.ndarray, labels: np.ndarray, colors: Sequence[object], alpha: float) -> np.ndarray:
    """Tint an image with the colours of its labels.

    Parameters
    ----------
    rgb : (H, W, 3) uint8
    labels : (H, W) non-negative integer array
        Pixels labelled 0 are left exactly unchanged.
    colors : sequence of colours
        ``colors[i]`` is the colour of label ``i + 1`` (see :func:`colorize`).
    alpha : float
        Opacity of the colours, 0 (image only) .. 1 (colours only).

    Returns
    -------
    (H, W, 3) uint8
        A new array: ``round(rgb * (1 - alpha) + colour * alpha)`` with alpha quantised to 1/256.
    """
    rgb = _check_rgb(rgb)
    labels, size = check_labels(labels)
    if labels.shape != rgb.shape[:2]:
        raise ImageError(
            f"labels shape {labels.shape} does not match image shape {rgb.shape[:2]}; resize one "
            "of them (resize_labels / resize_rgb) first"
        )
    weight = int(round(_check_alpha(alpha) * 256))
    # Fixed-point mix: out = (rgb * keep[label] + add[label]) >> 8, exact for label 0 (keep 256,
    # add 128) and alpha 1; the largest intermediate, 255 * 256 + 128, fits in uint16.
    keep = np.full(size, 256 - weight, np.uint16)
    keep[0] = 256
    add = color_table(colors, size).astype(np.uint16) * np.uint16(weight) + np.uint16(128)
    add[0] = 128
    # Two label dtypes only, so the kernel is compiled (and disk-cached) at most twice.
    labels = labels.astype(np.uint8 if size <= 256 else np.uint16, copy=False)
    out = np.empty(rgb.shape, np.uint8)
    _blend_kernel()(np.ascontiguousarray(rgb), np.ascontiguousarray(labels), keep, add, out)
    return out


def _blend_pixels(
    rgb: np.ndarray, labels: np.ndarray, keep: np.ndarray, add: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - runs compiled
    """One pass over the pixels (compiled by numba): numpy's size-3 inner loops were 8x slower."""
    height, width = labels.shape
    for i in range(height):
        for j in range(width):
            label = labels[i, j]
            factor = np.uint32(keep[label])
            for c in range(3):
                out[i, j, c] = (np.uint32(rgb[i, j, c]) * factor + add[label, c]) >> 8


@functools.cache
def _blend_kernel():
    # Imported here so that `import seg.render` stays light; compiled on first use.
    import numba

    import seg.jit  # noqa: F401  (numba's cache and warnings, set up before the kernel is compiled)

    try:
        return numba.njit(nogil=True, cache=True)(_blend_pixels)
    except RuntimeError:  # numba found no writable cache directory: compile in memory each run
        return numba.njit(nogil=True)(_blend_pixels)


def blend_images(background: np.ndarray, foreground: np.ndarray, alpha: float) -> np.ndarray:
    """``round(background * (1 - alpha) + foreground * alpha)`` for two (H, W, 3) uint8 images.

    Used to lay a :func:`heatmap` (e.g. uncertainty) over the image.
    """
    background = _check_rgb(background, "background")
    foreground = _check_rgb(foreground, "foreground")
    if background.shape != foreground.shape:
        raise ImageError(f"foreground shape {foreground.shape} does not match background shape {background.shape}")
    weight = int(round(_check_alpha(alpha) * 256))
    mixed = np.multiply(background, np.uint16(256 - weight), dtype=np.uint16)
    mixed += np.multiply(foreground, np.uint16(weight), dtype=np.uint16)
    mixed += np.uint16(128)
    return np.right_shift(mixed, 8).astype(np.uint8)


def outline(labels: np.ndarray) -> np.ndarray:
    """Keep only the pixels on a class boundary, for an "outline" display style.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) non-negative integer array

    Returns
    -------
    Same shape and dtype as ``labels``
        A labelled pixel keeps its label when one of its 4 neighbours has a different label,
        otherwise it becomes 0, so ``blend(rgb, outline(labels), colors, 1.0)`` draws each
        region's contour in its colour. The image border is not a boundary.
    """
    labels, _ = check_labels(labels)
    edge = np.zeros(labels.shape, bool)
    vertical = labels[..., 1:, :] != labels[..., :-1, :]
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    horizontal = labels[..., :, 1:] != labels[..., :, :-1]
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    return np.where(edge, labels, labels.dtype.type(0))


def draw_boxes(rgb: np.ndarray, boxes: ArrayLike, color: object, thickness: int = 1) -> np.ndarray:
    """Outline rectangles on a picture; the parts outside it are left out.

    Parameters
    ----------
    rgb : (H, W, 3) uint8
    boxes : (N, 4) numbers
        ``(top, left, bottom, right)`` of every box in picture pixels, bottom/right exclusive
        (an image box mapped to the picture, e.g. with :meth:`seg.viewport.Viewport.to_canvas`,
        may be fractional or reach outside it).
    color : colour
        Any colour :func:`seg.render.parse_color` reads, or three 0..255 integers.
    thickness : int
        Line width in picture pixels, drawn inside the box.

    Returns
    -------
    (H, W, 3) uint8
        A new array. An edge of a box is drawn only where it lies inside the picture, so a box
        partly off screen shows its visible sides and no false edge along the picture's border.
    """
    rgb = _check_rgb(rgb)
    out = rgb.copy()
    height, width = out.shape[:2]
    value = color_table([color], 2)[1]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    thickness = max(1, int(thickness))
    for top, left, bottom, right in boxes:
        r0, c0 = int(np.floor(top)), int(np.floor(left))
        r1, c1 = max(int(np.ceil(bottom)), r0 + 1), max(int(np.ceil(right)), c0 + 1)
        rows = slice(max(r0, 0), min(r1, height))
        cols = slice(max(c0, 0), min(c1, width))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        t = min(thickness, r1 - r0, c1 - c0)
        for start in (r0, r1 - t):  # top and bottom edges
            band = slice(max(start, 0), min(start + t, height))
            if band.start < band.stop:
                out[band, cols] = value
        for start in (c0, c1 - t):  # left and right edges
            band = slice(max(start, 0), min(start + t, width))
            if band.start < band.stop:
                out[rows, band] = value
    return out
