"""What the canvas shows under the strokes: the image, tinted by the current view.

The background is passed to the canvas as encoded bytes at the canvas size and cached per
(image, frame, viewport, prediction, view, opacity, colours): toggling a view back or rerunning for an
unrelated widget costs a dictionary lookup, not an encode.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg.ui import config
from seg.ui import state as keys
from seg.ui.state import ClassSpec, ImageRecord, SessionState
from seg.viewport import Viewport

SEGMENTATION = "segmentation"
UNCERTAINTY = "uncertainty"
IMAGE_ONLY = "image"
PROBABILITY = "probability:"  # + class id


@dataclass(frozen=True)
class Look:
    """How the canvas background looks: which view (segmentation, uncertainty, ...) and how opaque."""

    view: str
    opacity: float


#: Backgrounds up to this many pixels are PNG (crisp class borders); bigger ones JPEG (fast).
PNG_MAX_PIXELS = 400_000


def view_options(classes: Sequence[ClassSpec]) -> list[str]:
    """Options of the view selector; probability views refer to classes by their stable id."""
    return [SEGMENTATION, UNCERTAINTY, *(f"{PROBABILITY}{c.id}" for c in classes), IMAGE_ONLY]


def view_title(option: str, classes: Sequence[ClassSpec]) -> str:
    """Plain-text title of a view option (selectbox options are not rendered as markdown)."""
    if option == SEGMENTATION:
        return "Segmentation"
    if option == UNCERTAINTY:
        return "Uncertainty (bright = unsure: draw there)"
    if option == IMAGE_ONLY:
        return "Image only"
    index = _class_index(option, classes)
    return f"Probability of {classes[index].name}" if index is not None else "Probability"


def _class_index(option: str, classes: Sequence[ClassSpec]) -> int | None:
    if not option.startswith(PROBABILITY):
        return None
    class_id = int(option[len(PROBABILITY) :])
    return next((i for i, c in enumerate(classes) if c.id == class_id), None)


def _display_frame(state: SessionState, record: ImageRecord, frame: int) -> np.ndarray:
    """The whole frame as display pixels (grey (H, W) or (H, W, 3) uint8), cached for the last
    two frames of this image: every view is a crop of it, with the frame's contrast stretch."""
    from seg.render import to_display_rgb

    cache: dict = state[keys.DISPLAY]
    key = ("frame", record.digest, int(frame))
    if key not in cache:
        for old in [k for k in cache if k[0] == "frame" and k[1] != record.digest]:
            del cache[old]
        frames = [k for k in cache if k[0] == "frame"]
        if len(frames) >= 2:  # a stack: keep the last two frames only
            del cache[frames[0]]
        rgb = to_display_rgb(record.frames[frame])
        cache[key] = np.ascontiguousarray(rgb[..., 0]) if record.n_channels == 1 else rgb
    return cache[key]


def display_rgb(
    state: SessionState, record: ImageRecord, frame: int, viewport: Viewport | tuple[int, int]
) -> np.ndarray:
    """(h, w, 3) uint8 picture of what ``viewport`` shows of ``frame``, at the canvas size
    (or of the whole frame at ``(h, w)``)."""
    from seg.render import resize_rgb

    if not isinstance(viewport, Viewport):
        _, height, width = record.shape
        viewport = Viewport(height, width, 0, 0, height, width, *viewport)

    cache: dict = state[keys.DISPLAY]
    key = ("view", record.digest, int(frame), viewport.token())
    if key not in cache:
        for old in [k for k in cache if k[0] == "view" and k[1] != record.digest]:
            del cache[old]
        views = [k for k in cache if k[0] == "view"]
        if len(views) >= config.MAX_CACHED_BACKGROUNDS:
            del cache[views[0]]
        picture = resize_rgb(_display_frame(state, record, frame)[viewport.window], viewport.canvas_size)
        cache[key] = np.repeat(picture[..., None], 3, axis=2) if picture.ndim == 2 else picture
    return cache[key]


def overview_bytes(
    state: SessionState, record: ImageRecord, frame: int, overview: Viewport, viewport: Viewport
) -> bytes:
    """PNG of the whole frame at ``overview`` size with the current ``viewport`` outlined."""
    from seg.render import encode_png

    rgb = display_rgb(state, record, frame, overview).copy()
    (x0, y0), (x1, y1) = overview.to_canvas(
        [[viewport.left, viewport.top], [viewport.left + viewport.width, viewport.top + viewport.height]]
    )
    height, width = rgb.shape[:2]
    left, right = int(np.clip(np.floor(x0), 0, width - 1)), int(np.clip(np.ceil(x1) - 1, 0, width - 1))
    top, bottom = int(np.clip(np.floor(y0), 0, height - 1)), int(np.clip(np.ceil(y1) - 1, 0, height - 1))
    outline = np.array([255, 200, 0], np.uint8)
    for thickness in range(2):
        rgb[min(top + thickness, bottom), left : right + 1] = outline
        rgb[max(bottom - thickness, top), left : right + 1] = outline
        rgb[top : bottom + 1, min(left + thickness, right)] = outline
        rgb[top : bottom + 1, max(right - thickness, left)] = outline
    return encode_png(rgb)


def background_bytes(
    state: SessionState,
    scene,
    prediction,
    look: Look,
    classes: Sequence[ClassSpec],
    layers: Sequence = (),
) -> tuple[bytes, tuple, float]:
    """Encoded background of ``scene`` (a :class:`seg.ui.pipeline.Scene`), its cache key and the
    ms spent rendering (0 when cached). ``layers`` (:mod:`seg.ui.marks`) are drawn over it."""
    from seg.ui.marks import tokens

    shown = (
        prediction
        if prediction is not None and prediction.frame == scene.frame and prediction.key.view == scene.viewport.token()
        else None
    )
    colors = tuple(c.color for c in classes)
    key = (
        scene.record.digest,
        int(scene.frame),
        scene.viewport.token(),
        shown.key if shown else None,
        look.view,
        round(float(look.opacity), 3),
        colors,
        tokens(layers, scene.frame),
    )
    cache: dict = state[keys.BACKGROUNDS]
    if key in cache:
        cache[key] = cache.pop(key)  # most recently used last
        return cache[key], key, 0.0
    start = time.perf_counter()
    data = _render(state, scene, shown, look, classes, layers)
    cache[key] = data
    while len(cache) > config.MAX_CACHED_BACKGROUNDS:
        del cache[next(iter(cache))]
    return data, key, (time.perf_counter() - start) * 1000


def _render(state, scene, prediction, look: Look, classes, layers: Sequence = ()) -> bytes:
    from seg.render import blend, blend_images, encode_jpeg, encode_png, heatmap
    from seg.ui.marks import draw_layers

    size = scene.viewport.canvas_size
    rgb = display_rgb(state, scene.record, scene.frame, scene.viewport)
    if prediction is not None and prediction.display_labels is not None and look.view != IMAGE_ONLY:
        # The prediction holds the labels of exactly the display pixels (no resizing needed).
        if look.view == SEGMENTATION:
            rgb = blend(rgb, prediction.display_labels, [c.color for c in classes], look.opacity)
        else:
            values = _heat_values(prediction, look.view, classes)
            if values is not None:
                rgb = blend_images(rgb, heatmap(values), look.opacity)
    rgb = draw_layers(rgb, layers, scene.frame, scene.viewport)
    if size[0] * size[1] <= PNG_MAX_PIXELS:
        return encode_png(rgb)
    return encode_jpeg(rgb, quality=90)


def _heat_values(prediction, view: str, classes: Sequence[ClassSpec]) -> np.ndarray | None:
    if view == UNCERTAINTY:
        return prediction.display_uncertainty()
    index = _class_index(view, classes)
    if index is None or index >= prediction.n_classes:
        return None
    proba = prediction.display_probabilities()
    return None if proba is None else proba[..., index]
