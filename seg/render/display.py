"""Any image frame as viewable 8-bit RGB: which channels to show, robust contrast stretch.

Statistics come from a deterministic subsample and 8/16-bit images are stretched through lookup
tables, so a display image of a large frame costs little.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np

from seg.errors import ImageError, SettingsError

# Percentiles of a display stretch are computed on at most this many pixels (a strided grid).
_SAMPLE_PIXELS = 1 << 18
_BLOCK_ROWS = 32


def _pick_channels(n_channels: int, channels: int | Sequence[int] | None) -> tuple[int, int, int]:
    """Which image channel feeds red, green and blue."""
    if channels is None:
        if n_channels == 1:
            return (0, 0, 0)
        if n_channels == 2:
            return (0, 1, 0)  # magenta / green: the colour-blind-safe two-channel convention
        return (0, 1, 2)
    if isinstance(channels, (int, np.integer)):
        picked = [int(channels)]
    else:
        try:
            picked = [operator.index(c) for c in channels]
        except TypeError:
            raise SettingsError(f"channels must be an index or a list of 1-3 indices, got {channels!r}") from None
    if not 1 <= len(picked) <= 3:
        raise SettingsError(f"channels must list 1, 2 or 3 channel indices, got {len(picked)}: {channels!r}")
    bad = [c for c in picked if not 0 <= c < n_channels]
    if bad:
        raise SettingsError(
            f"channel {bad[0]} does not exist: the image has {n_channels} channel(s), indices 0..{n_channels - 1}"
        )
    if len(picked) == 1:
        return (picked[0],) * 3
    if len(picked) == 2:
        return (picked[0], picked[1], picked[0])
    return (picked[0], picked[1], picked[2])


def _sample(data: np.ndarray) -> np.ndarray:
    """A deterministic strided subsample of (H, W, ...) data with at most ~_SAMPLE_PIXELS pixels."""
    step = max(1, math.ceil(math.sqrt(data.shape[0] * data.shape[1] / _SAMPLE_PIXELS)))
    return data[::step, ::step]


def _percentile_limits(data: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """Robust (low, high) percentiles of data, on a subsample; falls back to min/max, then dtype range."""
    sample = _sample(data)
    if data.dtype in (np.uint8, np.uint16):
        counts = np.bincount(sample.ravel(), minlength=256)
        cdf = np.cumsum(counts)
        last = cdf[-1] - 1
        # The k-th smallest value (0-based) is the first v with cdf[v] > k.
        lo = float(np.searchsorted(cdf, math.floor(low / 100 * last), side="right"))
        hi = float(np.searchsorted(cdf, math.ceil(high / 100 * last), side="right"))
    else:
        finite = sample[np.isfinite(sample)] if data.dtype.kind == "f" else sample.ravel()
        lo, hi = (float(v) for v in np.percentile(finite, [low, high])) if finite.size else (0.0, 0.0)
    if hi > lo:
        return lo, hi
    # Sparse images (a few bright spots on a flat background) have equal percentiles: use all pixels.
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
    if hi > lo:
        return lo, hi
    # A constant image: show it on its dtype's scale (0 -> black, uint8 128 / float 0.5 -> mid-grey).
    return 0.0, (float(np.iinfo(data.dtype).max) if data.dtype.kind in "ui" else 1.0)


def _stretch(data: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map lo..hi linearly to 0..255 (clipped, rounded) -> uint8 of the same shape."""
    scale = 255.0 / (hi - lo)
    if data.dtype in (np.uint8, np.uint16):
        # A lookup table over every possible value is cheaper than arithmetic on every pixel.
        domain = np.arange(256 if data.dtype == np.uint8 else 65536, dtype=np.float32)
        return _lookup(_stretch_floats(domain, lo, scale), data)
    out = np.empty(data.shape, np.uint8)
    for start in range(0, data.shape[0], _BLOCK_ROWS):  # blocks keep the float temporaries in cache
        block = slice(start, start + _BLOCK_ROWS)
        out[block] = _stretch_floats(data[block], lo, scale)
    return out


def _lookup(table: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``table[data]`` in blocks of rows: np.take turns indices into 8-byte integers, and that
    temporary is 2x faster when it stays in cache."""
    out = np.empty(data.shape, table.dtype)
    for start in range(0, data.shape[0], _BLOCK_ROWS):
        block = slice(start, start + _BLOCK_ROWS)
        np.take(table, data[block], out=out[block])
    return out


def _stretch_floats(data: np.ndarray, lo: float, scale: float) -> np.ndarray:
    work = np.subtract(data, lo - 0.5 / scale, dtype=np.float32)
    work *= np.float32(scale)
    np.fmax(work, 0.0, out=work)  # fmax/fmin, unlike clip, also turn NaN into 0 (no cast warnings)
    np.fmin(work, 255.0, out=work)
    return work.astype(np.uint8)


def to_display_rgb(
    frame: np.ndarray,
    *,
    channels: int | Sequence[int] | None = None,
    low: float = 0.5,
    high: float = 99.5,
    per_channel: bool | None = None,
) -> np.ndarray:
    """Make any image frame viewable: percentile contrast stretch to 8-bit RGB.

    Parameters
    ----------
    frame : (H, W) or (H, W, C) array, uint8, uint16, float32 (any real dtype works)
    channels : int or sequence of 1-3 ints, optional
        Which channels to show. One channel -> grey. Two -> magenta (first) and green (second).
        Three -> red, green, blue. Default: grey for 1 channel, magenta/green for 2, the first
        three channels for 3 or more.
    low, high : float
        Percentiles (0..100) mapped to black and white; computed on a strided subsample of at most
        ~262k pixels, so the result is deterministic and fast. If they coincide (sparse images)
        the minimum and maximum are used; a constant channel is shown on its dtype's scale
        (uint8 as-is, uint16 / 257, floats 0..1), so an all-zero image is black.
    per_channel : bool, optional
        Stretch each channel separately (fluorescence channels have unrelated ranges) or all with
        the same limits (keeps the hues of a colour photograph). Default: shared limits for uint8
        images, separate for everything else.

    Returns
    -------
    (H, W, 3) uint8
    """
    data = np.asarray(frame)
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise ImageError(f"a display frame must be (H, W) or (H, W, C), got shape {data.shape}; pick one frame")
    if data.shape[0] == 0 or data.shape[1] == 0 or data.shape[2] == 0:
        raise ImageError(f"image frame of shape {data.shape} is empty")
    if data.dtype == bool:
        data = data.view(np.uint8)
    if data.dtype.kind not in "uif":
        raise ImageError(f"image dtype {data.dtype} cannot be displayed; expected uint8, uint16 or float32")
    if not (0.0 <= low < high <= 100.0):
        raise SettingsError(f"display percentiles low={low!r}, high={high!r} are invalid; need 0 <= low < high <= 100")
    picks = _pick_channels(data.shape[2], channels)
    if per_channel is None:
        per_channel = data.dtype != np.uint8
    if per_channel or len(set(picks)) == 1:
        shown = {c: _stretch(data[..., c], *_percentile_limits(data[..., c], low, high)) for c in set(picks)}
        return np.stack([shown[c] for c in picks], axis=-1)
    source = data[..., :3] if picks == (0, 1, 2) else data[..., list(picks)]
    return _stretch(source, *_percentile_limits(source, low, high))
