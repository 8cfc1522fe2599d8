"""Download buttons whose files are made only when clicked.

Each file is a :class:`DownloadSpec` whose ``make`` closes over the arrays it needs (no session
state access: Streamlit runs deferred download callables on another thread). Building the specs
costs nothing per stroke; the encoding happens on click. The specs of the last run are kept in
``st.session_state["seg.downloads"]`` so tests can check names and contents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from seg.files import safe_stem
from seg.ui import state as keys
from seg.ui.state import ClassSpec, ImageRecord
from seg.ui.text import escape_markdown


@dataclass(frozen=True)
class DownloadSpec:
    """One downloadable file: button label, file name, MIME type and a bytes factory."""

    key: str
    label: str
    file_name: str
    mime: str
    make: Callable[[], bytes]
    help: str = ""


def file_stem(record: ImageRecord, frame: int | None) -> str:
    """The start of the name of a file about ``frame`` of ``record``: ``balls_z032`` for a
    volume's slice, ``cells_frame004`` for a time series' frame, ``coins`` for one image."""
    stem = safe_stem(record.name)
    if frame is not None and record.n_frames > 1:
        stem = f"{stem}_{'z' if record.is_volume else 'frame'}{frame:03d}"  # a volume's slice: balls_z032
    return stem


def mask_help(classes: Sequence[ClassSpec]) -> str:
    """Help text documenting the pixel values of the mask file."""
    values = ", ".join(f"{i} = {escape_markdown(c.name)}" for i, c in enumerate(classes, start=1))
    return (
        f"Pixel values are the class numbers: 0 = unlabelled, {values}. "
        "8-bit PNG (16-bit TIFF above 255 classes); open it in Fiji, QuPath or Python."
    )


def prediction_downloads(
    record: ImageRecord, prediction, classes: Sequence[ClassSpec], opacity: float
) -> list[DownloadSpec]:
    """Mask, overlay and probabilities of the predicted frame (full resolution, made on click).

    A large (tiled) frame's probabilities are those its whole-frame pass kept, as uint8
    (0..255 = 0..1, see :meth:`seg.ui.pipeline.Prediction.compute_whole`); when they were too
    many to keep (:data:`seg.ui.config.MAX_WHOLE_PROBA_BYTES`) they are not offered and
    ``python -m seg apply --proba`` writes them.
    """
    frame = prediction.frame
    colors = [c.color for c in classes]
    names = [c.name for c in classes][: prediction.n_classes]
    image = record.frames[frame]
    stem = file_stem(record, frame)
    extension = ".png" if len(classes) <= 255 else ".tif"

    def mask() -> bytes:
        from seg.render import mask_file

        return mask_file(prediction.labels)[0]

    def overlay() -> bytes:
        from seg.render import blend, encode_png, to_display_rgb

        return encode_png(blend(to_display_rgb(image), prediction.labels, colors, max(opacity, 0.3)), compress_level=6)

    whole_proba = prediction.whole_probabilities() if prediction.tiled else None

    def probabilities() -> bytes:
        from seg.render import probabilities_tiff

        proba = whole_proba if prediction.tiled else prediction.probabilities()
        assert proba is not None  # offered only when kept (see the end of this function)
        return probabilities_tiff(proba, class_names=names)

    files = [
        DownloadSpec(
            "w_dl_mask",
            "Label mask",
            f"{stem}_mask{extension}",
            "image/png" if extension == ".png" else "image/tiff",
            mask,
            mask_help(classes),
        ),
        DownloadSpec(
            "w_dl_overlay",
            "Overlay PNG",
            f"{stem}_overlay.png",
            "image/png",
            overlay,
            "The image with the segmentation colours, at full resolution.",
        ),
        DownloadSpec(
            "w_dl_proba",
            "Probabilities TIFF",
            f"{stem}_probabilities.tif",
            "image/tiff",
            probabilities,
            "8-bit, one page per class (class axis first), 0..255 standing for 0..1."
            if prediction.tiled
            else "float32, one page per class (class axis first), values 0..1.",
        ),
    ]
    return files[:2] if prediction.tiled and whole_proba is None else files


def annotations_download(
    record: ImageRecord, classes: Sequence[ClassSpec], strokes: tuple, imported: Mapping[int, np.ndarray] | None = None
) -> DownloadSpec:
    """The strokes, imported label images ({frame: (H, W) labels}) and classes as an annotations
    JSON file (upload it again to resume)."""
    label_images = dict(imported or {})
    names = [c.name for c in classes]
    colors = [c.color for c in classes]
    shape = record.shape
    image_name = record.name

    def make() -> bytes:
        from seg.strokes import Annotations

        annotations = Annotations(
            class_names=names,
            class_colors=colors,
            image_shape=shape,
            strokes=list(strokes),
            image_name=image_name,
            label_images=label_images,
        )
        return annotations.to_json().encode("utf-8")

    return DownloadSpec(
        "w_dl_annotations",
        "Annotations JSON",
        f"{safe_stem(record.name)}_annotations.json",
        "application/json",
        make,
        "Your strokes, imported labels and classes. Upload this file later (Resume) to continue where you left off.",
    )


def model_download(record: ImageRecord, model) -> DownloadSpec:
    """The model bundle (no pickle: a zip of JSON and arrays, see seg.persist)."""

    def make() -> bytes:
        from seg.persist import model_to_bytes

        return model_to_bytes(model)

    return DownloadSpec(
        "w_dl_model",
        "Model (.segmodel)",
        f"{safe_stem(record.name)}.segmodel",
        "application/zip",
        make,
        "Apply it to other images here (Resume), on the batch page or with `python -m seg apply`.",
    )


def stack_mask_download(record: ImageRecord, labels: np.ndarray, classes: Sequence[ClassSpec]) -> DownloadSpec:
    """The masks of every frame of a stack as one multi-page TIFF."""

    def make() -> bytes:
        from seg.render import mask_file

        return mask_file(labels)[0]

    return DownloadSpec(
        "w_dl_stack_mask",
        "Label masks, all frames (TIFF)",
        f"{safe_stem(record.name)}_masks.tif",
        "image/tiff",
        make,
        mask_help(classes),
    )


def download_row(specs: Sequence[DownloadSpec]) -> None:
    """A row of download buttons; each file is generated when its button is clicked."""
    st.session_state[keys.DOWNLOADS] = list(specs)
    with st.container(horizontal=True, key="downloads"):
        for spec in specs:
            st.download_button(
                spec.label,
                data=spec.make,
                file_name=spec.file_name,
                mime=spec.mime,
                key=spec.key,
                help=spec.help,
                on_click="ignore",
                icon=":material/download:",
            )
