"""The part of an image shown on the drawing canvas, and the canvas <-> image mapping.

A :class:`Viewport` is a window of whole image pixels (``top``, ``left``, ``height``, ``width``)
stretched onto a canvas of ``canvas_height x canvas_width`` screen pixels. The window is always
made of whole pixels and lies inside the image, so

* the canvas background is the window resized to the canvas (no padding, no half pixels);
* a canvas point maps to the image as ``x_image = left + x_canvas * width / canvas_width``
  (:meth:`Viewport.to_image`), which is exactly the ``canvas = offset + scale * image`` form of
  :class:`seg.strokes.BackgroundFit` (:meth:`Viewport.fit_dict`);
* display pixel ``j`` shows image column ``left + floor((j + 0.5) * width / canvas_width)``
  (:meth:`Viewport.display_columns`), the sampling :func:`seg.render.resize_labels` uses, so a
  prediction of exactly those pixels equals the full-resolution prediction resized for display.

The "fit" viewport (whole image, longest side ``max_side``) is the canvas the app always showed;
zooming in shows a window of the image at ``zoom`` screen pixels per image pixel on a canvas of at
most ``max_side x max_side`` pixels. No Streamlit here: the UI keeps a Viewport in session state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from seg.errors import SettingsError, is_whole_number

__all__ = ["Viewport", "ZOOM_LEVELS", "zoom_label"]

#: Zoom levels offered besides "fit" (screen pixels per image pixel).
ZOOM_LEVELS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)


def zoom_label(zoom: float) -> str:
    """``"1:1"``, ``"2:1"`` (enlarged), ``"1:4"`` (reduced) or ``"1.48:1"``."""
    if zoom >= 1:
        text = f"{zoom:.2f}".rstrip("0").rstrip(".")
        return f"{text}:1"
    text = f"{1 / zoom:.2f}".rstrip("0").rstrip(".")
    return f"1:{text}"


def _positive_int(name: str, value: object) -> int:
    if not is_whole_number(value, 1):
        raise SettingsError(f"viewport {name} must be a whole number of pixels >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Viewport:
    """A window of an image shown on the canvas.

    Attributes
    ----------
    image_height, image_width : int
        Size of the full-resolution image.
    top, left, height, width : int
        The window of image pixels shown: rows ``top:top + height``, columns ``left:left + width``.
    canvas_height, canvas_width : int
        Size of the canvas in screen pixels; the window is stretched onto it.
    """

    image_height: int
    image_width: int
    top: int
    left: int
    height: int
    width: int
    canvas_height: int
    canvas_width: int

    def __post_init__(self) -> None:
        for name in ("image_height", "image_width", "height", "width", "canvas_height", "canvas_width"):
            object.__setattr__(self, name, _positive_int(name, getattr(self, name)))
        for name, size, limit in (("top", self.height, self.image_height), ("left", self.width, self.image_width)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= limit - size:
                raise SettingsError(
                    f"viewport {name} {value!r} puts the {size}-pixel window outside the image "
                    f"({limit} pixels): use Viewport.centred_at, which keeps it inside"
                )
            object.__setattr__(self, name, int(value))

    # ------------------------------------------------------------------ construction

    @classmethod
    def fit(cls, image_height: int, image_width: int, *, max_side: int = 760, max_upscale: float = 2.0) -> Viewport:
        """The whole image, longest side ``max_side`` screen pixels (small images enlarged at most
        ``max_upscale`` times)."""
        image_height = _positive_int("image_height", image_height)
        image_width = _positive_int("image_width", image_width)
        scale = min(max_upscale, max_side / max(image_height, image_width))
        return cls(
            image_height,
            image_width,
            0,
            0,
            image_height,
            image_width,
            max(1, round(image_height * scale)),
            max(1, round(image_width * scale)),
        )

    @classmethod
    def at(
        cls, image_height: int, image_width: int, zoom: float, centre: tuple[float, float], *, max_side: int = 760
    ) -> Viewport:
        """A window shown at ``zoom`` screen pixels per image pixel, centred as near ``centre``
        = (x, y) in image pixels as the image border allows.

        Axes the image fills at this zoom show the whole image (the canvas is then smaller).
        """
        image_height = _positive_int("image_height", image_height)
        image_width = _positive_int("image_width", image_width)
        if (
            isinstance(zoom, bool)
            or not isinstance(zoom, (int, float, np.floating))
            or not math.isfinite(zoom)
            or zoom <= 0
        ):
            raise SettingsError(f"zoom must be a positive number of screen pixels per image pixel, got {zoom!r}")
        zoom = float(zoom)

        def axis(length: int, middle: float) -> tuple[int, int, int]:
            size = max(1, min(length, math.floor(max_side / zoom)))
            canvas = max(1, min(max_side, round(size * zoom)))
            start = round(float(middle) - size / 2)
            return min(max(0, start), length - size), size, canvas

        top, height, canvas_height = axis(image_height, centre[1])
        left, width, canvas_width = axis(image_width, centre[0])
        return cls(image_height, image_width, top, left, height, width, canvas_height, canvas_width)

    # ------------------------------------------------------------------ navigation

    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel (mean of both axes; they differ only by rounding)."""
        return 0.5 * (self.canvas_width / self.width + self.canvas_height / self.height)

    @property
    def centre(self) -> tuple[float, float]:
        """(x, y) image coordinates of the window's centre."""
        return self.left + self.width / 2, self.top + self.height / 2

    @property
    def shows_whole_image(self) -> bool:
        return (self.height, self.width) == (self.image_height, self.image_width)

    def zoomed(self, zoom: float, *, max_side: int = 760) -> Viewport:
        """The same centre at another zoom."""
        return Viewport.at(self.image_height, self.image_width, zoom, self.centre, max_side=max_side)

    def centred_at(self, x: float, y: float, *, max_side: int = 760) -> Viewport:
        """The same zoom with its centre moved to image point (x, y) (kept inside the image)."""
        return Viewport.at(self.image_height, self.image_width, self.zoom, (x, y), max_side=max_side)

    def panned(self, screens_x: float, screens_y: float) -> Viewport:
        """Moved by a number of windows (e.g. 0.8 = most of a screen right), inside the image."""
        top = round(self.top + screens_y * self.height)
        left = round(self.left + screens_x * self.width)
        return replace(
            self,
            top=min(max(0, top), self.image_height - self.height),
            left=min(max(0, left), self.image_width - self.width),
        )

    # ------------------------------------------------------------------ mapping

    @property
    def scale(self) -> tuple[float, float]:
        """(scale_x, scale_y): canvas pixels per image pixel along each axis."""
        return self.canvas_width / self.width, self.canvas_height / self.height

    def to_image(self, xy: ArrayLike) -> np.ndarray:
        """Canvas points ``(..., 2)`` (x, y) -> image points ``(..., 2)`` float64."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy / self.scale + (self.left, self.top)

    def to_canvas(self, xy: ArrayLike) -> np.ndarray:
        """Image points ``(..., 2)`` (x, y) -> canvas points ``(..., 2)`` float64."""
        xy = np.asarray(xy, dtype=np.float64)
        return (xy - (self.left, self.top)) * self.scale

    def fit_dict(self) -> dict[str, float]:
        """The mapping in the canvas component's ``background_fit`` form (for
        :meth:`seg.strokes.BackgroundFit.from_component` with the full image shape)."""
        scale_x, scale_y = self.scale
        return {
            "natural_width": self.image_width,
            "natural_height": self.image_height,
            "scale_x": scale_x,
            "scale_y": scale_y,
            "offset_x": -self.left * scale_x,
            "offset_y": -self.top * scale_y,
        }

    @property
    def window(self) -> tuple[slice, slice]:
        """(rows, columns) of the image shown."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    @property
    def canvas_size(self) -> tuple[int, int]:
        """(height, width) of the canvas, and of its background image."""
        return self.canvas_height, self.canvas_width

    def display_rows(self) -> np.ndarray:
        """(canvas_height,) int64: the image row under the centre of each canvas row."""
        centres = 2 * np.arange(self.canvas_height, dtype=np.int64) + 1
        return self.top + centres * self.height // (2 * self.canvas_height)

    def display_columns(self) -> np.ndarray:
        """(canvas_width,) int64: the image column under the centre of each canvas column."""
        centres = 2 * np.arange(self.canvas_width, dtype=np.int64) + 1
        return self.left + centres * self.width // (2 * self.canvas_width)

    def token(self) -> str:
        """Short text naming the window and canvas (part of the canvas key: a new view remounts)."""
        return f"{self.top}.{self.left}.{self.height}.{self.width}.{self.canvas_height}.{self.canvas_width}"
