"""Computing features: check the frame, plan the work, run it in row strips on a thread pool.

:func:`compute_features` turns one normalised frame into an ``(H, W, F) float32`` stack. A
:class:`_Plan` holds what does not depend on the rows (output slots, halos, Gaussian kernels);
each strip then calls the numba kernels of :mod:`seg.features.kernels`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from seg.errors import ImageError, SettingsError, is_whole_number
from seg.features.kernels import (
    assemble_basic,
    assemble_extended,
    gradient_products,
    smooth_columns,
    smooth_rows,
)
from seg.features.settings import (
    BASIC_TRUNCATE,
    DEFAULT_PRESET,
    EXTENDED_TRUNCATE,
    FEATURE_GROUPS,
    FEATURE_KINDS,
    MAX_CHANNELS,
    PRESETS,
    FeatureSettings,
    feature_layout,
    gaussian_radius,
    halo_rows,
    structure_sigma,
    truncate_for,
)

_STRIP_BYTES = 32 * 2**20  # scratch memory per strip (one strip per worker at a time)


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
    layout = feature_layout(settings, n_channels)
    sigmas = settings.sigmas()
    plan = _Plan.build(settings, layout, len(inputs), sigmas)
    out = np.empty((height, width, len(layout)), np.float32)
    n_workers = worker_count(workers)
    strip = _strip_height(plan, height, width, n_workers)
    run_parallel(
        lambda r0: plan.compute_strip(inputs, out, r0, min(r0 + strip, height)), range(0, height, strip), n_workers
    )
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
            f"frame of shape {frame.shape} is not usable: need at least 1x1 pixels and 1..{MAX_CHANNELS} channels"
        )
    used = settings.used_channels(n_channels)
    luminance = settings.channel_mode == "luminance" and len(used) > 1
    inputs = np.empty((len(used) + luminance, height, width), np.float32)
    channels = inputs[: len(used)]
    channels[...] = np.moveaxis(frame if len(used) == n_channels else frame[..., list(used)], -1, 0)
    if not np.isfinite(channels).all():
        raise ImageError("frame contains NaN or infinite values; replace them before computing features")
    if luminance:
        np.mean(channels, axis=0, dtype=np.float32, out=inputs[len(used)])
    return inputs, n_channels


def worker_count(workers: int | None) -> int:
    """Threads to use: ``workers``, or None for the usable cores (at most 4)."""
    if workers is None:
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - macOS / Windows
            available = os.cpu_count() or 1
        return max(1, min(available, 4))
    if not is_whole_number(workers, 1):
        raise SettingsError(f"workers must be a positive whole number or None, got {workers!r}")
    return int(workers)


def run_parallel(task: Callable[[Any], None], items: Iterable[Any], workers: int) -> None:
    """``task(item)`` for every item, on up to ``workers`` threads; re-raises the first error."""
    items = list(items)
    if workers == 1 or len(items) == 1:
        for item in items:
            task(item)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        for _ in pool.map(task, items):  # re-raises the first error of any strip
            pass


def _strip_height(plan: _Plan, height: int, width: int, workers: int) -> int:
    """Rows per strip: big enough to amortise the halo, small enough for memory and balance."""
    rows_fixed, rows_per_row = plan.scratch_rows()
    by_memory = max(32, (_STRIP_BYTES // (4 * width) - rows_fixed) // rows_per_row)
    by_balance = max(32, -(-height // (2 * workers)))  # >= 2 strips per worker
    return max(1, min(256, by_memory, by_balance, height))


def gaussian_weights(sigma: float, dtype: type, truncate: float = BASIC_TRUNCATE) -> np.ndarray:
    """Right half (centre first) of scipy.ndimage's normalised Gaussian kernel."""
    radius = gaussian_radius(sigma, truncate)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi /= phi.sum()
    return np.ascontiguousarray(phi[radius:], dtype=dtype)


@dataclass
class _Plan:
    """Everything about a computation that does not depend on the rows of a strip."""

    basic: bool
    slots: np.ndarray  # (n_inputs, n_sigma, n_kinds) int64 output index or -1
    halos: np.ndarray  # (n_inputs, n_sigma) rows of smoothed image needed, -1 none
    weights: list[np.ndarray]  # per sigma, Gaussian half kernel
    structure: list[np.ndarray]  # per sigma, integration half kernel (extended)
    texture_index: np.ndarray  # (n_inputs,) index into the structure tensor stack, or -1

    @classmethod
    def build(cls, settings: FeatureSettings, layout: list, n_inputs: int, sigmas: tuple[float, ...]) -> _Plan:
        basic = settings.feature_set == "basic"
        n_kinds = sum(len(v) for v in FEATURE_KINDS[settings.feature_set].values())
        slots = np.full((n_inputs, len(sigmas), n_kinds), -1, np.int64)
        for index, (item, kind, _name) in enumerate(layout):
            slots[item.input, item.sigma, kind] = index
        groups = FEATURE_KINDS[settings.feature_set]
        bounds = np.cumsum([0] + [len(groups[g]) for g in FEATURE_GROUPS])
        halos = np.full((n_inputs, len(sigmas)), -1, np.int64)
        texture_index = np.full(n_inputs, -1, np.int64)
        for k in range(n_inputs):
            used = [bool((slots[k, :, bounds[g] : bounds[g + 1]] >= 0).any()) for g in range(3)]
            for s, sigma in enumerate(sigmas):
                halos[k, s] = halo_rows(settings, sigma, *used)
            if used[2] and not basic:
                texture_index[k] = texture_index.max() + 1
        dtype = np.float64 if basic else np.float32  # float64 sums reproduce scipy bit for bit
        return cls(
            basic=basic,
            slots=slots,
            halos=halos,
            weights=[gaussian_weights(s, dtype, truncate_for(settings)) for s in sigmas],
            structure=[gaussian_weights(structure_sigma(s), np.float32, EXTENDED_TRUNCATE) for s in sigmas],
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
            block = scratch[offsets[k, s] : offsets[k, s] + sizes[k, s]]
            g0, g1 = max(0, r0 - halo), min(height, r1 + halo)
            smooth_rows(inputs[k], 0, self.weights[s], self.basic, block, g0 - base, g0, g1, height)
            smooth_columns(block[g0 - base : g1 - base], self.weights[s], self.basic)
        if self.basic:
            assemble_basic(scratch, offsets, self.halos, height, r0, r1, self.slots, out)
            return
        tensors = self._structure_tensors(scratch, offsets, sizes, height, r0, r1)
        assemble_extended(inputs, scratch, offsets, self.halos, r0, r1, tensors, self.texture_index, self.slots, out)

    def _structure_tensors(
        self, scratch: np.ndarray, offsets: np.ndarray, sizes: np.ndarray, height: int, r0: int, r1: int
    ) -> np.ndarray:
        """(n_texture, n_sigma, 3, r1 - r0, W): smoothed Jxx, Jxy, Jyy of the strip rows."""
        n_sigma, width = len(self.weights), scratch.shape[-1]
        if self.n_texture == 0:
            return np.empty((1, 1, 3, 1, 1), np.float32)  # never read
        tensors = np.empty((self.n_texture, n_sigma, 3, r1 - r0, width), np.float32)
        reach = self.reach
        products = np.empty((3, r1 - r0 + 2 * reach, width), np.float32)
        for k in np.flatnonzero(self.texture_index >= 0):
            t = self.texture_index[k]
            for s in range(n_sigma):
                weights = self.structure[s]
                block = scratch[offsets[k, s] : offsets[k, s] + sizes[k, s]]
                base = r0 - int(self.halos[k, s])
                g0, g1 = max(0, r0 - weights.size + 1), min(height, r1 + weights.size - 1)
                gradient_products(block, base, height, g0, g1, products, r0 - reach)
                for c in range(3):
                    smooth_rows(products[c], r0 - reach, weights, False, tensors[t, s, c], 0, r0, r1, height)
                    smooth_columns(tensors[t, s, c], weights, False)
        return tensors
