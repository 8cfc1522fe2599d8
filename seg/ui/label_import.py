"""Import labels you already have: a label or mask image becomes scribbles of one frame.

The sidebar panel reads a PNG/TIFF mask (:func:`seg.strokes.read_mask`), offers one class choice
per mask value (grey level or colour), previews the result over the image, and on "Use as
scribbles" keeps the labels in ``state[keys.IMPORTED_LABELS]`` = {frame: (H, W) labels}. They train
the model together with the drawn strokes (a drawn stroke wins where both label a pixel), are
drawn on the canvas as a layer of their own (:func:`canvas_layer`, tinted and outlined in the
class colours; a toggle hides them), and are saved in the annotations download
(:attr:`seg.strokes.Annotations.label_images`), which restores them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import streamlit as st

from seg.ui import state as keys
from seg.ui.state import ClassSpec, ImageRecord, SessionState
from seg.ui.text import escape_markdown
from seg.ui.views import display_rgb

W_MASK_UPLOAD = "w_mask_upload"
W_SHOW_IMPORTED = "w_show_imported"
MAX_VALUE_WIDGETS = 16
PREVIEW_SIDE = 320
UNLABELLED = 0


def with_imported(state: SessionState, record: ImageRecord, labels: Mapping[int, np.ndarray]) -> dict:
    """The scribble label images with the imported labels added (drawn strokes win)."""
    from seg.strokes import under_strokes

    imported = state.get(keys.IMPORTED_LABELS) or {}
    if not imported:
        return dict(labels)
    merged = dict(labels)
    for frame, extra in imported.items():
        if extra.shape != tuple(record.shape[1:]):
            continue
        merged[frame] = under_strokes(merged.get(frame), extra, np.uint16)
    return merged


def default_mapping(values, classes: Sequence[ClassSpec]) -> dict:
    """Grey value k -> class k (1..K); a colour -> the class of that colour; else unlabelled."""
    from seg.render import parse_rgba

    by_colour = {tuple(parse_rgba(c.color)[:3]): i + 1 for i, c in enumerate(classes)}
    mapping = {}
    for v in values:
        if isinstance(v.value, tuple):
            mapping[v.value] = by_colour.get(v.value, UNLABELLED)
        else:
            mapping[v.value] = v.value if 1 <= v.value <= len(classes) else UNLABELLED
    return mapping


def _changed(state: SessionState, imported: dict) -> None:
    state[keys.IMPORTED_LABELS] = imported
    state[keys.IMPORTED_VERSION] = int(state.get(keys.IMPORTED_VERSION, 0)) + 1
    state[keys.TRAIN_KEY] = None  # retrain: the strokes did not change, the labels did


def _use(frame: int, labels: np.ndarray) -> None:
    from seg.errors import SegError
    from seg.strokes import check_label_images

    state = st.session_state
    imported = {**(state.get(keys.IMPORTED_LABELS) or {}), frame: labels}
    try:
        check_label_images(imported)  # the annotations download must hold them
    except SegError as error:
        keys.flash(state, "error", f"Labels not imported: {error}")
        return
    _changed(state, imported)


def _remove() -> None:
    _changed(st.session_state, {})


def canvas_layer(state: SessionState, record: ImageRecord, classes: Sequence[ClassSpec]) -> list:
    """The imported labels as canvas layers (:class:`seg.ui.marks.LabelLayer`, one per frame),
    unless hidden with the panel's toggle."""
    from seg.ui.marks import LabelLayer

    imported = state.get(keys.IMPORTED_LABELS) or {}
    if not imported or not state.get(W_SHOW_IMPORTED, True):
        return []
    colors = tuple(c.color for c in classes)
    version = int(state.get(keys.IMPORTED_VERSION, 0))
    return [
        LabelLayer(frame, labels, colors, (record.digest, version))
        for frame, labels in imported.items()
        if labels.shape == tuple(record.shape[1:])
    ]


def import_panel(state: SessionState, record: ImageRecord, frame: int, classes: Sequence[ClassSpec]) -> None:
    """Sidebar expander: upload a mask, map its values to classes, preview, use."""
    from seg.errors import SegError
    from seg.strokes import mask_to_labels, mask_values, read_mask

    imported = state.get(keys.IMPORTED_LABELS) or {}
    with st.expander("Import labels", icon=":material/upload_file:", key="import_panel"):
        if imported:
            frames = ", ".join(str(f) for f in sorted(imported))
            st.caption(f"Imported labels train the model (frame {frames}).")
            st.toggle(
                "Show on the canvas",
                value=True,
                key=W_SHOW_IMPORTED,
                help="Tinted and outlined in the class colours; drawn strokes win where both label a pixel.",
            )
            st.button("Remove imported labels", key="w_remove_imported", on_click=_remove)
        upload = st.file_uploader(
            "Label or mask image (PNG, TIFF)",
            type=["png", "tif", "tiff"],
            key=W_MASK_UPLOAD,
            help="Each grey level or colour becomes a class of your choice.",
        )
        if upload is None:
            return
        try:
            mask = read_mask(upload.getvalue(), record.shape[1:])
            values = mask_values(mask)
        except SegError as error:
            st.error(escape_markdown(f"{upload.name}: {error}"), icon=":material/error:")
            return
        mapping = default_mapping(values, classes)
        names = ["unlabelled", *(c.name for c in classes)]
        if len(values) > MAX_VALUE_WIDGETS:
            st.caption(f"{len(values)} values: value k becomes class k (1..{len(classes)}), others stay unlabelled.")
        else:
            for v in values:
                choice = st.selectbox(
                    f"Value {v.text} ({v.pixels:,} px)",
                    range(len(names)),
                    index=mapping[v.value],
                    format_func=lambda i: names[i],
                    key=f"w_mask_value_{v.text}",
                )
                mapping[v.value] = int(choice)
        labels = mask_to_labels(mask, mapping, len(classes))
        st.image(preview(state, record, frame, labels, classes), caption="Preview", width="stretch")
        st.button(
            f"Use as scribbles (frame {frame})",
            key="w_use_mask",
            type="primary",
            on_click=_use,
            args=(frame, labels),
            disabled=not labels.any(),
        )


def preview(state, record: ImageRecord, frame: int, labels: np.ndarray, classes: Sequence[ClassSpec]) -> np.ndarray:
    """The frame with the mapped classes tinted over it, at most PREVIEW_SIDE pixels a side."""
    from seg.render import blend, resize_labels

    _, height, width = record.shape
    scale = min(1.0, PREVIEW_SIDE / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return blend(display_rgb(state, record, frame, size), resize_labels(labels, size), [c.color for c in classes], 0.6)
