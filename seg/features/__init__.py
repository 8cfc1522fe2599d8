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

Modules
-------
``settings``  :class:`FeatureSettings` (scales, groups, names and order, tiling margin) and
              :data:`PRESETS`
``compute``   :func:`compute_features`: checks the frame, plans the work, runs the row strips
``kernels``   the numba kernels (Gaussian passes, finite differences, per-row assembly)

Every public name is importable from ``seg.features`` itself.
"""

from __future__ import annotations

# Re-exports: callers import these from seg.features as they did before the module was split.
from seg.features.compute import compute_features
from seg.features.settings import (  # noqa: F401 - limits re-exported too
    CHANNEL_MODES,
    DEFAULT_PRESET,
    FEATURE_SETS,
    MAX_CHANNELS,
    MAX_NUM_SIGMA,
    MAX_SIGMA,
    MIN_SIGMA,
    PRESETS,
    FeatureInfo,
    FeatureSettings,
)

__all__ = [
    "FEATURE_SETS",
    "CHANNEL_MODES",
    "FeatureSettings",
    "FeatureInfo",
    "PRESETS",
    "DEFAULT_PRESET",
    "compute_features",
]
