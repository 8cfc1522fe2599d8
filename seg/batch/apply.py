"""Apply a model to one image: predict every frame, measure, encode the outputs.

:func:`predict_image` predicts each frame, tile by tile when the frame's feature stack would be
too big (:func:`needs_tiling`, see :mod:`seg.tiling`); :func:`measurement_rows` measures the
labels; :func:`encode_outputs` encodes the output files. :func:`apply_source` does all of that in
memory (the app's batch page) and :func:`apply_file` writes the outputs into a folder
(atomically, see :func:`seg.files.atomic_write`). Bad input is reported in the outcome, not raised.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seg.batch.outcomes import ApplyOptions, ImageOutcome, ImageResult
from seg.batch.reading import read_input, size_limit_hint
from seg.errors import SegError
from seg.files import atomic_write, display_name
from seg.tiling import WindowMapper, apply_tiled, frame_statistics, predict_features

if TYPE_CHECKING:
    from seg.model import Model

__all__ = [
    "needs_tiling",
    "predict_image",
    "encode_outputs",
    "measurement_rows",
    "find_objects",
    "apply_source",
    "apply_file",
]


def _frame(image: np.ndarray, t: int) -> np.ndarray:
    """Frame ``t`` of a (T, H, W, C) image as the model wants it: (H, W) grey or (H, W, C)."""
    frame = image[t]
    return frame[..., 0] if frame.shape[-1] == 1 else frame


def needs_tiling(model: Model, height: int, width: int, options: ApplyOptions) -> bool:
    """Whether a frame of height x width is predicted in tiles under ``options``."""
    if options.tiling == "always":
        return True
    if options.tiling == "never":
        return False
    n_features = model.feature_settings.n_features(model.n_channels)
    return height * width * n_features * 4 > options.tile_above_bytes


# (frame, statistics, labels?, proba?) -> a WindowMapper for seg.tiling.apply_tiled
MapperFactory = Callable[[np.ndarray, "np.ndarray | None", bool, bool], WindowMapper]


def predict_image(
    model: Model,
    image: np.ndarray,
    options: ApplyOptions = ApplyOptions(),
    *,
    mapper_factory: MapperFactory | None = None,
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Labels (and probabilities) of every frame of an image.

    Parameters
    ----------
    model : Model
    image : (T, H, W, C) array
        As returned by :func:`seg.images.read_image` (may be a memmap).
    options : ApplyOptions
    mapper_factory : callable, optional
        ``mapper_factory(frame, statistics, labels, proba)`` returns a window mapper for
        :func:`seg.tiling.apply_tiled` (used to run tiles on Dask).

    Returns
    -------
    labels : (T, H, W) uint8/uint16
    proba : (T, H, W, K) float32 or None
        Only when ``options.probabilities``.
    tiled : bool
        Whether any frame was tiled.

    Raises
    ------
    ModelMismatchError
        The image's channel count differs from the model's.
    """
    model.check_channels(image.shape[-1])
    n_frames, height, width = image.shape[:3]
    tiled = needs_tiling(model, height, width, options)
    labels_out: np.ndarray | None = None
    proba_out: np.ndarray | None = None
    for t in range(n_frames):
        frame = _frame(image, t)
        if tiled:
            mapper = None
            statistics = frame_statistics(frame, model.normalization)
            if mapper_factory is not None:
                mapper = mapper_factory(frame, statistics, True, options.probabilities)
            labels, proba = apply_tiled(
                model,
                frame,
                tile=options.tile,
                labels=True,
                proba=options.probabilities,
                statistics=statistics,
                map_windows=mapper,
            )
        else:
            frame = np.asarray(frame)
            features = model.features(frame)
            labels, proba = predict_features(model, features, labels=True, proba=options.probabilities)
            del features
        assert labels is not None
        if labels_out is None:
            labels_out = np.empty((n_frames, height, width), dtype=labels.dtype)
        labels_out[t] = labels
        if proba is not None:
            if proba_out is None:
                proba_out = np.empty((n_frames, height, width, proba.shape[-1]), np.float32)
            proba_out[t] = proba
    assert labels_out is not None
    return labels_out, proba_out, tiled


def measurement_rows(name: str, labels: np.ndarray, class_names: Sequence[str]) -> list[dict]:
    """Per-frame, per-class measurements of a (T, H, W) label stack, with an ``image`` column."""
    from seg.measure import measure_stack

    return [{"image": name, **row} for row in measure_stack(labels, list(class_names))]


def _overlay_png(model: Model, frame: np.ndarray, labels: np.ndarray, alpha: float) -> bytes:
    from seg import render

    rgb = render.to_display_rgb(frame if frame.ndim == 3 else frame[..., np.newaxis])
    return render.overlay_png(rgb, labels, list(model.class_colors), alpha)


def encode_outputs(
    model: Model,
    name: str,
    image: np.ndarray,
    labels: np.ndarray,
    proba: np.ndarray | None,
    options: ApplyOptions,
    instances: np.ndarray | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Encode the output files of one image, one at a time: ``(file name, bytes)``.

    Parameters
    ----------
    name : str
        Output stem (already sanitised).
    image : (T, H, W, C) array
    labels : (T, H, W)
    proba : (T, H, W, K) float32 or None
    instances : (T, H, W) int32, optional
        Object labels (``options.objects``): ``NAME_objects.tif``, 16-bit (32-bit above 65,535
        objects in a frame), one page per frame.
    """
    from seg import render

    n_frames = labels.shape[0]
    if options.masks:
        # One frame: an 8-bit PNG (16-bit TIFF above 255 classes); a stack: a T-page TIFF.
        data, suffix = render.mask_file(labels[0] if n_frames == 1 else labels)
        yield f"{name}_mask{suffix}", data
    if options.probabilities and proba is not None:
        yield (
            f"{name}_probabilities.tif",
            render.probabilities_tiff(proba[0] if n_frames == 1 else proba, class_names=list(model.class_names)),
        )
    if options.overlays:
        for t in range(n_frames):
            suffix = "" if n_frames == 1 else f"_t{t:03d}"
            yield (
                f"{name}_overlay{suffix}.png",
                _overlay_png(model, np.asarray(image[t]), labels[t], options.overlay_alpha),
            )
    if instances is not None:
        from seg.objects import instance_tiff_bytes

        yield f"{name}_objects.tif", instance_tiff_bytes(instances[0] if n_frames == 1 else instances)


def find_objects(
    name: str, image: np.ndarray, labels: np.ndarray, proba: np.ndarray | None, options: ApplyOptions
) -> tuple[np.ndarray | None, list[dict]]:
    """Object labels (T, H, W) and CSV rows of ``options.objects``' class; (None, []) without.

    Found on the full-resolution labels after prediction, so a frame predicted in tiles has the
    same objects as untiled, objects across tile borders included (see :mod:`seg.objects`).
    """
    if options.objects is None:
        return None, []
    from seg.objects import objects_of_stack

    return objects_of_stack(name, labels, options.objects, image=image, proba=proba)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _memory_message(shape: tuple[int, ...]) -> str:
    return f"out of memory on an image of shape {shape}: use smaller tiles (--tile) or --tiling always"


def apply_source(
    model: Model,
    source: Path | bytes,
    name: str,
    options: ApplyOptions = ApplyOptions(),
    *,
    source_name: str | None = None,
    keep_arrays: bool = True,
) -> ImageResult:
    """Read, predict, measure and encode one image in memory; bad input becomes ``outcome.error``.

    Parameters
    ----------
    model : Model
    source : Path or bytes
        A file, or the bytes of an uploaded file.
    name : str
        Output stem (see :func:`unique_stems`).
    options : ApplyOptions
    source_name : str, optional
        Name shown in messages (default: the path's name or ``name``).
    keep_arrays : bool
        Keep image, labels and probabilities in the result (for thumbnails and charts).

    Returns
    -------
    ImageResult
        ``outputs`` holds the encoded files (see :func:`encode_outputs`).
    """
    shown = display_name(source_name if source_name is not None else (source if isinstance(source, Path) else name))
    outcome = ImageOutcome(name=name, source=shown)
    start = time.perf_counter()
    image = labels = proba = None
    try:
        image = read_input(source, options.max_pixels)
        outcome.shape = tuple(int(n) for n in image.shape[:3])
        labels, proba, outcome.tiled = predict_image(model, image, options)
        outcome.rows = measurement_rows(name, labels, model.class_names)
        instances, outcome.object_rows = find_objects(name, image, labels, proba, options)
        outputs = dict(encode_outputs(model, name, image, labels, proba, options, instances))
    except SegError as exc:
        outcome.error = one_line(exc)
        return ImageResult(outcome)
    except MemoryError:
        outcome.error = _memory_message(outcome.shape)
        return ImageResult(outcome)
    outcome.files = list(outputs)
    outcome.seconds = time.perf_counter() - start
    if not keep_arrays:
        image = labels = proba = None
    return ImageResult(outcome, image, labels, proba, outputs)


def apply_file(
    model: Model,
    path: str | os.PathLike,
    name: str,
    out_dir: str | os.PathLike,
    options: ApplyOptions = ApplyOptions(),
    *,
    mapper_factory: MapperFactory | None = None,
) -> ImageOutcome:
    """Apply the model to one file and write its outputs into ``out_dir`` (atomically).

    A bad image (unreadable, corrupt, too large, wrong channel count) or a failure to write is
    reported in ``ImageOutcome.error``, never raised, so a batch carries on.
    """
    path = Path(path)
    outcome = ImageOutcome(name=name, source=display_name(path))
    start = time.perf_counter()
    try:
        image = read_input(path, options.max_pixels)
        outcome.shape = tuple(int(n) for n in image.shape[:3])
        labels, proba, outcome.tiled = predict_image(model, image, options, mapper_factory=mapper_factory)
        outcome.rows = measurement_rows(name, labels, model.class_names)
        instances, outcome.object_rows = find_objects(name, image, labels, proba, options)
        for file_name, data in encode_outputs(model, name, image, labels, proba, options, instances):
            atomic_write(Path(out_dir) / file_name, data)
            outcome.files.append(file_name)
    except SegError as exc:
        outcome.error = one_line(exc) + size_limit_hint(path, options.max_pixels)
    except MemoryError:
        outcome.error = _memory_message(outcome.shape)
    except OSError as exc:  # writing the outputs: disk full, folder removed meanwhile
        outcome.error = f"cannot write the outputs: {exc.strerror or one_line(exc)}"
    outcome.seconds = time.perf_counter() - start
    return outcome
