"""Know the classifier: accuracy estimated from the scribbles, feature importance, suggested
settings and where to label next.

Modules
-------
``scribbles``   strokes (the units held out), folds, the scribbled pixels' features, bounds
``accuracy``    :func:`estimate_accuracy` (stroke-held-out cross-validation, reweighted to the
                unlabelled pixels, with a 90 % interval) and :class:`AccuracyReport`
``importance``  impurity importance recomputed from a compiled forest; permutation importance on
                held-out strokes; tables per feature and per group and scale
``suggest``     :func:`suggest_settings`: presets and forests ranked by the same estimate
``regions``     :func:`label_next`: misclassified held-out strokes and the most uncertain windows

Every public name is importable from ``seg.evaluate`` itself.
"""

from __future__ import annotations

from seg.evaluate.accuracy import AccuracyReport, CrossValidation, cross_validate, estimate_accuracy, margin
from seg.evaluate.importance import (
    held_out_importance,
    importance_by_scale,
    importance_table,
    impurity_importance,
    permutation_importance,
)
from seg.evaluate.regions import Region, label_next
from seg.evaluate.scribbles import (
    MIN_STROKES_PER_CLASS,
    Scribbles,
    bounded,
    gather_scribbles,
    stroke_folds,
    stroke_groups,
)
from seg.evaluate.suggest import MIN_GAIN, default_candidates, suggest_settings, worth_switching

__all__ = [
    "MIN_STROKES_PER_CLASS",
    "AccuracyReport",
    "CrossValidation",
    "Region",
    "Scribbles",
    "cross_validate",
    "default_candidates",
    "estimate_accuracy",
    "gather_scribbles",
    "held_out_importance",
    "importance_by_scale",
    "importance_table",
    "impurity_importance",
    "label_next",
    "margin",
    "permutation_importance",
    "stroke_folds",
    "stroke_groups",
    "bounded",
    "suggest_settings",
    "worth_switching",
    "MIN_GAIN",
]
