"""Training on scribbles and applying the model, as a user of the app or the library sees it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from seg.errors import ImageError, ModelMismatchError, SettingsError, TrainingError
from seg.features import PRESETS, FeatureSettings
from seg.forest import ForestSettings
from seg.images import Normalization
from seg.model import Model, clean_labels, train, uncertainty
from seg.render import PALETTE

SIZE = 96
FAST = FeatureSettings(sigma_min=1.0, sigma_max=4.0)


def disc_scene(seed: int = 0, size: int = SIZE):
    """A bright noisy disc on a dark noisy background, truth 2 = disc, 1 = background."""
    rows, cols = np.mgrid[:size, :size]
    truth = np.where((rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (size / 3) ** 2, 2, 1).astype(np.uint8)
    rng = np.random.default_rng(seed)
    image = np.where(truth == 2, 170.0, 60.0) + rng.normal(0, 25, truth.shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth


def strokes(size: int = SIZE) -> np.ndarray:
    """Scribbles as a user draws them: through each region, and a short one on each side of
    the boundary (the forest cannot guess where a boundary lies far from every stroke)."""
    labels = np.zeros((size, size), np.uint8)
    middle, radius = size // 2, size // 3
    labels[middle - 2 : middle + 2, middle - 15 : middle + 15] = 2  # across the disc centre
    labels[middle - 1 : middle + 1, middle - radius + 3 : middle - radius + 10] = 2
    labels[3:7, 5 : size - 5] = 1  # along the top edge
    labels[size - 7 : size - 3, 5:40] = 1
    labels[middle - 1 : middle + 1, middle + radius + 3 : middle + radius + 10] = 1
    return labels


def iou(pred: np.ndarray, truth: np.ndarray, label: int) -> float:
    return np.sum((pred == label) & (truth == label)) / np.sum((pred == label) | (truth == label))


@pytest.fixture(scope="module")
def scene():
    image, truth = disc_scene()
    return image, truth, train(image, strokes(), FAST, ["background", "disc"])


def test_two_obvious_classes_are_segmented(scene):
    image, truth, model = scene
    labels = model.predict(image)
    assert labels.shape == truth.shape and labels.dtype == np.uint8
    assert iou(labels, truth, 2) > 0.95 and iou(labels, truth, 1) > 0.95
    # A new image of the same kind is segmented as well: the model applies itself.
    other, other_truth = disc_scene(seed=5)
    assert iou(model.predict(other), other_truth, 2) > 0.95


def test_model_describes_itself(scene):
    image, _, model = scene
    assert model.class_names == ("background", "disc")
    assert model.class_colors == PALETTE[:2]
    assert model.n_channels == 1 and model.n_classes == 2
    assert model.forest.n_features == FAST.n_features(1)
    assert model.training["labelled_pixels"] == {
        "background": int(np.sum(strokes() == 1)),
        "disc": int(np.sum(strokes() == 2)),
    }
    assert model.training["frames"] == [0]
    assert {"numpy", "sklearn", "skimage", "seg"} <= set(model.versions)
    assert model.forest_settings == ForestSettings()


def test_probabilities_sum_to_one_and_agree_with_labels(scene):
    image, _, model = scene
    proba = model.predict_proba(image)
    assert proba.shape == (SIZE, SIZE, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=-1), 1, atol=1e-5)
    labels = model.predict(image)
    clear = np.abs(proba[..., 0] - proba[..., 1]) > 1e-6
    assert np.array_equal(labels[clear], np.argmax(proba, axis=-1)[clear] + 1)


def test_precomputed_features_give_identical_labels(scene):
    image, _, model = scene
    features = model.features(image)
    assert features.shape == (SIZE, SIZE, FAST.n_features(1)) and features.dtype == np.float32
    cached = train(image, strokes(), FAST, ["background", "disc"], features=[features])
    assert cached.forest == model.forest
    assert np.array_equal(cached.predict_features(features), model.predict(image))
    assert np.array_equal(cached.predict_proba_features(features), model.predict_proba(image))


def test_same_scribbles_give_the_same_model(scene):
    image, _, model = scene
    again = train(image, strokes(), FAST, ["background", "disc"])
    assert again.forest == model.forest
    reseeded = train(
        image, strokes(), FAST, ["background", "disc"], forest=dataclasses.replace(ForestSettings(), random_state=3)
    )
    assert reseeded.forest != model.forest


def test_rgb_image():
    grey, truth = disc_scene()
    rgb = np.stack([grey, 255 - grey, np.full_like(grey, 90)], axis=-1)
    model = train(rgb, strokes(), FAST, ["background", "disc"], class_colors=["#FF0000", "#00ff00"])
    assert model.n_channels == 3
    assert model.class_colors == ("#ff0000", "#00ff00")
    assert iou(model.predict(rgb), truth, 2) > 0.95
    with pytest.raises(ModelMismatchError, match=r"3 channel\(s\).*has 1"):
        model.predict(grey)
    with pytest.raises(ModelMismatchError, match=r"3 channel\(s\).*has 4"):
        model.predict_proba(np.dstack([rgb, grey]))


def test_channel_mismatch_of_a_grey_model(scene):
    _, _, model = scene
    with pytest.raises(ModelMismatchError, match=r"1 channel\(s\).*has 3"):
        model.predict(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ModelMismatchError):
        model.features(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ModelMismatchError, match="features"):
        model.predict_features(np.zeros((20, 20, 3), np.float32))


def test_stack_scribbled_on_two_frames_trains_both_classes():
    frames, truths = zip(*(disc_scene(seed=s) for s in range(4)))
    stack = np.stack(frames)[..., np.newaxis]  # (T, H, W, 1)
    labels = np.zeros(stack.shape[:3], np.uint8)
    labels[1][strokes() == 1] = 1  # background on frame 1 only
    labels[3][strokes() == 2] = 2  # disc on frame 3 only
    model = train(stack, labels, FAST)
    assert model.training["frames"] == [1, 3]
    assert model.class_names == ("class 1", "class 2")
    predicted = model.predict(stack)
    assert predicted.shape == (4, SIZE, SIZE)
    for t in range(4):
        assert iou(predicted[t], truths[t], 2) > 0.95
    assert model.predict_proba(stack).shape == (4, SIZE, SIZE, 2)
    assert np.array_equal(model.predict(stack[2]), predicted[2])


def test_unused_class_names_are_kept():
    image, truth = disc_scene()
    model = train(image, strokes(), FAST, ["background", "disc", "nucleus"])
    assert model.n_classes == 3
    proba = model.predict_proba(image)
    assert np.all(proba[..., 2] == 0)
    assert iou(model.predict(image), truth, 2) > 0.95


@pytest.mark.parametrize(
    "labels, names, message",
    [
        (np.zeros((SIZE, SIZE), np.uint8), None, "nothing is scribbled"),
        (np.where(strokes() == 2, 2, 0).astype(np.uint8), ["a", "b"], "only 'b'"),
        (strokes() * 2, ["a", "b", "c"], "Label 4 is outside 0..3"),
        (strokes().astype(np.int16) - 1, None, "Label -1"),
        (strokes()[:50], None, r"shape \(1, 50, 96\).*\(1, 96, 96\)"),
        (strokes().astype(np.float32), None, "whole numbers"),
        (strokes(), ["a", "a"], "distinct"),
        (strokes(), "ab", "list of names"),
    ],
)
def test_training_errors_say_what_to_do(labels, names, message):
    image, _ = disc_scene()
    with pytest.raises(TrainingError, match=message):
        train(image, labels, FAST, names)


def test_precomputed_features_of_the_wrong_shape_are_refused(scene):
    image, _, model = scene
    features = model.features(image)
    with pytest.raises(TrainingError, match="frame 0"):
        train(image, strokes(), FAST, features=[features[..., :-1]])
    with pytest.raises(TrainingError, match="2 frame"):
        train(image, strokes(), FAST, features=[features, features])


def test_bad_settings_and_colours_are_refused():
    image, _ = disc_scene()
    with pytest.raises(SettingsError, match="colours"):
        train(image, strokes(), FAST, class_colors=["red", "green"])
    with pytest.raises(SettingsError, match="ForestSettings"):
        train(image, strokes(), FAST, forest={"n_estimators": 3})


def test_model_refuses_inconsistent_parts(scene):
    _, _, model = scene
    with pytest.raises(ModelMismatchError, match="2 classes but 3 names"):
        dataclasses.replace(model, class_names=("a", "b", "c"))
    with pytest.raises(ModelMismatchError, match="features"):
        dataclasses.replace(model, n_channels=3)
    renamed = dataclasses.replace(model, class_names=("x", "y"))
    assert renamed.class_names == ("x", "y") and renamed.forest is model.forest


# --------------------------------------------------------------------------------- settings


def test_forest_settings_round_trip_and_defaults():
    settings = ForestSettings()
    assert ForestSettings.from_dict(settings.to_dict()) == settings
    custom = ForestSettings(n_estimators=50, max_depth=None, max_samples=300, class_weight=None, random_state=7)
    assert ForestSettings.from_dict(custom.to_dict()) == custom
    assert settings.n_estimators <= 32 and settings.class_weight == "balanced"


@pytest.mark.parametrize(
    "change",
    [
        {"n_estimators": 0},
        {"n_estimators": 10**6},
        {"n_estimators": 2.5},
        {"n_estimators": True},
        {"max_depth": 0},
        {"max_depth": "deep"},
        {"max_samples": 0.0},
        {"max_samples": 1.5},
        {"max_samples": float("nan")},
        {"max_samples": 0},
        {"max_samples": "all"},
        {"class_weight": "auto"},
        {"random_state": -1},
        {"n_jobs": 0},
        {"min_samples_leaf": 0},
        {"max_tree_samples": 10},
    ],
)
def test_forest_settings_refuse_bad_values(change):
    with pytest.raises(SettingsError):
        dataclasses.replace(ForestSettings(), **change)
    hostile = {**ForestSettings().to_dict(), **change}
    with pytest.raises(SettingsError):
        ForestSettings.from_dict(hostile)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "n_estimators=3",
        {"n_estimators": 3},
        {**ForestSettings().to_dict(), "__class__": "os.system"},
        {**ForestSettings().to_dict(), "n_estimators": [16]},
        {**ForestSettings().to_dict(), "max_depth": {"a": 1}},
    ],
)
def test_forest_settings_refuse_hostile_dicts(data):
    with pytest.raises(SettingsError):
        ForestSettings.from_dict(data)


def test_tree_samples_follow_the_fraction_within_bounds():
    settings = ForestSettings(max_samples=0.1, min_tree_samples=50, max_tree_samples=1000)
    assert settings.tree_samples(30) == 30  # never more than there are
    assert settings.tree_samples(200) == 50  # at least min_tree_samples
    assert settings.tree_samples(5000) == 500  # the fraction
    assert settings.tree_samples(10**6) == 1000  # at most max_tree_samples
    assert ForestSettings(max_samples=64).tree_samples(10**6) == 64
    assert ForestSettings(max_samples=None).tree_samples(123) == 123


# --------------------------------------------------------------------------------- uncertainty


def test_uncertainty_is_high_at_the_boundary_and_low_inside(scene):
    image, truth, model = scene
    unsure = uncertainty(model.predict_proba(image))
    assert unsure.shape == truth.shape and unsure.dtype == np.float32
    assert 0 <= unsure.min() and unsure.max() <= 1
    inside = SIZE // 2
    ring = np.abs(np.hypot(*np.mgrid[:SIZE, :SIZE] - SIZE / 2) - SIZE / 3) < 1.5
    assert unsure[inside - 5 : inside + 5, inside - 5 : inside + 5].mean() < 0.2
    assert unsure[ring].mean() > 2 * unsure[~ring].mean()


def test_uncertainty_formula():
    proba = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(uncertainty(proba), [0.5, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(uncertainty(np.array([[0.9, 0.1]])), [0.2], atol=1e-6)
    assert np.array_equal(uncertainty(np.ones((3, 4, 1), np.float32)), np.zeros((3, 4), np.float32))
    with pytest.raises(ImageError):
        uncertainty(np.float32(0.5))


# --------------------------------------------------------------------------------- clean_labels


def test_clean_labels_removes_specks_into_their_surroundings():
    labels = np.ones((30, 30), np.uint8)
    labels[10:20, 10:20] = 2
    labels[2, 2] = 2  # a speck of 2 in the background
    labels[14:16, 14:16] = 1  # a speck of 1 inside the square
    labels[25, 25:27] = 3  # a two-pixel speck of a third class
    cleaned = clean_labels(labels, min_size=5)
    expected = np.ones((30, 30), np.uint8)
    expected[10:20, 10:20] = 2
    assert np.array_equal(cleaned, expected)
    assert cleaned.dtype == labels.dtype
    assert np.array_equal(clean_labels(labels), labels)  # nothing asked, nothing changed
    assert np.array_equal(clean_labels(labels, min_size=1), labels)
    assert labels[2, 2] == 2  # input untouched


def test_clean_labels_fills_holes_but_keeps_nested_objects():
    labels = np.ones((40, 40), np.uint16)  # background: the most common label
    labels[5:25, 5:25] = 2  # a cell ...
    labels[12:16, 12:16] = 1  # ... with a background hole
    labels[28:38, 28:38] = 3  # a second cell ...
    labels[31:35, 31:35] = 4  # ... with a nucleus, which must stay
    labels[0:4, 30:40] = 2  # touching the border: no hole in it
    filled = clean_labels(labels, fill_holes=True)
    expected = labels.copy()
    expected[12:16, 12:16] = 2
    assert np.array_equal(filled, expected)
    assert filled.dtype == np.uint16


def test_clean_labels_on_stacks_and_bad_input():
    frame = np.ones((20, 20), np.uint8)
    frame[5, 5] = 2
    stack = np.stack([frame, np.full_like(frame, 2)])
    cleaned = clean_labels(stack, min_size=3)
    assert cleaned.shape == (2, 20, 20)
    assert np.all(cleaned[0] == 1) and np.all(cleaned[1] == 2)
    with pytest.raises(ImageError):
        clean_labels(np.zeros((2, 2, 2, 2), np.uint8))
    with pytest.raises(ImageError):
        clean_labels(np.zeros((4, 4), np.float32))
    with pytest.raises(SettingsError):
        clean_labels(frame, min_size=-1)


def test_defaults_use_the_balanced_preset_and_percentile_normalisation():
    image, truth = disc_scene(size=64)
    model = train(image, strokes(64), class_names=["background", "disc"])
    assert model.feature_settings == PRESETS["balanced"]
    assert model.normalization == Normalization()
    assert isinstance(model, Model)
    assert iou(model.predict(image), truth, 2) > 0.9
