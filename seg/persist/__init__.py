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

Modules
-------
``schema``    the bundle's fixed names, limits and allowed dtypes
``writing``   :func:`model_to_bytes`, :func:`save_model` (atomic), :func:`export_joblib`
``loading``   :func:`load_model`: read within ``max_bytes``, run the checks, build the Model
``archive``   the ZIP container: sniffing (pickles, non-ZIP), member checks, bounded reads
``manifest``  ``model.json``: strict JSON, schema version, keys, types, array declarations
``arrays``    ``arrays/<name>.npy``: header checked against the declaration, then loaded
``summary``   :func:`describe_model` for a "model info" panel

Every public name is importable from ``seg.persist`` itself. Patch a name in the module that
uses it, not here.
"""

from __future__ import annotations

# Re-exports: callers import these from seg.persist as they did before it was split.
from seg.persist.archive import PICKLE_MESSAGE
from seg.persist.loading import load_model
from seg.persist.schema import (
    ALLOWED_DTYPES,
    ARRAY_DIR,
    BUNDLE_SUFFIX,
    DEFAULT_MAX_BYTES,
    FORMAT_NAME,
    MANIFEST_KEYS,
    MANIFEST_NAME,
    MAX_ARRAY_NDIM,
    MAX_CENTRAL_DIRECTORY_BYTES,
    MAX_CHANNELS,
    MAX_CLASSES,
    MAX_COMPRESSION_RATIO,
    MAX_MANIFEST_BYTES,
    MAX_MEMBERS,
    MAX_NAME_CHARS,
    RATIO_CHECK_MIN_BYTES,
    SCHEMA_VERSION,
)
from seg.persist.summary import describe_model
from seg.persist.writing import export_joblib, model_to_bytes, save_model

__all__ = [
    "BUNDLE_SUFFIX",
    "SCHEMA_VERSION",
    "DEFAULT_MAX_BYTES",
    "model_to_bytes",
    "save_model",
    "load_model",
    "export_joblib",
    "describe_model",
    # the bundle's fixed names and limits
    "PICKLE_MESSAGE",
    "ALLOWED_DTYPES",
    "ARRAY_DIR",
    "FORMAT_NAME",
    "MANIFEST_KEYS",
    "MANIFEST_NAME",
    "MAX_ARRAY_NDIM",
    "MAX_CENTRAL_DIRECTORY_BYTES",
    "MAX_CHANNELS",
    "MAX_CLASSES",
    "MAX_COMPRESSION_RATIO",
    "MAX_MANIFEST_BYTES",
    "MAX_MEMBERS",
    "MAX_NAME_CHARS",
    "RATIO_CHECK_MIN_BYTES",
]
