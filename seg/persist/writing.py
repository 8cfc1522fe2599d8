"""Writing bundles: :func:`model_to_bytes`, :func:`save_model` (atomic) and :func:`export_joblib`.

Bytes are reproducible for the same model (fixed member times); a member that would look like
a zip bomb to the loader is stored instead of deflated. Files are written under a temporary
name and renamed into place, so a failed save never leaves a half-written bundle.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from seg.errors import ModelFileError
from seg.files import atomic_write
from seg.model import Model
from seg.persist.schema import (
    ALLOWED_DTYPES,
    ARRAY_DIR,
    ARRAY_NAME_PATTERN,
    FORMAT_NAME,
    IMAGE_SCHEMA_VERSION,
    MANIFEST_NAME,
    MAX_ARRAY_NDIM,
    MAX_COMPRESSION_RATIO,
    RATIO_CHECK_MIN_BYTES,
    SCHEMA_VERSION,
    VOLUME_KEY,
    parse_time,
)

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # reproducible bytes for the same model


def model_to_bytes(model: Model) -> bytes:
    """Serialise a model as ``.segmodel`` bundle bytes (see the module docstring).

    Parameters
    ----------
    model : Model
        A trained model.

    Returns
    -------
    bytes
        A ZIP archive that :func:`load_model` accepts.
    """
    arrays = {name: _array_for_bundle(name, value) for name, value in model.forest.to_arrays().items()}
    manifest = _manifest(model, arrays)
    text = json.dumps(manifest, indent=1, allow_nan=False, default=json_default)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _write_member(archive, MANIFEST_NAME, text.encode("utf-8"))
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.save(npy, array, allow_pickle=False)
            _write_member(archive, f"{ARRAY_DIR}{name}.npy", npy.getvalue())
    return buffer.getvalue()


def save_model(model: Model, path: str | os.PathLike) -> None:
    """Save a model to ``path`` as a ``.segmodel`` bundle, atomically.

    The bundle is written to a temporary file in the same directory and moved over ``path``
    only once complete, so ``path`` is never left half-written. ``path`` is used as given
    (no suffix is added; :data:`BUNDLE_SUFFIX` is the conventional one).

    Raises
    ------
    ModelFileError
        If the file cannot be written (missing directory, no permission, disk full).
    """
    _write_atomically(Path(path), model_to_bytes(model))


def export_joblib(model: Model, path: str | os.PathLike) -> None:
    """Write the model as a joblib pickle, for use in your own trusted notebooks only.

    .. warning::
       A pickle runs arbitrary code when it is loaded. Only ``joblib.load`` a file that you
       made yourself. seg, its app and its command line never load pickles; share models
       with others as ``.segmodel`` bundles (:func:`save_model`).

    Raises
    ------
    ModelFileError
        If the file cannot be written.
    """
    import joblib  # only needed for this trusted export

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    _write_atomically(Path(path), buffer.getvalue())


def _array_for_bundle(name: str, value: Any) -> np.ndarray:
    # Forest.to_arrays is our own code: a bad array here is a bug, not a user error.
    if not isinstance(name, str) or not ARRAY_NAME_PATTERN.fullmatch(name):
        raise TypeError(f"Forest array name {name!r} is not a valid bundle array name")
    array = np.asarray(value)
    if array.dtype.name not in ALLOWED_DTYPES or array.ndim > MAX_ARRAY_NDIM:
        raise TypeError(
            f"Forest array {name!r} has dtype {array.dtype} / ndim {array.ndim}, "
            f"which a bundle cannot hold (allowed: {', '.join(ALLOWED_DTYPES)})"
        )
    # Not np.ascontiguousarray: it turns 0-d arrays (e.g. a scalar count) into 1-d ones.
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)


def _manifest(model: Model, arrays: dict[str, np.ndarray]) -> dict:
    manifest = {
        "format": FORMAT_NAME,
        "schema_version": IMAGE_SCHEMA_VERSION if model.volume is None else SCHEMA_VERSION,
        "created": _created(model),
        "feature_settings": model.feature_settings.to_dict(),
        "normalization": model.normalization.to_dict(),
        "forest_settings": model.forest_settings.to_dict(),
        "class_names": list(model.class_names),
        "class_colors": list(model.class_colors),
        "n_channels": int(model.n_channels),
        "training": model.training,
        "versions": model.versions,
        "arrays": {name: {"dtype": a.dtype.name, "shape": list(a.shape)} for name, a in arrays.items()},
    }
    if model.volume is not None:
        manifest[VOLUME_KEY] = model.volume.to_dict()
    return manifest


def _created(model: Model) -> str:
    """The model's creation time: the one recorded at training if any, else now."""
    recorded = model.training.get("created") if isinstance(model.training, dict) else None
    if isinstance(recorded, str) and parse_time(recorded):
        return recorded
    return datetime.now(UTC).isoformat(timespec="seconds")


def json_default(value: Any) -> Any:
    # Training summaries often hold numpy counts; JSON has no numpy types.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} value {value!r} in the model metadata is not JSON serialisable")


def _write_member(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    if len(data) > RATIO_CHECK_MIN_BYTES and len(zlib.compress(data, 6)) * MAX_COMPRESSION_RATIO < len(data):
        # Would look like a zip bomb to the loader; store it instead (rare: near-constant data).
        info.compress_type = zipfile.ZIP_STORED
    archive.writestr(info, data)


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise ModelFileError(
            f"Could not write the model file {str(path)!r}: {exc.strerror or exc}. "
            "Choose a folder that exists and that you can write to, with enough free space."
        ) from exc
