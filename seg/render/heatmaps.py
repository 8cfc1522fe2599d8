"""Heatmaps: maps of values (probability, uncertainty) in perceptually uniform colormaps."""

from __future__ import annotations

import functools
import math

import numpy as np

from seg.errors import ImageError, SettingsError

# 31 evenly spaced samples (as published in vega-scale's schemes) of the perceptually uniform
# colormaps of van der Walt & Smith (matplotlib, CC0); expanded to 256 entries by linear
# interpolation, which stays within a couple of 8-bit levels of the original tables.
_COLORMAP_STOPS = {
    "viridis": (
        "440154470e61481a6c482575472f7d443a834144873d4e8a39568c35608d31688e2d708e2a788e27818e"
        "23888e21918d1f988b1fa08822a8842ab07f35b77943bf7154c56866cc5d7ad1518fd744a5db36bcdf27"
        "d2e21be9e51afde725"
    ),
    "magma": (
        "0000040404130b0924150e3720114b2c11603b0f704a107957157e651a80721f817f24828c29819a2e80"
        "a8327db6377ac43c75d1426fde4968e95462f1605df76f5cfa7f5efc8f65fe9f6dfeaf78febf84fece91"
        "fddea0fcedaffcfdbf"
    ),
}
COLORMAPS: tuple[str, ...] = tuple(_COLORMAP_STOPS)


@functools.cache
def _colormap_table(name: str) -> np.ndarray:
    stops = _COLORMAP_STOPS[name]
    rgb = np.frombuffer(bytes.fromhex(stops), np.uint8).reshape(-1, 3).astype(float)
    positions = np.linspace(0.0, 255.0, len(rgb))
    table = np.stack([np.interp(np.arange(256.0), positions, rgb[:, c]) for c in range(3)], axis=1)
    table = np.rint(table).astype(np.uint8)
    table.setflags(write=False)
    return table


def heatmap(values: np.ndarray, *, colormap: str = "viridis", vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Colour a map of values (probability, uncertainty) with a perceptually uniform colormap.

    Parameters
    ----------
    values : (H, W) array of numbers
        ``vmin`` maps to the first colour, ``vmax`` to the last; values outside are clipped.
        NaN (no data) is drawn black.
    colormap : {"viridis", "magma"}
    vmin, vmax : float
        The value range, ``vmin < vmax``.

    Returns
    -------
    (H, W, 3) uint8
    """
    if colormap not in _COLORMAP_STOPS:
        raise SettingsError(f"colormap {colormap!r} is unknown; choose one of {', '.join(COLORMAPS)}")
    if not (math.isfinite(vmin) and math.isfinite(vmax) and vmin < vmax):
        raise SettingsError(f"heatmap range vmin={vmin!r}, vmax={vmax!r} is invalid; need finite vmin < vmax")
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise ImageError(f"heatmap values must be numbers, got dtype {values.dtype}")
    scale = 255.0 / (vmax - vmin)
    # (v - vmin) * scale + 0.5 as one subtract and one multiply; fmax/fmin also turn NaN into 0.
    index = np.subtract(values, vmin - 0.5 / scale, dtype=np.float32)
    index *= np.float32(scale)
    np.fmax(index, 0.0, out=index)
    np.fmin(index, 255.0, out=index)
    out = np.take(_colormap_table(colormap), index.astype(np.uint8), axis=0)
    if values.dtype.kind == "f":
        missing = np.isnan(values)
        if missing.any():
            out[missing] = 0
    return out
