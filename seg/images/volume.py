"""3-D volumes: :class:`Volume` (voxels, voxel size, unit, affine) and :func:`read_volume`.

A volume is ``(Z, Y, X, C)`` (uint8, uint16 or finite float32) with its voxel size
``spacing = (dz, dy, dx)`` in ``unit``. Sources:

* TIFF (multi-page, ImageJ hyperstack, OME): the first series' axes say whether the stack is a
  volume (Z) or a time series (T); voxel size from ImageJ metadata (XResolution/YResolution in
  pixels per unit, ``spacing`` for z, ``unit``) or OME ``PhysicalSize{X,Y,Z}`` with their
  units. Pixels are decoded by :func:`seg.images.tiff.read_tiff`, with its header-first limits.
* NIfTI (``.nii``, ``.nii.gz``): :mod:`seg.images.nifti`, which keeps the affine.

A stack without Z/T metadata (plain multi-page TIFF) is read as a volume: the caller asked for
one. The app asks the person, the command line has ``--stack``; :func:`stack_kind` tells which
question to ask. A file whose metadata says time series is refused unless ``stack="volume"``.
A time series of volumes (both T and Z) is refused: one time point per file.

Units are normalised to ``"nm"``, ``"µm"``, ``"mm"`` or ``"m"``; ``None`` means unknown (sizes
are then in voxel units). A zero, negative or non-finite voxel size is refused with
:class:`~seg.errors.VoxelSizeError`, wherever it comes from.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

import numpy as np

from seg.errors import ImageError, VoxelSizeError
from seg.images.frames import MAX_CHANNELS, supported_dtype
from seg.images.guards import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, Limits, decoding, positive_int
from seg.images.nifti import GZIP_MAGIC, is_nifti, nifti_bytes, read_nifti
from seg.images.read import open_source
from seg.images.tiff import read_tiff

__all__ = [
    "Volume",
    "read_volume",
    "as_volume",
    "check_spacing",
    "stack_kind",
    "volume_tiff_bytes",
    "volume_nifti_bytes",
    "UNITS",
    "STACK_KINDS",
]

UNITS: tuple[str, ...] = ("nm", "µm", "mm", "m")
"""Length units a volume's voxel size can carry (``None``: unknown, voxel units)."""

STACK_KINDS: tuple[str, ...] = ("auto", "volume", "time")

_UNIT_ALIASES = {
    "nm": "nm",
    "nanometer": "nm",
    "nanometers": "nm",
    "nanometre": "nm",
    "um": "µm",
    "µm": "µm",
    "μm": "µm",
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "micrometre": "µm",
    "\\u00b5m": "µm",
    "mm": "mm",
    "millimeter": "mm",
    "millimetre": "mm",
    "m": "m",
    "meter": "m",
    "metre": "m",
}
_METRES = {"nm": 1e-9, "µm": 1e-6, "mm": 1e-3, "m": 1.0}


@dataclass(frozen=True)
class Volume:
    """A 3-D image and its geometry.

    Attributes
    ----------
    data : (Z, Y, X, C) ndarray of uint8, uint16 or float32
    spacing : (dz, dy, dx) tuple of float
        Voxel size in ``unit`` (all 1.0 when the file says nothing).
    unit : str or None
        One of :data:`UNITS`, or None when unknown.
    affine : (4, 4) float64 ndarray or None
        A NIfTI input's voxel-to-world matrix (indices ``(x, y, z)``); None for other sources.
    axes : str
        The source's own axes, e.g. ``"ZYX"`` or ``"ZCYX"`` (TIFF), ``"XYZ"`` (NIfTI),
        ``"IYX"`` for a stack without metadata.
    """

    data: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    unit: str | None = None
    affine: np.ndarray | None = None
    axes: str = "ZYXC"

    def __post_init__(self) -> None:
        if not isinstance(self.data, np.ndarray) or self.data.ndim != 4:
            raise ImageError(f"Volume data must be a (Z, Y, X, C) array, got shape {np.shape(self.data)}")
        object.__setattr__(self, "spacing", check_spacing(self.spacing))
        if self.unit is not None and self.unit not in UNITS:
            raise VoxelSizeError(f"Volume unit must be one of {list(UNITS)} or None, got {self.unit!r}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(Z, Y, X)."""
        return tuple(int(n) for n in self.data.shape[:3])  # type: ignore[return-value]

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[3])

    @property
    def known_spacing(self) -> tuple[float, float, float] | None:
        """The voxel size, or None when nothing gave one (1 x 1 x 1 voxels of no unit)."""
        if self.unit is None and self.spacing == (1.0, 1.0, 1.0):
            return None
        return self.spacing

    @property
    def voxel_volume(self) -> float:
        """dz x dy x dx, in ``unit`` cubed (voxel units when the unit is unknown)."""
        return math.prod(self.spacing)

    def with_spacing(self, spacing: Sequence[float], unit: str | None = None) -> Volume:
        """The same voxels with another voxel size (e.g. typed in by the person); affine dropped
        unless the spacing is unchanged."""
        spacing = check_spacing(spacing)
        keep = spacing == self.spacing and unit == self.unit
        return replace(self, spacing=spacing, unit=unit, affine=self.affine if keep else None)

    def describe(self) -> str:
        """One line, e.g. ``"30 × 512 × 512 voxels, 1 channel, uint8, voxel 0.05 × 0.004 × 0.004 µm"``."""
        z, y, x = self.shape
        c = self.n_channels
        size = " × ".join(f"{s:g}" for s in self.spacing)
        return (
            f"{z} × {y} × {x} voxels (Z × Y × X), {c} channel{'s' * (c != 1)}, {self.data.dtype}, "
            f"voxel {size} {self.unit or 'voxel units'} (dz × dy × dx)"
        )


def check_spacing(spacing: Any, label: str = "the voxel size") -> tuple[float, float, float]:
    """Three positive finite numbers ``(dz, dy, dx)``, else :class:`~seg.errors.VoxelSizeError`."""
    values = None
    if isinstance(spacing, (Sequence, np.ndarray)) and not isinstance(spacing, (str, bytes)) and len(spacing) == 3:
        if all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in spacing):
            values = tuple(float(v) for v in spacing)
    if values is None or not all(math.isfinite(v) and v > 0 for v in values):
        raise VoxelSizeError(
            f"Cannot use {label} {spacing!r}: give three positive numbers (dz, dy, dx), e.g. "
            "(0.05, 0.004, 0.004) for 50 nm sections of 4 nm pixels."
        )
    return values  # type: ignore[return-value]


def unit_name(text: Any) -> str | None:
    """A unit as written in a file ("micron", "\\u00B5m", "um", "nm", ...) -> one of UNITS or None."""
    if not isinstance(text, str):
        return None
    name = _UNIT_ALIASES.get(text.strip().lower().replace("\\u00b5", "µ"))
    return name if name in UNITS else None


def convert_length(value: float, unit: str, to: str) -> float:
    """A length from one of :data:`UNITS` to another."""
    return value * _METRES[unit] / _METRES[to]


def as_volume(array: np.ndarray, spacing: Sequence[float] | None = None, unit: str | None = None) -> Volume:
    """Wrap a ``(Z, Y, X)`` or ``(Z, Y, X, C)`` array as a :class:`Volume`.

    The dtype rules are those of :func:`seg.images.as_frames`; spacing defaults to 1 voxel unit.
    """
    data = np.asarray(array)
    if data.ndim == 3:
        data = data[..., np.newaxis]
    if data.ndim != 4 or 0 in data.shape or data.shape[3] > MAX_CHANNELS:
        raise ImageError(
            f"A volume must be (Z, Y, X) or (Z, Y, X, C) with at most {MAX_CHANNELS} channels, got "
            f"shape {np.shape(array)}."
        )
    spacing = (1.0, 1.0, 1.0) if spacing is None else spacing
    return Volume(supported_dtype(data, "the volume"), spacing, unit)  # type: ignore[arg-type]  # Volume checks it


def read_volume(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    stack: str = "auto",
    spacing: Sequence[float] | None = None,
    unit: str | None = None,
    max_voxels: int = DEFAULT_MAX_PIXELS,
    max_slices: int = DEFAULT_MAX_FRAMES,
) -> Volume:
    """Read a 3-D volume from a TIFF stack or a NIfTI file.

    Parameters
    ----------
    source : path, bytes or binary file object
    stack : {"auto", "volume"}
        ``"auto"``: a stack whose metadata says time series (T) is refused; ``"volume"``: any
        single stack axis is taken as Z. (``"time"`` is for images: use :func:`read_image`.)
    spacing : (dz, dy, dx), optional
        Voxel size overriding the file's (e.g. a stack without metadata); with ``unit``.
    unit : str, optional
        Unit of ``spacing`` (one of :data:`UNITS`); ignored without ``spacing``.
    max_voxels, max_slices : int
        Limits checked on the declared size before decoding (as ``max_pixels``/``max_frames``
        of :func:`seg.images.read_image`).

    Returns
    -------
    Volume

    Raises
    ------
    ImageError
        Not a TIFF or NIfTI, a single 2-D image, a time series (without ``stack="volume"``),
        a time series of volumes, corrupt or truncated data.
    ImageTooLargeError
        Over the limits (seen in the header).
    VolumeHeaderError
        A NIfTI header that is broken or declares absurd dimensions.
    VoxelSizeError
        A zero, negative or non-finite voxel size in the file or in ``spacing``.
    """
    if stack not in ("auto", "volume"):
        raise ImageError(
            f"read_volume(stack={stack!r}): use 'auto' or 'volume'; a time series is read with seg.read_image (frames)."
        )
    override = None if spacing is None else check_spacing(spacing)
    if override is not None and unit is not None and unit not in UNITS:
        raise VoxelSizeError(f"unit must be one of {list(UNITS)} or None, got {unit!r}")
    limits = Limits(positive_int(max_voxels, "max_voxels"), positive_int(max_slices, "max_slices"))
    with open_source(source, limits) as (stream, label):
        head = stream.read(560)
        stream.seek(0)
        if head.startswith(GZIP_MAGIC) or is_nifti(head.ljust(352, b"\0")):
            found = read_nifti(stream, label, limits)
            volume = Volume(found.data, found.spacing, found.unit, found.affine, "XYZ")
        elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            volume = _read_tiff_volume(stream, label, limits, stack)
        else:
            raise ImageError(
                f"Cannot read {label} as a volume: it is neither a TIFF stack nor a NIfTI file "
                "(.nii, .nii.gz). Save the volume as a multi-page TIFF or NIfTI."
            )
    if override is not None:
        volume = volume.with_spacing(override, unit)
    return volume


def stack_kind(source: str | os.PathLike | bytes | BinaryIO) -> str:
    """What a file's metadata says it is, so a caller knows whether to ask.

    Returns
    -------
    str
        ``"volume"`` (Z axis or NIfTI), ``"time"`` (T axis only), ``"unknown"`` (a stack of
        pages without metadata: ask), ``"image"`` (one 2-D image) or ``"both"`` (T and Z).
    """
    limits = Limits(DEFAULT_MAX_PIXELS, DEFAULT_MAX_FRAMES)
    with open_source(source, limits) as (stream, label):
        head = stream.read(560)
        stream.seek(0)
        if head.startswith(GZIP_MAGIC) or is_nifti(head.ljust(352, b"\0")):
            return "volume"
        if head[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return "image"
        import tifffile

        with decoding(label, "TIFF"), tifffile.TiffFile(stream) as tif:
            try:
                tif.pages[limits.max_frames * 4]
                return "unknown"  # far too many pages to be anything: let the reader refuse it
            except IndexError:
                pass
            series = tif.series[0] if tif.series else None
            if series is None:
                return "image"
            return _kind_of_axes(series.axes, tuple(series.shape))


def _kind_of_axes(axes: str, shape: tuple[int, ...]) -> str:
    stacked = {a for a, n in zip(axes, shape) if a in "TZIQ" and n > 1}
    if not stacked:
        return "image"
    if stacked >= {"T", "Z"} or len(stacked) > 1:
        return "both"
    return {"Z": "volume", "T": "time"}.get(stacked.pop(), "unknown")


def _read_tiff_volume(stream: BinaryIO, label: str, limits: Limits, stack: str) -> Volume:
    frames = read_tiff(stream, label, limits)  # header-first limits, then decoded (N, H, W, C)
    stream.seek(0)
    import tifffile

    with decoding(label, "TIFF"), tifffile.TiffFile(stream) as tif:
        series = tif.series[0]
        axes, shape = series.axes, tuple(int(n) for n in series.shape)
        spacing, unit = _tiff_voxel_size(tif, label)
    kind = _kind_of_axes(axes, shape)
    if kind == "image":
        raise ImageError(
            f"Cannot read {label} as a volume: it holds a single 2-D image (axes {axes!r}). Open it "
            "as an image, or choose a multi-page TIFF or NIfTI volume."
        )
    if kind == "both":
        raise ImageError(
            f"Cannot read {label} as a volume: it has several stack axes (axes {axes!r}, shape "
            f"{shape}), e.g. a time series of volumes. Save one time point per file."
        )
    if kind == "time" and stack != "volume":
        raise ImageError(
            f"Cannot read {label} as a volume: its metadata says the {frames.shape[0]} pages are time "
            "points (T axis). If they are z slices, read it with stack='volume' (command line: "
            "--stack volume); otherwise segment it frame by frame as an image."
        )
    return Volume(frames, spacing, unit, None, axes)


def _tiff_voxel_size(tif: Any, label: str) -> tuple[tuple[float, float, float], str | None]:
    """(dz, dy, dx) and unit from OME or ImageJ metadata; (1, 1, 1), None when absent."""
    if tif.is_ome and tif.ome_metadata:
        found = _ome_voxel_size(tif.ome_metadata, label)
        if found is not None:
            return found
    if tif.is_imagej:
        metadata = tif.imagej_metadata or {}
        unit = unit_name(metadata.get("unit"))
        page = tif.pages.first
        sizes = []
        for tag in ("XResolution", "YResolution"):
            value = page.tags.get(tag)
            numerator, denominator = value.value if value is not None else (1, 1)
            sizes.append(denominator / numerator if numerator else 0.0)
        dx, dy = sizes
        dz = metadata.get("spacing", dx)
        spacing = check_spacing((dz, dy, dx), f"the voxel size in {label}'s ImageJ metadata")
        if unit is None and spacing == (1.0, 1.0, 1.0):
            return spacing, None
        return spacing, unit
    return (1.0, 1.0, 1.0), None


def _ome_voxel_size(xml: str, label: str) -> tuple[tuple[float, float, float], str | None] | None:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None or "PhysicalSizeX" not in pixels.attrib:
        return None
    values, units = [], []
    for axis in "ZYX":
        text = pixels.attrib.get(f"PhysicalSize{axis}")
        axis_unit = unit_name(pixels.attrib.get(f"PhysicalSize{axis}Unit", "µm")) or "µm"
        try:
            value = float(text) if text is not None else None
        except ValueError:
            value = float("nan")
        values.append(value)
        units.append(axis_unit)
    if values[0] is None:  # no z size: isotropic with x
        values[0], units[0] = values[2], units[2]
    unit = units[2]
    converted = [convert_length(v, u, unit) if v is not None and math.isfinite(v) else v for v, u in zip(values, units)]
    return check_spacing(tuple(converted), f"the voxel size in {label}'s OME metadata"), unit


def volume_tiff_bytes(array: np.ndarray, spacing: Sequence[float], unit: str | None) -> bytes:
    """A ``(Z, Y, X)`` or ``(Z, Y, X, C)`` array as an ImageJ multi-page TIFF with its voxel size.

    ImageJ/Fiji and :func:`read_volume` read the voxel size back (float32 resolution rationals:
    about 7 significant digits).
    """
    import tifffile

    dz, dy, dx = check_spacing(spacing)
    array = np.asarray(array)
    axes = "ZYX" if array.ndim == 3 else "ZYXC"
    if array.ndim == 4:  # ImageJ stores channels as pages: ZCYX
        array, axes = np.ascontiguousarray(np.moveaxis(array, 3, 1)), "ZCYX"
    if array.dtype not in (np.uint8, np.uint16, np.float32):
        array = array.astype(np.float32)
    buffer = io.BytesIO()
    metadata = {"axes": axes, "spacing": dz, "unit": {"µm": "micron"}.get(unit or "", unit or "pixel")}
    tifffile.imwrite(buffer, array, imagej=True, resolution=(1 / dx, 1 / dy), metadata=metadata)
    return buffer.getvalue()


def volume_nifti_bytes(array: np.ndarray, like: Volume, *, compress: bool = True) -> bytes:
    """A ``(Z, Y, X)`` array (e.g. a mask of ``like``) as NIfTI with ``like``'s affine and voxel size."""
    return nifti_bytes(array, affine=like.affine, spacing=like.spacing, unit=like.unit, compress=compress)
