"""Trainable segmentation: scribble on an image, see the image segmented after every stroke.

Run with ``streamlit run streamlit_app.py``. The page reads top to bottom as the UI does; every
computation lives in ``seg`` (the engine) and every Streamlit detail in ``seg.ui``.

The workspace (view bar, zoom and pan, canvas, results, downloads) is a fragment: a stroke or a
pan reruns only it, so the browser does not redraw the sidebar on every mouse-up. Widgets in the
sidebar rerun the whole page as usual.
"""

from __future__ import annotations

import streamlit as st

from seg.ui import accuracy, config, downloads, label_import, measurements, objects, page, volume
from seg.ui import state as keys
from seg.ui.classes import class_editor
from seg.ui.navigation import navigation_bar
from seg.ui.pipeline import Scene, Settings, Strokes
from seg.ui.settings import settings_panel
from seg.ui.state import ImageRecord

st.set_page_config(page_title="seg · trainable segmentation", page_icon=":material/brush:", layout="wide")


def segment() -> None:
    """The main page: image and classes in the sidebar, the workspace beside it."""
    page.begin_run()
    with st.sidebar:
        st.subheader("Image")
        record = page.image_source()
        volume.volume_controls(record)
        st.subheader("Classes")
        class_editor()
        with st.container(key="toolbar"):
            pen = page.drawing_controls()
        settings = volume.with_volume(page.guarded(settings_panel, record.n_channels), record)
        page.resume_panel()
        label_import.import_panel(
            st.session_state, record, st.session_state.get(keys.W_FRAME, 0), st.session_state[keys.CLASSES]
        )
    st.title("Trainable segmentation")
    st.caption(config.HINT)
    page.show_flash()
    workspace(record, pen, settings)


@st.fragment
def workspace(record: ImageRecord, pen: page.Pen, settings: Settings | None) -> None:
    """Everything a stroke changes: canvas, overlay, results, downloads and the status line."""
    run = page.begin_fragment()
    state = st.session_state

    # ----------------------------------------------------------------------- view and canvas
    frame = page.frame_picker(record)
    look, live = page.view_bar(state[keys.CLASSES])
    scene = Scene(record, frame, navigation_bar(record, frame))
    strokes_and_labels = page.guarded(page.read_strokes, record)
    if strokes_and_labels is None:  # unreadable strokes: show the image, keep everything else working
        strokes_and_labels = (Strokes({}), {})
    strokes, labels = strokes_and_labels
    labels = label_import.with_imported(state, record, labels)
    if settings is not None:
        page.guarded(page.segment, run, scene, strokes, labels, settings, live)
    canvas_slot = st.container()  # filled last: the panels below mark the canvas (boxes, outlines)
    refresh_estimate = None
    layers: list = label_import.canvas_layer(state, record, state[keys.CLASSES])
    prediction = page.current_prediction(record)
    page.whole_image_panel(scene, prediction)

    # ----------------------------------------------------------------------- results
    if state[keys.NOTICE] and prediction is None:
        st.info(page.escape_markdown(state[keys.NOTICE]), icon=":material/draw:")
    page.model_summary()
    classes = state[keys.CLASSES]
    files = [downloads.annotations_download(record, classes, strokes.all, state[keys.IMPORTED_LABELS])]
    labelled = prediction is not None and prediction.has_labels
    if labelled:
        files = downloads.prediction_downloads(record, prediction, classes, look.opacity) + files
    if state[keys.MODEL] is not None:
        files.append(downloads.model_download(record, state[keys.MODEL]))
    if labelled:
        measure_panel = st.expander("Measurements", key="measure_panel", on_change="rerun", icon=":material/analytics:")
        with measure_panel:
            if measure_panel.open:
                measurements.frame_panel(state, record, prediction, classes)
    if prediction is not None and not record.is_volume:  # the volume panels measure volumes
        objects_panel = st.expander("Objects", key="objects_panel", on_change="rerun", icon=":material/bubble_chart:")
        with objects_panel:
            if objects_panel.open:
                files += page.guarded(objects.objects_panel, state, record, prediction, classes, layers) or []
        accuracy_panel = st.expander(
            "How good is it?", key="accuracy_panel", on_change="rerun", icon=":material/fact_check:"
        )
        with accuracy_panel:
            if accuracy_panel.open:
                refresh_estimate = page.guarded(
                    accuracy.accuracy_panel, state, record, prediction, labels, classes, scene.viewport, layers
                )
    if record.is_volume:
        files += volume.volume_panels(state, record, state[keys.MODEL], classes, frame, look.opacity, layers)
    elif record.n_frames > 1 and state[keys.MODEL] is not None:
        stack_panel = st.expander(
            "Measure all frames", key="stack_panel", on_change="rerun", icon=":material/timeline:"
        )
        with stack_panel:
            if stack_panel.open:
                files += measurements.stack_panel(state, record, state[keys.MODEL], classes)
    st.subheader("Downloads")
    downloads.download_row(files)
    with canvas_slot:
        background_key = page.show_canvas(run, scene, pen, look, layers)
    if refresh_estimate is not None:  # after the new overlay is on its way
        page.guarded(refresh_estimate)

    # ----------------------------------------------------------------------- status (must stay last)
    status = page.status_placeholder()
    update = page.count_update(run, strokes, background_key)
    page.guarded(page.prepare_next_stroke, run, scene, labels, settings, live)
    page.status_line(status, run, update)


st.navigation(
    [
        st.Page(segment, title="Segment", icon=":material/brush:", default=True),
        st.Page("pages/1_Batch_apply.py", title="Batch apply", icon=":material/photo_library:"),
    ]
).run()
