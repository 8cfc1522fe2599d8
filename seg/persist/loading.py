""":func:`load_model`: a path, bytes or file object -> a validated :class:`~seg.model.Model`.

Reads at most ``max_bytes``, then runs the checks in order (container, ``model.json``, arrays)
and builds the model through the validating constructors, whose refusals become
:class:`~seg.errors.ModelFileError`. Nothing is unpickled and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from seg.errors import ModelFileError, SegError
from seg.features import FeatureSettings
from seg.features.volume import VolumeSettings
from seg.files import FileTooLargeError, read_limited
from seg.forest import Forest, ForestSettings
from seg.images import Normalization
from seg.model import Model
from seg.persist.archive import checked_members, open_archive, read_member, refuse_non_zip
from seg.persist.arrays import read_array
from seg.persist.manifest import checked_array_declarations, match_members, parse_manifest
from seg.persist.schema import DEFAULT_MAX_BYTES, MANIFEST_NAME, member_name


def load_model(source: str | os.PathLike | bytes | BinaryIO, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Model:
    """Load a ``.segmodel`` bundle safely; nothing is unpickled and nothing is written.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        A path to the bundle, its bytes (e.g. an upload), or an open binary file.
    max_bytes : int, keyword-only
        Largest accepted file size and declared uncompressed total, in bytes.

    Returns
    -------
    Model

    Raises
    ------
    ModelFileError
        If the file is missing, unreadable or refused (see the module docstring for the rules).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return _load_bytes(_read_path(path, max_bytes), max_bytes)
        except ModelFileError as exc:
            raise ModelFileError(f"{path.name}: {exc}") from exc
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _load_bytes(bytes(source), max_bytes)
    if hasattr(source, "read"):
        return _load_bytes(_read_limited(source, max_bytes), max_bytes)
    raise TypeError(f"load_model expects a path, bytes or a binary file, not {type(source).__name__}")


def _read_path(path: Path, max_bytes: int) -> bytes:
    try:
        return read_limited(path, max_bytes)
    except FileTooLargeError as exc:
        raise _too_big(exc.size, max_bytes, at_least=exc.at_least) from exc
    except FileNotFoundError as exc:
        raise ModelFileError(f"No model file at {str(path)!r}. Check the path.") from exc
    except OSError as exc:
        raise ModelFileError(f"Could not read the model file {str(path)!r}: {exc.strerror or exc}.") from exc


def _read_limited(handle: BinaryIO, max_bytes: int) -> bytes:
    data = handle.read(max_bytes + 1)
    if not isinstance(data, (bytes, bytearray)):
        raise ModelFileError("The model source did not return bytes; open the file in binary mode ('rb').")
    if len(data) > max_bytes:
        raise _too_big(len(data), max_bytes, at_least=True)
    return bytes(data)


def _too_big(size: int, max_bytes: int, *, at_least: bool = False) -> ModelFileError:
    more = "more than " if at_least else ""
    return ModelFileError(
        f"The model file is {more}{size:,} bytes, above the limit of {max_bytes:,} bytes. "
        "If you trust this file, load it with a larger max_bytes."
    )


def _load_bytes(data: bytes, max_bytes: int) -> Model:
    if len(data) > max_bytes:
        raise _too_big(len(data), max_bytes)
    refuse_non_zip(data)
    with open_archive(data) as archive:
        infos = checked_members(archive, max_bytes)
        manifest = parse_manifest(read_member(archive, infos[MANIFEST_NAME]))
        declared = checked_array_declarations(manifest["arrays"], max_bytes)
        match_members(declared, infos)
        arrays = {
            name: read_array(archive, infos[member_name(name)], name, dtype, shape)
            for name, (dtype, shape) in declared.items()
        }
    return _build_model(manifest, arrays)


def _build_model(manifest: dict, arrays: dict[str, np.ndarray]) -> Model:
    feature_settings = _decode("feature_settings", FeatureSettings.from_dict, manifest["feature_settings"])
    normalization = _decode("normalization", Normalization.from_dict, manifest["normalization"])
    forest_settings = _decode("forest_settings", ForestSettings.from_dict, manifest["forest_settings"])
    forest = _decode("forest arrays", Forest.from_arrays, arrays)
    forest.check_within(forest_settings)
    names, colors = manifest["class_names"], [c.lower() for c in manifest["class_colors"]]
    n_channels = manifest["n_channels"]
    if not len(names) == len(colors) == forest.n_classes:
        raise ModelFileError(
            f"The model bundle lists {len(names)} class names and {len(colors)} colours, but its forest "
            f"has {forest.n_classes} classes; the file was altered."
        )
    volume = _decode("volume settings", VolumeSettings.from_dict, manifest["volume"]) if "volume" in manifest else None
    count = feature_settings.n_features if volume is None else (lambda c: volume.n_features(feature_settings, c))
    n_features = _decode("feature_settings", count, n_channels)
    if n_features != forest.n_features:
        raise ModelFileError(
            f"The model bundle's feature settings give {n_features} features for {n_channels} channel(s), "
            f"but its forest uses {forest.n_features}; the file was altered."
        )
    fields = dict(
        forest=forest,
        feature_settings=feature_settings,
        normalization=normalization,
        class_names=tuple(names),
        class_colors=tuple(colors),
        n_channels=n_channels,
        forest_settings=forest_settings,
        training=manifest["training"],
        versions=manifest["versions"],
        volume=volume,
    )
    return _decode("model fields", lambda kwargs: Model(**kwargs), fields)


def _decode(what: str, function: Callable[[Any], Any], value: Any) -> Any:
    """Run a validating constructor on untrusted values; its refusals become ModelFileError."""
    try:
        return function(value)
    except ModelFileError:
        raise
    except (SegError, TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ModelFileError(
            f"Invalid {what} in the model bundle ({exc}); the file was altered or made by an incompatible seg."
        ) from exc
