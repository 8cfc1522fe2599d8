"""Quantification panels: per-class areas and objects of the current frame, and over a stack.

Measurements are computed only while their panel is open and cached per prediction, so they never
slow down the per-stroke rerun of a user who does not look at them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import streamlit as st

from seg.files import safe_stem
from seg.ui import state as keys
from seg.ui.downloads import DownloadSpec, file_stem, stack_mask_download
from seg.ui.state import ClassSpec, ImageRecord, SessionState
from seg.ui.text import escape_markdown


def frame_rows(state: SessionState, prediction, classes: Sequence[ClassSpec], n_frames: int = 1) -> list[dict]:
    """Rows of :func:`seg.measure.measure` for the predicted frame, cached per prediction
    (with a leading "frame" column for stacks)."""
    from seg.measure import measure

    names = [c.name for c in classes][: prediction.n_classes]
    key = (prediction.key.labels_id(), tuple(names))
    cached = state.get(keys.MEASUREMENTS)
    if cached is None or cached[0] != key:
        cached = (key, measure(prediction.labels, names, frame=prediction.frame if n_frames > 1 else None))
        state[keys.MEASUREMENTS] = cached
    return cached[1]


def size_histogram(labels: np.ndarray, label: int) -> dict[str, list]:
    """Objects of class ``label`` per size bin (each bin at least twice as wide as the previous)."""
    from seg.measure import object_sizes
    from seg.measure import size_histogram as histogram

    sizes = object_sizes(labels, label)
    if sizes.size == 0:
        return {"size (pixels)": [], "objects": []}
    bins = int(min(12, np.ceil(np.log2(sizes.max() / sizes.min() + 1)) + 1))
    edges, counts = histogram(sizes, bins=bins)
    names = [f"{lo:,.0f} – {hi:,.0f}" for lo, hi in zip(edges[:-1], edges[1:])]
    return {"size (pixels)": names, "objects": counts.tolist()}


def frame_panel(state, record: ImageRecord, prediction, classes: Sequence[ClassSpec]) -> None:
    """Table, area chart, object-size chart and CSV of the current frame."""
    from seg.measure import COLUMNS, rows_to_csv

    rows = frame_rows(state, prediction, classes, record.n_frames)
    if record.is_volume:
        st.caption(escape_markdown(slice_caption(state, record, prediction.frame)))
    st.dataframe(
        rows,
        hide_index=True,
        key="measure_table",
        column_config={
            "area_fraction": st.column_config.NumberColumn("area fraction", format="percent"),
            "mean_object_size": st.column_config.NumberColumn("mean object size", format="%.1f"),
            "median_object_size": st.column_config.NumberColumn("median object size", format="%.1f"),
            "max_object_size": st.column_config.NumberColumn("max object size"),
        },
    )
    names = [r["class"] for r in rows]
    chart, sizes = st.columns(2)
    with chart:
        st.caption("Area fraction per class")
        st.bar_chart(
            {"class": names, "area fraction": [r["area_fraction"] for r in rows]},
            x="class",
            y="area fraction",
            horizontal=True,
            sort=False,
            height=60 + 40 * len(rows),
        )
    with sizes:
        label = st.selectbox(
            "Object sizes of", list(range(1, len(names) + 1)), key="w_size_class", format_func=lambda k: names[k - 1]
        )
        histogram = size_histogram(prediction.labels, int(label or 1))
        st.bar_chart(
            histogram,
            x="size (pixels)",
            y="objects",
            horizontal=True,
            sort=False,
            height=60 + 24 * max(1, len(histogram["objects"])),
        )
    csv = rows_to_csv(rows, columns=COLUMNS).encode("utf-8")
    st.download_button(
        "Slice measurements CSV" if record.is_volume else "Measurements CSV",
        data=csv,
        file_name=f"{file_stem(record, prediction.frame)}_measurements.csv",
        mime="text/csv",
        key="w_dl_measure_csv",
        on_click="ignore",
        icon=":material/download:",
    )


def slice_caption(state: SessionState, record: ImageRecord, z: int) -> str:
    """What the measurements of a volume's slice are: 2-D, in pixels of dy × dx, this slice only."""
    from seg.ui.volume import current_volume

    volume = current_volume(state, record)
    _, dy, dx = volume.spacing
    pixel = f"{dy:g} × {dx:g} {volume.unit} ({dy * dx:.4g} {volume.unit}² each)" if volume.unit else "1 × 1 voxel"
    return (
        f"Slice {z} only, in 2-D: areas in pixels of {pixel}, objects 8-connected within the slice. "
        "Volumes in physical units and 3-D objects: 'Whole volume' below."
    )


def measure_all_frames(record: ImageRecord, model, classes: Sequence[ClassSpec], progress=None):
    """Predict every frame with ``model`` and measure it: (rows with "frame", (T, H, W) labels, ms)."""
    from seg.measure import measure_stack
    from seg.tiling import predict_tiled

    start = time.perf_counter()
    stack = []
    for frame in range(record.n_frames):
        stack.append(predict_tiled(model, record.frames[frame]))  # equal to model.predict, bounded memory
        if progress is not None:
            progress(frame + 1, record.n_frames)
    labels = np.stack(stack)
    names = [c.name for c in classes][: len(model.class_names)]
    return measure_stack(labels, names), labels, (time.perf_counter() - start) * 1000


def stack_panel(state, record: ImageRecord, model, classes: Sequence[ClassSpec]) -> list[DownloadSpec]:
    """The "measure all frames" action and its line chart; returns the stack mask download."""
    from seg.measure import FRAME_COLUMNS, rows_to_csv

    key = (state[keys.MODEL_VERSION], record.digest, tuple(c.name for c in classes))
    if st.button(
        "Measure all frames",
        key=keys.W_MEASURE_STACK,
        icon=":material/timeline:",
        help="Segment every frame with the current model and measure each one.",
    ):
        bar = st.progress(0.0, text="Segmenting frames…")
        rows, labels, ms = measure_all_frames(
            record, model, classes, progress=lambda i, n: bar.progress(i / n, text=f"Segmenting frame {i}/{n}")
        )
        bar.empty()
        state[keys.STACK_MEASUREMENTS] = (key, rows, labels, ms)
    cached = state.get(keys.STACK_MEASUREMENTS)
    if cached is None or cached[0] != key:
        st.caption("Segments every frame with the current model (the strokes of all frames train it).")
        return []
    _, rows, labels, ms = cached
    st.caption(f"{record.n_frames} frames measured in {ms / 1000:.1f} s.")
    # Long format (class names as values, not column names: any name is safe in the chart).
    series = {
        "frame": [r["frame"] for r in rows],
        "class": [r["class"] for r in rows],
        "area fraction": [r["area_fraction"] for r in rows],
        "objects": [r["objects"] for r in rows],
    }
    st.line_chart(series, x="frame", y="area fraction", color="class", height=240)
    st.line_chart(series, x="frame", y="objects", color="class", height=200)
    st.download_button(
        "Measurements over frames CSV",
        data=rows_to_csv(rows, columns=FRAME_COLUMNS).encode("utf-8"),
        file_name=f"{safe_stem(record.name)}_frames_measurements.csv",
        mime="text/csv",
        key="w_dl_stack_csv",
        on_click="ignore",
        icon=":material/download:",
    )
    return [stack_mask_download(record, labels, classes)]
