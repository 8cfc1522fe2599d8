"""Predict huge frames in overlapping tiles, with results equal to the untiled prediction.

A frame too large to hold its ``(H, W, F)`` feature stack in memory is cut into tiles of
``tile x tile`` pixels. Each tile is read together with ``model.feature_settings.margin()``
pixels of real context on every side where the frame has them; its features are computed on that
window, predicted, and only the tile's interior is written into the output. Peak memory is that of
one window's feature stack, ``(tile + 2 * margin)**2 * F * 4`` bytes, whatever the frame size.

Why windows are *clipped* at the frame border instead of padded: the untiled features handle the
border themselves (``scipy.ndimage`` ``mode="reflect"``, which is numpy's ``"symmetric"`` padding,
and ``np.gradient``'s one-sided differences in the Hessian). A window whose edge *is* the frame's
edge gets exactly the same border treatment, whatever the filter, whereas padding the window
ourselves would only match filters that reflect. On the sides facing other tiles the window
carries ``margin`` pixels of real neighbours, so every filter sees the same input as untiled.

Normalisation is a whole-frame operation ("percentile" stretches each channel between two
percentiles of the *frame*): normalising each tile on its own would give every tile a different
stretch. :func:`frame_statistics` computes the frame's parameters once and :func:`normalize_window`
applies them to a window, giving the same numbers as :func:`seg.images.normalize` on the frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from seg.errors import ModelMismatchError, SettingsError, is_whole_number

if TYPE_CHECKING:
    from seg.features import FeatureSettings
    from seg.images import Normalization
    from seg.model import Model

__all__ = [
    "DEFAULT_TILE",
    "check_tile",
    "MIN_TILE",
    "Window",
    "TiledResult",
    "tile_windows",
    "frame_statistics",
    "normalize_window",
    "predict_window",
    "window_features",
    "predict_features",
    "predict_tiled",
    "predict_proba_tiled",
    "apply_tiled",
    "window_feature_bytes",
]

DEFAULT_TILE: int = 1024
MIN_TILE: int = 16
_BAND_BYTES = 16 << 20  # features copied at a time when predicting a window's interior


@dataclass(frozen=True)
class Window:
    """One tile of a frame and the context window read around it.

    Attributes
    ----------
    read : tuple of slice
        Rows and columns of the frame to read: the tile plus up to ``margin`` pixels on each side,
        clipped to the frame.
    write : tuple of slice
        Rows and columns of the output that this window fills (the tile).
    inner : tuple of slice
        Position of the tile inside the read window.
    """

    read: tuple[slice, slice]
    write: tuple[slice, slice]
    inner: tuple[slice, slice]


@dataclass(frozen=True)
class TiledResult:
    """Labels and/or probabilities of one window's tile, ready to be written at ``window.write``."""

    window: Window
    labels: np.ndarray | None
    proba: np.ndarray | None


def _axis_windows(length: int, tile: int, margin: int) -> Iterator[tuple[slice, slice, slice]]:
    for start in range(0, length, tile):
        stop = min(start + tile, length)
        read_start = max(0, start - margin)
        read_stop = min(length, stop + margin)
        yield (
            slice(read_start, read_stop),
            slice(start, stop),
            slice(start - read_start, stop - read_start),
        )


def check_tile(tile: object) -> int:
    """``tile`` as an int, or :class:`SettingsError` if it is not a whole number >= ``MIN_TILE``."""
    if not is_whole_number(tile, MIN_TILE):
        raise SettingsError(
            f"tile size {tile!r} is not usable: give a whole number of pixels >= {MIN_TILE} (e.g. {DEFAULT_TILE})"
        )
    return int(tile)


def tile_windows(shape: tuple[int, int], tile: int, margin: int) -> list[Window]:
    """Cut a frame of ``shape`` (H, W) into tiles with their context windows.

    Parameters
    ----------
    shape : (int, int)
        Height and width of the frame.
    tile : int
        Side of a tile in pixels (the last row/column of tiles may be smaller).
    margin : int
        Context pixels read around each tile (``FeatureSettings.margin()``).

    Returns
    -------
    list of Window
        Row-major; the ``write`` regions cover the frame exactly once.
    """
    tile = check_tile(tile)
    if margin < 0:
        raise SettingsError(f"tile margin {margin} is negative: it must be >= 0")
    height, width = int(shape[0]), int(shape[1])
    rows = list(_axis_windows(height, tile, margin))
    cols = list(_axis_windows(width, tile, margin))
    return [
        Window(read=(r_read, c_read), write=(r_write, c_write), inner=(r_inner, c_inner))
        for r_read, r_write, r_inner in rows
        for c_read, c_write, c_inner in cols
    ]


def window_feature_bytes(model: Model, tile: int) -> int:
    """Bytes of the float32 feature stack of one full window (the peak memory of tiling)."""
    side = int(tile) + 2 * int(model.feature_settings.margin())
    return side * side * model.feature_settings.n_features(model.n_channels) * 4


# --------------------------------------------------------------------------- normalisation


def _as_hwc(frame: np.ndarray) -> np.ndarray:
    return frame[..., np.newaxis] if frame.ndim == 2 else frame


def frame_statistics(frame: np.ndarray, normalization: Normalization) -> np.ndarray | None:
    """Whole-frame normalisation parameters, computed once for all tiles of ``frame``.

    Parameters
    ----------
    frame : (H, W) or (H, W, C) array
        The whole frame, uint8, uint16 or float32 (a ``np.memmap`` is only sampled, plus a
        min/max pass over a channel whose percentiles coincide).
    normalization : Normalization
        The model's normalisation.

    Returns
    -------
    (C, 2) float64 array or None
        ``[offset, scale]`` per channel for ``mode="percentile"`` (a window is normalised as
        ``(x - offset) * scale``); ``None`` for the modes that act pixel by pixel ("dtype",
        "none"), where a window can be normalised on its own.
    """
    from seg import images

    return images.normalization_statistics(_as_hwc(frame), normalization)


def normalize_window(window: np.ndarray, normalization: Normalization, statistics: np.ndarray | None) -> np.ndarray:
    """Normalise a window of a frame with the frame's :func:`frame_statistics`.

    Parameters
    ----------
    window : (h, w) or (h, w, C) array
        A window read from the frame, the frame's dtype.
    normalization : Normalization
        The model's normalisation.
    statistics : (C, 2) array or None
        From :func:`frame_statistics` on the whole frame.

    Returns
    -------
    (h, w) or (h, w, C) float32, like ``window``
        Equal to ``seg.images.normalize(frame)[window region]``.
    """
    from seg import images

    if statistics is None:
        return images.normalize(window, normalization)
    out = np.array(window, dtype=np.float32, order="C")
    # float32 subtract then multiply, exactly the operations seg.images.normalize performs
    out -= _channel_vector(statistics[:, 0], out)
    out *= _channel_vector(statistics[:, 1], out)
    return out


def _channel_vector(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    vector = values.astype(np.float32)
    return vector[0] if like.ndim == 2 else vector


# --------------------------------------------------------------------------- prediction


def _supported(frame: np.ndarray) -> np.ndarray:
    """uint8/uint16/float32 frames as they are (memmaps stay lazy); others converted once, as a
    whole, the way seg.images converts them (the conversion depends on the frame's value range)."""
    if frame.dtype in (np.uint8, np.uint16, np.float32) and frame.dtype.isnative:
        return frame
    from seg.images import as_frames

    converted = as_frames(np.asarray(frame))[0]
    return converted[..., 0] if frame.ndim == 2 else converted


def _check_frame(model: Model, frame: np.ndarray) -> None:
    if frame.ndim not in (2, 3):
        raise ModelMismatchError(
            f"a frame must be (H, W) or (H, W, C), got shape {tuple(frame.shape)}: pass one frame "
            "of an image like the ones the model was trained on"
        )
    model.check_channels(1 if frame.ndim == 2 else frame.shape[-1])


def predict_features(
    model: Model, features: np.ndarray, *, labels: bool = True, proba: bool = False
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Labels and/or probabilities of ``(..., F)`` features, in one forest pass when both.

    Returns ``(labels (...), proba (..., K) float32)``, each None when not asked for; the labels
    equal ``model.predict_features(features)``.
    """
    both = getattr(model.forest, "predict_proba_and_labels", None)
    if labels and proba and both is not None:
        out_proba, out_labels = both(features)
        return out_labels, out_proba
    out_labels = model.predict_features(features) if labels else None
    out_proba = model.predict_proba_features(features) if proba else None
    return out_labels, out_proba


def window_features(
    raw_window: np.ndarray,
    settings: FeatureSettings,
    normalization: Normalization,
    statistics: np.ndarray | None,
) -> np.ndarray:
    """Features of a context window, normalised with the whole frame's statistics.

    Parameters
    ----------
    raw_window : (h, w) or (h, w, C) array
        Pixels of a frame's ``Window.read`` region, not normalised.
    settings : FeatureSettings
    normalization : Normalization
    statistics : (C, 2) array or None
        :func:`frame_statistics` of the whole frame.

    Returns
    -------
    (h, w, F) float32
        Inside ``Window.inner`` equal to the whole frame's features (see the module docstring).
    """
    from seg.features import compute_features

    normalized = normalize_window(raw_window, normalization, statistics)
    return compute_features(normalized, settings)


def predict_window(
    model: Model,
    raw_window: np.ndarray,
    statistics: np.ndarray | None,
    inner: tuple[slice, slice],
    *,
    labels: bool = True,
    proba: bool = False,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Predict one context window and return its tile interior.

    This is the unit of work of tiling; it is a plain function of its arguments so that it can
    run anywhere (e.g. on a Dask worker).

    Parameters
    ----------
    model : Model
    raw_window : (h, w) or (h, w, C) array
        Pixels of the frame's ``Window.read`` region, not normalised.
    statistics : (C, 2) array or None
        :func:`frame_statistics` of the whole frame.
    inner : tuple of slice
        ``Window.inner``.
    labels, proba : bool
        Which outputs to compute.

    Returns
    -------
    labels : (h', w') uint8/uint16 or None
    proba : (h', w', K) float32 or None
    """
    features = window_features(raw_window, model.feature_settings, model.normalization, statistics)
    rows, cols = inner
    height, width = rows.stop - rows.start, cols.stop - cols.start
    out_labels: np.ndarray | None = None
    out_proba: np.ndarray | None = None
    # The forest wants contiguous (N, F) rows and the interior of the window is not contiguous:
    # copy it in bands of rows of about _BAND_BYTES, not as a second whole feature stack.
    band = max(1, _BAND_BYTES // max(1, width * features.shape[-1] * 4))
    for top in range(rows.start, rows.stop, band):
        bottom = min(top + band, rows.stop)
        block = np.ascontiguousarray(features[top:bottom, cols])
        where = slice(top - rows.start, bottom - rows.start)
        block_labels, block_proba = predict_features(model, block, labels=labels, proba=proba)
        if block_labels is not None:
            if out_labels is None:
                out_labels = np.empty((height, width), dtype=block_labels.dtype)
            out_labels[where] = block_labels
        if block_proba is not None:
            if out_proba is None:
                out_proba = np.empty((height, width, block_proba.shape[-1]), dtype=np.float32)
            out_proba[where] = block_proba
    return out_labels, out_proba


WindowMapper = Callable[[Sequence[Window]], Iterable[TiledResult]]


def apply_tiled(
    model: Model,
    frame: np.ndarray,
    *,
    tile: int = DEFAULT_TILE,
    labels: bool = True,
    proba: bool = False,
    statistics: np.ndarray | None = None,
    map_windows: WindowMapper | None = None,
    progress: Callable[[int, int], None] | None = None,
    proba_dtype: type = np.float32,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Predict a frame tile by tile; equal to ``model.predict`` / ``model.predict_proba``.

    Parameters
    ----------
    model : Model
    frame : (H, W) or (H, W, C) array
        One frame, not normalised, any supported dtype; may be a ``np.memmap`` (read lazily,
        one window at a time, except for the percentile statistics).
    tile : int
        Tile side in pixels. Peak memory is about :func:`window_feature_bytes`.
    labels, proba : bool
        Which outputs to compute.
    statistics : (C, 2) array, optional
        Precomputed :func:`frame_statistics` (computed here when omitted).
    map_windows : callable, optional
        ``map_windows(windows) -> iterable of TiledResult`` in any order; runs the windows
        elsewhere (e.g. on Dask, see ``seg.batch``). Default: one after the other, in process.
    progress : callable, optional
        ``progress(done, total)`` after each window is written (e.g. to move a progress bar).
    proba_dtype : np.float32 or np.uint8
        ``np.uint8`` keeps the probabilities as :func:`quantize_probabilities` (a quarter of the
        memory: 1 byte per pixel and class); each window is quantised as it arrives.

    Returns
    -------
    labels : (H, W) uint8/uint16 or None
    proba : (H, W, K) float32 (or uint8, see ``proba_dtype``) or None
    """
    if proba_dtype not in (np.float32, np.uint8):
        raise SettingsError(f"proba_dtype must be numpy.float32 or numpy.uint8, got {proba_dtype!r}")
    _check_frame(model, frame)
    frame = _supported(frame)
    windows = tile_windows(frame.shape[:2], tile, int(model.feature_settings.margin()))
    if statistics is None:
        statistics = frame_statistics(frame, model.normalization)
    results: Iterable[TiledResult]
    if map_windows is None:
        results = _map_in_process(model, frame, windows, statistics, labels=labels, proba=proba)
    else:
        results = map_windows(windows)
    out_labels: np.ndarray | None = None
    out_proba: np.ndarray | None = None
    height, width = frame.shape[:2]
    for done, result in enumerate(results, start=1):
        if result.labels is not None:
            if out_labels is None:
                out_labels = np.zeros((height, width), dtype=result.labels.dtype)
            out_labels[result.window.write] = result.labels
        if result.proba is not None:
            if out_proba is None:
                out_proba = np.zeros((height, width, result.proba.shape[-1]), dtype=proba_dtype)
            out_proba[result.window.write] = (
                quantize_probabilities(result.proba) if proba_dtype == np.uint8 else result.proba
            )
        if progress is not None:
            progress(done, len(windows))
    return out_labels, out_proba


def _map_in_process(
    model: Model,
    frame: np.ndarray,
    windows: Sequence[Window],
    statistics: np.ndarray | None,
    *,
    labels: bool,
    proba: bool,
) -> Iterator[TiledResult]:
    for window in windows:
        raw = np.asarray(frame[window.read])
        out_labels, out_proba = predict_window(model, raw, statistics, window.inner, labels=labels, proba=proba)
        yield TiledResult(window, out_labels, out_proba)


def quantize_probabilities(proba: np.ndarray) -> np.ndarray:
    """Probabilities 0..1 as uint8 0..255 (rounded: off by at most 1/510), same shape."""
    return np.rint(np.clip(proba, 0.0, 1.0) * 255.0).astype(np.uint8)


def predict_tiled(model: Model, frame: np.ndarray, *, tile: int = DEFAULT_TILE) -> np.ndarray:
    """Labels of a frame computed tile by tile: ``(H, W)`` uint8/uint16, equal to ``model.predict``.

    See :func:`apply_tiled` for the parameters.
    """
    labels, _ = apply_tiled(model, frame, tile=tile, labels=True, proba=False)
    assert labels is not None
    return labels


def predict_proba_tiled(model: Model, frame: np.ndarray, *, tile: int = DEFAULT_TILE) -> np.ndarray:
    """Probabilities computed tile by tile: ``(H, W, K)`` float32, equal to ``model.predict_proba``."""
    _, proba = apply_tiled(model, frame, tile=tile, labels=False, proba=True)
    assert proba is not None
    return proba
