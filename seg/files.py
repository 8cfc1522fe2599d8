"""Names and files derived from untrusted input: safe stems, printable names, atomic writes.

Every file the package writes or offers for download under a name that came from a user (an
upload, a file on disk, a class name) takes its stem from :func:`safe_stem`
(:func:`unique_stems` for many at once); messages show such names through
:func:`display_name`. Every file written to disk goes through :func:`atomic_write`, so a crash,
a killed worker or a full disk never leaves a half-written file under a final name.
"""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PARTIAL_SUFFIX", "display_name", "safe_stem", "unique_stems", "atomic_write"]

PARTIAL_SUFFIX = ".part"
"""Suffix of :func:`atomic_write`'s temporary files (``.<name>.<random>.part``, next to the target)."""

_UNSAFE_CHARS = re.compile(r"[^\w.\-]+")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)$", re.IGNORECASE)
_MAX_STEM = 100


def _printable(text: str) -> str:
    # Control and format characters (newlines, ANSI escapes, bidi overrides) would let a file
    # name forge lines in a report or a terminal.
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")


def display_name(name: str | os.PathLike) -> str:
    """A file's name fit for a message: base name only, no control characters, <= 120 chars."""
    base = re.split(r"[\\/]", os.fspath(name))[-1]
    text = _printable(base).strip() or "(unnamed)"
    return text if len(text) <= 120 else text[:117] + "..."


def safe_stem(name: str | os.PathLike, *, fallback: str = "image") -> str:
    """A file-name stem derived from an untrusted name, safe as one path component.

    Directories (``/`` and ``\\``), the suffix, control characters and anything but letters
    (of any script), digits, ``_``, ``-`` and ``.`` are removed or replaced by ``_``; leading
    dots are stripped (no hidden files, no ``..``); Windows device names get a ``_`` prefix;
    at most 100 characters; ``fallback`` when nothing is left.

    >>> safe_stem("../../etc/pass wd.png")
    'pass_wd'
    """
    base = re.split(r"[\\/]", os.fspath(name))[-1]
    base = _printable(base)
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
