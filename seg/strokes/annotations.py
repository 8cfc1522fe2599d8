"""The annotation file: :class:`Annotations`, all strokes of one image with its classes.

Saved as versioned JSON (format ``"seg-annotations"``, version 1), read back strictly (at most
``MAX_FILE_STROKES`` strokes, ``MAX_TOTAL_POINTS`` points), rasterised into label images per
frame, and drawn back onto the canvas as Fabric 7 JSON (:meth:`Annotations.to_canvas_json`).

Imported label images (a mask turned into scribbles, :mod:`seg.strokes.masks`) are kept whole,
not as strokes: a mask of many objects would be tens of thousands of strokes. The optional
``"label_images"`` list holds one entry per frame, ``{"frame": t, "dtype": "uint8" | "uint16",
"data": base64 of the zlib-compressed (H, W) array}``; files without imported labels are written
exactly as before. Reading decompresses at most the H * W * itemsize bytes the entry must hold.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seg.errors import AnnotationError, check_keys
from seg.files import is_encodable
from seg.strokes.canvas import MAX_TOTAL_POINTS
from seg.strokes.checks import (
    MAX_IMAGE_PIXELS,
    MAX_JSON_BYTES,
    check_integer,
    check_number,
    check_shape,
    describe_value,
    load_json,
)
from seg.strokes.colors import ERASER_COLOR, normalize_color
from seg.strokes.fit import BackgroundFit
from seg.strokes.masks import under_strokes
from seg.strokes.raster import RasterBudget, rasterize
from seg.strokes.stroke import MAX_LABEL, MAX_STROKE_POINTS, Stroke

FORMAT = "seg-annotations"
FORMAT_VERSION = 1
FABRIC_VERSION = "7.4.0"
# Strokes in one annotation file: each is validated in Python (~60 us of CPU; 100 000 took 19 s
# at load 13 on 2 cores). The count is checked before any stroke is.
MAX_FILE_STROKES = 20_000
# Imported label images, encoded (base64 of zlib): what an annotation file holds beside its strokes
# within MAX_JSON_BYTES. A blob-like 16 MP mask takes about 1 MB; a noise-like one does not compress.
MAX_LABEL_IMAGES_TEXT = 48 * 1024 * 1024


@dataclass
class Annotations:
    """All scribbles of one image, with its classes; saved as a versioned JSON file.

    Attributes
    ----------
    class_names : list of str
        Name of class ``k`` at index ``k - 1``.
    class_colors : list of str
        Colour of each class, normalised to ``"#rrggbb"`` (unique, not :data:`ERASER_COLOR`).
    image_shape : (T, H, W)
        Frames, rows and columns of the full-resolution image.
    strokes : list of Stroke
        In drawing order; labels in 0..K, frames in 0..T-1.
    image_name : str
        Informative name of the annotated image.
    label_images : dict of int -> (H, W) integer array
        Imported label images by frame (0 = unlabelled, 1..K); where a stroke labels a pixel
        too, the stroke wins (an eraser stroke does not erase them). Not part of ``==``
        (compare them with ``numpy.array_equal``).
    """

    class_names: list[str]
    class_colors: list[str]
    image_shape: tuple[int, int, int]
    strokes: list[Stroke] = field(default_factory=list)
    image_name: str = ""
    label_images: dict = field(default_factory=dict, compare=False)  # arrays: == would be ambiguous

    def __post_init__(self) -> None:
        for name in ("class_names", "class_colors", "strokes"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise AnnotationError(f"{name} must be a list, got {describe_value(getattr(self, name))}")
        names, colors = list(self.class_names), list(self.class_colors)
        if len(names) != len(colors):
            raise AnnotationError(f"{len(names)} class names but {len(colors)} class colours")
        if len(names) > MAX_LABEL:
            raise AnnotationError(f"{len(names)} classes, more than {MAX_LABEL}")
        for name in names:
            if not isinstance(name, str) or len(name) > 1000:
                raise AnnotationError(f"class names must be strings, got {describe_value(name)}")
            if not is_encodable(name):
                raise AnnotationError(
                    f"class name {describe_value(name)} is not valid Unicode text (it "
                    "holds a lone surrogate): rename the class"
                )
        colors = [normalize_color(color) for color in colors]
        if ERASER_COLOR in colors:
            raise AnnotationError(f"class colour {ERASER_COLOR} is the eraser's: pick another colour")
        if len(set(colors)) != len(colors):
            raise AnnotationError("two classes share a colour: give every class its own colour")
        shape = self.image_shape
        if not isinstance(shape, (tuple, list)) or len(shape) != 3:
            raise AnnotationError(f"image_shape must be (T, H, W), got {describe_value(shape)}")
        frames = check_integer(shape[0], "image frame count", low=1)
        height, width = check_shape((shape[1], shape[2]))
        if frames * height * width > MAX_IMAGE_PIXELS:
            raise AnnotationError(f"image shape {tuple(shape)} exceeds {MAX_IMAGE_PIXELS} pixels")
        if not isinstance(self.image_name, str) or not is_encodable(self.image_name):
            raise AnnotationError(
                f"image_name must be a string of valid Unicode text, got {describe_value(self.image_name)}"
            )
        strokes = list(self.strokes)
        for stroke in strokes:
            self._check_stroke(stroke, len(names), frames)
        self.class_names, self.class_colors = names, colors
        self.image_shape = (frames, height, width)
        self.strokes = strokes
        if not isinstance(self.label_images, dict):
            raise AnnotationError(
                f"label_images must be a dict frame -> labels, got {describe_value(self.label_images)}"
            )
        self.label_images = {
            check_integer(t, "label image frame", high=frames - 1): self._checked_label_image(image, len(names))
            for t, image in self.label_images.items()
        }

    def _checked_label_image(self, image: Any, classes: int) -> np.ndarray:
        image = np.asarray(image)
        _, height, width = self.image_shape
        if image.shape != (height, width) or image.dtype.kind not in "ui":
            raise AnnotationError(
                f"an imported label image must be an ({height}, {width}) integer array like the image, "
                f"got {image.dtype} {image.shape}"
            )
        top = int(image.max(initial=0))
        if top > classes:
            raise AnnotationError(f"an imported label image holds label {top}, but there are {classes} classes")
        return image.astype(self.label_dtype, copy=False)

    @staticmethod
    def _check_stroke(stroke: Any, classes: int, frames: int) -> None:
        if not isinstance(stroke, Stroke):
            raise AnnotationError(f"strokes must be Stroke objects, got {type(stroke).__name__}")
        if stroke.label > classes:
            raise AnnotationError(f"stroke label {stroke.label} is not a class (labels 0..{classes})")
        if stroke.frame >= frames:
            raise AnnotationError(f"stroke frame {stroke.frame} is outside the image (frames 0..{frames - 1})")

    @property
    def label_dtype(self) -> np.dtype:
        """uint8 for up to 255 classes, else uint16."""
        return np.dtype(np.uint8 if len(self.class_names) <= 255 else np.uint16)

    def color_to_label(self) -> dict[str, int]:
        """Class colour -> label (1..K) for :func:`parse_canvas`."""
        return {color: label for label, color in enumerate(self.class_colors, start=1)}

    def labels(self, frame: int = 0) -> np.ndarray:
        """Label image ``(H, W)`` of one frame (uint8, or uint16 for more than 255 classes)."""
        frames, height, width = self.image_shape
        frame = check_integer(frame, "frame", high=frames - 1)
        return self._with_label_image(
            frame, rasterize(self.strokes, (height, width), frame=frame, dtype=self.label_dtype)
        )

    def _with_label_image(self, frame: int, drawn: np.ndarray) -> np.ndarray:
        imported = self.label_images.get(frame)
        return drawn if imported is None else under_strokes(drawn, imported, self.label_dtype)

    def label_stack(self) -> np.ndarray:
        """Label images of all frames, ``(T, H, W)``."""
        frames, height, width = self.image_shape
        stack = np.zeros((frames, height, width), dtype=self.label_dtype)
        budget = RasterBudget()  # one budget for the whole file, not one per frame
        for frame in sorted({stroke.frame for stroke in self.strokes} | set(self.label_images)):
            drawn = rasterize(self.strokes, (height, width), frame=frame, dtype=self.label_dtype, budget=budget)
            stack[frame] = self._with_label_image(frame, drawn)
        return stack

    def replace_frame(self, frame: int, strokes: Sequence[Stroke]) -> Annotations:
        """A copy whose strokes of ``frame`` are ``strokes`` (e.g. the re-parsed canvas)."""
        frame = check_integer(frame, "frame", high=self.image_shape[0] - 1)
        new = list(strokes)
        for stroke in new:
            if isinstance(stroke, Stroke) and stroke.frame != frame:
                raise AnnotationError(f"a stroke of frame {stroke.frame} was given for frame {frame}")
        kept = [stroke for stroke in self.strokes if stroke.frame != frame]
        return Annotations(
            list(self.class_names),
            list(self.class_colors),
            self.image_shape,
            kept + new,
            self.image_name,
            dict(self.label_images),
        )

    # --- file format -------------------------------------------------------------------------

    def to_json(self) -> str:
        """The annotation file's text (format ``"seg-annotations"``, version 1)."""
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "image_name": self.image_name,
            "image_shape": list(self.image_shape),
            "classes": [{"name": n, "color": c} for n, c in zip(self.class_names, self.class_colors)],
            "strokes": [
                {
                    "kind": s.kind,
                    "label": s.label,
                    "frame": s.frame,
                    "width": s.width,
                    "points": [list(p) for p in s.points],
                }
                for s in self.strokes
            ],
        }
        if self.label_images:
            document["label_images"] = [
                {"frame": t, **_encode_label_image(image)} for t, image in sorted(self.label_images.items())
            ]
        text = json.dumps(document, allow_nan=False, separators=(",", ":"))
        if len(text) > MAX_JSON_BYTES:  # ASCII: characters are bytes
            raise AnnotationError(
                f"the annotations take {len(text) / 2**20:.0f} MB, more than the {MAX_JSON_BYTES / 2**20:.0f} MB "
                "an annotation file may hold (it could not be loaded again): remove imported labels or strokes"
            )
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> Annotations:
        """Read an annotation file written by :meth:`to_json`.

        Raises
        ------
        AnnotationError
            If the text is not UTF-8 JSON of this format and version, exceeds the size limits,
            or holds invalid classes or strokes (labels outside 0..K, frames outside 0..T-1,
            non-finite numbers, too many points).
        """
        if not isinstance(text, (str, bytes)):
            raise AnnotationError(f"an annotation file must be text or bytes, got {type(text).__name__}")
        document = load_json(text, "annotation file")
        if not isinstance(document, dict):
            raise AnnotationError("the annotation file must hold a JSON object")
        check_keys(
            document,
            ("format", "version", "image_shape", "classes", "strokes"),
            ("image_name", "label_images"),
            what="the annotation file",
            error=AnnotationError,
        )
        if document["format"] != FORMAT:
            raise AnnotationError(
                f"not a {FORMAT} file (format {describe_value(document['format'])}): "
                "load an annotation file saved by this app"
            )
        version = document["version"]
        if isinstance(version, bool) or version != FORMAT_VERSION:
            raise AnnotationError(
                f"annotation file version {describe_value(version)} is not supported (expected {FORMAT_VERSION}): "
                "update the app"
            )
        classes = document["classes"]
        if not isinstance(classes, list):
            raise AnnotationError("the annotation file's 'classes' must be a list")
        names, colors = [], []
        for index, entry in enumerate(classes):
            if not isinstance(entry, dict):
                raise AnnotationError(f"class {index + 1} must be an object with 'name' and 'color'")
            check_keys(entry, ("name", "color"), what=f"class {index + 1}", error=AnnotationError)
            names.append(entry["name"])
            colors.append(entry["color"])
        strokes = document["strokes"]
        if not isinstance(strokes, list):
            raise AnnotationError("the annotation file's 'strokes' must be a list")
        if len(strokes) > MAX_FILE_STROKES:
            raise AnnotationError(
                f"the file has {len(strokes):,} strokes, more than {MAX_FILE_STROKES:,}: "
                "split the annotations into several files"
            )
        parsed, total = [], 0
        for index, entry in enumerate(strokes):
            stroke = _stroke_from_dict(entry, f"stroke {index}")
            total += len(stroke.points)
            if total > MAX_TOTAL_POINTS:
                raise AnnotationError(f"the file has more than {MAX_TOTAL_POINTS} stroke points")
            parsed.append(stroke)
        image_shape = document["image_shape"]
        if not isinstance(image_shape, list):
            raise AnnotationError(f"image_shape must be a list [T, H, W], got {describe_value(image_shape)}")
        annotations = cls(names, colors, tuple(image_shape), parsed, document.get("image_name", ""))
        entries = document.get("label_images", [])
        if not isinstance(entries, list) or len(entries) > annotations.image_shape[0]:
            raise AnnotationError(
                f"the annotation file's 'label_images' must be a list of at most one entry per frame, "
                f"got {describe_value(entries)}"
            )
        images = {}
        for index, entry in enumerate(entries):
            what = f"label image {index}"
            check_keys(entry, ("frame", "dtype", "data"), what=what, error=AnnotationError)
            frame = check_integer(entry["frame"], f"{what} frame", high=annotations.image_shape[0] - 1)
            if frame in images:
                raise AnnotationError(f"{what}: frame {frame} has two label images")
            images[frame] = annotations._checked_label_image(
                _decode_label_image(entry, annotations.image_shape[1:], what), len(names)
            )
        annotations.label_images = images
        return annotations

    def to_canvas_json(self, frame: int, fit: BackgroundFit) -> dict:
        """Fabric JSON of one frame's strokes, for the canvas's ``initial_drawing``.

        Paths become ``Path`` objects of ``M``/``L`` commands, lines ``Line`` objects and
        rectangles ``Rect`` objects, all in canvas pixels, centred on their bounds, so that the
        canvas shows them where they were drawn and ``parse_canvas`` gives the same strokes back
        (to rounding). Eraser strokes use :data:`ERASER_COLOR`.
        """
        frames, height, width = self.image_shape
        frame = check_integer(frame, "frame", high=frames - 1)
        if not isinstance(fit, BackgroundFit):
            raise AnnotationError(f"fit must be a BackgroundFit, got {type(fit).__name__}")
        if (fit.natural_width, fit.natural_height) != (width, height):
            raise AnnotationError(
                f"the fit is for a {fit.natural_width}x{fit.natural_height} image but the annotations "
                f"are for {width}x{height} (WxH): build it with BackgroundFit.from_component(d, (H, W))"
            )
        objects = [
            _fabric_object(stroke, fit, self._stroke_color(stroke)) for stroke in self.strokes if stroke.frame == frame
        ]
        return {"version": FABRIC_VERSION, "objects": objects}

    def _stroke_color(self, stroke: Stroke) -> str:
        return ERASER_COLOR if stroke.label == 0 else self.class_colors[stroke.label - 1]


_LABEL_DTYPES = {"uint8": np.uint8, "uint16": np.uint16}


def check_label_images(label_images: Mapping[int, np.ndarray]) -> None:
    """Refuse imported label images (frame -> (H, W) labels) too detailed for an annotation file.

    Raises
    ------
    AnnotationError
        If their encoding takes more than ``MAX_LABEL_IMAGES_TEXT`` (a noise-like or dithered mask
        barely compresses), so that saving the annotations would fail or write a file that cannot
        be loaded again.
    """
    total = sum(len(_encode_label_image(np.asarray(image))["data"]) for image in label_images.values())
    if total > MAX_LABEL_IMAGES_TEXT:
        raise AnnotationError(
            f"the imported labels take {total / 2**20:.0f} MB in an annotation file, more than the "
            f"{MAX_LABEL_IMAGES_TEXT / 2**20:.0f} MB it can hold: import a mask of larger uniform regions "
            "(a noise-like or dithered mask does not compress) or fewer frames"
        )


def _encode_label_image(image: np.ndarray) -> dict:
    """``{"dtype", "data"}`` of a label image: base64 of its zlib-compressed bytes (C order)."""
    data = zlib.compress(np.ascontiguousarray(image).tobytes(), level=6)
    return {"dtype": str(image.dtype), "data": base64.b64encode(data).decode("ascii")}


def _decode_label_image(entry: dict, shape: tuple[int, int], what: str) -> np.ndarray:
    """The (H, W) array of an entry written by :func:`_encode_label_image`, inflating at most
    the bytes it must hold (a zlib bomb stops there)."""
    dtype = _LABEL_DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        raise AnnotationError(f"{what}: dtype must be 'uint8' or 'uint16', got {describe_value(entry['dtype'])}")
    if not isinstance(entry["data"], str):
        raise AnnotationError(f"{what}: data must be base64 text, got {describe_value(entry['data'])}")
    size = int(shape[0]) * int(shape[1]) * np.dtype(dtype).itemsize
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.b64decode(entry["data"], validate=True), size + 1)
    except (binascii.Error, zlib.error, ValueError):
        raise AnnotationError(f"{what}: data is not base64 of zlib-compressed bytes") from None
    if len(raw) != size or not inflater.eof:
        raise AnnotationError(
            f"{what}: data does not hold exactly {shape[0]}x{shape[1]} {entry['dtype']} values: "
            "save the annotations again from the app"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _stroke_from_dict(entry: Any, what: str) -> Stroke:
    """Strictly validate one stroke of an annotation file (numbers must be JSON numbers)."""
    if not isinstance(entry, dict):
        raise AnnotationError(f"{what} must be an object")
    check_keys(entry, ("kind", "label", "frame", "width", "points"), what=what, error=AnnotationError)
    points = entry["points"]
    if not isinstance(points, list):
        raise AnnotationError(f"{what} points must be a list of [x, y]")
    if len(points) > MAX_STROKE_POINTS:
        raise AnnotationError(f"{what} has {len(points)} points, more than {MAX_STROKE_POINTS}")
    for point in points:
        if not isinstance(point, list) or len(point) != 2 or not all(type(v) in (int, float) for v in point):
            raise AnnotationError(f"{what} points must be [x, y] number pairs, got {describe_value(point)}")
    width = check_number(entry["width"], f"{what} width")
    try:
        return Stroke(entry["kind"], entry["label"], points, width, entry["frame"])  # type: ignore[arg-type]
    except AnnotationError as error:
        raise AnnotationError(f"{what}: {error}") from None


def _fabric_object(stroke: Stroke, fit: BackgroundFit, color: str) -> dict:
    """One stroke as a Fabric 7 object in canvas pixels (inverse of the parsers in canvas.py)."""
    xy = fit.image_to_canvas(stroke.xy)
    stroke_width = stroke.width / fit.image_pixels_per_canvas_pixel
    common = {
        "version": FABRIC_VERSION,
        "originX": "center",
        "originY": "center",
        "stroke": color,
        "strokeWidth": stroke_width,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
        "skewX": 0,
        "skewY": 0,
        "flipX": False,
        "flipY": False,
        "opacity": 1,
        "visible": True,
    }
    if stroke.kind == "path":
        if len(xy) == 1:
            xy = np.vstack([xy, xy])  # a dot: zero-length segment, drawn as a disc by round caps
        low, high = xy.min(axis=0), xy.max(axis=0)
        centre, size = (low + high) / 2, high - low
        path = [["M", *xy[0].tolist()]] + [["L", *p] for p in xy[1:].tolist()]
        return {
            **common,
            "type": "Path",
            "left": centre[0],
            "top": centre[1],
            "width": size[0],
            "height": size[1],
            "fill": None,
            "strokeLineCap": "round",
            "strokeLineJoin": "round",
            "path": path,
        }
    if stroke.kind == "line":
        centre = xy.mean(axis=0)
        (x1, y1), (x2, y2) = (xy - centre).tolist()
        return {
            **common,
            "type": "Line",
            "left": centre[0],
            "top": centre[1],
            "width": abs(x2 - x1),
            "height": abs(y2 - y1),
            "x1": x1,
            "y1": y1,
            "x2": x2,
            "y2": y2,
            "fill": color,
            "strokeLineCap": "butt",
        }
    centre = xy.mean(axis=0)
    along, across = xy[1] - xy[0], xy[3] - xy[0]
    if np.any(along != 0):
        angle = math.degrees(math.atan2(along[1], along[0]))
    else:  # zero width: the height direction alone gives the rotation (it is +90 deg from width)
        angle = math.degrees(math.atan2(across[1], across[0])) - 90.0
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    # the stored corners are the border's outer edge: the rectangle itself lies half a stroke inside
    return {
        **common,
        "type": "Rect",
        "left": centre[0],
        "top": centre[1],
        "width": max(float(np.hypot(*along)) - stroke_width, 0.0),
        "height": max(float(np.hypot(*across)) - stroke_width, 0.0),
        "angle": angle,
        "strokeUniform": True,
        "strokeLineJoin": "miter",
        "fill": f"rgba({red},{green},{blue},0.3)",
    }
