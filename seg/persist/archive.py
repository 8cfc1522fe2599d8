"""The untrusted ZIP container: sniffing, member checks and bounded reads.

Refuses empty files, pickles (also compressed ones) and non-ZIP content by their first bytes;
foreign, duplicate, encrypted or oddly compressed members; and sizes or compression ratios that
look like a zip bomb. Every member is inflated in memory, never more than its declared size + 1.

:func:`check_central_directory` reads the end-of-central-directory record (and the ZIP64 one)
*before* :mod:`zipfile` parses the directory: zipfile walks every directory entry in Python,
so a 200 MB directory of millions of empty entries would cost ~20 s and ~2 GB before the member
count could be checked.
"""

from __future__ import annotations

import bz2
import io
import lzma
import pickletools
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

from seg.errors import ModelFileError
from seg.persist.schema import (
    ARRAY_MEMBER_PATTERN,
    MANIFEST_NAME,
    MAX_CENTRAL_DIRECTORY_BYTES,
    MAX_COMPRESSION_RATIO,
    MAX_MANIFEST_BYTES,
    MAX_MEMBERS,
    RATIO_CHECK_MIN_BYTES,
    shorten_names,
)

PICKLE_MESSAGE = (
    "This file is a Python pickle (e.g. a .joblib export); pickles can run code, so the app "
    "never loads them. Train the model here or export it as a .segmodel bundle."
)

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def refuse_non_zip(data: bytes) -> None:
    """Refuse empty files, pickles and other non-ZIP content by their first bytes."""
    if not data:
        raise ModelFileError("The model file is empty (0 bytes). Choose a .segmodel file saved by seg.")
    if len(data) < 4:
        raise ModelFileError(
            f"The model file is only {len(data)} byte(s) long, too short to be a .segmodel bundle. "
            "Choose a .segmodel file saved by seg."
        )
    if data[:1] == b"\x80" or _is_text_pickle(data) or _is_compressed_pickle(data):
        raise ModelFileError(PICKLE_MESSAGE)
    if data[:4] not in _ZIP_MAGIC:
        raise ModelFileError(
            f"This file is not a .segmodel bundle: a bundle is a ZIP archive, but this file starts "
            f"with {data[:8]!r}. Choose a .segmodel file saved by seg."
        )


#: First opcodes of protocol 0 and 1 pickles (no b"\x80" header): MARK, EMPTY_DICT/LIST/TUPLE,
#: GLOBAL, NONE and the constants of a pickled scalar.
_TEXT_PICKLE_OPENERS = frozenset(b"(}])cNIJKMLFGSTUVX")


def _is_text_pickle(data: bytes) -> bool:
    """True if ``data`` reads as a protocol 0/1 pickle: it ends with STOP and its first opcodes
    disassemble (``pickletools.genops`` only decodes opcodes; nothing is run or imported)."""
    if data[0] not in _TEXT_PICKLE_OPENERS or data[-1:] != b".":
        return False
    count = 0
    try:
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(data[:4096])):
            count += 1
            if opcode.name == "STOP" or count == 8:
                return True
    except (ValueError, UnicodeDecodeError, IndexError):
        return False  # not opcodes: text that happens to start and end like a pickle
    return False


def _is_compressed_pickle(data: bytes) -> bool:
    """True if ``data`` is a zlib/gzip/bz2/xz/lzma stream whose first byte is a pickle marker.

    joblib compresses pickles with these codecs. Only two bytes are inflated, so a
    compressed bomb costs nothing here.
    """
    decoders: list[Callable[[], Any]] = []
    if data[0] == 0x78 and int.from_bytes(data[:2], "big") % 31 == 0:
        decoders.append(lambda: zlib.decompressobj(zlib.MAX_WBITS))
    if data[:2] == b"\x1f\x8b":
        decoders.append(lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))
    if data[:3] == b"BZh":
        decoders.append(bz2.BZ2Decompressor)
    if data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00":
        decoders.append(lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO))
    for make in decoders:
        try:
            head = make().decompress(data[:4096], max_length=2)
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
            continue
        if head[:1] == b"\x80":
            return True
    return False


# End-of-central-directory record: signature, disk, directory disk, entries on this disk,
# entries in total, directory size, directory offset, comment length (22 bytes + comment).
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
# ZIP64 locator (20 bytes, just before the EOCD record) and ZIP64 EOCD record (56 bytes, just
# before the locator, where zipfile looks for it): signature, record size, versions, disks,
# entries on this disk, entries in total, directory size, directory offset.
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
_MAX_COMMENT = 0xFFFF


#: Bytes at the end of a ZIP file that hold its end records: EOCD (22) + comment (<= 65 535) +
#: ZIP64 locator (20) + ZIP64 record (56). Reading this tail is enough for zip_directory_extent.
ZIP_TAIL_BYTES = _EOCD.size + _MAX_COMMENT + _ZIP64_LOCATOR.size + _ZIP64_EOCD.size


def zip_directory_extent(tail: bytes) -> tuple[int, int]:
    """(entries, directory bytes) a ZIP's end records declare, the largest of each.

    ``tail`` is the file's last :data:`ZIP_TAIL_BYTES` bytes (or all of it). The records are
    found as :mod:`zipfile` finds them (the end-of-central-directory record, searched through a
    trailing comment, and the ZIP64 record when a locator precedes it); zipfile then reads
    exactly the declared directory size and parses every entry in Python, so these two numbers
    bound its work before it starts.

    Raises
    ------
    ValueError
        There is no end-of-central-directory record: not a ZIP, or a truncated one.
    """
    end = len(tail) - _EOCD.size
    if end >= 0 and tail[end : end + 4] == _EOCD_SIGNATURE and tail[-2:] == b"\x00\x00":
        position = end
    else:
        position = tail.rfind(_EOCD_SIGNATURE, max(end - _MAX_COMMENT, 0))
    if position < 0 or position + _EOCD.size > len(tail):
        raise ValueError("no ZIP end-of-central-directory record")
    _, _, _, on_disk, entries, size, _, _ = _EOCD.unpack_from(tail, position)
    counts, sizes = [on_disk, entries], [size]
    locator = position - _ZIP64_LOCATOR.size
    if locator >= 0 and tail[locator : locator + 4] == _ZIP64_LOCATOR_SIGNATURE:
        record = locator - _ZIP64_EOCD.size
        if record >= 0 and tail[record : record + 4] == _ZIP64_EOCD_SIGNATURE:
            fields = _ZIP64_EOCD.unpack_from(tail, record)
            counts += [fields[6], fields[7]]
            sizes.append(fields[8])
    return max(counts), max(sizes)


def check_central_directory(data: bytes) -> None:
    """Refuse a central directory with too many entries or bytes before zipfile parses it.

    Checks what :func:`zip_directory_extent` reads against :data:`MAX_MEMBERS` and
    :data:`MAX_CENTRAL_DIRECTORY_BYTES`.
    """
    try:
        entries, nbytes = zip_directory_extent(data[-ZIP_TAIL_BYTES:])
    except ValueError:
        raise ModelFileError(
            "The model bundle is truncated or damaged: its ZIP end-of-central-directory "
            "record is missing. Download or copy the .segmodel file again."
        ) from None
    if entries > MAX_MEMBERS:
        raise ModelFileError(
            f"The model bundle's ZIP directory lists {entries:,} members, more than any "
            f"seg bundle ({MAX_MEMBERS}); it was not made by seg."
        )
    if nbytes > MAX_CENTRAL_DIRECTORY_BYTES:
        raise ModelFileError(
            f"The model bundle's ZIP directory is {nbytes:,} bytes, more than any seg "
            f"bundle needs ({MAX_CENTRAL_DIRECTORY_BYTES:,}); it was not made by seg."
        )


def open_archive(data: bytes) -> zipfile.ZipFile:
    """A zipfile view of ``data``, after :func:`check_central_directory` bounded its directory."""
    check_central_directory(data)
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # untrusted decoding: whatever zipfile throws means "damaged"
        raise _damaged(exc) from exc


def _damaged(exc: BaseException) -> ModelFileError:
    return ModelFileError(
        f"The model bundle is truncated or damaged ({type(exc).__name__}: {exc}). "
        "Download or copy the .segmodel file again, or save the model again from seg."
    )


def checked_members(archive: zipfile.ZipFile, max_bytes: int) -> dict[str, zipfile.ZipInfo]:
    """Member name -> info, after refusing foreign names, duplicates and zip-bomb sizes."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(
            f"The model bundle has {len(infos)} members, more than any seg bundle "
            f"({MAX_MEMBERS}); it was not made by seg."
        )
    names = [info.filename for info in infos]
    foreign = [info.orig_filename for info in infos if not _is_bundle_name(info)]
    if foreign:
        raise ModelFileError(
            f"The ZIP archive contains unexpected member(s) {shorten_names(foreign)}; a .segmodel bundle "
            f"holds only {MANIFEST_NAME} and arrays/<name>.npy. It was not made by seg or was altered."
        )
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ModelFileError(
            f"The model bundle contains duplicate member(s) {shorten_names(duplicates)}; "
            "it was altered. Save the model again from seg."
        )
    if MANIFEST_NAME not in names:
        raise ModelFileError(
            f"The ZIP archive has no {MANIFEST_NAME}, so it is not a .segmodel bundle. "
            "Choose a .segmodel file saved by seg."
        )
    total = 0
    for info in infos:
        _check_member_info(info, max_bytes)
        total += info.file_size
    if total > max_bytes:
        raise ModelFileError(
            f"The model bundle would unpack to {total:,} bytes, above the limit of {max_bytes:,} bytes. "
            "If you trust this file, load it with a larger max_bytes."
        )
    return {info.filename: info for info in infos}


def _is_bundle_name(info: zipfile.ZipInfo) -> bool:
    # zipfile cuts names at a NUL byte; compare the raw name too so nothing hides behind one.
    return all(
        name == MANIFEST_NAME or ARRAY_MEMBER_PATTERN.fullmatch(name) for name in (info.filename, info.orig_filename)
    )


def _check_member_info(info: zipfile.ZipInfo, max_bytes: int) -> None:
    name = info.filename
    if info.flag_bits & 0x1:
        raise ModelFileError(f"Member {name!r} of the model bundle is encrypted; seg bundles never are.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelFileError(
            f"Member {name!r} uses ZIP compression method {info.compress_type}; "
            "seg bundles are stored or deflated only. Save the model again from seg."
        )
    limit = MAX_MANIFEST_BYTES if name == MANIFEST_NAME else max_bytes
    if info.file_size > limit:
        raise ModelFileError(
            f"Member {name!r} of the model bundle declares {info.file_size:,} bytes, "
            f"above the limit of {limit:,} bytes."
        )
    if info.file_size > RATIO_CHECK_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        raise ModelFileError(
            f"Member {name!r} of the model bundle claims a compression ratio of "
            f"{info.file_size / max(info.compress_size, 1):,.0f}:1 (limit {MAX_COMPRESSION_RATIO}:1); "
            "this looks like a zip bomb, so it is refused."
        )


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Inflate one member in memory, never more than its declared size + 1 byte."""
    try:
        with archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
    except Exception as exc:  # untrusted decoding: bad CRC, bad header, overlap, zlib errors...
        raise _damaged(exc) from exc
    if len(data) != info.file_size:
        raise ModelFileError(
            f"Member {info.filename!r} of the model bundle holds {len(data):,} bytes where its header "
            f"declares {info.file_size:,}; the file is damaged or altered. Save the model again from seg."
        )
    return data
