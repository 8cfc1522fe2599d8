"""Know the classifier: stroke-held-out accuracy, feature importance, suggestions, next regions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import seg
from bench.datasets import load_isbi, simulate_scribbles
from seg.errors import ImageError, SettingsError, TrainingError
from seg.evaluate import (
    cross_validate,
    estimate_accuracy,
    held_out_importance,
    importance_by_scale,
    impurity_importance,
    label_next,
    stroke_folds,
    stroke_groups,
    suggest_settings,
    worth_switching,
)
from seg.features import PRESETS, FeatureSettings
from seg.forest import Forest, ForestSettings
from seg.model import train


def two_blobs(size: int = 96, seed: int = 0):
    """Bright disks (class 2) on a dark background (class 1), with noise, and the truth."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    truth = np.ones((size, size), np.uint8)
    for r, c in ((25, 25), (25, 70), (70, 30), (72, 72)):
        truth[(rows - r) ** 2 + (cols - c) ** 2 < 14**2] = 2
    image = np.where(truth == 2, 170, 60) + rng.normal(0, 25, truth.shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth


def blob_scribbles(truth: np.ndarray) -> np.ndarray:
    """Three short strokes inside disks, three on the background, none touching."""
    labels = np.zeros(truth.shape, np.uint8)
    for r, c in ((25, 25), (25, 70), (70, 30)):
        labels[r - 1 : r + 2, c - 5 : c + 6] = 2
    for r in (5, 48, 90):
        labels[r - 1 : r + 2, 40:56] = 1
    assert np.all(truth[labels > 0] == labels[labels > 0])
    return labels


# --------------------------------------------------------------------------------- groups and folds


def test_groups_are_the_connected_strokes_of_each_class():
    labels = np.zeros((20, 20), np.uint8)
    labels[2, 2:10] = 1
    labels[3, 9:15] = 1  # touches the first stroke diagonally: the same stroke
    labels[10, 2:10] = 1
    labels[11, 2:10] = 2  # touches a class-1 stroke but is another class: its own group
    groups, group_class = stroke_groups(labels)
    assert sorted(group_class.tolist()) == [1, 1, 2]
    assert groups[2, 2] == groups[3, 14] != groups[10, 2] != groups[11, 2]
    assert np.all((groups > 0) == (labels > 0))


def test_given_stroke_ids_split_what_touches():
    labels = np.zeros((10, 10), np.uint8)
    labels[5, :] = 1
    strokes = np.zeros((10, 10), np.int32)
    strokes[5, :5], strokes[5, 5:] = 7, 9
    groups, group_class = stroke_groups(labels, strokes)
    assert group_class.tolist() == [1, 1]
    assert groups[5, 0] != groups[5, 9]
    with pytest.raises(TrainingError, match="stroke id"):
        stroke_groups(labels, strokes[:5])


def test_folds_hold_out_at_most_one_stroke_per_class_up_to_eight():
    group_class = np.array([1] * 5 + [2] * 3)
    fold = stroke_folds(group_class)
    for value in (1, 2):
        assert len(set(fold[group_class == value])) == np.sum(group_class == value)
    many = stroke_folds(np.array([1] * 20 + [2] * 20))
    assert len(set(many)) == 8


def test_held_out_strokes_never_train_their_own_prediction():
    # Each stroke has its own constant feature value and the classes alternate, so a forest
    # that saw a stroke's pixels labels it perfectly, and one that did not is no better than
    # chance: pixel-wise folds would score 1.0, stroke-wise folds must not.
    n_strokes, per_stroke = 16, 50
    group = np.repeat(np.arange(n_strokes), per_stroke)
    group_class = np.array([1, 2, 2, 1] * 4)
    x = (group.astype(np.float32) * 10)[:, None]
    y = group_class[group]
    cv = cross_validate(x, y, group, group_class, 2, ForestSettings(min_tree_samples=800))
    pixel_accuracy = Forest.fit(x, y, 2, ForestSettings()).predict(x)
    assert np.mean(pixel_accuracy == y) == 1.0
    assert np.mean(cv.predicted == cv.truth) < 0.75


# --------------------------------------------------------------------------------- the report


def test_separable_image_gets_a_high_estimate_with_a_diagonal_confusion():
    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    report = estimate_accuracy(image, labels, class_names=["background", "disk"])
    assert report.n_groups == 6
    assert report.accuracy > 0.9
    low, high = report.interval
    assert low <= report.accuracy <= high
    assert np.count_nonzero(report.confusion - np.diag(np.diag(report.confusion))) == 0
    assert list(report.per_class.index) == ["background", "disk"]
    assert report.per_class["recall"].tolist() == [1.0, 1.0]
    assert report.per_class["strokes"].tolist() == [3, 3]
    # Nearly every unlabelled pixel is right; the forest's soft probabilities make the
    # estimate conservative here (see seg.evaluate.accuracy), never optimistic.
    model = train(image, labels)
    unlabelled = labels == 0
    true = np.mean(model.predict(image)[unlabelled] == truth[unlabelled])
    assert true > 0.98 and low <= true


def test_one_stroke_per_class_is_too_few():
    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    labels[labels > 0] = 0
    labels[24:27, 20:30] = 2
    labels[4:7, 40:56] = 1
    report = estimate_accuracy(image, labels)
    assert report.accuracy is None and report.interval is None
    assert "at least 2 separate strokes" in report.reason
    assert report.summary().startswith("too few strokes to estimate")


def test_bad_inputs_are_refused_with_seg_errors():
    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    with pytest.raises(TrainingError, match="shape"):
        estimate_accuracy(image, labels[:50])
    with pytest.raises(TrainingError, match="two classes"):
        estimate_accuracy(image, np.where(labels == 2, 2, 0).astype(np.uint8))
    with pytest.raises(SettingsError):
        estimate_accuracy(image, labels, forest="deep")
    with pytest.raises(TrainingError, match="features"):
        estimate_accuracy(image, labels, features=[np.zeros((96, 96, 3), np.float32)])


def test_precomputed_features_and_probabilities_give_the_same_report():
    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    model = train(image, labels)
    features = model.features(image)
    direct = estimate_accuracy(image, labels)
    cached = estimate_accuracy(image, labels, features=[features], proba=[model.predict_proba_features(features)])
    assert cached.accuracy == pytest.approx(direct.accuracy, abs=0.01)
    assert np.array_equal(cached.confusion, direct.confusion)


# The calibration promise on real data, on slices and scribble seeds the estimator's constants
# were not tuned on (those were slices 0, 5, ..., 25 with seeds 100 * slice + 0..2). The full
# table (36 cases) is bench/accuracy_estimate.py.
CALIBRATION_CASES = [(2, 4, 7200), (7, 4, 7700), (12, 8, 8200), (17, 4, 8701), (22, 8, 9200), (27, 8, 9701)]


@pytest.mark.slow
def test_interval_covers_the_true_accuracy_on_unlabelled_isbi_pixels():
    inside, widths, errors, plain = [], [], [], []
    for index, n_strokes, seed in CALIBRATION_CASES:
        image, truth = load_isbi(index)
        labels = simulate_scribbles(truth, strokes_per_class=n_strokes, seed=seed)
        model = train(image, labels)
        features = model.features(image)
        proba = model.predict_proba_features(features)
        unlabelled = labels == 0
        true = np.mean((np.argmax(proba, axis=-1) + 1)[unlabelled] == truth[unlabelled])
        report = estimate_accuracy(image, labels, features=[features], proba=[proba])
        low, high = report.interval
        inside.append(low <= true <= high)
        widths.append(high - low)
        errors.append(abs(report.accuracy - true))
        plain.append(abs(report.held_out_accuracy - true))
    assert np.mean(inside) >= 0.8, inside
    assert np.median(widths) <= 0.2, widths
    assert np.mean(errors) < np.mean(plain), (errors, plain)


# --------------------------------------------------------------------------------- importance


@pytest.mark.parametrize("class_weight, max_samples", [(None, None), ("balanced", 0.3)])
def test_impurity_importance_equals_scikit_learns(class_weight, max_samples):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 2] + 0.3 * rng.normal(size=2000) > 0).astype(int) + 1
    y[x[:, 3] > 1.5] = 3
    estimator = RandomForestClassifier(
        n_estimators=8, max_depth=6, class_weight=class_weight, max_samples=max_samples, random_state=0
    ).fit(x, y)
    importance = impurity_importance(Forest.from_estimator(estimator, 3))
    np.testing.assert_allclose(importance, estimator.feature_importances_, atol=1e-9)


def test_feature_importance_names_match_the_feature_layout():
    image, truth = two_blobs()
    rgb = np.stack([image, np.full_like(image, 90), image // 2], axis=-1)
    settings = FeatureSettings(sigma_min=1.0, sigma_max=4.0, channel_mode="luminance")
    model = train(rgb, blob_scribbles(truth), settings)
    table = model.feature_importance()
    assert sorted(table["feature"]) == sorted(settings.feature_names(3))
    assert table["importance"].sum() == pytest.approx(1.0)
    assert table["importance"].is_monotonic_decreasing
    assert set(table["group"]) == {"intensity", "edges", "texture"}
    assert set(table["sigma"]) == set(settings.sigmas())
    # The constant channel carries no information: the forest never splits on it.
    assert table.loc[table["source"] == "ch1", "importance"].sum() == 0.0
    by_scale = importance_by_scale(table)
    assert by_scale["importance"].sum() == pytest.approx(1.0)
    assert "intensity σ 1" in set(by_scale["label"])


def test_permutation_importance_finds_the_informative_channel():
    image, truth = two_blobs()
    noise = np.random.default_rng(3).integers(0, 255, image.shape).astype(np.uint8)
    two = np.stack([noise, image], axis=-1)
    settings = FeatureSettings(sigma_min=1.0, sigma_max=2.0, edges=False, texture=False)
    table = held_out_importance(two, blob_scribbles(truth), settings)
    assert table.iloc[0]["source"] == "ch1"
    importance = table.groupby("source")["importance"].sum()
    assert importance["ch1"] > importance["ch0"]


# --------------------------------------------------------------------------------- suggestions


def test_suggestions_are_ranked_best_first_and_keep_their_forest():
    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    intensity_only = FeatureSettings(sigma_min=1.0, sigma_max=1.0, edges=False, texture=False)
    edges_only = FeatureSettings(sigma_min=8.0, sigma_max=8.0, intensity=False, texture=False)
    deep = ForestSettings(n_estimators=8, max_depth=3)
    ranked = suggest_settings(image, labels, [edges_only, (intensity_only, deep)])
    assert [s for s, _ in ranked] == [intensity_only, edges_only]
    assert ranked[0][1].forest == deep
    assert ranked[0][1].accuracy >= ranked[1][1].accuracy
    with pytest.raises(SettingsError, match="candidate"):
        suggest_settings(image, labels, ["balanced"])


def test_a_suggestion_must_beat_the_current_settings_by_the_minimum_gain():
    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    intensity_only = FeatureSettings(sigma_min=1.0, sigma_max=1.0, edges=False, texture=False)
    edges_only = FeatureSettings(sigma_min=8.0, sigma_max=8.0, intensity=False, texture=False)
    ranked = suggest_settings(image, labels, [intensity_only, edges_only])
    gain = ranked[0][1].accuracy - ranked[1][1].accuracy
    assert gain > 0.01
    assert worth_switching(ranked, edges_only) == ranked[0]
    assert worth_switching(ranked, intensity_only) is None  # already the best
    assert worth_switching(ranked, edges_only, min_gain=gain + 0.01) is None
    assert worth_switching(ranked, PRESETS["balanced"]) == ranked[0]  # current not compared: switch


def test_default_suggestions_cover_every_preset():
    image, truth = two_blobs()
    ranked = suggest_settings(image, blob_scribbles(truth))
    assert set(PRESETS.values()) <= {s for s, _ in ranked}
    scores = [r.accuracy for _, r in ranked]
    assert scores == sorted(scores, reverse=True)


# --------------------------------------------------------------------------------- label here next


def test_next_regions_are_the_most_uncertain_windows_without_overlap():
    uncertainty = np.zeros((200, 300), np.float32)
    uncertainty[50:70, 100:120] = 0.9
    uncertainty[150:170, 10:30] = 0.5
    regions = label_next(uncertainty, count=5, window=25)
    assert [r.reason for r in regions] == ["uncertain", "uncertain"]  # nothing else is uncertain
    first, second = regions
    assert first.row0 <= 50 and first.row1 >= 70 and first.col0 <= 100 and first.col1 >= 120
    assert second.row0 <= 150 and second.row1 >= 170
    assert first.score > second.score
    with pytest.raises(ImageError):
        label_next(np.zeros((3, 3, 3), np.float32))
    with pytest.raises(SettingsError):
        label_next(uncertainty, count=0)


def test_misclassified_held_out_strokes_come_first():
    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    labels[88:91, 2:14] = 2  # a "disk" stroke drawn on background: held out, it is misclassified
    report = estimate_accuracy(image, labels)
    model = train(image, labels)
    regions = label_next(seg.uncertainty(model.predict_proba(image)), report, count=3)
    assert regions[0].reason == "misclassified stroke"
    assert regions[0].row0 <= 88 and regions[0].row1 >= 91 and regions[0].col0 <= 2 and regions[0].col1 >= 14
    assert len(regions) == 3


def test_readme_accuracy_example_runs(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    example = next(b for b in blocks if "estimate_accuracy" in b)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README: model, image
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102
    # The first example scribbles one stroke per class: too few to estimate, and it says so.
    assert namespace["report"].accuracy is None
    assert "at least 2 separate strokes" in capsys.readouterr().out
    assert len(namespace["ranked"]) == 6
    assert namespace["regions"] and all(r.reason == "uncertain" for r in namespace["regions"])


def test_tiled_features_give_the_same_strokes_and_a_close_estimate():
    from seg.features.tiles import TileFeatures
    from seg.images import Normalization

    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    model = train(image, labels)
    whole = model.features(image)
    proba = model.predict_proba_features(whole)
    tiles = TileFeatures(image, model.feature_settings, Normalization(), tile=32)
    np.testing.assert_allclose(tiles.gather(np.arange(96), np.arange(96)), whole, atol=1e-5)
    direct = estimate_accuracy(image, labels, features=[whole], proba=[proba])
    tiled = estimate_accuracy(image, labels, features=[tiles], proba=[proba])
    assert tiled.n_groups == direct.n_groups == 6
    assert tiled.per_class["pixels"].tolist() == direct.per_class["pixels"].tolist()
    assert tiled.accuracy == pytest.approx(direct.accuracy, abs=0.03)
    # Without probabilities the tiled frame is not predicted whole; the estimate still comes.
    assert estimate_accuracy(image, labels, features=[tiles]).accuracy > 0.8


def test_time_and_memory_are_bounded_for_imported_masks():
    # A mask-like label image: 1200 specks of one class and two huge regions of the other.
    from seg.evaluate.scribbles import MAX_GROUP_PIXELS, MAX_GROUPS

    image, truth = two_blobs(size=200)
    labels = np.ones((200, 200), np.uint8)
    rows, cols = np.mgrid[2:200:5, 2:200:5]
    labels[rows[:, :30], cols[:, :30]] = 2  # 40 x 30 isolated single pixels
    labels[:, 100] = 0  # splits the background in two
    report = estimate_accuracy(image, labels)
    assert report.n_groups <= MAX_GROUPS + 2
    assert report.per_class.loc["class 2", "strokes"] >= 2
    assert report.confusion.sum() <= report.n_groups * MAX_GROUP_PIXELS
    assert report.per_class.loc["class 1", "pixels"] == 2 * MAX_GROUP_PIXELS  # the huge regions, sampled
    assert report.accuracy is not None


def test_next_regions_from_a_coarse_map_are_in_image_pixels():
    full = np.zeros((400, 600), np.float32)
    full[200:240, 300:340] = 0.9
    coarse = full[::4, ::4]
    [region] = label_next(coarse, count=1, window=48, step=4, shape=full.shape)
    exact = label_next(full, count=1, window=48)[0]
    assert abs(region.row0 - exact.row0) <= 4 and abs(region.col0 - exact.col0) <= 4
    assert region.row1 - region.row0 == 48 and region.row0 <= 200 and region.row1 >= 240
    assert region.col0 <= 300 and region.col1 >= 340
