"""Intensity normalisation: :class:`Normalization` settings and :func:`normalize`.

Percentile mode estimates each channel's robust percentiles from a deterministic pixel sample
(so the uint8 and uint16 versions of one scene give the same result);
:func:`normalization_statistics` gives a whole frame's parameters so that tiles of a huge frame
are normalised like the frame.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from seg.errors import ImageError, SettingsError, check_keys
from seg.images.frames import supported_dtype

# Pixels per channel used to estimate percentiles: enough for a 0.5 % tail to hold >1000 samples.
_PERCENTILE_SAMPLES = 1 << 18


_MODES = ("percentile", "dtype", "none")


@dataclass(frozen=True)
class Normalization:
    """How raw intensities are scaled before features are computed.

    Parameters
    ----------
    mode : {"percentile", "dtype", "none"}
        ``"percentile"``: per channel, ``(x - p_low) / (p_high - p_low)`` with robust
        percentiles of that frame (not clipped). ``"dtype"``: divide by the dtype maximum
        (uint8 255, uint16 65535; floats unchanged). ``"none"``: raw values as float32.
    low, high : float
        Percentiles in percent, ``0 <= low < high <= 100``; used by ``"percentile"`` only.
    """

    mode: str = "percentile"
    low: float = 0.5
    high: float = 99.5

    def __post_init__(self) -> None:
        if not isinstance(self.mode, str) or self.mode not in _MODES:
            raise SettingsError(f"Normalization mode must be one of {', '.join(_MODES)}; got {self.mode!r}")
        low, high = _percent(self.low, "low"), _percent(self.high, "high")
        if not low < high:
            raise SettingsError(f"Normalization low percentile ({low}) must be below high ({high}), e.g. 0.5 and 99.5")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form, the inverse of :meth:`from_dict`."""
        return {"mode": self.mode, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalization:
        """Build from :meth:`to_dict` output (e.g. read from a model file, so untrusted).

        Missing keys take their defaults; unknown keys or wrong types raise SettingsError.
        """
        return cls(**check_keys(data, (), ("mode", "low", "high"), what="Normalization settings"))


def _percent(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SettingsError(f"Normalization {name} must be a number of percent, got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 100.0:  # also refuses NaN
        raise SettingsError(f"Normalization {name} must be between 0 and 100 percent, got {value}")
    return value


def normalize(frame: np.ndarray, normalization: Normalization = Normalization()) -> np.ndarray:
    """Scale one frame's intensities to roughly [0, 1] as ``normalization`` says.

    Parameters
    ----------
    frame : (H, W, C) or (H, W) ndarray
        Any dtype :func:`as_frames` accepts.
    normalization : Normalization
        Percentile mode estimates each channel's percentiles from a deterministic lattice of at
        most 262 144 pixels (all pixels of smaller frames); results are not clipped, so the
        brightest 0.5 % keep their contrast for the features. A channel whose percentiles
        coincide uses its min/max instead; a constant channel becomes 0.

    Returns
    -------
    normalised : ndarray of float32, same shape as ``frame``
        A new array. The uint8 version of a scene and its uint16 version (values x 257 or x 256)
        give the same result in percentile mode.
    """
    if not isinstance(normalization, Normalization):
        raise TypeError(f"normalization must be a Normalization, got {type(normalization).__name__}")
    array = np.asarray(frame)
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise ImageError(f"normalize needs an (H, W) or (H, W, C) frame, got shape {array.shape}")
    planes = supported_dtype(array if array.ndim == 3 else array[..., None], "the frame")
    out = planes.astype(np.float32, order="C")  # a fresh C-ordered copy, scaled in place below
    if normalization.mode == "dtype" and planes.dtype.kind == "u":
        out /= np.float32(np.iinfo(planes.dtype).max)
    elif normalization.mode == "percentile":
        statistics = _percentile_statistics(planes, normalization)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is found and named below
            _stretch_inplace(out, statistics[:, 0], statistics[:, 1])
        if planes.dtype.kind == "f" and not np.isfinite(out).all():
            raise ImageError(
                f"Cannot normalise the frame: its values range from {float(planes.min()):.3g} to "
                f"{float(planes.max()):.3g}, too wide to stretch in float32 (differences overflow). "
                "Rescale the image (e.g. to 0..1) or clip its outliers, and save it again."
            )
    return out if array.ndim == 3 else out[..., 0]


def normalization_statistics(frame: np.ndarray, normalization: Normalization) -> np.ndarray | None:
    """The per-channel parameters :func:`normalize` uses for a whole frame.

    Tiles of a huge frame must be normalised with the whole frame's statistics, not their own.

    Parameters
    ----------
    frame : (H, W) or (H, W, C) array
        uint8, uint16 or float32 (a ``np.memmap`` is only sampled, plus a min/max pass over a
        channel whose percentiles coincide).
    normalization : Normalization

    Returns
    -------
    (C, 2) float64 array or None
        ``[offset, scale]`` per channel in percentile mode, so that ``normalize(frame)`` equals
        ``(frame - offset) * scale`` computed in float32; ``None`` for the modes that act pixel by
        pixel ("dtype", "none"), where any window can be normalised on its own.
    """
    if normalization.mode != "percentile":
        return None
    # No dtype conversion pass here: the frame may be a memory-mapped huge image (only sampled).
    planes = frame if frame.ndim == 3 else frame[..., None]
    return _percentile_statistics(planes, normalization)


def _percentile_statistics(planes: np.ndarray, normalization: Normalization) -> np.ndarray:
    """(C, 2) [offset, scale]: robust percentiles; flat channels fall back to min/max, then 0."""
    height, width, channels = planes.shape
    sample = planes.reshape(height * width, channels)[:: percentile_sample_step(height, width)]
    return sample_statistics(sample, normalization, lambda c: (planes[..., c].min(), planes[..., c].max()))


def sample_statistics(
    sample: np.ndarray,
    normalization: Normalization,
    channel_range: Callable[[int], tuple[float, float]],
) -> np.ndarray:
    """Percentile-mode ``[offset, scale]`` per channel from a frame's percentile sample.

    Parameters
    ----------
    sample : (N, C) array
        The frame's pixels at the flat (row-major) indices ``0, step, 2 * step, ...`` with
        ``step = percentile_sample_step(H, W)``, in any order (percentiles ignore order); a frame
        read block by block (``seg.batch.blockwise``) gathers them per block.
    normalization : Normalization
    channel_range : callable
        ``channel_range(c) -> (min, max)`` of the whole frame's channel ``c``; called only for a
        channel whose percentiles coincide.

    Returns
    -------
    (C, 2) float64 array
        As :func:`normalization_statistics`.
    """
    low, high = _sample_percentiles(sample, normalization.low, normalization.high)
    for channel in np.flatnonzero(high <= low):  # e.g. sparse bright spots on an even background
        low[channel], high[channel] = channel_range(int(channel))
    span = high - low
    scale = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)
    return np.stack([low, scale], axis=1)


def _stretch_inplace(out: np.ndarray, low: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """out = (out - low) * scale per channel, in float32."""
    height, width, channels = out.shape
    # Broadcasting a length-C vector is slow (inner loop of C); tile it along whole rows instead.
    rows = out.reshape(height, width * channels)
    rows -= np.tile(low.astype(np.float32), width)
    rows *= np.tile(scale.astype(np.float32), width)
    return out


def _sample_percentiles(sample: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (low, high) percentiles, float64, of an (N, C) pixel sample."""
    channels = sample.shape[1]
    if sample.dtype.kind == "u":
        per_channel = [_integer_percentiles(sample[:, c], (low, high)) for c in range(channels)]
        bounds = np.stack(per_channel, axis=1)
    else:
        # One contiguous row per channel: numpy's selection along a strided axis is slower.
        rows = np.ascontiguousarray(sample.T, dtype=np.float64)
        bounds = np.percentile(rows, [low, high], axis=1)
    return bounds[0].copy(), bounds[1].copy()


def percentile_sample_step(height: int, width: int) -> int:
    """Stride through the raster giving <= _PERCENTILE_SAMPLES pixels on a slanted lattice.

    The stride depends on the shape only, so the same scene in another dtype samples the same
    pixels; being coprime with the width, it does not sample the same columns in every row.
    """
    step = max(1, -(-(height * width) // _PERCENTILE_SAMPLES))
    while step > 1 and math.gcd(step, width) != 1:
        step += 1
    return step


def _integer_percentiles(values: np.ndarray, percents: tuple[float, float]) -> np.ndarray:
    """numpy's linear-interpolation percentiles, from a histogram instead of a sort."""
    cumulative = np.cumsum(np.bincount(values))
    positions = np.asarray(percents) / 100.0 * (values.size - 1)
    below = np.floor(positions)
    above = np.minimum(below + 1, values.size - 1)
    value_below = np.searchsorted(cumulative, below, side="right").astype(np.float64)
    value_above = np.searchsorted(cumulative, above, side="right").astype(np.float64)
    return value_below + (value_above - value_below) * (positions - below)
