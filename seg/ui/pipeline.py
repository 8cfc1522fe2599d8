"""From the canvas JSON to a prediction, doing only the work that changed.

One run of the app calls :func:`collect_strokes` (cheap: JSON -> strokes -> label images) and, when
live update is on or the user pressed "Update", :func:`refresh` which

1. computes features once per (image, frame, feature settings, normalisation) — cached: the whole
   frame's stack for frames up to :data:`seg.ui.config.WHOLE_FEATURES_MAX_PIXELS`, else tile by
   tile where the viewport and the strokes need them (:class:`seg.features.tiles.TileFeatures`),
2. retrains only when the strokes, classes or settings changed (the *training key*),
3. predicts the pixels the canvas shows only when the model, frame or viewport changed (the
   *prediction key*).

Each step's wall time is recorded in milliseconds for the status line. Everything lives in the
session-state mapping passed in (no module globals), so the functions can be tested with a dict.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seg.errors import TrainingError
from seg.ui import config
from seg.ui import state as keys
from seg.ui.state import ClassSpec, ImageRecord, SessionState
from seg.viewport import Viewport

#: Training key placeholder set when a model is uploaded: adopt the next key without training.
KEEP_UPLOADED_MODEL = "keep-uploaded-model"


def gather_pixels(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``image[rows][:, cols]`` as one C-contiguous gather (no (len(rows), W, ...) intermediate)."""
    height, width = image.shape[:2]
    flat = (rows.astype(np.intp)[:, None] * width + cols.astype(np.intp)[None, :]).ravel()
    gathered = image.reshape(height * width, -1)[flat]
    return gathered.reshape(len(rows), len(cols), *image.shape[2:])


@dataclass(frozen=True)
class Scene:
    """What the canvas shows: one frame of an image through a viewport."""

    record: ImageRecord
    frame: int
    viewport: Viewport


@dataclass(frozen=True)
class Settings:
    """The feature, forest and normalisation settings a model is trained with (and, for a
    volume, its voxel size and feature mode)."""

    features: Any  # seg.features.FeatureSettings
    forest: Any  # seg.model.ForestSettings
    normalization: Any  # seg.images.Normalization
    volume: Any = None  # seg.features.volume.VolumeSettings: trains a volume model (dims=3)


@dataclass(frozen=True)
class PredictionKey:
    """What a :class:`Prediction` was made for: a model version, an image frame and a viewport."""

    model_version: int
    digest: str
    frame: int
    view: str

    def is_for(self, record: ImageRecord) -> bool:
        """Whether it belongs to the image ``record`` (any frame or view)."""
        return self.digest == record.digest

    def labels_id(self) -> tuple[int, str, int]:
        """(model version, digest, frame): equal for predictions with the same full-resolution
        labels (they differ only in the viewport)."""
        return self.model_version, self.digest, self.frame


@dataclass(frozen=True, eq=False)
class Prediction:
    """The segmentation of one frame, computed as far as it is looked at.

    Every stroke needs only what the canvas shows: the labels of the image pixels under the
    canvas pixels of the viewport (:meth:`seg.viewport.Viewport.display_rows`), exactly what the
    full-resolution labels resized for display would be. Full-resolution labels (measurements,
    downloads) and probabilities are computed on first use: from the cached feature stack of a
    small frame, or through the tiled path (:func:`seg.tiling.apply_tiled`, equal to
    ``Model.predict``) for a large one, which :meth:`compute_labels` runs with a progress callback.

    Attributes
    ----------
    key : PredictionKey
    display_labels : (h, w) uint8 or uint16, values 1..K, at the canvas size; None when the
        viewport needs more feature tiles than the memory budget allows (zoomed far out on a
        large frame) and no whole-frame labels exist yet
    n_classes : int
        K of the model that made it.
    """

    key: PredictionKey
    display_labels: np.ndarray | None
    n_classes: int
    _model: Any = dataclasses.field(repr=False, default=None)
    _features: Any = dataclasses.field(repr=False, default=None)  # (H, W, F) stack or TileFeatures
    _frame: Any = dataclasses.field(repr=False, default=None)  # raw (H, W[, C]) frame (tiled path)
    _samples: Any = dataclasses.field(repr=False, default=None)  # (rows, cols) or None = all pixels
    _shown: Any = dataclasses.field(repr=False, default=None)  # (h, w, F) features of the display pixels
    _memo: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def frame(self) -> int:
        return self.key.frame

    @property
    def tiled(self) -> bool:
        """Whether the frame's features are computed tile by tile (a large frame)."""
        return not isinstance(self._features, np.ndarray)

    @classmethod
    def compute(
        cls,
        key: PredictionKey,
        model,
        features,
        viewport: Viewport,
        *,
        frame: np.ndarray | None = None,
        whole: WholeLabels | None = None,
        previous: Prediction | None = None,
    ) -> Prediction:
        """Predict the pixels ``viewport`` shows.

        ``features`` is the frame's (H, W, F) stack or its :class:`TileFeatures` (then ``frame``
        is the raw frame, for whole-frame prediction). The display pixels' features are gathered
        once per feature source and viewport and reused from ``previous`` on the next stroke:
        gathering costs more than predicting them. When the tiles under the viewport do not fit
        the memory budget, the display labels come from ``whole`` (if it is for this model) or
        are None.
        """
        rows, cols = viewport.display_rows(), viewport.display_columns()
        full = isinstance(features, np.ndarray) and (len(rows), len(cols)) == features.shape[:2]
        samples = None if full else (rows, cols)
        common = dict(key=key, n_classes=int(model.n_classes), _model=model, _features=features, _frame=frame)
        if not isinstance(features, np.ndarray) and not features.fits(rows, cols):
            shown_labels = None
            if whole is not None and whole.is_for(key):
                shown_labels = whole.labels[np.ix_(rows, cols)]
            prediction = cls(display_labels=shown_labels, _samples=samples, **common)
            prediction.adopt(whole)
            return prediction
        if full:
            shown = features
        elif (
            previous is not None
            and previous._features is features
            and previous._shown is not None
            and previous.key.view == key.view
        ):
            shown = previous._shown
        elif isinstance(features, np.ndarray):
            shown = gather_pixels(features, rows, cols)
        else:
            shown = features.gather(rows, cols)
        prediction = cls(
            display_labels=model.predict_features(shown), _samples=samples, _shown=None if full else shown, **common
        )
        if full:
            prediction._memo["labels"] = prediction.display_labels
        prediction.adopt(whole)
        return prediction

    def adopt(self, whole: WholeLabels | None) -> None:
        """Take the whole-frame labels (and probabilities) of ``whole`` if it is of this model and frame."""
        if whole is not None and whole.is_for(self.key):
            self._memo["labels"] = whole.labels
            if whole.proba is not None:
                self._memo["whole_proba"] = whole.proba

    @property
    def has_labels(self) -> bool:
        """Whether full-resolution labels are at hand without the tiled whole-frame pass."""
        return not self.tiled or "labels" in self._memo

    @property
    def labels(self) -> np.ndarray:
        """(H, W) full-resolution labels, values 1..K (computed once, then kept)."""
        return self.compute_labels()

    def compute_labels(self, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The full-resolution labels; a large frame is predicted tile by tile, reporting
        ``progress(done, total)`` (equal to ``Model.predict`` of the whole frame)."""
        if "labels" not in self._memo:
            if self.tiled:
                from seg.tiling import apply_tiled

                # The pass holds one window's features at a time; the cached tiles (recomputed
                # when looked at again) would add up to their whole budget to its peak.
                self._features.drop_tiles()
                self._memo["labels"], _ = apply_tiled(self._model, self._frame, progress=progress)
            else:
                self._memo["labels"] = self._model.predict_features(self._features)
        return self._memo["labels"]

    def compute_whole(self, progress: Callable[[int, int], None] | None = None) -> WholeLabels:
        """Labels of the whole (large) frame, and its probabilities as uint8 when they fit
        :data:`seg.ui.config.MAX_WHOLE_PROBA_BYTES`, in one tiled pass with ``progress(done, total)``.

        The probabilities are kept quantised (:func:`seg.tiling.quantize_probabilities`: 1 byte
        per pixel and class, a quarter of float32) so that a 100-megapixel frame of two classes
        holds 200 MB of them; above the limit only the labels are kept.
        """
        from seg.tiling import apply_tiled

        height, width = self._frame.shape[:2]
        keep_proba = height * width * self.n_classes <= config.MAX_WHOLE_PROBA_BYTES
        self._features.drop_tiles()  # as in compute_labels: one window's features at a time
        labels, proba = apply_tiled(self._model, self._frame, proba=keep_proba, proba_dtype=np.uint8, progress=progress)
        assert labels is not None  # asked for (apply_tiled's labels=True)
        whole = WholeLabels(self.key, labels, proba)
        self.adopt(whole)
        return whole

    def whole_probabilities(self) -> np.ndarray | None:
        """(H, W, K) probabilities of the whole frame if at hand: float32 0..1 for a small frame,
        uint8 0..255 (= 0..1) for a large one after :meth:`compute_whole`; else None."""
        if not self.tiled:
            return self.probabilities()
        return self._memo.get("whole_proba")

    def probabilities(self) -> np.ndarray:
        """(H, W, K) float32 full-resolution class probabilities of a small frame (computed once,
        then kept). A large frame's are :meth:`whole_probabilities` (uint8, bounded): K float32
        values per pixel of a 100-megapixel frame are not held in a session."""
        if self.tiled:
            raise RuntimeError("Prediction.probabilities() is for small frames: use whole_probabilities()")
        if "proba" not in self._memo:
            self._memo["proba"] = self._model.predict_proba_features(self._features)
        return self._memo["proba"]

    def display_probabilities(self) -> np.ndarray | None:
        """(h, w, K) float32 probabilities of the display pixels (None without display labels)."""
        if "display_proba" not in self._memo:
            if self._shown is not None:
                self._memo["display_proba"] = self._model.predict_proba_features(self._shown)
            elif self._samples is None:
                self._memo["display_proba"] = self.probabilities()
            else:
                return None
        return self._memo["display_proba"]

    def release(self) -> None:
        """Drop the features, model and everything computed from them (the session's tab
        disconnected, see :mod:`seg.ui.lifetime`); :attr:`released` is True from then on."""
        for name in ("_model", "_features", "_frame", "_samples", "_shown"):
            object.__setattr__(self, name, None)
        self._memo.clear()

    @property
    def released(self) -> bool:
        return self._model is None

    def display_uncertainty(self) -> np.ndarray | None:
        """(h, w) float32 in [0, 1]: 1 - (best - second best probability) of the display pixels."""
        if "display_uncertainty" not in self._memo:
            proba = self.display_probabilities()
            if proba is None:
                return None
            from seg.model import uncertainty

            self._memo["display_uncertainty"] = uncertainty(proba)
        return self._memo["display_uncertainty"]


@dataclass(frozen=True, eq=False)
class WholeLabels:
    """Full-resolution labels (and uint8 probabilities) of a large frame from one model: shown
    when zoomed far out, measured, downloaded."""

    key: PredictionKey
    labels: np.ndarray
    proba: np.ndarray | None = None  # (H, W, K) uint8 0..255, when it fits the memory limit

    def is_for(self, key: PredictionKey) -> bool:
        """Whether these labels are of the model and frame of ``key`` (any view)."""
        return self.key.labels_id() == key.labels_id()

    def release(self) -> None:
        object.__setattr__(self, "labels", None)
        object.__setattr__(self, "proba", None)

    @property
    def released(self) -> bool:
        return self.labels is None


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


def image_fit(record: ImageRecord):
    """:class:`seg.strokes.BackgroundFit` of the stored strokes: they are kept in image pixels."""
    from seg.strokes import BackgroundFit

    _, height, width = record.shape
    return BackgroundFit(width, height)


def collect_strokes(
    drawings: Mapping[int, dict], fit, classes: Sequence[ClassSpec], cache: dict | None = None
) -> Strokes:
    """Parse the stored JSON of every frame into strokes (image pixel coordinates).

    ``cache`` (a dict kept in session state) holds a :class:`seg.strokes.CanvasParser` per frame:
    after a stroke only the new canvas object is parsed, and an unchanged frame not at all.
    Raises :class:`seg.errors.AnnotationError` on malformed JSON (the caller shows it).
    """
    from seg.strokes import ERASER_COLOR, CanvasParser

    color_to_label = dict(keys.class_labels(classes))
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


def label_images(state: SessionState, record: ImageRecord, strokes: Strokes) -> dict[int, np.ndarray]:
    """{frame: (H, W) label image} for frames with strokes; only new strokes are painted.

    New strokes are painted into the kept label image itself (a copy of a 64-megapixel label
    image per stroke cost more than the rest of the stroke's bookkeeping); if painting fails the
    image is dropped and painted afresh next time.
    """
    from seg.strokes import rasterize, repaint

    _, height, width = record.shape
    cache: dict = state[keys.LABELS]
    fresh = {}
    for frame, frame_strokes in strokes.by_frame.items():
        cached = cache.get(frame)
        if cached is None or cached[1].shape != (height, width):
            labels = rasterize(list(frame_strokes), (height, width), frame=frame)
        else:
            try:
                labels = repaint(cached[1], cached[0], frame_strokes, frame=frame, in_place=True)
            except Exception:
                del cache[frame]
                raise
        fresh[frame] = (frame_strokes, labels)
    state[keys.LABELS] = fresh
    return {frame: cached[1] for frame, cached in fresh.items()}


# --------------------------------------------------------------------------- features


def tiled(record: ImageRecord) -> bool:
    """Whether frames of ``record`` get their features tile by tile (too large for a whole stack)."""
    _, height, width = record.shape
    return height * width > config.WHOLE_FEATURES_MAX_PIXELS


def _feature_key(record: ImageRecord, frame: int, feature_settings, normalization, volume=None) -> tuple:
    shape = "" if volume is None else settings_token(volume)
    return (record.digest, int(frame), settings_token(feature_settings), settings_token(normalization), shape)


def features_for(
    state: SessionState,
    record: ImageRecord,
    frames: Sequence[int],
    feature_settings,
    normalization,
    *,
    keep: Sequence[int] = (),
    volume=None,
) -> tuple[list, float]:
    """Features of ``frames`` (computed at most once each) and the ms spent computing now.

    Small frames get their (H, W, F) stack; larger ones (:func:`tiled`) a
    :class:`seg.features.tiles.TileFeatures` whose tiles are computed when first used. With
    ``volume`` (a :class:`seg.features.volume.VolumeSettings`) the frames are z slices of the
    record's volume and get their volume features (3-D: the slice's block with its context in z,
    :func:`seg.ui.volume.slice_features`). The caches
    keep only this image/settings and the frames in ``frames`` or ``keep``; older entries (other
    images, other settings, frames whose strokes were erased) are dropped.
    """
    from seg.features import compute_features
    from seg.features.tiles import TileFeatures
    from seg.images import normalize

    if volume is not None and record.volume is None:
        from seg.errors import ModelMismatchError

        raise ModelMismatchError(
            f"This is a volume (3-D) model, but {record.name!r} is not opened as a volume: open a volume, "
            "or use a 2-D model."
        )
    large = tiled(record) and volume is None
    cache: dict = state[keys.TILES if large else keys.FEATURES]
    wanted = {_feature_key(record, f, feature_settings, normalization, volume) for f in (*frames, *keep)}
    for key in [k for k in cache if k not in wanted]:
        del cache[key]
    spent = 0.0
    stacks = []
    for frame in frames:
        key = _feature_key(record, frame, feature_settings, normalization, volume)
        if key not in cache and large:
            cache[key] = TileFeatures(
                record.frames[frame], feature_settings, normalization, budget=config.MAX_CACHED_TILE_BYTES
            )
        elif key not in cache:
            start = time.perf_counter()
            if volume is None:
                cache[key] = compute_features(normalize(record.frames[frame], normalization), feature_settings)
            else:
                from seg.ui.volume import slice_features

                cache[key] = slice_features(state, record, frame, feature_settings, normalization, volume)
            spent += (time.perf_counter() - start) * 1000
        stacks.append(cache[key])
    if not large:
        required = {_feature_key(record, f, feature_settings, normalization, volume) for f in frames}
        _bound_cache(cache, required=required)
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
    volume: str = ""


def training_key(
    record: ImageRecord, strokes: Strokes, classes: Sequence[ClassSpec], settings: Settings
) -> TrainingInputs:
    return TrainingInputs(
        digest=record.digest,
        strokes=strokes.all,
        colors=tuple(c.color for c in classes),
        feature_settings=settings_token(settings.features),
        forest_settings=settings_token(settings.forest),
        normalization=settings_token(settings.normalization),
        volume="" if settings.volume is None else settings_token(settings.volume),
    )


def classes_present(labels: Mapping[int, np.ndarray], n_classes: int) -> list[int]:
    """Labels 1..K that have at least one scribbled pixel in any frame."""
    counts = np.zeros(n_classes + 1, dtype=np.int64)
    for image in labels.values():
        # Only the scribbled pixels of the rows with scribbles: bincount widens every value it
        # reads to 8 bytes, which on a 64-megapixel label image took over a second per stroke.
        scribbled = image[np.flatnonzero(image.any(axis=1))]
        counts += np.bincount(scribbled[scribbled != 0], minlength=n_classes + 1)[: n_classes + 1]
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
    state: SessionState,
    scene: Scene,
    strokes: Strokes,
    labels: Mapping[int, np.ndarray],
    classes: Sequence[ClassSpec],
    settings: Settings,
) -> Refresh:
    """Retrain if the training key changed, then predict what the canvas shows if the model,
    frame or viewport changed (only the canvas's pixels, see :class:`Prediction`)."""
    done = Refresh()
    record = scene.record
    labelled = sorted(f for f, image in labels.items() if image.any())
    key = training_key(record, strokes, classes, settings)
    if state[keys.TRAIN_KEY] == KEEP_UPLOADED_MODEL:
        state[keys.TRAIN_KEY] = key  # an uploaded model is used until strokes or settings change
    if key != state[keys.TRAIN_KEY]:
        _retrain(state, scene, labels, labelled, classes, settings, done)
        state[keys.TRAIN_KEY] = key
    model = state[keys.MODEL]
    if model is None:
        state[keys.PREDICTION] = None
        done.notice = state.get(keys.NOTICE)
        return done
    state[keys.MODEL] = model = apply_class_names(model, classes)
    pred_key = PredictionKey(int(state[keys.MODEL_VERSION]), record.digest, int(scene.frame), scene.viewport.token())
    current = state[keys.PREDICTION]
    if current is None or current.key != pred_key:
        sources, spent = features_for(
            state,
            record,
            [scene.frame],
            model.feature_settings,
            model.normalization,
            keep=labelled,
            volume=model.volume,
        )
        done.features_ms += spent
        start = time.perf_counter()
        state[keys.PREDICTION] = Prediction.compute(
            pred_key,
            model,
            sources[0],
            scene.viewport,
            frame=record.frames[scene.frame],
            whole=state.get(keys.WHOLE),
            previous=current,
        )
        done.predict_ms = (time.perf_counter() - start) * 1000
        done.predicted = True
    done.notice = state.get(keys.NOTICE)
    return done


def labelled_samples(source, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, F) features and (N,) labels of the labelled pixels of one frame, in row-major order,
    from its (H, W, F) stack or its :class:`seg.features.tiles.TileFeatures`."""
    if not isinstance(source, np.ndarray):
        return source.labelled_samples(labels)
    chosen = labels > 0
    return source[chosen], labels[chosen].astype(np.int64)


def _retrain(state, scene: Scene, labels, labelled, classes, settings: Settings, done: Refresh) -> None:
    record = scene.record
    present = classes_present(labels, len(classes))
    state[keys.NOTICE] = None
    if len(present) < 2:
        if state[keys.MODEL_SOURCE] == "trained" or state[keys.MODEL] is None:
            state[keys.MODEL] = None
            state[keys.MODEL_SOURCE] = None
            state[keys.PREDICTION] = None
            state[keys.NOTICE] = (
                "Draw on at least two classes to see a segmentation."
                if present
                else "Draw a few strokes on each class to see a segmentation."
            )
        return
    sources, spent = features_for(
        state, record, labelled, settings.features, settings.normalization, keep=[scene.frame], volume=settings.volume
    )
    done.features_ms += spent
    from seg.model import train, train_samples

    start = time.perf_counter()
    try:
        if tiled(record) or settings.volume is not None:
            gathered = [labelled_samples(source, labels[f]) for f, source in zip(labelled, sources)]
            for f, source in zip(labelled, sources):
                if f != scene.frame and not isinstance(source, np.ndarray):
                    source.drop_tiles()  # keep only the labelled rows of other frames
            gather_ms = (time.perf_counter() - start) * 1000
            done.features_ms += gather_ms
            start = time.perf_counter()
            model = train_samples(
                np.concatenate([x for x, _ in gathered]),
                np.concatenate([y for _, y in gathered]),
                n_channels=record.n_channels,
                image_shape=record.frames.shape,
                frames=labelled,
                settings=settings.features,
                class_names=[c.name for c in classes],
                class_colors=[c.color for c in classes],
                forest=settings.forest,
                normalization=settings.normalization,
                volume=settings.volume,
            )
        else:
            model = train(
                record.frames[labelled],
                np.stack([labels[f] for f in labelled]),
                settings.features,
                [c.name for c in classes],
                class_colors=[c.color for c in classes],
                forest=settings.forest,
                normalization=settings.normalization,
                features=sources,
            )
    except TrainingError as exc:
        state[keys.NOTICE] = str(exc)
        return
    finally:
        done.train_ms = (time.perf_counter() - start) * 1000
    state[keys.MODEL] = model
    state[keys.MODEL_SOURCE] = "trained"
    state[keys.MODEL_VERSION] = int(state[keys.MODEL_VERSION]) + 1
    done.trained = True


def invalidate_model(state: SessionState) -> None:
    """Forget the training key so the next refresh retrains (classes or settings changed)."""
    state[keys.TRAIN_KEY] = None
