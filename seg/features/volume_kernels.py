"""numba kernels of the 3-D features: everything after the Gaussian passes, voxel by voxel.

Why kernels and not numpy. Measured at 160³ with the "balanced" preset (bench/README.md,
"Volumes"): the closed-form eigenvalues in vectorised numpy (float64 temporaries, ~20 passes over
memory) took 38 % of the feature time; the central differences, products and roots as separate
``correlate1d`` and numpy passes another ~25 %; and every feature written on its own into the
``(Z, Y, X, F)`` output touched one cache line per voxel per feature (50 strided passes over the
whole output). Here each voxel's features of one scale are derived in one pass from the smoothed
volume (and the smoothed structure-tensor products) and written side by side.

Borders. Every stencil is one voxel wide, and a neighbour outside the array is the border voxel
itself: that is scipy.ndimage's ``mode="reflect"`` for a radius of 1, so the values equal
``correlate1d(..., [-0.5, 0, 0.5])`` / ``[1, -2, 1]`` passes in ``"reflect"`` mode (the plain
reference in ``tests/unit/test_volume_features.py``). Arithmetic is float64, results float32.

The kernels release the GIL; callers run row ranges of one call on several threads. Kept in
its own file so that numba's disk cache of the 2-D kernels (:mod:`seg.features.kernels`) is not
invalidated by changes here.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

import seg.jit  # noqa: F401  (numba's cache and warnings, set up before any kernel is compiled)

__all__ = ["symmetric_eigenvalues", "structure_products", "extended_features"]

_SQRT3 = math.sqrt(3.0)


def _cos_third_fit() -> tuple[float, ...]:
    """Power-series coefficients, in ``s = sqrt((1 + r) / 2)``, of a degree-7 fit of
    ``cos(acos(r) / 3)`` on [-1, 1] (largest error ~2e-8; analytic in ``s``, unlike in ``r``)."""
    s = 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, 4001))
    c = np.cos(np.arccos(np.clip(2.0 * s * s - 1.0, -1.0, 1.0)) / 3.0)
    fit = np.polynomial.Polynomial.fit(s, c, 7, domain=[0.0, 1.0], window=[0.0, 1.0])
    return tuple(float(v) for v in fit.coef)


_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7 = _cos_third_fit()
_FIT_ERROR = 1e-7  # above the fit's error: the start lies right of the root


@njit(nogil=True, cache=True)
def _cos_third_acos(r):  # pragma: no cover - numba
    """``cos(acos(r) / 3)`` for r in [-1, 1], float64, without trigonometric calls.

    The largest root c in [1/2, 1] of ``4 c³ - 3 c = r``: a polynomial start just right of the
    root, then two Newton steps, which from the right approach the root monotonically (the cubic
    is convex there). About twice as fast as libm's ``acos`` and ``cos``; as accurate in the
    float32 results (tested against ``numpy.linalg.eigvalsh``).
    """
    s = math.sqrt(0.5 * (1.0 + r))
    c = _C0 + s * (_C1 + s * (_C2 + s * (_C3 + s * (_C4 + s * (_C5 + s * (_C6 + s * _C7)))))) + _FIT_ERROR
    c = min(max(c, 0.5), 1.0)
    for _ in range(2):
        slope = 12.0 * c * c - 3.0
        if slope > 0.0:
            c = max(c - (4.0 * c * c * c - 3.0 * c - r) / slope, 0.5)
    return c


@njit(nogil=True, cache=True)
def _eigen3(m00, m01, m02, m11, m12, m22):  # pragma: no cover - numba
    """Eigenvalues (largest, middle, smallest) of ``[[m00 m01 m02] [m01 m11 m12] [m02 m12 m22]]``.

    Trigonometric solution of the characteristic cubic, float64: with ``c = cos(phi)``,
    ``phi = acos(r) / 3``, the largest is ``q + 2 p c`` and the smallest uses
    ``cos(phi + 2π/3) = -c / 2 - sin(phi) √3 / 2``; ``c`` comes from :func:`_cos_third_acos`.
    """
    q = (m00 + m11 + m22) / 3.0
    b00 = m00 - q
    b11 = m11 - q
    b22 = m22 - q
    p = math.sqrt((b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * (m01 * m01 + m02 * m02 + m12 * m12)) / 6.0)
    if p == 0.0:
        return q, q, q
    det = b00 * (b11 * b22 - m12 * m12) - m01 * (m01 * b22 - m12 * m02) + m02 * (m01 * m12 - b11 * m02)
    r = min(max(det / (2.0 * p * p * p), -1.0), 1.0)
    c = _cos_third_acos(r)
    largest = q + 2.0 * p * c
    smallest = q - p * (c + _SQRT3 * math.sqrt(max(1.0 - c * c, 0.0)))
    return largest, 3.0 * q - largest - smallest, smallest


@njit(nogil=True, cache=True)
def _corners(plus_plus, plus_minus, minus_plus, minus_minus):  # pragma: no cover - numba
    """Central difference of a central difference (times 4), from the four diagonal neighbours."""
    return (np.float64(plus_plus) - np.float64(plus_minus)) - (np.float64(minus_plus) - np.float64(minus_minus))


@njit(nogil=True, cache=True)
def symmetric_eigenvalues(a00, a01, a02, a11, a12, a22, out, slot, start, stop):  # pragma: no cover - numba
    """Eigenvalues, largest first, of the matrices ``[[a00 a01 a02] [a01 a11 a12] [a02 a12 a22]]``
    for flat indices ``start:stop``, written to ``out[i, slot:slot + 3]`` (closed form, float64)."""
    for i in range(start, stop):
        largest, middle, smallest = _eigen3(
            np.float64(a00[i]),
            np.float64(a01[i]),
            np.float64(a02[i]),
            np.float64(a11[i]),
            np.float64(a12[i]),
            np.float64(a22[i]),
        )
        out[i, slot] = largest
        out[i, slot + 1] = middle
        out[i, slot + 2] = smallest


@njit(nogil=True, cache=True)
def structure_products(smooth, ratios, products, row_start, row_stop):  # pragma: no cover - numba
    """Products of central first derivatives of ``smooth`` (Z, Y, X), per unit of the finest voxel side.

    ``products`` (6, Z, Y, X) float32 receives gz*gz, gz*gy, gz*gx, gy*gy, gy*gx, gx*gx (the
    structure tensor's upper triangle before integration) for the rows ``row_start:row_stop``
    of the flattened (Z * Y) row index.
    """
    nz, ny, nx = smooth.shape
    rz, ry, rx = 0.5 / ratios[0], 0.5 / ratios[1], 0.5 / ratios[2]
    for row in range(row_start, row_stop):
        z = row // ny
        y = row - z * ny
        zm, zp = max(z - 1, 0), min(z + 1, nz - 1)
        ym, yp = max(y - 1, 0), min(y + 1, ny - 1)
        for x in range(nx):
            xm, xp = max(x - 1, 0), min(x + 1, nx - 1)
            gz = (np.float64(smooth[zp, y, x]) - np.float64(smooth[zm, y, x])) * rz
            gy = (np.float64(smooth[z, yp, x]) - np.float64(smooth[z, ym, x])) * ry
            gx = (np.float64(smooth[z, y, xp]) - np.float64(smooth[z, y, xm])) * rx
            products[0, z, y, x] = gz * gz
            products[1, z, y, x] = gz * gy
            products[2, z, y, x] = gz * gx
            products[3, z, y, x] = gy * gy
            products[4, z, y, x] = gy * gx
            products[5, z, y, x] = gx * gx


@njit(nogil=True, cache=True)
def extended_features(
    smooth, previous, tensor, offset, ratios, intensity, edges, texture, out, slot, row_start, row_stop
):  # pragma: no cover - numba
    """One scale's extended features of the voxels of ``out`` (z, y, x, F), written from ``slot`` on.

    ``smooth`` and ``previous`` (the kept region, Z, Y, X) are this scale's and the previous
    scale's Gaussian; output voxel (k, j, i) is ``smooth[k + offset[0], j + offset[1], i + offset[2]]``.
    ``tensor`` (6, z, y, x) holds the integrated structure-tensor products of the output voxels
    (read only when ``texture``). Features, in order, for the groups switched on: gaussian;
    gradient magnitude, Laplacian, difference of Gaussians (previous - smooth); structure-tensor
    and Hessian eigenvalues, largest first. Rows ``row_start:row_stop`` of the flattened (z * y)
    output row index are computed.
    """
    nz, ny, nx = smooth.shape
    oy_count = out.shape[1]
    oz, oy, ox = offset[0], offset[1], offset[2]
    rz, ry, rx = 0.5 / ratios[0], 0.5 / ratios[1], 0.5 / ratios[2]
    sz, sy, sx = 1.0 / ratios[0] ** 2, 1.0 / ratios[1] ** 2, 1.0 / ratios[2] ** 2
    czy, czx, cyx = rz * ry, rz * rx, ry * rx
    for row in range(row_start, row_stop):
        k = row // oy_count
        j = row - k * oy_count
        z = k + oz
        y = j + oy
        zm, zp = max(z - 1, 0), min(z + 1, nz - 1)
        ym, yp = max(y - 1, 0), min(y + 1, ny - 1)
        for i in range(out.shape[2]):
            x = i + ox
            xm, xp = max(x - 1, 0), min(x + 1, nx - 1)
            centre = np.float64(smooth[z, y, x])
            s = slot
            if intensity:
                out[k, j, i, s] = centre
                s += 1
            if not (edges or texture):
                continue
            f_zp = np.float64(smooth[zp, y, x])
            f_zm = np.float64(smooth[zm, y, x])
            f_yp = np.float64(smooth[z, yp, x])
            f_ym = np.float64(smooth[z, ym, x])
            f_xp = np.float64(smooth[z, y, xp])
            f_xm = np.float64(smooth[z, y, xm])
            hzz = (f_zp - 2.0 * centre + f_zm) * sz
            hyy = (f_yp - 2.0 * centre + f_ym) * sy
            hxx = (f_xp - 2.0 * centre + f_xm) * sx
            if edges:
                gz = (f_zp - f_zm) * rz
                gy = (f_yp - f_ym) * ry
                gx = (f_xp - f_xm) * rx
                out[k, j, i, s] = math.sqrt(gz * gz + gy * gy + gx * gx)
                out[k, j, i, s + 1] = hzz + hyy + hxx
                out[k, j, i, s + 2] = np.float64(previous[z, y, x]) - centre
                s += 3
            if texture:
                largest, middle, smallest = _eigen3(
                    np.float64(tensor[0, k, j, i]),
                    np.float64(tensor[1, k, j, i]),
                    np.float64(tensor[2, k, j, i]),
                    np.float64(tensor[3, k, j, i]),
                    np.float64(tensor[4, k, j, i]),
                    np.float64(tensor[5, k, j, i]),
                )
                out[k, j, i, s] = largest
                out[k, j, i, s + 1] = middle
                out[k, j, i, s + 2] = smallest
                # Mixed derivatives: the central difference along one axis of the central
                # difference along the other, each neighbour clamped to the array.
                hzy = _corners(smooth[zp, yp, x], smooth[zp, ym, x], smooth[zm, yp, x], smooth[zm, ym, x]) * czy
                hzx = _corners(smooth[zp, y, xp], smooth[zp, y, xm], smooth[zm, y, xp], smooth[zm, y, xm]) * czx
                hyx = _corners(smooth[z, yp, xp], smooth[z, yp, xm], smooth[z, ym, xp], smooth[z, ym, xm]) * cyx
                largest, middle, smallest = _eigen3(hzz, hzy, hzx, hyy, hyx, hxx)
                out[k, j, i, s + 3] = largest
                out[k, j, i, s + 4] = middle
                out[k, j, i, s + 5] = smallest
