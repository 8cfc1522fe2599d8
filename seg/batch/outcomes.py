"""What a batch is asked to do and what came of it.

:class:`ApplyOptions` goes in (which outputs, when to tile, size limits); :class:`ImageOutcome`
(a small, picklable summary of one image), :class:`ImageResult` (the same with arrays and encoded
files, for in-memory use) and :class:`BatchReport` (all outcomes with totals) come out.
:class:`BatchError` is raised when a batch cannot run at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seg.errors import SegError
from seg.tiling import DEFAULT_TILE

__all__ = ["TILE_ABOVE_BYTES", "BatchError", "ApplyOptions", "ImageOutcome", "ImageResult", "BatchReport"]

# Frames whose float32 feature stack would exceed this are predicted in tiles (1 GiB: a 2.3k x 2.3k
# grey frame with ~50 features); tiles of 1024 px then need ~0.3 GB each.
TILE_ABOVE_BYTES: int = 1 << 30


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
    objects : int or None
        A class 1..K: also find its objects (:func:`seg.objects.segment_objects`), write
        ``NAME_objects.tif`` (instance labels) and one ``objects.csv`` for the run.
    """

    masks: bool = True
    probabilities: bool = False
    overlays: bool = False
    tile: int = DEFAULT_TILE
    tiling: str = "auto"
    tile_above_bytes: int = TILE_ABOVE_BYTES
    max_pixels: int = 100_000_000
    overlay_alpha: float = 0.5
    objects: int | None = None

    def __post_init__(self) -> None:
        if self.tiling not in ("auto", "always", "never"):
            raise BatchError(f"tiling {self.tiling!r} is unknown: use 'auto', 'always' or 'never'")
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise BatchError(f"overlay opacity {self.overlay_alpha} must be between 0 and 1")
        if self.max_pixels < 1:
            raise BatchError(f"max_pixels {self.max_pixels} must be a positive number of pixels")
        if self.objects is not None and (
            isinstance(self.objects, bool) or not isinstance(self.objects, int) or self.objects < 1
        ):
            raise BatchError(f"objects {self.objects!r} must be a class number 1..K (or None for no objects)")


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
    object_rows : list of dict
        With ``ApplyOptions.objects``: one row per object (``image``, ``frame``, ``object``, ...).
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
    object_rows: list[dict] = field(default_factory=list)
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
