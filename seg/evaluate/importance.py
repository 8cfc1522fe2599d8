"""Which features the forest relies on: impurity importance, and permutation on held-out strokes.

Impurity importance (scikit-learn's ``feature_importances_``, mean decrease of Gini impurity)
is recomputed from the compiled forest, which keeps each node's class distribution but not its
sample weight. The weight is implied: a parent's distribution is the weighted mean of its two
children's, ``p = a * p_left + (1 - a) * p_right``, so the share ``a`` of the parent's weight
that goes left is the least-squares solution of that line (exact whenever the split changes the
distribution, which any split that decreases impurity does). So saved models need nothing extra.

Permutation importance is slower and more honest (impurity importance favours features with
many distinct values): per cross-validation fold, each feature of the held-out stroke pixels
is shuffled and the drop in held-out balanced accuracy is averaged over folds.
"""

from __future__ import annotations

import numpy as np

from seg.forest import Forest, ForestSettings

__all__ = [
    "held_out_importance",
    "importance_by_scale",
    "importance_table",
    "impurity_importance",
    "permutation_importance",
]


def impurity_importance(forest: Forest) -> np.ndarray:
    """Mean decrease of Gini impurity per feature, as scikit-learn's ``feature_importances_``.

    Parameters
    ----------
    forest : Forest

    Returns
    -------
    (F,) float64
        Non-negative, summing to 1 (all zeros for a forest of single-leaf trees).
    """
    arrays = forest.to_arrays()
    left, right = arrays["children_left"], arrays["children_right"]
    feature, value, roots = arrays["feature"], arrays["value"], arrays["roots"]
    n_nodes = len(feature)
    gini = 1.0 - np.sum(value * value, axis=1)
    weight = np.zeros(n_nodes)
    weight[roots] = 1.0
    split = np.flatnonzero(left >= 0)
    # Children come after their parent (checked when a forest is loaded), so one pass in
    # index order fills every weight before it is used.
    delta = value[left[split]] - value[right[split]]
    norm = np.einsum("ij,ij->i", delta, delta)
    share = np.divide(
        np.einsum("ij,ij->i", value[split] - value[right[split]], delta),
        norm,
        out=np.full(len(split), 0.5),
        where=norm > 1e-12,
    )
    share = np.clip(share, 0.0, 1.0)
    for node, a in zip(split, share):
        weight[left[node]] = weight[node] * a
        weight[right[node]] = weight[node] * (1.0 - a)
    decrease = (
        weight[split] * gini[split]
        - weight[left[split]] * gini[left[split]]
        - weight[right[split]] * gini[right[split]]
    )
    tree = np.searchsorted(roots, split, side="right") - 1
    n_features = forest.n_features
    per_tree = np.zeros((len(roots), n_features))
    np.add.at(per_tree, (tree, feature[split]), np.maximum(decrease, 0.0))
    totals = per_tree.sum(axis=1, keepdims=True)
    per_tree = np.divide(per_tree, totals, out=np.zeros_like(per_tree), where=totals > 0)
    mean = per_tree.mean(axis=0)
    total = mean.sum()
    return mean / total if total > 0 else mean


def importance_table(layout, importance: np.ndarray, column: str = "importance"):
    """A DataFrame of ``layout`` (:class:`seg.features.FeatureInfo` per feature) and one importance column,
    sorted by importance, largest first."""
    import pandas as pd

    table = pd.DataFrame(
        {
            "feature": [f.name for f in layout],
            "source": [f.source for f in layout],
            "group": [f.group for f in layout],
            "kind": [f.kind for f in layout],
            "sigma": [f.sigma for f in layout],
            column: np.asarray(importance, np.float64),
        }
    )
    return table.sort_values(column, ascending=False, kind="stable").reset_index(drop=True)


def _balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    classes = np.unique(truth)
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in classes]))


def permutation_importance(
    x: np.ndarray, y: np.ndarray, fold: np.ndarray, n_classes: int, forest=None, *, repeats: int = 2, seed: int = 0
) -> np.ndarray:
    """Drop in held-out balanced accuracy when one feature of the held-out strokes is shuffled.

    Parameters
    ----------
    x : (N, F) float32
        Features of the labelled pixels.
    y : (N,) int
        Their classes 1..K.
    fold : (N,) int
        Cross-validation fold of every pixel (whole strokes per fold).
    n_classes : int
    forest : ForestSettings, optional
    repeats : int
        Shuffles per feature and fold.
    seed : int

    Returns
    -------
    (F,) float64
        Mean drop over folds (can be slightly negative for a useless feature).
    """
    forest = ForestSettings() if forest is None else forest
    rng = np.random.default_rng(seed)
    drops = []
    for k in np.unique(fold):
        test, train = fold == k, fold != k
        if len(np.unique(y[train])) < 2 or len(np.unique(y[test])) < 1:
            continue
        model = Forest.fit(x[train], y[train], n_classes, forest)
        held = np.array(x[test])
        base = _balanced_accuracy(y[test], model.predict(held))
        drop = np.zeros(x.shape[1])
        for j in range(x.shape[1]):
            original = held[:, j].copy()
            for _ in range(repeats):
                held[:, j] = rng.permutation(original)
                drop[j] += (base - _balanced_accuracy(y[test], model.predict(held))) / repeats
            held[:, j] = original
        drops.append(drop)
    return np.mean(drops, axis=0) if drops else np.zeros(x.shape[1])


def importance_by_scale(table, column: str = "importance"):
    """Sum a per-feature importance table by feature group and scale, e.g. "edges at σ 4".

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``sigma``, ``label`` (e.g. ``"edges σ 4.0"``) and ``column``, largest first.
    """
    summed = table.groupby(["group", "sigma"], as_index=False)[column].sum()
    summed["label"] = [f"{g} σ {s:.3g}" for g, s in zip(summed["group"], summed["sigma"])]
    return summed.sort_values(column, ascending=False, kind="stable").reset_index(drop=True)[
        ["group", "sigma", "label", column]
    ]


def held_out_importance(
    image: np.ndarray,
    labels: np.ndarray,
    settings=None,
    forest=None,
    *,
    strokes: np.ndarray | None = None,
    normalization=None,
    features=None,
    repeats: int = 2,
    seed: int = 0,
):
    """Permutation importance of every feature on held-out strokes, as a table (on demand: slow).

    Parameters
    ----------
    image, labels, settings, forest, strokes, normalization, features
        As :func:`seg.evaluate.estimate_accuracy`.
    repeats, seed
        As :func:`permutation_importance`.

    Returns
    -------
    pandas.DataFrame
        As :meth:`seg.Model.feature_importance`, with column ``importance`` = mean drop of
        held-out balanced accuracy when the feature is shuffled, largest first.
    """
    from seg.evaluate.scribbles import bounded, gather_scribbles, stroke_folds

    data = gather_scribbles(image, labels, settings, strokes=strokes, normalization=normalization, features=features)
    x, y, group, group_class, _ = bounded(data.x, data.y, data.group, data.group_class, data.boxes, seed)
    fold = stroke_folds(group_class)[group]
    drop = permutation_importance(x, y, fold, len(data.names), forest, repeats=repeats, seed=seed)
    layout = data.settings.describe_features(_channels(image))
    return importance_table(layout, drop)


def _channels(image: np.ndarray) -> int:
    from seg.images import as_frames

    return int(as_frames(image).shape[-1])
