"""Train a pixel classifier from scribbles and apply it: the :class:`Model` bundle.

>>> model = train(image, labels, class_names=["membrane", "cell"])   # labels: 0 = unlabelled
>>> mask = model.predict(image)                                      # (H, W) uint8, 1..K
>>> proba = model.predict_proba(image)                               # (H, W, K) float32

A model carries everything needed to apply itself to a new image: the normalisation and feature
settings, the compiled forest, the class names and colours, and the channel count it expects.
The app caches per-frame features, so the ``*_features`` methods and ``train(features=...)``
skip the feature computation. Without them, ``train`` again or ``predict`` / ``predict_proba`` on
an image just trained on reuse the features ``train`` computed (:mod:`seg.features.recent`).
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from seg.errors import ImageError, ModelMismatchError, SettingsError, TrainingError, is_whole_number
from seg.features import DEFAULT_PRESET, PRESETS, FeatureSettings, compute_features
from seg.features.recent import RECENT_FEATURES
from seg.features.volume import VolumeSettings
from seg.files import is_encodable
from seg.forest import MAX_CLASSES, Forest, ForestSettings
from seg.images import Normalization, as_frames, normalize

__all__ = [
    "Model",
    "train",
    "train_samples",
    "uncertainty",
    "clean_labels",
    "default_colors",
    "checked_training_labels",
]

_COLOR = re.compile(r"#[0-9a-f]{6}")


# --------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Model:
    """A trained pixel classifier that knows how to apply itself.

    Attributes
    ----------
    forest : Forest
        Compiled random forest over ``feature_settings.n_features(n_channels)`` features.
    feature_settings : FeatureSettings
    normalization : Normalization
        Applied to every frame before its features are computed.
    class_names, class_colors : tuple of str
        One per class; class ``i`` (0-based) is label ``i + 1``. Colours are "#rrggbb".
    n_channels : int
        Channels C of the images the model applies to.
    forest_settings : ForestSettings
        How the forest was trained.
    training : dict
        JSON-able summary: labelled pixels per class, frames, sample count, creation time.
    versions : dict
        Library versions at training time.
    volume : VolumeSettings or None
        Set for a volume model (``dims == 3``: voxel size and 3-D or per-slice features, see
        :mod:`seg.volumes`); None for a 2-D model.
    """

    forest: Forest
    feature_settings: FeatureSettings
    normalization: Normalization
    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]
    n_channels: int
    forest_settings: ForestSettings = field(default_factory=ForestSettings)
    training: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    volume: VolumeSettings | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "class_colors", tuple(self.class_colors))
        k = self.forest.n_classes
        if len(self.class_names) != k or len(self.class_colors) != k:
            raise ModelMismatchError(
                f"The model has {k} classes but {len(self.class_names)} names and "
                f"{len(self.class_colors)} colours: give one name and colour per class."
            )
        expected = self.n_features
        if expected != self.forest.n_features:
            raise ModelMismatchError(
                f"The forest uses {self.forest.n_features} features but the feature settings give "
                f"{expected} for {self.n_channels} channel(s): the forest belongs to other settings."
            )

    @property
    def n_classes(self) -> int:
        return self.forest.n_classes

    @property
    def dims(self) -> int:
        """3 for a volume model (applies to (Z, Y, X[, C]) volumes), 2 for an image model."""
        return 2 if self.volume is None else 3

    @property
    def n_features(self) -> int:
        """Features F per pixel (voxel) the forest reads."""
        if self.volume is not None:
            return self.volume.n_features(self.feature_settings, self.n_channels)
        return self.feature_settings.n_features(self.n_channels)

    # ----------------------------------------------------------------------- images

    def features(self, frame: np.ndarray) -> np.ndarray:
        """Normalise one frame and compute the model's features.

        Parameters
        ----------
        frame : (H, W) or (H, W, C) array
            C must equal :attr:`n_channels`.

        Returns
        -------
        (H, W, F) float32; (Z, Y, X, F) for a volume model given a volume
        """
        if self.volume is not None:
            from seg.volumes.model import volume_features

            return volume_features(self, frame)
        frames = as_frames(frame)
        if frames.shape[0] != 1:
            raise ImageError(f"Model.features needs one frame (H, W) or (H, W, C), got shape {np.shape(frame)}")
        self.check_channels(frames.shape[-1])
        return compute_features(normalize(frames[0], self.normalization), self.feature_settings)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label every pixel.

        Parameters
        ----------
        image : (H, W), (H, W, C) or (T, H, W, C) array

        Returns
        -------
        labels : (H, W), or (T, H, W) for a 4-D input; uint8 (K <= 255) or uint16, values 1..K
            A volume model (``dims == 3``) takes (Z, Y, X[, C]) or a :class:`seg.Volume` and
            returns (Z, Y, X).
        """
        if self.volume is not None:
            from seg.volumes.model import predict_volume

            return predict_volume(self, image)
        frames = self._frames(image)
        out = np.stack([self.forest.predict(self._features_of(frame)) for frame in frames])
        return out if np.ndim(image) == 4 else out[0]

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities of every pixel.

        Returns
        -------
        proba : (H, W, K), or (T, H, W, K) for a 4-D input; float32 summing to 1 over K
            (Z, Y, X, K) for a volume model.
        """
        if self.volume is not None:
            from seg.volumes.model import predict_volume

            return predict_volume(self, image, proba=True)
        frames = self._frames(image)
        out = np.stack([self.forest.predict_proba(self._features_of(frame)) for frame in frames])
        return out if np.ndim(image) == 4 else out[0]

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Labels from precomputed features ``(..., F)`` float32 -> ``(...)``, e.g. (H, W, F) -> (H, W)."""
        return self.forest.predict(features)

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        """Probabilities from precomputed features ``(..., F)`` -> ``(..., K)`` float32."""
        return self.forest.predict_proba(features)

    def feature_importance(self):
        """How much the forest relies on each feature: mean decrease of Gini impurity.

        Returns
        -------
        pandas.DataFrame
            One row per feature, largest importance first: ``feature`` (as
            ``feature_settings.feature_names``), ``source``, ``group``, ``kind``, ``sigma`` and
            ``importance`` (summing to 1). See :mod:`seg.evaluate.importance`; permutation
            importance on held-out strokes is :func:`seg.evaluate.permutation_importance`.
        """
        from seg.evaluate.importance import importance_table, impurity_importance

        layout = self.feature_settings.describe_features(self.n_channels)
        return importance_table(layout, impurity_importance(self.forest))

    def _features_of(self, frame: np.ndarray) -> np.ndarray:
        """Features of one (H, W, C) frame of :meth:`_frames`: reused if just trained on, else computed."""
        found = RECENT_FEATURES.find(frame, self.feature_settings, self.normalization)
        if found is not None:
            return found
        return compute_features(normalize(frame, self.normalization), self.feature_settings)

    def _frames(self, image: np.ndarray) -> np.ndarray:
        from seg.volumes.model import refuse_volume

        refuse_volume(self, image)
        frames = as_frames(image)
        self.check_channels(frames.shape[-1])
        return frames

    def check_channels(self, n_channels: int) -> None:
        """Raise :class:`ModelMismatchError` unless images of ``n_channels`` channels fit this model."""
        if n_channels != self.n_channels:
            raise ModelMismatchError(
                f"This model was trained on images with {self.n_channels} channel(s) but the image has "
                f"{n_channels}: apply it to images like the ones it was trained on, or train a new model."
            )


# --------------------------------------------------------------------------------- training


def train(
    image: np.ndarray,
    labels: np.ndarray,
    settings: FeatureSettings | None = None,
    class_names: Sequence[str] | None = None,
    *,
    class_colors: Sequence[str] | None = None,
    forest: ForestSettings | None = None,
    normalization: Normalization | None = None,
    features: Sequence[np.ndarray] | None = None,
    dims: int = 2,
    spacing: Sequence[float] | None = None,
    volume_features: str | None = None,
) -> Model:
    """Train a model on scribbles.

    Parameters
    ----------
    image : (H, W), (H, W, C) or (T, H, W, C) array
    labels : (H, W) or (T, H, W) integer array
        0 = unlabelled, 1..K = class. Only frames with labels contribute.
    settings : FeatureSettings, optional
        Defaults to the "balanced" preset (volumes: ``seg.volumes.model.default_volume_settings``).
    class_names : sequence of str, optional
        One per class; K = its length. Default: K = the largest label, names "class 1", ...
    class_colors : sequence of str, optional
        "#rrggbb" per class; default: the colour-blind-safe palette of :mod:`seg.render`.
    forest : ForestSettings, optional
        Defaults to ``ForestSettings()`` (volumes: ``seg.volumes.model.DEFAULT_VOLUME_FOREST``).
    normalization : Normalization, optional
    features : sequence of (H, W, F) float32 arrays, optional
        Precomputed features of every frame of ``image`` (as :meth:`Model.features` computes
        them); then ``image`` only gives shapes and the channel count.
    dims : {2, 3}
        2 (default): an image model, frames are independent. 3: a volume model; ``image`` is
        (Z, Y, X), (Z, Y, X, C) or a :class:`seg.Volume` and ``labels`` (Z, Y, X)
        (see :func:`seg.volumes.train_volume`).
    spacing : (dz, dy, dx), optional
        Voxel size of a volume (dims=3); default: the Volume's, else none (sigmas in voxels).
    volume_features : {"per_slice", "3d"}, optional
        2-D features per z slice or volumetric features (dims=3); default: 3-D for near-isotropic
        voxels, else per slice (``seg.volumes.model.default_volume_settings``), chosen with the other
        volume defaults by measurement (bench/README.md, "Volumes").

    Returns
    -------
    Model

    Raises
    ------
    TrainingError
        No labelled pixels, only one class scribbled, labels outside 0..K, shapes that do not
        match, or precomputed features of the wrong shape.
    """
    for name, value, kind in (
        ("settings", settings, FeatureSettings),
        ("forest", forest, ForestSettings),
        ("normalization", normalization, Normalization),
    ):
        if value is not None and not isinstance(value, kind):
            raise SettingsError(f"train(): {name} must be a {kind.__name__}, got {type(value).__name__}")
    if dims == 3:  # a volume model has its own defaults for what is None
        from seg.volumes.model import train_volume

        if features is not None:
            raise SettingsError("train(dims=3) computes its own features: leave features=None")
        return train_volume(
            image,
            labels,
            settings,
            class_names,
            class_colors=class_colors,
            forest=forest,
            normalization=normalization,
            spacing=spacing,
            mode=volume_features,
        )
    if dims != 2 or isinstance(dims, bool):
        raise SettingsError(f"train(dims={dims!r}): dims is 2 (images) or 3 (volumes)")
    if spacing is not None:
        raise SettingsError("train(spacing=...) is for volumes: pass dims=3 too")
    settings = PRESETS[DEFAULT_PRESET] if settings is None else settings
    forest = ForestSettings() if forest is None else forest
    normalization = Normalization() if normalization is None else normalization
    frames = as_frames(image)
    labels, names = checked_training_labels(labels, frames.shape[:3], class_names)
    n_classes = len(names)
    colors = _class_colors(class_colors, n_classes)
    counts = _labelled_counts(labels, n_classes)

    n_channels = frames.shape[-1]
    n_features = settings.n_features(n_channels)
    if features is not None:
        _check_features(features, frames.shape[:3], n_features)
    used = [t for t in range(len(labels)) if labels[t].any()]
    parts_x, parts_y = [], []
    for t in used:
        if features is not None:
            frame_features = features[t]
        elif (found := RECENT_FEATURES.find(frames[t], settings, normalization)) is not None:
            frame_features = found
        else:
            frame_features = compute_features(normalize(frames[t], normalization), settings)
            RECENT_FEATURES.remember(frames[t], settings, normalization, frame_features)
        index = np.flatnonzero(labels[t])
        parts_x.append(frame_features.reshape(-1, n_features)[index])
        parts_y.append(labels[t].reshape(-1)[index])
    x = np.concatenate(parts_x).astype(np.float32, copy=False)
    y = np.concatenate(parts_y).astype(np.int64)
    return _fit(x, y, counts, names, colors, n_channels, settings, forest, normalization, used, frames.shape)


def train_samples(
    samples: np.ndarray,
    labels: np.ndarray,
    *,
    n_channels: int,
    image_shape: Sequence[int],
    frames: Sequence[int],
    settings: FeatureSettings,
    class_names: Sequence[str],
    class_colors: Sequence[str] | None = None,
    forest: ForestSettings | None = None,
    normalization: Normalization | None = None,
    volume: VolumeSettings | None = None,
) -> Model:
    """Train a model on the features of the labelled pixels only (e.g. gathered tile by tile).

    Parameters
    ----------
    samples : (N, F) float32
        Features (``settings.n_features(n_channels)`` of them) of the labelled pixels.
    labels : (N,) integer array, values 1..K (K = ``len(class_names)``)
    n_channels : int
        Channels of the image the features were computed from.
    image_shape : (T, H, W, C)
        Shape of that image (recorded in the model's training summary).
    frames : sequence of int
        Frames the samples come from (recorded too); z slices for a volume model.
    volume : VolumeSettings, optional
        Makes a volume model; the features are then ``volume.n_features(settings, n_channels)``.

    Other parameters are those of :func:`train`. Raises :class:`TrainingError` like it.
    """
    forest = ForestSettings() if forest is None else forest
    normalization = Normalization() if normalization is None else normalization
    names = _class_names(class_names, len(class_names))
    colors = _class_colors(class_colors, len(names))
    labels = np.asarray(labels)
    n_features = settings.n_features(n_channels) if volume is None else volume.n_features(settings, n_channels)
    if np.ndim(samples) != 2 or np.shape(samples)[1] != n_features or labels.shape != (np.shape(samples)[0],):
        raise TrainingError(
            f"Samples of shape {np.shape(samples)} and labels of shape {labels.shape} do not "
            f"match: give (N, {n_features}) features and (N,) labels."
        )
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and (labels.min() < 1 or labels.max() > len(names))):
        raise TrainingError(f"Sample labels must be whole numbers 1..{len(names)} (one per class).")
    counts = _labelled_counts(labels, len(names))
    _check_two_classes(counts, names)
    return _fit(
        np.asarray(samples, dtype=np.float32),
        labels.astype(np.int64),
        counts,
        names,
        colors,
        int(n_channels),
        settings,
        forest,
        normalization,
        list(frames),
        tuple(image_shape),
        volume,
    )


def _fit(
    x: np.ndarray,
    y: np.ndarray,
    counts: np.ndarray,
    names: tuple[str, ...],
    colors: tuple[str, ...],
    n_channels: int,
    settings: FeatureSettings,
    forest: ForestSettings,
    normalization: Normalization,
    frames: list[int],
    image_shape: Sequence[int],
    volume: VolumeSettings | None = None,
) -> Model:
    compiled = Forest.fit(x, y, len(names), forest)
    training = {
        "labelled_pixels": {name: int(count) for name, count in zip(names, counts[1:])},
        "frames": [int(t) for t in frames],
        "n_samples": int(len(y)),
        "image_shape": [int(n) for n in image_shape],
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return Model(
        forest=compiled,
        feature_settings=settings,
        normalization=normalization,
        class_names=names,
        class_colors=colors,
        n_channels=n_channels,
        forest_settings=forest,
        training=training,
        versions=library_versions(),
        volume=volume,
    )


def checked_training_labels(
    labels: np.ndarray, shape: tuple[int, int, int], class_names: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Scribbles checked as :func:`train` checks them, and the class names.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) integer array
        0 = unlabelled, 1..K = class.
    shape : (T, H, W)
        Of the image the scribbles belong to.
    class_names : sequence of str, optional
        K = its length; default K = the largest label, names "class 1", ...

    Returns
    -------
    labels : (T, H, W) integer array
    names : tuple of K str

    Raises
    ------
    TrainingError
        Shapes that do not match, labels outside 0..K, fewer than two classes scribbled.
    """
    labels = _checked_labels(labels, shape)
    n_classes = _class_count(labels, class_names)
    names = _class_names(class_names, n_classes)
    _check_two_classes(_labelled_counts(labels, n_classes), names)
    return labels, names


def _checked_labels(labels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Labels as (T, H, W) integers matching the image's (T, H, W)."""
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TrainingError(f"Labels must be whole numbers (0 = unlabelled, 1..K = class), got dtype {labels.dtype}.")
    if labels.ndim == 2:
        labels = labels[np.newaxis]
    if labels.shape != tuple(shape):
        raise TrainingError(
            f"The labels have shape {labels.shape} but the image has (T, H, W) = {tuple(shape)}: "
            "draw the scribbles on the image you train on."
        )
    return labels


def _class_count(labels: np.ndarray, class_names: Sequence[str] | None) -> int:
    low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    n_classes = high if class_names is None else len(class_names)
    if low < 0 or high > n_classes:
        bad = low if low < 0 else high
        raise TrainingError(
            f"Label {bad} is outside 0..{n_classes} (0 = unlabelled, 1..{n_classes} = the "
            f"{n_classes} classes): give a name for every class or fix the labels."
        )
    return n_classes


def _class_names(class_names: Sequence[str] | None, n_classes: int) -> tuple[str, ...]:
    if n_classes > MAX_CLASSES:
        raise TrainingError(
            f"{n_classes:,} classes are more than a model may have ({MAX_CLASSES}); "
            "merge classes or train several models."
        )
    if class_names is None:
        return tuple(f"class {i}" for i in range(1, n_classes + 1))
    if isinstance(class_names, str):
        raise TrainingError(f"class_names must be a list of names, not the single string {class_names!r}.")
    names = tuple(class_names)
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise TrainingError(f"Class names must be non-empty strings, got {list(names)!r}.")
    bad = [n for n in names if not is_encodable(n)]
    if bad:
        raise TrainingError(f"Class name {bad[0]!r} is not valid Unicode text (a lone surrogate); rename the class.")
    if len(set(names)) != len(names):
        raise TrainingError(f"Class names must be distinct, got {list(names)!r}.")
    return names


def default_colors(n_classes: int) -> tuple[str, ...]:
    """The first ``n_classes`` colours of :data:`seg.render.PALETTE` (colour-blind safe)."""
    from seg.render import color_for  # the palette lives with the rest of the display code

    return tuple(color_for(i) for i in range(n_classes))


def _class_colors(class_colors: Sequence[str] | None, n_classes: int) -> tuple[str, ...]:
    if class_colors is None:
        return default_colors(n_classes)
    colors = tuple(c.lower() if isinstance(c, str) else c for c in class_colors)
    if len(colors) != n_classes or not all(isinstance(c, str) and _COLOR.fullmatch(c) for c in colors):
        raise SettingsError(f"class_colors must be {n_classes} colours like '#1f77b4', got {list(colors)!r}.")
    return colors


def _labelled_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Pixels per label value 0..K."""
    return np.bincount(labels.reshape(-1).astype(np.intp, copy=False), minlength=n_classes + 1)


def _check_two_classes(counts: np.ndarray, names: tuple[str, ...]) -> None:
    present = [name for name, count in zip(names, counts[1:]) if count]
    if len(present) < 2:
        found = f"only {present[0]!r} has scribbles" if present else "nothing is scribbled yet"
        raise TrainingError(f"Scribble at least two classes to train a model: {found}.")


def _check_features(features: Sequence[np.ndarray], shape: tuple[int, int, int], n_features: int) -> None:
    if len(features) != shape[0]:
        raise TrainingError(f"Got precomputed features for {len(features)} frame(s) but the image has {shape[0]}.")
    expected = (*shape[1:], n_features)
    for t, stack in enumerate(features):
        if np.shape(stack) != expected:
            raise TrainingError(
                f"Precomputed features of frame {t} have shape {np.shape(stack)}, expected "
                f"{expected}: compute them with the same feature settings."
            )


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Versions of the libraries a model's numbers depend on."""
    import seg

    versions = {"seg": seg.__version__}
    for key, dist in (
        ("numpy", "numpy"),
        ("sklearn", "scikit-learn"),
        ("skimage", "scikit-image"),
        ("scipy", "scipy"),
        ("numba", "numba"),
    ):
        try:
            versions[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            versions[key] = "unknown"
    return versions


# --------------------------------------------------------------------------------- results


def uncertainty(proba: np.ndarray) -> np.ndarray:
    """How unsure the model is about each pixel: ``1 - (p_max - p_second)``.

    Parameters
    ----------
    proba : (..., K) float array
        Class probabilities, e.g. :meth:`Model.predict_proba` output.

    Returns
    -------
    (...) float32 in [0, 1]
        0 where one class has all the probability, 1 where the two best classes tie. All
        zeros when K = 1.
    """
    proba = np.asarray(proba)
    if proba.ndim < 1 or proba.shape[-1] < 1 or not np.issubdtype(proba.dtype, np.floating):
        raise ImageError(f"uncertainty needs float probabilities of shape (..., K), got {proba.dtype} {proba.shape}")
    k = proba.shape[-1]
    if k == 1:
        return np.zeros(proba.shape[:-1], np.float32)
    if k == 2:
        margin = np.abs(proba[..., 0] - proba[..., 1])
    else:
        top = np.partition(proba, k - 2, axis=-1)
        margin = top[..., -1] - top[..., -2]
    return np.clip(1.0 - margin, 0.0, 1.0).astype(np.float32)


def clean_labels(labels: np.ndarray, *, min_size: int = 0, fill_holes: bool = False) -> np.ndarray:
    """Tidy a label image: remove specks, then fill holes.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) integer array
        Frames are cleaned independently.
    min_size : int
        Connected objects (8-connectivity, any label) smaller than this many pixels are removed;
        each of their pixels takes the label of the nearest pixel that was kept, so a speck
        inside a region takes that region's label. 0 or 1 keeps everything.
    fill_holes : bool
        Pixels of the background label (the most common label of the frame) that are completely
        enclosed by one other label take that label, e.g. the hollow centre of a segmented cell.
        Objects of other classes inside an object are kept.

    Returns
    -------
    Array of the same shape and dtype.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3) or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ImageError(
            f"clean_labels needs an integer (H, W) or (T, H, W) label image, got {labels.dtype} {labels.shape}"
        )
    if not is_whole_number(min_size, 0):
        raise SettingsError(f"min_size must be a whole number of pixels >= 0, got {min_size!r}")
    frames = labels[np.newaxis] if labels.ndim == 2 else labels
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        cleaned = _remove_small(frame, int(min_size)) if min_size > 1 else frame.copy()
        out[t] = _fill_holes(cleaned) if fill_holes else cleaned
    return out[0] if labels.ndim == 2 else out


_EIGHT = np.ones((3, 3), dtype=bool)


def _remove_small(frame: np.ndarray, min_size: int) -> np.ndarray:
    small = np.zeros(frame.shape, dtype=bool)
    for value in np.unique(frame):
        objects, _ = ndi.label(frame == value, structure=_EIGHT)
        sizes = np.bincount(objects.ravel())
        sizes[0] = min_size  # index 0 is "not this label", never small
        small |= (sizes < min_size)[objects]
    if not small.any() or small.all():
        return frame.copy()
    # Every removed pixel copies its nearest kept pixel.
    _, (rows, cols) = ndi.distance_transform_edt(small, return_indices=True)
    return frame[rows, cols]


def _fill_holes(frame: np.ndarray) -> np.ndarray:
    values, counts = np.unique(frame, return_counts=True)
    if len(values) < 2:
        return frame
    background = values[np.argmax(counts)]
    is_background = frame == background
    fills = []
    for value in values:
        if value == background:
            continue
        holes = ndi.binary_fill_holes(frame == value) & is_background
        if holes.any():
            fills.append((int(holes.sum()), value, holes))
    out = frame.copy()
    # Largest enclosures first, so a hole inside a nested object takes the inner object's label.
    for _, value, holes in sorted(fills, key=lambda item: -item[0]):
        out[holes] = value
    return out
