"""Per-voxel features of 3-D volumes, whole or block by block, isotropic or anisotropic.

The same :class:`~seg.features.FeatureSettings` drive 2-D and 3-D features; in 3-D every scale
gives (with ``G`` the volume smoothed at that scale):

``"basic"``
    Exactly :func:`skimage.feature.multiscale_basic_features` on the 3-D array (to float32
    precision; tested): ``G`` (``mode="nearest"``, truncated at 4σ), its Sobel edge magnitude
    (``sqrt(mean over axes of the squared 3-D Sobel derivatives)``) and the three eigenvalues of
    the Hessian from :func:`numpy.gradient` applied twice, largest first.
``"extended"``
    ``G`` (truncated at 3σ, reflected borders); gradient magnitude, Laplacian of Gaussian and
    difference of Gaussians ``G(previous σ) - G``; the three structure-tensor eigenvalues
    (products of first derivatives integrated over ``max(σ/2, 1)``) and the three Hessian
    eigenvalues, largest first. Derivatives are central differences of ``G``.

Voxel size. With ``spacing=(dz, dy, dx)`` a sigma is a physical length measured in units of the
finest voxel side: on a 4 x 4 x 50 nm EM stack, σ = 2 is 8 nm in every direction, i.e. 2
voxels in y and x and 0.16 of a section in z. Kernels are anisotropic and derivatives are taken
per unit of the finest side, so features of a resampled isotropic volume would agree. Without a
voxel size (or an isotropic one) sigmas are voxels, as in scikit-image.

Blocks. Features of a block read with :func:`volume_margin` voxels of context on every side
(clipped at the volume's faces, never padded) equal the whole-volume features inside the block,
as for 2-D tiles (:mod:`seg.tiling`). :func:`block_features` does that cropping.

Eigenvalues of the symmetric 3 x 3 matrices are computed in closed form (trigonometric
solution, float64, one numba pass: :mod:`seg.features.volume_kernels`) instead of scikit-image's
batched ``eigvalsh`` on ``(N, 3, 3)`` stacks: the same values to float32 precision, many times
faster and without the nine-array temporaries.

``per_slice`` features are the 2-D features (:func:`seg.features.compute_features`) of every
z slice, for volumes whose slices are too far apart for 3-D context to help.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from seg.errors import ImageError, SettingsError
from seg.features.compute import compute_features, gaussian_weights, run_parallel, worker_count
from seg.features.kernels import smooth_columns, smooth_rows
from seg.features.settings import (
    BASIC_TRUNCATE,
    EXTENDED_TRUNCATE,
    MAX_CHANNELS,
    FeatureSettings,
    gaussian_radius,
    structure_sigma,
    truncate_for,
)
from seg.features.volume_kernels import extended_features, structure_products, symmetric_eigenvalues

__all__ = [
    "VOLUME_FEATURE_MODES",
    "VolumeSettings",
    "volume_feature_names",
    "n_volume_features",
    "axis_sigmas",
    "volume_margin",
    "compute_volume_features",
    "block_features",
    "block_context",
]

VOLUME_FEATURE_MODES: tuple[str, ...] = ("3d", "per_slice")
"""How a volume model computes features: ``"3d"`` (volumetric) or ``"per_slice"`` (2-D per z)."""

_KINDS_3D = {
    "basic": {
        "intensity": ("gaussian",),
        "edges": ("sobel edges",),
        "texture": ("hessian eigenvalue 1", "hessian eigenvalue 2", "hessian eigenvalue 3"),
    },
    "extended": {
        "intensity": ("gaussian",),
        "edges": ("gradient magnitude", "laplacian of gaussian", "difference of gaussians"),
        "texture": (
            "structure tensor eigenvalue 1",
            "structure tensor eigenvalue 2",
            "structure tensor eigenvalue 3",
            "hessian eigenvalue 1",
            "hessian eigenvalue 2",
            "hessian eigenvalue 3",
        ),
    },
}
FEATURE_GROUPS = ("intensity", "edges", "texture")
_SLAB_VOXELS = 1 << 16  # at least this many voxels per task on the thread pool
_SOBEL_SMOOTH = np.array([1.0, 2.0, 1.0]) / 4


def _check_mode(mode: str) -> str:
    if mode not in VOLUME_FEATURE_MODES:
        raise SettingsError(f"volume feature mode must be one of {list(VOLUME_FEATURE_MODES)}, got {mode!r}")
    return mode


def _plan(settings: FeatureSettings, n_channels: int) -> list[tuple[int, bool, tuple[str, ...]]]:
    """(input index, luminance?, groups) per source, in output order (as the 2-D layout)."""
    whole = isinstance(n_channels, (int, np.integer)) and not isinstance(n_channels, bool)
    if not whole or not 1 <= n_channels <= MAX_CHANNELS:
        raise ImageError(f"n_channels must be a whole number from 1 to {MAX_CHANNELS}, got {n_channels!r}")
    used = len(settings.used_channels(int(n_channels)))  # the inputs are the chosen channels
    if settings.channel_mode == "luminance" and used > 1:
        return [(c, False, ("intensity",)) for c in range(used)] + [(used, True, ("edges", "texture"))]
    return [(c, False, FEATURE_GROUPS) for c in range(used)]


def _kinds(settings: FeatureSettings, groups: Sequence[str]) -> list[str]:
    table = _KINDS_3D[settings.feature_set]
    return [name for group in FEATURE_GROUPS if group in groups and getattr(settings, group) for name in table[group]]


def volume_feature_names(settings: FeatureSettings, n_channels: int, mode: str = "3d") -> list[str]:
    """Name of every feature, in output order, e.g. ``"ch0 hessian eigenvalue 3 σ=1.4 (3d)"``."""
    if _check_mode(mode) == "per_slice":
        return [f"{name} (per slice)" for name in settings.feature_names(n_channels)]
    sigmas = settings.sigmas()
    names: list[str] = []
    channels = settings.used_channels(int(n_channels))
    for index, luminance, groups in _plan(settings, n_channels):
        source = "luminance" if luminance else f"ch{channels[index]}"
        for sigma in sigmas:
            names.extend(f"{source} {kind} σ={sigma:.3g} (3d)" for kind in _kinds(settings, groups))
    return names


def n_volume_features(settings: FeatureSettings, n_channels: int, mode: str = "3d") -> int:
    """Number of features F of a volume with ``n_channels`` channels."""
    if _check_mode(mode) == "per_slice":
        return settings.n_features(n_channels)
    return len(volume_feature_names(settings, n_channels, mode))


def _ratios(spacing: Sequence[float] | None) -> tuple[float, float, float]:
    """Voxel side per axis in units of the finest side (1, 1, 1 without a voxel size)."""
    if spacing is None:
        return (1.0, 1.0, 1.0)
    from seg.images.volume import check_spacing

    spacing = check_spacing(spacing)
    finest = min(spacing)
    return tuple(s / finest for s in spacing)  # type: ignore[return-value]


def axis_sigmas(sigma: float, spacing: Sequence[float] | None) -> tuple[float, float, float]:
    """Per-axis sigma in voxels (z, y, x) for a physical sigma in finest-voxel units."""
    return tuple(sigma / r for r in _ratios(spacing))  # type: ignore[return-value]


def _stencils(settings: FeatureSettings, spacing: Sequence[float] | None) -> tuple[int, int, int]:
    """Voxels (z, y, x) of the smoothed volume needed beyond a voxel to derive its features."""
    sigma = settings.sigmas()[-1]  # every term grows with sigma
    out = []
    for r in _ratios(spacing):
        if settings.texture and settings.feature_set == "basic":
            out.append(2)  # numpy.gradient applied twice
        elif settings.texture:
            out.append(1 + gaussian_radius(structure_sigma(sigma) / r, truncate_for(settings)))
        else:
            out.append(1 if settings.edges else 0)
    return tuple(out)  # type: ignore[return-value]


def volume_margin(
    settings: FeatureSettings, spacing: Sequence[float] | None = None, mode: str = "3d"
) -> tuple[int, int, int]:
    """Context voxels (z, y, x) a block needs on each side so that its features equal the whole's."""
    if _check_mode(mode) == "per_slice":
        margin = settings.margin()
        return (0, margin, margin)
    sigmas = axis_sigmas(settings.sigmas()[-1], spacing)
    return tuple(
        gaussian_radius(s, truncate_for(settings)) + stencil  # type: ignore[return-value]
        for s, stencil in zip(sigmas, _stencils(settings, spacing))
    )


def _inputs(volume: np.ndarray, settings: FeatureSettings) -> tuple[np.ndarray, int]:
    """(Z, Y, X[, C]) float -> (sources, C): float32 planes per channel, plus the luminance."""
    if not isinstance(volume, np.ndarray) or volume.ndim not in (3, 4):
        raise ImageError(f"volume must be a (Z, Y, X) or (Z, Y, X, C) array, got shape {np.shape(volume)}")
    if volume.dtype.kind != "f":
        raise ImageError(f"volume must be normalised floating point, got dtype {volume.dtype}; normalise it first")
    if volume.ndim == 3:
        volume = volume[..., np.newaxis]
    n_channels = volume.shape[3]
    if not 1 <= n_channels <= MAX_CHANNELS or 0 in volume.shape:
        raise ImageError(f"volume of shape {volume.shape} is not usable: need 1..{MAX_CHANNELS} channels")
    used = settings.used_channels(n_channels)
    luminance = settings.channel_mode == "luminance" and len(used) > 1
    sources = np.empty((len(used) + luminance, *volume.shape[:3]), np.float32)
    sources[: len(used)] = np.moveaxis(volume if len(used) == n_channels else volume[..., list(used)], -1, 0)
    if not np.isfinite(sources[: len(used)]).all():
        raise ImageError("volume contains NaN or infinite values; replace them before computing features")
    if luminance:
        np.mean(sources[: len(used)], axis=0, out=sources[len(used)])
    return sources, n_channels


def compute_volume_features(
    volume: np.ndarray,
    settings: FeatureSettings,
    *,
    spacing: Sequence[float] | None = None,
    mode: str = "3d",
    inner: tuple[slice, slice, slice] | None = None,
) -> np.ndarray:
    """Compute per-voxel features of a normalised volume.

    Parameters
    ----------
    volume : (Z, Y, X) or (Z, Y, X, C) ndarray, floating point
        Normalised (see :func:`seg.images.normalize`).
    settings : FeatureSettings
    spacing : (dz, dy, dx), optional
        Voxel size; sigmas are then physical (see the module docstring).
    mode : {"3d", "per_slice"}
    inner : three slices, optional
        Only these voxels are wanted (the rest of ``volume`` is context): every Gaussian pass
        is cropped to them plus the derivative stencil as soon as it is done, so a thin block
        with a deep margin costs little more than the block. Default: the whole array.

    Returns
    -------
    features : (Z, Y, X, F) float32 (the ``inner`` region's shape)
        ``F == n_volume_features(settings, C, mode)``, in the order of :func:`volume_feature_names`.
    """
    if not isinstance(settings, FeatureSettings):
        raise SettingsError(f"settings must be a FeatureSettings, got {type(settings).__name__}")
    if not isinstance(volume, np.ndarray) or volume.ndim not in (3, 4):
        raise ImageError(f"volume must be a (Z, Y, X) or (Z, Y, X, C) array, got shape {np.shape(volume)}")
    ranges = [(0, n) if inner is None else inner[a].indices(n)[:2] for a, n in enumerate(volume.shape[:3])]
    if _check_mode(mode) == "per_slice":
        z0, z1 = ranges[0]
        window = (slice(None), *(slice(*r) for r in ranges[1:]))
        out = None
        for z in range(z0, z1):
            features = compute_features(volume[z], settings)[window[1:]]
            if out is None:
                out = np.empty((z1 - z0, *features.shape), np.float32)
            out[z - z0] = features
        if out is None:
            raise ImageError(f"the region {inner} of a volume of shape {volume.shape} holds no slice")
        return out
    sources, n_channels = _inputs(volume, settings)
    stencils = _stencils(settings, spacing)
    keep = [(max(0, lo - s), min(n, hi + s)) for (lo, hi), s, n in zip(ranges, stencils, sources.shape[1:])]
    inside = tuple(slice(lo - k0, hi - k0) for (lo, hi), (k0, _) in zip(ranges, keep))
    n_features = n_volume_features(settings, n_channels)
    out = np.empty((*(hi - lo for lo, hi in ranges), n_features), np.float32)
    slot = 0
    for index, _luminance, groups in _plan(settings, n_channels):
        slot = _source_features(sources[index], settings, groups, _ratios(spacing), keep, inside, out, slot)
    return out


def _smooth(image: np.ndarray, sigmas: Sequence[float], basic: bool, keep: Sequence[tuple[int, int]]) -> np.ndarray:
    """Gaussian of ``image`` cropped to ``keep``: one axis at a time (as scipy.ndimage does),
    each cropped as soon as it is smoothed (its later passes only need the kept range)."""
    truncate = BASIC_TRUNCATE if basic else EXTENDED_TRUNCATE
    out = image
    for axis, (sigma, (lo, hi)) in enumerate(zip(sigmas, keep)):
        # Only the kept range plus this kernel's radius is read: a small sigma does not pay for
        # the largest one's margin. Where the crop is not the array's face, the border mode only
        # touches values within the radius of it, all outside the kept range.
        radius = gaussian_radius(sigma, truncate) if sigma > 1e-15 else 0
        start, stop = max(0, lo - radius), min(out.shape[axis], hi + radius)
        out = out[(slice(None),) * axis + (slice(start, stop),)]
        if sigma > 1e-15:
            out = _gaussian_pass(
                out, gaussian_weights(sigma, np.float64, truncate), axis, basic, lo - start, hi - start
            )
        else:
            out = out[(slice(None),) * axis + (slice(lo - start, hi - start),)]
    return np.ascontiguousarray(out, dtype=np.float32)


def _gaussian_pass(image: np.ndarray, weights: np.ndarray, axis: int, nearest: bool, lo: int, hi: int) -> np.ndarray:
    """Gaussian along ``axis`` of a (Z, Y, X) array, positions ``lo:hi`` of that axis -> float32.

    scipy.ndimage's ``correlate1d`` bit for bit (``"nearest"`` or ``"reflect"`` borders at the
    array's faces; the 2-D engine's kernels :func:`~seg.features.kernels.smooth_rows` and
    :func:`~seg.features.kernels.smooth_columns`, float64 sums in scipy's order), in slabs on the
    thread pool: about twice as fast as ``gaussian_filter1d``, which copies every line to a buffer.
    """
    image = np.asarray(image, np.float32)
    nz, ny, nx = image.shape
    if axis == 0:
        source = np.ascontiguousarray(image).reshape(nz, ny * nx)
        out = np.empty((hi - lo, ny, nx), np.float32)
        flat = out.reshape(hi - lo, ny * nx)
        _run_in_slabs(
            lambda b: smooth_rows(source, 0, weights, nearest, flat, b[0], lo + b[0], lo + b[1], nz), hi - lo, ny * nx
        )
        return out
    if axis == 1:
        out = np.empty((nz, hi - lo, nx), np.float32)

        def planes(b: tuple[int, int]) -> None:
            for z in range(*b):
                smooth_rows(image[z], 0, weights, nearest, out[z], 0, lo, hi, ny)

        _run_in_slabs(planes, nz, (hi - lo) * nx)
        return out
    out = np.array(image, np.float32, order="C")
    rows = out.reshape(nz * ny, nx)
    _run_in_slabs(lambda b: smooth_columns(rows[b[0] : b[1]], weights, nearest), nz * ny, nx)
    return out[:, :, lo:hi]


def _run_in_slabs(task: Callable[[tuple[int, int]], None], count: int, per_item: int) -> None:
    """``task((start, stop))`` over ``range(count)`` cut into slabs, on the thread pool.

    Slabs hold at least :data:`_SLAB_VOXELS` voxels (``per_item`` voxels per index), two per
    thread when the work allows it (balance under a shared machine's load).
    """
    workers = worker_count(None)
    pieces = max(1, min(2 * workers, count, (count * per_item) // _SLAB_VOXELS))
    bounds = np.linspace(0, count, pieces + 1).astype(int)
    run_parallel(task, list(zip(bounds[:-1].tolist(), bounds[1:].tolist())), workers)


def _source_features(
    image: np.ndarray,
    settings: FeatureSettings,
    groups: Sequence[str],
    ratios: tuple[float, float, float],
    keep: Sequence[tuple[int, int]],
    inside: tuple[slice, ...],
    out: np.ndarray,
    slot: int,
) -> int:
    basic = settings.feature_set == "basic"
    kinds = len(_kinds(settings, groups))
    if not kinds:
        return slot
    whole = all(s.start == 0 and s.stop == n for s, n in zip(inside, (hi - lo for lo, hi in keep)))
    previous = np.ascontiguousarray(image[tuple(slice(lo, hi) for lo, hi in keep)])
    for sigma in settings.sigmas():
        smooth = _smooth(image, [sigma / r for r in ratios], basic, keep)
        if basic:
            # Straight to the output for a whole volume, else to a scratch array of the kept
            # region whose inside is then copied (np.gradient needs the 2-voxel stencil around it).
            dest, at = (out, slot) if whole else (np.empty((*smooth.shape, kinds), np.float32), 0)
            _basic_scale(smooth, settings, groups, ratios, dest, at)
            if not whole:
                out[..., slot : slot + kinds] = dest[inside]
        else:
            _extended_scale(smooth, previous, sigma, settings, groups, ratios, out, slot, inside)
        slot += kinds
        previous = smooth
    return slot


def _basic_scale(
    smooth: np.ndarray,
    settings: FeatureSettings,
    groups: Sequence[str],
    ratios: tuple[float, float, float],
    out: np.ndarray,
    slot: int,
) -> None:
    if "intensity" in groups and settings.intensity:
        out[..., slot] = smooth
        slot += 1
    if "edges" in groups and settings.edges:
        _sobel_magnitude(smooth, ratios, out[..., slot])
        slot += 1
    if "texture" in groups and settings.texture:
        first = np.gradient(smooth)
        second = [
            np.gradient(first[a], axis=b) / np.float32(ratios[a] * ratios[b])
            for a, b in combinations_with_replacement(range(3), 2)
        ]
        del first
        _eigenvalues(second, out, slot)


def _extended_scale(
    smooth: np.ndarray,
    previous: np.ndarray,
    sigma: float,
    settings: FeatureSettings,
    groups: Sequence[str],
    ratios: tuple[float, float, float],
    out: np.ndarray,
    slot: int,
    inside: tuple[slice, ...],
) -> None:
    """One scale's extended features of the ``inside`` voxels of the kept region ``smooth``.

    Only the structure tensor needs the kept region (first derivatives over the integration
    radius): their products are integrated with Gaussian passes cropped to ``inside`` pass by
    pass. Everything else is derived from ``inside`` plus one voxel (the central-difference
    stencil), in one pass of :func:`~seg.features.volume_kernels.extended_features` that writes
    the scale's features side by side.
    """
    intensity = "intensity" in groups and settings.intensity
    edges = "edges" in groups and settings.edges
    texture = "texture" in groups and settings.texture
    per_unit = np.array(ratios, np.float64)
    if texture:
        products = np.empty((6, *smooth.shape), np.float32)
        rows = smooth.shape[0] * smooth.shape[1]
        _run_in_slabs(lambda b: structure_products(smooth, per_unit, products, *b), rows, smooth.shape[2])
        integration = [structure_sigma(sigma) / r for r in ratios]
        ranges = [(s.start, s.stop) for s in inside]
        tensor = np.empty((6, *out.shape[:3]), np.float32)
        for component in range(6):
            tensor[component] = _smooth(products[component], integration, False, ranges)
        del products
    else:
        tensor = np.zeros((6, 1, 1, 1), np.float32)  # not read
    offset = np.array([s.start for s in inside], np.int64)
    _run_in_slabs(
        lambda b: extended_features(
            smooth, previous, tensor, offset, per_unit, intensity, edges, texture, out, slot, *b
        ),
        out.shape[0] * out.shape[1],
        out.shape[2],
    )


def _sobel_magnitude(image: np.ndarray, ratios: tuple[float, float, float], out: np.ndarray) -> None:
    """skimage.filters.sobel of a 3-D array, separably: sqrt(mean of squared axis derivatives)."""
    total = np.zeros(image.shape, np.float32)
    for edge_axis in range(3):
        part = ndi.correlate1d(image, [1.0, 0.0, -1.0], axis=edge_axis, mode="reflect")
        for smooth_axis in range(3):
            if smooth_axis != edge_axis:
                ndi.correlate1d(part, _SOBEL_SMOOTH, axis=smooth_axis, mode="reflect", output=part)
        if ratios[edge_axis] != 1.0:
            part /= np.float32(ratios[edge_axis])
        total += part * part
    np.sqrt(total / np.float32(3.0), out=out)


def _eigenvalues(elements: Sequence[np.ndarray], out: np.ndarray, slot: int) -> None:
    """Eigenvalues, largest first, of the symmetric 3 x 3 matrices given by their upper triangle
    (a00, a01, a02, a11, a12, a22), written to out[..., slot:slot + 3] (closed form, float64)."""
    flat = [np.ascontiguousarray(e, dtype=np.float32).reshape(-1) for e in elements]
    target = out.reshape(-1, out.shape[-1])
    _run_in_slabs(lambda b: symmetric_eigenvalues(*flat, target, slot, *b), flat[0].size, 1)


def block_features(
    volume: np.ndarray,
    settings: FeatureSettings,
    block: tuple[slice, slice, slice],
    *,
    spacing: Sequence[float] | None = None,
    mode: str = "3d",
) -> np.ndarray:
    """Features of one block of a normalised volume, equal to the whole volume's inside it.

    Parameters
    ----------
    volume : (Z, Y, X) or (Z, Y, X, C) float array
        The whole normalised volume (may be a memmap: only the block and its margin are read).
    block : three slices with steps of 1
        The voxels wanted.

    Returns
    -------
    (z, y, x, F) float32 for the block.
    """
    context, inner = block_context(volume.shape[:3], block, volume_margin(settings, spacing, mode))
    return compute_volume_features(np.asarray(volume[context]), settings, spacing=spacing, mode=mode, inner=inner)


def block_context(
    shape: Sequence[int],
    block: tuple[slice, slice, slice],
    margin: Sequence[int],
) -> tuple[tuple[slice, slice, slice], tuple[slice, slice, slice]]:
    """The block grown by ``margin`` (clipped at the volume's faces), and the block inside it."""
    context, inner = [], []
    for s, n, m in zip(block, shape, margin):
        start, stop, step = s.indices(n)
        if step != 1 or stop <= start:
            raise ImageError(f"block {block} is not a non-empty range of voxels in a volume of shape {tuple(shape)}")
        lo, hi = max(0, start - m), min(n, stop + m)
        context.append(slice(lo, hi))
        inner.append(slice(start - lo, stop - lo))
    return tuple(context), tuple(inner)  # type: ignore[return-value]


@dataclass(frozen=True)
class VolumeSettings:
    """What makes a model a volume model: its voxel size and how it computes features.

    Stored in the model bundle (schema 2); a model without it is a 2-D model.

    Parameters
    ----------
    spacing : (dz, dy, dx) or None
        Voxel size the model was trained with; sigmas are physical for it (None: voxels).
    mode : {"3d", "per_slice"}
        Volumetric features, or the 2-D features of every z slice.
    """

    spacing: tuple[float, float, float] | None = None
    mode: str = "3d"

    def __post_init__(self) -> None:
        _check_mode(self.mode)
        if self.spacing is not None:
            from seg.images.volume import check_spacing

            object.__setattr__(self, "spacing", check_spacing(self.spacing, "the model's voxel size"))

    def n_features(self, settings: FeatureSettings, n_channels: int) -> int:
        return n_volume_features(settings, n_channels, self.mode)

    def feature_names(self, settings: FeatureSettings, n_channels: int) -> list[str]:
        return volume_feature_names(settings, n_channels, self.mode)

    def margin(self, settings: FeatureSettings) -> tuple[int, int, int]:
        return volume_margin(settings, self.spacing, self.mode)

    def compute(self, volume: np.ndarray, settings: FeatureSettings) -> np.ndarray:
        """Features of a whole normalised ``(Z, Y, X[, C])`` volume (see :func:`compute_volume_features`)."""
        return compute_volume_features(volume, settings, spacing=self.spacing, mode=self.mode)

    def block(self, volume: np.ndarray, settings: FeatureSettings, block: tuple[slice, slice, slice]) -> np.ndarray:
        """Features of one block (see :func:`block_features`)."""
        return block_features(volume, settings, block, spacing=self.spacing, mode=self.mode)

    def to_dict(self) -> dict:
        return {"spacing": None if self.spacing is None else list(self.spacing), "mode": self.mode}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VolumeSettings:
        """Rebuild from :meth:`to_dict` output (untrusted: every value is checked)."""
        if not isinstance(data, Mapping) or set(data) != {"spacing", "mode"}:
            raise SettingsError(f"Volume settings must be an object with 'spacing' and 'mode', got {data!r:.120}")
        return cls(spacing=None if data["spacing"] is None else tuple(data["spacing"]), mode=data["mode"])
