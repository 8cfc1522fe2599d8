"""Test helpers: OME-Zarr images written by hand from the spec (independent of seg's writer)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

UNITS = {"t": "second", "c": None, "z": "micrometer", "y": "micrometer", "x": "micrometer"}


def write_ome_zarr(
    path: Path,
    levels: Sequence[np.ndarray],
    axes: str,
    *,
    version: str = "0.4",
    chunks: Sequence[int] | None = None,
    scale0: Sequence[float] | None = None,
) -> Path:
    """Write an OME-Zarr image group: ``levels[k]`` at dataset path ``str(k)``.

    Level k's scale is ``scale0`` with y and x multiplied by 2**k.
    """
    import zarr

    zarr_format = 3 if version == "0.5" else 2
    group = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    scale0 = list(scale0) if scale0 is not None else [1.0] * len(axes)
    datasets = []
    for k, data in enumerate(levels):
        array = group.create_array(
            str(k), shape=data.shape, dtype=data.dtype, chunks=tuple(chunks) if chunks is not None else data.shape
        )
        array[...] = data
        scale = [s * (2**k if name in "yx" else 1) for s, name in zip(scale0, axes)]
        datasets.append({"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    kinds = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
    multiscale = {
        "axes": [{"name": a, "type": kinds[a], **({"unit": UNITS[a]} if UNITS[a] else {})} for a in axes],
        "datasets": datasets,
    }
    if version == "0.5":
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    else:
        group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
    return path


def set_attributes(path: Path, version: str, attributes: dict) -> None:
    """Replace the group's attributes with ``attributes`` (raw, for hostile-metadata tests)."""
    import json

    if version == "0.5":
        document = json.loads((path / "zarr.json").read_text())
        document["attributes"] = attributes
        (path / "zarr.json").write_text(json.dumps(document))
    else:
        (path / ".zattrs").write_text(json.dumps(attributes))
