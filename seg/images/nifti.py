"""NIfTI-1 and NIfTI-2 volumes (``.nii``, ``.nii.gz``) read header first, written with their affine.

Reading is bounded for any input. The header (348 or 540 bytes, decompressed from a ``.nii.gz``
if need be) is parsed and checked first: dimensions, data type, voxel size and data offset must
be sane, and the declared size must pass the same limits as a 2-D image
(:func:`seg.images.guards.check_extent`). Only then are exactly ``vox_offset + voxels x itemsize``
bytes read (decompressed) -- never more, so a gzip bomb costs at most what its header declared,
and a short file is refused as truncated. nibabel then decodes those bytes (scaling by
``scl_slope``/``scl_inter``).

NIfTI arrays are indexed ``(i, j, k)`` = (x, y, z); the engine's volumes are ``(Z, Y, X, C)``.
:func:`read_nifti` transposes, and :func:`nifti_bytes` transposes back and writes the same
affine, so a mask written for a NIfTI input overlays it in any neuroimaging viewer.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from seg.errors import ImageError, VolumeHeaderError, VoxelSizeError
from seg.images.frames import supported_dtype
from seg.images.guards import Limits, check_extent, decoding

__all__ = ["NiftiVolume", "is_nifti", "read_nifti", "nifti_bytes", "GZIP_MAGIC"]

GZIP_MAGIC = b"\x1f\x8b"
_NIFTI1_SIZE, _NIFTI2_SIZE = 348, 540
_MAX_EXTENSIONS = 1 << 20  # bytes of header extensions accepted between header and data
# NIfTI xyzt_units spatial codes (nibabel's names) -> the engine's unit names
_UNITS = {"meter": "m", "mm": "mm", "micron": "µm"}
_UNIT_CODES = {"mm": "mm", "µm": "micron", "nm": "micron", "m": "meter"}


@dataclass(frozen=True)
class NiftiVolume:
    """What :func:`read_nifti` found: voxels in the engine's layout plus the file's geometry."""

    data: np.ndarray  # (Z, Y, X, 1) uint8, uint16 or float32
    spacing: tuple[float, float, float]  # (dz, dy, dx) from pixdim
    unit: str | None  # "mm", "µm", "m" or None (header says unknown)
    affine: np.ndarray  # (4, 4) float64: voxel (i, j, k) = (x, y, z) -> world


def is_nifti(head: bytes) -> bool:
    """Whether the first bytes (at least 352) of an uncompressed file are a single-file NIfTI."""
    return head[344:348] == b"n+1\x00" or head[4:8] == b"n+2\x00"


def read_nifti(stream: BinaryIO, label: str, limits: Limits) -> NiftiVolume:
    """Read a ``.nii`` or ``.nii.gz`` from ``stream``, header first, within ``limits``.

    Raises
    ------
    VolumeHeaderError
        Broken header: unknown size field or magic, dimensions out of range, more than three
        non-trivial axes, an unsupported data type, a data offset beyond the limit.
    VoxelSizeError
        pixdim gives a zero, negative or non-finite voxel size.
    ImageTooLargeError
        The declared size is over ``limits``.
    ImageError
        The data are truncated or corrupt.
    """
    head = stream.read(2)
    stream.seek(0)
    raw: gzip.GzipFile | BinaryIO = gzip.GzipFile(fileobj=stream, mode="rb") if head == GZIP_MAGIC else stream
    with decoding(label, "NIfTI (gzip)"):
        header_bytes = raw.read(_NIFTI2_SIZE)
    header = _parse_header(header_bytes, label)
    shape, dtype, offset = _checked_layout(header, label, limits)
    spacing = _spacing(header, label)
    needed = offset + math.prod(shape) * dtype.itemsize
    with decoding(label, "NIfTI"):
        rest = raw.read(needed - len(header_bytes)) if needed > len(header_bytes) else b""
    content = (header_bytes + rest)[:needed]
    if len(content) < needed:
        raise ImageError(
            f"Cannot read {label}: its NIfTI header declares {needed:,} bytes of header and "
            f"voxels but the file holds {len(content):,}; it is truncated. Save or copy it again."
        )
    with decoding(label, "NIfTI"):
        image = _image_class(header).from_bytes(content)
        voxels = np.asanyarray(image.dataobj)
        affine = np.array(image.affine, dtype=np.float64)
    if not np.isfinite(affine).all():
        raise VolumeHeaderError(
            f"Cannot read {label}: its NIfTI affine holds NaN or infinite values. Fix the "
            "header's qform/sform (e.g. with nibabel or fslorient) and try again."
        )
    voxels = voxels.reshape(shape[:3])
    if voxels.dtype.kind == "f" or voxels.dtype.kind == "i" and voxels.min(initial=0) < 0:
        voxels = voxels.astype(np.float32)
    data = supported_dtype(np.ascontiguousarray(voxels.transpose(2, 1, 0))[..., None], label)
    unit = _UNITS.get(header.get_xyzt_units()[0])
    return NiftiVolume(data=data, spacing=spacing, unit=unit, affine=affine)


def _parse_header(data: bytes, label: str):
    import nibabel

    if len(data) < _NIFTI1_SIZE:
        raise VolumeHeaderError(
            f"Cannot read {label}: {len(data)} bytes are too few for a NIfTI header "
            f"({_NIFTI1_SIZE} needed); the file is truncated or not NIfTI."
        )
    sizes = {struct.unpack("<i", data[:4])[0], struct.unpack(">i", data[:4])[0]}
    kind = nibabel.Nifti2Header if _NIFTI2_SIZE in sizes else nibabel.Nifti1Header
    if not sizes & {_NIFTI1_SIZE, _NIFTI2_SIZE} or not is_nifti(data.ljust(352, b"\0")):
        raise VolumeHeaderError(
            f"Cannot read {label}: it does not start with a single-file NIfTI-1 or NIfTI-2 header "
            "(size field and 'n+1'/'n+2' magic). Save the volume as .nii or .nii.gz (an "
            ".hdr/.img pair is not supported)."
        )
    endian = "<" if struct.unpack("<i", data[:4])[0] in (_NIFTI1_SIZE, _NIFTI2_SIZE) else ">"
    # nibabel guesses the byte order from dim[0]: check it first, with the order of sizeof_hdr
    ndim = struct.unpack_from(
        endian + ("q" if kind is nibabel.Nifti2Header else "h"), data, 16 if kind is nibabel.Nifti2Header else 40
    )[0]
    if not 1 <= ndim <= 7:
        raise VolumeHeaderError(
            f"Cannot read {label}: its NIfTI header declares {ndim} dimensions (dim[0] must be "
            "1..7). The header is corrupt; save the volume again with a NIfTI writer."
        )
    try:
        return kind.from_fileobj(io.BytesIO(data[: kind.sizeof_hdr]), endianness=endian, check=False)
    except Exception as exc:  # nibabel raises HeaderDataError, ValueError, ... on bad fields
        raise VolumeHeaderError(
            f"Cannot read {label}: its NIfTI header is broken ({type(exc).__name__}: "
            f"{str(exc)[:160]}). Save the volume again with a NIfTI writer."
        ) from exc


def _image_class(header):
    import nibabel

    return nibabel.Nifti2Image if isinstance(header, nibabel.Nifti2Header) else nibabel.Nifti1Image


def _checked_layout(header, label: str, limits: Limits) -> tuple[tuple[int, ...], np.dtype, int]:
    dim = [int(n) for n in header["dim"]]
    if not 1 <= dim[0] <= 7 or any(n < 1 for n in dim[1 : dim[0] + 1]):
        raise VolumeHeaderError(
            f"Cannot read {label}: its NIfTI header declares dimensions {dim[:8]}, which are not "
            "valid (dim[0] must be 1..7 and every used dim at least 1). The header is corrupt."
        )
    shape = tuple(dim[1 : dim[0] + 1]) + (1,) * max(0, 3 - dim[0])
    if any(n > 1 for n in shape[3:]):
        raise VolumeHeaderError(
            f"Cannot read {label}: it is a {dim[0]}-D NIfTI of shape {shape} (e.g. a time series "
            "of volumes); only 3-D volumes are supported. Split it into 3-D files (fslsplit)."
        )
    try:
        dtype = np.dtype(header.get_data_dtype())
    except Exception as exc:
        raise VolumeHeaderError(
            f"Cannot read {label}: its NIfTI data type code {int(header['datatype'])} is unknown."
        ) from exc
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise VolumeHeaderError(
            f"Cannot read {label}: NIfTI voxels of type {dtype} (complex or RGB) are not supported. "
            "Save real-valued 8/16-bit integer or float32 voxels."
        )
    raw_offset = float(header["vox_offset"])
    offset = int(raw_offset) if math.isfinite(raw_offset) else -1
    if not header.sizeof_hdr <= offset <= header.sizeof_hdr + 4 + _MAX_EXTENSIONS:
        raise VolumeHeaderError(
            f"Cannot read {label}: its NIfTI data offset {offset:,} is outside the "
            f"{header.sizeof_hdr}..{header.sizeof_hdr + 4 + _MAX_EXTENSIONS:,} bytes allowed for a "
            "single-file NIfTI. The header is corrupt."
        )
    x, y, z = shape[:3]
    check_extent(label, z, y, x, 1, dtype.itemsize, limits)
    return shape[:3], dtype, offset


def _spacing(header, label: str) -> tuple[float, float, float]:
    zooms = [float(v) for v in np.asarray(header["pixdim"], dtype=np.float64)[1:4]]
    if not all(math.isfinite(v) and v > 0 for v in zooms):
        raise VoxelSizeError(
            f"Cannot read {label}: its NIfTI voxel size (pixdim) is {zooms} (x, y, z); every size "
            "must be a positive number. Fix the header, or pass the voxel size with spacing=..."
        )
    dx, dy, dz = zooms
    return (dz, dy, dx)


def nifti_bytes(
    array: np.ndarray,
    *,
    affine: np.ndarray | None,
    spacing: tuple[float, float, float],
    unit: str | None,
    compress: bool,
) -> bytes:
    """Encode a ``(Z, Y, X)`` array as a NIfTI-1 file with the given affine.

    Parameters
    ----------
    array : (Z, Y, X) ndarray of uint8, uint16 or float32
    affine : (4, 4) ndarray or None
        The input's affine (kept exactly); None: a diagonal affine from ``spacing``.
    spacing : (dz, dy, dx)
        Written to pixdim.
    unit : str or None
        "mm", "µm" (or "nm", written in micrometres), "m"; None: unknown.
    compress : bool
        gzip the file (``.nii.gz``).

    Returns
    -------
    bytes
    """
    import nibabel

    dz, dy, dx = (float(s) for s in spacing)
    if unit == "nm":
        dz, dy, dx = dz / 1000, dy / 1000, dx / 1000
    voxels = np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0))
    if affine is None:
        image = nibabel.Nifti1Image(voxels, np.diag([dx, dy, dz, 1.0]))
    else:  # pixdim follows from the affine: the input's geometry is kept exactly
        image = nibabel.Nifti1Image(voxels, np.asarray(affine, dtype=np.float64))
    image.header.set_xyzt_units(xyz=_UNIT_CODES.get(unit or "", "unknown"))
    data = image.to_bytes()
    return gzip.compress(data, compresslevel=6, mtime=0) if compress else data
