"""Real and simulated data shared by the accuracy tests and the benchmarks.

The ISBI 2012 EM stack lives beside the repository in ``../shared/data/isbi2012`` (never copied
into it). Its label PNGs hold 0 = membrane and 255 = cell interior; here they become class 1 =
membrane (the foreground users care about) and class 2 = cell.

Scribbles are simulated the way a user draws them: a few short strokes per class, each following
the middle (skeleton) of that class's region, so they never cross a boundary and cover well under
2 % of the pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.io import imread
from skimage.morphology import disk, skeletonize

__all__ = [
    "N_SLICES",
    "isbi_dir",
    "load_isbi",
    "tile_image",
    "simulate_scribbles",
    "an_rgb_image",
    "MAX_SCRIBBLE_FRACTION",
    "texture_mosaic",
    "noisy_blobs",
    "coins_with_truth",
]

N_SLICES = 30
MAX_SCRIBBLE_FRACTION = 0.02  # simulated scribbles must stay below this share of the pixels

# 8-neighbour steps in a fixed order, so that stroke tracing is deterministic.
_STEPS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))


def isbi_dir() -> Path:
    """Directory of the ISBI 2012 stack: ``<repo>/../shared/data/isbi2012``."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "isbi2012"


def load_isbi(index: int) -> tuple[np.ndarray, np.ndarray]:
    """Load one ISBI 2012 training slice and its ground truth.

    Parameters
    ----------
    index : int
        Slice number, 0..29.

    Returns
    -------
    image : (512, 512) uint8
    truth : (512, 512) uint8
        1 = membrane (label PNG value 0), 2 = cell interior (value 255).
    """
    if not 0 <= index < N_SLICES:
        raise ValueError(f"ISBI slice index {index} is out of range: use 0..{N_SLICES - 1}")
    root = isbi_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"ISBI data not found at {root}: check out the repo beside ../shared")
    image = imread(root / "image" / f"{index:02d}.png")
    label = imread(root / "label" / f"{index:02d}.png")
    truth = np.where(label < 128, 1, 2).astype(np.uint8)
    return np.ascontiguousarray(image, dtype=np.uint8), truth


def tile_image(images: np.ndarray | list[np.ndarray], n: int) -> np.ndarray:
    """Mosaic of ``n x n`` tiles, e.g. four 512² slices -> one 1024² image.

    Parameters
    ----------
    images : (H, W[, C]) array or list of such arrays
        One image (repeated) or several (used in order, cycling when fewer than ``n * n``).
    n : int
        Tiles per side.

    Returns
    -------
    (n*H, n*W[, C]) array of the input dtype.
    """
    tiles = [images] if isinstance(images, np.ndarray) else list(images)
    if n < 1 or not tiles:
        raise ValueError(f"tile_image needs n >= 1 and at least one image, got n={n}, {len(tiles)} images")
    rows = [np.concatenate([tiles[(r * n + c) % len(tiles)] for c in range(n)], axis=1) for r in range(n)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def _walk(skeleton: np.ndarray, path: list, seen: set, heading: int, length: int) -> None:
    """Extend ``path`` from its last pixel along ``skeleton`` until ``length`` pixels or a dead end."""
    height, width = skeleton.shape
    while len(path) < length:
        r, c = path[-1]
        # Prefer going straight on: try the current heading first, then gentler turns.
        for turn in (0, 1, -1, 2, -2, 3, -3):
            k = (heading + turn) % len(_STEPS)
            rr, cc = r + _STEPS[k][0], c + _STEPS[k][1]
            if 0 <= rr < height and 0 <= cc < width and skeleton[rr, cc] and (rr, cc) not in seen:
                path.append((rr, cc))
                seen.add((rr, cc))
                heading = k
                break
        else:
            return


def _trace(skeleton: np.ndarray, start: tuple[int, int], length: int, rng: np.random.Generator) -> list:
    """Up to ``length`` skeleton pixels through ``start``: walk one way, then the other way."""
    heading = int(rng.integers(len(_STEPS)))
    forward, seen = [start], {start}
    _walk(skeleton, forward, seen, heading, length)
    backward = [start]
    _walk(skeleton, backward, seen, (heading + 4) % len(_STEPS), length - len(forward) + 1)
    return backward[:0:-1] + forward


def simulate_scribbles(
    truth: np.ndarray,
    *,
    strokes_per_class: int = 6,
    length: int = 60,
    width: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Draw a few user-like strokes per class along the skeleton of each class region.

    Parameters
    ----------
    truth : (H, W) integer array
        Ground-truth classes 1..K (0 is ignored).
    strokes_per_class : int
        Strokes drawn in each class.
    length : int
        Length of each stroke in pixels (shorter where the skeleton branch ends).
    width : int
        Brush diameter in pixels; strokes are clipped to their class region.
    seed : int
        Seed of the stroke placement: the same arguments always give the same scribbles.

    Returns
    -------
    labels : (H, W) uint8
        0 = unlabelled, 1..K = scribbled class. Covers less than ``MAX_SCRIBBLE_FRACTION``.
    """
    truth = np.asarray(truth)
    rng = np.random.default_rng(seed)
    labels = np.zeros(truth.shape, dtype=np.uint8)
    brush = disk(max(width // 2, 0)).astype(bool)
    for cls in np.unique(truth[truth > 0]):
        region = truth == cls
        skeleton = skeletonize(region)
        candidates = np.argwhere(skeleton)
        if len(candidates) == 0:
            continue
        line = np.zeros(truth.shape, dtype=bool)
        for start in rng.permutation(len(candidates))[:strokes_per_class]:
            r, c = candidates[start]
            for rr, cc in _trace(skeleton, (int(r), int(c)), length, rng):
                line[rr, cc] = True
        stroke = ndi.binary_dilation(line, structure=brush) & region
        labels[stroke & (labels == 0)] = cls
    fraction = np.count_nonzero(labels) / labels.size
    if fraction >= MAX_SCRIBBLE_FRACTION:
        raise ValueError(
            f"simulated scribbles cover {fraction:.2%} of the pixels, more than a user draws "
            f"({MAX_SCRIBBLE_FRACTION:.0%}): use fewer, shorter or thinner strokes"
        )
    return labels


def an_rgb_image(n: int = 2, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A colour image with known ground truth: an ISBI mosaic rendered as a tinted RGB stain.

    The tint varies smoothly across the image and is independent of the truth, so colour alone
    does not give the classes away.

    Parameters
    ----------
    n : int
        Tiles per side (2 -> 1024², 4 -> 2048²).
    first : int
        First ISBI slice of the mosaic; the following slices fill the other tiles.

    Returns
    -------
    image : (512n, 512n, 3) uint8
    truth : (512n, 512n) uint8 in {1, 2}
    """
    pairs = [load_isbi((first + i) % N_SLICES) for i in range(n * n)]
    grey = tile_image([p[0] for p in pairs], n).astype(np.float32) / 255.0
    truth = tile_image([p[1] for p in pairs], n)
    rows, cols = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]].astype(np.float32)
    wave = 0.5 + 0.5 * np.sin(rows / grey.shape[0] * np.pi * 1.3) * np.cos(cols / grey.shape[1] * np.pi * 0.7)
    red = 0.15 + 0.8 * grey
    green = 0.05 + 0.75 * grey * (0.7 + 0.3 * wave)
    blue = 0.35 + 0.6 * grey * (1.0 - 0.4 * wave)
    rgb = np.stack([red, green, blue], axis=-1)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8), truth


# --------------------------------------------------------------------------------- beyond EM


def texture_mosaic(size: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three of scikit-image's bundled textures (brick, grass, gravel) in irregular regions.

    The region boundaries follow a smoothed random field, so the truth is exact and the task is
    texture, not intensity: the three textures have similar mean grey levels.

    Returns
    -------
    image : (size, size) uint8
    truth : (size, size) uint8 in {1, 2, 3} (brick, grass, gravel)
    """
    from skimage import data
    from skimage.filters import gaussian

    textures = [data.brick(), data.grass(), data.gravel()]
    rng = np.random.default_rng(seed)
    fields = [gaussian(rng.normal(size=(size, size)), sigma=size / 8) for _ in textures]
    truth = (np.argmax(np.stack(fields), axis=0) + 1).astype(np.uint8)
    image = np.zeros((size, size), np.float64)
    for k, texture in enumerate(textures):
        tile = np.resize(texture, (size, size)).astype(np.float64)
        tile = (tile - tile.mean()) / tile.std() * 30 + 128  # equal mean and contrast
        image[truth == k + 1] = tile[truth == k + 1]
    return np.clip(image, 0, 255).astype(np.uint8), truth


def noisy_blobs(size: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fluorescence-like blobs: ``skimage.data.binary_blobs`` blurred, unevenly lit, with noise.

    Returns
    -------
    image : (size, size) uint8
    truth : (size, size) uint8, 1 = background, 2 = blob
    """
    from skimage import data
    from skimage.filters import gaussian

    blobs = data.binary_blobs(length=size, blob_size_fraction=0.04, volume_fraction=0.3, rng=seed)
    rows, cols = np.mgrid[:size, :size] / size
    light = 0.6 + 0.4 * np.cos(rows * 2.0) * np.cos(cols * 1.5)
    image = gaussian(blobs.astype(np.float64), sigma=2.0) * light
    image = image + np.random.default_rng(seed).normal(0, 0.12, image.shape)
    image = (image - image.min()) / (image.max() - image.min()) * 255
    return image.astype(np.uint8), np.where(blobs, 2, 1).astype(np.uint8)


def coins_with_truth() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's coins with the gallery's region-based segmentation as (approximate) truth.

    The truth is the watershed of the Sobel elevation map from markers below 30 (background)
    and above 150 (coins), holes filled ("Comparing edge-based and region-based segmentation").

    Returns
    -------
    image : (303, 384) uint8
    truth : (303, 384) uint8, 1 = background, 2 = coin
    """
    from skimage import data
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    image = data.coins()
    markers = np.zeros(image.shape, np.uint8)
    markers[image < 30] = 1
    markers[image > 150] = 2
    regions = watershed(sobel(image), markers)
    coins = ndi.binary_fill_holes(regions == 2)
    return image, np.where(coins, 2, 1).astype(np.uint8)
