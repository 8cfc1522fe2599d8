"""Zipped OME-Zarr stores: pack a store for download; check an uploaded one before reading it.

A zipped store holds the store's files at the top of the archive (``zarr.json`` or ``.zattrs``
first level, no enclosing folder), stored uncompressed: the chunks are compressed already, and
readers (zarr's ``ZipStore``, napari via ome-zarr-py) then read a chunk without inflating.

:func:`check_zip_store` treats an uploaded zip as hostile before zarr sees it: only plain relative
member names (no absolute paths, ``..``, backslashes or NUL), no duplicates, no encryption, only
stored or deflated members, bounded member count, member size, total size and compression ratio
(the ratio limit is the one model bundles use, :data:`seg.persist.MAX_COMPRESSION_RATIO`).
Every refusal is an :class:`seg.errors.OmeZarrError`.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from pathlib import Path

from seg.errors import OmeZarrError
from seg.io.lazy import MAX_CHUNK_BYTES
from seg.persist import MAX_COMPRESSION_RATIO, RATIO_CHECK_MIN_BYTES
from seg.persist.archive import ZIP_TAIL_BYTES, zip_directory_extent

__all__ = ["MAX_ZIP_MEMBERS", "MAX_ZIP_BYTES", "check_zip_store", "zip_store"]

# zipfile parses every directory entry in Python (~4.6 CPU s per million at load 14): the count
# is read from the end records first, and bounded to what parses in about 2 s.
MAX_ZIP_MEMBERS = 400_000
MAX_ZIP_BYTES = 64 << 30  # declared, unpacked: members are read one chunk at a time, never all
_ROOT_FILES = ("zarr.json", ".zattrs", ".zgroup")
_MAX_DIRECTORY_ENTRY_BYTES = 512  # a directory entry: 46 bytes + name + extra fields


def _bad_name(name: str) -> bool:
    parts = name.split("/")
    return (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts[:-1])
        or parts[-1] in (".", "..")
    )


def _check_directory_extent(path: str | os.PathLike, name: str) -> None:
    """Refuse too many members from the end records, before zipfile parses every entry."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - ZIP_TAIL_BYTES, 0))
            entries, nbytes = zip_directory_extent(handle.read())
    except (OSError, ValueError):
        return  # not a zip or unreadable: zipfile below names the problem
    if entries > MAX_ZIP_MEMBERS or nbytes > MAX_ZIP_MEMBERS * _MAX_DIRECTORY_ENTRY_BYTES:
        raise OmeZarrError(
            f"{name!r} lists {entries:,} members in {nbytes:,} bytes of zip directory, above "
            f"the limit of {MAX_ZIP_MEMBERS:,} members; rechunk the store into fewer, larger "
            "chunks"
        )


def check_zip_store(path: str | os.PathLike) -> None:
    """Refuse a zip that is not a safe zipped OME-Zarr store (see the module notes).

    Raises
    ------
    OmeZarrError
        Not a zip, unsafe or oversized members, or no Zarr metadata at the top of the archive.
    """
    name = Path(path).name
    _check_directory_extent(path, name)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise OmeZarrError(
            f"{name!r} is not a readable zip archive ({type(exc).__name__}); zip the OME-Zarr store again"
        ) from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise OmeZarrError(
            f"{name!r} has {len(infos):,} members, above the limit of "
            f"{MAX_ZIP_MEMBERS:,}; rechunk the store into fewer, larger chunks"
        )
    total = 0
    for info in infos:
        for member in {info.filename, info.orig_filename}:
            if _bad_name(member):
                raise OmeZarrError(
                    f"{name!r} has a member named {member[:80]!r}; a zipped store "
                    "holds only plain relative names (no /, .. or \\ at the start)"
                )
        if info.flag_bits & 0x1:
            raise OmeZarrError(f"member {info.filename!r} of {name!r} is encrypted; zip the store without a password")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise OmeZarrError(
                f"member {info.filename!r} of {name!r} uses zip compression method "
                f"{info.compress_type}; use stored (zip -0) or deflated members"
            )
        if info.file_size > MAX_CHUNK_BYTES + (1 << 20):
            raise OmeZarrError(
                f"member {info.filename!r} of {name!r} declares "
                f"{info.file_size:,} bytes, more than any chunk seg reads "
                f"({MAX_CHUNK_BYTES:,}); rechunk the store"
            )
        if info.file_size > RATIO_CHECK_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            raise OmeZarrError(
                f"member {info.filename!r} of {name!r} claims a compression ratio "
                f"above {MAX_COMPRESSION_RATIO}:1; this looks like a zip bomb"
            )
        total += info.file_size
    if total > MAX_ZIP_BYTES:
        raise OmeZarrError(f"{name!r} would unpack to {total:,} bytes, above the limit of {MAX_ZIP_BYTES:,}")
    names = [info.filename for info in infos]
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise OmeZarrError(f"{name!r} holds member {duplicates[0]!r} twice; it was altered")
    if not any(root in names for root in _ROOT_FILES):
        tops = sorted({n.split("/", 1)[0] for n in names if "/" in n})[:3]
        hint = (
            (
                f" (it holds the folder {tops[0]!r}: zip that folder's contents instead, e.g. "
                f"'cd {tops[0]} && zip -r -0 ../image.ome.zarr.zip .')"
            )
            if tops
            else ""
        )
        raise OmeZarrError(
            f"{name!r} has no zarr.json or .zattrs at its top, so it is not a zipped OME-Zarr store{hint}"
        )


def zip_store(store: str | os.PathLike, target: str | os.PathLike | None = None) -> bytes | None:
    """Zip a store folder: its files at the top of the archive, stored (not recompressed).

    Parameters
    ----------
    store : path
        The ``.zarr`` folder.
    target : path, optional
        Write the zip there (via a temporary file and a rename); default: return the bytes.

    Returns
    -------
    bytes or None
        The archive when ``target`` is None.
    """
    import io

    from seg.files import atomic_write

    root = Path(store)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for file_name in sorted(files):
                path = Path(folder) / file_name
                archive.write(path, path.relative_to(root).as_posix())
    if target is None:
        return buffer.getvalue()
    atomic_write(target, buffer.getvalue())
    return None
