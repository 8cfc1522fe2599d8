"""Model bundles: round trips, atomic saves, and refusal of every kind of hostile file."""

from __future__ import annotations

import io
import json
import pickle
import struct
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seg.errors import ModelFileError
from seg.features import FeatureSettings
from seg.forest import Forest, ForestSettings
from seg.model import Model, train
from seg.persist import (
    BUNDLE_SUFFIX,
    PICKLE_MESSAGE,
    describe_model,
    export_joblib,
    load_model,
    model_to_bytes,
    save_model,
    writing,
)
from seg.persist.writing import json_default

FEATURES = FeatureSettings(feature_set="basic", sigma_min=1.0, sigma_max=4.0)
FOREST = ForestSettings(n_estimators=4, max_depth=6, max_samples=None, class_weight=None, random_state=0, n_jobs=1)


# --------------------------------------------------------------------------- fixtures


def _image(channels: int = 1) -> np.ndarray:
    """(32, 32) or (32, 32, C) float32: dark left half, bright right half, a little noise."""
    rng = np.random.default_rng(0)
    image = np.zeros((32, 32), np.float32)
    image[:, 16:] = 1.0
    image = image + rng.normal(0, 0.1, image.shape).astype(np.float32)
    return image if channels == 1 else np.stack([image, 1 - image, image * 0.5][:channels], -1)


def _labels() -> np.ndarray:
    labels = np.zeros((32, 32), np.uint8)
    labels[4:8, 2:12] = 1
    labels[20:26, 20:30] = 2
    return labels


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return _image()


@pytest.fixture(scope="module")
def model(image) -> Model:
    return train(image, _labels(), FEATURES, ["background", "cell"], class_colors=["#e69f00", "#56b4e9"], forest=FOREST)


@pytest.fixture(scope="module")
def bundle(model) -> bytes:
    return model_to_bytes(model)


def _parts(data: bytes) -> tuple[dict, dict[str, bytes]]:
    """(manifest, {member name: bytes}) of one of our own, trusted bundles."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(members.pop("model.json")), members


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    """A ZIP archive with exactly these members (duplicates and odd names allowed)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names: that is the point
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members:
                archive.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _rebuild(
    bundle: bytes,
    *,
    manifest: dict | None = None,
    text: bytes | None = None,
    arrays: dict[str, bytes] | None = None,
    extra: list[tuple[str, bytes]] = (),
) -> bytes:
    """A bundle with model.json and/or members replaced, all CRCs valid (a deliberate edit)."""
    original, members = _parts(bundle)
    manifest_bytes = text if text is not None else json.dumps(manifest or original).encode()
    members.update(arrays or {})
    return _zip([("model.json", manifest_bytes), *members.items(), *extra])


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _raw_zip(entries: list[tuple[bytes, bytes, int, int, int]]) -> bytes:
    """Hand-made ZIP whose headers may lie: entries are (name, payload, method, crc, declared size)."""
    out, central = io.BytesIO(), []
    for name, payload, method, crc, size in entries:
        offset = out.tell()
        out.write(
            struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(payload), size, len(name), 0)
            + name
            + payload
        )
        central.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(payload),
                size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    directory = b"".join(central)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), out.tell(), 0)
    return out.getvalue() + directory + end


def _deflated_zeros(n_mib: int) -> bytes:
    """Raw deflate stream of n_mib MiB of zeros, built in milliseconds.

    After a full flush the compressor restarts from the same state, so one compressed MiB of
    zeros can simply be repeated.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * n_mib + compressor.flush()


class _OpensFile:
    """Unpickling this creates (truncates) a file: a stand-in for arbitrary code execution."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _refused(source, *fragments: str, **kwargs) -> str:
    with pytest.raises(ModelFileError) as info:
        load_model(source, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    return message


# --------------------------------------------------------------------------- round trips


def test_save_and_load_gives_identical_predictions_and_metadata(tmp_path, model, image):
    path = tmp_path / f"cells{BUNDLE_SUFFIX}"
    save_model(model, path)
    loaded = load_model(path)

    np.testing.assert_array_equal(loaded.predict(image), model.predict(image))
    np.testing.assert_array_equal(loaded.predict_proba(image), model.predict_proba(image))
    for field in (
        "feature_settings",
        "normalization",
        "forest_settings",
        "class_names",
        "class_colors",
        "n_channels",
        "versions",
    ):
        assert getattr(loaded, field) == getattr(model, field), field
    assert loaded.training == json.loads(json.dumps(model.training, default=json_default))
    original, reloaded = model.forest.to_arrays(), loaded.forest.to_arrays()
    assert original.keys() == reloaded.keys()
    for name in original:
        np.testing.assert_array_equal(reloaded[name], original[name])


def test_bytes_round_trip_accepts_bytes_bytearray_and_open_files(tmp_path, model, image, bundle):
    expected = model.predict(image)
    assert bundle[:4] == b"PK\x03\x04"
    for source in (bundle, bytearray(bundle), memoryview(bundle), io.BytesIO(bundle)):
        np.testing.assert_array_equal(load_model(source).predict(image), expected)


def test_bundle_bytes_are_stable_across_saves_and_reloads(tmp_path, model, bundle):
    """Same model, same bytes: bundles can be cached and compared by digest."""
    assert model_to_bytes(model) == bundle
    assert model_to_bytes(load_model(bundle)) == bundle
    save_model(model, tmp_path / "a.segmodel")
    assert (tmp_path / "a.segmodel").read_bytes() == bundle


def test_bundle_holds_exactly_model_json_and_one_npy_per_forest_array(model, bundle):
    manifest, members = _parts(bundle)
    names = set(model.forest.to_arrays())
    assert set(members) == {f"arrays/{name}.npy" for name in names}
    assert manifest["format"] == "seg-model" and manifest["schema_version"] == 1
    assert set(manifest["arrays"]) == names
    assert manifest["class_names"] == ["background", "cell"]


def test_rgb_model_round_trips(tmp_path):
    rgb = _image(3)
    model = train(rgb, _labels(), FEATURES, ["a", "b"], forest=FOREST)
    loaded = load_model(model_to_bytes(model))
    assert loaded.n_channels == 3
    np.testing.assert_array_equal(loaded.predict(rgb), model.predict(rgb))


def test_save_writes_exactly_the_path_given(tmp_path, model):
    path = tmp_path / "my model.bin"
    save_model(model, str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my model.bin"]
    assert load_model(path).class_names == model.class_names


def test_very_compressible_forest_arrays_still_load(monkeypatch, model, image):
    """A genuine but near-constant array must not be mistaken for a zip bomb on loading."""
    to_arrays, from_arrays = Forest.to_arrays, Forest.from_arrays
    monkeypatch.setattr(Forest, "to_arrays", lambda self: {**to_arrays(self), "padding": np.zeros(4 << 20, np.uint8)})
    monkeypatch.setattr(
        Forest,
        "from_arrays",
        classmethod(lambda cls, arrays: from_arrays({k: v for k, v in arrays.items() if k != "padding"})),
    )
    loaded = load_model(model_to_bytes(model))
    np.testing.assert_array_equal(loaded.predict(image), model.predict(image))


def test_loading_never_calls_pickle(monkeypatch, bundle, image, model):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading a bundle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    np.testing.assert_array_equal(load_model(bundle).predict(image), model.predict(image))


def test_describe_model_summarises_the_model(model):
    info = describe_model(model)
    assert info["classes"] == [{"name": "background", "color": "#e69f00"}, {"name": "cell", "color": "#56b4e9"}]
    assert info["n_channels"] == 1
    assert info["n_features"] == model.forest.n_features == FEATURES.n_features(1)
    assert info["trees"] == 4
    assert info["feature_preset"] == "custom"
    assert info["feature_settings"] == FEATURES.to_dict()
    json.dumps(info)  # the app shows it as JSON


# --------------------------------------------------------------------------- atomic save


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_save_leaves_the_old_file_untouched_and_no_temp_file(tmp_path, model, monkeypatch, failure):
    path = tmp_path / "cells.segmodel"
    path.write_bytes(b"previous model")

    def fail(fd):
        raise failure

    monkeypatch.setattr(writing.os, "fsync", fail)  # after the bytes are written, before the rename
    with pytest.raises(ModelFileError if isinstance(failure, OSError) else KeyboardInterrupt) as info:
        save_model(model, path)
    assert path.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["cells.segmodel"]
    if isinstance(failure, OSError):
        assert "No space left" in str(info.value) and "cells.segmodel" in str(info.value)


def test_failed_rename_leaves_no_temp_file(tmp_path, model, monkeypatch):
    def fail(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(writing.os, "replace", fail)
    with pytest.raises(ModelFileError, match="Permission denied"):
        save_model(model, tmp_path / "cells.segmodel")
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_folder_is_a_model_file_error(tmp_path, model):
    with pytest.raises(ModelFileError, match="folder that exists"):
        save_model(model, tmp_path / "missing" / "cells.segmodel")


# --------------------------------------------------------------------------- files that are not bundles


def test_missing_file_and_directory_are_refused(tmp_path):
    _refused(tmp_path / "nope.segmodel", "no model file", "nope.segmodel")
    _refused(tmp_path, "could not read")


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"", "empty"),
        (b"P", "1 byte"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "not a .segmodel bundle"),
        (b"PK\x03\x04" + bytes(40), "truncated or damaged"),
        (b'{"format": "seg-model"}', "not a .segmodel bundle"),
    ],
)
def test_non_bundles_are_refused(data, fragment):
    _refused(data, fragment)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_bundle_is_refused(bundle, keep):
    _refused(bundle[: int(len(bundle) * keep)], "truncated or damaged")


def test_corrupted_member_data_is_refused_by_its_checksum(bundle):
    data = bytearray(bundle)
    start = data.index(b"model.json") + len("model.json") + 5  # inside the deflated JSON
    data[start] ^= 0xFF
    with pytest.raises(ModelFileError):
        load_model(bytes(data))


def test_file_above_max_bytes_is_refused(tmp_path, bundle):
    path = tmp_path / "big.segmodel"
    path.write_bytes(bundle)
    _refused(path, "above the limit", "max_bytes", max_bytes=len(bundle) - 1)
    _refused(bundle, "above the limit", max_bytes=len(bundle) - 1)
    _refused(io.BytesIO(bundle), "above the limit", max_bytes=100)


def test_uncompressed_total_above_max_bytes_is_refused(bundle):
    padded = _edited(bundle, training={"note": "x" * 200_000})  # compresses to almost nothing
    _refused(padded, "unpack to", "max_bytes", max_bytes=len(padded) + 1000)


# --------------------------------------------------------------------------- pickles


def _payload(target) -> bytes:
    return pickle.dumps(_OpensFile(target), protocol=4)


def test_the_pickle_payload_is_live(tmp_path):
    """Guards the tests below: unpickling the payload really does create a file."""
    canary = tmp_path / "canary"
    pickle.loads(_payload(canary)).close()
    assert canary.exists()


@pytest.mark.parametrize("suffix", [BUNDLE_SUFFIX, ".joblib", ".pkl"])
def test_pickle_is_refused_and_never_run(tmp_path, suffix):
    target = tmp_path / "pwned"
    payload = _payload(target)
    assert _refused(payload) == PICKLE_MESSAGE
    path = tmp_path / f"model{suffix}"
    path.write_bytes(payload)
    assert PICKLE_MESSAGE in _refused(path, "model" + suffix)
    assert not target.exists()


@pytest.mark.parametrize("compress", [0, 3, "gzip", "bz2", "xz", "lzma"])
def test_joblib_files_are_refused_and_never_run(tmp_path, compress):
    import joblib  # a dependency (requirements.txt): a broken install fails here, never skips

    target = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump(_OpensFile(target), path, compress=compress)
    _refused(path, "pickle", ".segmodel bundle")
    _refused(path.read_bytes(), "pickle")
    assert not target.exists()


@pytest.mark.parametrize("protocol", [0, 1])
def test_text_pickles_are_called_pickles_and_never_run(tmp_path, protocol):
    target = tmp_path / "pwned"
    system_call = f"cos\nsystem\n(S'touch {target}'\ntR.".encode()  # hand-written protocol 0
    for payload in (
        system_call,
        pickle.dumps(_OpensFile(target), protocol=protocol),
        pickle.dumps(list(range(3000)), protocol=protocol),
    ):  # > the 4 KiB looked at
        assert _refused(payload) == PICKLE_MESSAGE
    assert not target.exists()


@pytest.mark.parametrize("text", [b"hello world.", b"a,b\n1,2\n.", b'{"classes": 2}', b"(not a pickle)."])
def test_other_text_is_not_a_bundle(text):
    _refused(text, "not a .segmodel bundle")


def test_pickle_inside_the_zip_is_refused(tmp_path, bundle):
    target = tmp_path / "pwned"
    _refused(_rebuild(bundle, extra=[("model.pkl", _payload(target))]), "unexpected member", "model.pkl")
    manifest, members = _parts(bundle)
    name = next(iter(manifest["arrays"]))
    evil = _npy(np.array([_OpensFile(target)], dtype=object), allow_pickle=True)
    _refused(_rebuild(bundle, arrays={f"arrays/{name}.npy": evil}), "dtype")
    manifest["arrays"][name] = {"dtype": "object", "shape": [1]}
    _refused(_rebuild(bundle, manifest=manifest, arrays={f"arrays/{name}.npy": evil}), "dtype")
    assert not target.exists()


def test_export_joblib_is_for_notebooks_and_refused_by_load_model(tmp_path, model, image):
    import joblib  # a dependency (requirements.txt): a broken install fails here, never skips

    path = tmp_path / "mine.joblib"
    export_joblib(model, path)
    mine = joblib.load(path)  # our own file, made just above: the trusted notebook case
    np.testing.assert_array_equal(mine.predict(image), model.predict(image))
    assert PICKLE_MESSAGE in _refused(path)


# --------------------------------------------------------------------------- zip structure


@pytest.mark.parametrize(
    "name",
    [
        "../evil",
        "/tmp/evil",
        "arrays/../../evil.npy",
        "..\\evil",
        "arrays/",
        "arrays/sub/x.npy",
        "model.json/",
        "C:/evil",
        "arrays/x.npy.exe",
    ],
)
def test_unexpected_member_names_are_refused_and_nothing_is_extracted(tmp_path, monkeypatch, bundle, name):
    monkeypatch.chdir(tmp_path)
    _refused(_rebuild(bundle, extra=[(name, b"evil")]), "unexpected member")
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "evil").exists()


def test_duplicate_members_are_refused(bundle):
    manifest, members = _parts(bundle)
    _refused(_rebuild(bundle, extra=[("model.json", json.dumps(manifest).encode())]), "duplicate")
    first = next(iter(members))
    _refused(_rebuild(bundle, extra=[(first, members[first])]), "duplicate")


def test_zip_without_model_json_is_refused(bundle):
    _, members = _parts(bundle)
    _refused(_zip(list(members.items())), "no model.json")
    _refused(_zip([]), "no model.json")


def test_missing_and_undeclared_arrays_are_refused(bundle):
    manifest, members = _parts(bundle)
    first = next(iter(members))
    _refused(
        _zip([("model.json", json.dumps(manifest).encode()), *[(n, d) for n, d in members.items() if n != first]]),
        "missing",
        first,
    )
    _refused(_rebuild(bundle, extra=[("arrays/extra.npy", _npy(np.zeros(3)))]), "undeclared", "extra")


def test_honest_zip_bomb_is_refused_without_inflating(bundle):
    stream = _deflated_zeros(1024)  # 1 GiB of zeros in ~1 MB
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(bytes(1 << 20), crc)
    manifest, _ = _parts(bundle)
    name = next(iter(manifest["arrays"]))
    bomb = _raw_zip(
        [
            (
                b"model.json",
                json.dumps(manifest).encode(),
                0,
                zlib.crc32(json.dumps(manifest).encode()),
                len(json.dumps(manifest).encode()),
            ),
            (f"arrays/{name}.npy".encode(), stream, 8, crc, 1 << 30),
        ]
    )
    tracemalloc.start()
    try:
        _refused(bomb, "limit")
        _refused(bomb, "zip bomb", max_bytes=2_000_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30 * len(bomb)


@pytest.mark.parametrize("liar", ["model.json", "array"])
def test_lying_size_header_cannot_inflate_unbounded_data(bundle, liar):
    manifest, members = _parts(bundle)
    members = {"model.json": json.dumps(manifest).encode(), **members}
    target = "model.json" if liar == "model.json" else next(n for n in members if n != "model.json")
    stream = _deflated_zeros(256)  # really 256 MiB of zeros; the headers claim 1000 bytes
    bomb = _raw_zip(
        [
            (name.encode(), stream, 8, zlib.crc32(bytes(1000)), 1000)
            if name == target
            else (name.encode(), data, 0, zlib.crc32(data), len(data))
            for name, data in members.items()
        ]
    )
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError):
            load_model(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


def test_encrypted_and_exotic_compression_members_are_refused(bundle):
    text = b'{"format": "seg-model"}'
    _refused(_raw_zip([(b"model.json", text, 12, zlib.crc32(text), len(text))]), "compression method")
    data = bytearray(_raw_zip([(b"model.json", text, 0, zlib.crc32(text), len(text))]))
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1  # general purpose flag bit 0: encrypted
    data[6] |= 1
    _refused(bytes(data), "encrypted")


# --------------------------------------------------------------------------- model.json


def _edited(bundle: bytes, **changes) -> bytes:
    manifest, _ = _parts(bundle)
    for key, value in changes.items():
        if value is _DROP:
            del manifest[key]
        else:
            manifest[key] = value
    return _rebuild(bundle, manifest=manifest)


_DROP = object()


@pytest.mark.parametrize(
    "text, fragment",
    [
        (b"[1, 2]", "json object"),
        (b"\xff\xfe{}", "utf-8 json"),
        (b"{", "utf-8 json"),
        (b"[" * 100_000 + b"]" * 100_000, "json"),
        (b'{"format": "seg-model", "format": "seg-model"}', "duplicate key"),
        (b'{"format": "seg-model", "schema_version": NaN}', "json"),
        (b"{}", "not a seg model"),
    ],
)
def test_malformed_model_json_is_refused(bundle, text, fragment):
    _refused(_rebuild(bundle, text=text), fragment)


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"format": "other-tool"}, ["format", "other-tool"]),
        ({"schema_version": 3}, ["newer version of seg", "upgrade"]),
        ({"schema_version": 0}, ["unknown", "schema"]),
        ({"schema_version": "1"}, ["schema_version", "integer"]),
        ({"schema_version": True}, ["schema_version"]),
        ({"class_names": _DROP}, ["missing", "class_names"]),
        ({"surprise": 1}, ["unknown key", "surprise"]),
        ({"n_channels": "1"}, ["n_channels", "integer"]),
        ({"n_channels": True}, ["n_channels"]),
        ({"n_channels": 0}, ["n_channels", "outside"]),
        ({"class_names": "background"}, ["class_names", "array"]),
        ({"class_names": [1, 2]}, ["class_names", "string"]),
        ({"class_names": []}, ["class_names", "entries"]),
        ({"class_colors": ["red", "blue"]}, ["#rrggbb"]),
        ({"created": "yesterday"}, ["created", "iso"]),
        ({"training": []}, ["training", "object"]),
        ({"versions": {"numpy": 2}}, ["versions", "string"]),
        ({"arrays": []}, ["arrays", "object"]),
        ({"feature_settings": {"sigma_min": -1.0}}, ["feature_settings"]),
        ({"feature_settings": "fine"}, ["feature_settings", "object"]),
        ({"normalization": {"mode": "magic"}}, ["normalization"]),
        ({"forest_settings": {"n_trees": 3}}, ["forest_settings"]),
    ],
)
def test_invalid_model_json_fields_are_refused(bundle, changes, fragments):
    _refused(_edited(bundle, **changes), *fragments)


def test_class_count_must_match_the_forest(bundle):
    _refused(_edited(bundle, class_names=["a", "b", "c"], class_colors=["#000000"] * 3), "3 class names", "2 classes")
    _refused(_edited(bundle, class_colors=["#000000"]), "1 colours")


def test_channel_count_must_match_the_forest_features(bundle):
    _refused(_edited(bundle, n_channels=3), "features", "3 channel")


def test_uppercase_colours_are_accepted_and_lowercased(bundle):
    manifest, _ = _parts(bundle)
    colors = [c.upper() for c in manifest["class_colors"]]
    loaded = load_model(_edited(bundle, class_colors=colors))
    assert list(loaded.class_colors) == manifest["class_colors"]


# --------------------------------------------------------------------------- arrays


def _first_array(bundle: bytes) -> tuple[dict, str, np.ndarray]:
    manifest, members = _parts(bundle)
    name = next(iter(manifest["arrays"]))
    return manifest, name, np.load(io.BytesIO(members[f"arrays/{name}.npy"]))


@pytest.mark.parametrize(
    "foreign",
    [
        lambda a: a.astype("U8"),
        lambda a: np.zeros(a.shape, dtype=[("x", "<f4"), ("y", "<i4")]),
        lambda a: a.astype(">" + a.dtype.str[1:]) if a.dtype.itemsize > 1 else a.astype(">f8"),
        lambda a: a.astype("complex64"),
        lambda a: a.astype("datetime64[s]") if a.dtype.kind in "iu" else a.astype("float16"),
    ],
)
def test_foreign_array_dtypes_are_refused(bundle, foreign):
    _, name, array = _first_array(bundle)
    _refused(_rebuild(bundle, arrays={f"arrays/{name}.npy": _npy(foreign(array))}), "dtype")


def test_foreign_dtype_declared_in_model_json_is_refused(bundle):
    manifest, name, array = _first_array(bundle)
    manifest["arrays"][name]["dtype"] = "str"
    _refused(_rebuild(bundle, manifest=manifest), "dtype", name)


def test_array_shape_must_match_the_declaration(bundle):
    manifest, name, array = _first_array(bundle)
    _refused(_rebuild(bundle, arrays={f"arrays/{name}.npy": _npy(np.concatenate([array, array]))}), "declares", name)
    manifest["arrays"][name]["shape"] = [-1]
    _refused(_rebuild(bundle, manifest=manifest), "shape")


def test_npy_header_claiming_a_huge_array_is_refused_cheaply(bundle):
    manifest, name, array = _first_array(bundle)
    header = np.lib.format.header_data_from_array_1_0(array[:1])
    header["shape"] = (10**11,) + array.shape[1:]
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    huge = buffer.getvalue() + array[:1].tobytes()
    _refused(_rebuild(bundle, arrays={f"arrays/{name}.npy": huge}), "declares", name)
    manifest["arrays"][name]["shape"] = list(header["shape"])
    _refused(_rebuild(bundle, manifest=manifest, arrays={f"arrays/{name}.npy": huge}), "exceed")


def test_npy_with_trailing_or_missing_data_is_refused(bundle):
    _, name, array = _first_array(bundle)
    raw = _npy(array)
    _refused(_rebuild(bundle, arrays={f"arrays/{name}.npy": raw + b"\0" * 8}), "data bytes")
    _refused(_rebuild(bundle, arrays={f"arrays/{name}.npy": raw[:-1]}), "data bytes")
    _refused(_rebuild(bundle, arrays={f"arrays/{name}.npy": b"not numpy"}), "not a valid .npy")


def test_tampered_forest_arrays_are_refused(bundle):
    manifest, members = _parts(bundle)
    refused = 0
    for name in manifest["arrays"]:
        array = np.load(io.BytesIO(members[f"arrays/{name}.npy"]))
        if array.dtype.kind == "f":
            tampered = np.full_like(array, np.nan)
        elif array.dtype.kind in "iu":
            tampered = np.full_like(array, np.iinfo(array.dtype).max)
        else:
            continue
        with pytest.raises(ModelFileError):
            load_model(_rebuild(bundle, arrays={f"arrays/{name}.npy": _npy(tampered)}))
        refused += 1
    assert refused


# --------------------------------------------------------------------------- fuzzing


def _load_or_refuse(data: bytes, image: np.ndarray) -> None:
    try:
        model = load_model(data)
    except ModelFileError:
        return
    model.predict(image)  # whatever loads must also run without crashing


@settings(max_examples=200, deadline=None, database=None)  # no .hypothesis/ in the cwd
@given(st.data())
def test_fuzzed_bytes_only_ever_raise_model_file_error(bundle, image, data):
    buffer = bytearray(bundle)
    for _ in range(data.draw(st.integers(1, 8), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        at = data.draw(st.integers(0, len(buffer) - 1))
        if kind == "flip":
            buffer[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set":
            buffer[at] = data.draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
        elif kind == "cut":
            del buffer[at:]
        elif kind == "insert":
            buffer[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del buffer[at : at + data.draw(st.integers(1, 16))]
        if not buffer:
            break
    _load_or_refuse(bytes(buffer), image)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None, database=None)  # no .hypothesis/ in the cwd
@given(st.data())
def test_fuzzed_model_json_and_arrays_with_valid_checksums(bundle, image, data):
    """Edits that a CRC check cannot catch: someone rewrote the archive deliberately."""
    manifest, members = _parts(bundle)
    target = data.draw(st.sampled_from(["manifest", "setting", "array"]))
    if target == "manifest":
        key = data.draw(st.sampled_from(sorted(manifest)))
        manifest[key] = data.draw(_json_values)
    elif target == "setting":
        section = data.draw(st.sampled_from(["feature_settings", "normalization", "forest_settings", "arrays"]))
        key = data.draw(st.sampled_from(sorted(manifest[section])))
        manifest[section][key] = data.draw(_json_values)
    else:
        name = data.draw(st.sampled_from(sorted(members)))
        array = np.load(io.BytesIO(members[name])).copy()
        if array.size:
            flat = array.reshape(-1)
            index = data.draw(st.integers(0, flat.size - 1))
            if array.dtype.kind == "f":
                flat[index] = data.draw(st.floats(width=8 * min(array.dtype.itemsize, 8)))
            elif array.dtype.kind in "iu":
                info = np.iinfo(array.dtype)
                flat[index] = data.draw(st.integers(int(info.min), int(info.max)))
            else:
                flat[index] = not flat[index]
        members[name] = _npy(array)
    edited = _zip([("model.json", json.dumps(manifest).encode()), *members.items()])
    _load_or_refuse(edited, image)
