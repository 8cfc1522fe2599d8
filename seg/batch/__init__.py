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
- ``measurements.csv`` — one row per image, frame and class (:mod:`seg.measure`);
- with ``ApplyOptions.objects``: ``cells_objects.tif`` (instance labels of that class, one page
  per frame) and one ``objects.csv`` per run (image, frame, object, measurements; :mod:`seg.objects`).

Every file is written under a temporary name in the output folder and renamed into place
(``os.replace``), so a crash, a killed worker or a full disk never leaves a half-written file
under a final name. Existing files with the same names are replaced.

Modules, one concept each: :mod:`seg.batch.outcomes` (options, outcomes, reports,
:class:`BatchError`), :mod:`seg.batch.files` (inputs, output folder; safe names and atomic writes are :mod:`seg.files`),
:mod:`seg.batch.reading` (reading inputs, memory-mapping big TIFFs), :mod:`seg.batch.apply` (one
image: predict, measure, encode), :mod:`seg.batch.dask_runner` (running on Dask) and
:mod:`seg.batch.run` (many images; CSV, zip, thumbnails). This package re-exports their public
names; patch a name in the module that uses it, not here.
"""

from __future__ import annotations

from seg.batch.apply import (
    MapperFactory,
    WindowMapper,
    apply_file,
    apply_source,
    encode_outputs,
    find_objects,
    measurement_rows,
    needs_tiling,
    predict_image,
)
from seg.batch.dask_runner import TASK_RETRIES, dask_client
from seg.batch.files import IMAGE_SUFFIXES, check_output_dir, collect_inputs
from seg.batch.outcomes import TILE_ABOVE_BYTES, ApplyOptions, BatchError, BatchReport, ImageOutcome, ImageResult
from seg.batch.reading import MEMMAP_ABOVE_BYTES
from seg.batch.run import (
    MEASUREMENTS_FILE,
    OBJECTS_FILE,
    ProgressCallback,
    check_objects_class,
    measurements_csv,
    objects_csv,
    overlay_thumbnail,
    results_zip,
    run_batch,
)
from seg.files import atomic_write, display_name, safe_stem, unique_stems

__all__ = [
    "ApplyOptions",
    "BatchError",
    "BatchReport",
    "IMAGE_SUFFIXES",
    "ImageOutcome",
    "ImageResult",
    "MEASUREMENTS_FILE",
    "OBJECTS_FILE",
    "MEMMAP_ABOVE_BYTES",
    "MapperFactory",
    "ProgressCallback",
    "TASK_RETRIES",
    "TILE_ABOVE_BYTES",
    "WindowMapper",
    "apply_file",
    "apply_source",
    "atomic_write",
    "check_objects_class",
    "check_output_dir",
    "collect_inputs",
    "dask_client",
    "display_name",
    "encode_outputs",
    "find_objects",
    "measurement_rows",
    "measurements_csv",
    "objects_csv",
    "needs_tiling",
    "overlay_thumbnail",
    "predict_image",
    "results_zip",
    "run_batch",
    "safe_stem",
    "unique_stems",
]
