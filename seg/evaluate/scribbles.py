"""The scribbles as cross-validation sees them: strokes (the units held out), folds, and the
features of the scribbled pixels, bounded in time and memory for any input.

A *stroke* (group) is a connected scribble of one class, or the pixels of one stroke id when the
caller knows them. Folds hold out whole strokes: neighbouring pixels of one stroke are nearly
identical, so a fold that split a stroke would test the forest on pixels it trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from seg.errors import SettingsError, TrainingError
from seg.features import DEFAULT_PRESET, PRESETS, FeatureSettings, compute_features
from seg.images import Normalization, as_frames, normalize
from seg.model import checked_training_labels

__all__ = [
    "MIN_STROKES_PER_CLASS",
    "MAX_FOLDS",
    "MAX_GROUPS",
    "MAX_GROUP_PIXELS",
    "Scribbles",
    "stroke_groups",
    "stroke_folds",
    "gather_scribbles",
    "bounded",
]

MIN_STROKES_PER_CLASS = 2
"""Fewer strokes than this in any scribbled class: no estimate (one stroke cannot be held out)."""
MAX_FOLDS = 8
"""At most this many retrainings: up to 8 strokes per class it is leave-one-stroke-out."""
MAX_GROUPS = 400
"""Strokes the estimate uses at most (a random, class-stratified sample beyond)."""
MAX_GROUP_PIXELS = 5000
"""Pixels of one stroke the estimate uses at most (a random sample beyond)."""
_EIGHT = np.ones((3, 3), bool)


# --------------------------------------------------------------------------------- groups


def stroke_groups(labels: np.ndarray, strokes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Number the strokes of a label image: the units that cross-validation holds out.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) integer array
        0 = unlabelled, 1..K = class.
    strokes : array of the same shape, optional
        Integer stroke id of every labelled pixel (e.g. from the canvas). Pixels of one id and
        one class form a group. Default: the 8-connected regions of each class in each frame.

    Returns
    -------
    groups : int32 array of the shape of ``labels``
        0 = unlabelled, 1..G = group.
    group_class : (G,) int64
        Class of every group (``group_class[g - 1]`` for group ``g``).
    """
    labels = np.asarray(labels)
    if strokes is not None:
        strokes = np.asarray(strokes)
        if strokes.shape != labels.shape or not np.issubdtype(strokes.dtype, np.integer):
            raise TrainingError(
                f"strokes must be an integer image of the labels' shape {labels.shape}, "
                f"got {strokes.dtype} {strokes.shape}: pass one stroke id per pixel."
            )
    stacked = labels.reshape(-1, *labels.shape[-2:])
    ids = None if strokes is None else strokes.reshape(stacked.shape)
    groups = np.zeros(stacked.shape, np.int32)
    classes: list[int] = []
    for t, frame in enumerate(stacked):
        for value in np.unique(frame[frame > 0]):
            mask = frame == value
            if ids is None:
                parts, count = ndi.label(mask, structure=_EIGHT)
            else:
                _, parts = np.unique(ids[t][mask], return_inverse=True)
                count = int(parts.max()) + 1
                parts = _scatter(mask, parts + 1)
            groups[t][mask] = parts[mask] + len(classes)
            classes.extend([int(value)] * count)
    return groups.reshape(labels.shape), np.asarray(classes, np.int64)


def _scatter(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(mask.shape, np.int64)
    out[mask] = values
    return out


def stroke_folds(group_class: np.ndarray, max_folds: int = MAX_FOLDS) -> np.ndarray:
    """Fold of every group: round-robin within each class, so a fold holds out at most
    ``ceil(n_c / k)`` strokes of class ``c`` and, up to ``max_folds`` strokes per class, one."""
    counts = np.bincount(group_class)
    k = int(min(max_folds, counts.max()))
    fold = np.zeros(len(group_class), np.int64)
    for offset, value in enumerate(np.flatnonzero(counts)):
        members = np.flatnonzero(group_class == value)
        fold[members] = (np.arange(len(members)) + offset) % k
    return fold


@dataclass(frozen=True)
class Scribbles:
    """The scribbled pixels of an image, their features and strokes (see :func:`gather_scribbles`).

    Attributes
    ----------
    x : (N, F) float32
        Features of the labelled pixels, frame by frame in row-major order.
    y : (N,) int64
        Their classes 1..K.
    group : (N,) int64
        Stroke index 0..G-1 of every pixel.
    group_class : (G,) int64
    boxes : (G, 5) int64
        ``(frame, row0, col0, row1, col1)`` of every stroke (end exclusive).
    labels : (T, H, W) integer array
    features : dict of frame index -> (H, W, F) float32
        Features of every scribbled frame.
    names : tuple of K str
    settings : FeatureSettings
    """

    x: np.ndarray
    y: np.ndarray
    group: np.ndarray
    group_class: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    features: dict
    names: tuple
    settings: FeatureSettings


def gather_scribbles(
    image: np.ndarray,
    labels: np.ndarray,
    settings: FeatureSettings | None = None,
    *,
    strokes: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    normalization: Normalization | None = None,
    features: Sequence[np.ndarray] | None = None,
) -> Scribbles:
    """Features, classes and strokes of the scribbled pixels, checked as :func:`seg.train` checks them.

    Parameters are those of :func:`estimate_accuracy`.

    Raises
    ------
    TrainingError
        No labels, one class only, shapes that do not match.
    """
    settings = PRESETS[DEFAULT_PRESET] if settings is None else settings
    normalization = Normalization() if normalization is None else normalization
    if not isinstance(settings, FeatureSettings):
        raise SettingsError(f"settings must be a FeatureSettings, got {type(settings).__name__}")
    frames = as_frames(image)
    labels, names = checked_training_labels(labels, frames.shape[:3], class_names)
    groups, group_class = stroke_groups(labels, None if strokes is None else np.reshape(strokes, labels.shape))
    used = [t for t in range(len(labels)) if labels[t].any()]
    n_features = settings.n_features(frames.shape[-1])
    stacks = {}
    parts = []
    for t in used:
        stack = features[t] if features is not None else compute_features(normalize(frames[t], normalization), settings)
        if not isinstance(stack, np.ndarray) and hasattr(stack, "labelled_samples"):
            # Tiled features (seg.features.tiles.TileFeatures) give the rows of the labelled
            # pixels tile by tile (row-major over tiles, then inside each tile). Asked with the
            # class labels, as training asks, they come from its cache instead of recomputing
            # every labelled tile; the strokes are then read in the same order.
            if stack.n_features != n_features or stack.shape != labels.shape[1:]:
                raise TrainingError(f"Tiled features of frame {t} do not match the image and settings.")
            x_t, _ = stack.labelled_samples(labels[t])
            rows, cols = np.nonzero(labels[t])
            order = np.lexsort((cols, rows, cols // stack.tile, rows // stack.tile))
            parts.append((x_t, groups[t][rows[order], cols[order]] - 1))
        elif np.shape(stack) == (*labels.shape[1:], n_features):
            index = np.flatnonzero(labels[t])
            parts.append((np.asarray(stack).reshape(-1, n_features)[index], groups[t].reshape(-1)[index] - 1))
        else:
            raise TrainingError(
                f"Precomputed features of frame {t} have shape {np.shape(stack)}, expected "
                f"{(*labels.shape[1:], n_features)}: compute them with the same feature settings."
            )
        stacks[t] = stack
    x = np.concatenate([p[0] for p in parts])
    group = np.concatenate([p[1] for p in parts]).astype(np.int64)
    y = group_class[group]
    return Scribbles(
        x=np.asarray(x, np.float32),
        y=y,
        group=group,
        group_class=group_class,
        boxes=_boxes(groups, len(group_class)),
        labels=labels,
        features=stacks,
        names=names,
        settings=settings,
    )


def bounded(
    x: np.ndarray, y: np.ndarray, group: np.ndarray, group_class: np.ndarray, boxes: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At most :data:`MAX_GROUPS` strokes and :data:`MAX_GROUP_PIXELS` pixels of each, drawn at random.

    Bounds the time and memory of the estimate for any scribbles (an imported mask can hold
    millions of labelled pixels in thousands of regions). Strokes are kept in proportion to each
    class's count, at least :data:`MIN_STROKES_PER_CLASS` per class; the estimate weighs every
    stroke equally anyway, so a sample of a long stroke's pixels changes it little.

    Returns
    -------
    x, y, group (renumbered 0..G'-1), group_class, boxes of the kept strokes and pixels.
    """
    rng = np.random.default_rng(seed)
    n_groups = len(group_class)
    keep = np.ones(n_groups, bool)
    if n_groups > MAX_GROUPS:
        keep[:] = False
        for value in np.unique(group_class):
            members = np.flatnonzero(group_class == value)
            share = max(MIN_STROKES_PER_CLASS, round(MAX_GROUPS * len(members) / n_groups))
            keep[rng.choice(members, min(share, len(members)), replace=False)] = True
    sizes = np.bincount(group, minlength=n_groups)
    if keep.all() and sizes.max(initial=0) <= MAX_GROUP_PIXELS:
        return x, y, group, group_class, boxes
    # A random rank within each stroke: keep the pixels ranked below the cap.
    order = np.lexsort((rng.random(len(group)), group))
    rank = np.empty(len(group), np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank[order] = np.arange(len(group)) - starts[group[order]]
    chosen = keep[group] & (rank < MAX_GROUP_PIXELS)
    renumber = np.cumsum(keep) - 1
    return x[chosen], y[chosen], renumber[group[chosen]], group_class[keep], boxes[keep]


def _boxes(groups: np.ndarray, n_groups: int) -> np.ndarray:
    stacked = groups.reshape(-1, *groups.shape[-2:])
    boxes = np.zeros((n_groups, 5), np.int64)
    for t, frame in enumerate(stacked):
        for g, found in enumerate(ndi.find_objects(frame, max_label=n_groups)):
            if found is not None:
                boxes[g] = (t, found[0].start, found[1].start, found[0].stop, found[1].stop)
    return boxes
