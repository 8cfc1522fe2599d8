"""A random forest compiled into flat arrays, with a fast multi-core predictor.

:meth:`Forest.fit` trains scikit-learn's ``RandomForestClassifier`` and keeps only what prediction
needs, stacked over all trees in scikit-learn's own node layout:

==================  ==============  =========================================================
``feature``         (n_nodes,) i4   feature tested at a split node (-1 at leaves)
``threshold``       (n_nodes,) f8   go left when ``x[feature] <= threshold`` (0 at leaves)
``children_left``   (n_nodes,) i4   absolute node index of the left child (-1 at leaves)
``children_right``  (n_nodes,) i4   absolute node index of the right child (-1 at leaves)
``value``           (n_nodes, K) f8 class probabilities of a node (rows sum to 1 at leaves)
``roots``           (n_trees,) i4   first node of each tree; a tree ends where the next starts
``n_features``      () i8           number of features the forest was trained on
==================  ==============  =========================================================

These arrays are also the model file format (:meth:`to_arrays` / :meth:`from_arrays`), so
:meth:`from_arrays` treats them as hostile and checks everything a crash or an endless loop
could come from.

Prediction re-lays each tree out breadth first so that a node's children are adjacent, turns
leaves into nodes that point at themselves, and walks blocks of pixels through one tree level
at a time. Every step is then ``node = left[node] + (x[feature[node]] > threshold[node])``:
no branch to mispredict, and many independent pixels in flight. Thresholds are rounded down to
float32, which for float32 features decides every comparison exactly as scikit-learn's float64
``x <= threshold`` does. Probabilities are summed in float64 in tree order and divided by the
number of trees, exactly as scikit-learn does, so :meth:`predict` returns scikit-learn's labels.
The labels-only path stops walking trees for a pixel once the remaining trees can no longer
change its winning class.

Features are expected to be finite, as :func:`seg.features.compute_features` makes them: a NaN
goes to the left child here, whereas scikit-learn routes missing values as learned in training.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from seg.errors import ModelFileError, ModelMismatchError, SettingsError, TrainingError, check_keys, is_whole_number
from seg.jit import parallel_section  # numba's cache, warnings and threading, set up before any kernel

__all__ = [
    "Forest",
    "ForestSettings",
    "ARRAY_NAMES",
    "MAX_CLASSES",
    "MAX_TREES",
    "MAX_TREE_DEPTH",
    "MAX_FOREST_NODES",
    "make_estimator",
    "warm_up",
    "labels_dtype",
]

ARRAY_NAMES = ("feature", "threshold", "children_left", "children_right", "value", "roots", "n_features")

_BLOCK = 128  # pixels walked through a tree together (their state fits the L1 cache)
_BLOCK_CELLS = 1 << 15  # ... but at most this many (pixel, class) sums per block, for huge K
_ROWS_PER_CHUNK = 1 << 18  # pixels per kernel call: bounds the float32 copy of a non-float32 input
# Blocks handed to a thread at a time. Dynamic hand-out instead of numba's default static halves:
# early exit makes blocks unequal, and on a busy machine a preempted thread would hold up the
# other one at the end of every kernel call.
_BLOCKS_PER_GRAB = 16
_LEAF_SUM_TOLERANCE = 1e-6
_EARLY_EXIT_MAX_CLASSES = 4  # labels-only prediction stops walking decided pixels up to this K
MAX_TREES = 2000
"""Most trees a forest may have (``ForestSettings.n_estimators`` and any loaded bundle)."""
MAX_TREE_DEPTH = 64
"""Deepest tree: the bound of ``ForestSettings.max_depth``, and what ``max_depth=None`` grows
to at most. Prediction walks every tree to its depth, so trees x depth bounds the work per pixel."""
MAX_CLASSES = 64
"""Most classes a model may have (training and loading a bundle). Scribbled classes are a few;
the cost of class probabilities grows with K (a (H, W, K) float32 map is 4 K bytes per pixel)."""
MAX_FOREST_NODES = 10_000_000
"""Most nodes over all trees of a loaded forest (~300 MB of arrays for two classes)."""
_MAX_SEED = 2**32 - 1


# --------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ForestSettings:
    """How the random forest is trained; stored inside every model.

    The defaults are chosen for one retrain per stroke. Scribbles are a few thousand strongly
    correlated pixels; trees grown on small bootstrap samples (3 %, 100..5000 pixels) with
    balanced class weights generalise better from them than big trees, and 16 trees of depth
    <= 6 are cheap to grow and to walk: on unseen ISBI slices they beat the scikit-image
    gallery's 50 trees of depth 10 (``tests/unit/test_accuracy_isbi.py``) at a fifth of its
    stroke-update time (``bench/forest_speed.py``). Prediction time grows with
    ``n_estimators * max_depth``.

    Parameters
    ----------
    n_estimators : int
        Number of trees, 1..2000.
    max_depth : int or None
        Maximum tree depth (1..64); None grows trees until their leaves are pure, up to
        :data:`MAX_TREE_DEPTH` (64).
    max_samples : float, int or None
        Pixels drawn (with replacement) to grow each tree. A float in (0, 1] is a fraction of
        the labelled pixels, kept between ``min_tree_samples`` and ``max_tree_samples``; an int
        is a count (at most all labelled pixels); None draws as many as there are.
    class_weight : {"balanced", None}
        "balanced" weighs classes inversely to their scribbled pixel counts, so a class with
        long strokes does not drown one with short strokes.
    random_state : int
        Seed (0..2**32-1): the same scribbles and settings always give the same model.
    n_jobs : int
        Threads used for training (-1: all cores).
    min_samples_leaf : int
        Minimum (weighted) pixels in a leaf, >= 1; larger values give smoother predictions.
    min_tree_samples, max_tree_samples : int
        Bounds of the per-tree sample when ``max_samples`` is a fraction: at least
        ``min_tree_samples`` (few scribbles still grow real trees), at most ``max_tree_samples``
        (huge scribbles do not slow training down).
    """

    n_estimators: int = 16
    max_depth: int | None = 6
    max_samples: float | int | None = 0.03
    class_weight: str | None = "balanced"
    random_state: int = 0
    n_jobs: int = -1
    min_samples_leaf: int = 2
    min_tree_samples: int = 100
    max_tree_samples: int = 5000

    def __post_init__(self) -> None:
        _check_int("n_estimators", self.n_estimators, 1, MAX_TREES)
        if self.max_depth is not None:
            _check_int("max_depth", self.max_depth, 1, MAX_TREE_DEPTH, f"or None (up to {MAX_TREE_DEPTH})")
        self._check_max_samples()
        if self.class_weight not in ("balanced", None):
            raise SettingsError(f"ForestSettings.class_weight must be 'balanced' or None, got {self.class_weight!r}")
        _check_int("random_state", self.random_state, 0, _MAX_SEED)
        _check_int("n_jobs", self.n_jobs, -256, 256)
        if self.n_jobs == 0:
            raise SettingsError("ForestSettings.n_jobs must not be 0: use -1 for all cores or a positive count")
        _check_int("min_samples_leaf", self.min_samples_leaf, 1, 1_000_000)
        _check_int("min_tree_samples", self.min_tree_samples, 1, 100_000_000)
        _check_int(
            "max_tree_samples",
            self.max_tree_samples,
            self.min_tree_samples,
            100_000_000,
            f"(and at least min_tree_samples = {self.min_tree_samples})",
        )

    def _check_max_samples(self) -> None:
        value = self.max_samples
        if value is None:
            return
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise SettingsError(f"ForestSettings.max_samples must be a fraction, a count or None, got {value!r}")
        if isinstance(value, numbers.Integral):
            _check_int("max_samples", value, 1, 100_000_000, "(a count), a fraction in (0, 1] or None")
            return
        value = float(value)
        if not (math.isfinite(value) and 0.0 < value <= 1.0):
            raise SettingsError(f"ForestSettings.max_samples as a fraction must be in (0, 1], got {value!r}")
        object.__setattr__(self, "max_samples", value)

    def tree_samples(self, n_labelled: int) -> int:
        """Number of pixels drawn to grow each tree when ``n_labelled`` pixels are labelled."""
        if self.max_samples is None:
            return n_labelled
        if isinstance(self.max_samples, int):
            return min(self.max_samples, n_labelled)
        wanted = round(self.max_samples * n_labelled)
        return min(n_labelled, max(self.min_tree_samples, min(wanted, self.max_tree_samples)))

    def to_dict(self) -> dict:
        """Plain JSON-able dict of every field (round-trips through :meth:`from_dict`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ForestSettings:
        """Rebuild settings from :meth:`to_dict` output, e.g. read from an untrusted model file.

        Raises
        ------
        SettingsError
            If ``data`` is not a mapping, has unknown or missing keys, or a value of the wrong
            type or range.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        data = check_keys(data, names, what="Forest settings")
        return cls(**{name: data[name] for name in names})


def _check_int(name: str, value: Any, low: int, high: int, hint: str = "") -> None:
    if not is_whole_number(value, low, high):
        raise SettingsError(
            f"ForestSettings.{name} must be a whole number from {low} to {high} {hint}, got {value!r}".replace(
                "  ", " "
            )
        )


# --------------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _breadth_first(left, right, feature, threshold32, roots, n_nodes):  # pragma: no cover - numba
    """Re-lay every tree breadth first with adjacent children and self-looping leaves.

    Returns ``(feature u4, threshold f4, left u4, order i8, depth i4)``: in the new layout the
    right child of ``i`` is ``left[i] + 1``, a leaf has ``left[i] == i`` and threshold +inf, and
    ``order[new] = old`` maps new node indices to the original ones.
    """
    n_trees = roots.shape[0]
    new_feature = np.zeros(n_nodes, np.uint32)
    new_threshold = np.full(n_nodes, np.inf, np.float32)
    new_left = np.zeros(n_nodes, np.uint32)
    order = np.zeros(n_nodes, np.int64)
    depth = np.zeros(n_trees, np.int32)
    node_depth = np.zeros(n_nodes, np.int32)
    for t in range(n_trees):
        root = roots[t]
        order[root] = root
        node_depth[root] = 0
        head = root
        tail = root + 1
        deepest = 0
        while head < tail:
            old = order[head]
            if left[old] >= 0:
                order[tail] = left[old]
                order[tail + 1] = right[old]
                node_depth[tail] = node_depth[head] + 1
                node_depth[tail + 1] = node_depth[head] + 1
                if node_depth[tail] > deepest:
                    deepest = node_depth[tail]
                new_feature[head] = feature[old]
                new_threshold[head] = threshold32[old]
                new_left[head] = tail
                tail += 2
            else:
                new_left[head] = head
            head += 1
        depth[t] = deepest
    return new_feature, new_threshold, new_left, order, depth


@njit(inline="always")
def _top_two(acc, p, n_classes):  # pragma: no cover - numba
    """Index of the first largest entry of ``acc[p]`` and the largest of the others."""
    best = 0
    for k in range(1, n_classes):
        if acc[p, k] > acc[p, best]:
            best = k
    second = -np.inf
    for k in range(n_classes):
        if k != best and acc[p, k] > second:
            second = acc[p, k]
    return best, second


@njit(inline="always")
def _walk(x, base, nodes, count, root, levels, feature, threshold, left):  # pragma: no cover - numba
    """Move ``count`` pixels from ``root`` down ``levels`` levels of one tree."""
    for j in range(count):
        nodes[j] = root
    for _ in range(levels):
        for j in range(count):
            node = nodes[j]
            nodes[j] = left[node] + np.uint32(x[base[j] + feature[node]] > threshold[node])


@njit(parallel=True, cache=True, nogil=True, fastmath=False)
def _labels_kernel(
    x, n_features, feature, threshold, left, value, roots, depth, labels, block_size
):  # pragma: no cover
    """Winning label (1..K) of every pixel; ``x`` is the (N*F,) float32 flat feature array."""
    n = labels.shape[0]
    n_classes = value.shape[1]
    n_trees = roots.shape[0]
    for block in prange((n + block_size - 1) // block_size):
        start = block * block_size
        count = min(block_size, n - start)
        acc = np.zeros((block_size, n_classes), np.float64)
        active = np.empty(block_size, np.int64)
        base = np.empty(block_size, np.uint64)
        nodes = np.empty(block_size, np.uint32)
        for j in range(count):
            active[j] = j
            base[j] = np.uint64((start + j) * n_features)
        for t in range(n_trees):
            _walk(x, base, nodes, count, np.uint32(roots[t]), depth[t], feature, threshold, left)
            for j in range(count):
                p = active[j]
                for k in range(n_classes):
                    acc[p, k] += value[nodes[j], k]
            remaining = n_trees - 1 - t
            # A pixel is decided once its lead exceeds what the remaining trees (each adding at
            # most 1 to any class) could take back; the margin absorbs float64 rounding.
            # The check costs O(K) per pixel: worth it for few classes only (measured in
            # bench/hostile.py: with 8+ classes it cost more than the trees it saved).
            if remaining > 0 and 2 * (t + 1) > n_trees and n_classes <= _EARLY_EXIT_MAX_CLASSES:
                kept = 0
                for j in range(count):
                    p = active[j]
                    best, second = _top_two(acc, p, n_classes)
                    if acc[p, best] - second > remaining + 1e-6:
                        labels[start + p] = best + 1
                    else:
                        active[kept] = p
                        base[kept] = base[j]
                        kept += 1
                count = kept
        for j in range(count):
            p = active[j]
            best = 0
            for k in range(1, n_classes):
                if acc[p, k] / n_trees > acc[p, best] / n_trees:
                    best = k
            labels[start + p] = best + 1


@njit(parallel=True, cache=True, nogil=True, fastmath=False)
def _proba_kernel(
    x, n_features, feature, threshold, left, value, roots, depth, proba, labels, block_size
):  # pragma: no cover
    """Class probabilities (N, K) float32 of every pixel, and labels too if ``labels`` has N rows."""
    n = proba.shape[0]
    n_classes = value.shape[1]
    n_trees = roots.shape[0]
    want_labels = labels.shape[0] == n
    for block in prange((n + block_size - 1) // block_size):
        start = block * block_size
        count = min(block_size, n - start)
        acc = np.zeros((block_size, n_classes), np.float64)
        base = np.empty(block_size, np.uint64)
        nodes = np.empty(block_size, np.uint32)
        for j in range(count):
            base[j] = np.uint64((start + j) * n_features)
        for t in range(n_trees):
            _walk(x, base, nodes, count, np.uint32(roots[t]), depth[t], feature, threshold, left)
            for j in range(count):
                for k in range(n_classes):
                    acc[j, k] += value[nodes[j], k]
        for j in range(count):
            best = 0
            for k in range(n_classes):
                mean = acc[j, k] / n_trees
                proba[start + j, k] = mean
                if mean > acc[j, best] / n_trees:
                    best = k
            if want_labels:
                labels[start + j] = best + 1


# --------------------------------------------------------------------------------- Forest


def labels_dtype(n_classes: int) -> np.dtype:
    """dtype of predicted labels: uint8 for up to 255 classes, uint16 above."""
    return np.dtype(np.uint8 if n_classes <= 255 else np.uint16)


def _narrow(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """:func:`labels_dtype` labels (the kernels write uint16: one compiled variant, not two)."""
    return labels.astype(labels_dtype(n_classes), copy=False)


def _chunks(rows: np.ndarray):
    """``(start, stop, x)`` per chunk of rows, ``x`` a flat read-only float32 C-contiguous view.

    Read-only always (a view of our copy, or of the caller's array), so that numba compiles one
    variant of each kernel, whatever the flags of the caller's array.
    """
    for start in range(0, len(rows), _ROWS_PER_CHUNK):
        chunk = np.ascontiguousarray(rows[start : start + _ROWS_PER_CHUNK], dtype=np.float32)
        x = chunk.reshape(-1).view()
        x.flags.writeable = False
        yield start, start + len(chunk), x


def _round_down_to_float32(threshold: np.ndarray) -> np.ndarray:
    """Largest float32 <= each threshold: then float32 ``x <= t32`` iff ``x <= t`` exactly."""
    with np.errstate(over="ignore"):
        t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


class Forest:
    """An immutable random forest stored as stacked node arrays, predicted with numba.

    Attributes
    ----------
    n_features : int
        Number of features F per pixel the forest expects.
    n_classes : int
        Number of classes K; class column ``c`` is label ``c + 1``.
    n_trees : int
    n_nodes : int
        Total number of nodes over all trees.

    Build one with :meth:`fit`, :meth:`from_estimator` or :meth:`from_arrays`; the constructor
    trusts its arguments.
    """

    __slots__ = ("n_features", "n_classes", "_arrays", "_fast", "_block_size")

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self._arrays = {}
        for name in ARRAY_NAMES:
            array = np.array(arrays[name], order="C")  # a private copy that nobody can change
            array.flags.writeable = False
            self._arrays[name] = array
        self.n_features = int(self._arrays["n_features"])
        self.n_classes = int(self._arrays["value"].shape[1])
        self._fast = self._compile()
        self._block_size = max(8, min(_BLOCK, _BLOCK_CELLS // self.n_classes))

    # ----------------------------------------------------------------------- construction

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, n_classes: int, settings: ForestSettings) -> Forest:
        """Train a scikit-learn random forest on labelled pixels and compile it.

        Parameters
        ----------
        X : (N, F) float32
            Features of the labelled pixels.
        y : (N,) int
            Their labels, 1..K. Classes missing from ``y`` get probability 0 everywhere.
        n_classes : int
            K, the number of classes of the model (the output has K columns).
        settings : ForestSettings
            Trees, depth, bootstrap size, class weighting and seed. The same data and
            settings always give the same forest.

        Returns
        -------
        Forest
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        y = np.asarray(y)
        if X.ndim != 2 or y.ndim != 1 or len(y) != len(X) or len(y) == 0:
            raise TrainingError(
                f"Training needs (N, F) features and (N,) labels with N > 0, got {X.shape} and {y.shape}."
            )
        if y.min() < 1 or y.max() > n_classes:
            raise TrainingError(f"Training labels must be 1..{n_classes}, got {y.min()}..{y.max()}.")
        estimator = make_estimator(settings, n_samples=len(y))
        estimator.fit(X, y)
        return cls.from_estimator(estimator, n_classes)

    @classmethod
    def from_estimator(cls, estimator, n_classes: int) -> Forest:
        """Compile a fitted ``RandomForestClassifier`` whose classes are labels in 1..K.

        Parameters
        ----------
        estimator : sklearn.ensemble.RandomForestClassifier
            Fitted on (N, F) features and labels in 1..``n_classes`` (single output).
        n_classes : int
            K; classes the estimator never saw get zero probability.
        """
        classes = np.asarray(estimator.classes_)
        if classes.ndim != 1 or classes.min() < 1 or classes.max() > n_classes:
            raise TrainingError(f"The forest's classes {classes.tolist()} are not labels in 1..{n_classes}.")
        columns = classes.astype(np.int64) - 1
        parts: dict[str, list[Any]] = {name: [] for name in ARRAY_NAMES[:-1]}
        offset = 0
        for tree in (e.tree_ for e in estimator.estimators_):
            left, right = tree.children_left, tree.children_right
            leaf = left < 0
            raw = tree.value[:, 0, :]
            # Exactly scikit-learn's predict_proba: divide each row by its sum (0 -> 1).
            normalizer = raw.sum(axis=1)[:, np.newaxis]
            normalizer[normalizer == 0.0] = 1.0
            value = np.zeros((tree.node_count, n_classes), np.float64)
            value[:, columns] = raw / normalizer
            parts["feature"].append(np.where(leaf, -1, tree.feature))
            parts["threshold"].append(np.where(leaf, 0.0, tree.threshold))
            parts["children_left"].append(np.where(leaf, -1, left + offset))
            parts["children_right"].append(np.where(leaf, -1, right + offset))
            parts["value"].append(value)
            parts["roots"].append([offset])
            offset += tree.node_count
        arrays: dict[str, np.ndarray] = {
            "feature": np.concatenate(parts["feature"]).astype(np.int32),
            "threshold": np.concatenate(parts["threshold"]).astype(np.float64),
            "children_left": np.concatenate(parts["children_left"]).astype(np.int32),
            "children_right": np.concatenate(parts["children_right"]).astype(np.int32),
            "value": np.concatenate(parts["value"]),
            "roots": np.concatenate(parts["roots"]).astype(np.int32),
            "n_features": np.array(estimator.n_features_in_, dtype=np.int64),
        }
        return cls(arrays)

    def _compile(self) -> tuple:
        a = self._arrays
        threshold32 = _round_down_to_float32(a["threshold"])
        feature, threshold, left, order, depth = _breadth_first(
            a["children_left"], a["children_right"], a["feature"], threshold32, a["roots"], len(a["feature"])
        )
        value = np.ascontiguousarray(a["value"][order])
        fast = (feature, threshold, left, value, a["roots"], depth)
        for array in fast:
            array.flags.writeable = False  # immutable, and always the same numba signature
        return fast

    # ----------------------------------------------------------------------- properties

    @property
    def n_trees(self) -> int:
        return int(self._arrays["roots"].shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self._arrays["feature"].shape[0])

    @property
    def depth(self) -> int:
        """Depth of the deepest tree (0 for a forest of single leaves)."""
        return int(self._fast[5].max())

    def check_within(self, settings: ForestSettings) -> None:
        """Refuse a forest bigger than the settings it claims to be trained with.

        A model file carries both, and prediction costs trees x depth per pixel: a bundle whose
        settings say 16 trees of depth 6 must not hold 2 000 000 trees or a chain of 200 000
        splits (``describe_model`` would report the settings, the app would take minutes).

        Raises
        ------
        ModelFileError
            More trees than ``settings.n_estimators``, a tree deeper than ``settings.max_depth``
            (:data:`MAX_TREE_DEPTH` for None), or a tree with more nodes than that depth allows.
        """
        if self.n_trees > settings.n_estimators:
            raise _refuse(
                f"the forest has {self.n_trees:,} trees but its settings say n_estimators = {settings.n_estimators}"
            )
        depth_limit = settings.max_depth if settings.max_depth is not None else MAX_TREE_DEPTH
        nodes = np.diff(np.append(self._arrays["roots"], self.n_nodes).astype(np.int64))
        biggest = int(nodes.max())
        if biggest > 2 ** (depth_limit + 1) - 1:
            raise _refuse(
                f"a tree has {biggest:,} nodes, more than a tree of depth {depth_limit} can have "
                f"({2 ** (depth_limit + 1) - 1:,})"
            )
        if self.depth > depth_limit:
            raise _refuse(
                f"a tree is {self.depth:,} levels deep but the settings say max_depth = "
                f"{settings.max_depth} (at most {depth_limit})"
            )

    def __repr__(self) -> str:
        return (
            f"Forest(n_trees={self.n_trees}, n_nodes={self.n_nodes}, "
            f"n_features={self.n_features}, n_classes={self.n_classes})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Forest):
            return NotImplemented
        return all(np.array_equal(self._arrays[k], other._arrays[k]) for k in ARRAY_NAMES)

    def __hash__(self) -> int:
        a = self._arrays
        return hash((self.n_features, self.n_classes, self.n_nodes, a["threshold"][:64].tobytes()))

    # ----------------------------------------------------------------------- prediction

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Label of every pixel: the class with the highest mean probability over the trees.

        Equal to scikit-learn's ``predict`` of the estimator the forest was compiled from.

        Parameters
        ----------
        features : (..., F) float32
            E.g. (H, W, F) or (N, F). Other float dtypes are converted.

        Returns
        -------
        labels : (...) uint8 (K <= 255) or uint16, values 1..K
        """
        rows, shape = self._rows(features)
        labels = np.empty(len(rows), np.uint16)
        for start, stop, x in _chunks(rows):
            with parallel_section(), numba.parallel_chunksize(_BLOCKS_PER_GRAB):
                _labels_kernel(x, self.n_features, *self._fast, labels[start:stop], self._block_size)
        return _narrow(labels, self.n_classes).reshape(shape)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Mean class probabilities over the trees (scikit-learn's ``predict_proba``, as float32).

        Parameters
        ----------
        features : (..., F) float32

        Returns
        -------
        proba : (..., K) float32, summing to 1 over K
        """
        proba, _ = self._predict_proba(features, with_labels=False)
        return proba

    def predict_proba_and_labels(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and labels in one pass: ``(predict_proba(f), predict(f))``."""
        return self._predict_proba(features, with_labels=True)

    def _predict_proba(self, features: np.ndarray, *, with_labels: bool) -> tuple[np.ndarray, np.ndarray]:
        rows, shape = self._rows(features)
        proba = np.empty((len(rows), self.n_classes), np.float32)
        labels = np.empty(len(rows) if with_labels else 0, np.uint16)
        for start, stop, x in _chunks(rows):
            with parallel_section(), numba.parallel_chunksize(_BLOCKS_PER_GRAB):
                _proba_kernel(
                    x,
                    self.n_features,
                    *self._fast,
                    proba[start:stop],
                    labels[start:stop] if with_labels else labels,
                    self._block_size,
                )
        labels = _narrow(labels, self.n_classes).reshape(shape if with_labels else -1)
        return proba.reshape(*shape, self.n_classes), labels

    def _rows(self, features: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
        """(N, F) rows of ``features`` and their leading shape, after checking F."""
        features = np.asarray(features)
        if features.ndim < 1 or features.shape[-1] != self.n_features:
            got = features.shape[-1] if features.ndim else "no"
            raise ModelMismatchError(
                f"The features have {got} values per pixel but the forest was trained on "
                f"{self.n_features}: compute them with the model's own feature settings."
            )
        if not np.issubdtype(features.dtype, np.floating) and not np.issubdtype(features.dtype, np.integer):
            raise ModelMismatchError(f"Features must be numbers, got dtype {features.dtype}.")
        # A view for contiguous input; the float32 conversion happens chunk by chunk.
        return features.reshape(-1, self.n_features), features.shape[:-1]

    # ----------------------------------------------------------------------- file format

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The forest as named arrays (see the module docstring), for :mod:`seg.persist`."""
        return {name: array.copy() for name, array in self._arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Forest:
        """Rebuild a forest from :meth:`to_arrays` output read from an untrusted file.

        Raises
        ------
        ModelFileError
            If any array is missing, of the wrong dtype or shape, or describes something that is
            not a forest (child indices out of range or pointing backwards, feature indices out
            of range, non-finite thresholds, probabilities that are negative, non-finite or do
            not sum to 1 at leaves), or is larger than any forest may be: more than
            :data:`MAX_TREES` trees, :data:`MAX_FOREST_NODES` nodes or a tree deeper than
            :data:`MAX_TREE_DEPTH` (see also :meth:`check_within`).
        """
        forest = cls(_validated(arrays))
        if forest.depth > MAX_TREE_DEPTH:
            raise _refuse(f"a tree is {forest.depth:,} levels deep, more than {MAX_TREE_DEPTH}")
        return forest


# --------------------------------------------------------------------------------- validation


_DTYPES = {
    "feature": np.int32,
    "threshold": np.float64,
    "children_left": np.int32,
    "children_right": np.int32,
    "value": np.float64,
    "roots": np.int32,
    "n_features": np.int64,
}


def _refuse(message: str) -> ModelFileError:
    return ModelFileError(f"The model's forest arrays are invalid: {message}. The file is damaged or was altered.")


def _validated(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(arrays, dict):
        raise _refuse(f"expected a dict of arrays, got {type(arrays).__name__}")
    missing = sorted(set(ARRAY_NAMES) - set(arrays))
    extra = sorted(set(arrays) - set(ARRAY_NAMES))
    if missing or extra:
        raise _refuse(f"missing {missing}, unexpected {extra}")
    a = {}
    for name, dtype in _DTYPES.items():
        array = arrays[name]
        if not isinstance(array, np.ndarray) or array.dtype != np.dtype(dtype):
            got = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
            raise _refuse(f"{name!r} must be a {np.dtype(dtype)} array, got {got}")
        a[name] = array
    n_nodes = a["feature"].shape[0] if a["feature"].ndim == 1 else -1
    for name in ("feature", "threshold", "children_left", "children_right"):
        if a[name].shape != (n_nodes,):
            raise _refuse(f"{name!r} has shape {a[name].shape}, expected one value per node ({n_nodes},)")
    if a["value"].ndim != 2 or a["value"].shape[0] != n_nodes or not 1 <= a["value"].shape[1] <= 65_535:
        raise _refuse(f"'value' has shape {a['value'].shape}, expected ({n_nodes}, K) with 1 <= K <= 65535")
    if a["n_features"].shape != () or not 1 <= int(a["n_features"]) <= 1 << 20:
        raise _refuse(f"'n_features' must be a scalar in 1..{1 << 20}, got {a['n_features']!r}")
    if n_nodes < 1 or n_nodes > MAX_FOREST_NODES:
        raise _refuse(f"the forest has {n_nodes:,} nodes; a forest has 1..{MAX_FOREST_NODES:,}")
    if a["roots"].ndim == 1 and a["roots"].size > MAX_TREES:
        raise _refuse(f"the forest has {a['roots'].size:,} trees, more than {MAX_TREES}")
    roots = a["roots"]
    if (
        roots.ndim != 1
        or roots.size < 1
        or roots[0] != 0
        or np.any(np.diff(roots.astype(np.int64)) < 1)
        or roots[-1] >= n_nodes
    ):
        raise _refuse("'roots' must start at 0 and increase strictly, staying below the node count")
    _check_structure(a, n_nodes)
    return a


def _check_structure(a: dict[str, np.ndarray], n_nodes: int) -> None:
    index = np.arange(n_nodes, dtype=np.int64)
    tree_end = np.append(a["roots"][1:], n_nodes).astype(np.int64)[np.searchsorted(a["roots"], index, side="right") - 1]
    left = a["children_left"].astype(np.int64)
    right = a["children_right"].astype(np.int64)
    leaf = left == -1
    if np.any((right == -1) != leaf):
        raise _refuse("a node has exactly one child")
    split = ~leaf
    # Children after their parent and inside the parent's tree: no cycle, no escape.
    for name, child in (("children_left", left), ("children_right", right)):
        bad = split & ((child <= index) | (child >= tree_end))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise _refuse(f"{name}[{i}] = {child[i]} is not a later node of the same tree")
    # Every node but the roots is the child of exactly one node: proper trees, no shared
    # subtrees (which would make the breadth-first re-layout overrun a tree).
    children = np.concatenate([left[split], right[split]])
    # (bincount, not np.unique: numpy's hash-based unique took 1.8 s on a 200 000-node chain)
    if len(children) != n_nodes - len(a["roots"]) or np.bincount(children, minlength=n_nodes).max(initial=0) > 1:
        raise _refuse("a node is the child of two nodes, or of none")
    feature = a["feature"]
    bad = split & ((feature < 0) | (feature >= int(a["n_features"])))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise _refuse(f"feature[{i}] = {feature[i]} is outside 0..{int(a['n_features']) - 1}")
    if not np.all(np.isfinite(a["threshold"][split])):
        raise _refuse("a split threshold is NaN or infinite")
    value = a["value"]
    if not np.all(np.isfinite(value)) or np.any(value < 0) or np.any(value > 1):
        raise _refuse("class probabilities must be finite numbers in [0, 1]")
    sums = value[leaf].sum(axis=1)
    if np.any(np.abs(sums - 1.0) > _LEAF_SUM_TOLERANCE):
        raise _refuse("the class probabilities of a leaf do not sum to 1")


# --------------------------------------------------------------------------------- helpers


def make_estimator(settings: ForestSettings, n_samples: int):
    """The scikit-learn ``RandomForestClassifier`` that ``settings`` describe for ``n_samples`` pixels."""
    from sklearn.ensemble import RandomForestClassifier

    per_tree = settings.tree_samples(n_samples)
    return RandomForestClassifier(
        n_estimators=settings.n_estimators,
        max_depth=settings.max_depth if settings.max_depth is not None else MAX_TREE_DEPTH,
        # scikit-learn refuses a count above the data size; None means "all of them".
        max_samples=None if per_tree >= n_samples else per_tree,
        min_samples_leaf=settings.min_samples_leaf,
        class_weight=settings.class_weight,
        random_state=settings.random_state,
        n_jobs=settings.n_jobs,
        bootstrap=True,
    )


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels and import scikit-learn.

    Both take seconds the first time (scikit-learn's import alone 1-3 s); an app calls this once
    at start-up so that the first stroke is as fast as the others.
    """
    import sklearn.ensemble  # noqa: F401

    arrays = {
        "feature": np.array([0, -1, -1], np.int32),
        "threshold": np.array([0.5, 0.0, 0.0]),
        "children_left": np.array([1, -1, -1], np.int32),
        "children_right": np.array([2, -1, -1], np.int32),
        "value": np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]),
        "roots": np.array([0], np.int32),
        "n_features": np.array(1, np.int64),
    }
    forest = Forest(arrays)
    x = np.array([[0.0], [1.0]], np.float32)
    forest.predict(x)
    forest.predict_proba_and_labels(x)
    forest.predict_proba(x)
