"""Files of a batch: the input files and the output folder.

:func:`collect_inputs` expands files, folders and glob patterns; :func:`check_output_dir` makes
sure the output folder is writable. Safe output names and atomic writes are :mod:`seg.files`'.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from seg.batch.outcomes import BatchError
from seg.images.read import IMAGE_SUFFIXES  # noqa: F401  (re-exported: the one list, owned by seg.images)

__all__ = ["IMAGE_SUFFIXES", "collect_inputs", "check_output_dir"]


def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _images_in_folder(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


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
    suffixes = ", ".join(IMAGE_SUFFIXES)
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
            f"cannot write to the output folder {os.fspath(out_dir)!r}: {reason}; choose a folder you can write to"
        ) from None
    return path
