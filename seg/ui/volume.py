"""Volumes in the app: open, set the voxel size, train on slices, look across slices, segment all.

A volume is an :class:`~seg.ui.state.ImageRecord` whose ``volume`` is set: its frames are the z
slices, so the canvas, the strokes (kept per slice) and the overlay work slice by slice as for a
time series. What differs is the model: a volume model (``dims == 3``) whose features of a slice
are the volume features of that slice (:func:`slice_features`): 2-D per slice, or 3-D from the
slice's block with its context in z (the features' margin), never the whole volume. Features are
computed on the volume normalised with whole-volume statistics (as ``Model.predict`` does), so
the overlay of a slice is exactly that slice of the whole-volume prediction.

The whole volume is segmented on demand (a button with a progress bar, block by block:
:func:`seg.volumes.model.predict_volume`); its mask (TIFF, and NIfTI with the input's affine),
probabilities and measurements in physical units are then offered for download. The
orthogonal views (XZ, YZ) show one image row or column across all slices, stretched by the
voxel size.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import streamlit as st

from seg.errors import ImageError, ImageTooLargeError, SegError, VoxelSizeError
from seg.files import safe_stem
from seg.ui import config
from seg.ui import state as keys
from seg.ui.downloads import DownloadSpec, mask_help
from seg.ui.state import ClassSpec, ImageRecord, SessionState, digest_bytes
from seg.ui.text import escape_markdown

#: Titles of the volume feature modes (:data:`seg.features.volume.VOLUME_FEATURE_MODES`).
FEATURE_MODE_TITLES = {"per_slice": "2-D per slice", "3d": "3-D"}
#: What a stack without metadata can be.
STACK_TITLES = {"volume": "volume (Z)", "time": "time series (T)"}
#: Units offered for the voxel size ("" = unknown: sizes in voxels).
UNIT_CHOICES = ("", "nm", "µm", "mm", "m")
#: Longest side of the orthogonal view's picture, after stretching by the voxel size.
ORTHO_MAX_SIDE = 1200
#: Slices whose 3-D features are computed together (they share most of their context in z).
SLAB = 8
#: Most bytes of one slab's features: large slices get thinner slabs (:func:`slab_depth`).
SLAB_BYTES = 256 * 2**20


# --------------------------------------------------------------------------- opening


def check_volume_size(name: str, shape: Sequence[int], n_channels: int) -> None:
    """Refuse a volume too large for a session (:data:`config.MAX_VOLUME_VALUES`) or whose
    slices are too large to keep one slice's features in memory."""
    depth, height, width = shape
    if depth * height * width * n_channels > config.MAX_VOLUME_VALUES:
        raise ImageError(
            f"{name!r} has {depth}x{height}x{width} voxels x {n_channels} channel(s): the app opens volumes of up "
            f"to {config.MAX_VOLUME_VALUES / 1e6:.0f} million values. Train on a crop here, then segment the "
            "whole volume with `python -m seg apply`."
        )
    if height * width > config.WHOLE_FEATURES_MAX_PIXELS:
        raise ImageError(
            f"{name!r} has slices of {height}x{width} px: the app segments volumes with slices of up to "
            f"{config.WHOLE_FEATURES_MAX_PIXELS / 1e6:.0f} megapixels. Crop or downsample it, or segment it "
            "with `python -m seg apply` using a model trained here on a crop."
        )


def read_volume_upload(name: str, data: bytes) -> ImageRecord:
    """An uploaded TIFF with a Z axis or NIfTI file as a volume record (SegError otherwise)."""
    from seg.images.volume import read_volume

    stream = io.BytesIO(data)
    stream.name = name
    try:
        volume = read_volume(stream, max_voxels=config.MAX_VOLUME_VALUES)  # refused from the header when larger
    except ImageTooLargeError as exc:
        raise ImageError(
            f"{name!r} is too large for the app: it opens volumes of up to {config.MAX_VOLUME_VALUES / 1e6:.0f} "
            "million voxels. Train on a crop here, then segment the whole volume with `python -m seg apply`."
        ) from exc
    check_volume_size(name, volume.shape, volume.n_channels)
    return ImageRecord(
        name=str(name), digest=digest_bytes(data), frames=volume.data, volume=volume, stack_kind="volume"
    )


def switch_stack_kind(state: SessionState, as_volume: bool) -> ImageRecord:
    """Read the current stack as a volume or as a time series; strokes stay, the model is retrained.

    Raises :class:`seg.errors.ImageError` (session unchanged) for a stack too large for a volume.
    """
    from seg.images.volume import as_volume as wrap

    record: ImageRecord = state[keys.IMAGE]
    if as_volume == record.is_volume:
        return record
    if as_volume:
        check_volume_size(record.name, record.shape, record.n_channels)
    record = dataclasses.replace(record, volume=wrap(record.frames) if as_volume else None)
    state[keys.IMAGE] = record
    for key in keys.RECOMPUTABLE_CACHES:
        state[key].clear()
    state[keys.PREDICTION] = None
    state[keys.WHOLE] = None
    state[keys.TRAIN_KEY] = None
    state[keys.MEASUREMENTS] = None
    state[keys.STACK_MEASUREMENTS] = None
    if state.get(keys.MODEL_SOURCE) is not None:  # a model of the other kind no longer applies
        state[keys.MODEL] = None
        state[keys.MODEL_SOURCE] = None
    follow_engine_defaults(state, record)
    if record.volume is not None:
        keys.reset_voxel_size(state, record.volume)
    return record


def follow_engine_defaults(state: SessionState, record: ImageRecord) -> None:
    """A volume starts from the engine's volume defaults for its voxel size
    (:func:`seg.volumes.model.default_volume_settings`, ``DEFAULT_VOLUME_FOREST``) and an image
    from the image defaults, unless the person changed the settings (callbacks only)."""
    from seg.features import DEFAULT_PRESET, PRESETS
    from seg.ui import settings as settings_ui
    from seg.volumes import model as volume_defaults

    forest = volume_defaults.DEFAULT_VOLUME_FOREST
    image = (PRESETS[DEFAULT_PRESET], settings_ui.default_forest())
    defaults = [image] + [(volume_defaults.default_volume_settings(None, m)[1], forest) for m in FEATURE_MODE_TITLES]
    new, mode = image, None
    if record.is_volume:
        mode, settings = volume_defaults.default_volume_settings(record.volume.known_spacing)
        new = (settings, forest)
    try:
        current = (settings_ui.feature_settings_from_widgets(state), settings_ui.forest_settings_from_widgets(state))
    except (SegError, KeyError):  # widgets not created yet, or invalid: leave them alone
        return
    if current in defaults and current != new:
        settings_ui.adopt_settings(state, *new)
        if mode is not None:
            state[keys.W_VOLUME_FEATURES] = mode


def _on_stack_kind() -> None:
    state = st.session_state
    try:
        switch_stack_kind(state, state[keys.W_STACK_KIND] == "volume")
    except ImageError as exc:
        state[keys.W_STACK_KIND] = "time"
        keys.flash(state, "error", str(exc))


# --------------------------------------------------------------------------- sidebar controls


def current_volume(state: SessionState, record: ImageRecord):
    """The record's :class:`seg.images.Volume` with the voxel size typed in (the file's by default)."""
    spacing, unit = state.get(keys.VOXEL_SIZE) or (record.volume.spacing, record.volume.unit)
    return record.volume.with_spacing(spacing, unit)


def volume_controls(record: ImageRecord) -> None:
    """Under the image: whether a stack without metadata is a volume; for a volume, its voxel
    size (editable) and the features of its models (2-D per slice or 3-D)."""
    from seg.images.volume import check_spacing
    from seg.volumes.model import default_volume_settings, volume_input

    state = st.session_state
    if record.stack_kind == "unknown":
        state[keys.W_STACK_KIND] = "volume" if record.is_volume else "time"
        st.radio(
            "This stack is a",
            list(STACK_TITLES),
            key=keys.W_STACK_KIND,
            format_func=STACK_TITLES.get,
            horizontal=True,
            on_change=_on_stack_kind,
            help="The file does not say whether its pages are z slices of one volume or time points. "
            "A volume gets volume models, a voxel size, an orthogonal view and 3-D measurements.",
        )
    if not record.is_volume:
        return
    state.setdefault(keys.W_VOLUME_FEATURES, default_volume_settings(volume_input(record.volume)[1])[0])
    st.radio(
        "Features",
        list(FEATURE_MODE_TITLES),
        key=keys.W_VOLUME_FEATURES,
        format_func=FEATURE_MODE_TITLES.get,
        horizontal=True,
        help="2-D per slice: the features of each slice on its own (the default for anisotropic voxels such "
        "as EM sections, and faster). 3-D: volumetric features with context across slices, sigmas in "
        "physical units (the default for near-isotropic voxels such as MRI).",
    )
    st.caption("Voxel size (dz × dy × dx)")
    for column, (key, axis) in zip(
        st.columns(3, gap="small"), ((keys.W_VOXEL_Z, "dz"), (keys.W_VOXEL_Y, "dy"), (keys.W_VOXEL_X, "dx"))
    ):
        column.number_input(axis, key=key, format="%.6g", step=None, min_value=None)
    st.selectbox("Unit", UNIT_CHOICES, key=keys.W_VOXEL_UNIT, format_func=lambda u: u or "voxels")
    typed = (state[keys.W_VOXEL_Z], state[keys.W_VOXEL_Y], state[keys.W_VOXEL_X])
    try:
        state[keys.VOXEL_SIZE] = (check_spacing(typed), state[keys.W_VOXEL_UNIT] or None)
    except VoxelSizeError as exc:
        st.error(escape_markdown(f"{exc} The previous voxel size stays in use."), icon=":material/error:")
    st.caption(escape_markdown(current_volume(state, record).describe()))


def with_volume(settings, record: ImageRecord):
    """``settings`` (a :class:`seg.ui.pipeline.Settings`) with the volume's voxel size and feature
    mode, so that strokes train a volume model; unchanged for images and time series."""
    from seg.features.volume import VolumeSettings

    if settings is None or not record.is_volume:
        return settings
    state = st.session_state
    volume = current_volume(state, record)
    return dataclasses.replace(
        settings, volume=VolumeSettings(spacing=volume.known_spacing, mode=state[keys.W_VOLUME_FEATURES])
    )


# --------------------------------------------------------------------------- features


def _cached(state: SessionState, name: str, key: tuple, make):
    cache: dict = state[keys.VOLUME_CACHE]
    hit = cache.get(name)
    if hit is None or hit[0] != key:
        cache.pop(name, None)  # free the old value before making the new one
        hit = cache[name] = (key, make())
    return hit[1]


def normalized_volume(state: SessionState, record: ImageRecord, normalization) -> np.ndarray:
    """(Z, Y, X, C) float32: the volume normalised with whole-volume statistics (cached)."""
    from seg.ui.pipeline import settings_token
    from seg.volumes.model import normalize_volume

    key = (record.digest, settings_token(normalization))
    return _cached(state, "normalized", key, lambda: normalize_volume(record.volume.data, normalization))


def slice_features(
    state: SessionState, record: ImageRecord, z: int, feature_settings, normalization, volume
) -> np.ndarray:
    """(Y, X, F) float32 volume features of slice ``z`` (``volume``: a VolumeSettings).

    Only a block around the slice is computed (:meth:`VolumeSettings.block`), equal to the
    whole volume's features there: per slice, the slice alone; in 3-D, the slab of
    :func:`slab_depth` slices holding ``z`` with the features' margin of context in z. The slab is
    kept, so that moving to a neighbouring slice costs no feature computation: the context
    (2 x 73 slices for the default preset) costs far more than the slab itself. A slab made
    ahead (:func:`compute_slab_ahead`) is taken over, or waited for while it is being made.
    """
    normalised = normalized_volume(state, record, normalization)
    if volume.mode == "per_slice":
        return volume.block(normalised, feature_settings, (slice(z, z + 1), slice(None), slice(None)))[0]
    depth = slab_depth(record, feature_settings, volume)
    start = (z // depth) * depth
    key = _slab_key(record, feature_settings, normalization, volume, start)
    cache: dict = state[keys.VOLUME_CACHE]
    if (cache.get("slab") or (None,))[0] != key:  # a new slab: the one made ahead, or made now
        ahead = cache.pop("slab_ahead", None)  # one made for another slab is dropped (memory)
        if ahead is not None and ahead[0] == key:
            cache.pop("slab", None)
            cache["slab"] = (key, ahead[1].result())  # waits if it is still being made
    slab = _cached(state, "slab", key, lambda: _make_slab(normalised, feature_settings, volume, start, depth, record))
    return slab[z - start].copy()  # a copy: the feature cache then holds one slice, not the slab


def compute_slab_ahead(
    state: SessionState, record: ImageRecord, z: int, feature_settings, normalization, volume
) -> None:
    """In 3-D, start computing the neighbouring slab the slider is heading to, in the background.

    Called after the page is shown (:func:`seg.ui.page.prepare_next_stroke`), once the slab of
    slice ``z`` is kept: the next slab in the direction of the last slider move (forward at
    first) is computed on one process-wide background thread and kept under the same cache
    (``"slab_ahead"``), so a session holds at most two slabs (2 x :data:`SLAB_BYTES`); :func:`slice_features` takes it
    over when the slider reaches it. Nothing is started for per-slice features (a slice costs
    less than a second), at the ends of the volume, or when that slab is already on its way.
    """
    if volume is None or volume.mode != "3d":
        return
    cache: dict = state[keys.VOLUME_CACHE]
    depth = slab_depth(record, feature_settings, volume)
    start = (z // depth) * depth
    slab = cache.get("slab")
    if slab is None or slab[0] != _slab_key(record, feature_settings, normalization, volume, start):
        return  # the slider moved on while this run was drawing: the next run decides
    if slab[1].nbytes > SLAB_BYTES:  # one slice already exceeds the budget: no second one
        return
    previous = cache.get("slab_before", z)
    cache["slab_before"] = z
    ahead_start = start - depth if z < previous else start + depth
    if not 0 <= ahead_start < record.n_frames:
        return
    key = _slab_key(record, feature_settings, normalization, volume, ahead_start)
    if (cache.get("slab_ahead") or (None,))[0] == key:
        return
    cache.pop("slab_ahead", None)
    normalised = normalized_volume(state, record, normalization)
    future = _ahead_worker().submit(_make_slab, normalised, feature_settings, volume, ahead_start, depth, record)
    cache["slab_ahead"] = (key, future)


def _slab_key(record: ImageRecord, feature_settings, normalization, volume, start: int) -> tuple:
    from seg.ui.pipeline import settings_token

    return (
        record.digest,
        settings_token(feature_settings),
        settings_token(normalization),
        settings_token(volume),
        start,
    )


def slab_depth(record: ImageRecord, feature_settings, volume) -> int:
    """Slices per 3-D slab: :data:`SLAB`, fewer when their features would pass
    :data:`SLAB_BYTES` (F float32 per voxel), at least one."""
    _, height, width = record.shape
    per_slice = height * width * volume.n_features(feature_settings, record.n_channels) * 4
    return int(np.clip(SLAB_BYTES // per_slice, 1, SLAB))


def _make_slab(
    normalised: np.ndarray, feature_settings, volume, start: int, depth: int, record: ImageRecord
) -> np.ndarray:
    """(z, Y, X, F) float32: the 3-D features of the slab of ``depth`` slices from ``start``."""
    block = (slice(start, min(start + depth, record.n_frames)), slice(None), slice(None))
    return volume.block(normalised, feature_settings, block)


@functools.cache
def _ahead_worker() -> ThreadPoolExecutor:
    # Process-wide and holding no session data: one slab computed ahead at a time on the whole
    # server, so work done ahead never takes more than one of the machine's cores.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="seg-slab-ahead")


# --------------------------------------------------------------------------- whole volume


@dataclass(frozen=True)
class WholeVolume:
    """The whole volume segmented by one model: what the downloads and the table show.

    ``labels`` (Z, Y, X) uint8/uint16; ``proba`` (Z, Y, X, K) uint8 (0..255 = 0..1), made in the
    same pass, or None when more than :data:`seg.ui.config.MAX_VOLUME_PROBABILITY_VALUES`;
    ``rows`` the per-class measurements; ``seconds`` the pass's wall time."""

    labels: np.ndarray
    proba: np.ndarray | None
    rows: list[dict]
    seconds: float


def whole_volume(state: SessionState, record: ImageRecord) -> WholeVolume | None:
    """The whole volume segmented by the current model, if segmented already."""
    hit = state[keys.VOLUME_CACHE].get("labels")
    if hit is None or hit[0] != _model_key(state, record):
        return None
    return hit[1]


def whole_labels(state: SessionState, record: ImageRecord) -> np.ndarray | None:
    """(Z, Y, X) labels of the whole volume by the current model, if segmented already."""
    whole = whole_volume(state, record)
    return None if whole is None else whole.labels


def _model_key(state: SessionState, record: ImageRecord) -> tuple:
    return (int(state[keys.MODEL_VERSION]), record.digest, state.get(keys.VOXEL_SIZE))


def segment_volume(state: SessionState, record: ImageRecord, model, progress=None) -> WholeVolume:
    """Predict the whole volume block by block (``progress(done, total)``) and measure it; cached.

    The probabilities come from the same pass, kept as uint8 when they fit
    :data:`config.MAX_VOLUME_PROBABILITY_VALUES` (their download then only encodes them)."""
    from seg.volumes.measure import measure_volume
    from seg.volumes.model import predict_volume, predict_volume_with_probabilities

    volume = current_volume(state, record)
    state[keys.VOLUME_CACHE].pop("labels", None)  # free the previous pass before making the next
    start = time.perf_counter()
    proba: np.ndarray | None = None
    if volume.data[..., 0].size * model.n_classes <= config.MAX_VOLUME_PROBABILITY_VALUES:
        labels, proba = predict_volume_with_probabilities(model, volume, progress=progress)
    else:
        labels = predict_volume(model, volume, progress=progress)
    rows = measure_volume(labels, list(model.class_names), volume.spacing, volume.unit)
    whole = WholeVolume(labels, proba, rows, time.perf_counter() - start)
    state[keys.VOLUME_CACHE]["labels"] = (_model_key(state, record), whole)
    return whole


def whole_volume_panel(
    state: SessionState, record: ImageRecord, model, classes: Sequence[ClassSpec]
) -> list[DownloadSpec]:
    """The "Segment whole volume" button, the measurements table and the volume downloads."""
    if st.button(
        "Segment whole volume",
        key=keys.W_SEGMENT_VOLUME,
        icon=":material/view_in_ar:",
        help="Segment every slice with the current model, block by block, and measure the volume.",
    ):
        bar = st.progress(0.0, text="Segmenting the volume…")
        try:
            segment_volume(
                state,
                record,
                model,
                progress=lambda done, total: bar.progress(done / total, text=f"Segmenting block {done}/{total}"),
            )
        except SegError as exc:  # e.g. an uploaded 3-D model trained on voxels of another shape
            st.error(escape_markdown(str(exc)), icon=":material/error:")
        bar.empty()
    whole = whole_volume(state, record)
    if whole is None:
        st.caption("Segments the whole volume with the current model (the strokes of all slices train it).")
        return []
    volume = current_volume(state, record)
    st.caption(
        f"{record.n_frames} slices segmented in {whole.seconds:.1f} s. Volumes in {whole.rows[0]['volume_unit']}."
    )
    st.dataframe(
        whole.rows,
        hide_index=True,
        key="volume_table",
        column_config={"fraction": st.column_config.NumberColumn("fraction", format="percent")},
    )
    return volume_downloads(record, volume, model, whole, classes)


def volume_downloads(
    record: ImageRecord, volume, model, whole: WholeVolume, classes: Sequence[ClassSpec]
) -> list[DownloadSpec]:
    """Mask (TIFF; NIfTI with the input's affine), probabilities (those of the segmenting pass:
    the click only encodes them) and measurements of the volume."""
    from seg.images.volume import volume_nifti_bytes, volume_tiff_bytes
    from seg.measure import rows_to_csv

    stem = safe_stem(record.name)
    names = list(model.class_names)
    spacing, unit = volume.spacing, volume.unit
    source = record.volume  # the input's own geometry (a NIfTI's affine)
    labels, proba, rows = whole.labels, whole.proba, whole.rows

    def objects() -> bytes:
        from seg.volumes.measure import volume_objects

        return rows_to_csv(volume_objects(labels, names, spacing, unit)).encode("utf-8")

    files = [
        DownloadSpec(
            "w_dl_volume_mask",
            "Volume mask TIFF",
            f"{stem}_mask.tif",
            "image/tiff",
            lambda: volume_tiff_bytes(labels, spacing, unit),
            mask_help(classes) + " One page per z slice, with the voxel size (ImageJ).",
        )
    ]
    if source.affine is not None:
        files.append(
            DownloadSpec(
                "w_dl_volume_nifti",
                "Volume mask NIfTI",
                f"{stem}_mask.nii.gz",
                "application/gzip",
                lambda: volume_nifti_bytes(labels, source),
                "The mask with the input's affine: it overlays the input in any NIfTI viewer.",
            )
        )
    if proba is not None:
        files.append(
            DownloadSpec(
                "w_dl_volume_proba",
                "Volume probabilities TIFF",
                f"{stem}_probabilities.tif",
                "image/tiff",
                lambda: volume_tiff_bytes(proba, spacing, unit),
                "8-bit, pages z × class (ImageJ ZCYX), 0..255 standing for 0..1.",
            )
        )
    files += [
        DownloadSpec(
            "w_dl_volume_csv",
            "Volume measurements CSV",
            f"{stem}_volume_measurements.csv",
            "text/csv",
            lambda: rows_to_csv(rows).encode("utf-8"),
            "Per class: voxels, volume in physical units, fraction, 3-D objects.",
        ),
        DownloadSpec(
            "w_dl_volume_objects",
            "Volume objects CSV",
            f"{stem}_volume_objects.csv",
            "text/csv",
            objects,
            "Every 3-D object (26-connected) of every class with its volume, centroid and bounding box.",
        ),
    ]
    return files


# --------------------------------------------------------------------------- orthogonal view


@dataclass(frozen=True)
class Cut:
    """An orthogonal plane through the volume: every slice's image row ``index`` (``axis="y"``,
    the XZ view) or image column ``index`` (``axis="x"``, the YZ view)."""

    axis: str
    index: int

    @property
    def name(self) -> str:
        return "XZ" if self.axis == "y" else "YZ"

    def of(self, array: np.ndarray) -> np.ndarray:
        """The plane of a (Z, Y, X, ...) array: (Z, X, ...) or (Z, Y, ...)."""
        return array[:, self.index] if self.axis == "y" else array[:, :, self.index]

    def block(self) -> tuple[slice, slice, slice]:
        """The (Z, Y, X) block of the plane."""
        one = slice(self.index, self.index + 1)
        return (slice(None), one, slice(None)) if self.axis == "y" else (slice(None), slice(None), one)

    def box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Where the plane cuts a slice, as a one-pixel box ``(row0, col0, row1, col1)``."""
        if self.axis == "y":
            return (self.index, 0, self.index + 1, width)
        return (0, self.index, height, self.index + 1)

    def stretch(self, spacing: Sequence[float]) -> float:
        """How much taller than wide a voxel of the plane is: dz / dx (XZ) or dz / dy (YZ)."""
        return float(spacing[0]) / float(spacing[2] if self.axis == "y" else spacing[1])


def ortho_labels(state: SessionState, record: ImageRecord, model, cut: Cut) -> np.ndarray:
    """(Z, X) or (Z, Y) labels of the plane ``cut`` across all slices.

    From the whole-volume labels when they exist; else only the plane's block is computed (3-D:
    the rows or columns within the features' margin of every slice; per slice: a band of each
    slice), equal to the whole volume's prediction there.
    """
    whole = whole_labels(state, record)
    if whole is not None:
        return cut.of(whole)
    normalised = normalized_volume(state, record, model.normalization)

    def predict_plane() -> np.ndarray:
        features = model.volume.block(normalised, model.feature_settings, cut.block())
        labels = model.predict_features(features)  # (Z, 1, X) or (Z, Y, 1)
        return labels[:, 0] if cut.axis == "y" else labels[:, :, 0]

    return _cached(state, "ortho", (*_model_key(state, record), cut), predict_plane)


def ortho_picture(
    plane: np.ndarray,
    labels: np.ndarray | None,
    colors: Sequence[str],
    opacity: float,
    stretch: float,
    z: int,
) -> np.ndarray:
    """(h, w, 3) uint8 picture of an orthogonal plane ``plane`` (Z, W[, C]) with its labels,
    stretched in z by ``stretch`` (nearest slice, so class borders stay sharp), slice ``z`` marked."""
    from seg.render import blend, to_display_rgb

    rgb = to_display_rgb(plane)
    if labels is not None:
        rgb = blend(rgb, labels, colors, opacity)
    n_slices = rgb.shape[0]
    height = int(np.clip(round(n_slices * stretch), 1, ORTHO_MAX_SIDE))
    rows = np.minimum((np.arange(height) * n_slices) // height, n_slices - 1)
    picture = rgb[rows].copy()
    marked = rows == z
    picture[marked] = (picture[marked] // 2 + np.array([128, 100, 0], np.uint8)).astype(np.uint8)
    return picture


def orthogonal_view(
    state: SessionState, record: ImageRecord, model, classes: Sequence[ClassSpec], z: int, opacity: float
) -> Cut:
    """An XZ view through a chosen row or a YZ view through a chosen column: the image and the
    segmentation across slices. Returns the plane shown."""
    _, height, width = record.shape
    axis = st.radio(
        "Plane", ["y", "x"], key=keys.W_ORTHO_PLANE, format_func={"y": "XZ", "x": "YZ"}.get, horizontal=True
    )
    key, size, title = (
        (keys.W_ORTHO_ROW, height, "Row (y)") if axis == "y" else (keys.W_ORTHO_COLUMN, width, "Column (x)")
    )
    state[key] = min(int(state.get(key, size // 2)), size - 1)
    cut = Cut(
        str(axis), int(st.slider(title, 0, size - 1, key=key, help="Where the orthogonal plane cuts the slices."))
    )
    labels = ortho_labels(state, record, model, cut) if model is not None else None
    volume = current_volume(state, record)
    picture = ortho_picture(
        cut.of(record.frames), labels, [c.color for c in classes], max(opacity, 0.3), cut.stretch(volume.spacing), z
    )
    shown = int(min(picture.shape[1] * config.MAX_UPSCALE, config.DISPLAY_MAX_SIDE))  # as the canvas shows a slice
    where = f"row {cut.index}" if cut.axis == "y" else f"column {cut.index}"
    across = "dz/dx" if cut.axis == "y" else "dz/dy"
    st.image(
        picture,
        width=shown,
        caption=f"{cut.name} at {where}: slices top to bottom, slice {z} marked; stretched by {across}.",
    )
    return cut


def volume_panels(
    state: SessionState,
    record: ImageRecord,
    model,
    classes: Sequence[ClassSpec],
    z: int,
    opacity: float,
    layers: list | None = None,
) -> list[DownloadSpec]:
    """The orthogonal view and the whole-volume panel (each computed only while open). While the
    orthogonal view is open, the line where its plane cuts slice ``z`` is added to ``layers``
    (:mod:`seg.ui.marks`: drawn on the canvas)."""
    from seg.ui.marks import BoxLayer

    files: list[DownloadSpec] = []
    ortho = st.expander(
        "Orthogonal view (XZ / YZ)", key="ortho_panel", on_change="rerun", icon=":material/view_column:"
    )
    with ortho:
        if ortho.open:
            cut = orthogonal_view(state, record, model, classes, z, opacity)
            if layers is not None:
                layers.append(BoxLayer(z, (cut.box(*record.shape[1:]),)))
    if model is None:
        return files
    whole = st.expander("Whole volume", key="volume_panel", on_change="rerun", icon=":material/view_in_ar:")
    with whole:
        if whole.open:
            files += whole_volume_panel(state, record, model, classes)
    return files
