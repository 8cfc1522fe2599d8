"""Volume models: train on scribbles in a few slices, predict whole volumes block by block.

A volume model is a :class:`seg.Model` whose ``volume`` (:class:`~seg.features.volume.VolumeSettings`)
holds the voxel size it was trained with and its feature mode (3-D or per slice). The volume is
normalised with whole-volume statistics (as a 2-D frame with whole-frame statistics, so a block
normalised on its own equals the whole), then features are computed block by block with their
context margin (:func:`seg.features.volume.block_features`): memory stays bounded and every
result equals the unblocked one.

Training gathers only the labelled voxels: each labelled slice is one thin block, and the
features' Gaussian passes are cropped to it as soon as they are done, so scribbles on three
slices of a 256³ volume cost about three slices' features, not the volume's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from seg.errors import ImageError, ModelMismatchError, TrainingError
from seg.features import DEFAULT_PRESET, PRESETS, FeatureSettings
from seg.features.volume import VolumeSettings, block_context, compute_volume_features
from seg.forest import ForestSettings
from seg.images import Normalization, normalization_statistics, normalize
from seg.images.frames import MAX_CHANNELS
from seg.images.guards import MIN_SIDE
from seg.images.volume import Volume, check_spacing

__all__ = [
    "train_volume",
    "predict_volume",
    "predict_volume_with_probabilities",
    "volume_features",
    "refuse_volume",
    "volume_input",
    "normalize_volume",
    "volume_statistics",
    "normalize_block",
    "plan_blocks",
    "DEFAULT_BLOCK_BYTES",
    "MIN_BLOCK",
    "predict_block",
    "block_task",
    "check_model_spacing",
    "DEFAULT_VOLUME_FEATURES",
    "DEFAULT_VOLUME_SETTINGS",
    "DEFAULT_VOLUME_FOREST",
    "ISOTROPIC_VOLUME_SETTINGS",
    "MAX_ISOTROPIC_RATIO",
    "default_volume_settings",
]

DEFAULT_BLOCK_BYTES: int = 512 * 2**20
"""Working memory of one block when a volume is predicted block by block (see :func:`plan_blocks`)."""
MIN_BLOCK: int = 16
"""Blocks are not cut below this many voxels a side, whatever the budget."""
# The volume defaults, chosen together by measurement on two kinds of volume (anisotropic EM and
# brain MRI, several scribble seeds): bench/volume_defaults.py, table in bench/README.md.
DEFAULT_VOLUME_FEATURES: str = "per_slice"
"""Features of a volume model of anisotropic (or unknown) voxels unless chosen otherwise
(:func:`default_volume_settings`): 2-D per z slice or ``"3d"``."""
DEFAULT_VOLUME_SETTINGS: FeatureSettings = PRESETS[DEFAULT_PRESET]
"""Feature scales and groups of a per-slice volume model unless chosen otherwise (σ 0.7 .. 16)."""
ISOTROPIC_VOLUME_SETTINGS: FeatureSettings = PRESETS["fine detail"]
"""Feature scales and groups of a 3-D volume model unless chosen otherwise (σ 0.5 .. 8)."""
MAX_ISOTROPIC_RATIO: float = 2.0
"""Voxels whose largest side is at most this many times their smallest get 3-D features by default."""
DEFAULT_VOLUME_FOREST: ForestSettings = ForestSettings(
    n_estimators=64, max_depth=10, max_samples=0.05, class_weight=None
)
"""Forest of a volume model unless chosen otherwise. Unweighted classes: tissue classes are
unbalanced by nature and "balanced" weights pulled brain voxels into the smallest class; more,
deeper trees on 5 % samples made up for it on EM membranes (the 2-D image default stays)."""


# ------------------------------------------------------------------------------ inputs


def default_volume_settings(spacing: Sequence[float] | None, mode: str | None = None) -> tuple[str, FeatureSettings]:
    """The default feature mode and settings of a volume model of voxels ``spacing``.

    Near-isotropic voxels (largest side at most :data:`MAX_ISOTROPIC_RATIO` times the smallest, e.g.
    1 mm MRI) get 3-D features with :data:`ISOTROPIC_VOLUME_SETTINGS`: context across slices is as
    fine as within them. Anisotropic voxels (EM sections, 4 x 4 x 50 nm) and an unknown voxel size
    get the 2-D features of each slice (:data:`DEFAULT_VOLUME_FEATURES`, :data:`DEFAULT_VOLUME_SETTINGS`).
    Chosen by measurement on both kinds: bench/volume_defaults.py, table in bench/README.md.

    Parameters
    ----------
    spacing : (dz, dy, dx) or None
        Voxel size; None when unknown.
    mode : {"per_slice", "3d"}, optional
        A mode chosen by the caller: kept, with that mode's default settings.

    Returns
    -------
    (mode, FeatureSettings)

    Raises
    ------
    VoxelSizeError
        A zero, negative or non-finite ``spacing``.
    """
    if mode is None:
        checked = None if spacing is None else check_spacing(spacing)
        isotropic = checked is not None and max(checked) <= MAX_ISOTROPIC_RATIO * min(checked)
        mode = "3d" if isotropic else DEFAULT_VOLUME_FEATURES
    return mode, ISOTROPIC_VOLUME_SETTINGS if mode == "3d" else DEFAULT_VOLUME_SETTINGS


def volume_input(
    image: np.ndarray | Volume,
    n_channels: int | None = None,
) -> tuple[np.ndarray, tuple[float, float, float] | None, str | None]:
    """A volume model's input as ``(data (Z, Y, X, C), spacing or None, unit or None)``.

    ``image`` is a :class:`~seg.images.volume.Volume` or an array (Z, Y, X) or (Z, Y, X, C).

    Raises
    ------
    ModelMismatchError
        A 2-D image (or what looks like one: (H, W, C) for a multi-channel model) or a channel
        count other than ``n_channels``.
    """
    spacing: tuple[float, float, float] | None
    if isinstance(image, Volume):
        data, spacing, unit = image.data, image.known_spacing, image.unit
    else:
        data, spacing, unit = np.asarray(image), None, None
        if data.ndim == 3 and (n_channels or 1) == 1:
            data = data[..., np.newaxis]
    if data.ndim != 4 or data.shape[1] < MIN_SIDE or data.shape[2] < MIN_SIDE:
        wanted = "(Z, Y, X) or (Z, Y, X, 1)" if (n_channels or 1) == 1 else f"(Z, Y, X, {n_channels})"
        raise ModelMismatchError(
            f"This is a volume (3-D) model, but the image has shape {np.shape(data)}: apply it to volumes "
            f"{wanted} with {n_channels or 1} channel(s), or use a 2-D model for images."
        )
    if n_channels is not None and data.shape[3] != n_channels:
        raise ModelMismatchError(
            f"This model was trained on volumes with {n_channels} channel(s) but the volume has "
            f"{data.shape[3]}: apply it to volumes like the ones it was trained on, or train a new model."
        )
    if data.dtype.kind not in "uif" and data.dtype != bool or not 1 <= data.shape[3] <= MAX_CHANNELS:
        raise ImageError(f"Cannot use a volume of dtype {data.dtype} and shape {data.shape}")
    return data, spacing, unit


def refuse_volume(model, image: object) -> None:
    """A 2-D model refuses a :class:`Volume` (its frames are not independent images)."""
    if model.volume is None and isinstance(image, Volume):
        raise ModelMismatchError(
            "This is a 2-D (image) model, but the input is a volume: train a volume model "
            "(train(..., dims=3)) or pass the slices as frames (volume.data) to segment them one by one."
        )


def check_model_spacing(model, spacing: tuple[float, float, float] | None) -> None:
    expected = model.volume.spacing
    if spacing is None or expected is None or model.volume.mode == "per_slice":
        return
    ratios = np.array(spacing) / min(spacing)
    trained = np.array(expected) / min(expected)
    if not np.allclose(ratios, trained, rtol=0.01):
        raise ModelMismatchError(
            f"This model was trained on voxels of {expected} (dz, dy, dx) but the volume's are {spacing}: "
            "its 3-D features would not match. Resample the volume, or train a model on it."
        )


# ------------------------------------------------------------------------------ normalisation


def _as_frame(data: np.ndarray) -> np.ndarray:
    """(Z, Y, X, C) -> (Z*Y, X, C): the whole volume as one frame for the 2-D normalisation."""
    z, y, x, c = data.shape
    return data.reshape(z * y, x, c)


def normalize_volume(data: np.ndarray, normalization: Normalization) -> np.ndarray:
    """Normalise a (Z, Y, X, C) volume with whole-volume statistics -> float32, same shape."""
    return normalize(_as_frame(np.ascontiguousarray(data)), normalization).reshape(data.shape)


def volume_statistics(data: np.ndarray, normalization: Normalization) -> np.ndarray | None:
    """Whole-volume normalisation parameters for :func:`normalize_block` (None: pixel-wise modes)."""
    return normalization_statistics(_as_frame(np.ascontiguousarray(data)), normalization)


def normalize_block(block: np.ndarray, normalization: Normalization, statistics: np.ndarray | None) -> np.ndarray:
    """A (z, y, x, C) block normalised exactly as :func:`normalize_volume` normalises it in place."""
    from seg.tiling import normalize_window

    return normalize_window(_as_frame(np.ascontiguousarray(block)), normalization, statistics).reshape(block.shape)


# ------------------------------------------------------------------------------ training


def train_volume(
    volume: np.ndarray | Volume,
    labels: np.ndarray,
    settings: FeatureSettings | None = None,
    class_names: Sequence[str] | None = None,
    *,
    class_colors: Sequence[str] | None = None,
    forest: ForestSettings | None = None,
    normalization: Normalization | None = None,
    spacing: Sequence[float] | None = None,
    mode: str | None = None,
):
    """Train a volume model (``seg.train(..., dims=3)``).

    Parameters
    ----------
    volume : (Z, Y, X) or (Z, Y, X, C) array, or Volume
    labels : (Z, Y, X) integer array
        0 = unlabelled, 1..K = class; typically a few scribbled slices.
    settings : FeatureSettings, optional
        Default: that of the mode (:func:`default_volume_settings`).
    forest : ForestSettings, optional
        Default :data:`DEFAULT_VOLUME_FOREST`.
    spacing : (dz, dy, dx), optional
        Voxel size; default the Volume's (none for a plain array: sigmas in voxels).
    mode : {"per_slice", "3d"}, optional
        2-D features of every slice or volumetric features; default: 3-D for near-isotropic voxels,
        else per slice (:func:`default_volume_settings`).

    Other parameters are those of :func:`seg.train`.

    Returns
    -------
    Model with ``dims == 3``

    Raises
    ------
    TrainingError
        Labels whose shape is not the volume's (Z, Y, X), not whole numbers, outside 0..K, or
        fewer than two classes scribbled.
    VoxelSizeError
        A zero, negative or non-finite ``spacing``.
    """
    from seg.model import checked_training_labels, train_samples

    forest = DEFAULT_VOLUME_FOREST if forest is None else forest
    normalization = Normalization() if normalization is None else normalization
    data, own_spacing, _unit = volume_input(volume)
    if spacing is not None:
        own_spacing = check_spacing(spacing)
    mode, default_settings = default_volume_settings(own_spacing, mode)
    settings = default_settings if settings is None else settings
    volume_settings = VolumeSettings(spacing=own_spacing, mode=mode)
    labels = np.asarray(labels)
    if labels.shape != data.shape[:3]:
        raise TrainingError(
            f"The labels have shape {labels.shape} but the volume has (Z, Y, X) = {data.shape[:3]}: give one "
            "label per voxel (0 = unlabelled), e.g. scribbles drawn on a few slices of this volume."
        )
    labels, names = checked_training_labels(labels, data.shape[:3], class_names)
    normalised = normalize_volume(data, normalization)
    parts_x, parts_y, used = [], [], []
    for z in range(labels.shape[0]):
        rows, cols = np.nonzero(labels[z])
        if not len(rows):
            continue
        block = (slice(z, z + 1), slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        features = volume_settings.block(normalised, settings, block)[0]
        chosen = labels[block][0] > 0
        parts_x.append(features[chosen])
        parts_y.append(labels[block][0][chosen])
        used.append(z)
    return train_samples(
        np.concatenate(parts_x),
        np.concatenate(parts_y).astype(np.int64),
        n_channels=data.shape[3],
        image_shape=data.shape,
        frames=used,
        settings=settings,
        class_names=names,
        class_colors=class_colors,
        forest=forest,
        normalization=normalization,
        volume=volume_settings,
    )


# ------------------------------------------------------------------------------ prediction


def plan_blocks(
    shape: Sequence[int], margin: Sequence[int], n_features: int, budget: int = DEFAULT_BLOCK_BYTES
) -> list[tuple[slice, slice, slice]]:
    """Blocks covering a (Z, Y, X) volume whose working memory fits in ``budget`` bytes.

    A block costs its features (F float32 per voxel) plus about 16 float32 per voxel of its
    context (the block grown by ``margin``: the raw input and the Gaussian passes before they
    are cropped). The whole volume is one block when it fits; otherwise the longest side is
    halved until a block fits, down to :data:`MIN_BLOCK` voxels a side (blocks stay as thick as
    possible: the margin is paid once per block face).
    """
    size = [int(n) for n in shape]

    def cost(block: list[int]) -> int:
        context = int(np.prod([min(b + 2 * m, n) for b, m, n in zip(block, margin, shape)]))
        return int(np.prod(block)) * n_features * 4 + context * 16 * 4

    while cost(size) > budget and max(size) > MIN_BLOCK:
        axis = int(np.argmax(size))
        size[axis] = -(-size[axis] // 2)
    return [
        tuple(slice(start, min(start + b, n)) for start, b, n in zip(corner, size, shape))  # type: ignore[misc]
        for corner in _corners(shape, size)
    ]


def _corners(shape: Sequence[int], size: Sequence[int]) -> Iterator[tuple[int, int, int]]:
    for z in range(0, shape[0], size[0]):
        for y in range(0, shape[1], size[1]):
            for x in range(0, shape[2], size[2]):
                yield z, y, x


def volume_features(model, image: np.ndarray | Volume, block: tuple[slice, slice, slice] | None = None) -> np.ndarray:
    """The model's features of a volume (or of one block of it): (z, y, x, F) float32."""
    data, spacing, _ = volume_input(image, model.n_channels)
    check_model_spacing(model, spacing)
    normalised = normalize_volume(data, model.normalization)
    if block is None:
        return model.volume.compute(normalised, model.feature_settings)
    return model.volume.block(normalised, model.feature_settings, block)


def predict_volume(
    model,
    image: np.ndarray | Volume,
    *,
    proba: bool = False,
    budget: int = DEFAULT_BLOCK_BYTES,
    progress: Callable[[int, int], None] | None = None,
    client: Any = None,
) -> np.ndarray:
    """Labels (Z, Y, X) or probabilities (Z, Y, X, K) of a whole volume, block by block.

    Parameters
    ----------
    budget : int
        Working bytes per block (:func:`plan_blocks`); the result equals the unblocked one.
    progress : callable(done, total), optional
        Called after every block (e.g. a progress bar).
    client : distributed.Client, optional
        Predict the blocks on its workers (the model is shipped once, each block's context
        once); without it, here, one block after the other.
    """
    normalised, jobs = _volume_jobs(model, image, budget)
    shape = normalised.shape[:3] + ((model.n_classes,) if proba else ())
    out: np.ndarray | None = None

    def paste(done: int, block: tuple, result: np.ndarray) -> None:
        nonlocal out
        if out is None:
            out = np.empty(shape, result.dtype)
        out[block] = result
        if progress is not None:
            progress(done, len(jobs))

    if client is None:
        for done, (block, context, inner) in enumerate(jobs, start=1):
            paste(done, block, predict_block(model, normalised[context], inner, proba=proba))
    else:
        for done, (block, result) in enumerate(_blocks_on_dask(client, model, normalised, jobs, proba), start=1):
            paste(done, block, result)
    assert out is not None
    return out


def predict_volume_with_probabilities(
    model,
    image: np.ndarray | Volume,
    *,
    budget: int = DEFAULT_BLOCK_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and 8-bit probabilities of a whole volume in one pass, block by block, here.

    Each block's features go through the forest once (``predict_proba_and_labels``), so this
    costs what :func:`predict_volume` costs, not twice. The probabilities are kept quantised
    (:func:`seg.tiling.quantize_probabilities`, as the app keeps a large frame's): K bytes per
    voxel instead of 4 K.

    Returns
    -------
    labels : (Z, Y, X) uint8 (K <= 255) or uint16
        Equal to :func:`predict_volume` (``Model.predict``): the class of highest float32
        probability, taken before quantisation.
    proba : (Z, Y, X, K) uint8
        0..255 standing for 0..1, within 1/510 of ``Model.predict_proba``.
    """
    from seg.tiling import quantize_probabilities

    normalised, jobs = _volume_jobs(model, image, budget)
    labels: np.ndarray | None = None
    proba = np.empty((*normalised.shape[:3], model.n_classes), np.uint8)
    for done, (block, context, inner) in enumerate(jobs, start=1):
        features = _block_features(model, normalised[context], inner)
        block_proba, block_labels = model.forest.predict_proba_and_labels(features)
        del features
        if labels is None:
            labels = np.empty(normalised.shape[:3], block_labels.dtype)
        labels[block] = block_labels
        proba[block] = quantize_probabilities(block_proba)
        if progress is not None:
            progress(done, len(jobs))
    assert labels is not None
    return labels, proba


def _volume_jobs(model, image: np.ndarray | Volume, budget: int) -> tuple[np.ndarray, list[tuple]]:
    """The normalised (Z, Y, X, C) volume and its blocks as ``(block, context, inner)``."""
    data, spacing, _ = volume_input(image, model.n_channels)
    check_model_spacing(model, spacing)
    normalised = normalize_volume(data, model.normalization)
    margin = model.volume.margin(model.feature_settings)
    blocks = plan_blocks(data.shape[:3], margin, model.n_features, budget)
    return normalised, [(block, *block_context(data.shape[:3], block, margin)) for block in blocks]


def _blocks_on_dask(client: Any, model, normalised: np.ndarray, jobs: list, proba: bool) -> Iterator[tuple]:
    from distributed import as_completed

    from seg.batch.dask_runner import TASK_RETRIES
    from seg.persist import model_to_bytes

    bundle = model_to_bytes(model)
    digest = hashlib.sha256(bundle).hexdigest()
    [bundle_future] = client.scatter([bundle], broadcast=True, hash=False)
    block_of = {}
    for block, context, inner in jobs:
        [piece] = client.scatter([np.ascontiguousarray(normalised[context])], hash=False)
        future = client.submit(block_task, digest, bundle_future, piece, inner, proba, pure=False, retries=TASK_RETRIES)
        block_of[future.key] = (future, block)
    for future in as_completed([future for future, _ in block_of.values()]):
        yield block_of[future.key][1], future.result()
        future.release()


def block_task(digest: str, bundle: bytes, context: np.ndarray, inner: tuple, proba: bool) -> np.ndarray:
    """A Dask task: :func:`predict_block` with the model of ``bundle`` (deserialised once per worker)."""
    from seg.batch.dask_runner import worker_model

    return predict_block(worker_model(digest, bundle), context, inner, proba=proba)


def predict_block(model, context: np.ndarray, inner: tuple[slice, slice, slice], *, proba: bool = False) -> np.ndarray:
    """Labels (z, y, x) or probabilities (z, y, x, K) of the ``inner`` voxels of a normalised
    ``context`` array (a block grown by the model's margin; see :func:`block_context`)."""
    features = _block_features(model, context, inner)
    return model.forest.predict_proba(features) if proba else model.forest.predict(features)


def _block_features(model, context: np.ndarray, inner: tuple[slice, slice, slice]) -> np.ndarray:
    return compute_volume_features(
        context, model.feature_settings, spacing=model.volume.spacing, mode=model.volume.mode, inner=inner
    )
