"""How accurate is the classifier on the pixels nobody labelled? Estimated from the scribbles.

What is measured
----------------
Cross-validation that holds out whole strokes: the forest is retrained without some strokes
and predicts them (never by pixel: neighbouring pixels of one stroke are nearly identical, so
pixel-wise folds are wildly optimistic). That alone is still a poor guess of the accuracy on the
*unlabelled* pixels, because strokes sit in the middle of structures: the class mix is the
scribbler's, not the image's, and boundaries, where most errors are, are hardly ever held out.

So the held-out pixels are reweighted to look like the unlabelled ones. Every pixel falls into a
*cell*: the class the forest predicts and how sure it is (the margin between its two most
probable classes, binned). The full model predicts a sample of the unlabelled pixels, which
gives the share of unlabelled pixels in each cell; the held-out strokes give, per cell, how
often a prediction there is right. The estimate is the sum over cells of share times that
rate. Unsure cells, where held-out strokes rarely land, borrow strength from the forest's own
probability (shrinkage towards it), so boundaries count with the weight they have in the image.

The 90 % interval resamples whole strokes (a bootstrap stratified by class, each stroke in or
out as a unit), so two strokes give a wide interval and twenty a narrow one; it is widened by
the disagreement between the held-out rate and the forest's own probability in the cells the
strokes cannot vouch for. Its calibration on ISBI is measured in ``bench/accuracy_estimate.py``.

Known lean: the default forest's probabilities are soft (shallow trees on small samples), so on
an easy image, where nearly every pixel is right, the estimate is conservative (e.g. 0.92 for a
true 0.99). Rescaling the forest's error rate by the held-out strokes' own error rate was tried
and made ISBI worse (mean absolute error 0.032 -> 0.055): stroke pixels are easier than the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from seg.errors import SettingsError
from seg.evaluate.scribbles import (
    MAX_FOLDS,
    MIN_STROKES_PER_CLASS,
    bounded,
    gather_scribbles,
    stroke_folds,
)
from seg.features import FeatureSettings
from seg.forest import Forest, ForestSettings
from seg.images import Normalization

__all__ = ["AccuracyReport", "CrossValidation", "cross_validate", "estimate_accuracy", "margin"]

MARGIN_BINS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0 + 1e-6)
"""Edges of the confidence bins (margin between the two most probable classes)."""
UNLABELLED_SAMPLE = 100_000
"""Unlabelled pixels the full model predicts for the cell shares (sampling error ~0.002)."""
SHRINKAGE = 500.0
"""Pseudo-pixels of the forest's own probability added to each cell's held-out count."""
STROKE_WEIGHT = 150.0
"""Pseudo-pixels each held-out stroke counts for (about the pixels of a simulated ISBI stroke)."""
DOUBT = 0.5
"""Interval widening, down and up, per unit of (untrusted share x the forest's own error rate there)."""
N_BOOTSTRAP = 400


@dataclass(frozen=True)
class CrossValidation:
    """Held-out predictions of every labelled pixel, with the stroke each pixel belongs to.

    Attributes
    ----------
    truth : (N,) int64
        Scribbled class 1..K of every labelled pixel.
    proba : (N, K) float32
        Probabilities from the forest trained without the pixel's fold.
    group : (N,) int64
        Stroke index 0..G-1 of every pixel.
    group_class : (G,) int64
        Class 1..K of every stroke.
    fold : (G,) int64
        Fold of every stroke.
    """

    truth: np.ndarray
    proba: np.ndarray
    group: np.ndarray
    group_class: np.ndarray
    fold: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        return np.argmax(self.proba, axis=1) + 1

    @property
    def n_groups(self) -> int:
        return len(self.group_class)


@dataclass(frozen=True)
class AccuracyReport:
    """How accurate a classifier trained on these scribbles is, estimated from the scribbles.

    Attributes
    ----------
    settings : FeatureSettings
    forest : ForestSettings
        What the estimate was made for.
    accuracy : float or None
        Estimated fraction of the *unlabelled* pixels (of the scribbled frames) labelled right;
        None when the strokes are too few (see :attr:`reason`).
    interval : (float, float) or None
        90 % interval of :attr:`accuracy`.
    per_class : pandas.DataFrame
        One row per class (index: class name): ``label``, ``strokes``, ``pixels`` (held out),
        ``precision``, ``recall``, ``iou`` of the stroke-held-out predictions (NaN where
        undefined).
    confusion : (K, K) int64
        Held-out pixels: row = scribbled class, column = predicted class.
    n_groups : int
        Strokes (groups) the estimate rests on.
    held_out_accuracy : float or None
        Plain leave-strokes-out accuracy: the fraction of held-out scribbled pixels predicted
        right (the confusion matrix's trace over its sum). Biased towards easy pixels.
    reason : str
        Why :attr:`accuracy` is None; empty otherwise.
    group_accuracy : (G,) float64
        Held-out accuracy of every stroke (for "label here next").
    group_boxes : (G, 5) int64
        ``(frame, row0, col0, row1, col1)`` bounding box of every stroke (end exclusive).
    cross_validation : CrossValidation or None
        The held-out predictions, for permutation importance and further analysis.
    """

    settings: FeatureSettings
    forest: object
    accuracy: float | None
    interval: tuple[float, float] | None
    per_class: object
    confusion: np.ndarray
    n_groups: int
    held_out_accuracy: float | None = None
    reason: str = ""
    group_accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    group_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.int64))
    cross_validation: CrossValidation | None = field(default=None, repr=False)

    def summary(self) -> str:
        """One line for people, e.g. ``"accuracy 0.91 (90 % interval 0.86-0.94, 12 strokes)"``."""
        if self.accuracy is None or self.interval is None:
            return f"too few strokes to estimate: {self.reason}"
        low, high = self.interval
        return f"accuracy {self.accuracy:.2f} (90 % interval {low:.2f}–{high:.2f}, {self.n_groups} strokes)"


# --------------------------------------------------------------------------------- cross-validation


def cross_validate(
    x: np.ndarray,
    y: np.ndarray,
    group: np.ndarray,
    group_class: np.ndarray,
    n_classes: int,
    forest=None,
    *,
    max_folds: int = MAX_FOLDS,
) -> CrossValidation:
    """Predict every labelled pixel with a forest trained without its stroke's fold.

    Parameters
    ----------
    x : (N, F) float32
        Features of the labelled pixels.
    y : (N,) int
        Their classes 1..K.
    group : (N,) int
        Stroke index 0..G-1 of every pixel.
    group_class : (G,) int
        Class of every stroke.
    n_classes : int
        K.
    forest : ForestSettings, optional
    max_folds : int
        Retrainings at most.
    """
    forest = ForestSettings() if forest is None else forest
    fold_of_group = stroke_folds(group_class, max_folds)
    fold = fold_of_group[group]
    proba = np.zeros((len(y), n_classes), np.float32)
    for k in np.unique(fold_of_group):
        test = fold == k
        train = ~test
        if len(np.unique(y[train])) < 2:
            # Only one class left to learn from: the held-out pixels get that class.
            proba[np.ix_(test, [int(y[train][0]) - 1])] = 1.0
            continue
        model = Forest.fit(x[train], y[train], n_classes, forest)
        proba[test] = model.predict_proba(x[test])
    return CrossValidation(
        truth=np.asarray(y, np.int64),
        proba=proba,
        group=np.asarray(group, np.int64),
        group_class=np.asarray(group_class, np.int64),
        fold=fold_of_group,
    )


def margin(proba: np.ndarray) -> np.ndarray:
    """Difference between the two largest probabilities of every row: ``(N, K) -> (N,)``."""
    if proba.shape[-1] < 2:
        return np.ones(proba.shape[:-1], np.float32)
    top = np.partition(proba, proba.shape[-1] - 2, axis=-1)
    return top[..., -1] - top[..., -2]


def _cells(proba: np.ndarray) -> np.ndarray:
    """Cell index of every row: predicted class times the margin bins, plus the margin bin."""
    bins = np.clip(np.digitize(margin(proba), MARGIN_BINS) - 1, 0, len(MARGIN_BINS) - 2)
    return np.argmax(proba, axis=-1) * (len(MARGIN_BINS) - 1) + bins


# --------------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class _Evidence:
    """Per-stroke counts per cell, and the unlabelled pixels' cell shares and own confidence."""

    right: np.ndarray  # (G, cells) held-out pixels predicted right
    seen: np.ndarray  # (G, cells) held-out pixels
    share: np.ndarray  # (cells,) fraction of unlabelled pixels
    confidence: np.ndarray  # (cells,) mean top probability of the unlabelled pixels in the cell


def _evidence(cv: CrossValidation, unlabelled_proba: np.ndarray) -> _Evidence:
    n_cells = cv.proba.shape[1] * (len(MARGIN_BINS) - 1)
    cell = _cells(cv.proba)
    # Every stroke weighs STROKE_WEIGHT pseudo-pixels, however wide the brush or long the stroke:
    # strokes, not pixels, are the independent evidence.
    pixel_weight = STROKE_WEIGHT / np.bincount(cv.group, minlength=cv.n_groups)[cv.group]
    right = cv.predicted == cv.truth
    flat = cv.group * n_cells + cell
    size = cv.n_groups * n_cells
    seen = np.bincount(flat, weights=pixel_weight, minlength=size).reshape(cv.n_groups, n_cells)
    hits = np.bincount(flat, weights=right * pixel_weight, minlength=size).reshape(cv.n_groups, n_cells)
    target = _cells(unlabelled_proba)
    counts = np.bincount(target, minlength=n_cells).astype(np.float64)
    top = np.bincount(target, weights=unlabelled_proba.max(axis=1), minlength=n_cells)
    confidence = np.divide(top, counts, out=np.full(n_cells, 0.5), where=counts > 0)
    return _Evidence(right=hits, seen=seen, share=counts / max(counts.sum(), 1.0), confidence=confidence)


def _combined(evidence: _Evidence, weights: np.ndarray) -> np.ndarray:
    """Cell shares times the shrunk held-out rate, strokes weighted by ``weights`` (G,) or (B, G)."""
    right = weights @ evidence.right
    seen = weights @ evidence.seen
    rate = (right + SHRINKAGE * evidence.confidence) / (seen + SHRINKAGE)
    return rate @ evidence.share


def _bootstrap(evidence: _Evidence, group_class: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N_BOOTSTRAP,) estimates with strokes resampled with replacement within each class."""
    weights = np.zeros((N_BOOTSTRAP, len(group_class)))
    for value in np.unique(group_class):
        members = np.flatnonzero(group_class == value)
        weights[:, members] = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)), size=N_BOOTSTRAP)
    return _combined(evidence, weights)


def _interval(evidence: _Evidence, group_class: np.ndarray, estimate: float, seed: int) -> tuple[float, float]:
    draws = _bootstrap(evidence, group_class, np.random.default_rng(seed))
    low, high = np.quantile(draws, [0.05, 0.95])
    # What the strokes cannot vouch for: the share of unlabelled pixels in cells with few
    # held-out pixels, times how far the forest's own confidence may be off there.
    seen = evidence.seen.sum(axis=0)
    trust = seen / (seen + SHRINKAGE)
    untrusted = evidence.share @ ((1.0 - trust) * (1.0 - evidence.confidence))
    low, high = min(low, estimate) - DOUBT * untrusted, max(high, estimate) + DOUBT * untrusted
    return float(np.clip(low, 0.0, 1.0)), float(np.clip(high, 0.0, 1.0))


# --------------------------------------------------------------------------------- public


def estimate_accuracy(
    image: np.ndarray,
    labels: np.ndarray,
    settings: FeatureSettings | None = None,
    forest=None,
    *,
    strokes: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    normalization: Normalization | None = None,
    features: Sequence[np.ndarray] | None = None,
    proba: Sequence[np.ndarray] | None = None,
    unlabelled: np.ndarray | None = None,
    seed: int = 0,
) -> AccuracyReport:
    """Estimate how accurately a model trained on these scribbles labels the unlabelled pixels.

    Parameters
    ----------
    image : (H, W), (H, W, C) or (T, H, W, C) array
    labels : (H, W) or (T, H, W) integer array
        0 = unlabelled, 1..K = class, as for :func:`seg.train`.
    settings : FeatureSettings, optional
        Default: the "balanced" preset.
    forest : ForestSettings, optional
    strokes : integer array like ``labels``, optional
        Stroke id of every labelled pixel; default: each connected region of a class is a stroke.
    class_names : sequence of str, optional
        Names for :attr:`AccuracyReport.per_class`; K = its length (default: the largest label).
    normalization : Normalization, optional
    features : sequence of (H, W, F) float32 or :class:`seg.features.tiles.TileFeatures`, optional
        Precomputed features of every frame (as :meth:`seg.Model.features` gives them; ``None``
        for frames without scribbles).
    proba : sequence of (H, W, K) float32, optional
        The full model's probabilities of every scribbled frame (``None`` entries for frames
        without scribbles); default: a model is trained on all scribbles and predicts a sample
        of the unlabelled pixels (frames with tiled features and no probabilities are left
        out of that sample).
    unlabelled : (M, K) float array, optional
        The full model's probabilities of a sample of unlabelled pixels, used instead of the
        sample drawn from ``proba`` / ``features``: e.g. of the part of a large frame that was
        predicted (the viewport), when predicting the whole frame costs too much.
    seed : int
        Seed of the pixel sample and the bootstrap: the same input gives the same report.

    Returns
    -------
    AccuracyReport

    Raises
    ------
    TrainingError
        As :func:`seg.train`: no labels, one class only, shapes that do not match.
    """
    forest = ForestSettings() if forest is None else forest
    if not isinstance(forest, ForestSettings):
        raise SettingsError(f"estimate_accuracy(): forest must be a ForestSettings, got {type(forest).__name__}")
    data = gather_scribbles(
        image,
        labels,
        settings,
        strokes=strokes,
        class_names=class_names,
        normalization=normalization,
        features=features,
    )
    names, n_classes = data.names, len(data.names)
    x, y, group, group_class, boxes = bounded(data.x, data.y, data.group, data.group_class, data.boxes, seed)
    per_class_strokes = np.bincount(group_class, minlength=n_classes + 1)[1:]
    few = [
        f"{names[c]!r} has {per_class_strokes[c]}"
        for c in np.flatnonzero(per_class_strokes)
        if per_class_strokes[c] < MIN_STROKES_PER_CLASS
    ]
    if few:
        empty = np.zeros((n_classes, n_classes), np.int64)
        return AccuracyReport(
            settings=data.settings,
            forest=forest,
            accuracy=None,
            interval=None,
            per_class=_per_class(empty, names, per_class_strokes),
            confusion=empty,
            n_groups=len(group_class),
            reason=f"every scribbled class needs at least {MIN_STROKES_PER_CLASS} separate strokes ({', '.join(few)})",
            group_accuracy=np.full(len(group_class), np.nan),
            group_boxes=boxes,
        )

    cv = cross_validate(x, y, group, group_class, n_classes, forest)
    if unlabelled is not None:
        unlabelled = np.asarray(unlabelled, np.float32)
        if unlabelled.ndim != 2 or unlabelled.shape[1] != n_classes:
            raise SettingsError(
                f"estimate_accuracy(): unlabelled must be (M, {n_classes}) probabilities, got shape {unlabelled.shape}"
            )
    else:
        unlabelled = _unlabelled_proba(x, y, n_classes, forest, data.labels, data.features, proba, seed)
    if unlabelled is None or len(unlabelled) == 0:
        # No unlabelled pixel could be predicted (tiled frames without probabilities): the
        # held-out pixels stand in for them, so only the shrinkage corrects the strokes' bias.
        unlabelled = cv.proba
    evidence = _evidence(cv, unlabelled)
    weights = np.ones(cv.n_groups)
    estimate = float(_combined(evidence, weights))
    interval = _interval(evidence, group_class, estimate, seed)
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (cv.truth - 1, cv.predicted - 1), 1)
    right = (cv.truth == cv.predicted).astype(np.float64)
    group_accuracy = np.bincount(cv.group, weights=right, minlength=cv.n_groups) / np.maximum(
        np.bincount(cv.group, minlength=cv.n_groups), 1
    )
    return AccuracyReport(
        settings=data.settings,
        forest=forest,
        accuracy=estimate,
        interval=interval,
        per_class=_per_class(confusion, names, per_class_strokes),
        confusion=confusion,
        n_groups=cv.n_groups,
        held_out_accuracy=float(right.mean()),
        group_accuracy=group_accuracy,
        group_boxes=boxes,
        cross_validation=cv,
    )


def _unlabelled_proba(x, y, n_classes, forest, labels, stacks, proba, seed) -> np.ndarray | None:
    """(M, K) probabilities of a sample of the unlabelled pixels of the scribbled frames."""
    rng = np.random.default_rng(seed)
    used = sorted(stacks)
    per_frame = max(1, UNLABELLED_SAMPLE // len(used))
    model = None
    parts = []
    for t in used:
        index = np.flatnonzero(labels[t].reshape(-1) == 0)
        if len(index) > per_frame:
            index = np.sort(rng.choice(index, per_frame, replace=False))
        if proba is not None and proba[t] is not None:
            parts.append(np.asarray(proba[t]).reshape(-1, n_classes)[index])
            continue
        if not isinstance(stacks[t], np.ndarray):
            continue  # tiled features without probabilities: predicting the frame costs too much
        if model is None:
            model = Forest.fit(x, y, n_classes, forest)
        parts.append(model.predict_proba(stacks[t].reshape(-1, stacks[t].shape[-1])[index]))
    if not parts:
        return None
    return np.concatenate(parts).astype(np.float32, copy=False)


def _per_class(confusion: np.ndarray, names: Sequence[str], strokes: np.ndarray):
    import pandas as pd

    true = confusion.sum(axis=1).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    hits = np.diag(confusion).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "label": np.arange(1, len(names) + 1),
                "strokes": strokes.astype(np.int64),
                "pixels": true.astype(np.int64),
                "precision": hits / predicted,
                "recall": hits / true,
                "iou": hits / (true + predicted - hits),
            },
            index=pd.Index(list(names), name="class"),
        )
    return table
