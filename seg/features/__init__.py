"""Per-pixel features: Gaussian-smoothed intensity, edges and texture at several scales.

Two feature sets share one fast engine:

``"basic"``
    Exactly scikit-image's :func:`skimage.feature.multiscale_basic_features` (same values to
    float32 precision, same order): per scale the Gaussian-smoothed image (``mode="nearest"``),
    its Sobel edge magnitude and the two Hessian eigenvalues from :func:`numpy.gradient`.
``"extended"``
    In the spirit of ilastik. With ``G`` the image smoothed at scale σ (Gaussian truncated at
    3σ as in vigra, reflected boundaries) and central differences ``gx, gy, gxx, gxy, gyy``
    of ``G``:

    - intensity: ``G``;
    - edges: gradient magnitude ``sqrt(gx² + gy²)``, Laplacian of Gaussian ``gxx + gyy`` and
      difference of Gaussians ``G(previous σ) - G`` (the raw image before the first σ) — a
      band-pass per octave at no extra cost;
    - texture: structure-tensor eigenvalues (``gx², gx·gy, gy²`` integrated by a Gaussian of
      ``max(σ/2, 1)`` px, truncated at 3 of those) and Hessian eigenvalues, largest first.

    Derivatives are not scale-normalised: they are true derivatives of the smoothed image.

Speed comes from float32 output written once per pixel: the image is processed in row strips
on a small thread pool; inside a strip every Gaussian is computed only for the rows it needs
(vertical then horizontal pass, numba, GIL released) and one fused kernel derives and writes all
features of a row while that row of the output is still in cache. Derivatives are finite
differences of the smoothed image (as scikit-image does), so tiny scales such as 0.3 stay
well defined: they approach plain pixel differences.

Tiling: features of a crop padded by :meth:`FeatureSettings.margin` pixels on every side (clipped
at the image border, never artificially padded) equal the untiled features inside the crop.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from seg.errors import ImageError, SettingsError
from seg.features.kernels import (
    _assemble_basic,
    _assemble_extended,
    _gradient_products,
    _smooth_columns,
    _smooth_rows,
)

__all__ = [
    "FEATURE_SETS",
    "CHANNEL_MODES",
    "FeatureSettings",
    "PRESETS",
    "DEFAULT_PRESET",
    "compute_features",
]

FEATURE_SETS: tuple[str, ...] = ("basic", "extended")
CHANNEL_MODES: tuple[str, ...] = ("separate", "luminance")
MIN_SIGMA = 0.1          # below this the Gaussian kernel is a single tap: the image itself
MAX_SIGMA = 64.0         # kernels of 513 taps; beyond that tiles and memory get silly
MAX_NUM_SIGMA = 16
MAX_CHANNELS = 64

_TRUNCATE = 4.0              # basic: kernel radius int(4 sigma + 0.5), as scipy and scikit-image
_EXTENDED_TRUNCATE = 3.0     # extended: 3 sigma as vigra (ilastik); 25 % fewer taps, same use
_STRUCTURE_RATIO = 0.5       # integration scale of the structure tensor = 0.5 sigma (ilastik)
_STRUCTURE_MIN = 1.0         # ... but at least 1 px, else the tensor is rank one (λ2 == 0)
_STRIP_BYTES = 32 * 2**20    # scratch memory per strip (one strip per worker at a time)

# Names of the per-scale features, grouped by toggle, in output order.
_KINDS = {
    "basic": {
        "intensity": ("gaussian",),
        "edges": ("sobel edges",),
        "texture": ("hessian eigenvalue 1", "hessian eigenvalue 2"),
    },
    "extended": {
        "intensity": ("gaussian",),
        "edges": ("gradient magnitude", "laplacian of gaussian", "difference of gaussians"),
        "texture": (
            "structure tensor eigenvalue 1",
            "structure tensor eigenvalue 2",
            "hessian eigenvalue 1",
            "hessian eigenvalue 2",
        ),
    },
}
_GROUPS = ("intensity", "edges", "texture")


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSettings:
    """Which features to compute, at which scales; stored inside every model.

    Parameters
    ----------
    feature_set : {"extended", "basic"}
        ``"basic"`` equals :func:`skimage.feature.multiscale_basic_features`; ``"extended"`` adds
        Laplacian, difference of Gaussians and structure-tensor features (see module docstring).
    intensity, edges, texture : bool
        Feature groups; at least one must be on.
    sigma_min, sigma_max : float
        Smallest and largest Gaussian scale in pixels, ``0.1 <= sigma_min <= sigma_max <= 64``.
    num_sigma : int or None
        Number of scales, log-spaced between the two (1..16). ``None``: one per octave,
        ``int(log2(sigma_max) - log2(sigma_min) + 1)``, as scikit-image.
    channel_mode : {"separate", "luminance"}
        ``"separate"``: every feature for every channel. ``"luminance"``: intensity per channel,
        edges and texture once, on the channel mean (far fewer features for RGB). Identical for
        single-channel images.
    """

    feature_set: str = "extended"
    intensity: bool = True
    edges: bool = True
    texture: bool = True
    sigma_min: float = 0.7
    sigma_max: float = 16.0
    num_sigma: int | None = None
    channel_mode: str = "separate"

    def __post_init__(self) -> None:
        _check_choice("feature_set", self.feature_set, FEATURE_SETS)
        _check_choice("channel_mode", self.channel_mode, CHANNEL_MODES)
        for name in _GROUPS:
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise SettingsError(f"FeatureSettings.{name} must be True or False, got {value!r}")
            object.__setattr__(self, name, bool(value))
        if not (self.intensity or self.edges or self.texture):
            raise SettingsError(
                "At least one of intensity, edges or texture must be enabled "
                "(all three are False): switch one of them on."
            )
        sigma_min = _check_number("sigma_min", self.sigma_min)
        sigma_max = _check_number("sigma_max", self.sigma_max)
        if not MIN_SIGMA <= sigma_min <= MAX_SIGMA:
            raise SettingsError(
                f"sigma_min must be between {MIN_SIGMA} and {MAX_SIGMA} pixels, got {sigma_min}"
            )
        if not sigma_min <= sigma_max <= MAX_SIGMA:
            raise SettingsError(
                f"sigma_max must be between sigma_min ({sigma_min}) and {MAX_SIGMA} pixels, "
                f"got {sigma_max}"
            )
        object.__setattr__(self, "sigma_min", sigma_min)
        object.__setattr__(self, "sigma_max", sigma_max)
        if self.num_sigma is not None:
            if isinstance(self.num_sigma, (bool, np.bool_)) or not isinstance(
                self.num_sigma, (int, np.integer)
            ):
                raise SettingsError(
                    f"num_sigma must be a whole number or None, got {self.num_sigma!r}"
                )
            object.__setattr__(self, "num_sigma", int(self.num_sigma))
        count = self._num_sigma()
        if not 1 <= count <= MAX_NUM_SIGMA:
            raise SettingsError(
                f"num_sigma must be between 1 and {MAX_NUM_SIGMA}, got {count}"
                + (" (derived from sigma_min and sigma_max)" if self.num_sigma is None else "")
            )

    # -- scales and layout ---------------------------------------------------------------------

    def _num_sigma(self) -> int:
        if self.num_sigma is not None:
            return self.num_sigma
        return int(np.log2(self.sigma_max) - np.log2(self.sigma_min) + 1)

    def sigmas(self) -> tuple[float, ...]:
        """Gaussian scales in pixels, ascending, computed exactly as scikit-image does."""
        values = np.logspace(
            np.log2(self.sigma_min), np.log2(self.sigma_max),
            num=self._num_sigma(), base=2, endpoint=True,
        )
        return tuple(float(s) for s in values)

    def n_features(self, n_channels: int) -> int:
        """Number of features F computed for an image with ``n_channels`` channels."""
        return len(_layout(self, n_channels))

    def feature_names(self, n_channels: int) -> list[str]:
        """Human-readable name of every feature, in output order, e.g. ``"ch0 gaussian σ=1.0"``."""
        labels = _sigma_labels(self.sigmas())
        names = []
        for item, _kind, name in _layout(self, n_channels):
            source = "luminance" if item.luminance else f"ch{item.input}"
            sigma = labels[item.sigma]
            if name == "difference of gaussians":
                previous = labels[item.sigma - 1] if item.sigma else "0"
                sigma = f"{previous}−{sigma}"
            names.append(f"{source} {name} σ={sigma}")
        return names

    def margin(self) -> int:
        """Context pixels a tile needs on each side so its interior equals untiled features.

        Largest Gaussian radius plus the finite-difference stencil (1 px, 2 px for the
        twice-applied ``numpy.gradient`` of ``"basic"``) plus, for extended texture, the radius
        of the structure tensor's integration Gaussian.
        """
        sigma = self.sigmas()[-1]    # every term grows with sigma
        stencil = _halo(self, sigma, self.intensity, self.edges, self.texture)
        return _radius(sigma, _truncate(self)) + stencil

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain JSON-able dict of every field (round-trips through :meth:`from_dict`)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureSettings":
        """Rebuild settings from :meth:`to_dict` output, e.g. read from an untrusted model file.

        Raises
        ------
        SettingsError
            If ``data`` is not a mapping, has unknown or missing keys, or any value has the wrong
            type or range.
        """
        if not isinstance(data, Mapping):
            raise SettingsError(
                f"Feature settings must be a JSON object (dict), got {type(data).__name__}"
            )
        names = [f.name for f in fields(cls)]
        unknown = sorted(str(key) for key in data if key not in names)
        if unknown:
            raise SettingsError(
                f"Unknown feature setting(s) {unknown}; expected only {names}. "
                "The model file may come from a newer or foreign program."
            )
        missing = [name for name in names if name not in data]
        if missing:
            raise SettingsError(f"Feature settings are missing {missing}; expected all of {names}")
        return cls(**{name: data[name] for name in names})


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise SettingsError(f"FeatureSettings.{name} must be one of {list(choices)}, got {value!r}")


def _check_number(name: str, value: object) -> float:
    number = (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, number):
        raise SettingsError(f"FeatureSettings.{name} must be a number of pixels, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise SettingsError(f"FeatureSettings.{name} must be a finite number, got {value}")
    return value


def _sigma_labels(sigmas: tuple[float, ...]) -> list[str]:
    """Short labels: "0.7", "1.53", "16.0"; more digits only if needed to tell scales apart."""
    for digits in (2, 4, 8):
        labels = [f"{sigma:.{digits}f}".rstrip("0") for sigma in sigmas]
        labels = [text + "0" if text.endswith(".") else text for text in labels]
        if len(set(labels)) == len(labels):
            break
    return labels


def _radius(sigma: float, truncate: float = _TRUNCATE) -> int:
    """Gaussian kernel radius as scipy.ndimage computes it (and so scikit-image)."""
    return int(truncate * sigma + 0.5)


def _truncate(settings: FeatureSettings) -> float:
    return _TRUNCATE if settings.feature_set == "basic" else _EXTENDED_TRUNCATE


def _structure_sigma(sigma: float) -> float:
    return max(_STRUCTURE_RATIO * sigma, _STRUCTURE_MIN)


def _halo(settings: FeatureSettings, sigma: float, intensity: bool, edges: bool,
          texture: bool) -> int:
    """Rows of the smoothed image needed beyond a pixel to derive its features; -1: none."""
    if texture:
        if settings.feature_set == "basic":
            return 2                                    # numpy.gradient applied twice
        # gradient, then integration Gaussian
        return 1 + _radius(_structure_sigma(sigma), _EXTENDED_TRUNCATE)
    if edges:
        return 1
    return 0 if intensity else -1


@dataclass(frozen=True)
class _Item:
    input: int        # index into the stacked inputs: channels, then the luminance (if any)
    sigma: int        # index into settings.sigmas()
    luminance: bool


def _layout(settings: FeatureSettings, n_channels: int) -> list[tuple[_Item, int, str]]:
    """Every output feature in order as (source and scale, kind index, kind name)."""
    whole = isinstance(n_channels, (int, np.integer)) and not isinstance(n_channels, bool)
    if not whole or not 1 <= n_channels <= MAX_CHANNELS:
        raise ImageError(
            f"n_channels must be a whole number from 1 to {MAX_CHANNELS}, got {n_channels!r}"
        )
    kinds = _KINDS[settings.feature_set]
    all_kinds = [name for group in _GROUPS for name in kinds[group]]
    wanted = {group: getattr(settings, group) for group in _GROUPS}
    n_sigma = len(settings.sigmas())
    layout: list[tuple[_Item, int, str]] = []

    def add(input_index: int, groups: Iterable[str], luminance: bool) -> None:
        for s in range(n_sigma):
            item = _Item(input_index, s, luminance)
            for group in groups:
                if wanted[group]:
                    layout.extend((item, all_kinds.index(name), name) for name in kinds[group])

    if settings.channel_mode == "luminance" and n_channels > 1:
        for c in range(n_channels):
            add(c, ["intensity"], False)
        add(n_channels, ["edges", "texture"], True)
    else:
        for c in range(n_channels):
            add(c, _GROUPS, False)
    return layout


PRESETS: dict[str, FeatureSettings] = {
    # Membranes, fibres, small spots: finest scale close to single pixels.
    "fine detail": FeatureSettings(sigma_min=0.5, sigma_max=8.0, channel_mode="luminance"),
    # A bit of everything: 0.7 .. 16 px, one scale per octave. 40 features grey, 50 RGB.
    "balanced": FeatureSettings(sigma_min=0.7, sigma_max=16.0, channel_mode="luminance"),
    # Large cells, organs, regions of texture: 2 .. 32 px.
    "large structures": FeatureSettings(sigma_min=2.0, sigma_max=32.0, channel_mode="luminance"),
    # scikit-image's trainable segmentation with multiscale_basic_features, sigma 1 .. 16.
    "scikit-image gallery": FeatureSettings(
        feature_set="basic", sigma_min=1.0, sigma_max=16.0, channel_mode="separate"
    ),
}
DEFAULT_PRESET: str = "balanced"


# --------------------------------------------------------------------------------------------
# Public computation
# --------------------------------------------------------------------------------------------


def compute_features(
    frame: np.ndarray,
    settings: FeatureSettings | None = None,
    *,
    workers: int | None = None,
) -> np.ndarray:
    """Compute per-pixel features of one normalised frame.

    Parameters
    ----------
    frame : (H, W) or (H, W, C) ndarray, floating point
        Normalised image (see :func:`seg.images.normalize`); converted to float32.
    settings : FeatureSettings, optional
        Defaults to ``PRESETS[DEFAULT_PRESET]``.
    workers : int, optional
        Threads to use; default one per available core (at most 4).

    Returns
    -------
    features : (H, W, F) float32 C-contiguous ndarray
        ``F == settings.n_features(C)``, in the order of ``settings.feature_names(C)``.

    Raises
    ------
    ImageError
        If ``frame`` is not a 2-D/3-D floating array with 1..64 channels and finite values.
    SettingsError
        If ``settings`` is not a :class:`FeatureSettings`.
    """
    if settings is None:
        settings = PRESETS[DEFAULT_PRESET]
    if not isinstance(settings, FeatureSettings):
        raise SettingsError(f"settings must be a FeatureSettings, got {type(settings).__name__}")
    inputs, n_channels = _as_inputs(frame, settings)
    height, width = inputs.shape[1:]
    layout = _layout(settings, n_channels)
    sigmas = settings.sigmas()
    plan = _Plan.build(settings, layout, len(inputs), sigmas)
    out = np.empty((height, width, len(layout)), np.float32)
    n_workers = _worker_count(workers)
    strip = _strip_height(plan, height, width, n_workers)
    _run(lambda r0: plan.compute_strip(inputs, out, r0, min(r0 + strip, height)),
         range(0, height, strip), n_workers)
    return out


def _as_inputs(frame: object, settings: FeatureSettings) -> tuple[np.ndarray, int]:
    """Validated frame -> (inputs, C): channel planes (C, H, W) float32, plus their mean as
    one more plane in luminance mode (one copy, which also shields the threads from callers)."""
    if not isinstance(frame, np.ndarray):
        raise ImageError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.ndim not in (2, 3):
        raise ImageError(
            f"frame must be 2-D (H, W) or 3-D (H, W, C), got shape {frame.shape}; "
            "pass one frame of a (T, H, W, C) image at a time"
        )
    if frame.dtype.kind != "f":
        raise ImageError(
            f"frame must be a normalised floating-point image, got dtype {frame.dtype}; "
            "normalise it first (seg.images.normalize)"
        )
    if frame.ndim == 2:
        frame = frame[:, :, None]
    height, width, n_channels = frame.shape
    if height < 1 or width < 1 or not 1 <= n_channels <= MAX_CHANNELS:
        raise ImageError(
            f"frame of shape {frame.shape} is not usable: need at least 1x1 pixels and "
            f"1..{MAX_CHANNELS} channels"
        )
    luminance = settings.channel_mode == "luminance" and n_channels > 1
    inputs = np.empty((n_channels + luminance, height, width), np.float32)
    channels = inputs[:n_channels]
    channels[...] = np.moveaxis(frame, -1, 0)
    if not np.isfinite(channels).all():
        raise ImageError(
            "frame contains NaN or infinite values; replace them before computing features"
        )
    if luminance:
        np.mean(channels, axis=0, dtype=np.float32, out=inputs[n_channels])
    return inputs, n_channels


def _worker_count(workers: int | None) -> int:
    if workers is None:
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - macOS / Windows
            available = os.cpu_count() or 1
        return max(1, min(available, 4))
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise SettingsError(f"workers must be a positive whole number or None, got {workers!r}")
    return int(workers)


def _run(task: Callable[[int], None], items: Iterable[int], workers: int) -> None:
    items = list(items)
    if workers == 1 or len(items) == 1:
        for item in items:
            task(item)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        for _ in pool.map(task, items):  # re-raises the first error of any strip
            pass


def _strip_height(plan: "_Plan", height: int, width: int, workers: int) -> int:
    """Rows per strip: big enough to amortise the halo, small enough for memory and balance."""
    rows_fixed, rows_per_row = plan.scratch_rows()
    by_memory = max(32, (_STRIP_BYTES // (4 * width) - rows_fixed) // rows_per_row)
    by_balance = max(32, -(-height // (2 * workers)))   # >= 2 strips per worker
    return max(1, min(256, by_memory, by_balance, height))


def _gaussian_weights(sigma: float, dtype: type, truncate: float = _TRUNCATE) -> np.ndarray:
    """Right half (centre first) of scipy.ndimage's normalised Gaussian kernel."""
    radius = _radius(sigma, truncate)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi /= phi.sum()
    return np.ascontiguousarray(phi[radius:], dtype=dtype)


@dataclass
class _Plan:
    """Everything about a computation that does not depend on the rows of a strip."""

    basic: bool
    slots: np.ndarray          # (n_inputs, n_sigma, n_kinds) int64 output index or -1
    halos: np.ndarray          # (n_inputs, n_sigma) rows of smoothed image needed, -1 none
    weights: list[np.ndarray]  # per sigma, Gaussian half kernel
    structure: list[np.ndarray]  # per sigma, integration half kernel (extended)
    texture_index: np.ndarray  # (n_inputs,) index into the structure tensor stack, or -1

    @classmethod
    def build(cls, settings: FeatureSettings, layout: list, n_inputs: int,
              sigmas: tuple[float, ...]) -> "_Plan":
        basic = settings.feature_set == "basic"
        n_kinds = sum(len(v) for v in _KINDS[settings.feature_set].values())
        slots = np.full((n_inputs, len(sigmas), n_kinds), -1, np.int64)
        for index, (item, kind, _name) in enumerate(layout):
            slots[item.input, item.sigma, kind] = index
        groups = _KINDS[settings.feature_set]
        bounds = np.cumsum([0] + [len(groups[g]) for g in _GROUPS])
        halos = np.full((n_inputs, len(sigmas)), -1, np.int64)
        texture_index = np.full(n_inputs, -1, np.int64)
        for k in range(n_inputs):
            used = [bool((slots[k, :, bounds[g]:bounds[g + 1]] >= 0).any()) for g in range(3)]
            for s, sigma in enumerate(sigmas):
                halos[k, s] = _halo(settings, sigma, *used)
            if used[2] and not basic:
                texture_index[k] = texture_index.max() + 1
        dtype = np.float64 if basic else np.float32   # float64 sums reproduce scipy bit for bit
        return cls(
            basic=basic,
            slots=slots,
            halos=halos,
            weights=[_gaussian_weights(s, dtype, _truncate(settings)) for s in sigmas],
            structure=[
                _gaussian_weights(_structure_sigma(s), np.float32, _EXTENDED_TRUNCATE)
                for s in sigmas
            ],
            texture_index=texture_index,
        )

    @property
    def n_texture(self) -> int:
        return int(self.texture_index.max() + 1)

    @property
    def reach(self) -> int:
        """Radius of the widest structure-tensor integration kernel (0 without texture)."""
        return max(w.size - 1 for w in self.structure) if self.n_texture else 0

    def scratch_rows(self) -> tuple[int, int]:
        """Full-width float32 rows of scratch a strip of S rows needs: ``a + b * S`` as (a, b)."""
        used = self.halos >= 0
        fixed = 2 * int(self.halos[used].sum()) + 6 * self.reach
        return fixed, int(used.sum()) + 3 * self.n_texture * self.halos.shape[1] + 3

    def compute_strip(self, inputs: np.ndarray, out: np.ndarray, r0: int, r1: int) -> None:
        """Write ``out[r0:r1]`` from ``inputs`` (n_inputs, H, W)."""
        n_inputs, height, width = inputs.shape
        # Smoothed rows of every (input, sigma) in use, one block after the other in a single
        # scratch array; block (k, s) holds global rows r0 - halo .. r1 + halo.
        sizes = np.where(self.halos >= 0, (r1 - r0) + 2 * self.halos, 0)
        offsets = (np.cumsum(sizes) - sizes.ravel()).reshape(sizes.shape)
        scratch = np.empty((int(sizes.sum()), width), np.float32)
        for k, s in zip(*np.nonzero(self.halos >= 0)):
            halo = int(self.halos[k, s])
            base = r0 - halo
            block = scratch[offsets[k, s]:offsets[k, s] + sizes[k, s]]
            g0, g1 = max(0, r0 - halo), min(height, r1 + halo)
            _smooth_rows(inputs[k], 0, self.weights[s], self.basic, block, g0 - base, g0, g1,
                         height)
            _smooth_columns(block[g0 - base:g1 - base], self.weights[s], self.basic)
        if self.basic:
            _assemble_basic(scratch, offsets, self.halos, height, r0, r1, self.slots, out)
            return
        tensors = self._structure_tensors(scratch, offsets, sizes, height, r0, r1)
        _assemble_extended(inputs, scratch, offsets, self.halos, r0, r1, tensors,
                           self.texture_index, self.slots, out)

    def _structure_tensors(self, scratch: np.ndarray, offsets: np.ndarray, sizes: np.ndarray,
                           height: int, r0: int, r1: int) -> np.ndarray:
        """(n_texture, n_sigma, 3, r1 - r0, W): smoothed Jxx, Jxy, Jyy of the strip rows."""
        n_sigma, width = len(self.weights), scratch.shape[-1]
        if self.n_texture == 0:
            return np.empty((1, 1, 3, 1, 1), np.float32)     # never read
        tensors = np.empty((self.n_texture, n_sigma, 3, r1 - r0, width), np.float32)
        reach = self.reach
        products = np.empty((3, r1 - r0 + 2 * reach, width), np.float32)
        for k in np.flatnonzero(self.texture_index >= 0):
            t = self.texture_index[k]
            for s in range(n_sigma):
                weights = self.structure[s]
                block = scratch[offsets[k, s]:offsets[k, s] + sizes[k, s]]
                base = r0 - int(self.halos[k, s])
                g0, g1 = max(0, r0 - weights.size + 1), min(height, r1 + weights.size - 1)
                _gradient_products(block, base, height, g0, g1, products, r0 - reach)
                for c in range(3):
                    _smooth_rows(products[c], r0 - reach, weights, False, tensors[t, s, c],
                                 0, r0, r1, height)
                    _smooth_columns(tensors[t, s, c], weights, False)
        return tensors
