"""Measurements of a segmented volume in physical units: volume per class, 3-D objects.

Volumes are reported in µm³ when the voxel size is in nm or µm, in mm³ when it is in mm or m,
and in voxels³ (the voxel size taken as given) when the unit is unknown. Objects are the
26-connected components of one class (the 3-D analogue of the 8-connected 2-D objects of
:mod:`seg.measure`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from seg.errors import ImageError
from seg.images.volume import check_spacing, convert_length

__all__ = ["volume_unit", "voxel_volume", "measure_volume", "volume_objects"]

_TWENTY_SIX = np.ones((3, 3, 3), bool)


def volume_unit(unit: str | None) -> str:
    """The unit volumes are reported in for a voxel size in ``unit``: "µm³", "mm³" or "voxel³"."""
    if unit in ("nm", "µm"):
        return "µm³"
    if unit in ("mm", "m"):
        return "mm³"
    return "voxel³"


def voxel_volume(spacing: Sequence[float], unit: str | None) -> float:
    """Volume of one voxel in :func:`volume_unit` units."""
    dz, dy, dx = check_spacing(spacing)
    if unit in ("nm", "µm", "mm", "m"):
        target = "µm" if unit in ("nm", "µm") else "mm"
        dz, dy, dx = (convert_length(s, unit, target) for s in (dz, dy, dx))
    return dz * dy * dx


def _check(labels: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise ImageError(f"volume labels must be an integer (Z, Y, X) array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > len(class_names)):
        raise ImageError(f"volume labels must be 0..{len(class_names)} (one per class name)")
    return labels


def measure_volume(
    labels: np.ndarray, class_names: Sequence[str], spacing: Sequence[float], unit: str | None
) -> list[dict]:
    """One row per class: voxels, volume, fraction of the volume, 3-D objects and their volumes.

    Parameters
    ----------
    labels : (Z, Y, X) integer array, values 1..K
    class_names : K names
    spacing : (dz, dy, dx) voxel size in ``unit``
    unit : str or None

    Returns
    -------
    list of dict with keys ``class``, ``name``, ``voxels``, ``volume``, ``volume_unit``,
    ``fraction``, ``objects``, ``mean_object_volume``, ``largest_object_volume``.
    """
    labels = _check(labels, class_names)
    each = voxel_volume(spacing, unit)
    counts = np.bincount(labels.ravel(), minlength=len(class_names) + 1)
    rows = []
    for index, name in enumerate(class_names, start=1):
        objects, count = ndi.label(labels == index, structure=_TWENTY_SIX)
        sizes = np.bincount(objects.ravel())[1:] if count else np.zeros(0, np.int64)
        rows.append(
            {
                "class": index,
                "name": name,
                "voxels": int(counts[index]),
                "volume": float(counts[index] * each),
                "volume_unit": volume_unit(unit),
                "fraction": float(counts[index] / labels.size) if labels.size else 0.0,
                "objects": int(count),
                "mean_object_volume": float(sizes.mean() * each) if count else 0.0,
                "largest_object_volume": float(sizes.max() * each) if count else 0.0,
            }
        )
    return rows


def volume_objects(
    labels: np.ndarray, class_names: Sequence[str], spacing: Sequence[float], unit: str | None
) -> list[dict]:
    """One row per 3-D object (26-connected component) of every class, largest first per class.

    Returns
    -------
    list of dict with keys ``class``, ``name``, ``object``, ``voxels``, ``volume``,
    ``volume_unit``, ``centroid_z``, ``centroid_y``, ``centroid_x`` (voxel coordinates) and
    ``bbox`` ("z0:z1,y0:y1,x0:x1").
    """
    labels = _check(labels, class_names)
    each = voxel_volume(spacing, unit)
    rows = []
    for index, name in enumerate(class_names, start=1):
        objects, count = ndi.label(labels == index, structure=_TWENTY_SIX)
        if not count:
            continue
        sizes = np.bincount(objects.ravel())[1:]
        centroids = ndi.center_of_mass(np.ones(labels.shape, np.float32), objects, range(1, count + 1))
        boxes = ndi.find_objects(objects)
        for number, i in enumerate(np.argsort(-sizes, kind="stable"), start=1):
            box = boxes[i]
            rows.append(
                {
                    "class": index,
                    "name": name,
                    "object": number,
                    "voxels": int(sizes[i]),
                    "volume": float(sizes[i] * each),
                    "volume_unit": volume_unit(unit),
                    "centroid_z": float(centroids[i][0]),
                    "centroid_y": float(centroids[i][1]),
                    "centroid_x": float(centroids[i][2]),
                    "bbox": ",".join(f"{s.start}:{s.stop}" for s in box),
                }
            )
    return rows
