"""The compiled forest predicts exactly what scikit-learn predicts, and refuses hostile arrays."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from seg.errors import ModelFileError, ModelMismatchError, TrainingError
from seg.forest import ARRAY_NAMES, MAX_TREE_DEPTH, Forest, ForestSettings, make_estimator

SMALL = ForestSettings(n_estimators=9, max_depth=None, max_samples=None, class_weight=None, min_samples_leaf=1)


def random_data(n_classes: int, *, n: int = 1500, n_features: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features)).astype(np.float32)
    y = (np.floor(np.abs(2 * x[:, 0] + x[:, 1])).astype(int) % n_classes) + 1
    return x, y


def structured_data(n_classes: int, seed: int = 1):
    """Few distinct, quantised feature values with noisy labels, like flat image regions."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=(1200, 4)).astype(np.float32) / 4
    y = rng.integers(1, n_classes + 1, size=1200)
    y[x[:, 0] > 0.5] = 1
    return x, y


def fitted(x, y, n_classes, settings=SMALL):
    estimator = make_estimator(settings, len(y)).fit(x, y)
    estimator.set_params(n_jobs=1)  # scikit-learn then adds the trees in order, as we do
    return estimator, Forest.from_estimator(estimator, n_classes)


def sklearn_proba(estimator, x, n_classes):
    proba = np.zeros((len(x), n_classes))
    proba[:, estimator.classes_ - 1] = estimator.predict_proba(x)
    return proba


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("make_data", [random_data, structured_data])
def test_labels_equal_sklearn_and_proba_close(n_classes, make_data):
    x, y = make_data(n_classes)
    estimator, forest = fitted(x, y, n_classes)
    x_new, _ = make_data(n_classes, seed=7)
    queries = np.concatenate([x, x_new])
    assert np.array_equal(forest.predict(queries), estimator.predict(queries))
    proba = forest.predict_proba(queries)
    assert proba.dtype == np.float32 and proba.shape == (len(queries), n_classes)
    np.testing.assert_allclose(proba, sklearn_proba(estimator, queries, n_classes), atol=1e-6)
    both_proba, both_labels = forest.predict_proba_and_labels(queries)
    assert np.array_equal(both_labels, estimator.predict(queries))
    assert np.array_equal(both_proba, proba)


def test_default_settings_match_sklearn_with_class_weight_and_bootstrap():
    x, y = random_data(3, n=5000)
    estimator, forest = fitted(x, y, 3, ForestSettings())
    assert forest.n_trees == ForestSettings().n_estimators
    queries, _ = random_data(3, n=20000, seed=3)
    assert np.array_equal(forest.predict(queries), estimator.predict(queries))


def one_split_tree(left_value, right_value):
    return {
        "feature": np.array([0, -1, -1], np.int32),
        "threshold": np.array([0.5, 0.0, 0.0]),
        "children_left": np.array([1, -1, -1], np.int32),
        "children_right": np.array([2, -1, -1], np.int32),
        "value": np.array([[1.0 / len(left_value)] * len(left_value), left_value, right_value]),
    }


def test_tied_votes_go_to_the_first_class_like_numpy_argmax():
    k = 3
    trees = [one_split_tree([0.0, 1.0, 0.0], [1.0, 0.0, 0.0]), one_split_tree([0.0, 0.0, 1.0], [0.0, 1.0, 0.0])]
    arrays = {name: np.concatenate([t[name] for t in trees]) for name in trees[0]}
    arrays["children_left"][3:] = np.where(arrays["children_left"][3:] >= 0, arrays["children_left"][3:] + 3, -1)
    arrays["children_right"][3:] = np.where(arrays["children_right"][3:] >= 0, arrays["children_right"][3:] + 3, -1)
    arrays["roots"] = np.array([0, 3], np.int32)
    arrays["n_features"] = np.array(1, np.int64)
    forest = Forest.from_arrays(arrays)
    x = np.array([[0.0], [1.0]], np.float32)
    proba = forest.predict_proba(x)
    np.testing.assert_allclose(proba, [[0, 0.5, 0.5], [0.5, 0.5, 0]])
    assert forest.predict(x).tolist() == (np.argmax(proba, axis=1) + 1).tolist() == [2, 1]
    assert forest.n_classes == k


def test_class_absent_from_training_gets_zero_probability():
    x, y = random_data(3)
    y[y == 2] = 3  # class 2 of 4 never scribbled, nor class 4
    estimator, forest = fitted(x, y, 4)
    assert forest.n_classes == 4
    proba = forest.predict_proba(x)
    assert np.all(proba[:, [1, 3]] == 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    assert np.array_equal(forest.predict(x), estimator.predict(x))
    assert set(np.unique(forest.predict(x))) <= {1, 3}


def test_fit_is_deterministic_and_equals_the_seeded_estimator():
    x, y = random_data(3)
    a = Forest.fit(x, y, 3, ForestSettings())
    b = Forest.fit(x, y, 3, ForestSettings())
    for name in ARRAY_NAMES:
        assert np.array_equal(a.to_arrays()[name], b.to_arrays()[name])
    assert a == b
    _, c = fitted(x, y, 3, ForestSettings())
    assert a == c
    other_seed = Forest.fit(x, y, 3, dataclasses.replace(ForestSettings(), random_state=1))
    assert other_seed != a


def test_fit_refuses_bad_training_data():
    x, y = random_data(2)
    with pytest.raises(TrainingError, match="1..2"):
        Forest.fit(x, y + 1, 2, SMALL)
    with pytest.raises(TrainingError, match="N > 0"):
        Forest.fit(x[:0], y[:0], 2, SMALL)


def test_predict_accepts_images_rows_and_awkward_layouts():
    x, y = random_data(3)
    estimator, forest = fitted(x, y, 3)
    image = np.random.default_rng(5).normal(size=(40, 30, 6)).astype(np.float32)
    expected = estimator.predict(image.reshape(-1, 6)).reshape(40, 30)
    labels = forest.predict(image)
    assert labels.shape == (40, 30) and labels.dtype == np.uint8
    assert np.array_equal(labels, expected)
    assert np.array_equal(forest.predict(image.reshape(-1, 6)), expected.ravel())
    strided = np.asfortranarray(image)[:, ::2]  # neither C-contiguous nor dense
    assert np.array_equal(forest.predict(strided), expected[:, ::2])
    assert np.array_equal(forest.predict(image.astype(np.float64)), expected)
    assert forest.predict_proba(image).shape == (40, 30, 3)
    assert forest.predict(image[:0]).shape == (0, 30)


def test_feature_count_mismatch_is_reported():
    x, y = random_data(2)
    _, forest = fitted(x, y, 2)
    with pytest.raises(ModelMismatchError, match="5 values per pixel.*trained on 6"):
        forest.predict(np.zeros((4, 4, 5), np.float32))
    with pytest.raises(ModelMismatchError):
        forest.predict_proba(np.zeros((4, 7), np.float32))


def test_arrays_round_trip_and_arrays_are_read_only_copies():
    x, y = random_data(3)
    _, forest = fitted(x, y, 3)
    arrays = forest.to_arrays()
    assert set(arrays) == set(ARRAY_NAMES)
    again = Forest.from_arrays(arrays)
    assert again == forest
    assert np.array_equal(again.predict(x), forest.predict(x))
    arrays["threshold"][:] = 0  # the caller's copy, not the forest's
    assert again == forest


def test_labels_are_uint16_beyond_255_classes():
    x = np.tile(np.arange(300, dtype=np.float32), 3)[:, None]
    y = np.tile(np.arange(1, 301), 3)
    forest = Forest.fit(
        x,
        y,
        300,
        ForestSettings(n_estimators=1, max_depth=None, max_samples=None, class_weight=None, min_samples_leaf=1),
    )
    labels = forest.predict(x)
    assert labels.dtype == np.uint16 and labels.max() > 255


# --------------------------------------------------------------------------------- hostile files


@pytest.fixture
def arrays():
    x, y = random_data(2, n=300)
    return fitted(x, y, 2, dataclasses.replace(SMALL, n_estimators=2))[1].to_arrays()


def first_split(arrays) -> int:
    return int(np.flatnonzero(arrays["children_left"] >= 0)[0])


def tamper_child_out_of_range(a):
    a["children_left"][first_split(a)] = len(a["feature"]) + 5


def tamper_cycle(a):
    a["children_right"][first_split(a)] = first_split(a)


def tamper_child_pointing_back(a):
    split = int(np.flatnonzero(a["children_left"] >= 0)[-1])
    a["children_left"][split] = 0


def tamper_child_in_other_tree(a):
    a["children_left"][0] = int(a["roots"][1])


def tamper_shared_subtree(a):
    assert a["children_left"][1] >= 0  # the root's left child splits too
    a["children_right"][1] = a["children_right"][0]


def tamper_same_children(a):
    a["children_right"][first_split(a)] = a["children_left"][first_split(a)]


def tamper_one_child(a):
    a["children_right"][first_split(a)] = -1


def tamper_feature(a):
    a["feature"][first_split(a)] = int(a["n_features"])


def tamper_negative_feature(a):
    a["feature"][first_split(a)] = -3


def tamper_nan_threshold(a):
    a["threshold"][first_split(a)] = np.nan


def tamper_negative_value(a):
    a["value"][-1] = [-0.5, 1.5]


def tamper_leaf_sum(a):
    a["value"][-1] = [0.2, 0.2]


def tamper_roots(a):
    a["roots"][0] = 1


def tamper_dtype(a):
    a["children_left"] = a["children_left"].astype(np.int64)


def tamper_shape(a):
    a["threshold"] = a["threshold"][:-1]


def tamper_value_shape(a):
    a["value"] = a["value"][:, :, None]


def tamper_missing(a):
    del a["roots"]


def tamper_extra(a):
    a["payload"] = np.zeros(3)


def tamper_n_features(a):
    a["n_features"] = np.array([6, 6])


@pytest.mark.parametrize(
    "tamper",
    [
        tamper_child_out_of_range,
        tamper_cycle,
        tamper_child_pointing_back,
        tamper_child_in_other_tree,
        tamper_shared_subtree,
        tamper_same_children,
        tamper_one_child,
        tamper_feature,
        tamper_negative_feature,
        tamper_nan_threshold,
        tamper_negative_value,
        tamper_leaf_sum,
        tamper_roots,
        tamper_dtype,
        tamper_shape,
        tamper_value_shape,
        tamper_missing,
        tamper_extra,
        tamper_n_features,
    ],
)
def test_from_arrays_refuses_tampered_arrays(arrays, tamper):
    tamper(arrays)
    with pytest.raises(ModelFileError, match="forest arrays are invalid"):
        Forest.from_arrays(arrays)


def test_from_arrays_refuses_non_arrays():
    with pytest.raises(ModelFileError):
        Forest.from_arrays([1, 2, 3])
    with pytest.raises(ModelFileError):
        Forest.from_arrays({name: [0] for name in ARRAY_NAMES})


def _chain_tree(depth: int) -> dict:
    """A valid but degenerate tree: every right child is a leaf, the left ones go ``depth`` deep."""
    n_nodes = 2 * depth + 1
    feature = np.full(n_nodes, -1, np.int32)
    threshold = np.zeros(n_nodes)
    left = np.full(n_nodes, -1, np.int32)
    right = np.full(n_nodes, -1, np.int32)
    value = np.tile([1.0, 0.0], (n_nodes, 1))
    for level in range(depth):
        node = 2 * level
        feature[node], threshold[node] = 0, float(level)
        left[node], right[node] = node + 2, node + 1
    value[-1] = [0.0, 1.0]
    return {
        "feature": feature,
        "threshold": threshold,
        "children_left": left,
        "children_right": right,
        "value": value,
        "roots": np.array([0], np.int32),
        "n_features": np.array(1, np.int64),
    }


def test_a_deep_chain_tree_from_a_file_predicts_safely():
    forest = Forest.from_arrays(_chain_tree(MAX_TREE_DEPTH))
    x = np.array([[-1.0], [5.5], [1e9]], np.float32)
    assert forest.predict(x).tolist() == [2, 1, 1]
    assert forest.depth == MAX_TREE_DEPTH


def test_a_chain_deeper_than_any_tree_is_refused():
    with pytest.raises(ModelFileError, match=f"300 levels deep, more than {MAX_TREE_DEPTH}"):
        Forest.from_arrays(_chain_tree(300))
