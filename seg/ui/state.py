"""Session-state keys and the per-session records the app keeps.

Everything a user does lives in ``st.session_state`` (one dict per browser session), never in a
module-level variable, so one user's work never appears in another's session. Keys holding data
start with ``seg.``; widget keys start with ``w_`` (they become CSS classes ``st-key-w_...`` that
browser tests can select).

Data keys
---------
``seg.image``           :class:`ImageRecord` of the image being segmented
``seg.classes``         list of :class:`ClassSpec`, label = position + 1
``seg.drawings``        {frame: Fabric JSON} strokes of every frame of the current image
``seg.drawings`` holds Fabric JSON in *image* pixels (the canvas of a viewport shows a projection)
``seg.canvas_nonce``    int, bumped to remount the canvas with new strokes (resume, recolour, ...)
``seg.canvas``          :class:`seg.ui.canvas.MountedCanvas` shown in the last run (its key's value
                        holds the strokes in canvas pixels; it maps them back to image pixels)
``seg.viewport``        :class:`seg.viewport.Viewport` of the current image (None: fit the canvas)
``seg.overview_nonce``  int, bumped to clear the overview after a click on it centred the view
``seg.labels``          {frame: (strokes, (H, W) label image)} rasterised scribbles
``seg.parsed``          {frame: (fit, colours, seg.strokes.CanvasParser)} parsers of the stored JSON
``seg.features``        {(digest, frame, settings): (H, W, F) float32} feature stacks of small frames
``seg.tiles``           {(digest, frame, settings): seg.features.tiles.TileFeatures} of large frames
``seg.model``           the current :class:`seg.model.Model` (contract: other pages read it)
``seg.model_source``    "trained" | "uploaded" | None
``seg.prediction``      :class:`seg.ui.pipeline.Prediction` of the current frame and view, or None
``seg.whole``           :class:`seg.ui.pipeline.WholeLabels`: the last whole-frame labels of a large frame
``seg.update``          int N of "update #N" in the status marker
``seg.signature``       what was shown at update N (strokes, model, prediction, picture)
``seg.timings``         {"features": ms, "train": ms, "predict": ms, "render": ms} of update N
``seg.notice``          text explaining why there is no segmentation (or None)
``seg.upload_errors``   {uploader key: (file id, message)} the last refused upload per uploader
``seg.feature_base``    FeatureSettings the settings widgets start from (fields without a widget)
``seg.forest_base``     ForestSettings the forest widgets start from
``seg.normalization``   Normalization of new models (a loaded model's own)
``seg.downloads``       list of :class:`seg.ui.downloads.DownloadSpec` offered in the last run
``seg.imported_labels`` {frame: (H, W) labels} imported from a mask (seg/ui/label_import.py)
``seg.imported_version`` int, bumped whenever the imported labels change (names them on the canvas)
``seg.voxel_size``      (spacing (dz, dy, dx), unit) of a volume: the last valid values typed in
``seg.volume_cache``    {name: (key, value)} of a volume: its normalised voxels, whole-volume labels,
                        the orthogonal view's labels (see :mod:`seg.ui.volume`)

The feature caches, the cached pictures (``seg.backgrounds``, ``seg.display``) and the prediction
are emptied (released) when the session's tab disconnects (:data:`RECOMPUTABLE_CACHES`,
:mod:`seg.ui.lifetime`); the page computes them again if the tab comes back.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

#: What the helpers take as ``state``: ``st.session_state`` (a SessionStateProxy, whose keys are
#: ``str | int``) or, in tests, a plain dict.
SessionState: TypeAlias = MutableMapping[Any, Any]

IMAGE = "seg.image"
CLASSES = "seg.classes"
NEXT_CLASS_ID = "seg.next_class_id"
DRAWINGS = "seg.drawings"
CANVAS_NONCE = "seg.canvas_nonce"
CANVAS = "seg.canvas"
VIEWPORT = "seg.viewport"
OVERVIEW_NONCE = "seg.overview_nonce"
LABELS = "seg.labels"
PARSED = "seg.parsed"
FEATURES = "seg.features"
TILES = "seg.tiles"
WHOLE = "seg.whole"
MODEL = "seg.model"
MODEL_SOURCE = "seg.model_source"
MODEL_VERSION = "seg.model_version"
TRAIN_KEY = "seg.train_key"
PREDICTION = "seg.prediction"
UPDATE = "seg.update"
SIGNATURE = "seg.signature"
TIMINGS = "seg.timings"
NOTICE = "seg.notice"
BACKGROUNDS = "seg.backgrounds"
DISPLAY = "seg.display"
UPLOAD_ERRORS = "seg.upload_errors"
FLASH = "seg.flash"
DOWNLOADS = "seg.downloads"
MEASUREMENTS = "seg.measurements"
STACK_MEASUREMENTS = "seg.stack_measurements"
FEATURE_BASE = "seg.feature_base"
FOREST_BASE = "seg.forest_base"
NORMALIZATION = "seg.normalization"
OBJECTS = "seg.objects"
ACCURACY = "seg.accuracy"
IMPORTED_LABELS = "seg.imported_labels"
IMPORTED_VERSION = "seg.imported_version"
VOXEL_SIZE = "seg.voxel_size"
VOLUME_CACHE = "seg.volume_cache"

# Widget keys (CSS class st-key-<key> in the browser).
W_SAMPLE = "w_sample"
W_IMAGE_UPLOAD = "w_image_upload"
W_ANNOTATIONS_UPLOAD = "w_annotations_upload"
W_MODEL_UPLOAD = "w_model_upload"
W_FRAME = "w_frame"
W_ACTIVE = "w_active"
W_TOOL = "w_tool"
W_WIDTH = "w_width"
W_VIEW = "w_view"
W_OPACITY = "w_opacity"
W_LIVE = "w_live"
W_UPDATE = "w_update"
W_ZOOM = "w_zoom"
W_ZOOM_IN = "w_zoom_in"
W_ZOOM_OUT = "w_zoom_out"
W_ZOOM_FIT = "w_zoom_fit"
W_PAN_LEFT = "w_pan_left"
W_PAN_RIGHT = "w_pan_right"
W_PAN_UP = "w_pan_up"
W_PAN_DOWN = "w_pan_down"
W_SEGMENT_WHOLE = "w_segment_whole"
W_PRESET = "w_preset"
W_FEATURE_SET = "w_feature_set"
W_INTENSITY = "w_intensity"
W_EDGES = "w_edges"
W_TEXTURE = "w_texture"
W_SIGMA_MIN = "w_sigma_min"
W_SIGMA_MAX = "w_sigma_max"
W_CHANNEL_MODE = "w_channel_mode"
W_CHANNELS = "w_channels"
W_TREES = "w_trees"
W_DEPTH = "w_depth"
W_NEW_CLASS = "w_new_class"
W_MEASURE_STACK = "w_measure_stack"
W_STACK_KIND = "w_stack_kind"
W_VOLUME_FEATURES = "w_volume_features"
W_VOXEL_Z = "w_voxel_z"
W_VOXEL_Y = "w_voxel_y"
W_VOXEL_X = "w_voxel_x"
W_VOXEL_UNIT = "w_voxel_unit"
W_ORTHO_PLANE = "w_ortho_plane"
W_ORTHO_ROW = "w_ortho_row"
W_ORTHO_COLUMN = "w_ortho_column"
W_SEGMENT_VOLUME = "w_segment_volume"

#: Widgets whose values survive a visit to another page (Streamlit drops the state of widgets that
#: were not shown in a run; :func:`remember_widgets` / :func:`restore_widgets` keep a copy).
PERSISTED_WIDGETS = (
    W_SAMPLE,
    W_FRAME,
    W_ACTIVE,
    W_TOOL,
    W_WIDTH,
    W_VIEW,
    W_OPACITY,
    W_LIVE,
    W_PRESET,
    W_FEATURE_SET,
    W_INTENSITY,
    W_EDGES,
    W_TEXTURE,
    W_SIGMA_MIN,
    W_SIGMA_MAX,
    W_CHANNEL_MODE,
    W_CHANNELS,
    W_TREES,
    W_DEPTH,
    W_VOLUME_FEATURES,
    W_VOXEL_Z,
    W_VOXEL_Y,
    W_VOXEL_X,
    W_VOXEL_UNIT,
)
WIDGET_MEMORY = "seg.widget_memory"

TOOLS = {"freedraw": "Freehand", "line": "Line", "rect": "Rectangle", "eraser": "Eraser"}


@dataclass(frozen=True)
class ClassSpec:
    """One class the user paints: label = its position in ``seg.classes`` + 1.

    ``id`` is stable across renames and reorderings so that widget keys stay attached to it.
    """

    id: int
    name: str
    color: str


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """The image being segmented.

    Attributes
    ----------
    name : str
        File name shown to the user and used for download names (never used as a path).
    digest : str
        Hex digest of the source bytes (or sample name): keys the canvas and every cache.
    frames : np.ndarray
        (T, H, W, C) array as returned by :func:`seg.images.read_image`; a volume's
        (Z, Y, X, C) voxels (its z slices are the frames).
    volume : seg.images.Volume or None
        The image read as a 3-D volume (voxel size, unit, a NIfTI input's affine; ``data`` is
        ``frames``), or None for an image or a time series.
    stack_kind : str
        What the file said its stack is (:func:`seg.images.volume.stack_kind`): ``"unknown"``
        for a stack without metadata, whose person is asked (volume or time series).
    """

    name: str
    digest: str
    frames: np.ndarray = field(repr=False)
    volume: Any = field(default=None, repr=False)
    stack_kind: str = "image"

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, H, W) of the image."""
        t, h, w, _ = self.frames.shape
        return int(t), int(h), int(w)

    @property
    def is_volume(self) -> bool:
        return self.volume is not None

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.frames.shape[3])


def digest_bytes(data: bytes) -> str:
    """Short hex digest of ``data`` used to key caches and the canvas."""
    return hashlib.blake2b(data, digest_size=10).hexdigest()


def init_state(state: SessionState, *, default_classes: Sequence[tuple[str, str]]) -> None:
    """Create every key the app reads, once per session (later runs leave values alone)."""
    if CLASSES not in state:
        state[CLASSES] = [ClassSpec(i + 1, name, color) for i, (name, color) in enumerate(default_classes)]
        state[NEXT_CLASS_ID] = len(default_classes) + 1
    for key, value in (
        (DRAWINGS, {}),
        (CANVAS_NONCE, 0),
        (CANVAS, None),
        (VIEWPORT, None),
        (OVERVIEW_NONCE, 0),
        (LABELS, {}),
        (PARSED, {}),
        (FEATURES, {}),
        (TILES, {}),
        (WHOLE, None),
        (MODEL, None),
        (MODEL_SOURCE, None),
        (MODEL_VERSION, 0),
        (TRAIN_KEY, None),
        (PREDICTION, None),
        (UPDATE, 0),
        (TIMINGS, {}),
        (NOTICE, None),
        (BACKGROUNDS, {}),
        (DISPLAY, {}),
        (UPLOAD_ERRORS, {}),
        (FLASH, []),
        (DOWNLOADS, []),
        (MEASUREMENTS, None),
        (STACK_MEASUREMENTS, None),
        (OBJECTS, {}),
        (ACCURACY, {}),
        (IMPORTED_LABELS, {}),
        (VOXEL_SIZE, None),
        (VOLUME_CACHE, {}),
    ):
        state.setdefault(key, value)


def restore_widgets(state: SessionState) -> None:
    """Give widgets dropped by Streamlit (after another page was shown) their last values."""
    for key, value in state.get(WIDGET_MEMORY, {}).items():
        if key not in state:
            state[key] = value


def remember_widgets(state: SessionState) -> None:
    """Keep a copy of the persisted widgets' values (called at the end of every run)."""
    state[WIDGET_MEMORY] = {key: state[key] for key in PERSISTED_WIDGETS if key in state}


def new_class_id(state: SessionState) -> int:
    """A class id never used before in this session (widget keys must not be reused)."""
    class_id = int(state.get(NEXT_CLASS_ID, 1))
    state[NEXT_CLASS_ID] = class_id + 1
    return class_id


def replace_classes(state: SessionState, names: Sequence[str], colors: Sequence[str]) -> None:
    """Make ``names``/``colors`` the classes (loading annotations or a model), with fresh ids."""
    state[CLASSES] = [ClassSpec(new_class_id(state), str(n), str(c).lower()) for n, c in zip(names, colors)]


def set_image(state: SessionState, record: ImageRecord) -> None:
    """Switch to ``record``: a fresh canvas, no strokes, no prediction; classes and model stay.

    Features and backgrounds of the previous image are dropped (memory is per session).
    """
    state[IMAGE] = record
    state[DRAWINGS] = {}
    state[LABELS] = {}
    state[IMPORTED_LABELS] = {}
    state[PARSED] = {}
    for key in RECOMPUTABLE_CACHES:  # emptied, not replaced: see recomputable()
        state[key].clear()
    state[PREDICTION] = None
    state[WHOLE] = None
    state[VIEWPORT] = None
    state[W_ZOOM] = "fit"
    state[TRAIN_KEY] = None
    state[MEASUREMENTS] = None
    state[STACK_MEASUREMENTS] = None
    state[CANVAS_NONCE] = int(state.get(CANVAS_NONCE, 0)) + 1
    state[CANVAS] = None
    if state.get(MODEL_SOURCE) == "trained":
        # A model trained on the previous image's strokes no longer matches any stroke; an
        # uploaded model is kept because applying it to new images is the point of uploading it.
        state[MODEL] = None
        state[MODEL_SOURCE] = None
    state[W_FRAME] = 0
    if record.volume is not None:
        reset_voxel_size(state, record.volume)


def reset_voxel_size(state: SessionState, volume) -> None:
    """The voxel size in use and its inputs start from ``volume``'s (a :class:`seg.images.Volume`)."""
    state[VOXEL_SIZE] = (volume.spacing, volume.unit)
    state[W_VOXEL_Z], state[W_VOXEL_Y], state[W_VOXEL_X] = volume.spacing
    state[W_VOXEL_UNIT] = volume.unit or ""


#: Caches of data the app can compute again from the image, strokes and model (the bulk of a
#: session's memory): emptied when the session's tab disconnects (seg/ui/lifetime.py).
RECOMPUTABLE_CACHES = (FEATURES, TILES, BACKGROUNDS, DISPLAY, OBJECTS, ACCURACY, VOLUME_CACHE)


def recomputable(state: SessionState) -> tuple:
    """The session's recomputable caches, its prediction and whole-frame labels, to release on disconnect."""
    return (*(state[key] for key in RECOMPUTABLE_CACHES), state.get(PREDICTION), state.get(WHOLE))


def forget_released(state: SessionState) -> None:
    """Drop a prediction released while the tab was away, so that it is computed again."""
    for key in (PREDICTION, WHOLE):
        value = state.get(key)
        if value is not None and value.released:
            state[key] = None


def flash(state: SessionState, kind: str, message: str) -> None:
    """Queue a one-shot message ("success" | "warning" | "error" | "info") for the next run."""
    state.setdefault(FLASH, []).append((kind, message))


def class_labels(classes: Sequence[ClassSpec]) -> dict[str, int]:
    """Stroke colour -> label (1..K) for :func:`seg.strokes.parse_canvas`."""
    return {spec.color: index for index, spec in enumerate(classes, start=1)}


def unused_color(classes: Sequence[ClassSpec], palette: Sequence[str], forbidden: str) -> str:
    """The first palette colour no class uses, else a generated distinct colour."""
    used = {c.color for c in classes} | {forbidden.lower()}
    for color in palette:
        if color.lower() not in used:
            return color.lower()
    for i in itertools.count(1):
        # Golden-angle hues: distinct enough for many classes, deterministic.
        hue = (i * 137.508) % 360
        color = _hsv_hex(hue / 360.0, 0.65, 0.9)
        if color not in used:
            return color
    raise AssertionError("unreachable")


def _hsv_hex(h: float, s: float, v: float) -> str:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
