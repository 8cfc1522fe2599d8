"""Predict a lazily read image block by block with ``dask.array.map_overlap``.

:func:`predict_blockwise` turns a ``(T, H, W, C)`` dask array (see :func:`seg.io.open_lazy_image`)
into lazy labels ``(T, H, W)`` (and probabilities ``(T, H, W, K)``): each frame is cut into
prediction blocks of about ``tile`` pixels, every block is read with ``margin`` pixels of its
neighbours (``map_overlap``, ``boundary="none"``: no padding at the frame's edge, exactly like the
clipped windows of :mod:`seg.tiling`), and :func:`seg.tiling.predict_window` predicts the block's
interior. Normalisation uses the *whole frame's* statistics (:func:`frame_statistics_blockwise`
gathers the same percentile sample :func:`seg.images.normalize` takes, block by block), so every
pixel equals the in-memory ``model.predict``. The graph is plain ``dask.array``: it runs on the
threaded or process scheduler or on a ``distributed`` cluster, whichever computes it.

The model enters the graph once, as one ``dask.delayed`` value that every block depends on, so a
cluster ships it to each worker once, not with every task.

:func:`class_counts` counts pixels per class blockwise, a ``(T, K + 1)`` int64 result from
per-block ``bincount``; no full label array is ever held.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from seg.errors import ImageError
from seg.forest import labels_dtype
from seg.tiling import DEFAULT_TILE, check_tile, predict_window

if TYPE_CHECKING:
    from seg.images import Normalization
    from seg.model import Model

__all__ = ["prediction_chunks", "frame_statistics_blockwise", "predict_blockwise", "class_counts"]


def prediction_chunks(length: int, tile: int, margin: int) -> tuple[int, ...]:
    """Block sizes along one axis: ``max(tile, margin)`` each, the last one merged into its
    neighbour when it would be shorter than ``margin`` (``map_overlap`` reads ``margin`` pixels
    of each neighbour, so every block must be at least that long).
    """
    tile = max(tile, margin)
    if length <= tile:
        return (length,)
    sizes = [tile] * (length // tile)
    rest = length - tile * len(sizes)
    if rest:
        if rest < margin:
            sizes[-1] += rest
        else:
            sizes.append(rest)
    return tuple(sizes)


def _block_sample(block: np.ndarray, top: int, left: int, width: int, step: int) -> np.ndarray:
    """Pixels of a (h, w, C) block at frame flat indices ``r * width + c`` divisible by ``step``."""
    height, block_width = block.shape[:2]
    rows = (np.arange(top, top + height, dtype=np.int64) * width + left) % step
    hit = (rows[:, None] + np.arange(block_width, dtype=np.int64)[None, :]) % step == 0
    return block[hit]


def frame_statistics_blockwise(frame: Any, normalization: Normalization) -> np.ndarray | None:
    """:func:`seg.tiling.frame_statistics` of a lazy ``(H, W, C)`` frame, read block by block.

    The percentile sample is the one :func:`seg.images.normalize` takes on the whole frame, so the
    statistics are equal; only the sample (<= 262 144 pixels per channel) is ever in memory.

    Returns
    -------
    (C, 2) float64 array or None
    """
    import dask
    import dask.array as da

    from seg.images.normalization import percentile_sample_step, sample_statistics

    if normalization.mode != "percentile":
        return None
    height, width, channels = frame.shape
    step = percentile_sample_step(height, width)
    tops = np.cumsum((0, *frame.chunks[0][:-1]))
    lefts = np.cumsum((0, *frame.chunks[1][:-1]))
    blocks = frame.to_delayed()
    parts = [
        dask.delayed(_block_sample)(blocks[i, j, 0], int(top), int(left), width, step)
        for i, top in enumerate(tops)
        for j, left in enumerate(lefts)
    ]
    sample = np.concatenate(dask.compute(*parts), axis=0).reshape(-1, channels)

    def channel_range(channel: int) -> tuple[float, float]:
        low, high = dask.compute(da.min(frame[..., channel]), da.max(frame[..., channel]))
        return float(low), float(high)

    return sample_statistics(sample, normalization, channel_range)


def _predict_block(
    block: np.ndarray,
    *,
    model: Model,
    statistics: np.ndarray | None,
    margins: tuple[int, int],
    labels: bool,
    proba: bool,
    block_info: dict | None = None,
) -> np.ndarray:
    """Predict the interior of one overlapped ``(h, w, C)`` block (margins only on inner sides)."""
    assert block_info is not None  # map_blocks passes it (the parameter is named block_info)
    info = block_info[0]
    location, blocks = info["chunk-location"], info["num-chunks"]
    rows, cols = (
        slice(
            margins[axis] if location[axis] > 0 else 0,
            block.shape[axis] - (margins[axis] if location[axis] < blocks[axis] - 1 else 0),
        )
        for axis in range(2)
    )
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        raise ImageError("the image contains NaN or infinite values: replace them (e.g. by 0) before applying a model")
    raw = block[..., 0] if block.shape[-1] == 1 else block
    out_labels, out_proba = predict_window(model, raw, statistics, (rows, cols), labels=labels, proba=proba)
    assert out_labels is not None
    if out_proba is None:
        return out_labels
    stacked = np.empty((*out_proba.shape[:2], out_proba.shape[2] + 1), dtype=np.float32)
    stacked[..., :-1] = out_proba
    stacked[..., -1] = out_labels  # exact: label values < 2**24
    return stacked


def predict_blockwise(
    model: Model,
    image: Any,
    *,
    tile: int = DEFAULT_TILE,
    probabilities: bool = False,
) -> tuple[Any, Any | None]:
    """Lazy labels (and probabilities) of a ``(T, H, W, C)`` dask array; see the module notes.

    Parameters
    ----------
    model : Model
    image : dask.array.Array
        ``(T, H, W, C)`` uint8/uint16/float32, ``C == model.n_channels``.
    tile : int
        Side of a prediction block in pixels; peak memory per running block is about
        :func:`seg.tiling.window_feature_bytes`.
    probabilities : bool
        Also return the probabilities (computed in the same forest pass).

    Returns
    -------
    labels : dask.array.Array
        ``(T, H, W)`` uint8/uint16, values 1..K; blocks of ``(1, ~tile, ~tile)``.
    proba : dask.array.Array or None
        ``(T, H, W, K)`` float32.

    Raises
    ------
    ModelMismatchError
        The channel count differs from the model's.

    Notes
    -----
    Each frame's normalisation statistics are computed here (one read of the frame, see
    :func:`frame_statistics_blockwise`); the prediction itself runs when the result is computed.
    """
    import dask
    import dask.array as da

    from seg.errors import ModelMismatchError

    if image.ndim != 4 or image.shape[-1] != model.n_channels:
        raise ModelMismatchError(
            f"the model was trained on images with {model.n_channels} channel(s) but this image "
            f"has shape (T, H, W, C) = {tuple(image.shape)}: apply it to images like the ones it "
            "was trained on"
        )
    check_tile(tile)
    margin = int(model.feature_settings.margin())
    n_classes = len(model.class_names)
    model_node = dask.delayed(model, name=f"seg-model-{uuid.uuid4().hex}", pure=False)
    n_frames, height, width, channels = image.shape
    rows = prediction_chunks(height, int(tile), margin)
    cols = prediction_chunks(width, int(tile), margin)
    depth = (margin if len(rows) > 1 else 0, margin if len(cols) > 1 else 0)
    frames_labels, frames_proba = [], []
    for t in range(n_frames):
        frame = image[t].rechunk((rows, cols, channels))
        statistics = frame_statistics_blockwise(frame, model.normalization)
        out_chunks = (rows, cols) if not probabilities else (rows, cols, (n_classes + 1,))
        predicted = _map_frame(
            frame, model_node, statistics, depth, out_chunks, probabilities, labels_dtype(len(model.class_names))
        )
        if probabilities:
            frames_labels.append(predicted[..., -1].astype(labels_dtype(len(model.class_names))))
            frames_proba.append(predicted[..., :-1])
        else:
            frames_labels.append(predicted)
    labels = da.stack(frames_labels)
    proba = da.stack(frames_proba) if probabilities else None
    return labels, proba


def _map_frame(
    frame: Any,
    model_node: Any,
    statistics: np.ndarray | None,
    depth: tuple[int, int],
    out_chunks: tuple,
    probabilities: bool,
    dtype: np.dtype,
) -> Any:
    import dask.array as da

    out_dtype = np.dtype(np.float32) if probabilities else dtype
    return da.map_overlap(
        _predict_block,
        frame,
        depth={0: depth[0], 1: depth[1], 2: 0},
        boundary="none",
        trim=False,
        allow_rechunk=False,
        chunks=out_chunks,
        drop_axis=None if probabilities else 2,
        dtype=out_dtype,
        meta=np.empty((0,) * len(out_chunks), out_dtype),
        model=model_node,
        statistics=statistics,
        margins=depth,
        labels=True,
        proba=probabilities,
    )


def _block_counts(block: np.ndarray, n_values: int) -> np.ndarray:
    counts = [np.bincount(frame.ravel(), minlength=n_values)[:n_values] for frame in block]
    return np.stack(counts).reshape(block.shape[0], 1, 1, n_values).astype(np.int64)


def class_counts(labels: Any, n_classes: int) -> Any:
    """Lazy pixel counts per frame and label value: ``(T, n_classes + 1)`` int64 (column 0 counts
    unlabelled pixels, column k class k), summed from per-block ``bincount``."""
    n_values = n_classes + 1
    counts = labels.map_blocks(
        _block_counts,
        n_values,
        dtype=np.int64,
        new_axis=3,
        chunks=(labels.chunks[0], (1,) * len(labels.chunks[1]), (1,) * len(labels.chunks[2]), (n_values,)),
    )
    return counts.sum(axis=(1, 2))
