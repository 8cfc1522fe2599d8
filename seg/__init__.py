"""seg: interactive trainable image segmentation, the UI-free engine.

Scribbles on an image become labelled pixels; per-pixel features (Gaussian smoothing, edges,
texture at several scales) of those pixels train a random forest, which then labels every pixel.

>>> import seg
>>> image = seg.read_image("cells.tif")              # (T, H, W, C)
>>> model = seg.train(image, labels, class_names=["background", "cell"])
>>> mask = model.predict(image[0])                    # (H, W) labels 1..K
>>> seg.save_model(model, "cells.segmodel")

Public names are loaded lazily so that ``import seg`` (and ``python -m seg --help``) stays fast;
``seg/__init__.pyi`` declares them for IDEs and type checkers.
"""

from __future__ import annotations

import importlib

from seg.errors import (
    AnnotationError,
    ImageError,
    ImageTooLargeError,
    ModelFileError,
    ModelMismatchError,
    SegError,
    SettingsError,
    TrainingError,
    VolumeHeaderError,
    VoxelSizeError,
)

__version__ = "0.1.0"

_LAZY = {
    "read_image": "seg.images",
    "as_frames": "seg.images",
    "Normalization": "seg.images",
    "normalize": "seg.images",
    "FeatureSettings": "seg.features",
    "PRESETS": "seg.features",
    "DEFAULT_PRESET": "seg.features",
    "compute_features": "seg.features",
    "Forest": "seg.forest",
    "ForestSettings": "seg.forest",
    "Model": "seg.model",
    "train": "seg.model",
    "uncertainty": "seg.model",
    "clean_labels": "seg.model",
    "save_model": "seg.persist",
    "load_model": "seg.persist",
    "model_to_bytes": "seg.persist",
    "export_joblib": "seg.persist",
    "Annotations": "seg.strokes",
    "Stroke": "seg.strokes",
    "parse_canvas": "seg.strokes",
    "rasterize": "seg.strokes",
    "describe_model": "seg.persist",
    "measure_classes": ("seg.measure", "measure"),
    "measure_stack": "seg.measure",
    "segment_objects": "seg.objects",
    "Volume": "seg.images.volume",
    "read_volume": "seg.images.volume",
    "measure_objects": "seg.objects",
    "AccuracyReport": "seg.evaluate",
    "estimate_accuracy": "seg.evaluate",
    "suggest_settings": "seg.evaluate",
    "label_next": "seg.evaluate",
}

# Every public name: the errors imported above, the version and the lazy names. seg/__init__.pyi
# declares the same names with their types (tests/unit/test_packaging.py keeps the two equal).
__all__ = [
    "AnnotationError",
    "ImageError",
    "ImageTooLargeError",
    "ModelFileError",
    "ModelMismatchError",
    "SegError",
    "SettingsError",
    "TrainingError",
    "VolumeHeaderError",
    "VoxelSizeError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'seg' has no attribute {name!r}")
    # The per-class measurement function is exported as measure_classes: the name `measure`
    # belongs to the submodule seg.measure, which replaces any package attribute of that name.
    module, attribute = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
