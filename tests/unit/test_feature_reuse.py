"""train(image) then predict(image) computes the features once (seg.features.recent), and never
reuses features of other content, settings or normalisation."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import seg
from seg import model as model_module
from seg.features import PRESETS, compute_features
from seg.features.recent import RECENT_FEATURES, RecentFeatures
from seg.images import Normalization, normalize


def _scene(seed: int = 0, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    inside = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (size / 3) ** 2
    image = (np.where(inside, 0.7, 0.3) + rng.normal(0, 0.1, (size, size))).astype(np.float32)
    labels = np.zeros((size, size), np.uint8)
    labels[size // 2 - 2 : size // 2 + 2, size // 3 : 2 * size // 3] = 2
    labels[1:4, :] = 1
    return image, labels


@pytest.fixture(autouse=True)
def empty_cache():
    RECENT_FEATURES.clear()
    yield
    RECENT_FEATURES.clear()


@pytest.fixture
def counted(monkeypatch):
    """Counts feature computations made by seg.model (train and predict)."""
    calls = []

    def counting(frame, settings):
        calls.append(frame.shape)
        return compute_features(frame, settings)

    monkeypatch.setattr(model_module, "compute_features", counting)
    return calls


def _fresh_prediction(model, image):
    return model.forest.predict_proba(compute_features(normalize(image, model.normalization), model.feature_settings))


def test_predict_on_the_image_just_trained_on_computes_features_once(counted):
    image, labels = _scene()
    model = seg.train(image, labels)
    mask = model.predict(image)
    proba = model.predict_proba(image)
    assert len(counted) == 1
    np.testing.assert_array_equal(proba, _fresh_prediction(model, image))
    np.testing.assert_array_equal(mask, np.argmax(proba, axis=-1) + 1)


def test_training_again_on_the_same_image_reuses_its_features(counted):
    image, labels = _scene()
    first = seg.train(image, labels)
    more = labels.copy()
    more[-4:-1, :] = 1
    second = seg.train(image, more)
    assert len(counted) == 1
    assert second.training["labelled_pixels"] != first.training["labelled_pixels"]
    np.testing.assert_array_equal(second.predict_proba(image), _fresh_prediction(second, image))


def test_image_changed_in_place_after_training_gets_its_own_features(counted):
    image, labels = _scene()
    model = seg.train(image, labels)
    image[:20] = 1.0  # same array object, other content
    proba = model.predict_proba(image)
    assert len(counted) == 2
    np.testing.assert_array_equal(proba, _fresh_prediction(model, image))


def test_other_settings_or_normalisation_do_not_share_features(counted):
    image, labels = _scene()
    first = seg.train(image, labels)
    other_settings = seg.train(image, labels, PRESETS["scikit-image gallery"])
    other_normalisation = seg.train(image, labels, normalization=Normalization(mode="none"))
    assert len(counted) == 3
    for model in (first, other_settings, other_normalisation):
        np.testing.assert_array_equal(model.predict_proba(image), _fresh_prediction(model, image))


def test_precomputed_features_and_model_features_stay_the_callers(counted):
    image, labels = _scene()
    features = compute_features(normalize(image, Normalization()), PRESETS["balanced"])
    model = seg.train(image, labels, PRESETS["balanced"], features=[features])
    assert len(RECENT_FEATURES) == 0 and features.flags.writeable
    model.predict(image)
    assert len(counted) == 1
    assert model.features(image).flags.writeable


def test_stack_over_the_byte_bound_is_not_kept(counted, monkeypatch):
    monkeypatch.setattr(RECENT_FEATURES, "max_bytes", 1024)
    image, labels = _scene()
    model = seg.train(image, labels)
    model.predict(image)
    assert len(counted) == 2 and len(RECENT_FEATURES) == 0


def test_least_recently_used_stack_goes_first():
    recent = RecentFeatures(max_entries=2)
    settings, normalization = PRESETS["balanced"], Normalization()
    frames = [np.full((8, 8, 1), value, np.float32) for value in (0.1, 0.2, 0.3)]
    stacks = [np.full((8, 8, 3), value, np.float32) for value in (1.0, 2.0, 3.0)]
    recent.remember(frames[0], settings, normalization, stacks[0])
    recent.remember(frames[1], settings, normalization, stacks[1])
    assert recent.find(frames[0], settings, normalization) is stacks[0]  # now most recent
    recent.remember(frames[2], settings, normalization, stacks[2])
    assert recent.find(frames[1], settings, normalization) is None
    assert recent.find(frames[0], settings, normalization) is stacks[0]
    assert recent.find(frames[2], settings, normalization) is stacks[2]
    assert not stacks[0].flags.writeable
    assert recent.nbytes == 2 * stacks[0].nbytes


def test_concurrent_train_and_predict_get_each_images_own_features():
    scenes = [_scene(seed) for seed in range(4)]
    expected = []
    for image, labels in scenes:
        model = seg.train(image, labels)
        expected.append((model, _fresh_prediction(model, image)))
    RECENT_FEATURES.clear()
    start = threading.Barrier(len(scenes))
    failures = []

    def work(index):
        image, labels = scenes[index]
        model, proba = expected[index]
        start.wait()
        for _ in range(3):
            seg.train(image, labels)  # fills the shared cache with this image's stack
            if not np.array_equal(model.predict_proba(image), proba):
                failures.append(index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(scenes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    assert len(RECENT_FEATURES) <= RECENT_FEATURES.max_entries
