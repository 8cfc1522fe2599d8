"""Uploads: an image, an annotations file to resume, a model bundle to continue with.

Each uploader's ``on_change`` callback reads the file once and either switches the session to
it or records the refusal (a :class:`seg.errors.SegError` message) to show under the uploader.
Nothing is lost on a refused file: the previous image, strokes and model stay.

The work is done by plain functions (:func:`open_image`, :func:`resume_annotations`,
:func:`use_model`) taking the session-state mapping, so tests can call them directly.
"""

from __future__ import annotations

import io

import streamlit as st

from seg.errors import ImageError, ImageTooLargeError, ModelFileError, ModelMismatchError, SegError
from seg.images import IMAGE_SUFFIXES
from seg.ui import canvas as C
from seg.ui import config
from seg.ui import settings as settings_ui
from seg.ui import state as keys
from seg.ui.pipeline import KEEP_UPLOADED_MODEL
from seg.ui.state import ImageRecord, SessionState, digest_bytes
from seg.ui.text import escape_markdown
from seg.ui.volume import follow_engine_defaults

IMAGE_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES] + ["nii", "nii.gz"]
ANNOTATION_TYPES = ["json"]
MODEL_TYPES = ["segmodel", "zip"]


def read_upload(name: str, data: bytes) -> ImageRecord:
    """Decode an uploaded image, enforcing the app's pixel limits (ImageError otherwise).

    A TIFF whose metadata has a Z axis, or a NIfTI file, opens as a volume
    (:func:`seg.ui.volume.read_volume_upload`); a stack without metadata opens as a time series
    and the page asks whether it is a volume.
    """
    from seg.images import read_image
    from seg.images.volume import stack_kind

    stream = io.BytesIO(data)
    stream.name = name  # the engine's refusals then name the file ("Cannot read 'notes.png': ...")
    kind = stack_kind(stream)
    stream.seek(0)
    try:
        if kind == "volume":
            from seg.ui.volume import read_volume_upload

            return read_volume_upload(name, data)
        frames = read_image(stream, max_pixels=config.MAX_TOTAL_PIXELS, max_frame_pixels=config.MAX_FRAME_PIXELS)
    except ImageTooLargeError as exc:
        if exc.limit == "max_frame_pixels":
            raise  # its message already points to the command line
        # The engine's advice (raise max_pixels=...) is for Python callers; a visitor cannot.
        advice = (
            "Open a crop or fewer frames, or segment it with `python -m seg apply` using a model "
            "trained here on a part of it."
        )
        if exc.limit == "max_frames":
            raise ImageError(f"{name!r} has too many frames ({exc.size}) for this app. {advice}") from exc
        raise ImageError(
            f"{name!r} is {exc.size}: more than this app opens ({config.MAX_TOTAL_PIXELS / 1e6:.0f} "
            f"megapixels per image, frames × height × width). {advice}"
        ) from exc
    t, h, w = frames.shape[:3]
    if h * w > config.MAX_FRAME_PIXELS:
        raise ImageError(
            f"{name!r} has {h}x{w} = {h * w / 1e6:.1f} megapixels per frame; the app accepts up to "
            f"{config.MAX_FRAME_PIXELS / 1e6:.0f} MP per frame. Crop or downsample it, or segment it "
            "with `python -m seg apply` using a model trained here on a smaller crop."
        )
    return ImageRecord(name=str(name), digest=digest_bytes(data), frames=frames, stack_kind=kind)


def open_image(state: SessionState, name: str, data: bytes) -> None:
    """Switch the session to the uploaded image (raises SegError, leaving the session unchanged)."""
    record = read_upload(name, data)
    keys.set_image(state, record)
    follow_engine_defaults(state, record)
    state[keys.W_SAMPLE] = None  # so that picking any sample again switches back to it


def resume_annotations(state: SessionState, data: bytes) -> int:
    """Restore classes, strokes and imported labels from an annotations file; returns the number
    of strokes.

    The file must have been drawn on an image of the same (frames, height, width) as the current
    one (AnnotationError otherwise).
    """
    from seg.errors import AnnotationError
    from seg.strokes import Annotations

    annotations = Annotations.from_json(data)
    record: ImageRecord = state[keys.IMAGE]
    if tuple(annotations.image_shape) != record.shape:
        raise AnnotationError(
            f"these annotations were drawn on an image of shape (frames, height, width) = "
            f"{tuple(annotations.image_shape)}, but the current image {record.name!r} is {record.shape}; "
            "open the image they belong to first, then upload them again"
        )
    from seg.ui.pipeline import image_fit

    fit = image_fit(record)  # strokes are stored in image pixels
    frames = sorted({s.frame for s in annotations.strokes})
    keys.replace_classes(state, annotations.class_names, annotations.class_colors)
    state[keys.DRAWINGS] = {f: annotations.to_canvas_json(f, fit) for f in frames}
    state[keys.IMPORTED_LABELS] = dict(annotations.label_images)
    state[keys.IMPORTED_VERSION] = int(state.get(keys.IMPORTED_VERSION, 0)) + 1
    C.remount(state)
    state[keys.TRAIN_KEY] = None
    if state.get(keys.MODEL_SOURCE) == "uploaded":
        state[keys.MODEL] = None
        state[keys.MODEL_SOURCE] = None
    state[keys.W_ACTIVE] = state[keys.CLASSES][0].id
    return len(annotations.strokes)


def use_model(state: SessionState, data: bytes):
    """Make an uploaded model bundle the session's model; returns it.

    Its classes become the classes (strokes of other colours are dropped), its feature, forest
    and normalisation settings become the settings, and it segments the current image until new
    strokes retrain it. Raises ModelFileError / ModelMismatchError.
    """
    from seg.persist import load_model

    model = load_model(data)
    record: ImageRecord = state[keys.IMAGE]
    if model.dims == 3 and not record.is_volume:
        raise ModelMismatchError(
            f"this is a volume (3-D) model, but the current image {record.name!r} is not a volume; "
            "open a volume (multi-page TIFF with z slices or NIfTI) first"
        )
    if model.dims == 2 and record.is_volume:
        raise ModelMismatchError(
            f"this is a 2-D (image) model, but the current image {record.name!r} is a volume; "
            "train a model on the volume here, or open it as a time series"
        )
    if model.n_channels != record.n_channels:
        raise ModelMismatchError(
            f"this model was trained on images with {model.n_channels} channel(s), but the current image "
            f"{record.name!r} has {record.n_channels}; open a {model.n_channels}-channel image first"
        )
    C.sync_canvas(state, record.digest)
    colors = {c.lower() for c in model.class_colors}
    state[keys.DRAWINGS] = {f: C.keep_colors(d, colors) for f, d in state[keys.DRAWINGS].items()}
    C.remount(state)
    keys.replace_classes(state, model.class_names, model.class_colors)
    state[keys.W_ACTIVE] = state[keys.CLASSES][0].id
    settings_ui.adopt_model_settings(state, model)
    if model.volume is not None:
        state[keys.W_VOLUME_FEATURES] = model.volume.mode
    state[keys.MODEL] = model
    state[keys.MODEL_SOURCE] = "uploaded"
    state[keys.MODEL_VERSION] = int(state[keys.MODEL_VERSION]) + 1
    state[keys.TRAIN_KEY] = KEEP_UPLOADED_MODEL
    state[keys.NOTICE] = None
    return model


# --------------------------------------------------------------------------- callbacks


def _uploaded(key: str):
    return st.session_state.get(key)


def _record_error(key: str, uploaded, exc: SegError) -> None:
    st.session_state[keys.UPLOAD_ERRORS][key] = (uploaded.file_id, str(exc))


def _clear_error(key: str) -> None:
    st.session_state[keys.UPLOAD_ERRORS].pop(key, None)


def on_image_upload() -> None:
    uploaded = _uploaded(keys.W_IMAGE_UPLOAD)
    _clear_error(keys.W_IMAGE_UPLOAD)
    if uploaded is None:
        return
    try:
        open_image(st.session_state, uploaded.name, uploaded.getvalue())
    except SegError as exc:
        _record_error(keys.W_IMAGE_UPLOAD, uploaded, exc)


def on_annotations_upload() -> None:
    uploaded = _uploaded(keys.W_ANNOTATIONS_UPLOAD)
    _clear_error(keys.W_ANNOTATIONS_UPLOAD)
    if uploaded is None:
        return
    try:
        count = resume_annotations(st.session_state, uploaded.getvalue())
    except SegError as exc:
        _record_error(keys.W_ANNOTATIONS_UPLOAD, uploaded, exc)
    else:
        keys.flash(st.session_state, "success", f"Resumed {count} strokes from {uploaded.name}.")


def on_model_upload() -> None:
    uploaded = _uploaded(keys.W_MODEL_UPLOAD)
    _clear_error(keys.W_MODEL_UPLOAD)
    if uploaded is None:
        return
    try:
        use_model(st.session_state, uploaded.getvalue())
    except (ModelFileError, ModelMismatchError, SegError) as exc:
        _record_error(keys.W_MODEL_UPLOAD, uploaded, exc)
    else:
        keys.flash(st.session_state, "success", f"Using the model from {uploaded.name}.")


def show_upload_error(key: str, uploaded) -> None:
    """Show the refusal of the file currently in uploader ``key`` (if it was refused)."""
    error = st.session_state[keys.UPLOAD_ERRORS].get(key)
    if error is not None and uploaded is not None and error[0] == uploaded.file_id:
        st.error(escape_markdown(error[1]), icon=":material/error:")  # quotes the file name
