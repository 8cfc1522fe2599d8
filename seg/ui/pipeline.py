"""From the canvas JSON to a prediction, doing only the work that changed.

One run of the app calls :func:`collect_strokes` (cheap: JSON -> strokes -> label images) and, when
live update is on or the user pressed "Update", :func:`refresh` which

1. computes features once per (image, frame, feature settings, normalisation) — cached,
2. retrains only when the strokes, classes or settings changed (the *training key*),
3. predicts the current frame only when the model or frame changed (the *prediction key*).

Each step's wall time is recorded in milliseconds for the status line. Everything lives in the
session-state mapping passed in (no module globals), so the functions can be tested with a dict.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seg.errors import TrainingError
from seg.ui import config
from seg.ui import state as S
from seg.ui.state import ClassSpec, ImageRecord

#: Training key placeholder set when a model is uploaded: adopt the next key without training.
KEEP_UPLOADED_MODEL = "keep-uploaded-model"


def display_samples(natural: tuple[int, int], display: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the image pixels that the display pixels show.

    Obtained from :func:`seg.render.resize_labels` itself (applied to index ramps), so labels
    predicted at exactly these pixels equal the full-resolution labels resized for display.
    """
    from seg.render import resize_labels

    (height, width), (rows, cols) = natural, display
    row_index = resize_labels(np.arange(height, dtype=np.int64)[:, None], (rows, 1))[:, 0]
    col_index = resize_labels(np.arange(width, dtype=np.int64)[None, :], (1, cols))[0]
    return row_index, col_index


def gather_pixels(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``image[rows][:, cols]`` as one C-contiguous gather (no (len(rows), W, ...) intermediate)."""
    height, width = image.shape[:2]
    flat = (rows.astype(np.intp)[:, None] * width + cols.astype(np.intp)[None, :]).ravel()
    gathered = image.reshape(height * width, -1)[flat]
    return gathered.reshape(len(rows), len(cols), *image.shape[2:])


@dataclass(frozen=True, eq=False)
class Prediction:
    """The segmentation of one frame, computed as far as it is looked at.

    Every stroke needs only what the canvas shows: the labels of the pixels under the display
    pixels (for a 2-megapixel image shown at 760 px that is a quarter of the work, and exactly
    what the full-resolution labels resized for display would be). Full-resolution labels
    (measurements, downloads) and probabilities (uncertainty and probability views, the
    probabilities download) are computed from the same cached features on first use.

    Attributes
    ----------
    key : tuple
        (model version, image digest, frame) it was made for.
    display_labels : (h, w) uint8 or uint16, values 1..K, at the canvas background's size
    n_classes : int
        K of the model that made it.
    """

    key: tuple
    frame: int
    display_labels: np.ndarray
    n_classes: int
    _model: Any = dataclasses.field(repr=False, default=None)
    _features: Any = dataclasses.field(repr=False, default=None)
    _samples: Any = dataclasses.field(repr=False, default=None)   # (rows, cols) or None = all pixels
    _shown: Any = dataclasses.field(repr=False, default=None)     # (h, w, F) features of the display pixels
    _memo: dict = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def compute(cls, key: tuple, frame: int, model, features: np.ndarray, display: tuple[int, int],
                previous: Prediction | None = None) -> Prediction:
        """Predict the display pixels of ``features`` (H, W, F) shown at ``display`` = (h, w).

        The display pixels' features are gathered once per feature stack and display size and
        reused from ``previous`` on the next stroke: gathering costs more than predicting them.
        """
        samples = None
        shown = features
        if tuple(display) != features.shape[:2]:
            if previous is not None and previous._features is features and previous._shown is not None \
                    and previous._shown.shape[:2] == tuple(display):
                samples, shown = previous._samples, previous._shown
            else:
                samples = display_samples(features.shape[:2], display)
                shown = gather_pixels(features, *samples)
        prediction = cls(key=key, frame=int(frame), display_labels=model.predict_features(shown),
                         n_classes=int(model.n_classes), _model=model, _features=features, _samples=samples,
                         _shown=None if samples is None else shown)
        if samples is None:
            prediction._memo["labels"] = prediction.display_labels
        return prediction

    @property
    def labels(self) -> np.ndarray:
        """(H, W) full-resolution labels, values 1..K (computed once, then kept)."""
        if "labels" not in self._memo:
            self._memo["labels"] = self._model.predict_features(self._features)
        return self._memo["labels"]

    def probabilities(self) -> np.ndarray:
        """(H, W, K) float32 full-resolution class probabilities (computed once, then kept)."""
        if "proba" not in self._memo:
            self._memo["proba"] = self._model.predict_proba_features(self._features)
        return self._memo["proba"]

    def display_probabilities(self) -> np.ndarray:
        """(h, w, K) float32 probabilities of the display pixels."""
        if "display_proba" not in self._memo:
            if self._samples is None or "proba" in self._memo:
                proba = self.probabilities()
                self._memo["display_proba"] = proba if self._samples is None else \
                    gather_pixels(proba, *self._samples)
            else:
                self._memo["display_proba"] = self._model.predict_proba_features(self._shown)
        return self._memo["display_proba"]

    def release(self) -> None:
        """Drop the features, model and everything computed from them (the session's tab
        disconnected, see :mod:`seg.ui.lifetime`); :attr:`released` is True from then on."""
        for name in ("_model", "_features", "_samples", "_shown"):
            object.__setattr__(self, name, None)
        self._memo.clear()

    @property
    def released(self) -> bool:
        return self._features is None

    def display_uncertainty(self) -> np.ndarray:
        """(h, w) float32 in [0, 1]: 1 - (best - second best probability) of the display pixels."""
        if "display_uncertainty" not in self._memo:
            from seg.model import uncertainty

            self._memo["display_uncertainty"] = uncertainty(self.display_probabilities())
        return self._memo["display_uncertainty"]


@dataclass(frozen=True)
class Strokes:
    """Strokes of every frame of the current image, parsed from the stored canvas JSON."""

    by_frame: dict[int, tuple]

    @property
    def all(self) -> tuple:
        return tuple(s for f in sorted(self.by_frame) for s in self.by_frame[f])

    def count(self) -> int:
        return sum(len(v) for v in self.by_frame.values())


def settings_token(value: Any) -> str:
    """A hashable, exact token of a settings object that has ``to_dict`` (features, forest, ...)."""
    return json.dumps(value.to_dict(), sort_keys=True, default=str)


def canvas_fit(record: ImageRecord, fit_dict: Mapping[str, float]):
    """:class:`seg.strokes.BackgroundFit` of the canvas for ``record``."""
    from seg.strokes import BackgroundFit

    _, height, width = record.shape
    return BackgroundFit.from_component(dict(fit_dict), image_shape=(height, width))


def collect_strokes(
    drawings: Mapping[int, dict], fit, classes: Sequence[ClassSpec], cache: dict | None = None
) -> Strokes:
    """Parse the stored canvas JSON of every frame into strokes (image pixel coordinates).

    ``cache`` (a dict kept in session state) holds a :class:`seg.strokes.CanvasParser` per frame:
    after a stroke only the new canvas object is parsed, and an unchanged frame not at all.
    Raises :class:`seg.errors.AnnotationError` on malformed JSON (the caller shows it).
    """
    from seg.strokes import ERASER_COLOR, CanvasParser

    color_to_label = dict(S.class_labels(classes))
    color_to_label[ERASER_COLOR] = 0
    mapping = tuple(sorted(color_to_label.items()))
    cache = {} if cache is None else cache
    by_frame = {}
    for frame, drawing in drawings.items():
        hit = cache.get(frame)
        if hit is None or hit[0] != fit or hit[1] != mapping:
            hit = cache[frame] = (fit, mapping, CanvasParser(fit, color_to_label, frame=frame))
        strokes = hit[2].parse(drawing)
        if strokes:
            by_frame[int(frame)] = strokes
    for frame in [f for f in cache if f not in drawings]:
        del cache[frame]
    return Strokes(by_frame)


def label_images(state: MutableMapping[str, Any], record: ImageRecord, strokes: Strokes) -> dict[int, np.ndarray]:
    """{frame: (H, W) label image} for frames with strokes; only new strokes are painted."""
    from seg.strokes import rasterize, repaint

    _, height, width = record.shape
    cache: dict = state[S.LABELS]
    fresh = {}
    for frame, frame_strokes in strokes.by_frame.items():
        cached = cache.get(frame)
        if cached is None or cached[1].shape != (height, width):
            labels = rasterize(list(frame_strokes), (height, width), frame=frame)
        else:
            labels = repaint(cached[1], cached[0], frame_strokes, frame=frame)
        fresh[frame] = (frame_strokes, labels)
    state[S.LABELS] = fresh
    return {frame: cached[1] for frame, cached in fresh.items()}


# --------------------------------------------------------------------------- features


def _feature_key(record: ImageRecord, frame: int, feature_settings, normalization) -> tuple:
    return (record.digest, int(frame), settings_token(feature_settings), settings_token(normalization))


def features_for(
    state: MutableMapping[str, Any],
    record: ImageRecord,
    frames: Sequence[int],
    feature_settings,
    normalization,
    *,
    keep: Sequence[int] = (),
) -> tuple[list[np.ndarray], float]:
    """Feature stacks of ``frames`` (computed at most once each) and the ms spent computing.

    The cache keeps only this image/settings and the frames in ``frames`` or ``keep``; older
    entries (other images, other settings, frames whose strokes were erased) are dropped.
    """
    from seg.features import compute_features
    from seg.images import normalize

    cache: dict = state[S.FEATURES]
    wanted = {_feature_key(record, f, feature_settings, normalization) for f in (*frames, *keep)}
    for key in [k for k in cache if k not in wanted]:
        del cache[key]
    spent = 0.0
    stacks = []
    for frame in frames:
        key = _feature_key(record, frame, feature_settings, normalization)
        if key not in cache:
            start = time.perf_counter()
            normalized = normalize(record.frames[frame], normalization)
            cache[key] = compute_features(normalized, feature_settings)
            spent += (time.perf_counter() - start) * 1000
        stacks.append(cache[key])
    _bound_cache(cache, required={_feature_key(record, f, feature_settings, normalization) for f in frames})
    return stacks, spent


def _bound_cache(cache: dict, required: set) -> None:
    """Drop optional entries (oldest first) while the cache is over its byte budget."""
    total = sum(a.nbytes for a in cache.values())
    for key in list(cache):
        if total <= config.MAX_CACHED_FEATURE_BYTES:
            break
        if key not in required:
            total -= cache.pop(key).nbytes


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainingInputs:
    """What a model is trained from; equal inputs give an equal training key (no retraining)."""

    digest: str
    strokes: tuple
    colors: tuple[str, ...]
    feature_settings: str
    forest_settings: str
    normalization: str


def training_key(record, strokes: Strokes, classes, feature_settings, forest_settings, normalization) -> TrainingInputs:
    return TrainingInputs(
        digest=record.digest,
        strokes=strokes.all,
        colors=tuple(c.color for c in classes),
        feature_settings=settings_token(feature_settings),
        forest_settings=settings_token(forest_settings),
        normalization=settings_token(normalization),
    )


def classes_present(labels: Mapping[int, np.ndarray], n_classes: int) -> list[int]:
    """Labels 1..K that have at least one scribbled pixel in any frame."""
    counts = np.zeros(n_classes + 1, dtype=np.int64)
    for image in labels.values():
        counts += np.bincount(image.ravel(), minlength=n_classes + 1)[: n_classes + 1]
    return [k for k in range(1, n_classes + 1) if counts[k] > 0]


def apply_class_names(model, classes: Sequence[ClassSpec]):
    """``model`` with the current class names and colours (renaming never needs retraining)."""
    if model is None:
        return None
    k = len(model.class_names)
    if len(classes) < k:
        return model
    names = tuple(c.name for c in classes[:k])
    colors = tuple(c.color for c in classes[:k])
    if names == tuple(model.class_names) and colors == tuple(model.class_colors):
        return model
    return dataclasses.replace(model, class_names=names, class_colors=colors)


# --------------------------------------------------------------------------- one refresh


@dataclass
class Refresh:
    """What :func:`refresh` did: timings in ms (0 = skipped) and a notice for the user."""

    features_ms: float = 0.0
    train_ms: float = 0.0
    predict_ms: float = 0.0
    trained: bool = False
    predicted: bool = False
    notice: str | None = None


def refresh(
    state: MutableMapping[str, Any],
    record: ImageRecord,
    frame: int,
    strokes: Strokes,
    labels: Mapping[int, np.ndarray],
    classes: Sequence[ClassSpec],
    feature_settings,
    forest_settings,
    normalization,
    display_size: tuple[int, int],
) -> Refresh:
    """Retrain if the training key changed, then predict ``frame`` if the model or frame changed.

    ``display_size`` is the (h, w) of the canvas background: only those pixels are predicted
    now (see :class:`Prediction`).
    """
    done = Refresh()
    labelled = sorted(f for f, image in labels.items() if image.any())
    key = training_key(record, strokes, classes, feature_settings, forest_settings, normalization)
    if state[S.TRAIN_KEY] == KEEP_UPLOADED_MODEL:
        state[S.TRAIN_KEY] = key  # an uploaded model is used until strokes or settings change
    if key != state[S.TRAIN_KEY]:
        _retrain(state, record, frame, labels, labelled, classes, feature_settings, forest_settings,
                 normalization, done)
        state[S.TRAIN_KEY] = key
    model = state[S.MODEL]
    if model is None:
        state[S.PREDICTION] = None
        done.notice = state.get(S.NOTICE)
        return done
    state[S.MODEL] = model = apply_class_names(model, classes)
    pred_key = (state[S.MODEL_VERSION], record.digest, int(frame), tuple(display_size))
    current = state[S.PREDICTION]
    if current is None or current.key != pred_key:
        stacks, spent = features_for(state, record, [frame], model.feature_settings, model.normalization,
                                     keep=labelled)
        done.features_ms += spent
        start = time.perf_counter()
        state[S.PREDICTION] = Prediction.compute(pred_key, frame, model, stacks[0], display_size,
                                                         previous=current)
        done.predict_ms = (time.perf_counter() - start) * 1000
        done.predicted = True
    done.notice = state.get(S.NOTICE)
    return done


def _retrain(state, record, frame, labels, labelled, classes, feature_settings, forest_settings,
             normalization, done: Refresh) -> None:
    present = classes_present(labels, len(classes))
    state[S.NOTICE] = None
    if len(present) < 2:
        if state[S.MODEL_SOURCE] == "trained" or state[S.MODEL] is None:
            state[S.MODEL] = None
            state[S.MODEL_SOURCE] = None
            state[S.PREDICTION] = None
            state[S.NOTICE] = (
                "Draw on at least two classes to see a segmentation."
                if present else "Draw a few strokes on each class to see a segmentation."
            )
        return
    stacks, spent = features_for(state, record, labelled, feature_settings, normalization, keep=[frame])
    done.features_ms += spent
    from seg.model import train

    start = time.perf_counter()
    try:
        model = train(
            record.frames[labelled],
            np.stack([labels[f] for f in labelled]),
            feature_settings,
            [c.name for c in classes],
            class_colors=[c.color for c in classes],
            forest=forest_settings,
            normalization=normalization,
            features=stacks,
        )
    except TrainingError as exc:
        state[S.NOTICE] = str(exc)
        return
    finally:
        done.train_ms = (time.perf_counter() - start) * 1000
    state[S.MODEL] = model
    state[S.MODEL_SOURCE] = "trained"
    state[S.MODEL_VERSION] = int(state[S.MODEL_VERSION]) + 1
    done.trained = True


def invalidate_model(state: MutableMapping[str, Any]) -> None:
    """Forget the training key so the next refresh retrains (classes or settings changed)."""
    state[S.TRAIN_KEY] = None
