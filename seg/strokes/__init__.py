"""Scribbles: canvas drawing JSON -> strokes in image pixels -> label images; annotation files.

The drawing canvas (streamlit-drawable-canvas 0.13, Fabric.js 7) reports every stroke as a Fabric
object in *canvas* pixels. This package turns those objects into :class:`Stroke` s in
*full-resolution image* pixels, rasterises strokes into integer label images, and stores them in a
versioned annotation file (:class:`Annotations`) that can also be drawn back onto the canvas.

Modules
-------
``colors``       colour text -> ``"#rrggbb"`` (:func:`normalize_color`), :data:`ERASER_COLOR`
``fit``          :class:`BackgroundFit`: where the image lies on the canvas, canvas <-> image
``stroke``       the :class:`Stroke` record (and the image coordinate convention)
``canvas``       :func:`parse_canvas`: Fabric 7 JSON -> strokes; :class:`CanvasParser` re-parses
                 only the objects that changed since its last drawing
``paths``        Fabric path commands -> Bezier segments -> flattened polylines
``raster``       :func:`rasterize`: strokes -> label image (the exact pixel rule); :func:`repaint`
                 paints only strokes added since the last label image
``annotations``  :class:`Annotations`: the versioned file, label stacks, back to canvas JSON
``checks``       validators shared by the modules above
``masks``        an existing label/mask image (PNG/TIFF) -> scribbles: :func:`read_mask`,
                 :func:`mask_values`, :func:`mask_to_labels`

Every public name is importable from ``seg.strokes`` itself.

Decisions on doubtful input
---------------------------
* Objects of other types (circle, image, text, polygon, group, ...) are skipped: the app decides
  which tools it offers, and a foreign object must never block labelling.
* Strokes whose colour is not a class colour are skipped: after a class is removed its old strokes
  may stay on the canvas until it is reset. Colours compare after normalisation (see
  :mod:`seg.strokes.colors`).
* Anything else malformed (not JSON, not an object, wrong field types, strings for numbers, NaN or
  infinite values, coordinates beyond ``MAX_COORDINATE``, unsupported path commands, more than the
  limits below) raises :class:`~seg.errors.AnnotationError` naming the object and the field.
* Strokes reaching outside the image are clipped when rasterised.
* Limits bound time and memory: ``MAX_OBJECTS`` objects per drawing, ``MAX_PATH_COMMANDS``
  commands per path, ``MAX_STROKE_POINTS`` points per stroke, ``MAX_TOTAL_POINTS`` per drawing or
  file, ``MAX_JSON_BYTES`` of JSON text holding at most ``MAX_JSON_CONTAINERS`` arrays and objects
  and ``MAX_JSON_ITEMS`` items (counted before parsing), ``MAX_RASTER_WORK`` (segment, row) pairs
  and ``MAX_RASTER_PIXELS`` painted pixels per rasterised frame or file. Beyond them: AnnotationError,
never a long wait.
* :data:`ERASER_COLOR` is reserved: a class may not use it.
"""

from __future__ import annotations

# Re-exports: the public names, and the limits and constants (MAX_*, FLATNESS, ...) that callers
# and tests import from seg.strokes as they did before the module was split.
from seg.strokes.annotations import (
    FABRIC_VERSION,
    FORMAT,
    FORMAT_VERSION,
    MAX_FILE_STROKES,
    MAX_LABEL_IMAGES_TEXT,
    Annotations,
    check_label_images,
)
from seg.strokes.canvas import MAX_OBJECTS, MAX_PATH_COMMANDS, MAX_TOTAL_POINTS, CanvasParser, parse_canvas
from seg.strokes.checks import MAX_COORDINATE, MAX_IMAGE_PIXELS, MAX_JSON_BYTES, MAX_JSON_CONTAINERS, MAX_JSON_ITEMS
from seg.strokes.colors import ERASER_COLOR, normalize_color
from seg.strokes.fit import BackgroundFit
from seg.strokes.masks import MAX_MASK_VALUES, MaskValue, mask_to_labels, mask_values, read_mask, under_strokes
from seg.strokes.paths import FLATNESS, MAX_CURVE_PIECES
from seg.strokes.raster import MAX_RASTER_PIXELS, MAX_RASTER_WORK, MIN_STROKE_RADIUS, RasterBudget, rasterize, repaint
from seg.strokes.stroke import MAX_LABEL, MAX_STROKE_POINTS, STROKE_KINDS, Stroke

__all__ = [
    "ERASER_COLOR",
    "BackgroundFit",
    "Stroke",
    "Annotations",
    "check_label_images",
    "parse_canvas",
    "CanvasParser",
    "rasterize",
    "repaint",
    "normalize_color",
    "read_mask",
    "mask_values",
    "mask_to_labels",
    "under_strokes",
    "MaskValue",
    "FORMAT",
    "FORMAT_VERSION",
    # limits and constants
    "FABRIC_VERSION",
    "MAX_FILE_STROKES",
    "MAX_LABEL_IMAGES_TEXT",
    "MAX_OBJECTS",
    "MAX_PATH_COMMANDS",
    "MAX_TOTAL_POINTS",
    "MAX_COORDINATE",
    "MAX_IMAGE_PIXELS",
    "MAX_JSON_BYTES",
    "MAX_JSON_CONTAINERS",
    "MAX_JSON_ITEMS",
    "FLATNESS",
    "MAX_CURVE_PIECES",
    "MAX_RASTER_WORK",
    "MAX_RASTER_PIXELS",
    "RasterBudget",
    "MIN_STROKE_RADIUS",
    "MAX_LABEL",
    "MAX_STROKE_POINTS",
    "STROKE_KINDS",
    "MAX_MASK_VALUES",
]
