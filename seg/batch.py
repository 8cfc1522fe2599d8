"""Apply a trained model to many images: locally, tile by tile, or on a Dask cluster.

The unit of work is one input image (a file, or uploaded bytes): read it, predict every frame
(tile by tile when the frame's feature stack would be too big, see :mod:`seg.tiling`), measure
the result and encode the outputs. :func:`apply_file` does that for a file and writes the outputs
into a folder; :func:`apply_source` does it in memory (the app's batch page).
:func:`run_batch` runs many files, either one after the other in this process (the default;
the forest's numba predictor already uses every core) or on a ``dask.distributed`` client.

Files written for an input ``cells.tif`` (stem ``cells``):

- ``cells_mask.png`` — labels 1..K (8-bit; 16-bit ``.tif`` when K > 255); for a stack of
  T > 1 frames ``cells_mask.tif``, a T-page TIFF;
- ``cells_probabilities.tif`` — float32, (K, H, W) or (T, K, H, W) (optional);
- ``cells_overlay.png`` — the image with the mask blended in (optional; stacks:
  ``cells_overlay_t000.png`` per frame);
- ``measurements.csv`` — one row per image, frame and class (:mod:`seg.measure`).

Every file is written under a temporary name in the output folder and renamed into place
(``os.replace``), so a crash, a killed worker or a full disk never leaves a half-written file
under a final name. Existing files with the same names are replaced.

On Dask, the model bundle bytes are scattered to every worker once
(``client.scatter(..., broadcast=True)``); tasks receive that future and a digest, and each worker
process keeps the deserialised model in a small cache keyed by the digest. Workers read the input
files and write the outputs themselves, returning only a small summary, so the input and output
folders must be visible to the workers under the same paths (always true for a
``LocalCluster``; on a real cluster, a shared filesystem). Frames that need tiling are read by the
client, and their windows are sent to the workers; the client assembles the result and writes it.
Tasks are retried (``retries=2``) and a task on a worker that dies is rescheduled by Dask.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tempfile
import time
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seg.errors import ImageError, SegError
from seg.tiling import (
    DEFAULT_TILE,
    TiledResult,
    Window,
    apply_tiled,
    frame_statistics,
    predict_features,
    predict_window,
)

if TYPE_CHECKING:
    from seg.model import Model

__all__ = [
    "IMAGE_SUFFIXES",
    "TILE_ABOVE_BYTES",
    "BatchError",
    "ApplyOptions",
    "ImageOutcome",
    "ImageResult",
    "BatchReport",
    "safe_stem",
    "display_name",
    "unique_stems",
    "collect_inputs",
    "check_output_dir",
    "atomic_write",
    "needs_tiling",
    "predict_image",
    "encode_outputs",
    "measurement_rows",
    "apply_source",
    "apply_file",
    "run_batch",
    "measurements_csv",
    "results_zip",
    "overlay_thumbnail",
    "dask_client",
]

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
)
# Frames whose float32 feature stack would exceed this are predicted in tiles (1 GiB: a 2.3k x 2.3k
# grey frame with ~50 features); tiles of 1024 px then need ~0.3 GB each.
TILE_ABOVE_BYTES: int = 1 << 30
# Uncompressed TIFFs bigger than this are memory-mapped, so tiles are read from disk lazily.
MEMMAP_ABOVE_BYTES: int = 256 << 20
MEASUREMENTS_FILE = "measurements.csv"
TASK_RETRIES = 2


class BatchError(SegError):
    """The batch cannot run: no inputs found, an unusable output folder, bad batch options."""


@dataclass(frozen=True)
class ApplyOptions:
    """What to compute and write for each image.

    Attributes
    ----------
    masks, probabilities, overlays : bool
        Which output files to write.
    tile : int
        Tile side in pixels when a frame is predicted in tiles.
    tiling : {"auto", "always", "never"}
        "auto" tiles frames whose feature stack exceeds ``tile_above_bytes``.
    tile_above_bytes : int
    max_pixels : int
        Size limit (T*H*W) of one input image.
    overlay_alpha : float
        Opacity of the mask in overlays.
    """

    masks: bool = True
    probabilities: bool = False
    overlays: bool = False
    tile: int = DEFAULT_TILE
    tiling: str = "auto"
    tile_above_bytes: int = TILE_ABOVE_BYTES
    max_pixels: int = 100_000_000
    overlay_alpha: float = 0.5

    def __post_init__(self) -> None:
        if self.tiling not in ("auto", "always", "never"):
            raise BatchError(f"tiling {self.tiling!r} is unknown: use 'auto', 'always' or 'never'")
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise BatchError(f"overlay opacity {self.overlay_alpha} must be between 0 and 1")
        if self.max_pixels < 1:
            raise BatchError(f"max_pixels {self.max_pixels} must be a positive number of pixels")


@dataclass
class ImageOutcome:
    """What happened to one input: a small, picklable summary (Dask tasks return it).

    Attributes
    ----------
    name : str
        Output stem (sanitised): files are ``<name>_mask.png`` etc.
    source : str
        The input's name for messages (base name, control characters removed).
    error : str or None
        Why the image was skipped (one line), or None when it was done.
    shape : tuple of int
        (T, H, W) of the image, () when it could not be read.
    seconds : float
    rows : list of dict
        Measurement rows (``image``, ``frame``, ``class``, ...).
    files : list of str
        Names of the files written (or encoded) for this image.
    tiled : bool
        Whether any frame was predicted in tiles.
    """

    name: str
    source: str
    error: str | None = None
    shape: tuple[int, ...] = ()
    seconds: float = 0.0
    rows: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    tiled: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def megapixels(self) -> float:
        return float(np.prod(self.shape)) / 1e6 if self.shape else 0.0


@dataclass
class ImageResult:
    """An :class:`ImageOutcome` with the arrays and encoded files (in-memory use, the app).

    ``image`` (T, H, W, C), ``labels`` (T, H, W), ``proba`` (T, H, W, K) float32 or None and
    ``outputs`` {file name: bytes}; all None/empty when the image failed.
    """

    outcome: ImageOutcome
    image: np.ndarray | None = None
    labels: np.ndarray | None = None
    proba: np.ndarray | None = None
    outputs: dict[str, bytes] = field(default_factory=dict)


@dataclass
class BatchReport:
    """Outcomes of a batch, in input order, with totals."""

    outcomes: list[ImageOutcome]
    seconds: float
    out_dir: Path | None = None

    @property
    def done(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def megapixels(self) -> float:
        return sum(o.megapixels for o in self.done)

    def summary(self, *, max_listed: int = 5) -> str:
        """One line: counts, megapixels, seconds, throughput, and (up to ``max_listed``) failures.

        >>> BatchReport([ImageOutcome("a", "a.png", shape=(1, 1000, 1000)),
        ...              ImageOutcome("b", "bad.png", "not an image")], 2.0).summary()
        '1 of 2 images done, 1.00 MP in 2.0 s (0.50 MP/s), 1 failed: bad.png: not an image'
        """
        total = len(self.outcomes)
        rate = self.megapixels / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{len(self.done)} of {total} image{'s' if total != 1 else ''} done, "
            f"{self.megapixels:.2f} MP in {self.seconds:.1f} s ({rate:.2f} MP/s)"
        )
        failed = self.failed
        if failed:
            text += f", {len(failed)} failed"
        if failed and max_listed > 0:
            listed = "; ".join(f"{o.source}: {o.error}" for o in failed[:max_listed])
            more = f"; and {len(failed) - max_listed} more" if len(failed) > max_listed else ""
            text += f": {listed}{more}"
        return text


# --------------------------------------------------------------------------- names and files

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


# --------------------------------------------------------------------------- prediction


def _frame(image: np.ndarray, t: int) -> np.ndarray:
    """Frame ``t`` of a (T, H, W, C) image as the model wants it: (H, W) grey or (H, W, C)."""
    frame = image[t]
    return frame[..., 0] if frame.shape[-1] == 1 else frame


def needs_tiling(model: Model, height: int, width: int, options: ApplyOptions) -> bool:
    """Whether a frame of height x width is predicted in tiles under ``options``."""
    if options.tiling == "always":
        return True
    if options.tiling == "never":
        return False
    n_features = model.feature_settings.n_features(model.n_channels)
    return height * width * n_features * 4 > options.tile_above_bytes


def _check_channels(model: Model, image: np.ndarray) -> None:
    from seg.errors import ModelMismatchError

    channels = image.shape[-1]
    if channels != model.n_channels:
        raise ModelMismatchError(
            f"the model expects {model.n_channels} channel(s) but the image has {channels}: "
            "apply the model to images like the ones it was trained on"
        )


WindowMapper = Callable[[Sequence[Window]], Iterable[TiledResult]]
# (frame, statistics, labels?, proba?) -> a WindowMapper for seg.tiling.apply_tiled
MapperFactory = Callable[[np.ndarray, "np.ndarray | None", bool, bool], WindowMapper]


def predict_image(
    model: Model,
    image: np.ndarray,
    options: ApplyOptions = ApplyOptions(),
    *,
    mapper_factory: MapperFactory | None = None,
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Labels (and probabilities) of every frame of an image.

    Parameters
    ----------
    model : Model
    image : (T, H, W, C) array
        As returned by :func:`seg.images.read_image` (may be a memmap).
    options : ApplyOptions
    mapper_factory : callable, optional
        ``mapper_factory(frame, statistics, labels, proba)`` returns a window mapper for
        :func:`seg.tiling.apply_tiled` (used to run tiles on Dask).

    Returns
    -------
    labels : (T, H, W) uint8/uint16
    proba : (T, H, W, K) float32 or None
        Only when ``options.probabilities``.
    tiled : bool
        Whether any frame was tiled.

    Raises
    ------
    ModelMismatchError
        The image's channel count differs from the model's.
    """
    _check_channels(model, image)
    n_frames, height, width = image.shape[:3]
    tiled = needs_tiling(model, height, width, options)
    labels_out: np.ndarray | None = None
    proba_out: np.ndarray | None = None
    for t in range(n_frames):
        frame = _frame(image, t)
        if tiled:
            mapper = None
            statistics = frame_statistics(frame, model.normalization)
            if mapper_factory is not None:
                mapper = mapper_factory(frame, statistics, True, options.probabilities)
            labels, proba = apply_tiled(
                model, frame, tile=options.tile, labels=True, proba=options.probabilities,
                statistics=statistics, map_windows=mapper,
            )
        else:
            frame = np.asarray(frame)
            features = model.features(frame)
            labels, proba = predict_features(
                model, features, labels=True, proba=options.probabilities
            )
            del features
        assert labels is not None
        if labels_out is None:
            labels_out = np.empty((n_frames, height, width), dtype=labels.dtype)
        labels_out[t] = labels
        if proba is not None:
            if proba_out is None:
                proba_out = np.empty((n_frames, height, width, proba.shape[-1]), np.float32)
            proba_out[t] = proba
    assert labels_out is not None
    return labels_out, proba_out, tiled


def measurement_rows(name: str, labels: np.ndarray, class_names: Sequence[str]) -> list[dict]:
    """Per-frame, per-class measurements of a (T, H, W) label stack, with an ``image`` column."""
    from seg.measure import measure_stack

    return [{"image": name, **row} for row in measure_stack(labels, list(class_names))]


def _overlay_png(model: Model, frame: np.ndarray, labels: np.ndarray, alpha: float) -> bytes:
    from seg import render

    rgb = render.to_display_rgb(frame if frame.ndim == 3 else frame[..., np.newaxis])
    return render.overlay_png(rgb, labels, list(model.class_colors), alpha)


def encode_outputs(
    model: Model,
    name: str,
    image: np.ndarray,
    labels: np.ndarray,
    proba: np.ndarray | None,
    options: ApplyOptions,
) -> Iterator[tuple[str, bytes]]:
    """Encode the output files of one image, one at a time: ``(file name, bytes)``.

    Parameters
    ----------
    name : str
        Output stem (already sanitised).
    image : (T, H, W, C) array
    labels : (T, H, W)
    proba : (T, H, W, K) float32 or None
    """
    from seg import render

    n_frames = labels.shape[0]
    if options.masks:
        # One frame: an 8-bit PNG (16-bit TIFF above 255 classes); a stack: a T-page TIFF.
        data, suffix = render.mask_file(labels[0] if n_frames == 1 else labels)
        yield f"{name}_mask{suffix}", data
    if options.probabilities and proba is not None:
        yield f"{name}_probabilities.tif", render.probabilities_tiff(
            proba[0] if n_frames == 1 else proba, class_names=list(model.class_names))
    if options.overlays:
        for t in range(n_frames):
            suffix = "" if n_frames == 1 else f"_t{t:03d}"
            yield f"{name}_overlay{suffix}.png", _overlay_png(
                model, np.asarray(image[t]), labels[t], options.overlay_alpha
            )


# --------------------------------------------------------------------------- reading


_MAPPABLE_AXES = {"YX": (None, None), "YXS": (None, -1)}
_MAPPABLE_AXES.update({f"{frame}YX": (0, None) for frame in "TZIQ"})
_MAPPABLE_AXES.update({f"{frame}YXS": (0, -1) for frame in "TZIQ"})


def _open_lazily(path: Path, max_pixels: int) -> np.ndarray | None:
    """A read-only memmap of a big uncompressed TIFF as (T, H, W, C), or None to read normally.

    Only plain layouts are mapped (grey or RGB, one frame or a stack of frames, uint8/uint16/
    float32, native byte order, no palette or inverted grey); anything else, and every compressed
    TIFF, is left to :func:`seg.images.read_image`, which loads it into memory.
    """
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        if path.stat().st_size < MEMMAP_ABOVE_BYTES:
            return None
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, photometric = series.axes, series.keyframe.photometric
        plain = photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB)
        if axes not in _MAPPABLE_AXES or not plain:
            return None
        array = tifffile.memmap(path, mode="r")
    except (OSError, ValueError, TypeError, IndexError, KeyError, AttributeError):
        # compressed, tiled or odd TIFF: tifffile cannot map it; read_image decides about it
        return None
    if array.dtype not in (np.uint8, np.uint16, np.float32) or not array.dtype.isnative:
        return None
    if array.ndim != len(axes) or (axes.endswith("S") and array.shape[-1] not in (1, 3)):
        return None
    frames_axis, channel_axis = _MAPPABLE_AXES[axes]
    if frames_axis is None:
        array = array[np.newaxis]
    if channel_axis is None:
        array = array[..., np.newaxis]
    n_frames, height, width = array.shape[:3]
    if n_frames * height * width > max_pixels:
        raise ImageError(
            f"image is {n_frames} x {height} x {width} = {n_frames * height * width:,} pixels, "
            f"above the limit of {max_pixels:,}: raise the limit (--max-pixels) if you have the "
            "memory"
        )
    return array


def _read(source: Path | bytes, max_pixels: int) -> np.ndarray:
    from seg.images import read_image

    if isinstance(source, Path):
        lazy = _open_lazily(source, max_pixels)
        if lazy is not None:
            return lazy
        if not source.is_file():
            raise ImageError(f"file {display_name(source)!r} no longer exists or is not a file")
        try:
            return read_image(source, max_pixels=max_pixels)
        except OSError as exc:
            raise ImageError(f"cannot read the file: {exc.strerror or exc}") from None
    return read_image(source, max_pixels=max_pixels)


def _size_limit_hint(path: Path, max_pixels: int) -> str:
    """For an image refused as too large: how to raise the limit on the command line."""
    shape = _peek_shape(path)
    if shape is None or shape[0] * shape[1] * shape[2] <= max_pixels:
        return ""
    return f" (command line: --max-pixels {shape[0] * shape[1] * shape[2]})"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _memory_message(shape: tuple[int, ...]) -> str:
    return (
        f"out of memory on an image of shape {shape}: use smaller tiles (--tile) or "
        "--tiling always"
    )


# --------------------------------------------------------------------------- one image


def apply_source(
    model: Model,
    source: Path | bytes,
    name: str,
    options: ApplyOptions = ApplyOptions(),
    *,
    source_name: str | None = None,
    keep_arrays: bool = True,
) -> ImageResult:
    """Read, predict, measure and encode one image in memory; bad input becomes ``outcome.error``.

    Parameters
    ----------
    model : Model
    source : Path or bytes
        A file, or the bytes of an uploaded file.
    name : str
        Output stem (see :func:`unique_stems`).
    options : ApplyOptions
    source_name : str, optional
        Name shown in messages (default: the path's name or ``name``).
    keep_arrays : bool
        Keep image, labels and probabilities in the result (for thumbnails and charts).

    Returns
    -------
    ImageResult
        ``outputs`` holds the encoded files (see :func:`encode_outputs`).
    """
    shown = display_name(source_name if source_name is not None else (
        source if isinstance(source, Path) else name))
    outcome = ImageOutcome(name=name, source=shown)
    start = time.perf_counter()
    image = labels = proba = None
    try:
        image = _read(source, options.max_pixels)
        outcome.shape = tuple(int(n) for n in image.shape[:3])
        labels, proba, outcome.tiled = predict_image(model, image, options)
        outcome.rows = measurement_rows(name, labels, model.class_names)
        outputs = dict(encode_outputs(model, name, image, labels, proba, options))
    except SegError as exc:
        outcome.error = _one_line(exc)
        return ImageResult(outcome)
    except MemoryError:
        outcome.error = _memory_message(outcome.shape)
        return ImageResult(outcome)
    outcome.files = list(outputs)
    outcome.seconds = time.perf_counter() - start
    if not keep_arrays:
        image = labels = proba = None
    return ImageResult(outcome, image, labels, proba, outputs)


def apply_file(
    model: Model,
    path: str | os.PathLike,
    name: str,
    out_dir: str | os.PathLike,
    options: ApplyOptions = ApplyOptions(),
    *,
    mapper_factory: MapperFactory | None = None,
) -> ImageOutcome:
    """Apply the model to one file and write its outputs into ``out_dir`` (atomically).

    A bad image (unreadable, corrupt, too large, wrong channel count) or a failure to write is
    reported in ``ImageOutcome.error``, never raised, so a batch carries on.
    """
    path = Path(path)
    outcome = ImageOutcome(name=name, source=display_name(path))
    start = time.perf_counter()
    try:
        image = _read(path, options.max_pixels)
        outcome.shape = tuple(int(n) for n in image.shape[:3])
        labels, proba, outcome.tiled = predict_image(
            model, image, options, mapper_factory=mapper_factory
        )
        outcome.rows = measurement_rows(name, labels, model.class_names)
        for file_name, data in encode_outputs(model, name, image, labels, proba, options):
            atomic_write(Path(out_dir) / file_name, data)
            outcome.files.append(file_name)
    except SegError as exc:
        outcome.error = _one_line(exc) + _size_limit_hint(path, options.max_pixels)
    except MemoryError:
        outcome.error = _memory_message(outcome.shape)
    except OSError as exc:  # writing the outputs: disk full, folder removed meanwhile
        outcome.error = f"cannot write the outputs: {exc.strerror or _one_line(exc)}"
    outcome.seconds = time.perf_counter() - start
    return outcome


# --------------------------------------------------------------------------- batches


def measurements_csv(outcomes: Iterable[ImageOutcome]) -> str:
    """CSV text of the measurement rows of all successful outcomes (header even when empty)."""
    rows = [row for outcome in outcomes if outcome.ok for row in outcome.rows]
    if rows:
        from seg.measure import rows_to_csv

        return rows_to_csv(rows)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        ["image", "frame", "class", "label", "pixels", "area_fraction", "objects",
         "mean_object_size"]
    )
    return buffer.getvalue()


def results_zip(results: Sequence[ImageResult], *, csv_text: str | None = None) -> bytes:
    """A zip of every successful result's output files plus ``measurements.csv``.

    Member names are the sanitised output names only (no folders).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for result in results:
            for file_name, data in result.outputs.items():
                archive.writestr(file_name, data)
        if csv_text is None:
            csv_text = measurements_csv(r.outcome for r in results)
        archive.writestr(MEASUREMENTS_FILE, csv_text)
    return buffer.getvalue()


def overlay_thumbnail(
    model: Model, frame: np.ndarray, labels: np.ndarray, *, max_side: int = 192, alpha: float = 0.5
) -> np.ndarray:
    """A small overlay for spot checks: (h, w, 3) uint8 with max(h, w) <= max_side.

    Parameters
    ----------
    frame : (H, W, C) array, labels : (H, W)
    """
    from seg import render

    height, width = labels.shape
    size = render.display_size(height, width, max_side)
    rgb = render.resize_rgb(render.to_display_rgb(np.asarray(frame)), size)
    small = render.resize_labels(labels, size)
    return render.blend(rgb, small, list(model.class_colors), alpha)


ProgressCallback = Callable[[int, int, ImageOutcome], None]


def run_batch(
    model: Model,
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    options: ApplyOptions = ApplyOptions(),
    *,
    client: Any = None,
    progress: ProgressCallback | None = None,
) -> BatchReport:
    """Apply a model to many files, write their outputs and ``measurements.csv``.

    Parameters
    ----------
    model : Model
    paths : sequence of path
        Input files (see :func:`collect_inputs`).
    out_dir : path
        Output folder (created; see :func:`check_output_dir`).
    options : ApplyOptions
    client : distributed.Client, optional
        Run on this Dask client (see the module notes); default: in this process.
    progress : callable, optional
        ``progress(done, total, outcome)`` after each image.

    Returns
    -------
    BatchReport
        Outcomes in input order. Bad images are reported there, not raised.
    """
    out = check_output_dir(out_dir)
    paths = [Path(p) for p in paths]
    names = unique_stems(paths)
    start = time.perf_counter()
    if client is None:
        outcomes = _run_in_process(model, paths, names, out, options, progress)
    else:
        outcomes = _run_on_dask(client, model, paths, names, out, options, progress)
    atomic_write(out / MEASUREMENTS_FILE, measurements_csv(outcomes).encode("utf-8"))
    _remove_leftovers(out, names)
    return BatchReport(outcomes, time.perf_counter() - start, out)


def _remove_leftovers(out: Path, names: Sequence[str]) -> None:
    """Delete temporary files of this batch's outputs left by a worker killed while writing."""
    prefixes = tuple(f".{name}_" for name in names)
    for entry in os.scandir(out):
        if entry.name.endswith(".part") and entry.name.startswith(prefixes):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:  # another process cleaned it up meanwhile
                pass


def _run_in_process(model, paths, names, out, options, progress) -> list[ImageOutcome]:
    outcomes = []
    for index, (path, name) in enumerate(zip(paths, names)):
        outcome = apply_file(model, path, name, out, options)
        outcomes.append(outcome)
        if progress is not None:
            progress(index + 1, len(paths), outcome)
    return outcomes


# --------------------------------------------------------------------------- Dask

_WORKER_MODELS: dict[str, Model] = {}
_WORKER_CACHE_SIZE = 4


def _worker_model(digest: str, bundle: bytes) -> Model:
    """The model for ``digest``, deserialised once per worker process (the bundle is trusted
    here only as far as :func:`seg.persist.load_model` trusts any bundle)."""
    model = _WORKER_MODELS.get(digest)
    if model is None:
        from seg.persist import load_model

        model = load_model(bundle, max_bytes=max(len(bundle) + 1, 200_000_000))
        if len(_WORKER_MODELS) >= _WORKER_CACHE_SIZE:
            _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
        _WORKER_MODELS[digest] = model
    return model


def _file_task(digest: str, bundle: bytes, path: str, name: str, out_dir: str,
               options: ApplyOptions) -> ImageOutcome:
    return apply_file(_worker_model(digest, bundle), path, name, out_dir, options)


def _window_task(digest: str, bundle: bytes, raw: np.ndarray, statistics: np.ndarray | None,
                 inner: tuple[slice, slice], labels: bool, proba: bool):
    return predict_window(_worker_model(digest, bundle), raw, statistics, inner,
                          labels=labels, proba=proba)


def _peek_shape(path: Path) -> tuple[int, int, int] | None:
    """(T, H, W) from the file header without decoding pixels, or None if unknown."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, axes = series.shape, series.axes
            frames = int(np.prod([n for n, axis in zip(shape, axes) if axis in "TZIQ"]))
            return frames, int(shape[axes.index("Y")]), int(shape[axes.index("X")])
        from PIL import Image

        with Image.open(path) as img:
            width, height = img.size
            frames = int(getattr(img, "n_frames", 1))
        return frames, int(height), int(width)
    except Exception:  # noqa: BLE001 - untrusted header; reading the image reports the real error
        return None


class _DaskRunner:
    """Ships the model once and maps files / tile windows onto a ``distributed.Client``."""

    def __init__(self, client: Any, model: Model) -> None:
        from seg.persist import model_to_bytes

        self.client = client
        self.model = model
        bundle = model_to_bytes(model)
        self.digest = hashlib.sha256(bundle).hexdigest()
        [self.bundle] = client.scatter([bundle], broadcast=True, hash=False)
        workers = len(client.scheduler_info().get("workers", {})) or 1
        self.in_flight = 2 * workers

    def submit_file(self, path: Path, name: str, out: Path, options: ApplyOptions):
        return self.client.submit(
            _file_task, self.digest, self.bundle, str(path), name, str(out), options,
            pure=False, retries=TASK_RETRIES,
        )

    def mapper_factory(self, frame, statistics, labels: bool, proba: bool):
        """A window mapper for :func:`seg.tiling.apply_tiled` that predicts windows on workers."""

        def map_windows(windows: Sequence[Window]) -> Iterator[TiledResult]:
            from distributed import as_completed

            pending = iter(windows)
            finished = as_completed()
            window_of: dict[str, Window] = {}

            def submit_next() -> None:
                window = next(pending, None)
                if window is None:
                    return
                raw = np.ascontiguousarray(frame[window.read])
                [raw_future] = self.client.scatter([raw], hash=False)
                future = self.client.submit(
                    _window_task, self.digest, self.bundle, raw_future, statistics,
                    window.inner, labels, proba, pure=False, retries=TASK_RETRIES,
                )
                window_of[future.key] = window
                finished.add(future)

            # A bounded number of windows in flight: the client holds only a few at a time.
            for _ in range(self.in_flight):
                submit_next()
            for future in finished:
                out_labels, out_proba = future.result()
                window = window_of.pop(future.key)
                future.release()
                submit_next()
                yield TiledResult(window, out_labels, out_proba)

        return map_windows


def _run_on_dask(client, model, paths, names, out, options, progress) -> list[ImageOutcome]:
    from distributed import as_completed

    runner = _DaskRunner(client, model)
    outcomes: list[ImageOutcome | None] = [None] * len(paths)
    futures = {}
    tiled_jobs = []
    n_features = model.feature_settings.n_features(model.n_channels)
    for index, (path, name) in enumerate(zip(paths, names)):
        shape = _peek_shape(path)
        big = shape is not None and (
            options.tiling == "always"
            or (options.tiling == "auto" and shape[1] * shape[2] * n_features * 4
                > options.tile_above_bytes)
        )
        if big:
            tiled_jobs.append(index)
        else:
            futures[runner.submit_file(path, name, out, options)] = index
    done = 0

    def record(index: int, outcome: ImageOutcome) -> None:
        nonlocal done
        outcomes[index] = outcome
        done += 1
        if progress is not None:
            progress(done, len(paths), outcome)

    # Frames that need tiling are split into windows here; the workers predict the windows
    # while they also work through the whole-image tasks submitted above.
    for index in tiled_jobs:
        record(index, apply_file(model, paths[index], names[index], out, options,
                                 mapper_factory=runner.mapper_factory))
    for future in as_completed(list(futures)):
        index = futures[future]
        try:
            outcome = future.result()
        except SegError as exc:
            outcome = ImageOutcome(names[index], display_name(paths[index]), _one_line(exc))
        except Exception as exc:  # noqa: BLE001 - a worker died too often / lost; keep going
            outcome = ImageOutcome(
                names[index], display_name(paths[index]),
                f"failed on the cluster ({type(exc).__name__}: {_one_line(exc)})",
            )
        record(index, outcome)
    return [o for o in outcomes if o is not None]


class dask_client:  # noqa: N801 - used like a function in a with-statement
    """Context manager giving a ``distributed.Client`` (or None) for a batch.

    ``dask_client(scheduler="tcp://host:8786")`` connects to an existing cluster;
    ``dask_client(workers=N)`` starts a local cluster of N worker processes (1 thread each) on
    the loopback interface; neither gives None (run in this process). Clusters started here are
    closed on exit.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None) -> None:
        if scheduler and workers:
            raise BatchError("give either a scheduler address or a number of workers, not both")
        if workers is not None and workers < 1:
            raise BatchError(f"number of workers {workers} must be at least 1")
        self.scheduler = scheduler
        self.workers = workers
        self.client = None
        self.cluster = None

    def __enter__(self):
        if not self.scheduler and not self.workers:
            return None
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise BatchError(
                "Dask is not installed: pip install 'dask[distributed]' to use workers"
            ) from None
        try:
            if self.scheduler:
                self.client = Client(self.scheduler, timeout="10s")
            else:
                with warnings.catch_warnings():
                    # the scheduler's HTTP endpoint moves to a free port when 8787 is taken
                    warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
                    self.cluster = LocalCluster(
                        n_workers=self.workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None,
                    )
                self.client = Client(self.cluster)
        except (OSError, TimeoutError, ValueError) as exc:  # unreachable, timed out, bad address
            self.__exit__(None, None, None)
            where = self.scheduler or "a local cluster"
            raise BatchError(
                f"cannot connect to the Dask scheduler at {where}: {_one_line(exc)}; "
                "check the address and that the scheduler is running"
            ) from None
        return self.client

    def __exit__(self, *exc_info) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
