"""OME-Zarr and lazily read TIFF: read images as ``dask.array``, write label images.

Modules, one concept each: :mod:`seg.io.ngff` (OME-Zarr metadata: strict parsing, building),
:mod:`seg.io.stores` (folders, zipped stores and URLs as zarr stores; bounded metadata reads),
:mod:`seg.io.lazy` (:func:`open_lazy_image`: an image as a ``(T, H, W, C)`` dask array),
:mod:`seg.io.labels_store` (:class:`LabelStoreWriter`: label pyramid + metadata, atomically) and
:mod:`seg.io.zipped` (zipping a store for download; checking an uploaded zipped store).
Every problem with a store is an :class:`seg.errors.OmeZarrError`.
"""

from __future__ import annotations

from seg.io.labels_store import LABEL_CHUNK, LABEL_NAME, LabelStoreWriter
from seg.io.lazy import LazyImage, open_lazy_image
from seg.io.ngff import Axis, Multiscale, parse_multiscale
from seg.io.stores import is_zarr_location, open_store
from seg.io.zipped import check_zip_store, zip_store

__all__ = [
    "Axis",
    "LABEL_CHUNK",
    "LABEL_NAME",
    "LabelStoreWriter",
    "LazyImage",
    "Multiscale",
    "check_zip_store",
    "is_zarr_location",
    "open_lazy_image",
    "open_store",
    "parse_multiscale",
    "zip_store",
]
