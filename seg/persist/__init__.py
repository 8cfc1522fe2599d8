"""Safe saving and loading of trained models as ``.segmodel`` bundles.

A model file may come from a stranger, so loading one never unpickles anything and never
writes to disk: the bundle is a ZIP archive of one JSON document and plain ``.npy`` arrays,
read in memory and checked against an explicit schema before a :class:`~seg.model.Model` is
built from it.

Bundle format (schema version 1)
--------------------------------
A ``.segmodel`` file is a ZIP archive (members stored or deflated, not encrypted) that holds
exactly these members and nothing else:

``model.json``
    UTF-8 JSON object with exactly these keys::

        {
          "format": "seg-model",
          "schema_version": 1,
          "created": "2025-01-31T12:00:00+00:00",   # ISO 8601: training["created"], else save time
          "feature_settings": {...},                # FeatureSettings.to_dict()
          "normalization": {...},                   # Normalization.to_dict()
          "forest_settings": {...},                 # ForestSettings.to_dict()
          "class_names": ["membrane", "cell"],      # K strings; entry i is label i + 1
          "class_colors": ["#e69f00", "#56b4e9"],   # K lowercase "#rrggbb" strings
          "n_channels": 1,                          # image channels the model expects
          "training": {...},                        # free-form JSON summary of the training
          "versions": {"seg": "0.1.0", ...},        # library versions at training time
          "arrays": {"<name>": {"dtype": "float32", "shape": [N, ...]}, ...}
        }

    ``arrays`` declares every array of the compiled forest (``Forest.to_arrays()``; today
    ``feature, threshold, children_left, children_right, value, roots, n_features``).
    ``dtype`` is one of ``bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64,
    float32, float64`` and array names match ``[A-Za-z_][A-Za-z0-9_]{0,63}``.

``arrays/<name>.npy``
    One NumPy ``.npy`` file (format 1.0 or 2.0, little-endian) per declared array, whose
    dtype and shape must equal the declaration. Read with ``np.load(allow_pickle=False)``.

Loading refuses, with :class:`~seg.errors.ModelFileError` and a message saying what to do:
empty or tiny files; Python pickles (``.joblib``/``.pkl`` exports, also zlib/gzip/bz2/xz
compressed ones); anything that is not a ZIP archive; truncated or damaged archives (CRC
errors included); member names other than the above (path traversal, absolute paths,
directories, duplicates); encrypted members or other compression methods; a file or
declared uncompressed total above ``max_bytes`` (default 200 MB); ``model.json`` above
1 MB; members bigger than 1 MiB that claim a compression ratio above 100:1 (zip bombs);
JSON that is not an object, has duplicate, missing or unknown keys, the wrong ``format``
or types; a ``schema_version`` newer than this seg supports (upgrade seg) or unknown;
array dtypes outside the list above (object, structured, unicode, ...), shapes or sizes
that differ from the declaration; forest arrays that fail ``Forest.from_arrays``; class
names/colours whose count differs from the forest's classes; and a channel count for
which the feature settings would not produce the forest's number of features.

Every member is read through a bounded reader (at most its declared size + 1 byte), so a
header that lies about the size cannot make the loader inflate unbounded data.

:func:`export_joblib` writes a pickle for trusted notebook use; seg itself never loads one.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import math
import os
import re
import secrets
import zipfile
import zlib
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from seg.errors import ModelFileError, SegError
from seg.features import PRESETS, FeatureSettings
from seg.forest import Forest
from seg.images import Normalization
from seg.model import ForestSettings, Model

__all__ = [
    "BUNDLE_SUFFIX",
    "SCHEMA_VERSION",
    "DEFAULT_MAX_BYTES",
    "model_to_bytes",
    "save_model",
    "load_model",
    "export_joblib",
    "describe_model",
]

BUNDLE_SUFFIX = ".segmodel"
SCHEMA_VERSION = 1
FORMAT_NAME = "seg-model"
DEFAULT_MAX_BYTES = 200_000_000

MANIFEST_NAME = "model.json"
ARRAY_DIR = "arrays/"
MAX_MANIFEST_BYTES = 1_000_000
MAX_MEMBERS = 256
# Genuine forest arrays compress a few times at most; zeros compress ~1000:1. The ratio is
# only judged on members big enough to matter.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 << 20
MAX_ARRAY_NDIM = 8
MAX_CLASSES = 65_535
MAX_CHANNELS = 64
MAX_NAME_CHARS = 200

ALLOWED_DTYPES = (
    "bool", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "float32", "float64",
)
MANIFEST_KEYS = (
    "format", "schema_version", "created", "feature_settings", "normalization",
    "forest_settings", "class_names", "class_colors", "n_channels", "training",
    "versions", "arrays",
)

PICKLE_MESSAGE = (
    "This file is a Python pickle (e.g. a .joblib export); pickles can run code, so the app "
    "never loads them. Train the model here or export it as a .segmodel bundle."
)
_ARRAY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ARRAY_MEMBER = re.compile(r"arrays/([A-Za-z_][A-Za-z0-9_]{0,63})\.npy")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # reproducible bytes for the same model


# --------------------------------------------------------------------------- writing


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
    text = json.dumps(manifest, indent=1, allow_nan=False, default=_json_default)
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
    if not isinstance(name, str) or not _ARRAY_NAME.fullmatch(name):
        raise TypeError(f"Forest array name {name!r} is not a valid bundle array name")
    array = np.asarray(value)
    if array.dtype.name not in ALLOWED_DTYPES or array.ndim > MAX_ARRAY_NDIM:
        raise TypeError(f"Forest array {name!r} has dtype {array.dtype} / ndim {array.ndim}, "
                        f"which a bundle cannot hold (allowed: {', '.join(ALLOWED_DTYPES)})")
    # Not np.ascontiguousarray: it turns 0-d arrays (e.g. a scalar count) into 1-d ones.
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)


def _manifest(model: Model, arrays: dict[str, np.ndarray]) -> dict:
    return {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
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


def _created(model: Model) -> str:
    """The model's creation time: the one recorded at training if any, else now."""
    recorded = model.training.get("created") if isinstance(model.training, dict) else None
    if isinstance(recorded, str) and _parse_time(recorded):
        return recorded
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_default(value: Any) -> Any:
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
    # A random name opened with O_EXCL cannot collide with or follow anything already there;
    # mode 0o666 lets the umask decide the final permissions as for any ordinary file.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ModelFileError(
            f"Could not write the model file {str(path)!r}: {exc.strerror or exc}. "
            "Choose a folder that exists and that you can write to, with enough free space."
        ) from exc


# --------------------------------------------------------------------------- reading


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
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_big(size, max_bytes)
        with path.open("rb") as handle:
            return _read_limited(handle, max_bytes)
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
    _sniff(data)
    with _open_archive(data) as archive:
        infos = _checked_members(archive, max_bytes)
        manifest = _parse_manifest(_read_member(archive, infos[MANIFEST_NAME]))
        declared = _checked_array_declarations(manifest["arrays"], max_bytes)
        _match_members(declared, infos)
        arrays = {name: _read_array(archive, infos[_member_name(name)], name, dtype, shape)
                  for name, (dtype, shape) in declared.items()}
    return _build_model(manifest, arrays)


def _sniff(data: bytes) -> None:
    """Refuse empty files, pickles and other non-ZIP content by their first bytes."""
    if not data:
        raise ModelFileError("The model file is empty (0 bytes). Choose a .segmodel file saved by seg.")
    if len(data) < 4:
        raise ModelFileError(
            f"The model file is only {len(data)} byte(s) long, too short to be a .segmodel bundle. "
            "Choose a .segmodel file saved by seg."
        )
    if data[:1] == b"\x80" or _is_compressed_pickle(data):
        raise ModelFileError(PICKLE_MESSAGE)
    if data[:4] not in _ZIP_MAGIC:
        raise ModelFileError(
            f"This file is not a .segmodel bundle: a bundle is a ZIP archive, but this file starts "
            f"with {data[:8]!r}. Choose a .segmodel file saved by seg."
        )


def _is_compressed_pickle(data: bytes) -> bool:
    """True if ``data`` is a zlib/gzip/bz2/xz/lzma stream whose first byte is a pickle marker.

    joblib compresses pickles with these codecs. Only two bytes are inflated, so a
    compressed bomb costs nothing here.
    """
    decoders = []
    if data[0] == 0x78 and int.from_bytes(data[:2], "big") % 31 == 0:
        decoders.append(lambda: zlib.decompressobj(zlib.MAX_WBITS))
    if data[:2] == b"\x1f\x8b":
        decoders.append(lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))
    if data[:3] == b"BZh":
        decoders.append(bz2.BZ2Decompressor)
    if data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00":
        decoders.append(lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO))
    for make in decoders:
        try:
            head = make().decompress(data[:4096], max_length=2)
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
            continue
        if head[:1] == b"\x80":
            return True
    return False


def _open_archive(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # untrusted decoding: whatever zipfile throws means "damaged"
        raise _damaged(exc) from exc


def _damaged(exc: BaseException) -> ModelFileError:
    return ModelFileError(
        f"The model bundle is truncated or damaged ({type(exc).__name__}: {exc}). "
        "Download or copy the .segmodel file again, or save the model again from seg."
    )


def _checked_members(archive: zipfile.ZipFile, max_bytes: int) -> dict[str, zipfile.ZipInfo]:
    """Member name -> info, after refusing foreign names, duplicates and zip-bomb sizes."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"The model bundle has {len(infos)} members, more than any seg bundle "
                             f"({MAX_MEMBERS}); it was not made by seg.")
    names = [info.filename for info in infos]
    foreign = [info.orig_filename for info in infos if not _is_bundle_name(info)]
    if foreign:
        raise ModelFileError(
            f"The ZIP archive contains unexpected member(s) {_shorten(foreign)}; a .segmodel bundle "
            f"holds only {MANIFEST_NAME} and arrays/<name>.npy. It was not made by seg or was altered."
        )
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ModelFileError(f"The model bundle contains duplicate member(s) {_shorten(duplicates)}; "
                             "it was altered. Save the model again from seg.")
    if MANIFEST_NAME not in names:
        raise ModelFileError(f"The ZIP archive has no {MANIFEST_NAME}, so it is not a .segmodel bundle. "
                             "Choose a .segmodel file saved by seg.")
    total = 0
    for info in infos:
        _check_member_info(info, max_bytes)
        total += info.file_size
    if total > max_bytes:
        raise ModelFileError(
            f"The model bundle would unpack to {total:,} bytes, above the limit of {max_bytes:,} bytes. "
            "If you trust this file, load it with a larger max_bytes."
        )
    return {info.filename: info for info in infos}


def _is_bundle_name(info: zipfile.ZipInfo) -> bool:
    # zipfile cuts names at a NUL byte; compare the raw name too so nothing hides behind one.
    return all(name == MANIFEST_NAME or _ARRAY_MEMBER.fullmatch(name)
               for name in (info.filename, info.orig_filename))


def _check_member_info(info: zipfile.ZipInfo, max_bytes: int) -> None:
    name = info.filename
    if info.flag_bits & 0x1:
        raise ModelFileError(f"Member {name!r} of the model bundle is encrypted; seg bundles never are.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelFileError(f"Member {name!r} uses ZIP compression method {info.compress_type}; "
                             "seg bundles are stored or deflated only. Save the model again from seg.")
    limit = MAX_MANIFEST_BYTES if name == MANIFEST_NAME else max_bytes
    if info.file_size > limit:
        raise ModelFileError(f"Member {name!r} of the model bundle declares {info.file_size:,} bytes, "
                             f"above the limit of {limit:,} bytes.")
    if (info.file_size > RATIO_CHECK_MIN_BYTES
            and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)):
        raise ModelFileError(
            f"Member {name!r} of the model bundle claims a compression ratio of "
            f"{info.file_size / max(info.compress_size, 1):,.0f}:1 (limit {MAX_COMPRESSION_RATIO}:1); "
            "this looks like a zip bomb, so it is refused."
        )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Inflate one member in memory, never more than its declared size + 1 byte."""
    try:
        with archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
    except Exception as exc:  # untrusted decoding: bad CRC, bad header, overlap, zlib errors...
        raise _damaged(exc) from exc
    if len(data) != info.file_size:
        raise ModelFileError(
            f"Member {info.filename!r} of the model bundle holds {len(data):,} bytes where its header "
            f"declares {info.file_size:,}; the file is damaged or altered. Save the model again from seg."
        )
    return data


def _shorten(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(name[:80]) for name in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


# --------------------------------------------------------------------------- model.json


def _parse_manifest(raw: bytes) -> dict:
    try:
        manifest = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys,
                              parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{MANIFEST_NAME} in the model bundle is not valid UTF-8 JSON ({exc}); "
                             "the file is damaged or was not made by seg.") from exc
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{MANIFEST_NAME} must hold a JSON object, not {type(manifest).__name__}; "
                             "this is not a seg model bundle.")
    if manifest.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{MANIFEST_NAME} declares format {_short(manifest.get('format'))}, "
                             f"not {FORMAT_NAME!r}; this is not a seg model bundle.")
    _check_schema_version(manifest.get("schema_version"))
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    unknown = sorted(key for key in manifest if key not in MANIFEST_KEYS)
    if missing or unknown:
        raise ModelFileError(
            f"{MANIFEST_NAME} (schema {SCHEMA_VERSION}) has missing key(s) {missing} and unknown key(s) "
            f"{_shorten(unknown)}; the file was altered or made by an incompatible program."
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


def _check_schema_version(version: Any) -> None:
    if type(version) is not int:  # bool is an int subclass; true is not a version
        raise ModelFileError(f"{MANIFEST_NAME} has schema_version {_short(version)}, not an integer; "
                             "the file is damaged or was not made by seg.")
    if version > SCHEMA_VERSION:
        raise ModelFileError(
            f"This model was made by a newer version of seg (bundle schema {version}; this seg reads "
            f"schema {SCHEMA_VERSION}). Upgrade seg to load it."
        )
    if version != SCHEMA_VERSION:
        raise ModelFileError(f"Unknown bundle schema_version {version} (this seg reads schema "
                             f"{SCHEMA_VERSION}); the file is damaged or was not made by seg.")


def _check_manifest_types(manifest: dict) -> None:
    expected = {"created": str, "feature_settings": dict, "normalization": dict,
                "forest_settings": dict, "class_names": list, "class_colors": list,
                "n_channels": int, "training": dict, "versions": dict, "arrays": dict}
    for key, kind in expected.items():
        value = manifest[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ModelFileError(f"{MANIFEST_NAME} field {key!r} should be a JSON {_json_kind(kind)}, "
                                 f"not {_short(value)}; the file was altered.")
    if _parse_time(manifest["created"]) is None:
        raise ModelFileError(f"{MANIFEST_NAME} field 'created' is {_short(manifest['created'])}, "
                             "not an ISO 8601 time; the file was altered.")
    if not 1 <= manifest["n_channels"] <= MAX_CHANNELS:
        raise ModelFileError(f"{MANIFEST_NAME} field 'n_channels' is {manifest['n_channels']}, "
                             f"outside 1..{MAX_CHANNELS}; the file was altered.")
    for key in ("class_names", "class_colors"):
        if not 1 <= len(manifest[key]) <= MAX_CLASSES:
            raise ModelFileError(f"{MANIFEST_NAME} field {key!r} has {len(manifest[key])} entries; "
                                 f"expected 1..{MAX_CLASSES}. The file was altered.")
        _check_strings(key, manifest[key])
    bad = [c for c in manifest["class_colors"] if not _COLOR.fullmatch(c)]
    if bad:
        raise ModelFileError(f"{MANIFEST_NAME} class_colors {_shorten(bad)} are not '#rrggbb' colours; "
                             "the file was altered.")
    _check_strings("versions", list(manifest["versions"].values()))


def _check_strings(key: str, values: list) -> None:
    bad = [v for v in values if not isinstance(v, str) or len(v) > MAX_NAME_CHARS]
    if bad:
        raise ModelFileError(f"{MANIFEST_NAME} field {key!r} holds {_short(bad[0])}, not a string of "
                             f"at most {MAX_NAME_CHARS} characters; the file was altered.")


def _checked_array_declarations(arrays: dict, max_bytes: int) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Array name -> (dtype, shape) from model.json's ``arrays``, refusing foreign dtypes."""
    declared = {}
    total = 0
    for name, spec in arrays.items():
        if not _ARRAY_NAME.fullmatch(name):
            raise ModelFileError(f"{MANIFEST_NAME} declares an array named {_short(name)}; "
                                 "names are letters, digits and '_'. The file was altered.")
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape"}:
            raise ModelFileError(f"{MANIFEST_NAME} array {name!r} must be {{'dtype': ..., 'shape': [...]}}, "
                                 f"not {_short(spec)}.")
        dtype, shape = spec["dtype"], spec["shape"]
        if dtype not in ALLOWED_DTYPES:
            raise ModelFileError(f"{MANIFEST_NAME} array {name!r} has dtype {_short(dtype)}; bundles hold only "
                                 f"{', '.join(ALLOWED_DTYPES)}. The file was altered or is not from seg.")
        if (not isinstance(shape, list) or len(shape) > MAX_ARRAY_NDIM
                or not all(type(n) is int and n >= 0 for n in shape)):
            raise ModelFileError(f"{MANIFEST_NAME} array {name!r} has shape {_short(shape)}; expected a list "
                                 f"of at most {MAX_ARRAY_NDIM} non-negative integers.")
        dt = np.dtype(dtype).newbyteorder("<")
        total += math.prod(shape) * dt.itemsize
        if total > max_bytes:
            raise ModelFileError(f"The arrays declared in {MANIFEST_NAME} exceed {max_bytes:,} bytes. "
                                 "If you trust this file, load it with a larger max_bytes.")
        declared[name] = (dt, tuple(shape))
    return declared


def _member_name(array_name: str) -> str:
    return f"{ARRAY_DIR}{array_name}.npy"


def _match_members(declared: dict, infos: dict[str, zipfile.ZipInfo]) -> None:
    members = {name for name in infos if name != MANIFEST_NAME}
    expected = {_member_name(name) for name in declared}
    if members != expected:
        raise ModelFileError(
            f"The model bundle's arrays do not match {MANIFEST_NAME}: missing {_shorten(sorted(expected - members))}, "
            f"undeclared {_shorten(sorted(members - expected))}. The file was altered."
        )


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
                dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    raw = _read_member(archive, info)
    header_dtype, header_shape, data_offset = _npy_header(raw, name)
    if header_dtype != dtype or header_shape != shape:
        raise ModelFileError(
            f"Array {name!r} in the model bundle is {header_dtype} {header_shape}, but {MANIFEST_NAME} "
            f"declares {dtype} {shape}; the file was altered."
        )
    if len(raw) - data_offset != math.prod(shape) * dtype.itemsize:
        raise ModelFileError(f"Array {name!r} in the model bundle has {len(raw) - data_offset:,} data bytes "
                             f"for shape {shape} {dtype}; the file is truncated or altered.")
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # untrusted decoding
        raise ModelFileError(f"Array {name!r} in the model bundle cannot be read ({exc}).") from exc
    return array.astype(dtype.newbyteorder("="), copy=False)


def _npy_header(raw: bytes, name: str) -> tuple[np.dtype, tuple, int]:
    """(dtype, shape, data offset) of a .npy file, validated before any data is touched.

    Checking the header first matters: ``np.load`` on a file-like object allocates the
    declared shape before reading, so a tiny file could otherwise request huge memory.
    """
    handle = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # untrusted decoding: literal_eval and header parsing errors
        raise ModelFileError(f"Array {name!r} in the model bundle is not a valid .npy file ({exc}); "
                             "the file is damaged or altered.") from exc
    if dtype.name not in ALLOWED_DTYPES or dtype.fields is not None or dtype.byteorder == ">":
        raise ModelFileError(f"Array {name!r} in the model bundle has dtype {dtype!s:.80}; bundles hold only "
                             f"little-endian {', '.join(ALLOWED_DTYPES)}. The file is not from seg.")
    return dtype.newbyteorder("<"), tuple(shape), handle.tell()


# --------------------------------------------------------------------------- building


def _build_model(manifest: dict, arrays: dict[str, np.ndarray]) -> Model:
    feature_settings = _decode("feature_settings", FeatureSettings.from_dict, manifest["feature_settings"])
    normalization = _decode("normalization", Normalization.from_dict, manifest["normalization"])
    forest_settings = _decode("forest_settings", ForestSettings.from_dict, manifest["forest_settings"])
    forest = _decode("forest arrays", Forest.from_arrays, arrays)
    names, colors = manifest["class_names"], [c.lower() for c in manifest["class_colors"]]
    n_channels = manifest["n_channels"]
    if not len(names) == len(colors) == forest.n_classes:
        raise ModelFileError(
            f"The model bundle lists {len(names)} class names and {len(colors)} colours, but its forest "
            f"has {forest.n_classes} classes; the file was altered."
        )
    n_features = _decode("feature_settings", feature_settings.n_features, n_channels)
    if n_features != forest.n_features:
        raise ModelFileError(
            f"The model bundle's feature settings give {n_features} features for {n_channels} channel(s), "
            f"but its forest uses {forest.n_features}; the file was altered."
        )
    fields = dict(forest=forest, feature_settings=feature_settings, normalization=normalization,
                  class_names=tuple(names), class_colors=tuple(colors), n_channels=n_channels,
                  forest_settings=forest_settings, training=manifest["training"],
                  versions=manifest["versions"])
    return _decode("model fields", lambda kwargs: Model(**kwargs), fields)


def _decode(what: str, function: Callable[[Any], Any], value: Any) -> Any:
    """Run a validating constructor on untrusted values; its refusals become ModelFileError."""
    try:
        return function(value)
    except ModelFileError:
        raise
    except (SegError, TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ModelFileError(f"Invalid {what} in the model bundle ({exc}); "
                             "the file was altered or made by an incompatible seg.") from exc


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _json_kind(kind: type) -> str:
    return {str: "string", dict: "object", list: "array", int: "integer"}[kind]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- description


def describe_model(model: Model) -> dict:
    """A small JSON-friendly summary of a model for a "model info" panel.

    Returns
    -------
    dict
        ``classes`` (list of {"name", "color"}), ``n_channels``, ``feature_preset`` (a name from
        ``seg.features.PRESETS`` or ``"custom"``), ``feature_settings`` (dict), ``n_features``,
        ``trees``, ``created`` (ISO string or None) and ``versions``.
    """
    preset = next((name for name, s in PRESETS.items() if s == model.feature_settings), "custom")
    created = model.training.get("created") if isinstance(model.training, dict) else None
    return {
        "classes": [{"name": n, "color": c} for n, c in zip(model.class_names, model.class_colors)],
        "n_channels": int(model.n_channels),
        "feature_preset": preset,
        "feature_settings": model.feature_settings.to_dict(),
        "n_features": int(model.forest.n_features),
        "trees": int(model.forest_settings.n_estimators),
        "created": created if isinstance(created, str) else None,
        "versions": dict(model.versions),
    }
