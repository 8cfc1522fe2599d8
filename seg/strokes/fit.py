"""Where the image lies on the drawing canvas: :class:`BackgroundFit`, canvas <-> image pixels.

The drawing canvas (streamlit-drawable-canvas 0.13, Fabric.js 7) reports strokes in *canvas*
pixels; strokes are kept in *full-resolution image* pixels (see :mod:`seg.strokes.stroke`).

The component draws its background image (``natural_width x natural_height`` pixels, usually a
downscaled display copy of the image) with its top-left corner at ``(offset_x, offset_y)`` and one
background pixel ``scale_x x scale_y`` canvas pixels large (read from its JS bundle: "stretch" uses
``scale = canvas size / natural size`` per axis and offset 0; "contain" uses one scale
``min(canvas_w / natural_w, canvas_h / natural_h)`` and centres the image). With the
full-resolution image ``W x H`` pixels, a canvas point maps to the image as::

    x_image = (x_canvas - offset_x) / scale_x * W / natural_width
    y_image = (y_canvas - offset_y) / scale_y * H / natural_height

:meth:`BackgroundFit.from_component` folds the display-to-full-resolution factor into the scale,
so a :class:`BackgroundFit` always reads ``canvas = offset + scale * image``. Stroke widths scale by
the mean of the two axis factors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from seg.errors import AnnotationError
from seg.strokes.checks import MAX_COORDINATE, check_integer, check_number, check_shape


@dataclass(frozen=True)
class BackgroundFit:
    """Where the full-resolution image lies on the canvas: ``canvas = offset + scale * image``.

    Attributes
    ----------
    natural_width, natural_height : int
        Full-resolution image width ``W`` and height ``H`` in pixels.
    scale_x, scale_y : float
        Canvas pixels per image pixel along x and y (positive).
    offset_x, offset_y : float
        Canvas position of the image's top-left corner.
    """

    natural_width: int
    natural_height: int
    scale_x: float = 1.0
    scale_y: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0

    def __post_init__(self) -> None:
        for name in ("natural_width", "natural_height"):
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            object.__setattr__(
                self, name, check_integer(value, f"background fit {name}", low=1, high=int(MAX_COORDINATE))
            )
        for name in ("scale_x", "scale_y"):
            value = check_number(getattr(self, name), f"background fit {name}", limit=1e6)
            if value <= 1e-6:
                raise AnnotationError(f"background fit {name} must be positive, got {value}")
            object.__setattr__(self, name, value)
        for name in ("offset_x", "offset_y"):
            object.__setattr__(self, name, check_number(getattr(self, name), f"background fit {name}"))

    @classmethod
    def from_component(cls, d: Mapping[str, Any] | None, image_shape: tuple[int, int]) -> BackgroundFit:
        """Build the fit from the canvas component's report and the full-resolution image shape.

        Parameters
        ----------
        d : mapping or None
            ``result.background_fit`` (snake_case keys ``natural_width``, ``scale_x``, ...) or
            the component's session-state ``backgroundFit`` (camelCase ``naturalWidth``,
            ``scaleX``, ...). None (no background reported yet) means the canvas shows the image
            1:1 at its top-left corner.
        image_shape : (H, W)
            Full-resolution image height and width.

        Raises
        ------
        AnnotationError
            On missing or invalid values, or when the background's aspect ratio does not match
            ``image_shape`` (the fit is for another image).
        """
        height, width = check_shape(image_shape)
        if d is None:
            return cls(width, height)
        if not isinstance(d, Mapping):
            raise AnnotationError(f"background fit must be a dict or None, got {type(d).__name__}")
        values = {}
        for snake, camel in (
            ("natural_width", "naturalWidth"),
            ("natural_height", "naturalHeight"),
            ("scale_x", "scaleX"),
            ("scale_y", "scaleY"),
            ("offset_x", "offsetX"),
            ("offset_y", "offsetY"),
        ):
            value = d.get(snake, d.get(camel))
            if value is None:
                raise AnnotationError(f"background fit has no {snake!r} (or {camel!r}) value")
            values[snake] = value
        shown = cls(**values)  # validates the component's own numbers
        # Display copies are rounded per side: allow one pixel of rounding on each axis.
        mismatch = abs(shown.natural_width * height - shown.natural_height * width)
        if mismatch > height + width:
            raise AnnotationError(
                f"the canvas background is {shown.natural_width}x{shown.natural_height} (WxH) but "
                f"the image is {width}x{height}: pass the shape of the image shown on the canvas"
            )
        return cls(
            width,
            height,
            shown.scale_x * shown.natural_width / width,
            shown.scale_y * shown.natural_height / height,
            shown.offset_x,
            shown.offset_y,
        )

    def canvas_to_image(self, xy: np.ndarray) -> np.ndarray:
        """Map canvas points ``(..., 2)`` to image points ``(..., 2)`` (float64)."""
        xy = np.asarray(xy, dtype=np.float64)
        return (xy - (self.offset_x, self.offset_y)) / (self.scale_x, self.scale_y)

    def image_to_canvas(self, xy: np.ndarray) -> np.ndarray:
        """Map image points ``(..., 2)`` to canvas points ``(..., 2)`` (float64)."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy * (self.scale_x, self.scale_y) + (self.offset_x, self.offset_y)

    @property
    def image_pixels_per_canvas_pixel(self) -> float:
        """Factor turning a canvas stroke width into an image stroke width (mean of both axes)."""
        return 0.5 * (1.0 / self.scale_x + 1.0 / self.scale_y)

    def _affine(self) -> np.ndarray:
        """(2, 3) canvas -> image affine matrix."""
        return np.array(
            [
                [1.0 / self.scale_x, 0.0, -self.offset_x / self.scale_x],
                [0.0, 1.0 / self.scale_y, -self.offset_y / self.scale_y],
            ]
        )
