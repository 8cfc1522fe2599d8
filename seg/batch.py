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

The parts live in their own modules and are re-exported here, so ``seg.batch`` stays the one
name to import: :mod:`seg.outcomes` (options, outcomes, reports, :class:`BatchError`),
:mod:`seg.files` (safe names, inputs, output folder, atomic writes), :mod:`seg.reading`
(reading inputs, memory-mapping big TIFFs), :mod:`seg.apply` (one image: predict, measure,
encode) and :mod:`seg.dask_runner` (running on Dask). This module runs batches and packs
their results (CSV, zip, thumbnails). Patch a name in the module that uses it, not here.
"""

from __future__ import annotations

import csv
import io
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# Re-exported: callers import all of these from seg.batch.
from seg.apply import (  # noqa: F401
    MapperFactory,
    WindowMapper,
    apply_file,
    apply_source,
    encode_outputs,
    measurement_rows,
    needs_tiling,
    predict_image,
)
from seg.dask_runner import _WORKER_MODELS, TASK_RETRIES, _run_on_dask, dask_client  # noqa: F401
from seg.files import (  # noqa: F401
    IMAGE_SUFFIXES,
    atomic_write,
    check_output_dir,
    collect_inputs,
    display_name,
    safe_stem,
    unique_stems,
)
from seg.outcomes import (  # noqa: F401
    TILE_ABOVE_BYTES,
    ApplyOptions,
    BatchError,
    BatchReport,
    ImageOutcome,
    ImageResult,
)
from seg.reading import MEMMAP_ABOVE_BYTES, _open_lazily, _read  # noqa: F401

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

MEASUREMENTS_FILE = "measurements.csv"


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

