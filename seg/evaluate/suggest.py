"""Suggest feature and forest settings: compare candidates by the stroke-held-out estimate.

As ilastik's "Suggest Features" ranks feature sets by out-of-bag error, but with the estimate of
:func:`seg.evaluate.estimate_accuracy` (whole strokes held out, reweighted to the unlabelled
pixels), which out-of-bag error is not: a tree's out-of-bag pixels are neighbours of the pixels
it was grown on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from seg.errors import SettingsError
from seg.evaluate.accuracy import AccuracyReport, estimate_accuracy
from seg.features import DEFAULT_PRESET, PRESETS, FeatureSettings, compute_features
from seg.forest import ForestSettings
from seg.images import Normalization, as_frames, normalize

__all__ = ["MIN_GAIN", "default_candidates", "suggest_settings", "worth_switching", "preset_name", "forest_name"]

MIN_GAIN = 0.01
"""A suggestion replaces the current settings only if its estimate is this much higher: the top of
six noisy estimates is often a little better by chance alone (bench/suggest_settings.py)."""


def default_candidates():
    """The feature presets with the default forest, and the default preset with two other forests.

    Returns
    -------
    list of (FeatureSettings, ForestSettings)
    """
    default = ForestSettings()
    candidates = [(settings, default) for settings in PRESETS.values()]
    for forest in (ForestSettings(n_estimators=32, max_depth=10), ForestSettings(min_samples_leaf=10)):
        candidates.append((PRESETS[DEFAULT_PRESET], forest))
    return candidates


def suggest_settings(
    image: np.ndarray,
    labels: np.ndarray,
    candidates: Sequence | None = None,
    *,
    strokes: np.ndarray | None = None,
    normalization: Normalization | None = None,
    class_names: Sequence[str] | None = None,
) -> list[tuple[FeatureSettings, AccuracyReport]]:
    """Rank settings by the estimated accuracy on the unlabelled pixels, best first.

    Parameters
    ----------
    image, labels, strokes, normalization, class_names
        As :func:`seg.evaluate.estimate_accuracy`.
    candidates : sequence, optional
        :class:`FeatureSettings`, or ``(FeatureSettings, ForestSettings)`` pairs; default
        :func:`default_candidates` (every preset, and two other forests for the default preset).

    Returns
    -------
    list of (FeatureSettings, AccuracyReport)
        Best estimate first (ties: the earlier candidate); each report's ``.forest`` says which
        forest settings it was made for. Reports without an estimate (too few strokes) come last.
    """
    pairs = []
    for candidate in default_candidates() if candidates is None else candidates:
        settings, forest = candidate if isinstance(candidate, tuple) else (candidate, ForestSettings())
        if not isinstance(settings, FeatureSettings) or not isinstance(forest, ForestSettings):
            raise SettingsError(
                "suggest_settings(): each candidate must be a FeatureSettings or a "
                f"(FeatureSettings, ForestSettings) pair, got {candidate!r:.100}"
            )
        pairs.append((settings, forest))
    if not pairs:
        raise SettingsError("suggest_settings(): give at least one candidate (or None for the defaults)")
    normalization = Normalization() if normalization is None else normalization
    frames = as_frames(image)
    scribbled = [t for t in range(len(frames)) if np.any(np.reshape(labels, (len(frames), *frames.shape[1:3]))[t])]
    features: dict[FeatureSettings, list] = {}
    reports = []
    for settings, forest in pairs:
        if settings not in features:
            normalised = {t: normalize(frames[t], normalization) for t in scribbled}
            features[settings] = [
                compute_features(normalised[t], settings) if t in normalised else None for t in range(len(frames))
            ]
        reports.append(
            estimate_accuracy(
                image,
                labels,
                settings,
                forest,
                strokes=strokes,
                class_names=class_names,
                normalization=normalization,
                features=features[settings],
            )
        )
    order = sorted(range(len(reports)), key=lambda i: (reports[i].accuracy is None, -(reports[i].accuracy or 0.0), i))
    return [(pairs[i][0], reports[i]) for i in order]


def preset_name(settings: FeatureSettings) -> str:
    """The preset's name, or a short description of custom settings, e.g. ``"extended σ 1–8"``;
    chosen channels are added, e.g. ``"balanced, channels 0, 2"``."""
    general = dataclasses.replace(settings, channels=None)
    name = next(
        (n for n, preset in PRESETS.items() if preset == general),
        f"{settings.feature_set} σ {settings.sigma_min:g}–{settings.sigma_max:g}",
    )
    if settings.channels is not None:
        name += ", channels " + ", ".join(str(c) for c in settings.channels)
    return name


def forest_name(forest: ForestSettings) -> str:
    """E.g. ``"16 trees, depth 6, leaf ≥ 2"``."""
    depth = "unlimited" if forest.max_depth is None else forest.max_depth
    return f"{forest.n_estimators} trees, depth {depth}, leaf ≥ {forest.min_samples_leaf}"


def worth_switching(
    ranked: Sequence[tuple[FeatureSettings, AccuracyReport]],
    settings: FeatureSettings,
    forest: ForestSettings | None = None,
    *,
    min_gain: float = MIN_GAIN,
):
    """The top suggestion if it is estimated at least ``min_gain`` better than the current settings.

    Parameters
    ----------
    ranked : list of (FeatureSettings, AccuracyReport)
        :func:`suggest_settings` output.
    settings, forest : the current settings (``forest`` default: ``ForestSettings()``)
    min_gain : float

    Returns
    -------
    (FeatureSettings, AccuracyReport) or None
        None when there is no estimate, the current settings are the top, or the gain is smaller
        than ``min_gain`` (current settings not among the candidates count as 0).
    """
    forest = ForestSettings() if forest is None else forest
    if not ranked or ranked[0][1].accuracy is None:
        return None
    best_settings, best = ranked[0]
    if (best_settings, best.forest) == (settings, forest):
        return None
    current = next((r.accuracy for s, r in ranked if (s, r.forest) == (settings, forest)), None)
    if current is not None and best.accuracy is not None and best.accuracy < current + min_gain:
        return None
    return best_settings, best
