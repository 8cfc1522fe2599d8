"""Apply a model to an OME-Zarr image or a big TIFF out of core and write an OME-Zarr store.

:func:`apply_to_store` reads the image lazily (:func:`seg.io.open_lazy_image`), predicts it
block by block (:mod:`seg.batch.blockwise`), and in one pass of the graph writes level 0 of the
labels (and the probabilities) into a new store and counts the pixels of every class per block;
then it writes the label pyramid and the metadata (class names, colours, pixel counts and areas)
and renames the finished store into place (:class:`seg.io.LabelStoreWriter`). Memory stays
bounded by the blocks being computed, whatever the image size.

The same graph runs on dask's threaded scheduler (the default), its process scheduler, or a
``distributed`` cluster (pass the client); with a cluster, the workers read the image and write
the store themselves, so both must be visible to them under the same paths (a shared
filesystem; always true for a ``LocalCluster``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seg.batch.blockwise import class_counts, predict_blockwise
from seg.errors import SegError
from seg.tiling import DEFAULT_TILE

if TYPE_CHECKING:
    from seg.batch.outcomes import ImageResult
    from seg.model import Model

__all__ = [
    "STORE_CSV_COLUMNS",
    "StoreOutcome",
    "apply_to_store",
    "store_measurement_rows",
    "store_targets",
    "measurements_path",
    "measurements_csv_text",
    "apply_zipped_store",
    "mask_store_zip",
]

STORE_CSV_COLUMNS = ("image", "frame", "class", "label", "pixels", "area_fraction", "area", "area_unit")


@dataclass
class StoreOutcome:
    """What :func:`apply_to_store` wrote.

    Attributes
    ----------
    source : str
        The input's name (for messages).
    out : Path
        The finished store.
    shape : tuple of int
        The image's shape along ``axes``.
    axes : str
        The image's axes, e.g. ``"cyx"``.
    counts : (T, K + 1) int64 array
        Pixels per frame and label value (column 0: unlabelled, always 0 for a forest).
    pixel_area : float
        Physical area of one pixel (1.0 when the image gives no scale).
    area_unit : str
        ``"<unit>^2"`` or ``"pixel"`` when the image names no unit.
    seconds : float
    levels : int
        Levels of the label pyramid.
    """

    source: str
    out: Path
    shape: tuple[int, ...]
    axes: str
    counts: np.ndarray
    pixel_area: float
    area_unit: str
    seconds: float = 0.0
    levels: int = 1
    class_names: list[str] = field(default_factory=list)


def store_measurement_rows(outcome: StoreOutcome) -> list[dict]:
    """One row per frame and class: pixels, area fraction and physical area (see
    :data:`STORE_CSV_COLUMNS`)."""
    rows = []
    for frame, counts in enumerate(outcome.counts):
        total = max(int(counts.sum()), 1)
        for index, name in enumerate(outcome.class_names):
            pixels = int(counts[index + 1])
            rows.append(
                {
                    "image": outcome.source,
                    "frame": frame,
                    "class": name,
                    "label": index + 1,
                    "pixels": pixels,
                    "area_fraction": round(pixels / total, 6),
                    "area": pixels * outcome.pixel_area,
                    "area_unit": outcome.area_unit,
                }
            )
    return rows


def _compute(tasks: Sequence[Any], scheduler: Any, progress: bool) -> tuple:
    import dask

    if scheduler is not None and hasattr(scheduler, "compute"):  # a distributed.Client
        futures = scheduler.compute(list(tasks))
        if progress:
            from distributed import progress as show_progress

            show_progress(futures)
            sys.stderr.write("\n")
        return tuple(scheduler.gather(futures))
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            return dask.compute(*tasks, scheduler=scheduler)
    return dask.compute(*tasks, scheduler=scheduler)


def apply_to_store(
    model: Model,
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    level: int = 0,
    tile: int = DEFAULT_TILE,
    probabilities: bool = False,
    max_pixels: int = 1_000_000_000,
    scheduler: Any = None,
    progress: bool = False,
) -> StoreOutcome:
    """Predict an OME-Zarr image or TIFF blockwise and write the labels as an OME-Zarr store.

    Parameters
    ----------
    model : Model
    source : str or path
        OME-Zarr image (folder, ``.zip``, URL) or TIFF; see :func:`seg.io.open_lazy_image`.
    out : str or path
        The store to write (``.zarr``); replaced if it exists, atomically (see
        :mod:`seg.io.labels_store`). ``out`` equal to ``source`` (a local OME-Zarr folder) writes
        the labels into the image's own store, as ``labels/segmentation`` beside the image.
    level : int
        Resolution level of the source to segment (0 = full resolution).
    tile : int
        Prediction block side in pixels.
    probabilities : bool
        Also write the class probabilities (float32) as the store's root image.
    max_pixels : int
        Refuse sources with more pixels (frames x height x width).
    scheduler : None, str or distributed.Client
        None: dask's threaded scheduler; ``"processes"``; or a client.
    progress : bool
        Show dask's progress bar on stderr.

    Returns
    -------
    StoreOutcome

    Raises
    ------
    OmeZarrError, ImageTooLargeError, ModelMismatchError
        Bad input; nothing is left under ``out`` (an existing store there is kept).
    """
    import dask
    import dask.array as da

    from seg.files import display_name
    from seg.forest import labels_dtype
    from seg.io import LabelStoreWriter, open_lazy_image

    start = time.perf_counter()
    image = open_lazy_image(source, level=level, max_pixels=max_pixels)
    n_classes = len(model.class_names)
    with dask.config.set(scheduler=scheduler) if isinstance(scheduler, str) else nullcontext():
        labels, proba = predict_blockwise(model, image.data, tile=tile, probabilities=probabilities)
    inside = image.version is not None and Path(out).resolve() == Path(source).resolve()
    writer = LabelStoreWriter(
        out,
        version=image.version or "0.4",
        axes=image.label_axes,
        shape=image.label_shape,
        scale=image.label_scale,
        dtype=labels_dtype(n_classes),
        n_classes=n_classes if probabilities else None,
        inside_image=inside,
    )
    try:
        target = writer.label_array
        stored = [da.store(labels.reshape(image.label_shape).rechunk(target.chunks), target, lock=False, compute=False)]
        if proba is not None and writer.proba is not None:
            ordered = da.moveaxis(proba.reshape((*image.label_shape, n_classes)), -1, writer.proba_channel_axis)
            stored.append(da.store(ordered.rechunk(writer.proba.chunks), writer.proba, lock=False, compute=False))
        _, counts = _compute([stored, class_counts(labels, n_classes)], scheduler, progress)
        writer.write_pyramid(scheduler=scheduler if isinstance(scheduler, str) else None)
        area, unit = image.pixel_area
        area_unit = f"{unit}^2" if unit else "pixel"
        totals = np.asarray(counts).sum(axis=0)
        properties = [
            {"pixels": int(totals[k + 1]), "area": float(totals[k + 1] * area), "area_unit": area_unit}
            for k in range(n_classes)
        ]
        path = writer.finish(model.class_names, model.class_colors, properties=properties)
    except BaseException:
        writer.abort()
        raise
    return StoreOutcome(
        source=display_name(source),
        out=path,
        shape=image.shape,
        axes="".join(axis.name for axis in image.axes),
        counts=np.asarray(counts),
        pixel_area=area,
        area_unit=area_unit,
        seconds=time.perf_counter() - start,
        levels=len(writer.levels),
        class_names=list(model.class_names),
    )


def store_targets(inputs: Sequence[str | os.PathLike], out: str | os.PathLike) -> list[Path]:
    """Output store of each input: ``out`` itself for one input when it ends in ``.zarr``,
    otherwise ``out/<stem>.ome.zarr`` per input (stems made safe and unique)."""
    from seg.files import unique_stems

    out = Path(out)
    if len(inputs) == 1 and out.suffix.lower() == ".zarr":
        return [out]
    names = [os.fspath(p).rstrip("/\\") for p in inputs]
    stems = unique_stems(n[: -len(".zip")] if n.lower().endswith(".zip") else n for n in names)
    stems = [s[: -len(".ome")] if s.lower().endswith(".ome") and len(s) > 4 else s for s in stems]
    return [out / f"{stem}.ome.zarr" for stem in stems]


def measurements_path(targets: Sequence[Path], out: str | os.PathLike) -> Path:
    """Where the measurements CSV of a run goes: ``<store stem>_measurements.csv`` beside a single
    store, else ``measurements.csv`` in the output folder."""
    out = Path(out)
    if len(targets) == 1 and targets[0] == out:
        return out.with_name(f"{out.name[: -len(out.suffix)]}_measurements.csv")
    return out / "measurements.csv"


def measurements_csv_text(outcomes: Sequence[StoreOutcome]) -> str:
    """CSV of :func:`store_measurement_rows` of every outcome (header even when empty)."""
    from seg.measure import rows_to_csv

    rows = [row for outcome in outcomes for row in store_measurement_rows(outcome)]
    return rows_to_csv(rows, columns=STORE_CSV_COLUMNS)


def apply_zipped_store(
    model: Model,
    data: bytes,
    name: str,
    *,
    source_name: str | None = None,
    tile: int = DEFAULT_TILE,
    max_pixels: int = 100_000_000,
) -> ImageResult:
    """Segment an uploaded zipped OME-Zarr image; the labels come back as a zipped store.

    The upload is checked (:func:`seg.io.check_zip_store`), written to a temporary folder and
    read from there chunk by chunk; the label store is written beside it, zipped, and the folder
    removed. Bad input becomes ``outcome.error`` (as :func:`seg.batch.apply_source` does).

    Returns
    -------
    ImageResult
        ``outputs`` is ``{"<name>_labels.ome.zarr.zip": bytes}``; ``outcome.rows`` the
        per-frame, per-class pixel counts and areas (:func:`store_measurement_rows`).
    """
    import tempfile

    from seg.batch.outcomes import ImageOutcome, ImageResult
    from seg.files import display_name
    from seg.io import zip_store

    outcome = ImageOutcome(name=name, source=display_name(source_name or name))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seg-omezarr-") as folder:
        upload = Path(folder) / "input.ome.zarr.zip"
        upload.write_bytes(data)
        try:
            result = apply_to_store(
                model, upload, Path(folder) / "labels.ome.zarr", tile=tile, max_pixels=max_pixels, scheduler="threads"
            )
        except SegError as exc:
            outcome.error = " ".join(str(exc).split())
            return ImageResult(outcome)
        result.source = outcome.source
        archive = zip_store(result.out)
    assert archive is not None
    stem = name.removesuffix(".zarr").removesuffix(".ome") or name  # "big.ome.zarr" -> "big"
    file_name = f"{stem}_labels.ome.zarr.zip"
    outcome.shape = (int(result.counts.shape[0]), *result.shape[-2:])
    outcome.rows = [
        {key: row[key] for key in STORE_CSV_COLUMNS} | {"image": name} for row in store_measurement_rows(result)
    ]
    outcome.files = [file_name]
    outcome.seconds = time.perf_counter() - start
    return ImageResult(outcome, outputs={file_name: archive})


def mask_store_zip(model: Model, labels: np.ndarray) -> bytes:
    """A label stack ``(T, H, W)`` as a zipped OME-Zarr 0.4 label store (frames on a ``z`` axis
    when T > 1; class names, colours and pixel counts from the model), for download."""
    import tempfile

    from seg.io import Axis, LabelStoreWriter, zip_store

    axes = (Axis("y"), Axis("x")) if labels.shape[0] == 1 else (Axis("z"), Axis("y"), Axis("x"))
    data = labels[0] if labels.shape[0] == 1 else labels
    n_classes = len(model.class_names)
    counts = np.bincount(labels.ravel(), minlength=n_classes + 1)
    with tempfile.TemporaryDirectory(prefix="seg-mask-") as folder:
        writer = LabelStoreWriter(
            Path(folder) / "mask.ome.zarr",
            version="0.4",
            axes=axes,
            shape=data.shape,
            scale=(1.0,) * data.ndim,
            dtype=labels.dtype,
        )
        try:
            writer.label_array[...] = data
            writer.write_pyramid(scheduler="sync")
            path = writer.finish(
                model.class_names,
                model.class_colors,
                properties=[{"pixels": int(counts[k + 1])} for k in range(n_classes)],
            )
        except BaseException:
            writer.abort()
            raise
        archive = zip_store(path)
    assert archive is not None
    return archive
