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
``command``  the volume options and steps of ``python -m seg apply`` / ``train``
"""

from __future__ import annotations

import importlib

# Lazy: ``python -m seg --help`` imports seg.volumes.command, which must not pull in numba.
_LAZY = {
    "VolumeOptions": "seg.volumes.apply",
    "VolumeOutcome": "seg.volumes.apply",
    "apply_volume_file": "seg.volumes.apply",
    "run_volumes": "seg.volumes.apply",
    "measure_volume": "seg.volumes.measure",
    "volume_objects": "seg.volumes.measure",
    "volume_unit": "seg.volumes.measure",
    "voxel_volume": "seg.volumes.measure",
    "DEFAULT_BLOCK_BYTES": "seg.volumes.model",
    "train_volume": "seg.volumes.model",
    "predict_volume": "seg.volumes.model",
    "predict_volume_with_probabilities": "seg.volumes.model",
    "volume_features": "seg.volumes.model",
    "volume_input": "seg.volumes.model",
    "normalize_volume": "seg.volumes.model",
    "volume_statistics": "seg.volumes.model",
    "normalize_block": "seg.volumes.model",
    "plan_blocks": "seg.volumes.model",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seg.volumes' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
