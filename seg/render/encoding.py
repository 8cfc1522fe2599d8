"""Bytes for the browser and for downloads: PNG/JPEG images, overlays, masks, probabilities.

Masks are written so that other tools read the labels as pixel values (8-bit PNG, or an
ImageJ-compatible TIFF); probabilities as a float32 ImageJ hyperstack TIFF.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import tifffile
from PIL import Image

from seg.errors import ImageError, SettingsError
from seg.render.overlays import blend, check_labels


def encode_png(rgb: np.ndarray, *, compress_level: int = 1) -> bytes:
    """PNG bytes of an (H, W, 3), (H, W, 4) or (H, W) uint8 image.

    The default ``compress_level=1`` is several times faster than PIL's default 6 and only a
    little larger: display images are encoded after every stroke.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 3 and rgb.shape[2] == 1:
        rgb = rgb[..., 0]
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] not in (3, 4)):
        raise ImageError(
            f"PNG encoding needs an (H, W, 3), (H, W, 4) or (H, W) uint8 image, got shape {rgb.shape} dtype {rgb.dtype}"
        )
    if not isinstance(compress_level, (int, np.integer)) or not 0 <= compress_level <= 9:
        raise SettingsError(f"PNG compress_level must be an integer 0..9, got {compress_level!r}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", compress_level=int(compress_level))
    return buffer.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an (H, W, 3) or (H, W) uint8 image (an alpha channel is dropped)."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 3 and rgb.shape[2] in (1, 4):
        rgb = rgb[..., 0] if rgb.shape[2] == 1 else rgb[..., :3]
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] != 3):
        raise ImageError(
            f"JPEG encoding needs an (H, W, 3) or (H, W) uint8 image, got shape {rgb.shape} dtype {rgb.dtype}"
        )
    if not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise SettingsError(f"JPEG quality must be an integer 1..100, got {quality!r}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def overlay_png(
    rgb: np.ndarray, labels: np.ndarray, colors: Sequence[object], alpha: float, *, compress_level: int = 1
) -> bytes:
    """PNG bytes of :func:`blend` ``(rgb, labels, colors, alpha)``."""
    return encode_png(blend(rgb, labels, colors, alpha), compress_level=compress_level)


def mask_file(labels: np.ndarray, *, compress_level: int = 6) -> tuple[bytes, str]:
    """A segmentation as a file other tools open: the pixel values are exactly the labels.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) non-negative integer array, values 0..65535

    Returns
    -------
    (bytes, extension)
        ``".png"`` (8-bit greyscale) for a single frame with labels <= 255, otherwise ``".tif"``:
        an ImageJ-compatible TIFF, 8-bit (labels <= 255) or 16-bit, one page per frame.
    """
    labels, size = check_labels(labels)
    if labels.ndim == 3 and labels.shape[0] == 1:
        labels = labels[0]
    if labels.ndim not in (2, 3):
        raise ImageError(f"labels must be (H, W) or (T, H, W), got shape {labels.shape}")
    small = int(labels.max()) <= 255
    data = labels.astype(np.uint8 if small else np.uint16, copy=False)
    if labels.ndim == 2 and small:
        return encode_png(data, compress_level=compress_level), ".png"
    axes = "YX" if data.ndim == 2 else "TYX"
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.ascontiguousarray(data), imagej=True, metadata={"axes": axes})
    return buffer.getvalue(), ".tif"


def probabilities_tiff(proba: np.ndarray, *, class_names: Sequence[str] | None = None) -> bytes:
    """Class probabilities as a float32 ImageJ hyperstack TIFF with the class axis first.

    Parameters
    ----------
    proba : (H, W, K) or (T, H, W, K) array of numbers
        uint8 (0..255 standing for 0..1, as :func:`seg.tiling.quantize_probabilities` gives
        them) is written as uint8, a quarter of the bytes; anything else as float32.
    class_names : sequence of K str, optional
        Stored as ImageJ slice labels.

    Returns
    -------
    bytes
        A TIFF holding ``(K, H, W)`` (axes "CYX") or ``(T, K, H, W)`` (axes "TCYX") float32 or uint8.
    """
    proba = np.asarray(proba)
    if proba.ndim not in (3, 4) or proba.dtype.kind not in "biuf" or proba.size == 0:
        raise ImageError(
            f"probabilities must be (H, W, K) or (T, H, W, K) numbers, got shape {proba.shape} dtype {proba.dtype}"
        )
    n_classes = proba.shape[-1]
    dtype = np.uint8 if proba.dtype == np.uint8 else np.float32
    data = np.ascontiguousarray(np.moveaxis(proba, -1, -3), dtype=dtype)
    metadata: dict[str, object] = {"axes": "CYX" if data.ndim == 3 else "TCYX"}
    if class_names is not None:
        names = [str(name) for name in class_names]
        if len(names) != n_classes:
            raise SettingsError(f"{len(names)} class names given for {n_classes} probability channels")
        frames = data.shape[0] if data.ndim == 4 else 1
        metadata["Labels"] = names * frames  # ImageJ wants one label per page, pages in T, C order
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, imagej=True, metadata=metadata)
    return buffer.getvalue()
