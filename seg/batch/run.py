"""Run many images (in process or on Dask) and pack their results: CSV, zip, thumbnails."""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seg.batch.apply import apply_file
from seg.batch.dask_runner import run_on_dask
from seg.batch.files import check_output_dir
from seg.batch.outcomes import ApplyOptions, BatchReport, ImageOutcome, ImageResult
from seg.files import PARTIAL_SUFFIX, atomic_write, unique_stems

if TYPE_CHECKING:
    from seg.model import Model

MEASUREMENTS_FILE = "measurements.csv"
OBJECTS_FILE = "objects.csv"


def measurements_csv(outcomes: Iterable[ImageOutcome]) -> str:
    """CSV text of the measurement rows of all successful outcomes.

    The header is always :data:`seg.measure.BATCH_COLUMNS`, with rows or without.
    """
    from seg.measure import BATCH_COLUMNS, rows_to_csv

    rows = [row for outcome in outcomes if outcome.ok for row in outcome.rows]
    return rows_to_csv(rows, columns=BATCH_COLUMNS)


def objects_csv(model: Model, outcomes: Iterable[ImageOutcome], options: ApplyOptions) -> str:
    """CSV text of the object rows of all successful outcomes (``options.objects``' class):
    ``image, frame, object``, then the measurements; the same header with or without objects."""
    from seg.objects import object_columns
    from seg.objects import objects_csv as to_csv

    columns = object_columns(model.n_channels, probability=options.probabilities)
    return to_csv([row for outcome in outcomes if outcome.ok for row in outcome.object_rows], columns)


def check_objects_class(model: Model, options: ApplyOptions) -> None:
    """Refuse ``options.objects`` beyond the model's classes before any image is read."""
    if options.objects is not None and options.objects > model.n_classes:
        from seg.batch.outcomes import BatchError

        raise BatchError(
            f"objects class {options.objects} does not exist: the model has "
            f"{model.n_classes} classes ({', '.join(model.class_names)}), numbered 1..{model.n_classes}"
        )


def results_zip(
    results: Sequence[ImageResult], *, csv_text: str | None = None, objects_text: str | None = None
) -> bytes:
    """A zip of every successful result's output files plus ``measurements.csv`` (and
    ``objects.csv`` when ``objects_text`` is given).

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
        if objects_text is not None:
            archive.writestr(OBJECTS_FILE, objects_text)
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
    """Apply a model to many files, write their outputs and ``measurements.csv`` (and
    ``objects.csv`` with ``options.objects``).

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
    check_objects_class(model, options)
    out = check_output_dir(out_dir)
    paths = [Path(p) for p in paths]
    names = unique_stems(paths)
    start = time.perf_counter()
    if client is None:
        outcomes = _run_in_process(model, paths, names, out, options, progress)
    else:
        outcomes = run_on_dask(client, model, paths, names, out, options, progress)
    atomic_write(out / MEASUREMENTS_FILE, measurements_csv(outcomes).encode("utf-8"))
    if options.objects is not None:
        atomic_write(out / OBJECTS_FILE, objects_csv(model, outcomes, options).encode("utf-8"))
    _remove_leftovers(out, names)
    return BatchReport(outcomes, time.perf_counter() - start, out)


def _remove_leftovers(out: Path, names: Sequence[str]) -> None:
    """Delete temporary files of this batch's outputs left by a worker killed while writing."""
    prefixes = tuple(f".{name}_" for name in names)
    for entry in os.scandir(out):
        if entry.name.endswith(PARTIAL_SUFFIX) and entry.name.startswith(prefixes):
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
