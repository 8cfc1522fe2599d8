"""OME-Zarr (OME-NGFF) metadata: strict parsing of an image's ``multiscales``, and building the
``multiscales``, ``labels`` and ``image-label`` metadata of the label images seg writes.

Versions 0.4 (Zarr v2: attributes in ``.zattrs``, ``"version"`` inside each multiscale) and 0.5
(Zarr v3: attributes under ``"ome"`` in ``zarr.json``, ``"version"`` there) are read and written;
the spec's names are used as they are (https://ngff.openmicroscopy.org/0.4/ and /0.5/).

The metadata of a store is untrusted: every value read here is type-checked and bounded (numbers
of multiscales, datasets and axes, lengths of names and units, scale factors finite and > 0,
dataset paths made of plain path segments) and anything else raises :class:`OmeZarrError` naming
the key, the value and what seg accepts. Only the axis names ``t``, ``c``, ``z``, ``y``, ``x`` are
accepted (each at most once, ``y`` and ``x`` last), the ones every OME-Zarr writer uses.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seg.errors import OmeZarrError, describe_value

__all__ = [
    "VERSIONS",
    "MAX_METADATA_BYTES",
    "Axis",
    "Multiscale",
    "parse_json",
    "parse_multiscale",
    "ome_attributes",
    "multiscales_metadata",
    "image_label_metadata",
    "labels_group_metadata",
    "with_channel_axis",
]

VERSIONS = ("0.4", "0.5")
MAX_METADATA_BYTES = 1 << 20  # one JSON document (zarr.json / .zattrs / .zarray); real ones are < 10 kB
_MAX_MULTISCALES = 16
_MAX_DATASETS = 32
_MAX_TEXT = 64
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")


@dataclass(frozen=True)
class Axis:
    """One axis of an image: ``name`` in t, c, z, y, x; ``unit`` as the store gives it or None."""

    name: str
    unit: str | None = None

    @property
    def type(self) -> str:
        """The spec's axis type: "time", "channel" or "space"."""
        return _AXIS_TYPES[self.name]


@dataclass(frozen=True)
class Multiscale:
    """The first multiscale image of a group, validated.

    Attributes
    ----------
    version : {"0.4", "0.5"}
    axes : tuple of Axis
        In array order, e.g. ``(c, y, x)``.
    paths : tuple of str
        Dataset paths, level 0 (full resolution) first.
    scales : tuple of tuple of float
        Physical size of one pixel along each axis, per level (dataset scale times the
        multiscale-wide scale, when there is one).
    name : str or None
    """

    version: str
    axes: tuple[Axis, ...]
    paths: tuple[str, ...]
    scales: tuple[tuple[float, ...], ...]
    name: str | None = None

    @property
    def axis_names(self) -> str:
        """Axis names as one string, e.g. ``"cyx"``."""
        return "".join(axis.name for axis in self.axes)


def _fail(what: str, value: Any, expected: str) -> OmeZarrError:
    return OmeZarrError(
        f"OME-Zarr metadata {what} is {describe_value(value)}; seg expects {expected}. The store was not written "
        "by an OME-Zarr writer or is damaged: re-export it (e.g. with ome-zarr-py or bioformats2raw)"
    )


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object from untrusted bytes of at most :data:`MAX_METADATA_BYTES`.

    NaN/Infinity, non-objects, undecodable text and absurd nesting raise :class:`OmeZarrError`.
    """
    if len(data) > MAX_METADATA_BYTES:
        raise OmeZarrError(
            f"OME-Zarr metadata {what} is {len(data):,} bytes or more, above the limit of "
            f"{MAX_METADATA_BYTES:,}; real metadata is a few kB, so this store is refused"
        )
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise OmeZarrError(
            f"OME-Zarr metadata {what} is not valid JSON ({type(exc).__name__}); the store is damaged"
        ) from None
    if not isinstance(value, dict):
        raise _fail(what, type(value).__name__, "a JSON object")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT:
        raise _fail(what, value, f"a string of 1 to {_MAX_TEXT} characters")
    return value


def _list(value: Any, what: str, most: int) -> list:
    if not isinstance(value, list) or not 0 < len(value) <= most:
        raise _fail(
            what, value if not isinstance(value, list) else f"a list of {len(value)}", f"a list of 1 to {most} items"
        )
    return value


def _scale(value: Any, what: str, ndim: int) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != ndim:
        raise _fail(what, value, f"a list of {ndim} numbers (one per axis)")
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise _fail(what, value, "numbers")
        number = float(item)
        if not math.isfinite(number) or number <= 0:
            raise _fail(what, value, "finite numbers > 0")
        numbers.append(number)
    return tuple(numbers)


def _transform_scale(transforms: Any, what: str, ndim: int) -> tuple[float, ...]:
    """The ``scale`` of a coordinateTransformations list (translations are allowed and unused)."""
    transforms = _list(transforms, what, 2)
    scale: tuple[float, ...] | None = None
    for transform in transforms:
        if not isinstance(transform, dict):
            raise _fail(what, transform, "objects with a 'type'")
        kind = transform.get("type")
        if kind == "scale":
            scale = _scale(transform.get("scale"), f"{what} scale", ndim)
        elif kind == "translation":
            _check_translation(transform.get("translation"), f"{what} translation", ndim)
        else:
            raise _fail(f"{what} type", kind, "'scale' or 'translation'")
    if scale is None:
        raise _fail(what, transforms, "a 'scale' transformation")
    return scale


def _check_translation(value: Any, what: str, ndim: int) -> None:
    if (
        not isinstance(value, list)
        or len(value) != ndim
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise _fail(what, value, f"a list of {ndim} finite numbers")


def _axes(value: Any) -> tuple[Axis, ...]:
    items = _list(value, "'axes'", 5)
    axes = []
    for item in items:
        name: Any
        unit: str | None
        if isinstance(item, str):  # allowed by 0.3; kept readable
            name, unit = item, None
        elif isinstance(item, dict):
            name = item.get("name")
            unit = item.get("unit")
            if unit is not None:
                unit = _text(unit, f"unit of axis {name!r}")
            kind = item.get("type")
            if kind is not None and name in _AXIS_TYPES and kind != _AXIS_TYPES[name]:
                raise _fail(f"type of axis {name!r}", kind, repr(_AXIS_TYPES[name]))
        else:
            raise _fail("an axis", item, "an object with a 'name'")
        if name not in _AXIS_TYPES:
            raise _fail("an axis name", name, "one of t, c, z, y, x")
        axes.append(Axis(name, unit))
    names = "".join(axis.name for axis in axes)
    if len(set(names)) != len(names) or not names.endswith("yx"):
        raise _fail("'axes'", names, "distinct names ending with y, x (e.g. 'tczyx', 'cyx', 'yx')")
    return tuple(axes)


def _dataset_path(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise _fail("a dataset 'path'", value, "a relative path such as '0'")
    if not all(_PATH_SEGMENT.fullmatch(part) for part in value.split("/")):
        raise _fail("a dataset 'path'", value, "plain path segments (letters, digits, _ . -), no '..'")
    return value


def ome_attributes(attributes: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """``(version, OME attributes)`` of a group's attributes, for 0.4 and 0.5 layouts.

    0.5 keeps everything under ``attributes["ome"]`` with ``"version"`` there; 0.4 keeps
    ``multiscales`` etc. at the top, with the version inside each multiscale.
    """
    ome = attributes.get("ome")
    if ome is not None:
        if not isinstance(ome, dict):
            raise _fail("'ome'", ome, "an object")
        version = ome.get("version")
        if version not in VERSIONS:
            raise _fail("'ome' 'version'", version, "'0.5' (or a 0.4 store)")
        return str(version), ome
    multiscales = attributes.get("multiscales")
    if isinstance(multiscales, list) and multiscales and isinstance(multiscales[0], dict):
        version = multiscales[0].get("version", "0.4")
        if version != "0.4":
            raise _fail("'multiscales' 'version'", version, "'0.4' or '0.5' (convert older stores with ome-zarr-py)")
    return "0.4", attributes


def parse_multiscale(attributes: Mapping[str, Any]) -> Multiscale:
    """The first multiscale image described by a group's attributes (0.4 or 0.5), validated.

    Raises
    ------
    OmeZarrError
        No ``multiscales``, or any value outside what the module notes accept.
    """
    version, ome = ome_attributes(attributes)
    if "multiscales" not in ome:
        raise OmeZarrError(
            "this Zarr group has no OME 'multiscales' metadata, so it is not an OME-Zarr image: "
            "give the image's group (e.g. 'plate.zarr/A/1/0'), not a plate, well or labels group"
        )
    multiscales = _list(ome["multiscales"], "'multiscales'", _MAX_MULTISCALES)
    first = multiscales[0]
    if not isinstance(first, dict):
        raise _fail("'multiscales' [0]", first, "an object")
    axes = _axes(first.get("axes"))
    ndim = len(axes)
    overall = (1.0,) * ndim
    if first.get("coordinateTransformations") is not None:
        overall = _transform_scale(first["coordinateTransformations"], "multiscale 'coordinateTransformations'", ndim)
    paths, scales = [], []
    for index, dataset in enumerate(_list(first.get("datasets"), "'datasets'", _MAX_DATASETS)):
        if not isinstance(dataset, dict):
            raise _fail(f"dataset {index}", dataset, "an object with 'path'")
        paths.append(_dataset_path(dataset.get("path")))
        level = _transform_scale(
            dataset.get("coordinateTransformations"), f"'coordinateTransformations' of dataset {index}", ndim
        )
        scales.append(tuple(a * b for a, b in zip(level, overall)))
    name = first.get("name")
    return Multiscale(
        version=version,
        axes=axes,
        paths=tuple(paths),
        scales=tuple(scales),
        name=name if isinstance(name, str) and len(name) <= _MAX_TEXT else None,
    )


# --------------------------------------------------------------------------- writing


def _wrap(version: str, content: dict[str, Any]) -> dict[str, Any]:
    if version not in VERSIONS:
        raise ValueError(f"OME-Zarr version {version!r}: use one of {VERSIONS}")
    return {"ome": {"version": version, **content}} if version == "0.5" else content


def multiscales_metadata(
    version: str,
    axes: Sequence[Axis],
    paths: Sequence[str],
    scales: Sequence[Sequence[float]],
    *,
    name: str,
    downscale: str = "nearest",
    method: str = "strided slicing [::2, ::2] (nearest neighbour)",
) -> dict[str, Any]:
    """Group attributes of a multiscale image (without ``image-label``), as the spec names them.

    ``downscale`` and ``method`` say how the levels were made (the spec's ``"type"`` and
    ``"metadata"``, which its strict schema asks for).
    """
    multiscale: dict[str, Any] = {
        "name": name,
        "axes": [{"name": axis.name, "type": axis.type, **({"unit": axis.unit} if axis.unit else {})} for axis in axes],
        "datasets": [
            {"path": path, "coordinateTransformations": [{"type": "scale", "scale": list(scale)}]}
            for path, scale in zip(paths, scales)
        ],
        "type": downscale,
        "metadata": {"method": method},
    }
    if version == "0.4":
        multiscale = {"version": "0.4", **multiscale}
    return _wrap(version, {"multiscales": [multiscale]})


def image_label_metadata(
    version: str,
    class_names: Sequence[str],
    class_colors: Sequence[str],
    *,
    properties: Sequence[Mapping[str, Any]] | None = None,
    source_image: str | None = None,
) -> dict[str, Any]:
    """The ``image-label`` object of a label image: colours (RGBA 0-255) and per-class properties.

    Parameters
    ----------
    class_names, class_colors : sequence of str
        Class ``k`` (label value ``k + 1``) is named ``class_names[k]`` and drawn in
        ``class_colors[k]`` (``"#rrggbb"``); label value 0 (nothing) is transparent.
    properties : sequence of mapping, optional
        Extra properties per class (same order), e.g. pixel counts.
    source_image : str, optional
        Relative path from the label image to its image (``"../../"`` inside the image's store).
    """
    from seg.render import parse_color

    colors = [{"label-value": 0, "rgba": [0, 0, 0, 0]}]
    entries = []
    for index, (name, color) in enumerate(zip(class_names, class_colors)):
        value = index + 1
        colors.append({"label-value": value, "rgba": [*parse_color(color), 255]})
        extra = dict(properties[index]) if properties is not None else {}
        entries.append({"label-value": value, "class": str(name), **extra})
    label: dict[str, Any] = {"colors": colors, "properties": entries}
    if source_image is not None:
        label["source"] = {"image": source_image}
    if version == "0.4":
        label = {"version": "0.4", **label}
    return label


def labels_group_metadata(version: str, names: Sequence[str]) -> dict[str, Any]:
    """Attributes of the ``labels`` group listing the label images under it."""
    return _wrap(version, {"labels": list(names)})


def with_channel_axis(axes: Sequence[Axis]) -> tuple[int, tuple[Axis, ...]]:
    """Where a ``c`` axis goes among ``axes`` (after ``t``, before space, as the spec orders
    them) and the axes with it."""
    position = 1 if axes and axes[0].name == "t" else 0
    axes = tuple(axes)
    return position, (*axes[:position], Axis("c"), *axes[position:])
