"""Safe names and files of a batch: untrusted names, input files, the output folder.

Names that came from users (uploads, file names on disk) become safe output stems
(:func:`safe_stem`, :func:`unique_stems`) and printable names for messages
(:func:`display_name`). :func:`collect_inputs` expands files, folders and glob patterns;
:func:`check_output_dir` makes sure the output folder is writable; :func:`atomic_write` writes a
file under a temporary name and renames it into place.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from seg.batch.outcomes import BatchError

__all__ = ["IMAGE_SUFFIXES", "display_name", "safe_stem", "unique_stems", "collect_inputs",
           "check_output_dir", "atomic_write"]

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
)

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

    Directories (``/`` and ``\\``), the suffix, control characters and anything but letters,
    digits, ``_``, ``-`` and ``.`` are removed or replaced by ``_``; leading dots are stripped
    (no hidden files, no ``..``); at most 100 characters.

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


def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _images_in_folder(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (their image files, not recursive) and glob patterns.

    Parameters
    ----------
    inputs : sequence of str or path

    Returns
    -------
    list of Path
        In the order given (folder contents and glob matches sorted), without duplicates.

    Raises
    ------
    BatchError
        An input does not exist, a folder holds no image files, a pattern matches nothing, or
        there are no inputs at all.
    """
    import glob

    paths: list[Path] = []
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found = _images_in_folder(path)
            if not found:
                raise BatchError(
                    f"folder {text!r} contains no image files ({suffixes}): "
                    "give a folder with images, or the image files themselves"
                )
        elif path.is_file():
            found = [path]
        elif _has_glob(text):
            found = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
            if not found:
                raise BatchError(f"no files match the pattern {text!r}: check the pattern")
        else:
            raise BatchError(f"input {text!r} does not exist: check the path")
        paths.extend(found)
    if not paths:
        raise BatchError("no input images given: name image files, folders or patterns")
    unique: dict[Path, None] = {}
    for path in paths:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def check_output_dir(out_dir: str | os.PathLike) -> Path:
    """Create the output folder if needed and check that files can be written into it.

    Raises
    ------
    BatchError
        The folder cannot be created or written to (permissions, a file in the way, read-only
        filesystem).
    """
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".seg-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise BatchError(
            f"cannot write to the output folder {os.fspath(out_dir)!r}: {reason}; "
            "choose a folder you can write to"
        ) from None
    return path


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    Readers see either the old file or the complete new one, never a partial file; the temporary
    file is removed if writing fails.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
