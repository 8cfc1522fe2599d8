"""The drawing canvas: its key, its geometry, and reading strokes before it is drawn.

``streamlit_drawable_canvas`` is imported lazily inside :func:`draw_canvas`: importing it
outside a running Streamlit script raises (its component manifest is not registered).

The "one rerun per stroke" trick: the canvas sends its Fabric JSON on mouse-up, which reruns
the script with the new value already in ``st.session_state[canvas key]``. The app reads it
there (:func:`pending_drawing`) *before* drawing the canvas, retrains and predicts, and then
draws the canvas with the new overlay as its background, so the overlay never lags a stroke.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from seg.ui import config

#: The value the component reports before any stroke.
EMPTY_DRAWING: dict[str, Any] = {"version": "7.4.0", "objects": []}


@dataclass(frozen=True)
class CanvasGeometry:
    """Sizes of one image on screen.

    ``canvas_*`` is the drawing surface in screen pixels; ``background_*`` the pixel size of the
    encoded background (never larger than the image: the browser enlarges small images).
    """

    image_height: int
    image_width: int
    canvas_height: int
    canvas_width: int

    @property
    def background_size(self) -> tuple[int, int]:
        """(height, width) of the encoded background image."""
        if self.canvas_width >= self.image_width:
            return self.image_height, self.image_width
        return self.canvas_height, self.canvas_width

    def fit_dict(self) -> dict[str, float]:
        """The canvas -> image mapping in the component's ``background_fit`` form.

        Computed here rather than read from the component: the canvas has a fixed pixel size
        and the background is stretched onto it, so the mapping is known before the browser
        reports it (and the first run, before the component has mounted, needs it too).
        """
        return {
            "natural_width": self.image_width,
            "natural_height": self.image_height,
            "scale_x": self.canvas_width / self.image_width,
            "scale_y": self.canvas_height / self.image_height,
            "offset_x": 0.0,
            "offset_y": 0.0,
        }


def geometry(height: int, width: int, max_side: int = config.DISPLAY_MAX_SIDE) -> CanvasGeometry:
    """Screen size for an image of ``height`` x ``width`` pixels: longest side ``max_side``
    (small images are enlarged at most :data:`config.MAX_UPSCALE` times)."""
    scale = min(config.MAX_UPSCALE, max_side / max(height, width))
    return CanvasGeometry(
        image_height=height,
        image_width=width,
        canvas_height=max(1, round(height * scale)),
        canvas_width=max(1, round(width * scale)),
    )


def canvas_key(digest: str, frame: int, nonce: int) -> str:
    """Key of the canvas for one frame of one image.

    A new image (digest) or frame gets a fresh canvas; ``nonce`` is bumped to remount it with
    rewritten strokes (resume from a file, recolour or remove a class).
    """
    return f"canvas-{digest[:12]}-f{frame}-n{nonce}"


def pending_drawing(state: Mapping[str, Any], key: str | None) -> dict | None:
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
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def draw_canvas(
    *,
    key: str,
    geometry: CanvasGeometry,
    background: bytes,
    tool: str,
    stroke_color: str,
    stroke_width: int,
    initial_drawing: dict | None,
) -> tuple[dict | None, dict | None]:
    """Show the canvas; returns (Fabric JSON, background_fit) as reported by the browser.

    ``tool`` is "freedraw" | "line" | "rect" (the eraser is "freedraw" with the eraser colour);
    ``background`` is pre-encoded PNG/JPEG bytes (a PIL image would be re-encoded every run).
    """
    from streamlit_drawable_canvas import st_canvas

    result = st_canvas(
        fill_color=_rgba(stroke_color, 0.3),
        stroke_width=int(stroke_width),
        stroke_color=stroke_color,
        background_image=background,
        update_streamlit=True,
        height=geometry.canvas_height,
        width=geometry.canvas_width,
        drawing_mode=tool,
        initial_drawing=initial_drawing,
        key=key,
    )
    return result.json_data, result.background_fit


def sync_canvas(state: MutableMapping[str, Any], digest: str) -> bool:
    """Copy the strokes the last shown canvas reported into ``seg.drawings``.

    Called at the top of every run and in callbacks that rewrite strokes. Returns whether the
    stored strokes changed. Strokes of a canvas that belonged to another image are ignored.
    """
    from seg.ui import state as S

    owner = state.get(S.CANVAS_OWNER)
    key = state.get(S.CANVAS_KEY)
    if not owner or owner[0] != digest:
        return False
    drawing = pending_drawing(state, key)
    if drawing is None:
        return False
    frame = int(owner[1])
    drawings: dict = state[S.DRAWINGS]
    if drawings.get(frame) == drawing:
        return False
    drawings[frame] = drawing
    return True


def remount(state: MutableMapping[str, Any]) -> None:
    """Show a new canvas (mounted with ``seg.drawings``) instead of the current one.

    Called after the stored strokes were rewritten; the old canvas's value must no longer be
    copied back over them (it still holds the strokes as they were before).
    """
    from seg.ui import state as S

    state[S.CANVAS_NONCE] = int(state.get(S.CANVAS_NONCE, 0)) + 1
    state[S.CANVAS_OWNER] = None


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
        obj for obj in _objects(drawing)
        if not (isinstance(obj, Mapping) and str(obj.get("stroke", "")).lower() == color.lower())
    ]
    return {**(drawing or EMPTY_DRAWING), "objects": objects}


def keep_colors(drawing: Mapping | None, colors: set[str]) -> dict:
    """A copy of a Fabric JSON drawing with only strokes whose colour is in ``colors``."""
    wanted = {c.lower() for c in colors}
    objects = [
        obj for obj in _objects(drawing)
        if isinstance(obj, Mapping) and str(obj.get("stroke", "")).lower() in wanted
    ]
    return {**(drawing or EMPTY_DRAWING), "objects": objects}
