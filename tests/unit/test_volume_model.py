"""Volume models: seg.train(..., dims=3), predict / predict_proba on volumes, blocks == whole,
bundles that remember dims and voxel size, and the 2-D/3-D refusals."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from scipy import ndimage as ndi

import seg
from seg.errors import ModelFileError, ModelMismatchError, SettingsError, TrainingError, VoxelSizeError
from seg.features import FeatureSettings
from seg.features.volume import compute_volume_features
from seg.model import train_samples
from seg.volumes import normalize_volume, predict_volume
from seg.volumes.model import predict_volume_with_probabilities

SETTINGS = FeatureSettings(sigma_min=0.7, sigma_max=4.0)
SCRIBBLED = (3, 10, 16)


@pytest.fixture(scope="module")
def scene():
    """Blobs in noise; scribbles (a sparse grid of true labels) on three slices."""
    rng = np.random.default_rng(5)
    truth = ndi.gaussian_filter(rng.random((20, 40, 36)), (1.5, 3, 3)) > 0.5
    volume = (truth * 0.5 + rng.random(truth.shape) * 0.5).astype(np.float32)
    labels = np.zeros(truth.shape, np.uint8)
    for z in SCRIBBLED:
        labels[z, ::4, ::4] = truth[z, ::4, ::4] + 1
    return volume, labels, truth.astype(np.uint8) + 1


@pytest.fixture(scope="module")
def model(scene):
    volume, labels, _ = scene
    return seg.train(
        volume, labels, SETTINGS, ["background", "blob"], dims=3, spacing=(2.0, 1.0, 1.0), volume_features="3d"
    )


def test_volume_model_labels_unseen_slices(scene, model):
    volume, _, truth = scene
    mask = model.predict(volume)
    assert model.dims == 3 and model.volume.spacing == (2.0, 1.0, 1.0)
    assert mask.shape == volume.shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {1, 2}
    held_out = [z for z in range(volume.shape[0]) if z not in SCRIBBLED]
    assert (mask[held_out] == truth[held_out]).mean() > 0.9
    proba = model.predict_proba(volume)
    assert proba.shape == (*volume.shape, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(proba, -1) + 1, mask)


def test_training_on_thin_slice_blocks_equals_training_on_whole_volume_features(scene, model):
    volume, labels, _ = scene
    features = compute_volume_features(
        normalize_volume(volume[..., None], model.normalization), SETTINGS, spacing=(2.0, 1.0, 1.0)
    )
    chosen = labels > 0
    reference = train_samples(
        features[chosen],
        labels[chosen].astype(np.int64),
        n_channels=1,
        image_shape=(*volume.shape, 1),
        frames=list(SCRIBBLED),
        settings=SETTINGS,
        class_names=["background", "blob"],
        forest=model.forest_settings,
        volume=model.volume,
    )
    np.testing.assert_array_equal(reference.predict(volume), model.predict(volume))


def test_prediction_in_small_blocks_equals_one_block(scene, model):
    volume, _, _ = scene
    calls = []
    blocks = predict_volume(model, volume, budget=1_500_000, progress=lambda done, total: calls.append(total))
    assert calls and calls[0] > 1, "the budget should force several blocks"
    np.testing.assert_array_equal(blocks, model.predict(volume))
    proba = predict_volume(model, volume, proba=True, budget=1_500_000)
    np.testing.assert_array_equal(proba, model.predict_proba(volume))


def test_labels_and_8_bit_probabilities_in_one_pass_equal_predict_and_predict_proba(scene, model, monkeypatch):
    volume, _, _ = scene
    expected_labels, expected_proba = model.predict(volume), model.predict_proba(volume)
    calls = []
    forest = type(model.forest)
    monkeypatch.setattr(forest, "predict", lambda *a: calls.append("predict"))
    monkeypatch.setattr(forest, "predict_proba", lambda *a: calls.append("predict_proba"))
    steps = []
    labels, proba = predict_volume_with_probabilities(
        model, volume, budget=1_500_000, progress=lambda done, total: steps.append((done, total))
    )
    assert calls == [], "one forest pass per block gives both"
    assert len(steps) > 1 and steps[-1][0] == steps[-1][1]
    np.testing.assert_array_equal(labels, expected_labels)  # the argmax of the float probabilities
    assert labels.dtype == expected_labels.dtype
    np.testing.assert_array_equal(labels, np.argmax(expected_proba, -1) + 1)
    assert proba.dtype == np.uint8 and proba.shape == expected_proba.shape
    assert np.abs(proba / 255.0 - expected_proba).max() <= 1 / 510 + 1e-6


def test_multichannel_volume_and_volume_objects(scene):
    volume, labels, truth = scene
    two = np.stack([volume, 1 - volume], axis=-1)
    model = seg.train(seg.Volume(two, (0.5, 0.25, 0.25), "µm"), labels, SETTINGS, dims=3, volume_features="3d")
    assert model.volume.spacing == (0.5, 0.25, 0.25) and model.n_channels == 2
    assert (model.predict(two) == truth).mean() > 0.9
    with pytest.raises(ModelMismatchError, match="channel"):
        model.predict(volume)


def test_per_slice_mode_uses_the_2d_features_of_each_slice(scene):
    volume, labels, truth = scene
    model = seg.train(volume, labels, SETTINGS, dims=3)  # per slice is the default for volumes
    assert model.volume.mode == "per_slice"
    assert model.n_features == SETTINGS.n_features(1)
    assert (model.predict(volume) == truth).mean() > 0.85


def test_volume_defaults_apply_to_what_is_not_chosen_and_2d_keeps_its_own(scene):
    from seg.features import DEFAULT_PRESET, PRESETS
    from seg.forest import ForestSettings
    from seg.volumes.model import DEFAULT_VOLUME_FEATURES, DEFAULT_VOLUME_FOREST, DEFAULT_VOLUME_SETTINGS

    volume, labels, _ = scene
    model = seg.train(volume[:, :24, :24], labels[:, :24, :24], dims=3)
    assert model.volume.mode == DEFAULT_VOLUME_FEATURES
    assert model.feature_settings == DEFAULT_VOLUME_SETTINGS
    assert model.forest_settings == DEFAULT_VOLUME_FOREST
    chosen = ForestSettings(n_estimators=3, class_weight="balanced")
    model = seg.train(volume, labels, SETTINGS, dims=3, forest=chosen, volume_features="per_slice")
    assert (model.feature_settings, model.forest_settings, model.volume.mode) == (SETTINGS, chosen, "per_slice")
    image = seg.train(volume[SCRIBBLED[0]], labels[SCRIBBLED[0]])
    assert (image.feature_settings, image.forest_settings) == (PRESETS[DEFAULT_PRESET], ForestSettings())


@pytest.mark.parametrize(
    "spacing, mode",
    [((1.0, 1.0, 1.0), "3d"), ((2.0, 1.0, 1.0), "3d"), ((1.0, 0.6, 1.0), "3d"), ((2.5, 1.0, 1.0), "per_slice"),
     ((50.0, 4.0, 4.0), "per_slice"), ((1.0, 1.0, 3.0), "per_slice"), (None, "per_slice")],
)  # fmt: skip
def test_near_isotropic_voxels_get_3d_features_by_default_and_sections_or_unknown_voxels_per_slice(spacing, mode):
    from seg.volumes.model import DEFAULT_VOLUME_SETTINGS, ISOTROPIC_VOLUME_SETTINGS, default_volume_settings

    expected = ISOTROPIC_VOLUME_SETTINGS if mode == "3d" else DEFAULT_VOLUME_SETTINGS
    assert default_volume_settings(spacing) == (mode, expected)
    assert ISOTROPIC_VOLUME_SETTINGS != DEFAULT_VOLUME_SETTINGS


def test_seg_train_picks_the_volume_default_from_the_voxel_size_and_explicit_choices_win(scene):
    from seg.volumes.model import DEFAULT_VOLUME_SETTINGS, ISOTROPIC_VOLUME_SETTINGS

    volume, labels = scene[0][:, :24, :24, None], scene[1][:, :24, :24]
    isotropic = seg.train(seg.Volume(volume, (1.0, 1.0, 1.0), "mm"), labels, dims=3)
    assert (isotropic.volume.mode, isotropic.feature_settings) == ("3d", ISOTROPIC_VOLUME_SETTINGS)
    sections = seg.train(seg.Volume(volume, (50.0, 4.0, 4.0), "nm"), labels, dims=3)
    assert (sections.volume.mode, sections.feature_settings) == ("per_slice", DEFAULT_VOLUME_SETTINGS)
    assert seg.train(volume, labels, dims=3, spacing=(1.0, 1.0, 1.0)).volume.mode == "3d"  # spacing given
    chosen = seg.train(seg.Volume(volume, (1.0, 1.0, 1.0), "mm"), labels, SETTINGS, dims=3, volume_features="per_slice")
    assert (chosen.volume.mode, chosen.feature_settings) == ("per_slice", SETTINGS)
    mode_only = seg.train(seg.Volume(volume, (50.0, 4.0, 4.0), "nm"), labels, dims=3, volume_features="3d")
    assert (mode_only.volume.mode, mode_only.feature_settings) == ("3d", ISOTROPIC_VOLUME_SETTINGS)
    with pytest.raises(VoxelSizeError):
        seg.train(volume, labels, dims=3, spacing=(0.0, 1.0, 1.0))


def test_dims_2_is_unchanged_and_refuses_volumes(scene):
    volume, labels, _ = scene
    frames = volume[SCRIBBLED[0]]
    model = seg.train(frames, labels[SCRIBBLED[0]], SETTINGS)
    assert model.dims == 2 and model.volume is None
    assert model.predict(frames).shape == frames.shape
    assert model.predict(volume[..., None]).shape == volume.shape  # (T, H, W, C): frame by frame
    with pytest.raises(ModelMismatchError, match="2-D .image. model, but the input is a volume"):
        model.predict(seg.Volume(volume[..., None]))


def test_volume_model_refuses_2d_images_and_other_voxel_shapes(scene, model):
    volume, _, _ = scene
    with pytest.raises(ModelMismatchError, match="volume .3-D. model"):
        model.predict(volume[0])
    with pytest.raises(ModelMismatchError, match="volume .3-D. model"):
        model.predict_proba(np.zeros((40, 36, 3), np.float32))  # an RGB image is not a volume
    with pytest.raises(ModelMismatchError, match="voxels"):
        model.predict(seg.Volume(volume[..., None], (4.0, 1.0, 1.0), "µm"))


@pytest.mark.parametrize("labels_shape", [(20, 40), (19, 40, 36), (20, 40, 36, 1)])
def test_labels_of_the_wrong_shape_are_a_training_error(scene, labels_shape):
    volume, _, _ = scene
    with pytest.raises(TrainingError, match="shape"):
        seg.train(volume, np.ones(labels_shape, np.uint8), dims=3)


def test_bad_dims_and_spacing_are_refused(scene):
    volume, labels, _ = scene
    with pytest.raises(VoxelSizeError):
        seg.train(volume, labels, dims=3, spacing=(0.0, 1.0, 1.0))
    with pytest.raises(VoxelSizeError):
        seg.train(volume, labels, dims=3, spacing=(-1.0, 1.0, 1.0))
    with pytest.raises(SettingsError, match="dims"):
        seg.train(volume, labels, dims=4)
    with pytest.raises(SettingsError, match="dims=3"):
        seg.train(volume[0], labels[0], spacing=(1.0, 1.0, 1.0))
    with pytest.raises(TrainingError, match="two classes"):
        seg.train(volume, (labels > 0).astype(np.uint8), dims=3)


def _manifest(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("model.json"))


def _with_manifest(data: bytes, manifest: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = json.dumps(manifest).encode() if info.filename == "model.json" else source.read(info)
            target.writestr(info.filename, body)
    return out.getvalue()


def test_bundle_records_dims_and_voxel_size(scene, model):
    volume, _, _ = scene
    data = seg.model_to_bytes(model)
    manifest = _manifest(data)
    assert manifest["schema_version"] == 2
    assert manifest["volume"] == {"spacing": [2.0, 1.0, 1.0], "mode": "3d"}
    loaded = seg.load_model(data)
    assert loaded.dims == 3 and loaded.volume == model.volume
    np.testing.assert_array_equal(loaded.predict(volume), model.predict(volume))
    assert seg.describe_model(loaded)["dims"] == 3


def test_2d_bundles_stay_schema_1_and_load_as_dims_2(scene):
    volume, labels, _ = scene
    data = seg.model_to_bytes(seg.train(volume[3], labels[3], SETTINGS))
    manifest = _manifest(data)
    assert manifest["schema_version"] == 1 and "volume" not in manifest
    assert seg.load_model(data).dims == 2


def test_tampered_volume_keys_are_refused(scene, model):
    data = seg.model_to_bytes(model)
    manifest = _manifest(data)
    for volume in (
        {"spacing": [0, 1, 1], "mode": "3d"},
        {"spacing": None, "mode": "4d"},
        {"mode": "3d"},
        {"spacing": None, "mode": "per_slice"},
    ):  # per-slice: the forest's feature count differs
        with pytest.raises(ModelFileError):
            seg.load_model(_with_manifest(data, {**manifest, "volume": volume}))
    with pytest.raises(ModelFileError, match="unknown key"):  # schema 1 has no volume key
        seg.load_model(_with_manifest(data, {**manifest, "schema_version": 1}))
    without = {key: value for key, value in manifest.items() if key != "volume"}
    with pytest.raises(ModelFileError, match="missing key"):
        seg.load_model(_with_manifest(data, without))
