"""What the panels mark on the canvas picture: boxes where to label next, object outlines,
imported labels.

A panel adds a *layer* for the frame it is about; the canvas background
(:func:`seg.ui.views.background_bytes`) draws the layers of the shown frame over the picture of
the viewport, after the segmentation tint. Layers hold full-resolution image coordinates and are
drawn at display resolution: boxes are mapped with :meth:`seg.viewport.Viewport.to_canvas`, label
images are sampled at the image pixels under the display pixels
(:meth:`~seg.viewport.Viewport.display_rows`), so they land on the same pixels as the overlay at
any zoom or pan. Every layer has a ``token`` naming what it draws: the background cache tells
pictures apart by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from seg.viewport import Viewport

#: Colour of the selected box or object, and of the other boxes.
HIGHLIGHT = "#ffd400"
BOX = "#ffffff"


def box_on_canvas(box: Sequence[float], viewport: Viewport) -> tuple[float, float, float, float]:
    """``(row0, col0, row1, col1)`` image pixels (end exclusive) -> the same box in canvas pixels."""
    (x0, y0), (x1, y1) = viewport.to_canvas([[box[1], box[0]], [box[3], box[2]]])
    return float(y0), float(x0), float(y1), float(x1)


def shown_labels(labels: np.ndarray, viewport: Viewport) -> np.ndarray:
    """(h, w) the labels of the image pixels the canvas pixels of ``viewport`` show."""
    return labels[np.ix_(viewport.display_rows(), viewport.display_columns())]


@dataclass(frozen=True, eq=False)
class BoxLayer:
    """Boxes over the picture (e.g. "label here next"); the selected one thicker, in yellow.

    ``boxes`` are ``(row0, col0, row1, col1)`` in image pixels of ``frame``, end exclusive.
    """

    frame: int
    boxes: tuple[tuple[int, int, int, int], ...]
    selected: int | None = None

    @property
    def token(self) -> tuple:
        return ("boxes", self.frame, self.boxes, self.selected)

    def draw(self, rgb: np.ndarray, viewport: Viewport) -> np.ndarray:
        """(h, w, 3) uint8 ``rgb`` (the viewport's picture) with the boxes drawn."""
        from seg.render import draw_boxes

        boxes = [box_on_canvas(box, viewport) for box in self.boxes]
        others = [box for i, box in enumerate(boxes) if i != self.selected]
        if others:
            rgb = draw_boxes(rgb, others, BOX, 2)
        if self.selected is not None and 0 <= self.selected < len(boxes):
            rgb = draw_boxes(rgb, [boxes[self.selected]], HIGHLIGHT, 3)
        return rgb


@dataclass(frozen=True, eq=False)
class ObjectLayer:
    """Objects outlined in one colour; the selected object filled in yellow.

    ``instances`` is the (H, W) instance label image of ``frame`` (0 = background) holding only
    the objects to show; ``key`` names it (what was segmented, with which settings and filter).
    """

    frame: int
    instances: np.ndarray = field(repr=False)
    color: str
    key: tuple
    selected: int | None = None

    @property
    def token(self) -> tuple:
        return ("objects", self.frame, self.key, self.color, self.selected)

    def draw(self, rgb: np.ndarray, viewport: Viewport) -> np.ndarray:
        from seg.render import blend, outline

        shown = shown_labels(self.instances, viewport)
        if self.selected is not None:
            rgb = blend(rgb, (shown == self.selected).astype(np.uint8), [HIGHLIGHT], 0.55)
        edges = (outline(shown) > 0).astype(np.uint8)
        return blend(rgb, edges, [self.color], 1.0)


@dataclass(frozen=True, eq=False)
class LabelLayer:
    """A class label image (e.g. imported labels): tinted in the class colours and outlined."""

    frame: int
    labels: np.ndarray = field(repr=False)
    colors: tuple[str, ...]
    key: tuple
    alpha: float = 0.5

    @property
    def token(self) -> tuple:
        return ("labels", self.frame, self.key, self.colors, self.alpha)

    def draw(self, rgb: np.ndarray, viewport: Viewport) -> np.ndarray:
        from seg.render import blend, outline

        shown = shown_labels(self.labels, viewport)
        rgb = blend(rgb, shown, self.colors, self.alpha)
        return blend(rgb, outline(shown), self.colors, 1.0)


def draw_layers(rgb: np.ndarray, layers: Sequence, frame: int, viewport: Viewport) -> np.ndarray:
    """``rgb`` with the layers of ``frame`` drawn in order."""
    for layer in layers:
        if layer.frame == frame:
            rgb = layer.draw(rgb, viewport)
    return rgb


def tokens(layers: Sequence, frame: int) -> tuple:
    """What the layers of ``frame`` draw (part of the background's cache key)."""
    return tuple(layer.token for layer in layers if layer.frame == frame)
