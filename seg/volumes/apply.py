"""Apply a volume model to volume files: blocks locally or on a Dask cluster, outputs, measurements.

For each input (TIFF stack or NIfTI, read by :func:`seg.read_volume`) the volume is normalised
with whole-volume statistics and cut into blocks (:func:`seg.volumes.model.plan_blocks`); every
block is predicted from its context (the block grown by the features' margin), here or on Dask
workers, and the results are pasted into the output: identical to the unblocked prediction.

Files written for an input ``brain.nii.gz`` (stem ``brain``), each under a temporary name and
renamed into place:

- ``brain_mask.tif`` — labels 1..K, an ImageJ stack with the voxel size (Fiji reads it);
- ``brain_mask.nii.gz`` — the same labels with the input's affine (NIfTI inputs only);
- ``brain_probabilities.tif`` — float32, ImageJ ZCYX (optional);
- ``volume_measurements.csv`` — per input and class: voxels, volume (µm³ / mm³), fraction,
  3-D objects and their mean and largest volumes;
- ``volume_objects.csv`` — per input, class and 3-D object: voxels, volume, centroid, bbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg.errors import SegError
from seg.files import atomic_write, display_name, safe_stem, unique_stems
from seg.images.volume import read_volume, volume_nifti_bytes, volume_tiff_bytes
from seg.measure import rows_to_csv
from seg.volumes.measure import measure_volume, volume_objects
from seg.volumes.model import DEFAULT_BLOCK_BYTES, predict_volume

__all__ = ["VolumeOptions", "VolumeOutcome", "apply_volume_file", "run_volumes", "MEASUREMENTS_FILE", "OBJECTS_FILE"]

MEASUREMENTS_FILE = "volume_measurements.csv"
OBJECTS_FILE = "volume_objects.csv"


@dataclass(frozen=True)
class VolumeOptions:
    """What to write, and how to read and cut the volumes."""

    masks: bool = True
    probabilities: bool = False
    stack: str = "auto"
    spacing: tuple[float, float, float] | None = None
    unit: str | None = None
    block_bytes: int = DEFAULT_BLOCK_BYTES
    max_voxels: int = 100_000_000


@dataclass
class VolumeOutcome:
    """What happened to one input volume."""

    name: str
    source: str
    error: str | None = None
    shape: tuple[int, ...] = ()
    blocks: int = 0
    seconds: float = 0.0
    rows: list[dict] = field(default_factory=list)
    object_rows: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def apply_volume_file(
    model, path: str | Path, name: str, out_dir: str | Path, options: VolumeOptions, client: Any = None
) -> VolumeOutcome:
    """Read one volume, predict it in blocks, measure it and write its files into ``out_dir``."""
    start = time.perf_counter()
    outcome = VolumeOutcome(name=name, source=display_name(path))
    try:
        volume = read_volume(
            path, stack=options.stack, spacing=options.spacing, unit=options.unit, max_voxels=options.max_voxels
        )
        outcome.shape = volume.shape

        def count(done: int, total: int) -> None:
            outcome.blocks = total

        labels = predict_volume(model, volume, budget=options.block_bytes, client=client, progress=count)
        out = Path(out_dir)
        files: dict[str, bytes] = {}
        if options.masks:
            files[f"{name}_mask.tif"] = volume_tiff_bytes(labels, volume.spacing, volume.unit)
            if volume.affine is not None:
                files[f"{name}_mask.nii.gz"] = volume_nifti_bytes(labels, volume)
        if options.probabilities:
            proba = predict_volume(model, volume, proba=True, budget=options.block_bytes, client=client)
            files[f"{name}_probabilities.tif"] = volume_tiff_bytes(proba, volume.spacing, volume.unit)
        for file_name, data in files.items():
            atomic_write(out / file_name, data)
        outcome.files = list(files)
        source = {"image": outcome.source}
        outcome.rows = [
            {**source, **row} for row in measure_volume(labels, model.class_names, volume.spacing, volume.unit)
        ]
        outcome.object_rows = [
            {**source, **row} for row in volume_objects(labels, model.class_names, volume.spacing, volume.unit)
        ]
    except SegError as exc:
        outcome.error = " ".join(str(exc).split())
    outcome.seconds = time.perf_counter() - start
    return outcome


def run_volumes(
    model,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    options: VolumeOptions,
    *,
    client: Any = None,
    progress: Callable[[int, int, VolumeOutcome], None] | None = None,
) -> list[VolumeOutcome]:
    """Apply a volume model to every input (one after the other; blocks on ``client`` if given)
    and write the two CSV files of measurements."""
    names = unique_stems([safe_stem(p, fallback="volume") for p in paths])
    outcomes = []
    for done, (path, name) in enumerate(zip(paths, names), start=1):
        outcome = apply_volume_file(model, path, name, out_dir, options, client)
        outcomes.append(outcome)
        if progress is not None:
            progress(done, len(paths), outcome)
    out = Path(out_dir)
    rows = [row for o in outcomes for row in o.rows]
    objects = [row for o in outcomes for row in o.object_rows]
    atomic_write(out / MEASUREMENTS_FILE, rows_to_csv(rows).encode("utf-8"))
    atomic_write(out / OBJECTS_FILE, rows_to_csv(objects).encode("utf-8"))
    return outcomes
