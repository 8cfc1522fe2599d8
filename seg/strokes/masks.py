"""Labels you already have: a label or mask image (PNG/TIFF) turned into scribbles.

A mask is read like any image (:func:`seg.images.read_image`, with its size guards); each
distinct value (a grey level, or an RGB colour for colour masks) is a *mask value* that the user
maps to a class or leaves unlabelled. Masks with more than :data:`MAX_MASK_VALUES` values are
refused: that is a photograph or an instance label image, not a class mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from seg.errors import AnnotationError

__all__ = ["MAX_MASK_VALUES", "MaskValue", "read_mask", "mask_values", "mask_to_labels", "under_strokes"]

MAX_MASK_VALUES = 256


@dataclass(frozen=True)
class MaskValue:
    """One value of a mask: a grey level (int) or an ``(r, g, b)`` colour, and its pixel count."""

    value: int | tuple[int, int, int]
    pixels: int

    @property
    def text(self) -> str:
        """E.g. ``"2"`` or ``"#ff0000"``."""
        if isinstance(self.value, tuple):
            return "#{:02x}{:02x}{:02x}".format(*self.value)
        return str(self.value)


def read_mask(source, shape: tuple[int, int]) -> np.ndarray:
    """Read a label/mask image of ``shape`` = (H, W).

    Parameters
    ----------
    source : path, bytes or binary file
        PNG or TIFF (anything :func:`seg.images.read_image` reads), one frame.
    shape : (H, W)
        The image's size; the mask must have it.

    Returns
    -------
    (H, W) integer array (grey values) or (H, W, 3) uint8/uint16 (colours)

    Raises
    ------
    ImageError
        Unreadable or too large (from :func:`seg.images.read_image`).
    AnnotationError
        Several frames, floating-point values, another size, or too many distinct values.
    """
    from seg.images import read_image

    frames = read_image(source)
    if frames.shape[0] != 1:
        raise AnnotationError(
            f"The mask has {frames.shape[0]} frames; import one frame at a time "
            "(save the frame you want as its own PNG or TIFF)."
        )
    mask = frames[0]
    if not np.issubdtype(mask.dtype, np.integer):
        raise AnnotationError(
            f"The mask holds {mask.dtype} values; a label mask holds whole numbers "
            "(save it as an 8- or 16-bit PNG or TIFF)."
        )
    if mask.shape[:2] != tuple(shape):
        raise AnnotationError(
            f"The mask is {mask.shape[1]}×{mask.shape[0]} pixels but the image is "
            f"{shape[1]}×{shape[0]}: import a mask made for this image."
        )
    mask = mask[..., 0] if mask.shape[-1] == 1 else mask[..., :3]
    mask_values(mask)  # refuses a mask with too many values now, not at mapping time
    return mask


def _codes(mask: np.ndarray) -> np.ndarray:
    """One integer per pixel: the grey value, or the colour packed as r << 32 | g << 16 | b."""
    if mask.ndim == 2:
        return mask.astype(np.int64, copy=False)
    rgb = mask.astype(np.int64)
    return (rgb[..., 0] << 32) | (rgb[..., 1] << 16) | rgb[..., 2]


def _value(code: int, colour: bool):
    if not colour:
        return int(code)
    return (int(code >> 32) & 0xFFFF, int(code >> 16) & 0xFFFF, int(code) & 0xFFFF)


def mask_values(mask: np.ndarray) -> list[MaskValue]:
    """The distinct values of a mask with their pixel counts, in ascending order.

    Parameters
    ----------
    mask : (H, W) integer or (H, W, 3) integer array

    Raises
    ------
    AnnotationError
        More than :data:`MAX_MASK_VALUES` distinct values.
    """
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3) or (mask.ndim == 3 and mask.shape[-1] != 3) or not np.issubdtype(mask.dtype, np.integer):
        raise AnnotationError(f"A mask is an (H, W) or (H, W, 3) integer image, got {mask.dtype} {mask.shape}")
    codes, counts = np.unique(_codes(mask), return_counts=True)
    if len(codes) > MAX_MASK_VALUES:
        raise AnnotationError(
            f"The mask has {len(codes)} distinct values, more than {MAX_MASK_VALUES}: it looks "
            "like a photograph or an object (instance) label image, not a class mask."
        )
    return [MaskValue(_value(c, mask.ndim == 3), int(n)) for c, n in zip(codes, counts)]


def mask_to_labels(mask: np.ndarray, mapping: Mapping, n_classes: int) -> np.ndarray:
    """Scribbles from a mask: every pixel of a mapped value gets that class.

    Parameters
    ----------
    mask : (H, W) or (H, W, 3) integer array
    mapping : dict
        Mask value (int, or ``(r, g, b)`` tuple) -> class 1..K; values not in it (or mapped to 0)
        stay unlabelled.
    n_classes : int
        K.

    Returns
    -------
    (H, W) uint16 labels, 0 = unlabelled.
    """
    values = mask_values(mask)  # checks the mask and the value count
    _, inverse = np.unique(_codes(np.asarray(mask)), return_inverse=True)
    lookup = np.zeros(len(values), np.uint16)
    for i, v in enumerate(values):
        target = mapping.get(v.value, 0)
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target <= n_classes:
            raise AnnotationError(
                f"Mask value {v.text} is mapped to {target!r}: use a class 1..{n_classes} or 0 (unlabelled)."
            )
        lookup[i] = target
    return lookup[inverse.reshape(np.shape(mask)[:2])]


def under_strokes(drawn: np.ndarray | None, imported: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Imported labels with the drawn strokes over them: ``(H, W)`` of ``dtype``.

    Where a stroke labels a pixel (``drawn > 0``) the stroke wins; elsewhere the imported label
    stays (an eraser stroke leaves 0 in ``drawn``, so it does not erase imported labels). ``drawn``
    None (no strokes on that frame) gives a copy of ``imported``.
    """
    if drawn is None:
        return np.array(imported, dtype=dtype)
    return np.where(drawn > 0, drawn, imported).astype(dtype, copy=False)
