"""The class editor: add, rename, recolour, remove classes and pick the one to draw with.

A stroke's class is its colour on the canvas, so recolouring or removing a class rewrites the
stored strokes and remounts the canvas with them. Callbacks only change session state.
"""

from __future__ import annotations

import streamlit as st

from seg.ui import canvas as C
from seg.ui import state as keys
from seg.ui.state import ClassSpec
from seg.ui.text import escape_markdown

MAX_NAME_CHARS = 60


def _name_key(spec: ClassSpec) -> str:
    return f"w_class_name_{spec.id}"


def _color_key(spec: ClassSpec) -> str:
    return f"w_class_color_{spec.id}"


def _index_of(class_id: int) -> int | None:
    return next((i for i, c in enumerate(st.session_state[keys.CLASSES]) if c.id == class_id), None)


def _image_digest() -> str:
    record = st.session_state.get(keys.IMAGE)
    return record.digest if record is not None else ""


def _rewrite_strokes(transform) -> None:
    """Apply ``transform`` to every frame's stored strokes and remount the canvas with them."""
    state = st.session_state
    C.sync_canvas(state, _image_digest())
    state[keys.DRAWINGS] = {frame: transform(drawing) for frame, drawing in state[keys.DRAWINGS].items()}
    C.remount(state)


def add_class() -> None:
    """Callback of "Add class": a new class with the next unused palette colour, made active."""
    from seg.render import PALETTE
    from seg.strokes import ERASER_COLOR

    classes = list(st.session_state[keys.CLASSES])
    names = {c.name for c in classes}
    number = len(classes) + 1
    while f"class {number}" in names:
        number += 1
    spec = ClassSpec(
        keys.new_class_id(st.session_state), f"class {number}", keys.unused_color(classes, PALETTE, ERASER_COLOR)
    )
    st.session_state[keys.CLASSES] = [*classes, spec]
    st.session_state[keys.W_ACTIVE] = spec.id
    if st.session_state[keys.W_TOOL] == "eraser":
        st.session_state[keys.W_TOOL] = "freedraw"


def rename_class(class_id: int) -> None:
    """Callback of a class name box: accept a new unique, non-empty name, else restore the old one."""
    index = _index_of(class_id)
    if index is None:
        return
    classes = list(st.session_state[keys.CLASSES])
    spec = classes[index]
    name = " ".join(str(st.session_state.get(_name_key(spec), "")).split())[:MAX_NAME_CHARS]
    if not name:
        keys.flash(st.session_state, "warning", "A class name cannot be empty; the old name was kept.")
        name = spec.name
    elif any(c.name == name for i, c in enumerate(classes) if i != index):
        keys.flash(st.session_state, "warning", f"Another class is already called {name!r}; pick a different name.")
        name = spec.name
    st.session_state[_name_key(spec)] = name
    classes[index] = ClassSpec(spec.id, name, spec.color)
    st.session_state[keys.CLASSES] = classes


def recolor_class(class_id: int) -> None:
    """Callback of a class colour picker: recolour the class and its strokes.

    Two classes cannot share a colour (a stroke's colour says which class it belongs to).
    """
    from seg.render import normalize_color
    from seg.strokes import ERASER_COLOR

    index = _index_of(class_id)
    if index is None:
        return
    classes = list(st.session_state[keys.CLASSES])
    spec = classes[index]
    color = normalize_color(str(st.session_state.get(_color_key(spec), spec.color)))
    if color == spec.color:
        return
    taken = {c.color for i, c in enumerate(classes) if i != index} | {ERASER_COLOR.lower()}
    if color in taken:
        keys.flash(
            st.session_state,
            "warning",
            f"Colour {color} is already used (by another class or the eraser); pick another one.",
        )
        st.session_state[_color_key(spec)] = spec.color
        return
    _rewrite_strokes(lambda drawing: C.recolor_drawing(drawing, spec.color, color))
    classes[index] = ClassSpec(spec.id, spec.name, color)
    st.session_state[keys.CLASSES] = classes


def remove_class(class_id: int) -> None:
    """Callback of a class's remove button: drop the class and its strokes (at least two stay)."""
    index = _index_of(class_id)
    classes = list(st.session_state[keys.CLASSES])
    if index is None:
        return
    if len(classes) <= 2:
        keys.flash(
            st.session_state, "warning", "A segmentation needs at least two classes; add one before removing this."
        )
        return
    spec = classes.pop(index)
    _rewrite_strokes(lambda drawing: C.remove_color(drawing, spec.color))
    st.session_state[keys.CLASSES] = classes
    if st.session_state.get(keys.W_ACTIVE) == spec.id:
        st.session_state[keys.W_ACTIVE] = classes[0].id
    if st.session_state.get(keys.MODEL_SOURCE) == "uploaded":
        # The uploaded forest predicts the removed class too; it can only be replaced by training.
        st.session_state[keys.MODEL] = None
        st.session_state[keys.MODEL_SOURCE] = None
    st.session_state[keys.TRAIN_KEY] = None


def active_class_picker() -> ClassSpec:
    """Radio of the classes (names escaped: radio labels are Markdown); returns the active class."""
    state = st.session_state
    classes: list[ClassSpec] = state[keys.CLASSES]
    ids = [c.id for c in classes]
    if state.get(keys.W_ACTIVE) not in ids:
        state[keys.W_ACTIVE] = ids[0]
    names = {c.id: c.name for c in classes}
    active_id = st.radio(
        "Draw with class",
        ids,
        key=keys.W_ACTIVE,
        horizontal=True,
        format_func=lambda class_id: escape_markdown(names.get(class_id, "?")),
        help="The class your next strokes belong to. Rename, recolour, add and remove classes in the sidebar.",
    )
    return next(c for c in classes if c.id == active_id)


def class_editor() -> None:
    """Sidebar list of the classes: colour, name, remove; and "Add class"."""
    state = st.session_state
    classes: list[ClassSpec] = state[keys.CLASSES]
    for spec in classes:
        state.setdefault(_name_key(spec), spec.name)
        state.setdefault(_color_key(spec), spec.color)
        with st.container(horizontal=True, vertical_alignment="center", key=f"class_row_{spec.id}"):
            st.color_picker(
                "Colour", key=_color_key(spec), on_change=recolor_class, args=(spec.id,), label_visibility="collapsed"
            )
            st.text_input(
                "Name",
                key=_name_key(spec),
                on_change=rename_class,
                args=(spec.id,),
                max_chars=MAX_NAME_CHARS,
                label_visibility="collapsed",
            )
            st.button(
                "",
                key=f"w_class_remove_{spec.id}",
                on_click=remove_class,
                args=(spec.id,),
                icon=":material/delete:",
                type="tertiary",
                help="Remove this class and its strokes",
                disabled=len(classes) <= 2,
            )
    st.button("Add class", key=keys.W_NEW_CLASS, on_click=add_class, icon=":material/add:")
