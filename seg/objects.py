"""Objects of one class: instance labels from a prediction, and a table of their measurements.

:func:`segment_objects` turns a ``(H, W, K)`` probability map or an ``(H, W)`` label image into
instance labels of one class: threshold (or argmax), label the 8-connected components, optionally
split touching objects with a distance-transform watershed seeded from the distance maxima, fill
each object's holes, and drop objects under ``min_size`` pixels. :func:`measure_objects` measures each
instance with :func:`skimage.measure.regionprops_table` and returns a pandas DataFrame.

Why the watershed runs component by component (on each component's bounding box plus one pixel)
and not on the whole frame: the result is the same, and memory is bounded by the largest object
rather than by the frame. The Euclidean distance of a pixel of component ``C`` to the nearest
pixel outside the class mask is never attained at a pixel of another component (the straight
digital path to such a pixel leaves ``C`` through a background pixel first, which is nearer), and
that background pixel lies within one pixel of ``C``'s box; distance maxima and flooding never
cross into another component, since 8-connected components do not touch. The whole-frame
reference (``watershed(-edt(mask), peak_local_max(...))``) is kept in the tests and equals this,
except where equally high distance maxima closer than ``min_distance`` compete (the ridge of a
ring): which one seeds depends on ``peak_local_max``'s unstable sort, in the reference as here.
Components too small to split and without holes skip the per-object work altogether, so a frame
of 28,000 specks takes under a second instead of a Python step per object.

Tiles: a frame predicted in tiles (:mod:`seg.tiling`) gives the same label image as an untiled
one, and objects are found on that whole label image after prediction, so objects crossing tile
borders are the same objects, split the same way (this function is deterministic).

Memory: the frame's class mask (1 byte per pixel), its component labels and the instance labels
(4 bytes per pixel each), the hole search's background labels (4 bytes per pixel, transient),
plus the distance transform of one object's box at a time.
"""

from __future__ import annotations

import numbers
import re
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from seg.errors import ImageError, SettingsError, is_whole_number

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_MIN_DISTANCE",
    "DEFAULT_MIN_SIZE",
    "class_mask",
    "instance_tiff_bytes",
    "measure_objects",
    "object_columns",
    "object_rows",
    "objects_csv",
    "objects_of_stack",
    "segment_objects",
]

DEFAULT_MIN_DISTANCE: int = 5
DEFAULT_MIN_SIZE: int = 10

_EIGHT = np.ones((3, 3), dtype=bool)
_UNIT = re.compile(r"^[A-Za-zµ]{1,8}$")


def _check_int(name: str, value: object, low: int, hint: str) -> int:
    if not is_whole_number(value, low):
        raise SettingsError(f"{name} must be a whole number >= {low}, got {value!r}: {hint}")
    return int(value)


def class_mask(proba_or_labels: np.ndarray, class_label: int, *, threshold: float | None = None) -> np.ndarray:
    """Pixels of one class: ``(H, W)`` bool.

    Parameters
    ----------
    proba_or_labels : (H, W, K) float array or (H, W) integer array
        Class probabilities (last axis = classes 1..K), or a label image (0 = unlabelled, 1..K).
    class_label : int
        The class, 1..K, as in label images.
    threshold : float, optional
        Only for probabilities: pixels whose probability of the class is at least ``threshold``.
        Default: pixels where the class is the most probable (argmax, as ``Model.predict``).
    """
    data = np.asarray(proba_or_labels)
    label = _check_int("class_label", class_label, 1, "classes are numbered 1..K as in label images")
    if data.ndim == 3:
        if data.dtype.kind != "f":
            raise ImageError(f"a probability map must be float (H, W, K), got dtype {data.dtype}")
        n_classes = data.shape[-1]
        if label > n_classes:
            raise SettingsError(
                f"class_label {label} is out of range: the probability map has {n_classes} "
                f"classes, numbered 1..{n_classes}"
            )
        if threshold is None:
            return np.argmax(data, axis=-1) == label - 1
        if not (isinstance(threshold, numbers.Real) and 0.0 <= float(threshold) <= 1.0):
            raise SettingsError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
        return data[..., label - 1] >= float(threshold)
    if data.ndim == 2:
        if data.dtype == bool:
            data = data.view(np.uint8)
        if data.dtype.kind not in "ui":
            raise ImageError(f"a label image must be an integer (H, W) array, got dtype {data.dtype}")
        if threshold is not None:
            raise SettingsError(
                "threshold applies to probability maps only; a label image is already thresholded: leave threshold=None"
            )
        return data == label
    raise ImageError(
        f"segment_objects needs a (H, W, K) probability map or an (H, W) label image, got shape {data.shape}"
    )


def _split(component: np.ndarray, min_distance: int) -> tuple[np.ndarray, int]:
    """Watershed of one component's ``(h, w)`` bool box: (int32 labels 1..n, n)."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    distance = ndi.distance_transform_edt(component)
    peaks = peak_local_max(distance, min_distance=min_distance, labels=component.astype(np.uint8), exclude_border=False)
    if len(peaks) <= 1:
        return component.astype(np.int32), 1
    markers = np.zeros(component.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    return watershed(-distance, markers, mask=component, connectivity=2).astype(np.int32), len(peaks)


def _fill_part_holes(parts: np.ndarray, n_parts: int, *, background: np.ndarray) -> None:
    """Give each part the background it encloses on its own (in place).

    Background enclosed only by several touching parts (the gap between three touching disks)
    stays background: filling it first would make it a part of its own.
    """
    for part in range(1, n_parts + 1):
        holes = ndi.binary_fill_holes(parts == part) & background
        parts[holes] = part


def _drop_small(instances: np.ndarray, min_size: int) -> np.ndarray:
    """Objects under ``min_size`` pixels become 0; the rest are renumbered 1..N in order."""
    from skimage.segmentation import relabel_sequential

    if min_size > 1:
        sizes = np.bincount(instances.ravel())
        small = sizes < min_size
        small[0] = False
        if small.any():
            instances[small[instances]] = 0
    return relabel_sequential(instances)[0].astype(np.int32, copy=False)


def segment_objects(
    proba_or_labels: np.ndarray,
    class_label: int,
    *,
    split: bool = True,
    min_distance: int = DEFAULT_MIN_DISTANCE,
    min_size: int = DEFAULT_MIN_SIZE,
    fill_holes: bool = True,
    threshold: float | None = None,
) -> np.ndarray:
    """Instance labels of one class: each object gets its own number.

    Parameters
    ----------
    proba_or_labels : (H, W, K) float array or (H, W) integer array
        Class probabilities (``Model.predict_proba``) or a label image (``Model.predict``).
    class_label : int
        The class whose objects are wanted, 1..K as in label images.
    split : bool
        Split touching objects: a watershed of the distance to the object's edge, seeded at the
        distance maxima (:func:`skimage.feature.peak_local_max`), so two overlapping disks become
        two objects. Off: every 8-connected region is one object. Limit: three disks that
        overlap each other with centres closer than about 1.8 radii have their deepest point
        between the centres, which becomes an extra object.
    min_distance : int
        Seeds are at least this many pixels apart (>= 1); objects whose centres are closer stay
        one. About the radius of the smallest object to separate.
    min_size : int
        Objects (before and after splitting) smaller than this many pixels are removed (0 or 1
        keeps all).
    fill_holes : bool
        Background enclosed by one object becomes part of it (after splitting: the gap between
        three touching objects stays background).
    threshold : float, optional
        With probabilities: a pixel belongs to the class when its probability is at least this,
        instead of when the class is the most probable.

    Returns
    -------
    (H, W) int32
        0 = background, objects numbered 1..N: connected regions in row-by-row order of their
        first pixel, the parts of a split region one after the other.

    Raises
    ------
    ImageError
        Not a (H, W, K) float or (H, W) integer array.
    SettingsError
        ``class_label`` out of range, or a bad ``min_distance``, ``min_size`` or ``threshold``.
    """
    mask = class_mask(proba_or_labels, class_label, threshold=threshold)
    min_distance = _check_int(
        "min_distance",
        min_distance,
        1,
        "give the smallest distance in pixels between the centres of two objects to separate",
    )
    min_size = _check_int("min_size", min_size, 0, "give the smallest object size in pixels to keep")
    components, count = ndi.label(mask, structure=_EIGHT)
    del mask
    components = components.astype(np.int32, copy=False)
    if min_size > 1:
        components = _drop_small(components, min_size)
        count = int(components.max(initial=0))
    if count == 0 or not (split or fill_holes):
        return components
    boxes = ndi.find_objects(components)
    needy = _needing_work(components, boxes, min_distance if split else None, fill_holes)
    instances = np.zeros(components.shape, np.int32)
    height, width = components.shape
    extras = np.zeros(count + 1, np.int64)  # parts beyond the first, per component
    extra_before = 0
    for index in needy:
        box = boxes[index - 1]
        rows = slice(max(box[0].start - 1, 0), min(box[0].stop + 1, height))
        cols = slice(max(box[1].start - 1, 0), min(box[1].stop + 1, width))
        around = components[rows, cols]
        component = around == index
        parts, n_parts = _split(component, min_distance) if split else (component.astype(np.int32), 1)
        if fill_holes:
            _fill_part_holes(parts, n_parts, background=around == 0)
        view = instances[rows, cols]
        inside = parts > 0
        view[inside] = parts[inside] + (index - 1 + extra_before)
        extras[index] = n_parts - 1
        extra_before += n_parts - 1
    # Every other component is one object, numbered after the parts of the components before it.
    numbers = (np.arange(count + 1, dtype=np.int64) + np.cumsum(extras)).astype(np.int32)
    numbers[0] = 0
    numbers[needy] = 0
    instances += numbers[components]
    return _drop_small(instances, min_size)


def _needing_work(components: np.ndarray, boxes: list, min_distance: int | None, fill_holes: bool) -> np.ndarray:
    """Sorted labels of the components that may split or have holes; the rest stay as they are.

    A component whose box has no side longer than ``min_distance`` has at most one seed
    (``peak_local_max`` keeps one of any two peaks within ``min_distance``, Chebyshev), so it
    cannot split. A hole (background not connected to the frame border) is enclosed by exactly
    one 8-connected component, the one it touches. Skipping the others keeps frames of many small
    objects linear in the pixels instead of a Python step per object.
    """
    needy = np.zeros(len(boxes) + 1, bool)
    if min_distance is not None:
        sides = np.array([[b[0].stop - b[0].start, b[1].stop - b[1].start] for b in boxes]).reshape(-1, 2)
        needy[1:] = sides.max(axis=1) > min_distance
    if fill_holes:
        background, count = ndi.label(components == 0)
        # Background regions touching the frame border are not holes (a lookup table, not
        # skimage's clear_border, which copies the label image: 4 more bytes per pixel).
        is_hole = np.ones(count + 1, bool)
        is_hole[0] = False
        for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
            is_hole[edge] = False
        holes = is_hole[background]
        del background
        if holes.any():
            needy[np.unique(components[ndi.binary_dilation(holes, structure=_EIGHT)])] = True
    needy[0] = False
    return np.flatnonzero(needy)


# --------------------------------------------------------------------------- measurements

# regionprops_table property -> our column name(s); multi-valued properties are split per axis.
_PROPERTIES = ("label", "area", "centroid", "bbox", "perimeter", "equivalent_diameter_area", "eccentricity", "solidity")
_RENAMES = {
    "centroid-0": "centroid_y",
    "centroid-1": "centroid_x",
    "bbox-0": "bbox_top",
    "bbox-1": "bbox_left",
    "bbox-2": "bbox_bottom",
    "bbox-3": "bbox_right",
    "equivalent_diameter_area": "equivalent_diameter",
}
# Columns that scale with the pixel size, and the power of the unit.
_LENGTHS = {"area": 2, "centroid_y": 1, "centroid_x": 1, "perimeter": 1, "equivalent_diameter": 1}


def _check_instances(instances: np.ndarray) -> np.ndarray:
    instances = np.asarray(instances)
    if instances.ndim != 2 or instances.dtype.kind not in "ui":
        raise ImageError(
            f"instances must be an (H, W) integer label image (0 = background), got {instances.dtype} {instances.shape}"
        )
    if instances.size and instances.dtype.kind == "i" and int(instances.min()) < 0:
        raise ImageError(f"instances contain negative value {int(instances.min())}; labels must be >= 0")
    return instances


def _intensity(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[:2] != shape:
        raise ImageError(f"image must be (H, W) or (H, W, C) of the instances' size {shape}, got shape {image.shape}")
    if image.dtype.kind not in "uif":
        raise ImageError(f"image must be numeric, got dtype {image.dtype}")
    return image


def _class_probability(proba: np.ndarray, shape: tuple[int, int], class_label: int | None) -> np.ndarray:
    proba = np.asarray(proba)
    if proba.ndim == 3:
        if class_label is None:
            raise SettingsError(
                "proba is a (H, W, K) map: give class_label (1..K) to say which class's "
                "probability to average, or pass that class's (H, W) map"
            )
        label = _check_int("class_label", class_label, 1, "classes are numbered 1..K")
        if label > proba.shape[-1]:
            raise SettingsError(f"class_label {label} is out of range for {proba.shape[-1]} classes")
        proba = proba[..., label - 1]
    if proba.shape != shape or (proba.dtype.kind != "f" and proba.dtype != np.uint8):
        raise ImageError(
            f"proba must be float or uint8 (H, W) or (H, W, K) of the instances' size {shape}, "
            f"got {proba.dtype} {proba.shape}"
        )
    return proba


def measure_objects(
    instances: np.ndarray,
    image: np.ndarray | None = None,
    proba: np.ndarray | None = None,
    pixel_size: float | None = None,
    *,
    class_label: int | None = None,
    unit: str = "um",
) -> pd.DataFrame:
    """Measure every object of an instance label image.

    Parameters
    ----------
    instances : (H, W) integer array
        0 = background, objects 1..N (e.g. from :func:`segment_objects`).
    image : (H, W) or (H, W, C) array, optional
        Adds the mean, minimum and maximum intensity of each channel over each object
        (``intensity_mean_c0``, ``intensity_min_c0``, ``intensity_max_c0``, ...).
    proba : (H, W) or (H, W, K) float array, optional
        Adds ``probability_mean``, the mean probability of the object's class over the object;
        with a (H, W, K) map, ``class_label`` says which class. A uint8 map holds 0..255 for
        0..1 (:func:`seg.tiling.quantize_probabilities`).
    pixel_size : float, optional
        Side of one pixel in ``unit``; adds physical columns named with their unit:
        ``area_<unit>2``, ``centroid_y_<unit>``, ``centroid_x_<unit>``, ``perimeter_<unit>``,
        ``equivalent_diameter_<unit>``.
    class_label : int, optional
        Class of the objects in a (H, W, K) ``proba``.
    unit : str
        Name of the physical unit (1-8 letters, e.g. "um", "nm", "mm").

    Returns
    -------
    pandas.DataFrame
        One row per object, ordered by label, columns ``label``, ``area`` (pixels),
        ``centroid_y``, ``centroid_x`` (row, column in pixels), ``bbox_top``, ``bbox_left``,
        ``bbox_bottom``, ``bbox_right`` (pixels, bottom/right exclusive), ``perimeter``
        (pixels), ``equivalent_diameter`` (pixels, of the disk with the same area),
        ``eccentricity`` (0 = circle .. 1), ``solidity`` (area / convex hull area), then the
        optional columns above. ``df.attrs["units"]`` maps every column to its unit ("px",
        "px2", "um", "um2" or "" for ratios, intensities and probabilities). The columns are
        the same when there are no objects.
    """
    import pandas as pd
    from skimage.measure import regionprops_table

    instances = _check_instances(instances)
    shape = instances.shape
    intensity = None if image is None else _intensity(image, shape)
    class_proba = None if proba is None else _class_probability(proba, shape, class_label)
    if pixel_size is not None and not (
        isinstance(pixel_size, numbers.Real) and np.isfinite(pixel_size) and pixel_size > 0
    ):
        raise SettingsError(f"pixel_size must be a positive number (the side of a pixel in {unit}), got {pixel_size!r}")
    if not isinstance(unit, str) or not _UNIT.match(unit):
        raise SettingsError(f"unit must be 1-8 letters such as 'um' or 'nm', got {unit!r}")

    inverse = None
    if int(instances.max(initial=0)) > instances.size:
        # Sparse label values (e.g. 2**40): regionprops would allocate one slot per value.
        from skimage.segmentation import relabel_sequential

        instances, _, inverse = relabel_sequential(instances)
    table = regionprops_table(instances, properties=_PROPERTIES)
    columns = {_RENAMES.get(name, name): values for name, values in table.items()}
    if inverse is not None:
        columns["label"] = np.asarray(inverse[np.asarray(columns["label"])], np.int64)
    units = {name: "px" for name in columns}
    units.update(label="", area="px2", eccentricity="", solidity="")
    if intensity is not None:
        stats = regionprops_table(
            instances, intensity_image=intensity, properties=("intensity_mean", "intensity_min", "intensity_max")
        )
        for name, values in stats.items():
            stat, _, channel = name.partition("-")
            column = f"{stat}_c{channel or 0}"
            columns[column] = values
            units[column] = ""
    if class_proba is not None:
        stats = regionprops_table(instances, intensity_image=class_proba, properties=("intensity_mean",))
        scale = 1.0 / 255.0 if class_proba.dtype == np.uint8 else 1.0
        columns["probability_mean"] = np.asarray(stats["intensity_mean"], np.float64) * scale
        units["probability_mean"] = ""
    if pixel_size is not None:
        for name, power in _LENGTHS.items():
            column = f"{name}_{unit}{'2' if power == 2 else ''}"
            columns[column] = np.asarray(columns[name], np.float64) * float(pixel_size) ** power
            units[column] = f"{unit}{'2' if power == 2 else ''}"
    frame = pd.DataFrame(columns)
    frame["label"] = frame["label"].astype(np.int64)
    frame["area"] = frame["area"].astype(np.int64)
    frame.attrs["units"] = units
    return frame


def instance_tiff_bytes(instances: np.ndarray) -> bytes:
    """An instance label image (or (T, H, W) stack) as a TIFF: 16-bit, 32-bit above 65,535 objects."""
    import io

    import tifffile

    instances = np.asarray(instances)
    dtype = np.uint16 if int(instances.max(initial=0)) <= np.iinfo(np.uint16).max else np.uint32
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, instances.astype(dtype, copy=False), compression="zlib")
    return buffer.getvalue()


def object_rows(table: pd.DataFrame, *, image: str, frame: int) -> list[dict]:
    """Rows of an objects CSV: ``image``, ``frame``, ``object`` (the instance label), then the
    measurements of :func:`measure_objects`, as plain Python values."""
    measurements = [column for column in table.columns if column != "label"]
    rows = []
    for record in table.to_dict("records"):
        row: dict = {"image": str(image), "frame": int(frame), "object": int(record["label"])}
        row.update({column: _plain(record[column]) for column in measurements})
        rows.append(row)
    return rows


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def objects_csv(rows: list[dict], columns: list[str]) -> str:
    """CSV text of :func:`object_rows` (header ``image, frame, object, <columns>`` even with no
    rows); ``columns`` are a :func:`measure_objects` table's columns."""
    from seg.measure import rows_to_csv

    header = ["image", "frame", "object", *(column for column in columns if column != "label")]
    return rows_to_csv(rows, columns=header)


def object_columns(
    n_channels: int | None, *, probability: bool, pixel_size: float | None = None, unit: str = "um"
) -> list[str]:
    """The columns :func:`measure_objects` gives for these arguments (with or without objects):
    an image of ``n_channels`` channels (None: no image), a class probability or not."""
    empty = np.zeros((1, 1), np.int32)
    image = None if n_channels is None else np.zeros((1, 1, n_channels), np.float32)
    proba = np.zeros((1, 1), np.float32) if probability else None
    return list(measure_objects(empty, image=image, proba=proba, pixel_size=pixel_size, unit=unit).columns)


def objects_of_stack(
    name: str,
    labels: np.ndarray,
    class_label: int,
    *,
    image: np.ndarray | None = None,
    proba: np.ndarray | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Objects of one class in every frame of a label stack, and their CSV rows.

    Parameters
    ----------
    name : str
        The image's name in the ``image`` column.
    labels : (T, H, W) integer array
        Predicted labels 1..K (the same whether the frames were predicted whole or in tiles).
    class_label : int
        The class, 1..K.
    image : (T, H, W, C) array, optional
        Adds intensities per channel.
    proba : (T, H, W, K) float array, optional
        Adds ``probability_mean``.

    Returns
    -------
    instances : (T, H, W) int32
        Objects numbered from 1 in each frame (:func:`segment_objects` with its defaults).
    rows : list of dict
        :func:`object_rows` of every frame, frame by frame.
    """
    instances = np.zeros(labels.shape, np.int32)
    rows: list[dict] = []
    for t in range(labels.shape[0]):
        instances[t] = segment_objects(labels[t], class_label)
        table = measure_objects(
            instances[t],
            image=None if image is None else np.asarray(image[t]),
            proba=None if proba is None else proba[t],
            class_label=class_label,
        )
        rows.extend(object_rows(table, image=name, frame=t))
    return instances, rows
