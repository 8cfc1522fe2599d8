"""Zoom and pan: which part of the image the canvas shows (:class:`seg.viewport.Viewport`).

The canvas component has no zoom or pan of its own, so the app provides the view: a zoom
selector (fit, 1:8 ... 8:1) with zoom-in/out and fit buttons (keys "+", "-" and "0"), buttons (and
the arrow keys) that move the view by most of a screen, and an overview of the whole frame (click
it to centre the view there). Callbacks only
set ``seg.viewport``; the page then shows a new canvas for the new view, with the strokes
projected into it (see :class:`seg.ui.canvas.MountedCanvas`).
"""

from __future__ import annotations

import streamlit as st

from seg.ui import canvas, config
from seg.ui import state as keys
from seg.ui.state import ImageRecord, SessionState
from seg.ui.text import escape_markdown
from seg.viewport import ZOOM_LEVELS, Viewport, zoom_label

FIT = "fit"
#: Fraction of the window one pan button moves the view by (some context stays on screen).
PAN_STEP = 0.8
#: Longest side of the overview picture in screen pixels.
OVERVIEW_SIDE = 200


def fit_view(record: ImageRecord) -> Viewport:
    """The whole image on the canvas (what the app shows first)."""
    _, height, width = record.shape
    return Viewport.fit(height, width, max_side=config.DISPLAY_MAX_SIDE, max_upscale=config.MAX_UPSCALE)


def current_view(state: SessionState, record: ImageRecord) -> Viewport:
    """The session's viewport for ``record`` (the fit view unless the user zoomed)."""
    view = state.get(keys.VIEWPORT)
    _, height, width = record.shape
    if view is None or (view.image_height, view.image_width) != (height, width):
        return fit_view(record)
    return view


def zoom_options(record: ImageRecord) -> list:
    """ "fit", then the zoom levels that enlarge beyond the fit view."""
    fit_zoom = fit_view(record).zoom
    return [FIT, *(zoom for zoom in ZOOM_LEVELS if zoom > fit_zoom * 1.01)]


def _set_view(state: SessionState, record: ImageRecord, view: Viewport | None) -> None:
    state[keys.VIEWPORT] = None if view is None or view == fit_view(record) else view
    shown = current_view(state, record)
    state[keys.W_ZOOM] = FIT if state[keys.VIEWPORT] is None else _nearest_option(record, shown.zoom)


def _nearest_option(record: ImageRecord, zoom: float):
    options = zoom_options(record)
    return min(options[1:], key=lambda z: abs(z - zoom), default=FIT)


def _on_zoom() -> None:
    state = st.session_state
    record: ImageRecord = state[keys.IMAGE]
    choice = state.get(keys.W_ZOOM, FIT)
    if choice == FIT:
        _set_view(state, record, None)
    else:
        _set_view(state, record, current_view(state, record).zoomed(float(choice), max_side=config.DISPLAY_MAX_SIDE))


def _step_zoom(direction: int) -> None:
    state = st.session_state
    record: ImageRecord = state[keys.IMAGE]
    options = zoom_options(record)
    view = current_view(state, record)
    index = 0 if state.get(keys.VIEWPORT) is None else options.index(_nearest_option(record, view.zoom))
    index = min(max(0, index + direction), len(options) - 1)
    if options[index] == FIT:
        _set_view(state, record, None)
    else:
        _set_view(state, record, view.zoomed(float(options[index]), max_side=config.DISPLAY_MAX_SIDE))


def _fit() -> None:
    state = st.session_state
    _set_view(state, state[keys.IMAGE], None)


def _pan(screens_x: float, screens_y: float) -> None:
    state = st.session_state
    record: ImageRecord = state[keys.IMAGE]
    _set_view(state, record, current_view(state, record).panned(screens_x, screens_y))


def centre_view(state: SessionState, record: ImageRecord, x: float, y: float) -> Viewport:
    """Centre the current view on image point (x, y) (kept inside the image); returns it."""
    view = current_view(state, record).centred_at(x, y, max_side=config.DISPLAY_MAX_SIDE)
    _set_view(state, record, view)
    return current_view(state, record)


def show_box(state: SessionState, record: ImageRecord, top: int, left: int, bottom: int, right: int) -> Viewport:
    """Centre the view on an image box, zoomed in as far as the box (with a margin) still fits."""
    side = max(bottom - top, right - left, 1) * 1.5
    fit_zoom = fit_view(record).zoom
    zooms = [z for z in ZOOM_LEVELS if fit_zoom * 1.01 < z <= config.DISPLAY_MAX_SIDE / side]
    centre = ((left + right) / 2, (top + bottom) / 2)
    if not zooms:
        _set_view(state, record, None)
        return current_view(state, record)
    _, height, width = record.shape
    _set_view(state, record, Viewport.at(height, width, max(zooms), centre, max_side=config.DISPLAY_MAX_SIDE))
    return current_view(state, record)


def _overview_view(record: ImageRecord) -> Viewport:
    _, height, width = record.shape
    return Viewport.fit(height, width, max_side=OVERVIEW_SIDE, max_upscale=1.0)


def _overview_click(state: SessionState, record: ImageRecord, key: str) -> tuple[float, float] | None:
    """Image point the user clicked on the overview (its canvas reports a point object)."""
    drawing = canvas.pending_drawing(state, key)
    objects = drawing.get("objects") if drawing else None
    if not objects:
        return None
    last = objects[-1]
    left, top = last.get("left"), last.get("top")
    if not isinstance(left, (int, float)) or not isinstance(top, (int, float)):
        return None
    radius = float(last.get("radius", 0) or 0) + float(last.get("strokeWidth", 0) or 0) / 2
    centre = [
        left + (radius if last.get("originX", "left") == "left" else 0.0),
        top + (radius if last.get("originY", "top") == "top" else 0.0),
    ]
    x, y = _overview_view(record).to_image([centre])[0]
    return float(x), float(y)


def navigation_bar(record: ImageRecord, frame: int) -> Viewport:
    """Zoom, pan and (when zoomed in) the overview; returns the viewport the canvas shows."""
    from seg.ui import views

    state = st.session_state
    options = zoom_options(record)
    if state.get(keys.W_ZOOM) not in options:
        state[keys.W_ZOOM] = FIT
    overview_key = f"overview-{record.digest[:12]}-{int(state.get(keys.OVERVIEW_NONCE, 0))}"
    clicked = _overview_click(state, record, overview_key)
    if clicked is not None:
        centre_view(state, record, *clicked)
        state[keys.OVERVIEW_NONCE] = int(state.get(keys.OVERVIEW_NONCE, 0)) + 1  # a fresh overview, no dot
        overview_key = f"overview-{record.digest[:12]}-{int(state[keys.OVERVIEW_NONCE])}"
    view = current_view(state, record)
    zoomed = not view.shows_whole_image
    with st.container(key="navigation", horizontal=True, vertical_alignment="center", gap="small"):
        if len(options) > 1:
            st.selectbox(
                "Zoom",
                options,
                key=keys.W_ZOOM,
                on_change=_on_zoom,
                width=110,
                label_visibility="collapsed",
                format_func=lambda z: "Fit" if z == FIT else zoom_label(z),
                help="Screen pixels per image pixel. 1:1 shows every image pixel.",
            )
            st.button(
                "",
                key=keys.W_ZOOM_IN,
                icon=":material/zoom_in:",
                on_click=_step_zoom,
                args=(1,),
                help="Zoom in (or the + key)",
                disabled=state[keys.W_ZOOM] == options[-1],
            )
            st.button(
                "",
                key=keys.W_ZOOM_OUT,
                icon=":material/zoom_out:",
                on_click=_step_zoom,
                args=(-1,),
                help="Zoom out (or the - key)",
                disabled=state[keys.VIEWPORT] is None,
            )
            st.button(
                "",
                key=keys.W_ZOOM_FIT,
                icon=":material/fit_screen:",
                on_click=_fit,
                shortcut="0",
                help="Show the whole image (or the 0 key)",
                disabled=state[keys.VIEWPORT] is None,
            )
        if zoomed:
            for key, icon, step, arrow in (
                (keys.W_PAN_LEFT, "arrow_back", (-PAN_STEP, 0), "Left"),
                (keys.W_PAN_UP, "arrow_upward", (0, -PAN_STEP), "Up"),
                (keys.W_PAN_DOWN, "arrow_downward", (0, PAN_STEP), "Down"),
                (keys.W_PAN_RIGHT, "arrow_forward", (PAN_STEP, 0), "Right"),
            ):
                st.button(
                    "",
                    key=key,
                    icon=f":material/{icon}:",
                    on_click=_pan,
                    args=step,
                    shortcut=arrow,
                    help=f"Move {arrow.lower()} (or the {arrow.lower()} arrow key)",
                )
        st.caption(
            escape_markdown(
                f"x {view.left}–{view.left + view.width}, y {view.top}–{view.top + view.height} of "
                f"{view.image_width}×{view.image_height} · zoom {zoom_label(view.zoom)}"
            ),
            width="content",
        )
        canvas.page_helpers()  # mouse-up sends a stroke at once; "+" and "-" zoom
    if zoomed:
        overview = _overview_view(record)
        with st.container(key="overview"):
            canvas.draw_overview(
                key=overview_key,
                viewport=overview,
                background=views.overview_bytes(state, record, frame, overview, view),
            )
    return view
