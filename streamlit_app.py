"""Trainable segmentation: scribble on an image, see the whole image segmented after every stroke.

Run with ``streamlit run streamlit_app.py``. The page reads top to bottom as the UI does; every
computation lives in ``seg`` (the engine) and every Streamlit detail in ``seg.ui``.
"""

from __future__ import annotations

import streamlit as st

from seg.ui import accuracy as A
from seg.ui import config, page
from seg.ui import downloads as D
from seg.ui import measurements as M
from seg.ui import objects as O
from seg.ui import state as S
from seg.ui.canvas import geometry as canvas_geometry
from seg.ui.classes import class_editor
from seg.ui.settings import settings_panel

st.set_page_config(page_title="seg · trainable segmentation", page_icon=":material/brush:", layout="wide")


def segment() -> None:
    """The main page: image and classes in the sidebar, the canvas, results and downloads."""
    run = page.begin_run()

    # ----------------------------------------------------------------------- sidebar: settings
    with st.sidebar:
        st.subheader("Image")
        record = page.image_source()
        st.subheader("Classes")
        class_editor()
        with st.container(key="toolbar"):
            active, tool, width = page.drawing_controls()
        settings = page.guarded(settings_panel, record.n_channels)
        page.resume_panel()

    # ----------------------------------------------------------------------- image and canvas
    st.title("Trainable segmentation")
    st.caption(config.HINT)
    page.show_flash()
    frame = page.frame_picker(record)
    view, opacity, live, update_clicked = page.view_bar(st.session_state[S.CLASSES])
    geometry = canvas_geometry(*record.shape[1:])
    strokes_and_labels = page.guarded(page.read_strokes, record, frame, geometry)
    if strokes_and_labels is None:  # unreadable strokes: show the image, keep everything else working
        strokes_and_labels = (page.P.Strokes({}), {})
    strokes, labels = strokes_and_labels
    if settings is not None:
        page.guarded(page.segment, run, record, frame, strokes, labels, settings, live, update_clicked, geometry)
    background_key = page.show_canvas(run, record, frame, geometry, active, tool, width, view, opacity)

    # ----------------------------------------------------------------------- results
    notice = st.session_state[S.NOTICE]
    prediction = st.session_state[S.PREDICTION]
    if notice and prediction is None:
        st.info(page.escape_markdown(notice), icon=":material/draw:")
    page.model_summary()

    # ----------------------------------------------------------------------- downloads
    files = [D.annotations_download(record, st.session_state[S.CLASSES], strokes.all)]
    if prediction is not None and prediction.key[1] == record.digest:
        classes = st.session_state[S.CLASSES]
        files = D.prediction_downloads(record, prediction.frame, prediction, classes, opacity) + files
    if st.session_state[S.MODEL] is not None:
        files.append(D.model_download(record, st.session_state[S.MODEL]))

    # ----------------------------------------------------------------------- measurements
    if prediction is not None and prediction.key[1] == record.digest:
        measure_panel = st.expander("Measurements", key="measure_panel", on_change="rerun",
                                    icon=":material/analytics:")
        with measure_panel:
            if measure_panel.open:
                M.frame_panel(st.session_state, record, prediction, st.session_state[S.CLASSES])
        objects_panel = st.expander("Objects", key="objects_panel", on_change="rerun", icon=":material/bubble_chart:")
        with objects_panel:
            if objects_panel.open:
                classes = st.session_state[S.CLASSES]
                files += page.guarded(O.objects_panel, st.session_state, record, prediction, classes) or []
        accuracy_panel = st.expander("How good is it?", key="accuracy_panel", on_change="rerun",
                                     icon=":material/fact_check:")
        with accuracy_panel:
            if accuracy_panel.open:
                classes = st.session_state[S.CLASSES]
                page.guarded(A.accuracy_panel, st.session_state, record, prediction, labels, classes)
    if record.n_frames > 1 and st.session_state[S.MODEL] is not None:
        stack_panel = st.expander("Measure all frames", key="stack_panel", on_change="rerun",
                                  icon=":material/timeline:")
        with stack_panel:
            if stack_panel.open:
                files += M.stack_panel(st.session_state, record, st.session_state[S.MODEL], st.session_state[S.CLASSES])

    st.subheader("Downloads")
    D.download_row(files)

    # ----------------------------------------------------------------------- status (must stay last)
    status = page.status_placeholder()
    update = page.count_update(run, strokes, background_key)
    page.guarded(page.prepare_next_stroke, run, record, frame, labels, settings, live)
    page.status_line(status, run, update)


st.navigation([
    st.Page(segment, title="Segment", icon=":material/brush:", default=True),
    st.Page("pages/1_Batch_apply.py", title="Batch apply", icon=":material/photo_library:"),
]).run()
