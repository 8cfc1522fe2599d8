"""The bundle's ``arrays/<name>.npy`` members: header checked against the declaration, then read.

The ``.npy`` header is validated before any data is touched (dtype, byte order, shape, data
length), and arrays are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np

from seg.errors import ModelFileError
from seg.persist.archive import read_member
from seg.persist.schema import ALLOWED_DTYPES, MANIFEST_NAME


def read_array(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, dtype: np.dtype, shape: tuple[int, ...]
) -> np.ndarray:
    raw = read_member(archive, info)
    header_dtype, header_shape, data_offset = _npy_header(raw, name)
    if header_dtype != dtype or header_shape != shape:
        raise ModelFileError(
            f"Array {name!r} in the model bundle is {header_dtype} {header_shape}, but {MANIFEST_NAME} "
            f"declares {dtype} {shape}; the file was altered."
        )
    if len(raw) - data_offset != math.prod(shape) * dtype.itemsize:
        raise ModelFileError(
            f"Array {name!r} in the model bundle has {len(raw) - data_offset:,} data bytes "
            f"for shape {shape} {dtype}; the file is truncated or altered."
        )
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # untrusted decoding
        raise ModelFileError(f"Array {name!r} in the model bundle cannot be read ({exc}).") from exc
    return array.astype(dtype.newbyteorder("="), copy=False)


def _npy_header(raw: bytes, name: str) -> tuple[np.dtype, tuple, int]:
    """(dtype, shape, data offset) of a .npy file, validated before any data is touched.

    Checking the header first matters: ``np.load`` on a file-like object allocates the
    declared shape before reading, so a tiny file could otherwise request huge memory.
    """
    handle = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # untrusted decoding: literal_eval and header parsing errors
        raise ModelFileError(
            f"Array {name!r} in the model bundle is not a valid .npy file ({exc}); the file is damaged or altered."
        ) from exc
    if dtype.name not in ALLOWED_DTYPES or dtype.fields is not None or dtype.byteorder == ">":
        raise ModelFileError(
            f"Array {name!r} in the model bundle has dtype {dtype!s:.80}; bundles hold only "
            f"little-endian {', '.join(ALLOWED_DTYPES)}. The file is not from seg."
        )
    return dtype.newbyteorder("<"), tuple(shape), handle.tell()
