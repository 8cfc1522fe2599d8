"""The ``.segmodel`` bundle's fixed names, limits and allowed dtypes (schema versions 1 and 2).

Shared by writing and reading, with the small helpers both sides use: the member name of an
array, ISO 8601 time parsing, and short quotes of untrusted values for error messages. The
format itself is described in :mod:`seg.persist`.
"""

from __future__ import annotations

import re
from datetime import datetime

from seg.forest import MAX_CLASSES  # noqa: F401  (one class limit for training and loading)
from seg.images.frames import MAX_CHANNELS  # noqa: F401  (one channel limit for images, features and loading)

BUNDLE_SUFFIX = ".segmodel"
SCHEMA_VERSION = 2
"""Newest bundle schema this seg reads and writes. Schema 2 adds the ``volume`` key of volume
models (voxel size, feature mode); 2-D models are still written as schema 1, so older seg
versions keep loading them, and refuse a volume model as 'made by a newer version'."""
IMAGE_SCHEMA_VERSION = 1
FORMAT_NAME = "seg-model"
DEFAULT_MAX_BYTES = 200_000_000

MANIFEST_NAME = "model.json"
ARRAY_DIR = "arrays/"
MAX_MANIFEST_BYTES = 1_000_000
MAX_MEMBERS = 256
# A seg bundle's directory entry is ~46 bytes + a name of at most 75 + a ZIP64 extra field;
# 1 MiB leaves room for any seg bundle and bounds zipfile's Python walk over it (~20 ms).
MAX_CENTRAL_DIRECTORY_BYTES = 1 << 20
# Genuine forest arrays compress a few times at most; zeros compress ~1000:1. The ratio is
# only judged on members big enough to matter.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 << 20
MAX_ARRAY_NDIM = 8
MAX_NAME_CHARS = 200

ALLOWED_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
)
MANIFEST_KEYS = (
    "format",
    "schema_version",
    "created",
    "feature_settings",
    "normalization",
    "forest_settings",
    "class_names",
    "class_colors",
    "n_channels",
    "training",
    "versions",
    "arrays",
)
VOLUME_KEY = "volume"


def manifest_keys(version: int) -> tuple[str, ...]:
    """The keys a manifest of schema ``version`` has."""
    return MANIFEST_KEYS + ((VOLUME_KEY,) if version >= 2 else ())


ARRAY_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
ARRAY_MEMBER_PATTERN = re.compile(r"arrays/([A-Za-z_][A-Za-z0-9_]{0,63})\.npy")
COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")


def member_name(array_name: str) -> str:
    return f"{ARRAY_DIR}{array_name}.npy"


def parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def shorten_names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(name[:80]) for name in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"
