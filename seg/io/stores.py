"""Where an OME-Zarr store lives: a folder, a zipped store, or a URL; bounded metadata reads.

:func:`open_store` turns a location into a read-only ``zarr`` store: a local folder
(``LocalStore``), a local ``.zip`` (``ZipStore``, after :func:`seg.io.zipped.check_zip_store`
refused unsafe members), or an fsspec URL such as ``s3://bucket/image.ome.zarr`` (``FsspecStore``;
needs the matching fsspec backend, e.g. ``s3fs``; documented, not tested here).
:func:`read_metadata` reads one JSON document of a store, never more than
:data:`seg.io.ngff.MAX_METADATA_BYTES` + 1 bytes, so a hostile store cannot make us read a
gigabyte of "metadata". zarr's store API is asynchronous; its own ``sync`` helper runs it here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from seg.errors import OmeZarrError
from seg.io.ngff import MAX_METADATA_BYTES, parse_json

__all__ = ["is_zarr_location", "open_store", "read_metadata", "group_attributes", "zarr_format"]


def is_zarr_location(location: str | os.PathLike) -> bool:
    """Whether ``location`` names a Zarr store: a URL, a ``.zarr`` / ``.zarr.zip`` path, or a
    folder holding ``zarr.json`` or ``.zattrs`` / ``.zgroup``."""
    text = os.fspath(location)
    if "://" in text:
        return True
    lower = text.lower().rstrip("/\\")
    if lower.endswith((".zarr", ".zarr.zip")):
        return True
    path = Path(text)
    return path.is_dir() and any((path / name).is_file() for name in ("zarr.json", ".zattrs", ".zgroup"))


def open_store(location: str | os.PathLike) -> Any:
    """A read-only zarr store for a folder, a zipped store (``.zip``) or an fsspec URL.

    Raises
    ------
    OmeZarrError
        The location does not exist, or a zip is unsafe (see :mod:`seg.io.zipped`).
    """
    import zarr.storage
    from zarr.core.sync import sync

    text = os.fspath(location)
    if "://" in text:
        return zarr.storage.FsspecStore.from_url(text, read_only=True)
    path = Path(text)
    if path.is_dir():
        return zarr.storage.LocalStore(path, read_only=True)
    if path.is_file() and path.suffix.lower() == ".zip":
        from seg.io.zipped import check_zip_store

        check_zip_store(path)
        return sync(zarr.storage.ZipStore.open(path, mode="r"))
    raise OmeZarrError(
        f"OME-Zarr store {path.name!r} does not exist or is neither a folder nor a .zip: give the "
        "store's folder (e.g. image.ome.zarr) or a zipped store"
    )


def read_metadata(store: Any, key: str) -> dict[str, Any] | None:
    """The JSON object stored under ``key`` (e.g. ``"0/zarr.json"``), or None if absent."""
    from zarr.abc.store import RangeByteRequest
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    try:
        buffer = sync(
            store.get(key, prototype=default_buffer_prototype(), byte_range=RangeByteRequest(0, MAX_METADATA_BYTES + 1))
        )
    except (OSError, ValueError) as exc:
        raise OmeZarrError(f"cannot read {key!r} of the OME-Zarr store: {exc}") from None
    if buffer is None:
        return None
    return parse_json(buffer.to_bytes(), repr(key))


def zarr_format(store: Any, prefix: str = "") -> int | None:
    """2 or 3 for the group or array at ``prefix`` (by its metadata files), None if neither."""
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    document = read_metadata(store, f"{base}zarr.json")
    if document is not None:
        if document.get("zarr_format") != 3:
            raise OmeZarrError(
                f"{base}zarr.json says zarr_format {document.get('zarr_format')!r}, not 3; the store is damaged"
            )
        return 3
    if read_metadata(store, f"{base}.zgroup") is not None or read_metadata(store, f"{base}.zarray") is not None:
        return 2
    return None


def group_attributes(store: Any) -> tuple[int, dict[str, Any]]:
    """``(zarr format, attributes)`` of the store's root group.

    Raises
    ------
    OmeZarrError
        The store has no root group metadata (not a Zarr store).
    """
    document = read_metadata(store, "zarr.json")
    if document is not None:
        if document.get("zarr_format") != 3 or document.get("node_type") != "group":
            raise OmeZarrError(
                "the store's zarr.json does not describe a Zarr v3 group; give the image's group, not one of its arrays"
            )
        attributes = document.get("attributes", {})
        if not isinstance(attributes, dict):
            raise OmeZarrError("the store's zarr.json 'attributes' is not an object; the store is damaged")
        return 3, attributes
    attributes = read_metadata(store, ".zattrs")
    if attributes is None and read_metadata(store, ".zgroup") is None:
        raise OmeZarrError(
            "this is not a Zarr store (no zarr.json, .zgroup or .zattrs at its top): give the "
            "OME-Zarr image's folder, e.g. image.ome.zarr"
        )
    return 2, attributes or {}
