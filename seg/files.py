"""Names and files derived from untrusted input: safe stems, printable names, atomic writes.

Every file the package writes or offers for download under a name that came from a user (an
upload, a file on disk, a class name) takes its stem from :func:`safe_stem`
(:func:`unique_stems` for many at once); messages show such names through
:func:`display_name`. Every file written to disk goes through :func:`atomic_write`, so a crash,
a killed worker or a full disk never leaves a half-written file under a final name.

Files a user names are read through :func:`open_regular` / :func:`read_limited`: regular files
only (a FIFO would block forever, ``/dev/zero`` never ends), opened without blocking and read
at most ``limit + 1`` bytes. Text from a file is refused where it enters when it cannot be
encoded (:func:`is_encodable`: a JSON escape can spell a lone surrogate, ``"\\ud800"``, which
would crash whatever writes it later) and printed through :func:`printable`.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "PARTIAL_SUFFIX",
    "display_name",
    "printable",
    "is_encodable",
    "safe_stem",
    "unique_stems",
    "atomic_write",
    "NotRegularFileError",
    "FileTooLargeError",
    "open_regular",
    "read_limited",
]

PARTIAL_SUFFIX = ".part"
"""Suffix of :func:`atomic_write`'s temporary files (``.<name>.<random>.part``, next to the target)."""

_UNSAFE_CHARS = re.compile(r"[^\w.\-]+")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)$", re.IGNORECASE)
_MAX_STEM = 100


def printable(text: str) -> str:
    """``text`` without control and format characters (newlines, ANSI escapes, bidi overrides,
    lone surrogates), which would let a name forge lines in a report or a terminal."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")


def display_name(name: str | os.PathLike) -> str:
    """A file's name fit for a message: base name only, no control characters, <= 120 chars."""
    base = re.split(r"[\\/]", os.fspath(name))[-1]
    text = printable(base).strip() or "(unnamed)"
    return text if len(text) <= 120 else text[:117] + "..."


def is_encodable(text: str) -> bool:
    """True if ``text`` can be written as UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_stem(name: str | os.PathLike, *, fallback: str = "image") -> str:
    """A file-name stem derived from an untrusted name, safe as one path component.

    Directories (``/`` and ``\\``), the suffix, control characters and anything but letters
    (of any script), digits, ``_``, ``-`` and ``.`` are removed or replaced by ``_``; leading
    dots are stripped (no hidden files, no ``..``); Windows device names get a ``_`` prefix;
    at most 100 characters; ``fallback`` when nothing is left.

    >>> safe_stem("../../etc/pass wd.png")
    'pass_wd'
    >>> safe_stem("brain.nii.gz")
    'brain'
    """
    base = re.split(r"[\\/]", os.fspath(name))[-1]
    base = printable(base)
    if base.lower().endswith(".nii.gz"):  # one suffix: brain.nii.gz -> brain
        base = base[: -len(".gz")]
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem.strip(".") or not suffix or len(suffix) > 5:
        stem = base
    stem = _UNSAFE_CHARS.sub("_", stem).strip("._- ")[:_MAX_STEM].rstrip("._- ")
    if not stem:
        return fallback
    if _WINDOWS_RESERVED.match(stem):
        stem = "_" + stem
    return stem


def unique_stems(names: Iterable[str | os.PathLike]) -> list[str]:
    """:func:`safe_stem` of every name, made unique by ``_2``, ``_3``... (case-insensitively)."""
    seen: set[str] = set()
    stems = []
    for name in names:
        stem = candidate = safe_stem(name)
        number = 2
        while candidate.lower() in seen:
            candidate = f"{stem}_{number}"
            number += 1
        seen.add(candidate.lower())
        stems.append(candidate)
    return stems


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the complete new one.

    The bytes go to a temporary file in the same folder (a random name opened with ``O_EXCL``,
    so it cannot collide with or follow anything already there), are flushed to disk
    (``fsync``) and only then renamed over ``path`` (``os.replace``). On any failure the
    temporary file is removed and ``path`` is untouched. Permissions are those of any new file
    (``0o666`` minus the umask).

    Raises
    ------
    OSError
        The folder is missing or not writable, the disk is full, ... (callers wrap it in their
        own :class:`~seg.errors.SegError` with a message for their user).
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------- reading


class NotRegularFileError(OSError):
    """The path names a FIFO, a device, a socket or a folder, not a regular file."""


class FileTooLargeError(OSError):
    """The file holds more bytes than the caller's limit: ``size`` (``at_least`` when only that
    much was read), ``limit``."""

    def __init__(self, path: str, size: int, limit: int, *, at_least: bool) -> None:
        more = "more than " if at_least else ""
        super().__init__(errno.EFBIG, f"the file is {more}{size:,} bytes, above the limit of {limit:,} bytes", path)
        self.size = size
        self.limit = limit
        self.at_least = at_least


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file (symlinks to one are fine).

    Raises
    ------
    NotRegularFileError
        ``path`` is a FIFO, device, socket or folder (it is never read, and opening never blocks).
    OSError
        The file cannot be opened (missing, no permission, ...).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(errno.EINVAL, f"it is {_kind(mode)}, not a regular file", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        handle = os.fdopen(descriptor, "rb")
        handle.raw.name = os.fspath(path)  # type: ignore[attr-defined]  # as open() names it (readers such as tifffile use the name)
        return handle
    except BaseException:
        os.close(descriptor)
        raise


def read_limited(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refused past ``limit`` bytes (at most ``limit + 1``
    are read, whatever the size the file system reports).

    Raises
    ------
    FileTooLargeError, NotRegularFileError, OSError
    """
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise FileTooLargeError(os.fspath(path), size, limit, at_least=False)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(os.fspath(path), len(data), limit, at_least=True)
    return data
