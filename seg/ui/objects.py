"""The objects panel: one class's objects as a table, a histogram and outlines on the image.

Objects are found (:func:`seg.objects.segment_objects`) and measured
(:func:`seg.objects.measure_objects`) only while the panel is open, once per prediction and
settings (cached in ``state[keys.OBJECTS]``); filtering, selecting a row and the histogram reuse
that table. The picture shows the objects that pass the filter outlined in the class colour and
the selected object filled; the downloads hold the same objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from seg.files import safe_stem
from seg.ui import config
from seg.ui import state as keys
from seg.ui.downloads import DownloadSpec, file_stem
from seg.ui.marks import ObjectLayer
from seg.ui.state import ClassSpec, ImageRecord, SessionState
from seg.ui.text import escape_markdown
from seg.ui.views import display_rgb

#: More objects than this are found and drawn but not measured in the app (~1-2 ms each: a
#: frame of specks would hold the page for minutes); the command line measures any number.
MAX_MEASURED_OBJECTS = 5_000
W_PICK = "w_obj_pick"
W_ON_CANVAS = "w_obj_on_canvas"
# Columns not offered for filtering or the histogram (identifiers and positions).
_NOT_MEASUREMENTS = ("label", "bbox_top", "bbox_left", "bbox_bottom", "bbox_right", "centroid_y", "centroid_x")


@dataclass(frozen=True)
class ObjectSettings:
    """What the user chose in the panel: the class (1..K) and the options of segment_objects."""

    class_label: int
    split: bool
    min_distance: int
    min_size: int
    fill_holes: bool
    pixel_size: float | None


@dataclass(frozen=True)
class FoundObjects:
    """Instances of one prediction under one :class:`ObjectSettings`, and their table."""

    key: tuple
    instances: np.ndarray  # (H, W) int32
    table: Any  # pandas.DataFrame from measure_objects, None above MAX_MEASURED_OBJECTS


def find_objects(state: SessionState, record: ImageRecord, prediction, settings: ObjectSettings) -> FoundObjects:
    """Segment and measure the objects, cached per (prediction, settings)."""
    from seg.objects import measure_objects, segment_objects

    key = (prediction.key.labels_id(), settings)  # the same labels in every view: no new search on a pan
    cache: dict = state[keys.OBJECTS]
    found = cache.get("found")
    if found is None or found.key != key:
        instances = segment_objects(
            prediction.labels,
            settings.class_label,
            split=settings.split,
            min_distance=settings.min_distance,
            min_size=settings.min_size,
            fill_holes=settings.fill_holes,
        )
        table = None
        if int(instances.max(initial=0)) <= MAX_MEASURED_OBJECTS:
            table = measure_objects(
                instances,
                image=record.frames[prediction.frame],
                proba=prediction.whole_probabilities(),
                class_label=settings.class_label,
                pixel_size=settings.pixel_size,
            )
        found = FoundObjects(key, instances, table)
        cache.clear()
        cache["found"] = found
    return found


def kept_instances(instances: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """``instances`` with every object not in ``labels`` set to 0 (labels keep their numbers)."""
    keep = np.zeros(int(instances.max(initial=0)) + 1, bool)
    keep[np.asarray(labels, dtype=np.int64)] = True
    keep[0] = False
    return np.where(keep[instances], instances, 0).astype(np.int32, copy=False)


def objects_picture(rgb: np.ndarray, instances: np.ndarray, color: str, selected: int | None) -> np.ndarray:
    """(h, w, 3) uint8: ``rgb`` with the objects' outlines in ``color`` and ``selected`` filled.

    ``instances`` are resized to the picture (nearest pixel) before outlining, so outlines stay
    one display pixel wide whatever the image size.
    """
    from seg.render import blend, outline, resize_labels
    from seg.ui.marks import HIGHLIGHT

    shown = resize_labels(instances, rgb.shape[:2])
    if selected is not None:
        rgb = blend(rgb, (shown == selected).astype(np.uint8), [HIGHLIGHT], 0.55)
    edges = (outline(shown) > 0).astype(np.uint8)
    return blend(rgb, edges, [color], 1.0)


def _settings_widgets(classes: Sequence[ClassSpec], n_classes: int) -> ObjectSettings:
    names = [c.name for c in classes][:n_classes]
    choose, split, distance, size = st.columns(4)
    class_label = choose.selectbox(
        "Objects of class",
        list(range(1, len(names) + 1)),
        key="w_obj_class",
        index=min(1, len(names) - 1),
        format_func=lambda k: names[k - 1],
    )
    do_split = split.checkbox(
        "Split touching objects",
        value=True,
        key="w_obj_split",
        help="Watershed of the distance to the object's edge, seeded at its maxima.",
    )
    min_distance = distance.number_input(
        "Min. centre distance (px)",
        1,
        500,
        5,
        key="w_obj_min_distance",
        disabled=not do_split,
        help="Objects whose centres are closer stay one object.",
    )
    min_size = size.number_input(
        "Min. size (px)", 0, 1_000_000, 10, key="w_obj_min_size", help="Smaller objects are dropped."
    )
    holes, pixel = st.columns(2)
    fill = holes.checkbox("Fill holes", value=True, key="w_obj_fill_holes")
    pixel_size = pixel.number_input(
        "Pixel size (µm, 0 = unknown)",
        0.0,
        1e6,
        0.0,
        key="w_obj_pixel_size",
        format="%.4g",
        help="Adds area, perimeter and diameter in µm.",
    )
    return ObjectSettings(
        int(class_label or 1),
        bool(do_split),
        int(min_distance),
        int(min_size),
        bool(fill),
        float(pixel_size) if pixel_size else None,
    )


def _filter(table) -> tuple[Any, str]:
    """The measurement chosen for the filter and histogram, and the rows within its range."""
    measurements = [c for c in table.columns if c not in _NOT_MEASUREMENTS]
    column = (
        st.selectbox(
            "Measurement", measurements, key="w_obj_measure", help="Filter the objects by it and show its histogram."
        )
        or "area"
    )
    values = table[column].to_numpy(dtype=np.float64)
    if len(values) < 2 or values.min() == values.max():
        return table, column
    step = _nice_step(float(values.max() - values.min()))
    low, high = float(np.floor(values.min() / step) * step), float(np.ceil(values.max() / step) * step)
    chosen = st.slider(
        f"Keep objects with {column} between", low, high, (low, high), step=step, key=f"w_obj_range_{column}"
    )
    keep = (values >= chosen[0]) & (values <= chosen[1])
    return table[keep], column


def _nice_step(span: float) -> float:
    """A power of ten giving 100-1000 slider steps over ``span`` (> 0)."""
    return float(10.0 ** np.floor(np.log10(span / 100))) if span > 0 else 1.0


def _pick_row(state: SessionState, record: ImageRecord, table) -> None:
    """Table callback: the clicked row's object becomes the highlighted one, and the canvas
    view moves onto it if it is not on screen."""
    rows = list(state["objects_table"]["selection"]["rows"])
    state[W_PICK] = int(table.iloc[rows[0]]["label"]) if rows and rows[0] < len(table) else None
    _show_picked(state, record, table)


def _show_picked(state: SessionState, record: ImageRecord, table) -> None:
    """Bring the highlighted object (``state[W_PICK]``, a label of ``table``) into the canvas view."""
    picked = table[table["label"] == state.get(W_PICK)]
    if len(picked):
        row = picked.iloc[0]
        box = (int(row["bbox_top"]), int(row["bbox_left"]), int(row["bbox_bottom"]), int(row["bbox_right"]))
        show_object(state, record, box)


def show_object(state: SessionState, record: ImageRecord, box: tuple[int, int, int, int]) -> None:
    """Centre the canvas view on an object's box ``(top, left, bottom, right)`` unless the view
    already shows all of it (the zoom stays; a box larger than the view is zoomed out to)."""
    from seg.ui.navigation import centre_view, current_view, show_box

    view = current_view(state, record)
    top, left, bottom, right = box
    if view.top <= top and bottom <= view.top + view.height and view.left <= left and right <= view.left + view.width:
        return
    if bottom - top > view.height or right - left > view.width:
        show_box(state, record, top, left, bottom, right)
    else:
        centre_view(state, record, (left + right) / 2, (top + bottom) / 2)


def _picked(state: SessionState, record: ImageRecord, table) -> int | None:
    """The "Highlight object" chooser (set by clicking a row, or by hand): a shown object or None;
    choosing one brings it into the canvas view."""
    labels = [int(label) for label in table["label"]]
    if state.get(W_PICK) not in labels:
        state[W_PICK] = None
    picked = st.selectbox(
        "Highlight object",
        [None, *labels],
        key=W_PICK,
        format_func=lambda label: "none" if label is None else f"object {label}",
        help="Click a row of the table, or choose an object number here.",
        on_change=_show_picked,
        args=(state, record, table),
    )
    return None if picked is None else int(picked)


def _histogram(values: np.ndarray, column: str) -> None:
    """Bars of the objects per bin, at each bin's left edge (a numeric axis keeps the order)."""
    if values.size == 0:
        return
    counts, edges = np.histogram(values, bins=min(20, max(1, values.size)))
    starts = [float(f"{edge:.4g}") for edge in edges[:-1]]
    st.bar_chart({column: starts, "objects": counts}, x=column, y="objects", height=220)


def objects_panel(
    state: SessionState,
    record: ImageRecord,
    prediction,
    classes: Sequence[ClassSpec],
    layers: list | None = None,
) -> list[DownloadSpec]:
    """Controls, table, histogram and picture of the objects; returns their downloads and, when
    "Outline on the canvas" is on, appends the objects shown to ``layers`` (:mod:`seg.ui.marks`)."""
    from seg.objects import object_rows, objects_csv

    _, height, width = record.shape
    if height * width > config.MAX_OBJECT_PIXELS:
        st.info(
            f"Objects are found in the app on frames up to {config.MAX_OBJECT_PIXELS / 1e6:.0f} megapixels "
            f"(this one has {height * width / 1e6:.0f}): find them with `python -m seg apply ... --objects CLASS`.",
            icon=":material/info:",
        )
        return []
    if not prediction.has_labels:
        st.info(
            "Objects are found on the whole image's segmentation: press *Segment whole image* above.",
            icon=":material/select_all:",
        )
        return []
    settings = _settings_widgets(classes, prediction.n_classes)
    on_canvas = st.toggle(
        "Outline on the canvas", value=True, key=W_ON_CANVAS, help="Draw the objects shown here over the canvas."
    )
    found = find_objects(state, record, prediction, settings)
    class_name = classes[settings.class_label - 1].name
    color = classes[settings.class_label - 1].color
    layer_key: tuple = (found.key, "all")
    stem = f"{file_stem(record, prediction.frame)}_{safe_stem(class_name, fallback='class')}"
    if found.table is None:
        count = int(found.instances.max())
        st.warning(
            f"{count:,} objects of {escape_markdown(class_name)}: more than {MAX_MEASURED_OBJECTS:,} are "
            "not measured here. Raise *Min. size*, or measure them all with "
            "`python -m seg apply ... --objects`.",
            icon=":material/warning:",
        )
        picture = objects_picture(
            display_rgb(state, record, prediction.frame, _picture_size(record)),
            found.instances,
            classes[settings.class_label - 1].color,
            None,
        )
        state[keys.OBJECTS]["picture"] = picture
        st.image(picture, width="stretch")
        if on_canvas and layers is not None:
            layers.append(ObjectLayer(prediction.frame, found.instances, color, layer_key))
        return [_tiff_download(stem, found.instances)]
    if len(found.table) == 0:
        st.info(f"No objects of class {escape_markdown(class_name)} in this frame.", icon=":material/info:")
        return []
    shown, column = _filter(found.table)
    st.caption(f"{len(shown):,} of {len(found.table):,} objects of {escape_markdown(class_name)} shown.")
    labels = [int(label) for label in shown["label"]]
    st.dataframe(
        shown,
        hide_index=True,
        key="objects_table",
        on_select=lambda: _pick_row(state, record, shown),
        selection_mode="single-row",
        height=260,
    )
    selected = _picked(state, record, shown)
    picture_column, chart_column = st.columns(2)
    kept = kept_instances(found.instances, shown["label"].to_numpy())
    size = _picture_size(record)
    picture = objects_picture(display_rgb(state, record, prediction.frame, size), kept, color, selected)
    state[keys.OBJECTS]["picture"] = picture
    if on_canvas and layers is not None:
        layer_key = (found.key, hash(tuple(labels)))
        layers.append(ObjectLayer(prediction.frame, kept, color, layer_key, selected))
    with picture_column:
        caption = f"Object {selected} highlighted" if selected is not None else "Select a row to highlight its object"
        st.image(picture, caption=caption, width="stretch")
    with chart_column:
        st.caption(f"Histogram of {column}")
        _histogram(shown[column].to_numpy(dtype=np.float64), column)

    frame = prediction.frame
    columns = list(found.table.columns)
    table = shown.copy()

    def csv() -> bytes:
        return objects_csv(object_rows(table, image=record.name, frame=frame), columns).encode("utf-8")

    return [
        _tiff_download(stem, kept),
        DownloadSpec(
            "w_dl_objects_csv",
            "Objects CSV",
            f"{stem}_objects.csv",
            "text/csv",
            csv,
            "One row per object that passes the filter: image, frame, object number, measurements.",
        ),
    ]


def _tiff_download(stem: str, instances: np.ndarray) -> DownloadSpec:
    from seg.objects import instance_tiff_bytes

    return DownloadSpec(
        "w_dl_objects_tiff",
        "Object labels (TIFF)",
        f"{stem}_objects.tif",
        "image/tiff",
        lambda: instance_tiff_bytes(instances),
        "Each object's pixels hold its number (the table's label), 0 elsewhere: 16-bit, "
        "32-bit above 65,535 objects. The objects shown (those that pass the filter).",
    )


def _picture_size(record: ImageRecord) -> tuple[int, int]:
    from seg.render import display_size

    _, height, width = record.shape
    return display_size(height, width, config.DISPLAY_MAX_SIDE)


def batch_objects_choice(model) -> int | None:
    """The batch page's "Find objects of class" choice: a class number 1..K, or None."""
    if model is None:
        return None
    names = list(model.class_names)
    choice = st.selectbox(
        "Find objects of class",
        [None, *range(1, len(names) + 1)],
        key="w_batch_objects",
        format_func=lambda k: "no objects" if k is None else names[k - 1],
        help="Adds NAME_objects.tif (each object numbered) to the zip and a table of "
        "every object (objects.csv), as `python -m seg apply --objects` does.",
    )
    return None if choice is None else int(choice)
