"""Write label images (and probabilities) as an OME-Zarr store, atomically.

Layout of a new store ``out.zarr`` (OME-Zarr 0.4 on Zarr v2, or 0.5 on Zarr v3)::

    out.zarr/                   root group; with probabilities: a multiscale image, axes (c, ...)
      0/                        probabilities float32, one level, a c axis (= class) after t
                              (only with probabilities)
      labels/                   "labels": ["segmentation"]
        segmentation/           multiscales + image-label (class names, colours, pixel counts)
          0/ 1/ 2/ ...          labels uint8/uint16, each level half the previous in y and x

The label image has the source image's axes without ``c`` and its physical scale; level ``k`` is
level ``k - 1`` sampled at every second row and column (nearest neighbour, so every value is a
real class) until the image fits one chunk. Chunks are ``1`` along t and z and
:data:`LABEL_CHUNK` along y and x (1 MiB of uint8), so a viewer streams tiles.

Atomic: everything is written into ``out.zarr.part`` beside the target, and only a finished
store is renamed to ``out.zarr`` (an existing ``out.zarr`` is replaced after that). An interrupted
run leaves at most ``out.zarr.part``, which nothing takes for a complete store and the next run
removes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seg.errors import OmeZarrError
from seg.files import PARTIAL_SUFFIX
from seg.io.ngff import (
    Axis,
    image_label_metadata,
    labels_group_metadata,
    multiscales_metadata,
    with_channel_axis,
)

__all__ = ["LABEL_CHUNK", "LABEL_NAME", "LabelStoreWriter", "pyramid_shapes"]

LABEL_CHUNK = 1024
LABEL_NAME = "segmentation"
_MAX_LEVELS = 12


def pyramid_shapes(shape: Sequence[int], chunk: int = LABEL_CHUNK) -> list[tuple[int, ...]]:
    """Shapes of the pyramid levels of an array whose last two axes are y, x: halved (rounded
    up) until both fit in one ``chunk``; always at least level 0."""
    shapes = [tuple(int(n) for n in shape)]
    while max(shapes[-1][-2:]) > chunk and len(shapes) < _MAX_LEVELS:
        last = shapes[-1]
        shapes.append((*last[:-2], -(-last[-2] // 2), -(-last[-1] // 2)))
    return shapes


def _chunks(shape: Sequence[int], chunk: int) -> tuple[int, ...]:
    return (*(1 for _ in shape[:-2]), *(min(n, chunk) for n in shape[-2:]))


class LabelStoreWriter:
    """Writes one store as the module notes describe; use :meth:`finish` or :meth:`abort`.

    Parameters
    ----------
    out : path
        The store to create (``.zarr`` folder).
    version : {"0.4", "0.5"}
        OME-Zarr version (Zarr v2 or v3).
    axes : sequence of Axis
        Axes of the label image (no ``c``), ending with y, x.
    shape : sequence of int
        Shape of the label image along ``axes``.
    scale : sequence of float
        Physical pixel size of level 0 along ``axes``.
    dtype : numpy dtype
        uint8 or uint16.
    n_classes : int, optional
        With it, a probabilities image ``(c = n_classes, *axes)`` float32 is created at the root.
    inside_image : bool
        ``out`` is the source image's own (local, writable) store: the label image goes to
        ``out/labels/segmentation`` beside the image, nothing is copied. It is written as
        ``labels/segmentation.part``, renamed, and only then listed in the ``labels`` group's
        metadata, so readers never see a partial label image. Not with ``n_classes``.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        *,
        version: str,
        axes: Sequence[Axis],
        shape: Sequence[int],
        scale: Sequence[float],
        dtype: Any,
        n_classes: int | None = None,
        chunk: int = LABEL_CHUNK,
        inside_image: bool = False,
    ) -> None:
        import zarr

        self.out = Path(out)
        self.inside_image = inside_image
        self.target = self.out / "labels" / LABEL_NAME if inside_image else self.out
        self.partial = self.target.with_name(self.target.name + PARTIAL_SUFFIX)
        self.version = version
        self.axes = tuple(axes)
        self.scale = tuple(float(s) for s in scale)
        self.chunk = int(chunk)
        self.zarr_format: Literal[2, 3] = 3 if version == "0.5" else 2
        self.shapes = pyramid_shapes(shape, self.chunk)
        if self.target.exists() and not _looks_like_zarr(self.target):
            raise OmeZarrError(
                f"output {self.target.name!r} exists and is not a Zarr store; choose a new name "
                "ending in .zarr (an existing store of that name would be replaced)"
            )
        if inside_image and n_classes is not None:
            raise OmeZarrError(
                "probabilities cannot be written into the image's store: give "
                "a new --out store (e.g. out.zarr) for --probabilities"
            )
        if self.partial.exists():  # left by an interrupted run
            shutil.rmtree(self.partial)
        if inside_image:
            self.root = zarr.open_group(self.out, mode="r+", zarr_format=self.zarr_format)
            self.label_group = zarr.open_group(self.partial, mode="w", zarr_format=self.zarr_format)
        else:
            self.root = zarr.open_group(self.partial, mode="w", zarr_format=self.zarr_format)
            self.label_group = self.root.create_group("labels").create_group(LABEL_NAME)
        self.levels = [
            self.label_group.create_array(
                str(k),
                shape=level_shape,
                chunks=_chunks(level_shape, self.chunk),
                dtype=dtype,
                fill_value=0,
                **self._dimension_names(self.axes),
            )
            for k, level_shape in enumerate(self.shapes)
        ]
        self.proba = None
        self.proba_channel_axis, self.proba_axes = with_channel_axis(self.axes)
        if n_classes is not None:
            position = self.proba_channel_axis
            shape0 = self.shapes[0]
            self.proba = self.root.create_array(
                "0",
                shape=(*shape0[:position], int(n_classes), *shape0[position:]),
                chunks=_chunks((*shape0[:position], 1, *shape0[position:]), self.chunk),
                dtype=np.float32,
                fill_value=0.0,
                **self._dimension_names(self.proba_axes),
            )

    def _dimension_names(self, axes: Sequence[Axis]) -> dict[str, Any]:
        # Zarr v3 arrays name their dimensions (OME-Zarr 0.5 asks for the axes' names there).
        return {"dimension_names": [axis.name for axis in axes]} if self.zarr_format == 3 else {}

    @property
    def label_array(self) -> Any:
        """Level 0 of the label image (a zarr array) to store the prediction into."""
        return self.levels[0]

    def level_scale(self, level: int) -> tuple[float, ...]:
        """Physical pixel size of pyramid ``level`` (y and x doubled per level)."""
        factor = 2.0**level
        return (*self.scale[:-2], self.scale[-2] * factor, self.scale[-1] * factor)

    def write_pyramid(self, *, scheduler: Any = None) -> None:
        """Fill levels 1.. from the stored level 0 (nearest neighbour), one level at a time."""
        import dask.array as da

        for k in range(1, len(self.levels)):
            previous = da.from_zarr(self.levels[k - 1])
            smaller = previous[..., ::2, ::2].rechunk(self.levels[k].chunks)
            da.store(smaller, self.levels[k], lock=False, scheduler=scheduler)

    def finish(
        self,
        class_names: Sequence[str],
        class_colors: Sequence[str],
        *,
        properties: Sequence[Mapping[str, Any]] | None = None,
    ) -> Path:
        """Write the metadata, then rename the finished store into place; returns its path."""
        paths = [str(k) for k in range(len(self.levels))]
        scales = [self.level_scale(k) for k in range(len(self.levels))]
        label_attrs = multiscales_metadata(self.version, self.axes, paths, scales, name=LABEL_NAME)
        image_label = image_label_metadata(
            self.version,
            class_names,
            class_colors,
            properties=properties,
            source_image="../../" if self.proba is not None or self.inside_image else None,
        )
        if self.version == "0.5":
            label_attrs["ome"]["image-label"] = image_label
        else:
            label_attrs["image-label"] = image_label
        self.label_group.attrs.update(label_attrs)
        if self.inside_image:
            _replace_directory(self.partial, self.target)
            self._list_in_labels_group()  # the last write: only now do readers find the labels
            return self.target
        self.root["labels"].attrs.update(labels_group_metadata(self.version, [LABEL_NAME]))
        if self.proba is None and self.version == "0.5":
            self.root.attrs.update({"ome": {"version": "0.5"}})  # an OME-Zarr group, no image
        if self.proba is not None:
            position = self.proba_channel_axis
            scale = (*self.scale[:position], 1.0, *self.scale[position:])
            self.root.attrs.update(
                multiscales_metadata(
                    self.version,
                    self.proba_axes,
                    ["0"],
                    [scale],
                    name="probabilities",
                    downscale="none",
                    method="one level: class probabilities (float32, c = class)",
                )
            )
        _replace_directory(self.partial, self.out)
        return self.out

    def _list_in_labels_group(self) -> None:
        """Add :data:`LABEL_NAME` to the image's ``labels`` group (created if missing), keeping
        the label images listed there already."""
        import zarr

        group = zarr.open_group(self.out / "labels", mode="a", zarr_format=self.zarr_format)
        attributes = group.attrs.asdict()
        listed = attributes.get("ome", {}) if self.version == "0.5" else attributes
        names = listed.get("labels", []) if isinstance(listed, dict) else []
        names = [n for n in names if isinstance(n, str) and n != LABEL_NAME] + [LABEL_NAME]
        group.attrs.update(labels_group_metadata(self.version, names))

    def abort(self) -> None:
        """Remove the partial store (after a failure)."""
        shutil.rmtree(self.partial, ignore_errors=True)


def _looks_like_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zattrs"))


def _replace_directory(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an existing ``target`` is moved aside first and deleted
    after, so ``target`` is always either the old complete store or the new one."""
    old = None
    if target.exists():
        old = target.with_name(f"{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(source, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
