"""Reading one batch input, lazily where that pays: big uncompressed TIFFs are memory-mapped.

A plain uncompressed TIFF above :data:`MEMMAP_ABOVE_BYTES` is opened as a read-only memmap, so
the tiles of a huge frame are read from disk as they are predicted; every other input goes
through :func:`seg.images.read_image`. :func:`peek_shape` reads (T, H, W) from a file's header
without decoding pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seg.errors import ImageError
from seg.files import display_name

# Uncompressed TIFFs bigger than this are memory-mapped, so tiles are read from disk lazily.
MEMMAP_ABOVE_BYTES: int = 256 << 20

_MAPPABLE_AXES: dict[str, tuple[int | None, int | None]] = {"YX": (None, None), "YXS": (None, -1)}
_MAPPABLE_AXES.update({f"{frame}YX": (0, None) for frame in "TZIQ"})
_MAPPABLE_AXES.update({f"{frame}YXS": (0, -1) for frame in "TZIQ"})


def open_lazily(path: Path, max_pixels: int) -> np.ndarray | None:
    """A read-only memmap of a big uncompressed TIFF as (T, H, W, C), or None to read normally.

    Only plain layouts are mapped (grey or RGB, one frame or a stack of frames, uint8/uint16/
    float32, native byte order, no palette or inverted grey); anything else, and every compressed
    TIFF, is left to :func:`seg.images.read_image`, which loads it into memory.
    """
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        if path.stat().st_size < MEMMAP_ABOVE_BYTES:
            return None
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, photometric = series.axes, series.keyframe.photometric
        plain = photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB)
        if axes not in _MAPPABLE_AXES or not plain:
            return None
        array: np.ndarray = tifffile.memmap(path, mode="r")
    except (OSError, ValueError, TypeError, IndexError, KeyError, AttributeError):
        # compressed, tiled or odd TIFF: tifffile cannot map it; read_image decides about it
        return None
    if array.dtype not in (np.uint8, np.uint16, np.float32) or not array.dtype.isnative:
        return None
    if array.ndim != len(axes) or (axes.endswith("S") and array.shape[-1] not in (1, 3)):
        return None
    frames_axis, channel_axis = _MAPPABLE_AXES[axes]
    if frames_axis is None:
        array = array[np.newaxis]
    if channel_axis is None:
        array = array[..., np.newaxis]
    n_frames, height, width = array.shape[:3]
    if n_frames * height * width > max_pixels:
        raise ImageError(
            f"image is {n_frames} x {height} x {width} = {n_frames * height * width:,} pixels, "
            f"above the limit of {max_pixels:,}: raise the limit (--max-pixels) if you have the "
            "memory"
        )
    return array


def read_input(source: Path | bytes, max_pixels: int) -> np.ndarray:
    from seg.images import read_image

    if isinstance(source, Path):
        lazy = open_lazily(source, max_pixels)
        if lazy is not None:
            return lazy
        if not source.is_file():
            raise ImageError(f"file {display_name(source)!r} no longer exists or is not a file")
        try:
            return read_image(source, max_pixels=max_pixels)
        except OSError as exc:
            raise ImageError(f"cannot read the file: {exc.strerror or exc}") from None
    return read_image(source, max_pixels=max_pixels)


def size_limit_hint(path: Path, max_pixels: int) -> str:
    """For an image refused as too large: how to raise the limit on the command line."""
    shape = peek_shape(path)
    if shape is None or shape[0] * shape[1] * shape[2] <= max_pixels:
        return ""
    return f" (command line: --max-pixels {shape[0] * shape[1] * shape[2]})"


def peek_shape(path: Path) -> tuple[int, int, int] | None:
    """(T, H, W) from the file header without decoding pixels, or None if unknown."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, axes = series.shape, series.axes
            frames = int(np.prod([n for n, axis in zip(shape, axes) if axis in "TZIQ"]))
            return frames, int(shape[axes.index("Y")]), int(shape[axes.index("X")])
        from PIL import Image

        with Image.open(path) as img:
            width, height = img.size
            frames = int(getattr(img, "n_frames", 1))
        return frames, int(height), int(width)
    except Exception:  # noqa: BLE001 - untrusted header; reading the image reports the real error
        return None
