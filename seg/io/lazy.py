"""Open an OME-Zarr image or a big (tiled, compressed) TIFF lazily, as a ``dask.array``.

Nothing is decoded here: :func:`open_lazy_image` reads and validates the metadata, then wraps the
pixels in a ``(T, H, W, C)`` dask array whose blocks are the store's chunks, read when a block is
computed, on whichever thread, process or cluster worker computes it. Frames are the image's
``t`` and ``z`` axes (outer first, as :func:`seg.images.read_image` does for TIFF stacks); ``c`` is
the channel axis. The physical pixel size of the chosen resolution level is kept
(:attr:`LazyImage.scale`; for an OME-TIFF from its ``PhysicalSizeY/X``) so that label images
and areas carry the image's units.

Limits checked before any pixel is read: ``T * H * W <= max_pixels``; the dtype is one seg
predicts on (uint8, uint16, float32); one stored chunk decodes to at most
:data:`MAX_CHUNK_BYTES` (a chunk is the unit a reader must hold in memory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seg.errors import ImageTooLargeError, OmeZarrError
from seg.io.ngff import Axis, Multiscale, ome_attributes, parse_multiscale
from seg.io.stores import group_attributes, is_zarr_location, open_store, read_metadata

__all__ = ["MAX_CHUNK_BYTES", "LazyImage", "open_lazy_image"]

MAX_CHUNK_BYTES = 256 << 20
_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_TIFF_FRAME_AXES = {"T": "t", "Z": "z", "I": "z", "Q": "z"}
_TIFF_CHANNEL_AXES = "CS"


@dataclass(frozen=True)
class LazyImage:
    """A lazily read image and what seg needs to know to write results beside it.

    Attributes
    ----------
    data : dask.array.Array
        ``(T, H, W, C)``, uint8/uint16/float32, chunked like the store (frames one by one).
    axes : tuple of Axis
        The image's own axes in its order, e.g. ``(c, y, x)``.
    shape : tuple of int
        The image's own shape along ``axes``.
    scale : tuple of float
        Physical pixel size along each of ``axes`` at the level read (1.0 where unknown).
    version : {"0.4", "0.5"} or None
        The OME-Zarr version of the source; None for a TIFF.
    level : int
        The resolution level read (0 = full resolution).
    levels : int
        How many levels the source has.
    """

    data: Any
    axes: tuple[Axis, ...]
    shape: tuple[int, ...]
    scale: tuple[float, ...]
    version: str | None
    level: int
    levels: int

    @property
    def label_axes(self) -> tuple[Axis, ...]:
        """Axes of a label image of this image: its own, without ``c``."""
        return tuple(axis for axis in self.axes if axis.name != "c")

    @property
    def label_shape(self) -> tuple[int, ...]:
        return tuple(n for n, axis in zip(self.shape, self.axes) if axis.name != "c")

    @property
    def label_scale(self) -> tuple[float, ...]:
        return tuple(s for s, axis in zip(self.scale, self.axes) if axis.name != "c")

    @property
    def pixel_area(self) -> tuple[float, str | None]:
        """Physical area of one pixel (``y`` scale times ``x`` scale) and its unit, e.g.
        ``(0.0625, "micrometer")`` (unit squared); the unit is None when the store gives none."""
        names = [axis.name for axis in self.axes]
        y, x = names.index("y"), names.index("x")
        unit = self.axes[x].unit if self.axes[x].unit == self.axes[y].unit else None
        return self.scale[y] * self.scale[x], unit


def _check_array(
    shape: tuple[int, ...], chunks: tuple[int, ...], dtype: np.dtype, axes: tuple[Axis, ...], max_pixels: int, what: str
) -> None:
    if len(shape) != len(axes):
        raise OmeZarrError(
            f"{what} has {len(shape)} dimensions but its metadata names "
            f"{len(axes)} axes ({''.join(a.name for a in axes)}); the store is damaged"
        )
    if dtype not in _DTYPES:
        raise OmeZarrError(
            f"{what} holds {dtype} pixels; seg predicts on uint8, uint16 or float32: convert the "
            "image (e.g. with ome-zarr-py or bioformats2raw) or read a smaller copy into the app"
        )
    if min(shape) < 1:
        raise OmeZarrError(f"{what} has an empty axis (shape {shape})")
    pixels = int(np.prod([n for n, a in zip(shape, axes) if a.name != "c"], dtype=np.float64))
    if pixels > max_pixels:
        size = " × ".join(str(n) for n in shape)
        raise ImageTooLargeError(
            f"{what} is {size} = {pixels:,} pixels, above the limit of {max_pixels:,}: raise "
            "the limit (--max-pixels) or read a lower resolution level (--level)",
            limit="max_pixels",
            size=size,
        )
    chunk_bytes = int(np.prod(chunks, dtype=np.float64)) * dtype.itemsize
    if chunk_bytes > MAX_CHUNK_BYTES:
        raise OmeZarrError(
            f"{what} is stored in chunks of {chunks} ({chunk_bytes:,} bytes each), above the "
            f"limit of {MAX_CHUNK_BYTES:,} bytes per chunk: rechunk the store (e.g. 1024 × 1024)"
        )


def _as_frames(data: Any, axes: tuple[Axis, ...]) -> Any:
    """``(T, H, W, C)`` view of an array along ``axes`` (frames = t then z; C = c or 1)."""
    names = [axis.name for axis in axes]
    frame_axes = [names.index(n) for n in "tz" if n in names]
    order = [*frame_axes, names.index("y"), names.index("x")]
    if "c" in names:
        order.append(names.index("c"))
    data = data.transpose(order)
    if "c" not in names:
        data = data[..., np.newaxis]
    # one frame per block, all channels in one block: the reshape then stays block-local
    data = data.rechunk({**{i: 1 for i in range(len(frame_axes))}, data.ndim - 1: -1})
    frames = int(np.prod(data.shape[: len(frame_axes)], dtype=np.int64))
    return data.reshape((frames, *data.shape[len(frame_axes) :]))


def _level(level: int, levels: int, what: str) -> int:
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 0 <= level < levels:
        raise OmeZarrError(
            f"resolution level {level!r} of {what} does not exist: it has levels "
            f"0 to {levels - 1} (0 is full resolution)"
        )
    return int(level)


def _open_ome_zarr(location: str | os.PathLike, level: int, max_pixels: int) -> LazyImage:
    import dask.array as da
    import zarr

    store = open_store(location)
    zarr_format, attributes = group_attributes(store)
    version, _ = ome_attributes(attributes)
    declared = "ome" in attributes or "multiscales" in attributes
    if declared and (version == "0.5") != (zarr_format == 3):
        raise OmeZarrError(
            f"OME-Zarr {version} metadata in a Zarr v{zarr_format} store: 0.4 uses "
            "Zarr v2, 0.5 uses Zarr v3; the store is damaged"
        )
    multiscale: Multiscale = parse_multiscale(attributes)
    level = _level(level, len(multiscale.paths), "the OME-Zarr image")
    path = multiscale.paths[level]
    key = f"{path}/zarr.json" if zarr_format == 3 else f"{path}/.zarray"
    if read_metadata(store, key) is None:  # also bounds the size zarr will read next
        raise OmeZarrError(
            f"the OME-Zarr image lists dataset {path!r} but the store has no array there; the store is incomplete"
        )
    try:
        array = zarr.open_array(store, path=path, mode="r", zarr_format=3 if zarr_format == 3 else 2)
    except Exception as exc:  # noqa: BLE001 - untrusted array metadata; zarr raises many kinds
        raise OmeZarrError(f"cannot open dataset {path!r} of the OME-Zarr image: {type(exc).__name__}: {exc}") from None
    what = f"level {level} ({path!r}) of the OME-Zarr image"
    _check_array(tuple(array.shape), tuple(array.chunks), np.dtype(array.dtype), multiscale.axes, max_pixels, what)
    data = da.from_zarr(array)
    return LazyImage(
        data=_as_frames(data, multiscale.axes),
        axes=multiscale.axes,
        shape=tuple(int(n) for n in array.shape),
        scale=multiscale.scales[level],
        version=multiscale.version,
        level=level,
        levels=len(multiscale.paths),
    )


def _tiff_axes(axes: str) -> tuple[Axis, ...]:
    """seg axes of a tifffile series: frame axes -> t / z, a channel axis -> c, then y, x."""
    mapped = []
    for letter in axes:
        if letter in _TIFF_FRAME_AXES:
            mapped.append(_TIFF_FRAME_AXES[letter])
        elif letter in _TIFF_CHANNEL_AXES:
            mapped.append("c")
        elif letter in "YX":
            mapped.append(letter.lower())
        else:
            mapped.append("?")
    names = "".join(mapped)
    if len(set(names)) != len(names) or "?" in names or not names.replace("c", "").endswith("yx"):
        raise OmeZarrError(
            f"a TIFF with axes {axes!r} cannot be read lazily (seg reads frames T/Z, one channel "
            "axis C/S, then Y, X): convert it to OME-Zarr, or apply without --out *.zarr"
        )
    return tuple(Axis(name) for name in names)


def _open_tiff(path: Path, level: int, max_pixels: int) -> LazyImage:
    import dask.array as da
    import tifffile
    import zarr

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, levels = series.axes, len(series.levels)
            level = _level(level, levels, f"TIFF {path.name!r}")
            photometric = series.keyframe.photometric
            store = series.aszarr(level=level)
            physical = _ome_tiff_pixel_size(tif)
        array = zarr.open_array(store, mode="r")
    except OmeZarrError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted file; tifffile raises many kinds
        raise OmeZarrError(f"cannot read TIFF {path.name!r} lazily: {type(exc).__name__}: {exc}") from None
    if photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
        raise OmeZarrError(
            f"TIFF {path.name!r} is {photometric.name} (palette, inverted or "
            "other); seg reads grey or RGB TIFFs lazily: apply without --out *.zarr"
        )
    seg_axes = _tiff_axes(axes)
    what = f"TIFF {path.name!r}"
    _check_array(tuple(array.shape), tuple(array.chunks), np.dtype(array.dtype), seg_axes, max_pixels, what)
    data = da.from_zarr(array)
    scale = [1.0] * len(seg_axes)
    if physical is not None:  # level 0's pixel size; level k is 2**k coarser in y and x
        (size_y, size_x), unit = physical
        names = [axis.name for axis in seg_axes]
        scale[names.index("y")], scale[names.index("x")] = size_y * 2**level, size_x * 2**level
        seg_axes = tuple(Axis(a.name, unit if a.name in "yx" else a.unit) for a in seg_axes)
    return LazyImage(
        data=_as_frames(data, seg_axes),
        axes=seg_axes,
        shape=tuple(int(n) for n in array.shape),
        scale=tuple(scale),
        version=None,
        level=level,
        levels=levels,
    )


_OME_UNITS = {
    "µm": "micrometer",
    "um": "micrometer",
    "nm": "nanometer",
    "mm": "millimeter",
    "m": "meter",
    "Å": "angstrom",
}
_MAX_OME_XML = 1 << 20


def _ome_tiff_pixel_size(tif: Any) -> tuple[tuple[float, float], str | None] | None:
    """``((y, x), unit)`` from an OME-TIFF's first image (PhysicalSizeY/X), or None.

    Untrusted XML: only read when under 1 MiB; anything missing, non-numeric or not > 0 means
    "unknown" (None), never an error: the pixel size only labels the areas.
    """
    import math

    import tifffile

    try:
        text = tif.ome_metadata if tif.is_ome else None
        if not text or len(text) > _MAX_OME_XML:
            return None
        image = tifffile.xml2dict(text)["OME"]["Image"]
        pixels = (image[0] if isinstance(image, list) else image)["Pixels"]
        size_y, size_x = float(pixels["PhysicalSizeY"]), float(pixels["PhysicalSizeX"])
        units = {pixels.get("PhysicalSizeYUnit", "µm"), pixels.get("PhysicalSizeXUnit", "µm")}
    except Exception:  # noqa: BLE001 - absent or malformed metadata: the size is unknown
        return None
    if not all(math.isfinite(v) and v > 0 for v in (size_y, size_x)):
        return None
    unit = _OME_UNITS.get(units.pop()) if len(units) == 1 else None
    return (size_y, size_x), unit


def open_lazy_image(location: str | os.PathLike, *, level: int = 0, max_pixels: int = 1_000_000_000) -> LazyImage:
    """Open an OME-Zarr image (folder, ``.zip`` or URL) or a TIFF lazily.

    Parameters
    ----------
    location : str or path
        An OME-Zarr image group (0.4 or 0.5), a zipped store, an fsspec URL, or a TIFF /
        OME-TIFF file (tiled and compressed ones are read chunk by chunk through tifffile's
        Zarr store).
    level : int
        Resolution level (0 = full resolution, 1 = the next smaller, ...).
    max_pixels : int
        Refuse images with more than this many pixels (frames x height x width).

    Returns
    -------
    LazyImage

    Raises
    ------
    OmeZarrError
        Malformed or unsupported metadata, a missing level, an unsupported dtype or axes, an
        oversized chunk, an unsafe zip.
    ImageTooLargeError
        More than ``max_pixels`` pixels.
    """
    text = os.fspath(location)
    path = Path(text)
    if "://" not in text and path.suffix.lower() in (".tif", ".tiff") and path.is_file():
        return _open_tiff(path, level, max_pixels)
    if not is_zarr_location(text) and not (path.is_file() and path.suffix.lower() == ".zip"):
        raise OmeZarrError(
            f"{path.name!r} is neither an OME-Zarr store nor a TIFF: give an "
            "image.ome.zarr folder, a zipped store or a .tif file"
        )
    return _open_ome_zarr(text, level, max_pixels)
