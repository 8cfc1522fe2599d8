"""What the canvas shows under the strokes: the image, tinted by the current view.

The background is passed to the canvas as encoded bytes at display size and cached per
(image, frame, prediction, view, opacity, colours): toggling a view back or rerunning for an
unrelated widget costs a dictionary lookup, not an encode.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping, Sequence
from typing import Any

import numpy as np

from seg.ui import config
from seg.ui import state as S
from seg.ui.canvas import CanvasGeometry
from seg.ui.state import ClassSpec, ImageRecord

SEGMENTATION = "segmentation"
UNCERTAINTY = "uncertainty"
IMAGE_ONLY = "image"
PROBABILITY = "probability:"   # + class id

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
    class_id = int(option[len(PROBABILITY):])
    return next((i for i, c in enumerate(classes) if c.id == class_id), None)


def display_rgb(state: MutableMapping[str, Any], record: ImageRecord, frame: int, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 picture of ``frame`` at ``size``, cached per session for this image."""
    from seg.render import resize_rgb, to_display_rgb

    cache: dict = state[S.DISPLAY]
    key = (record.digest, int(frame), tuple(size))
    if key not in cache:
        for old in [k for k in cache if k[0] != record.digest]:
            del cache[old]
        if len(cache) >= 4:  # a stack: keep the last few frames only
            del cache[next(iter(cache))]
        cache[key] = resize_rgb(to_display_rgb(record.frames[frame]), size)
    return cache[key]


def background_bytes(
    state: MutableMapping[str, Any],
    record: ImageRecord,
    frame: int,
    geometry: CanvasGeometry,
    prediction,
    view: str,
    opacity: float,
    classes: Sequence[ClassSpec],
) -> tuple[bytes, tuple, float]:
    """Encoded background, its cache key and the ms spent rendering (0 when cached)."""
    shown = prediction if prediction is not None and prediction.frame == frame else None
    colors = tuple(c.color for c in classes)
    key = (record.digest, int(frame), shown.key if shown else None, view, round(float(opacity), 3), colors)
    cache: dict = state[S.BACKGROUNDS]
    if key in cache:
        cache[key] = cache.pop(key)  # most recently used last
        return cache[key], key, 0.0
    start = time.perf_counter()
    data = _render(state, record, frame, geometry, shown, view, opacity, classes)
    cache[key] = data
    while len(cache) > config.MAX_CACHED_BACKGROUNDS:
        del cache[next(iter(cache))]
    return data, key, (time.perf_counter() - start) * 1000


def _render(state, record, frame, geometry, prediction, view, opacity, classes) -> bytes:
    from seg.render import blend, blend_images, encode_jpeg, encode_png, heatmap

    size = geometry.background_size
    rgb = display_rgb(state, record, frame, size)
    if prediction is not None and view != IMAGE_ONLY:
        # The prediction holds the labels of exactly the display pixels (no resizing needed).
        if view == SEGMENTATION:
            rgb = blend(rgb, _fit(prediction.display_labels, size), [c.color for c in classes], opacity)
        else:
            values = _heat_values(prediction, view, classes)
            if values is not None:
                rgb = blend_images(rgb, heatmap(_fit(values, size)), opacity)
    if size[0] * size[1] <= PNG_MAX_PIXELS:
        return encode_png(rgb)
    return encode_jpeg(rgb, quality=90)


def _fit(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from seg.render import resize_labels

    return resize_labels(values, size)  # returns ``values`` itself when the size already matches


def _heat_values(prediction, view: str, classes: Sequence[ClassSpec]) -> np.ndarray | None:
    if view == UNCERTAINTY:
        return prediction.display_uncertainty()
    index = _class_index(view, classes)
    if index is None or index >= prediction.n_classes:
        return None
    return prediction.display_probabilities()[..., index]
