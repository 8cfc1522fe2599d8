"""Decoding with Pillow: PNG, JPEG and BMP (and single-page TIFFs tifffile lacks a codec for).

Pillow's plugins are constructed directly, so its global ``MAX_IMAGE_PIXELS`` check never runs
and our size limits alone decide. Alpha is dropped and palettes are expanded (grey palettes to
grey, others to RGB).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

import numpy as np
from PIL import BmpImagePlugin, Image, ImageFile, JpegImagePlugin, PngImagePlugin

from seg.errors import ImageError
from seg.images.guards import Limits, check_extent, decoding

_PIL_OPENERS: dict[str, Callable[[BinaryIO], ImageFile.ImageFile]] = {
    "PNG": PngImagePlugin.PngImageFile,
    # The JPEG class itself, not Pillow's factory: a multi-picture (MPO) camera file is then read
    # as its primary image instead of being refused as animated.
    "JPEG": JpegImagePlugin.JpegImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
}
# Pillow modes read as they are, and the mode every other accepted mode is converted to.
_PIL_KEEP = {"L", "RGB", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
_PIL_CONVERT = {
    "1": "L",
    "LA": "L",
    "La": "L",
    "RGBA": "RGB",
    "RGBa": "RGB",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "HSV": "RGB",
}


def read_pil(stream: BinaryIO, kind: str, label: str, limits: Limits) -> np.ndarray:
    """Decode with Pillow -> (H, W) or (H, W, C) array."""
    with decoding(label, kind):
        # Constructing the plugin directly skips Image.open's global MAX_IMAGE_PIXELS check
        # (warning above ~89 Mpx, error above ~179 Mpx) so that max_pixels alone decides.
        picture = _PIL_OPENERS[kind](stream)
    with picture:
        bands = len(picture.getbands())
        check_extent(label, 1, picture.height, picture.width, bands, 4, limits)
        frames = getattr(picture, "n_frames", 1)
        if frames > 1:
            raise ImageError(
                f"Cannot read {label}: it is an animated {kind} with {frames} frames, which is not "
                "supported. Save the frames as a multi-page TIFF instead."
            )
        with decoding(label, kind):
            # The full decode, where truncation raises (Pillow's LOAD_TRUNCATED_IMAGES stays off).
            picture.load()
            return pil_pixels(picture, label)


def pil_pixels(picture: Image.Image, label: str) -> np.ndarray:
    mode = picture.mode
    if mode in ("P", "PA"):
        target = "L" if _palette_is_grey(picture) else "RGB"
        picture = picture.convert("RGBA" if mode == "PA" else target)
        if mode == "PA":
            picture = picture.convert(target)
    elif mode in _PIL_CONVERT:
        picture = picture.convert(_PIL_CONVERT[mode])
    elif mode not in _PIL_KEEP:
        raise ImageError(
            f"Cannot read {label}: pixel mode {mode!r} is not supported. Export it as 8- or 16-bit greyscale or RGB."
        )
    return np.asarray(picture)


def _palette_is_grey(picture: Image.Image) -> bool:
    palette = picture.getpalette()
    if not palette:
        return True
    rgb = np.asarray(palette, dtype=np.int32)[: len(palette) // 3 * 3].reshape(-1, 3)
    return bool((rgb == rgb[:, :1]).all())
