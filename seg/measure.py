"""Per-class and per-object measurements of a segmentation, and their CSV export.

A *class* is a label value 1..K; an *object* is a connected region of one class, with pixels
connected through edges or corners (8-connectivity). Areas are in pixels.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import ndimage

from seg.errors import ImageError, SettingsError, describe_value
from seg.render.overlays import check_labels

__all__ = [
    "BATCH_COLUMNS",
    "COLUMNS",
    "FRAME_COLUMNS",
    "measure",
    "measure_stack",
    "object_sizes",
    "rows_to_csv",
    "size_histogram",
]

COLUMNS: tuple[str, ...] = (
    "class",
    "label",
    "pixels",
    "area_fraction",
    "objects",
    "mean_object_size",
    "median_object_size",
    "max_object_size",
)
#: Columns of :func:`measure_stack` rows: the frame (0-based), then :data:`COLUMNS`.
FRAME_COLUMNS: tuple[str, ...] = ("frame", *COLUMNS)
#: Columns of a batch run's ``measurements.csv``: the image name, then :data:`FRAME_COLUMNS`.
BATCH_COLUMNS: tuple[str, ...] = ("image", *FRAME_COLUMNS)

_EIGHT_CONNECTED = np.ones((3, 3), bool)
# Spreadsheets run a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _check_labels(labels: np.ndarray, ndim: tuple[int, ...]) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in ndim:
        shapes = " or ".join({2: "(H, W)", 3: "(T, H, W)"}[n] for n in ndim)
        raise ImageError(f"labels must be {shapes}, got shape {labels.shape}")
    # The one label-image check: integer or bool, 0..65535 (so a per-label count stays small).
    return check_labels(labels)[0]


def _check_names(class_names: Sequence[str]) -> list[str]:
    if isinstance(class_names, (str, bytes)):
        raise SettingsError(
            f"class_names must be a list of names (one per class), got the single string {describe_value(class_names)}"
        )
    return [str(name) for name in class_names]


def _component_sizes(mask: np.ndarray) -> np.ndarray:
    """Sizes in pixels of the 8-connected regions of a boolean (H, W) mask, in scan order."""
    components, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    if count == 0:
        return np.zeros(0, np.int64)
    return np.bincount(components.ravel(), minlength=count + 1)[1:].astype(np.int64, copy=False)


def object_sizes(labels: np.ndarray, label: int) -> np.ndarray:
    """Sizes of the objects (8-connected regions) of one class.

    Parameters
    ----------
    labels : (H, W) non-negative integer array
    label : int
        The class value whose regions are measured.

    Returns
    -------
    (N,) int64
        One size in pixels per object, in the order their first pixel appears in a row-by-row
        scan; empty when the class is absent.
    """
    labels = _check_labels(labels, (2,))
    return _component_sizes(labels == label)


def measure(labels: np.ndarray, class_names: Sequence[str], *, frame: int | None = None) -> list[dict]:
    """Measure every class of a segmentation: area and objects.

    Parameters
    ----------
    labels : (H, W) non-negative integer array
        0 = unlabelled, ``k`` = class ``class_names[k - 1]``.
    class_names : sequence of K str
        One row per class, absent classes included (with zeros). A label above K that occurs in
        the image gets an extra row named ``"class <label>"`` so no pixel goes unreported.
    frame : int, optional
        When given, each row starts with ``"frame": frame``.

    Returns
    -------
    list of dict
        Keys :data:`COLUMNS` (preceded by ``"frame"`` when given): class name, label, pixels,
        area_fraction (of all pixels of the image, so the fractions of a fully labelled image sum
        to 1), objects (8-connected regions), mean/median/max object size in pixels. Values are
        plain Python ``int`` / ``float`` / ``str``.
    """
    labels = _check_labels(labels, (2,))
    names = _check_names(class_names)
    counts = np.bincount(labels.ravel(), minlength=len(names) + 1)
    extra = [int(label) for label in np.flatnonzero(counts[len(names) + 1 :]) + len(names) + 1]
    total = labels.size
    rows = []
    for label in [*range(1, len(names) + 1), *extra]:
        pixels = int(counts[label])
        sizes = _component_sizes(labels == label) if pixels else np.zeros(0, np.int64)
        row: dict = {} if frame is None else {"frame": int(frame)}
        row.update(
            {
                "class": names[label - 1] if label <= len(names) else f"class {label}",
                "label": label,
                "pixels": pixels,
                "area_fraction": pixels / total if total else 0.0,
                "objects": int(sizes.size),
                "mean_object_size": float(sizes.mean()) if sizes.size else 0.0,
                "median_object_size": float(np.median(sizes)) if sizes.size else 0.0,
                "max_object_size": int(sizes.max()) if sizes.size else 0,
            }
        )
        rows.append(row)
    return rows


def measure_stack(labels: np.ndarray, class_names: Sequence[str]) -> list[dict]:
    """:func:`measure` every frame of a ``(T, H, W)`` label stack (an ``(H, W)`` image is frame 0).

    Returns
    -------
    list of dict
        Frame by frame, one row per class, each starting with ``"frame"`` (0-based).
    """
    labels = _check_labels(labels, (2, 3))
    if labels.ndim == 2:
        labels = labels[None]
    rows = []
    for index, frame_labels in enumerate(labels):
        rows.extend(measure(frame_labels, class_names, frame=index))
    return rows


def _neutralize(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.lstrip(" ").startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def rows_to_csv(rows: Iterable[Mapping[str, object]], *, columns: Sequence[str] = ()) -> str:
    """Measurement rows as CSV text with a header line.

    Parameters
    ----------
    rows : iterable of mappings
        One CSV line each; a missing cell stays empty.
    columns : sequence of str, optional
        The leading header, written even when there are no rows (pass :data:`COLUMNS`,
        :data:`FRAME_COLUMNS` or :data:`BATCH_COLUMNS` so readers always see the same header).
        Keys of the rows not in ``columns`` follow in order of first appearance.

    Returns
    -------
    str
        ``\n``-terminated CSV; the empty string when there are neither rows nor ``columns``.
        Fields are quoted when needed; text starting with ``= + - @``, a tab or a carriage
        return (after optional spaces) is prefixed with ``'`` so spreadsheets show it instead
        of running it.
    """
    rows = list(rows)
    header: dict[str, None] = dict.fromkeys(columns)
    for row in rows:
        header.update(dict.fromkeys(row))
    if not header:
        return ""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_neutralize(str(column)) for column in header])
    for row in rows:
        writer.writerow([_neutralize(row.get(column, "")) for column in header])
    return buffer.getvalue()


def size_histogram(sizes: Sequence[int] | np.ndarray, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of object sizes on logarithmically spaced bins (sizes span orders of magnitude).

    Parameters
    ----------
    sizes : (N,) positive numbers, e.g. from :func:`object_sizes`
    bins : int
        Number of bins, >= 1.

    Returns
    -------
    edges : (bins + 1,) float64
        Geometric from the smallest to the largest size (1 to 2 when there are no sizes; a
        single distinct size ``s`` gets ``s`` to ``s + 1``). The last bin includes its right edge.
    counts : (bins,) int64
        Objects per bin; they sum to N.
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise SettingsError(f"bins must be a positive integer, got {bins!r}")
    values = np.asarray(sizes, dtype=np.float64).ravel()
    if values.size and not (np.isfinite(values).all() and values.min() > 0):
        raise SettingsError("object sizes must be positive finite numbers; pass sizes from object_sizes()")
    low = float(values.min()) if values.size else 1.0
    high = float(values.max()) if values.size else 2.0
    if high <= low:
        high = low + 1.0
    edges = np.geomspace(low, high, int(bins) + 1)
    counts, _ = np.histogram(values, bins=edges)
    return edges, counts.astype(np.int64)
