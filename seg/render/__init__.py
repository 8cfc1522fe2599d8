"""Turn images, labels and probabilities into pixels and files for people to look at.

Everything here is on the path from a finished stroke to the overlay the browser shows, so it is
written for speed: lookup tables instead of per-pixel arithmetic in float64, statistics on a
deterministic subsample, low PNG compression for display images.

Conventions (see ``contract.md``):

- Display images are ``(H, W, 3) uint8`` RGB.
- Labels are non-negative integer arrays, ``0`` = unlabelled, ``1..K`` = classes; ``colors[i]``
  is the colour of label ``i + 1``. Labels without a colour get :func:`color_for` of their index.
- Colours are lowercase ``"#rrggbb"`` strings; :func:`parse_color` also reads the ``"#rgb"``,
  ``"rgb(...)"`` and ``"rgba(...)"`` forms that canvas JSON and hand-edited files contain.
- Sizes are ``(height, width)`` like numpy shapes, never PIL's ``(width, height)``.
"""

from __future__ import annotations

import functools
import io
import math
import operator
import re
import warnings
from collections.abc import Sequence

import numpy as np
import tifffile
from PIL import Image

from seg.errors import ImageError, SettingsError

__all__ = [
    "PALETTE",
    "COLORMAPS",
    "color_for",
    "default_colors",
    "parse_color",
    "normalize_color",
    "to_display_rgb",
    "display_size",
    "resize_rgb",
    "resize_labels",
    "colorize",
    "blend",
    "blend_images",
    "outline",
    "heatmap",
    "encode_png",
    "encode_jpeg",
    "overlay_png",
    "mask_file",
    "probabilities_tiff",
]

PALETTE: tuple[str, ...] = (
    # Okabe & Ito (2008), "Color Universal Design", in their order, without black: black means
    # "unlabelled" in masks and would vanish on dark images.
    "#e69f00",  # orange
    "#56b4e9",  # sky blue
    "#009e73",  # bluish green
    "#f0e442",  # yellow
    "#0072b2",  # blue
    "#d55e00",  # vermillion
    "#cc79a7",  # reddish purple
    # Paul Tol's "muted" qualitative scheme (also colour-blind safe) for the 8th class onwards,
    # without its pale grey, which is reserved for missing data.
    "#332288",  # indigo
    "#88ccee",  # cyan
    "#44aa99",  # teal
    "#117733",  # green
    "#999933",  # olive
    "#ddcc77",  # sand
    "#cc6677",  # rose
    "#882255",  # wine
    "#aa4499",  # purple
)

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

# Percentiles of a display stretch are computed on at most this many pixels (a strided grid).
_SAMPLE_PIXELS = 1 << 18
_BLOCK_ROWS = 32
_MAX_LABEL = 65535
_MAX_COLOR_TEXT = 64


# --------------------------------------------------------------------------- colours


def color_for(index: int) -> str:
    """Default colour of the class at position ``index`` (0-based; label ``index + 1``).

    Cycles through :data:`PALETTE`, so any number of classes gets a colour.
    """
    try:
        position = operator.index(index)
    except TypeError:
        raise SettingsError(
            f"class index must be an integer, got {index!r}; pass the class position 0, 1, 2, ..."
        ) from None
    if position < 0:
        raise SettingsError(f"class index must be >= 0, got {position}")
    return PALETTE[position % len(PALETTE)]


def default_colors(n_classes: int) -> list[str]:
    """Default colours for ``n_classes`` classes: ``[color_for(0), ..., color_for(n - 1)]``."""
    return [color_for(i) for i in range(n_classes)]


_HEX = re.compile(r"#([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})")
_NUMBER = r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)%?)\s*"
_FUNCTIONAL = re.compile(rf"rgba?\({_NUMBER},{_NUMBER},{_NUMBER}(?:,{_NUMBER})?\)")


def parse_color(color: str) -> tuple[int, int, int]:
    """Read a colour string as ``(r, g, b)`` integers in 0..255.

    Parameters
    ----------
    color : str
        ``"#rrggbb"``, ``"#rgb"``, ``"#rrggbbaa"``, ``"rgb(r, g, b)"`` or ``"rgba(r, g, b, a)"``
        (components as 0..255 numbers or percentages, alpha 0..1 or a percentage and ignored).
        Case and surrounding spaces do not matter.

    Raises
    ------
    SettingsError
        Anything else, e.g. names ("red"), out-of-range components or non-strings. Class colours
        come from files that users edit, so nothing is guessed.
    """
    if not isinstance(color, str):
        raise SettingsError(
            f"colour must be a string like '#e69f00', got {type(color).__name__} {color!r:.80}"
        )
    text = color.strip().lower()
    if len(text) > _MAX_COLOR_TEXT:
        raise SettingsError(f"colour {color[:_MAX_COLOR_TEXT]!r}... is too long; use '#rrggbb'")
    match = _HEX.fullmatch(text)
    if match:
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    match = _FUNCTIONAL.fullmatch(text)
    if match:
        red, green, blue, alpha = match.groups()
        rgb = tuple(_color_component(value, color) for value in (red, green, blue))
        if alpha is not None:
            _check_alpha_component(alpha, color)
        return rgb  # type: ignore[return-value]
    raise SettingsError(
        f"colour {color!r} is not understood; use '#rrggbb' (e.g. '#e69f00'), '#rgb', 'rgb(r, g, b)' "
        "or 'rgba(r, g, b, a)'"
    )


def _color_component(text: str, color: str) -> int:
    value = float(text[:-1]) * 255.0 / 100.0 if text.endswith("%") else float(text)
    if not 0.0 <= value <= 255.0:
        raise SettingsError(f"colour {color!r} has component {text} outside 0..255 (0%..100%)")
    return math.floor(value + 0.5)  # halves round up, as browsers do


def _check_alpha_component(text: str, color: str) -> None:
    value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"colour {color!r} has alpha {text} outside 0..1 (0%..100%)")


def normalize_color(color: str) -> str:
    """Any colour :func:`parse_color` accepts, as the canonical lowercase ``"#rrggbb"``."""
    red, green, blue = parse_color(color)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _rgb_of(color: object) -> tuple[int, int, int]:
    """A colour given as a string or as three 0..255 integers."""
    if isinstance(color, str):
        return parse_color(color)
    try:
        values = [operator.index(v) for v in np.asarray(color).tolist()]
    except TypeError:
        values = []
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise SettingsError(f"colour {color!r:.80} is neither a colour string nor three integers 0..255")
    return values[0], values[1], values[2]


@functools.lru_cache(maxsize=8)
def _palette_table(size: int) -> np.ndarray:
    """``(size, 3) uint8``: row 0 black, row i the default colour of label i (read-only, cached)."""
    palette = np.array([parse_color(color) for color in PALETTE], np.uint8)
    table = palette[(np.arange(size) - 1) % len(PALETTE)]
    table[0] = 0
    table.setflags(write=False)
    return table


def _color_table(colors: Sequence[object], size: int) -> np.ndarray:
    """``(size, 3) uint8`` RGB per label: row 0 black, row i the colour of label i."""
    if isinstance(colors, str):
        raise SettingsError(
            f"colors must be a list of colours (one per class), got the string {colors!r:.80}"
        )
    table = _palette_table(max(size, 1)).copy()
    for label, color in enumerate(colors, start=1):
        if label >= size:
            break
        table[label] = _rgb_of(color)
    return table


# --------------------------------------------------------------------------- labels


def _check_labels(labels: np.ndarray, name: str = "labels") -> tuple[np.ndarray, int]:
    """Validate a label array; returns it (bool viewed as uint8) and a lookup-table size > max."""
    labels = np.asarray(labels)
    if labels.dtype == bool:
        return labels.view(np.uint8), 2
    if labels.dtype.kind not in "ui":
        raise ImageError(
            f"{name} must be an integer array (0 = unlabelled, 1..K = classes), got dtype {labels.dtype}"
        )
    if labels.size == 0:
        raise ImageError(f"{name} is empty (shape {labels.shape}); pass a non-empty label image")
    if labels.dtype == np.uint8:
        return labels, 256  # no pass over the data needed: every uint8 value indexes the table
    if labels.dtype.kind == "i" and int(labels.min()) < 0:
        raise ImageError(f"{name} contains negative value {int(labels.min())}; labels must be 0..K")
    top = int(labels.max())
    if top > _MAX_LABEL:
        raise ImageError(f"{name} contains label {top}; at most {_MAX_LABEL} classes are supported")
    return labels, top + 1


def colorize(labels: np.ndarray, colors: Sequence[object]) -> np.ndarray:
    """Paint each label in its class colour.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) non-negative integer array
        0 = unlabelled, 1..K = classes.
    colors : sequence of colours
        ``colors[i]`` is the colour of label ``i + 1`` (strings :func:`parse_color` accepts, or
        three 0..255 integers). Labels beyond ``len(colors)`` get :func:`color_for` colours.

    Returns
    -------
    (..., 3) uint8
        Label 0 is black.
    """
    labels, size = _check_labels(labels)
    return np.take(_color_table(colors, size), labels, axis=0)


def _check_alpha(alpha: float) -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise SettingsError(f"overlay opacity alpha must be a number in 0..1, got {alpha!r}") from None
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"overlay opacity alpha must be in 0..1, got {alpha!r}")
    return value


def _check_rgb(rgb: np.ndarray, name: str = "rgb") -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageError(
            f"{name} must be an (H, W, 3) uint8 RGB image, got shape {rgb.shape} dtype {rgb.dtype}; "
            "convert with to_display_rgb"
        )
    return rgb


def blend(rgb: np.ndarray, labels: np.ndarray, colors: Sequence[object], alpha: float) -> np.ndarray:
    """Tint an image with the colours of its labels.

    Parameters
    ----------
    rgb : (H, W, 3) uint8
    labels : (H, W) non-negative integer array
        Pixels labelled 0 are left exactly unchanged.
    colors : sequence of colours
        ``colors[i]`` is the colour of label ``i + 1`` (see :func:`colorize`).
    alpha : float
        Opacity of the colours, 0 (image only) .. 1 (colours only).

    Returns
    -------
    (H, W, 3) uint8
        A new array: ``round(rgb * (1 - alpha) + colour * alpha)`` with alpha quantised to 1/256.
    """
    rgb = _check_rgb(rgb)
    labels, size = _check_labels(labels)
    if labels.shape != rgb.shape[:2]:
        raise ImageError(
            f"labels shape {labels.shape} does not match image shape {rgb.shape[:2]}; resize one "
            "of them (resize_labels / resize_rgb) first"
        )
    weight = int(round(_check_alpha(alpha) * 256))
    # Fixed-point mix: out = (rgb * keep[label] + add[label]) >> 8, exact for label 0 (keep 256,
    # add 128) and alpha 1; the largest intermediate, 255 * 256 + 128, fits in uint16.
    keep = np.full(size, 256 - weight, np.uint16)
    keep[0] = 256
    add = _color_table(colors, size).astype(np.uint16) * np.uint16(weight) + np.uint16(128)
    add[0] = 128
    # Two label dtypes only, so the kernel is compiled (and disk-cached) at most twice.
    labels = labels.astype(np.uint8 if size <= 256 else np.uint16, copy=False)
    out = np.empty(rgb.shape, np.uint8)
    _blend_kernel()(np.ascontiguousarray(rgb), np.ascontiguousarray(labels), keep, add, out)
    return out


def _blend_pixels(
    rgb: np.ndarray, labels: np.ndarray, keep: np.ndarray, add: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - runs compiled
    """One pass over the pixels (compiled by numba): numpy's size-3 inner loops were 8x slower."""
    height, width = labels.shape
    for i in range(height):
        for j in range(width):
            label = labels[i, j]
            factor = np.uint32(keep[label])
            for c in range(3):
                out[i, j, c] = (np.uint32(rgb[i, j, c]) * factor + add[label, c]) >> 8


@functools.lru_cache(maxsize=None)
def _blend_kernel():
    # Imported here so that `import seg.render` stays light; compiled on first use.
    import numba

    # As in seg.forest: a read-only install cannot store the cache; that costs time, not results.
    warnings.filterwarnings("ignore", category=numba.NumbaWarning, message=".*[Cc]ache.*")
    try:
        return numba.njit(nogil=True, cache=True)(_blend_pixels)
    except RuntimeError:  # numba found no writable cache directory: compile in memory each run
        return numba.njit(nogil=True)(_blend_pixels)


def blend_images(background: np.ndarray, foreground: np.ndarray, alpha: float) -> np.ndarray:
    """``round(background * (1 - alpha) + foreground * alpha)`` for two (H, W, 3) uint8 images.

    Used to lay a :func:`heatmap` (e.g. uncertainty) over the image.
    """
    background = _check_rgb(background, "background")
    foreground = _check_rgb(foreground, "foreground")
    if background.shape != foreground.shape:
        raise ImageError(
            f"foreground shape {foreground.shape} does not match background shape {background.shape}"
        )
    weight = int(round(_check_alpha(alpha) * 256))
    mixed = np.multiply(background, np.uint16(256 - weight), dtype=np.uint16)
    mixed += np.multiply(foreground, np.uint16(weight), dtype=np.uint16)
    mixed += np.uint16(128)
    return np.right_shift(mixed, 8).astype(np.uint8)


def outline(labels: np.ndarray) -> np.ndarray:
    """Keep only the pixels on a class boundary, for an "outline" display style.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) non-negative integer array

    Returns
    -------
    Same shape and dtype as ``labels``
        A labelled pixel keeps its label when one of its 4 neighbours has a different label,
        otherwise it becomes 0, so ``blend(rgb, outline(labels), colors, 1.0)`` draws each
        region's contour in its colour. The image border is not a boundary.
    """
    labels, _ = _check_labels(labels)
    edge = np.zeros(labels.shape, bool)
    vertical = labels[..., 1:, :] != labels[..., :-1, :]
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    horizontal = labels[..., :, 1:] != labels[..., :, :-1]
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    return np.where(edge, labels, labels.dtype.type(0))


# --------------------------------------------------------------------------- heatmaps


@functools.lru_cache(maxsize=None)
def _colormap_table(name: str) -> np.ndarray:
    stops = _COLORMAP_STOPS[name]
    rgb = np.frombuffer(bytes.fromhex(stops), np.uint8).reshape(-1, 3).astype(float)
    positions = np.linspace(0.0, 255.0, len(rgb))
    table = np.stack([np.interp(np.arange(256.0), positions, rgb[:, c]) for c in range(3)], axis=1)
    table = np.rint(table).astype(np.uint8)
    table.setflags(write=False)
    return table


def heatmap(
    values: np.ndarray, *, colormap: str = "viridis", vmin: float = 0.0, vmax: float = 1.0
) -> np.ndarray:
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


# --------------------------------------------------------------------------- display images


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
            raise SettingsError(
                f"channels must be an index or a list of 1-3 indices, got {channels!r}"
            ) from None
    if not 1 <= len(picked) <= 3:
        raise SettingsError(f"channels must list 1, 2 or 3 channel indices, got {len(picked)}: {channels!r}")
    bad = [c for c in picked if not 0 <= c < n_channels]
    if bad:
        raise SettingsError(
            f"channel {bad[0]} does not exist: the image has {n_channels} channel(s), "
            f"indices 0..{n_channels - 1}"
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
        raise ImageError(
            f"a display frame must be (H, W) or (H, W, C), got shape {data.shape}; pick one frame"
        )
    if data.shape[0] == 0 or data.shape[1] == 0 or data.shape[2] == 0:
        raise ImageError(f"image frame of shape {data.shape} is empty")
    if data.dtype == bool:
        data = data.view(np.uint8)
    if data.dtype.kind not in "uif":
        raise ImageError(f"image dtype {data.dtype} cannot be displayed; expected uint8, uint16 or float32")
    if not (0.0 <= low < high <= 100.0):
        raise SettingsError(
            f"display percentiles low={low!r}, high={high!r} are invalid; need 0 <= low < high <= 100"
        )
    picks = _pick_channels(data.shape[2], channels)
    if per_channel is None:
        per_channel = data.dtype != np.uint8
    if per_channel or len(set(picks)) == 1:
        shown = {c: _stretch(data[..., c], *_percentile_limits(data[..., c], low, high)) for c in set(picks)}
        return np.stack([shown[c] for c in picks], axis=-1)
    source = data[..., :3] if picks == (0, 1, 2) else data[..., list(picks)]
    return _stretch(source, *_percentile_limits(source, low, high))


def display_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The ``(height, width)`` to show an image at so its longer side is at most ``max_side``.

    Keeps the aspect ratio, never enlarges, and every side is at least 1 pixel.
    """
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ImageError(f"image {name} must be a positive integer, got {value!r}")
    if not isinstance(max_side, (int, np.integer)) or max_side < 1:
        raise SettingsError(f"max_side must be a positive integer number of pixels, got {max_side!r}")
    scale = min(1.0, max_side / max(height, width))
    return max(1, min(int(height), round(height * scale))), max(1, min(int(width), round(width * scale)))


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        height, width = (operator.index(v) for v in size)
    except (TypeError, ValueError):
        raise SettingsError(f"size must be (height, width) integers, got {size!r}") from None
    if height < 1 or width < 1:
        raise SettingsError(f"size must be positive (height, width), got {size!r}")
    return height, width


def resize_rgb(rgb: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize a display image to ``size = (height, width)``.

    Shrinking averages the source pixels each output pixel covers (box filter); enlarging is
    bilinear. Returns ``rgb`` itself when it already has that size.

    Parameters
    ----------
    rgb : (H, W, 3) or (H, W) uint8
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] not in (3, 4)):
        raise ImageError(
            f"resize_rgb needs an (H, W, 3) or (H, W) uint8 image, got shape {rgb.shape} dtype {rgb.dtype}"
        )
    height, width = _check_size(size)
    if (height, width) == rgb.shape[:2]:
        return rgb
    shrinking = height <= rgb.shape[0] and width <= rgb.shape[1]
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    resized = Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), resample=resample)
    return np.asarray(resized)


def _centre_indices(display: int, natural: int) -> np.ndarray:
    """Source index under the centre of each display pixel: floor((i + 0.5) * natural / display)."""
    return (2 * np.arange(display, dtype=np.int64) + 1) * natural // (2 * display)


def resize_labels(labels: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize labels by exact nearest-neighbour sampling (no new label values are invented).

    Display pixel ``(i, j)`` takes the label of the image pixel under its centre,
    ``floor((i + 0.5) * H / height)``, ``floor((j + 0.5) * W / width)`` — the same
    image = display * (natural / display) mapping that turns canvas strokes into image pixels.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) array (any dtype)
    size : (height, width)

    Returns
    -------
    (height, width) or (T, height, width), same dtype; ``labels`` itself when the size matches.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ImageError(f"labels must be (H, W) or (T, H, W), got shape {labels.shape}")
    height, width = _check_size(size)
    natural_h, natural_w = labels.shape[-2:]
    if (height, width) == (natural_h, natural_w):
        return labels
    if natural_h == 0 or natural_w == 0:
        raise ImageError(f"labels of shape {labels.shape} are empty")
    rows = np.take(labels, _centre_indices(height, natural_h), axis=-2)
    return np.take(rows, _centre_indices(width, natural_w), axis=-1)


# --------------------------------------------------------------------------- encoders and files


def encode_png(rgb: np.ndarray, *, compress_level: int = 1) -> bytes:
    """PNG bytes of an (H, W, 3), (H, W, 4) or (H, W) uint8 image.

    The default ``compress_level=1`` is several times faster than PIL's default 6 and only a
    little larger: display images are encoded after every stroke.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 3 and rgb.shape[2] == 1:
        rgb = rgb[..., 0]
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] not in (3, 4)):
        raise ImageError(
            "PNG encoding needs an (H, W, 3), (H, W, 4) or (H, W) uint8 image, "
            f"got shape {rgb.shape} dtype {rgb.dtype}"
        )
    if not isinstance(compress_level, (int, np.integer)) or not 0 <= compress_level <= 9:
        raise SettingsError(f"PNG compress_level must be an integer 0..9, got {compress_level!r}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", compress_level=int(compress_level))
    return buffer.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an (H, W, 3) or (H, W) uint8 image (an alpha channel is dropped)."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 3 and rgb.shape[2] in (1, 4):
        rgb = rgb[..., 0] if rgb.shape[2] == 1 else rgb[..., :3]
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] != 3):
        raise ImageError(
            f"JPEG encoding needs an (H, W, 3) or (H, W) uint8 image, got shape {rgb.shape} dtype {rgb.dtype}"
        )
    if not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise SettingsError(f"JPEG quality must be an integer 1..100, got {quality!r}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def overlay_png(
    rgb: np.ndarray, labels: np.ndarray, colors: Sequence[object], alpha: float, *, compress_level: int = 1
) -> bytes:
    """PNG bytes of :func:`blend` ``(rgb, labels, colors, alpha)``."""
    return encode_png(blend(rgb, labels, colors, alpha), compress_level=compress_level)


def mask_file(labels: np.ndarray, *, compress_level: int = 6) -> tuple[bytes, str]:
    """A segmentation as a file other tools open: the pixel values are exactly the labels.

    Parameters
    ----------
    labels : (H, W) or (T, H, W) non-negative integer array, values 0..65535

    Returns
    -------
    (bytes, extension)
        ``".png"`` (8-bit greyscale) for a single frame with labels <= 255, otherwise ``".tif"``:
        an ImageJ-compatible TIFF, 8-bit (labels <= 255) or 16-bit, one page per frame.
    """
    labels, size = _check_labels(labels)
    if labels.ndim == 3 and labels.shape[0] == 1:
        labels = labels[0]
    if labels.ndim not in (2, 3):
        raise ImageError(f"labels must be (H, W) or (T, H, W), got shape {labels.shape}")
    small = int(labels.max()) <= 255
    data = labels.astype(np.uint8 if small else np.uint16, copy=False)
    if labels.ndim == 2 and small:
        return encode_png(data, compress_level=compress_level), ".png"
    axes = "YX" if data.ndim == 2 else "TYX"
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.ascontiguousarray(data), imagej=True, metadata={"axes": axes})
    return buffer.getvalue(), ".tif"


def probabilities_tiff(proba: np.ndarray, *, class_names: Sequence[str] | None = None) -> bytes:
    """Class probabilities as a float32 ImageJ hyperstack TIFF with the class axis first.

    Parameters
    ----------
    proba : (H, W, K) or (T, H, W, K) array of numbers
    class_names : sequence of K str, optional
        Stored as ImageJ slice labels.

    Returns
    -------
    bytes
        A TIFF holding ``(K, H, W)`` (axes "CYX") or ``(T, K, H, W)`` (axes "TCYX") float32.
    """
    proba = np.asarray(proba)
    if proba.ndim not in (3, 4) or proba.dtype.kind not in "biuf" or proba.size == 0:
        raise ImageError(
            "probabilities must be (H, W, K) or (T, H, W, K) numbers, "
            f"got shape {proba.shape} dtype {proba.dtype}"
        )
    n_classes = proba.shape[-1]
    data = np.ascontiguousarray(np.moveaxis(proba, -1, -3), dtype=np.float32)
    metadata: dict[str, object] = {"axes": "CYX" if data.ndim == 3 else "TCYX"}
    if class_names is not None:
        names = [str(name) for name in class_names]
        if len(names) != n_classes:
            raise SettingsError(f"{len(names)} class names given for {n_classes} probability channels")
        frames = data.shape[0] if data.ndim == 4 else 1
        metadata["Labels"] = names * frames  # ImageJ wants one label per page, pages in T, C order
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, imagej=True, metadata=metadata)
    return buffer.getvalue()
