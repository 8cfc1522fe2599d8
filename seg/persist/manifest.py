"""``model.json``: parsed strictly and checked against the schema before anything is built.

Duplicate keys, NaN/Infinity and numbers that overflow to infinity (``1e400``), text that is not
encodable (lone surrogates such as ``"\\ud800"``), missing or unknown keys, the wrong format, a newer or unknown
schema version, wrong field types and foreign array declarations (names, dtypes, shapes, total
size) are refused; the declared arrays must match the archive's members exactly.
"""

from __future__ import annotations

import json
import math
import zipfile
from typing import Any

import numpy as np

from seg.errors import ModelFileError, check_keys, describe_value
from seg.persist.schema import (
    ALLOWED_DTYPES,
    ARRAY_NAME_PATTERN,
    COLOR_PATTERN,
    FORMAT_NAME,
    MANIFEST_NAME,
    MAX_ARRAY_NDIM,
    MAX_CHANNELS,
    MAX_CLASSES,
    MAX_NAME_CHARS,
    SCHEMA_VERSION,
    VOLUME_KEY,
    manifest_keys,
    member_name,
    parse_time,
    shorten_names,
)


def parse_manifest(raw: bytes) -> dict:
    try:
        manifest = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
        # A JSON escape can spell a lone surrogate ("\ud800"), which no file, CSV or terminal
        # can encode: refuse it here, not when the model is saved or its classes are printed.
        json.dumps(manifest, ensure_ascii=False).encode("utf-8")
    except ModelFileError:
        raise
    except UnicodeEncodeError as exc:
        raise ModelFileError(
            f"{MANIFEST_NAME} in the model bundle holds text that is not valid Unicode "
            f"({exc.reason} at {exc.object[exc.start : exc.end]!r}); the file was altered "
            "or damaged. Save the model again from seg."
        ) from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(
            f"{MANIFEST_NAME} in the model bundle is not valid UTF-8 JSON ({exc}); "
            "the file is damaged or was not made by seg."
        ) from exc
    if not isinstance(manifest, dict):
        raise ModelFileError(
            f"{MANIFEST_NAME} must hold a JSON object, not {type(manifest).__name__}; this is not a seg model bundle."
        )
    if manifest.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{MANIFEST_NAME} declares format {describe_value(manifest.get('format'))}, "
            f"not {FORMAT_NAME!r}; this is not a seg model bundle."
        )
    _check_schema_version(manifest.get("schema_version"))
    keys = manifest_keys(manifest["schema_version"])
    check_keys(
        manifest,
        keys,
        what=f"{MANIFEST_NAME} (schema {manifest['schema_version']})",
        error=ModelFileError,
        hint="The file was altered or made by an incompatible program.",
    )
    _check_manifest_types(manifest)
    return manifest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        raise ValueError(f"duplicate key(s) {sorted({k for k in keys if keys.count(k) > 1})[:5]}")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf, which json.dumps cannot write back
        raise ModelFileError(
            f"{MANIFEST_NAME} in the model bundle holds the number {text[:40]}, which is "
            "beyond the float range; the file was altered. Save the model again from seg."
        )
    return value


def _check_schema_version(version: Any) -> None:
    if type(version) is not int:  # bool is an int subclass; true is not a version
        raise ModelFileError(
            f"{MANIFEST_NAME} has schema_version {describe_value(version)}, not an integer; "
            "the file is damaged or was not made by seg."
        )
    if version > SCHEMA_VERSION:
        raise ModelFileError(
            f"This model was made by a newer version of seg (bundle schema {version}; this seg reads "
            f"schema {SCHEMA_VERSION}). Upgrade seg to load it."
        )
    if version not in (1, SCHEMA_VERSION):
        raise ModelFileError(
            f"Unknown bundle schema_version {version} (this seg reads schema "
            f"{SCHEMA_VERSION}); the file is damaged or was not made by seg."
        )


def _check_manifest_types(manifest: dict) -> None:
    expected = {
        "created": str,
        "feature_settings": dict,
        "normalization": dict,
        "forest_settings": dict,
        "class_names": list,
        "class_colors": list,
        "n_channels": int,
        "training": dict,
        "versions": dict,
        "arrays": dict,
    }
    if VOLUME_KEY in manifest:
        expected[VOLUME_KEY] = dict
    for key, kind in expected.items():
        value = manifest[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ModelFileError(
                f"{MANIFEST_NAME} field {key!r} should be a JSON {_json_kind(kind)}, "
                f"not {describe_value(value)}; the file was altered."
            )
    if parse_time(manifest["created"]) is None:
        raise ModelFileError(
            f"{MANIFEST_NAME} field 'created' is {describe_value(manifest['created'])}, "
            "not an ISO 8601 time; the file was altered."
        )
    if not 1 <= manifest["n_channels"] <= MAX_CHANNELS:
        raise ModelFileError(
            f"{MANIFEST_NAME} field 'n_channels' is {manifest['n_channels']}, "
            f"outside 1..{MAX_CHANNELS}; the file was altered."
        )
    for key in ("class_names", "class_colors"):
        if not 1 <= len(manifest[key]) <= MAX_CLASSES:
            raise ModelFileError(
                f"{MANIFEST_NAME} field {key!r} has {len(manifest[key])} entries; "
                f"expected 1..{MAX_CLASSES}. The file was altered."
            )
        _check_strings(key, manifest[key])
    bad = [c for c in manifest["class_colors"] if not COLOR_PATTERN.fullmatch(c)]
    if bad:
        raise ModelFileError(
            f"{MANIFEST_NAME} class_colors {shorten_names(bad)} are not '#rrggbb' colours; the file was altered."
        )
    _check_strings("versions", list(manifest["versions"].values()))


def _check_strings(key: str, values: list) -> None:
    bad = [v for v in values if not isinstance(v, str) or len(v) > MAX_NAME_CHARS]
    if bad:
        raise ModelFileError(
            f"{MANIFEST_NAME} field {key!r} holds {describe_value(bad[0])}, not a string of "
            f"at most {MAX_NAME_CHARS} characters; the file was altered."
        )


def checked_array_declarations(arrays: dict, max_bytes: int) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Array name -> (dtype, shape) from model.json's ``arrays``, refusing foreign dtypes."""
    declared = {}
    total = 0
    for name, spec in arrays.items():
        if not ARRAY_NAME_PATTERN.fullmatch(name):
            raise ModelFileError(
                f"{MANIFEST_NAME} declares an array named {describe_value(name)}; "
                "names are letters, digits and '_'. The file was altered."
            )
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape"}:
            raise ModelFileError(
                f"{MANIFEST_NAME} array {name!r} must be {{'dtype': ..., 'shape': [...]}}, not {describe_value(spec)}."
            )
        dtype, shape = spec["dtype"], spec["shape"]
        if dtype not in ALLOWED_DTYPES:
            raise ModelFileError(
                f"{MANIFEST_NAME} array {name!r} has dtype {describe_value(dtype)}; bundles hold only "
                f"{', '.join(ALLOWED_DTYPES)}. The file was altered or is not from seg."
            )
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_ARRAY_NDIM
            or not all(type(n) is int and n >= 0 for n in shape)
        ):
            raise ModelFileError(
                f"{MANIFEST_NAME} array {name!r} has shape {describe_value(shape)}; expected a list "
                f"of at most {MAX_ARRAY_NDIM} non-negative integers."
            )
        dt = np.dtype(dtype).newbyteorder("<")
        total += math.prod(shape) * dt.itemsize
        if total > max_bytes:
            raise ModelFileError(
                f"The arrays declared in {MANIFEST_NAME} exceed {max_bytes:,} bytes. "
                "If you trust this file, load it with a larger max_bytes."
            )
        declared[name] = (dt, tuple(shape))
    return declared


def match_members(declared: dict, infos: dict[str, zipfile.ZipInfo]) -> None:
    members = {name for name in infos if name != MANIFEST_NAME}
    expected = {member_name(name) for name in declared}
    if members != expected:
        raise ModelFileError(
            f"The model bundle's arrays do not match {MANIFEST_NAME}: "
            f"missing {shorten_names(sorted(expected - members))}, "
            f"undeclared {shorten_names(sorted(members - expected))}. The file was altered."
        )


def _json_kind(kind: type) -> str:
    return {str: "string", dict: "object", list: "array", int: "integer"}[kind]
