"""The drawing canvas: its key, its geometry, and reading strokes before it is drawn.

``streamlit_drawable_canvas`` is imported lazily inside :func:`draw_canvas`: importing it
outside a running Streamlit script raises (its component manifest is not registered).

The "one rerun per stroke" trick: the canvas sends its Fabric JSON on mouse-up, which reruns
the script with the new value already in ``st.session_state[canvas key]``. The app reads it
there (:func:`pending_drawing`) *before* drawing the canvas, retrains and predicts, and then
draws the canvas with the new overlay as its background, so the overlay never lags a stroke.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from seg.viewport import Viewport

if TYPE_CHECKING:
    from seg.ui.state import SessionState

#: The value the component reports before any stroke.
EMPTY_DRAWING: dict[str, Any] = {"version": "7.4.0", "objects": []}


def canvas_key(digest: str, frame: int, nonce: int, viewport: Viewport) -> str:
    """Key of the canvas for one frame of one image shown through one viewport.

    A new image (digest), frame or viewport gets a fresh canvas (mounted with the strokes
    projected into that view); ``nonce`` is bumped to remount it with rewritten strokes (resume
    from a file, recolour or remove a class).
    """
    return f"canvas-{digest[:12]}-f{frame}-n{nonce}-v{viewport.token()}"


# --------------------------------------------------------------------------- image <-> canvas


def transform_drawing(
    objects: Sequence[Mapping], scale: tuple[float, float], offset: tuple[float, float]
) -> list[dict]:
    """Fabric objects moved by ``p -> p * scale + offset`` (per axis), stroke widths scaled too.

    The strokes are kept in image pixels (a Fabric drawing whose canvas *is* the image); the
    canvas of a viewport shows them through ``scale = viewport.scale`` and ``offset = -origin *
    scale``. Positions, path points, line ends and sizes scale per axis; stroke widths by the mean
    of both axes, as :class:`seg.strokes.BackgroundFit` reads them. Applied to an object and then
    with the inverse (``1 / scale``, ``-offset / scale``) it gives the object back (to rounding).
    """
    sx, sy = float(scale[0]), float(scale[1])
    ox, oy = float(offset[0]), float(offset[1])
    mean = 0.5 * (sx + sy)
    out = []
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        moved = dict(obj)
        for name, factor, shift in (("left", sx, ox), ("top", sy, oy)):
            if _is_number(moved.get(name)):
                moved[name] = moved[name] * factor + shift
        for name, factor in (
            ("width", sx),
            ("height", sy),
            ("x1", sx),
            ("x2", sx),
            ("y1", sy),
            ("y2", sy),
            ("rx", sx),
            ("ry", sy),
            ("radius", mean),
            ("strokeWidth", mean),
        ):
            if _is_number(moved.get(name)):
                moved[name] = moved[name] * factor
        path = moved.get("path")
        if isinstance(path, list):
            moved["path"] = [_move_command(command, sx, sy, ox, oy) for command in path]
        out.append(moved)
    return out


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _move_command(command: Any, sx: float, sy: float, ox: float, oy: float) -> Any:
    """An absolute Fabric path command (M, L, Q, C, ...: x, y pairs after the letter) moved."""
    if (
        not isinstance(command, list)
        or not command
        or not isinstance(command[0], str)
        or command[0].upper() not in "MLQCTS"
        or not all(_is_number(v) for v in command[1:])
    ):
        return command  # anything else is passed on unchanged; the parser judges it
    values = command[1:]
    moved = [v * sx + ox if i % 2 == 0 else v * sy + oy for i, v in enumerate(values)]
    return [command[0], *moved]


def _extent(obj: Mapping) -> tuple[float, float, float]:
    """(centre x, centre y, half size) of an object, generously (it decides what a view sends)."""
    numbers = {
        name: float(obj[name])
        for name in ("left", "top", "width", "height", "strokeWidth", "radius")
        if _is_number(obj.get(name))
    }
    half = (
        numbers.get("width", 0.0)
        + numbers.get("height", 0.0)
        + numbers.get("strokeWidth", 0.0)
        + 2 * numbers.get("radius", 0.0)
    )
    return numbers.get("left", 0.0), numbers.get("top", 0.0), half


def _same_object(shown: Mapping, reported: Any) -> bool:
    """Whether the canvas's object is the one it was mounted with (Fabric rounds numbers)."""
    if not isinstance(reported, Mapping):
        return False
    if str(shown.get("type", "")).lower() != str(reported.get("type", "")).lower():
        return False
    if str(shown.get("stroke", "")).lower() != str(reported.get("stroke", "")).lower():
        return False
    for name in ("left", "top"):
        a, b = shown.get(name), reported.get(name)
        if _is_number(a) and _is_number(b) and abs(a - b) > 1.0:
            return False
    return True


@dataclass(frozen=True, eq=False)
class MountedCanvas:
    """The canvas shown for one frame through one viewport, and the strokes it was mounted with.

    Strokes are stored in image pixels (``seg.drawings``). A canvas shows those that reach into
    its viewport, projected to canvas pixels (:attr:`initial_drawing`); the others are kept aside.
    The canvas reports its objects in its own pixels and in order: the ones it was mounted with
    (fewer after undo or reset), then the new ones. :meth:`merge` turns a report back into the
    frame's strokes in image pixels, keeping the strokes outside the view and their order.
    """

    key: str
    digest: str
    frame: int
    viewport: Viewport
    base: tuple = ()  # the frame's image-space objects when mounted
    shown: tuple = ()  # indices into base of the objects sent to the canvas, in order
    initial_drawing: dict = field(default_factory=lambda: dict(EMPTY_DRAWING))

    @classmethod
    def mount(cls, key: str, digest: str, frame: int, viewport: Viewport, drawing: Mapping | None) -> MountedCanvas:
        base = tuple(_objects(drawing))
        low = np.array([viewport.left, viewport.top], float)
        high = low + (viewport.width, viewport.height)
        shown = []
        for index, obj in enumerate(base):
            x, y, half = _extent(obj) if isinstance(obj, Mapping) else (0.0, 0.0, 0.0)
            if low[0] - half <= x <= high[0] + half and low[1] - half <= y <= high[1] + half:
                shown.append(index)
        sent = transform_drawing([base[i] for i in shown], *_projection(viewport))
        return cls(key, digest, int(frame), viewport, base, tuple(shown), {**EMPTY_DRAWING, "objects": sent})

    def fit_dict(self) -> dict[str, float]:
        """The canvas -> image mapping (``background_fit`` form, see :meth:`Viewport.fit_dict`)."""
        return self.viewport.fit_dict()

    def merge(self, reported: Mapping) -> dict:
        """The frame's image-space drawing after the canvas reported ``reported`` (its own pixels)."""
        objects = _objects(reported)
        sent = self.initial_drawing["objects"]
        kept = 0
        while kept < min(len(objects), len(sent)) and _same_object(sent[kept], objects[kept]):
            kept += 1
        dropped = set(self.shown[kept:])
        scale, offset = _projection(self.viewport)
        inverse = (1 / scale[0], 1 / scale[1]), (-offset[0] / scale[0], -offset[1] / scale[1])
        merged = [obj for index, obj in enumerate(self.base) if index not in dropped]
        merged += transform_drawing(objects[kept:], *inverse)
        return {**EMPTY_DRAWING, "objects": merged}


def _projection(viewport: Viewport) -> tuple[tuple[float, float], tuple[float, float]]:
    scale_x, scale_y = viewport.scale
    return (scale_x, scale_y), (-viewport.left * scale_x, -viewport.top * scale_y)


def pending_drawing(state: SessionState, key: str | None) -> dict | None:
    """The Fabric JSON the canvas ``key`` reported, or None if it has reported nothing.

    The component's value has the shape ``{"drawing": {"raw": <fabric json>, "data": ...},
    "backgroundFit": {...}}``.
    """
    if not key:
        return None
    value = state.get(key)
    if not isinstance(value, Mapping):
        return None
    drawing = value.get("drawing")
    raw = drawing.get("raw") if isinstance(drawing, Mapping) else None
    return dict(raw) if isinstance(raw, Mapping) else None


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def draw_canvas(
    *,
    mounted: MountedCanvas,
    background: bytes,
    tool: str,
    stroke_color: str,
    stroke_width: float,
) -> tuple[dict | None, dict | None]:
    """Show the canvas; returns (Fabric JSON, background_fit) as reported by the browser.

    ``tool`` is "freedraw" | "line" | "rect" (the eraser is "freedraw" with the eraser colour);
    ``background`` is pre-encoded PNG/JPEG bytes at the canvas size (a PIL image would be
    re-encoded every run); ``stroke_width`` in canvas pixels.
    """
    from streamlit_drawable_canvas import st_canvas

    result = st_canvas(
        fill_color=_rgba(stroke_color, 0.3),
        stroke_width=round(float(stroke_width), 2),
        stroke_color=stroke_color,
        background_image=background,
        update_streamlit=True,
        height=mounted.viewport.canvas_height,
        width=mounted.viewport.canvas_width,
        drawing_mode=tool,
        initial_drawing=mounted.initial_drawing,
        key=mounted.key,
    )
    return result.json_data, result.background_fit


def draw_overview(*, key: str, viewport: Viewport, background: bytes) -> None:
    """The overview: a small canvas in point mode; a click there reports a point object."""
    from streamlit_drawable_canvas import st_canvas

    st_canvas(
        fill_color="rgba(255, 200, 0, 0.8)",
        stroke_width=1,
        stroke_color="#ffc800",
        background_image=background,
        update_streamlit=True,
        height=viewport.canvas_height,
        width=viewport.canvas_width,
        drawing_mode="point",
        point_display_radius=3,
        key=key,
    )


#: Page script of :func:`page_helpers` (runs in the page itself: components v2 have no iframe).
#:
#: * Mouse-up on a canvas sends its drawing at once. The component sends a stroke 200 ms after
#:   mouse-up (a fixed debounce in its bundle), a fifth of the app's whole stroke-to-overlay
#:   budget; its own toolbar button "Update the app with this drawing" sends at once (and cancels
#:   the pending send), so the script presses it right after the component has handled the
#:   mouse-up (a task queued behind the component's own microtask). Works for every tool and
#:   for the overview's click.
#: * Keys "+" / "=" and "-" press the zoom buttons (Streamlit's button shortcuts take letters,
#:   digits and named keys, not punctuation); not while typing in a field or with a modifier.
PAGE_HELPERS_JS = """
export default function () {
  if (window.__segPageHelpers) return;
  const SEND = 'button[aria-label="Update the app with this drawing"]';
  const ZOOM = {'+': 'w_zoom_in', '=': 'w_zoom_in', '-': 'w_zoom_out'};
  let pressed = null;
  const canvasOf = (event) => event.composedPath().find(
    (node) => node instanceof HTMLCanvasElement && node.classList.contains('upper-canvas'));
  const down = (event) => { pressed = canvasOf(event) || null; };
  const up = () => {
    const canvas = pressed;
    pressed = null;
    if (!canvas) return;
    setTimeout(() => {
      const send = canvas.isConnected ? canvas.getRootNode().querySelector(SEND) : null;
      if (send) send.click();
    }, 0);
  };
  const typing = (node) => !!node && (node.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(node.tagName));
  const key = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.composedPath()[0])) return;
    const name = ZOOM[event.key];
    const button = name && document.querySelector('.st-key-' + name + ' button');
    if (button && !button.disabled) { event.preventDefault(); button.click(); }
  };
  document.addEventListener('pointerdown', down, true);
  document.addEventListener('pointerup', up, true);
  document.addEventListener('keydown', key, true);
  window.__segPageHelpers = true;
  return () => {
    document.removeEventListener('pointerdown', down, true);
    document.removeEventListener('pointerup', up, true);
    document.removeEventListener('keydown', key, true);
    window.__segPageHelpers = false;
  };
}
"""


@functools.cache
def _page_helpers_component():
    import streamlit as st

    return st.components.v2.component("seg_page_helpers", js=PAGE_HELPERS_JS)


def page_helpers() -> None:
    """Mount :data:`PAGE_HELPERS_JS` (once per page; it renders nothing)."""
    _page_helpers_component()(key="seg_page_helpers")


def sync_canvas(state: SessionState, digest: str) -> bool:
    """Merge the strokes the last shown canvas reported into ``seg.drawings`` (image pixels).

    Called at the top of every run and in callbacks that rewrite strokes. Returns whether the
    stored strokes changed. Strokes of a canvas that belonged to another image are ignored.
    """
    from seg.ui import state as keys

    mounted: MountedCanvas | None = state.get(keys.CANVAS)
    if mounted is None or mounted.digest != digest:
        return False
    reported = pending_drawing(state, mounted.key)
    if reported is None:
        return False
    drawings: dict = state[keys.DRAWINGS]
    merged = mounted.merge(reported)
    if drawings.get(mounted.frame, EMPTY_DRAWING).get("objects", []) == merged["objects"]:
        return False
    drawings[mounted.frame] = merged
    return True


def remount(state: SessionState) -> None:
    """Show a new canvas (mounted with ``seg.drawings``) instead of the current one.

    Called after the stored strokes were rewritten; the old canvas's value must no longer be
    merged back into them (it still holds the strokes as they were before).
    """
    from seg.ui import state as keys

    state[keys.CANVAS_NONCE] = int(state.get(keys.CANVAS_NONCE, 0)) + 1
    state[keys.CANVAS] = None


def _objects(drawing: Mapping | None) -> list:
    objects = drawing.get("objects") if isinstance(drawing, Mapping) else None
    return list(objects) if isinstance(objects, list) else []


def recolor_drawing(drawing: Mapping | None, old: str, new: str) -> dict:
    """A copy of a Fabric JSON drawing with strokes of colour ``old`` drawn in ``new``."""
    objects = []
    for obj in _objects(drawing):
        if isinstance(obj, Mapping) and str(obj.get("stroke", "")).lower() == old.lower():
            obj = {**obj, "stroke": new}
            if "fill" in obj and obj["fill"] not in (None, "", "transparent"):
                obj["fill"] = _rgba(new, 0.3)
        objects.append(obj)
    return {**(drawing or EMPTY_DRAWING), "objects": objects}


def remove_color(drawing: Mapping | None, color: str) -> dict:
    """A copy of a Fabric JSON drawing without the strokes of colour ``color``."""
    objects = [
        obj
        for obj in _objects(drawing)
        if not (isinstance(obj, Mapping) and str(obj.get("stroke", "")).lower() == color.lower())
    ]
    return {**(drawing or EMPTY_DRAWING), "objects": objects}


def keep_colors(drawing: Mapping | None, colors: set[str]) -> dict:
    """A copy of a Fabric JSON drawing with only strokes whose colour is in ``colors``."""
    wanted = {c.lower() for c in colors}
    objects = [
        obj for obj in _objects(drawing) if isinstance(obj, Mapping) and str(obj.get("stroke", "")).lower() in wanted
    ]
    return {**(drawing or EMPTY_DRAWING), "objects": objects}
