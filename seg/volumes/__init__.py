"""Volumes (3-D images): train, predict block by block, measure in physical units.

>>> volume = seg.read_volume("stack.tif")                      # Volume: (Z, Y, X, C) + voxel size
>>> model = seg.train(volume, labels, dims=3)                  # labels (Z, Y, X), 0 = unlabelled
>>> mask = model.predict(volume)                               # (Z, Y, X) labels 1..K

Modules
-------
``model``    train_volume, predict_volume (blocks with the features' margin, here or on Dask),
             normalisation with whole-volume statistics, 2-D/3-D refusals
``measure``  volume per class and 3-D objects in physical units (µm³, mm³)
``apply``    volume files -> mask TIFF (+ NIfTI with the input's affine), probabilities, CSVs
"""

from __future__ import annotations

from seg.volumes.apply import VolumeOptions, VolumeOutcome, apply_volume_file, run_volumes
from seg.volumes.measure import measure_volume, volume_objects, volume_unit, voxel_volume
from seg.volumes.model import (
    DEFAULT_BLOCK_BYTES,
    normalize_block,
    normalize_volume,
    plan_blocks,
    predict_volume,
    train_volume,
    volume_features,
    volume_input,
    volume_statistics,
)

__all__ = [
    "VolumeOptions",
    "VolumeOutcome",
    "apply_volume_file",
    "run_volumes",
    "measure_volume",
    "volume_objects",
    "volume_unit",
    "voxel_volume",
    "DEFAULT_BLOCK_BYTES",
    "train_volume",
    "predict_volume",
    "volume_features",
    "volume_input",
    "normalize_volume",
    "volume_statistics",
    "normalize_block",
    "plan_blocks",
]
