"""Numba kernels of the feature engine: Gaussian passes, finite differences, per-row assembly.

All release the GIL and are called per row strip from worker threads (see
:mod:`seg.features.compute`). :func:`assemble_basic` repeats scikit-image's
``multiscale_basic_features`` arithmetic bit for bit; :func:`assemble_extended` derives the
ilastik-style features.

The kernels stay in one file on purpose: numba's disk cache (``cache=True``) is invalidated when
the file of a cached function changes, not when a kernel it calls from another file does.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

import seg.jit  # noqa: F401  (numba's cache and warnings, set up before any kernel is compiled)


@njit(nogil=True, cache=True)
def _mirror(i, n, nearest):
    """Index into [0, n) of position i: scipy 'nearest' (clamp) or 'reflect' (d c b a | a b c d)."""
    if nearest:
        return min(max(i, 0), n - 1)
    period = 2 * n
    i = i % period
    return i if i < n else period - 1 - i


def _pair_sum(a, b, like):  # pragma: no cover - replaced by the numba overload below
    return a + b


@overload(_pair_sum, inline="always")
def _pair_sum_overload(a, b, like):
    """a + b in the precision of ``like``: float64 sums of float32 pixels, as scipy does."""
    if like == types.float64:
        return lambda a, b, like: np.float64(a) + np.float64(b)
    return lambda a, b, like: a + b


@njit(nogil=True, cache=True)
def smooth_rows(src, src_base, weights, nearest, dst, dst_start, g0, g1, n_rows):
    """Vertical Gaussian pass: dst[dst_start + g - g0] = sum_k w_k src[g +- k] for g in [g0, g1).

    ``src`` holds global rows from ``src_base`` on; ``n_rows`` is the image height, for the
    boundary. Accumulates in the weights' dtype; with float64 weights
    the result is bit-identical to scipy.ndimage.correlate1d (same order of operations).
    """
    n = n_rows
    width = src.shape[1]
    radius = weights.shape[0] - 1
    acc = np.empty(width, weights.dtype)
    for g in range(g0, g1):
        row = src[g - src_base]
        w0 = weights[0]
        for j in range(width):
            acc[j] = row[j] * w0
        for k in range(radius, 0, -1):
            lo = src[_mirror(g - k, n, nearest) - src_base]
            hi = src[_mirror(g + k, n, nearest) - src_base]
            wk = weights[k]
            for j in range(width):
                acc[j] += _pair_sum(lo[j], hi[j], wk) * wk
        out = dst[dst_start + g - g0]
        for j in range(width):
            out[j] = acc[j]


@njit(nogil=True, cache=True)
def smooth_columns(rows, weights, nearest):
    """Horizontal Gaussian pass, in place on every row of ``rows`` (2-D float32)."""
    n_rows, width = rows.shape
    radius = weights.shape[0] - 1
    acc = np.empty(width, weights.dtype)
    padded = np.empty(width + 2 * radius, weights.dtype)
    for i in range(n_rows):
        row = rows[i]
        for j in range(width + 2 * radius):
            padded[j] = row[_mirror(j - radius, width, nearest)]
        w0 = weights[0]
        centre = padded[radius : radius + width]
        for j in range(width):
            acc[j] = centre[j] * w0
        for k in range(radius, 0, -1):
            # slices, not padded[j - k]: lets LLVM vectorise (no negative-index checks)
            lo = padded[radius - k : radius - k + width]
            hi = padded[radius + k : radius + k + width]
            wk = weights[k]
            for j in range(width):
                acc[j] += (lo[j] + hi[j]) * wk
        for j in range(width):
            row[j] = acc[j]


@njit(nogil=True, cache=True)
def _pad_row(row, padded):
    """padded[1:-1] = row with one reflected (== clamped) pixel on each side."""
    width = row.shape[0]
    padded[0] = row[0]
    for j in range(width):
        padded[j + 1] = row[j]
    padded[width + 1] = row[width - 1]


@njit(nogil=True, cache=True)
def gradient_products(smoothed, base, height, g0, g1, products, products_base):
    """Jxx, Jxy, Jyy = gx*gx, gx*gy, gy*gy (central differences, reflect) for rows [g0, g1)."""
    width = smoothed.shape[1]
    padded = np.empty(width + 2, np.float32)
    left, right = padded[0:width], padded[2 : width + 2]
    half = np.float32(0.5)
    for g in range(g0, g1):
        _pad_row(smoothed[g - base], padded)
        up = smoothed[max(g - 1, 0) - base]
        down = smoothed[min(g + 1, height - 1) - base]
        p = g - products_base
        jxx, jxy, jyy = products[0, p], products[1, p], products[2, p]
        for j in range(width):
            gx = half * (right[j] - left[j])
            gy = half * (down[j] - up[j])
            jxx[j] = gx * gx
            jxy[j] = gx * gy
            jyy[j] = gy * gy


@njit(nogil=True, cache=True)
def _np_gradient_row(smoothed, base, height, g, out):
    """Row g of numpy.gradient(smoothed, axis=0) in float32 (one-sided at the image border)."""
    if height == 1:
        out[:] = 0
        return
    if g == 0:
        a, b, half = 1, 0, False
    elif g == height - 1:
        a, b, half = height - 1, height - 2, False
    else:
        a, b, half = g + 1, g - 1, True
    hi = smoothed[a - base]
    lo = smoothed[b - base]
    for j in range(out.shape[0]):
        d = hi[j] - lo[j]
        out[j] = d / np.float32(2.0) if half else d


@njit(nogil=True, cache=True)
def _np_gradient_columns(row, out):
    """numpy.gradient(row) of a 1-D float32 row (one-sided at both ends)."""
    width = row.shape[0]
    if width == 1:
        out[0] = 0
        return
    out[0] = row[1] - row[0]
    out[width - 1] = row[width - 1] - row[width - 2]
    for j in range(1, width - 1):
        out[j] = (row[j + 1] - row[j - 1]) / np.float32(2.0)


@njit(nogil=True, cache=True)
def _block(scratch, offsets, halos, k, s, r0, r1):
    """Smoothed rows of (input k, sigma s) and the global row index of their first row."""
    halo = halos[k, s]
    start = offsets[k, s]
    return scratch[start : start + (r1 - r0) + 2 * halo], r0 - halo


@njit(nogil=True, cache=True)
def _copy(source, target):
    # an explicit loop: array slice assignment drags numba's string formatting into the build
    for j in range(source.shape[0]):
        target[j] = source[j]


@njit(nogil=True, cache=True)
def _store_row(buffer, out, i):
    """out[i, j, f] = buffer[f, j] for every real feature f (the last buffer row is a sink)."""
    n_features, width = out.shape[2], out.shape[1]
    row = out[i]
    for j in range(width):
        for f in range(n_features):
            row[j, f] = buffer[f, j]


@njit(nogil=True, cache=True)
def _targets(slots, k, s, sink):
    """Output indices of one (input, scale); disabled features go to the sink row."""
    f = slots[k, s].copy()
    for q in range(f.shape[0]):
        if f[q] < 0:
            f[q] = sink
    return f


@njit(nogil=True, cache=True)
def assemble_basic(scratch, offsets, halos, height, r0, r1, slots, out):
    """scikit-image's basic features of rows [r0, r1), float32 arithmetic as numpy does it.

    Each output row is built feature-major in a small buffer with vectorisable loops, then
    transposed once into ``out`` (writing features one at a time into (H, W, F) is 5x slower).
    """
    n_inputs, n_sigma = slots.shape[0], slots.shape[1]
    width, sink = scratch.shape[1], out.shape[2]
    buffer = np.empty((sink + 1, width), np.float32)
    pad_mid = np.empty(width + 2, np.float32)
    pad_up = np.empty(width + 2, np.float32)
    pad_down = np.empty(width + 2, np.float32)
    mid_l, mid_r = pad_mid[0:width], pad_mid[2 : width + 2]
    up_l, up_c, up_r = pad_up[0:width], pad_up[1 : width + 1], pad_up[2 : width + 2]
    down_l, down_c, down_r = pad_down[0:width], pad_down[1 : width + 1], pad_down[2 : width + 2]
    sqrt2 = np.sqrt(np.float32(2.0))
    two = np.float32(2.0)
    grad_up = np.empty(width, np.float32)
    grad_mid = np.empty(width, np.float32)
    grad_down = np.empty(width, np.float32)
    grad_col = np.empty(width, np.float32)
    h_rr = np.empty(width, np.float32)
    h_rc = np.empty(width, np.float32)
    h_cc = np.empty(width, np.float32)
    for i in range(r0, r1):
        for k in range(n_inputs):
            for s in range(n_sigma):
                if halos[k, s] < 0:
                    continue
                g, base = _block(scratch, offsets, halos, k, s, r0, r1)
                row = g[i - base]
                f = _targets(slots, k, s, sink)
                if f[0] < sink:
                    _copy(row, buffer[f[0]])
                if f[1] < sink:
                    # Sobel magnitude, mode 'reflect' (== clamp for a 1-px reach), float64 sums
                    # as scipy.ndimage.convolve, then float32 as scikit-image
                    _pad_row(row, pad_mid)
                    _pad_row(g[max(i - 1, 0) - base], pad_up)
                    _pad_row(g[min(i + 1, height - 1) - base], pad_down)
                    edge = buffer[f[1]]
                    for j in range(width):
                        d_r = (
                            0.25 * (np.float64(down_l[j]) - up_l[j])
                            + 0.5 * (np.float64(down_c[j]) - up_c[j])
                            + 0.25 * (np.float64(down_r[j]) - up_r[j])
                        )
                        d_c = (
                            0.25 * (np.float64(up_r[j]) - up_l[j])
                            + 0.5 * (np.float64(mid_r[j]) - mid_l[j])
                            + 0.25 * (np.float64(down_r[j]) - down_l[j])
                        )
                        e_r, e_c = np.float32(d_r), np.float32(d_c)
                        total = np.float32(0.0) + e_r * e_r
                        total = total + e_c * e_c
                        edge[j] = np.sqrt(total) / sqrt2
                if f[2] < sink or f[3] < sink:
                    # Hessian = numpy.gradient of numpy.gradient, as scikit-image computes it
                    _np_gradient_row(g, base, height, i, grad_mid)
                    if height == 1:
                        h_rr[:] = 0
                    elif i == 0:
                        _np_gradient_row(g, base, height, 1, grad_down)
                        for j in range(width):
                            h_rr[j] = grad_down[j] - grad_mid[j]
                    elif i == height - 1:
                        _np_gradient_row(g, base, height, i - 1, grad_up)
                        for j in range(width):
                            h_rr[j] = grad_mid[j] - grad_up[j]
                    else:
                        _np_gradient_row(g, base, height, i - 1, grad_up)
                        _np_gradient_row(g, base, height, i + 1, grad_down)
                        for j in range(width):
                            h_rr[j] = (grad_down[j] - grad_up[j]) / two
                    _np_gradient_columns(grad_mid, h_rc)
                    _np_gradient_columns(row, grad_col)
                    _np_gradient_columns(grad_col, h_cc)
                    first, second = buffer[f[2]], buffer[f[3]]
                    for j in range(width):
                        mean = (h_rr[j] + h_cc[j]) / two
                        half = (h_rr[j] - h_cc[j]) / two
                        root = np.sqrt(h_rc[j] * h_rc[j] + half * half)
                        first[j] = mean + root
                        second[j] = mean - root
        _store_row(buffer, out, i)


@njit(nogil=True, cache=True)
def assemble_extended(inputs, scratch, offsets, halos, r0, r1, tensors, texture_index, slots, out):
    """Extended features of rows [r0, r1) from the smoothed strips (reflect boundaries).

    Same row-buffer scheme as :func:`assemble_basic`, float32 arithmetic throughout.
    """
    n_inputs, height, width = inputs.shape
    n_sigma, sink = slots.shape[1], out.shape[2]
    buffer = np.empty((sink + 1, width), np.float32)
    pad_mid = np.empty(width + 2, np.float32)
    pad_up = np.empty(width + 2, np.float32)
    pad_down = np.empty(width + 2, np.float32)
    mid_l, mid_c, mid_r = pad_mid[0:width], pad_mid[1 : width + 1], pad_mid[2 : width + 2]
    up_l, up_c, up_r = pad_up[0:width], pad_up[1 : width + 1], pad_up[2 : width + 2]
    down_l, down_c, down_r = pad_down[0:width], pad_down[1 : width + 1], pad_down[2 : width + 2]
    half, quarter, zero = np.float32(0.5), np.float32(0.25), np.float32(0.0)
    for i in range(r0, r1):
        for k in range(n_inputs):
            for s in range(n_sigma):
                if halos[k, s] < 0:
                    continue
                g, base = _block(scratch, offsets, halos, k, s, r0, r1)
                row = g[i - base]
                f = _targets(slots, k, s, sink)
                want_edges = f[1] < sink or f[2] < sink or f[3] < sink
                want_hessian = f[6] < sink or f[7] < sink
                t = texture_index[k]
                if f[0] < sink:
                    _copy(row, buffer[f[0]])
                if want_edges or want_hessian:
                    _pad_row(row, pad_mid)
                    _pad_row(g[max(i - 1, 0) - base], pad_up)
                    _pad_row(g[min(i + 1, height - 1) - base], pad_down)
                if want_edges:
                    if s == 0:
                        previous = inputs[k, i]
                    else:
                        coarse, coarse_base = _block(scratch, offsets, halos, k, s - 1, r0, r1)
                        previous = coarse[i - coarse_base]
                    magnitude, laplacian, difference = buffer[f[1]], buffer[f[2]], buffer[f[3]]
                    for j in range(width):
                        c = mid_c[j]
                        gx = half * (mid_r[j] - mid_l[j])
                        gy = half * (down_c[j] - up_c[j])
                        magnitude[j] = np.sqrt(gx * gx + gy * gy)
                        d_xx = (mid_r[j] - c) + (mid_l[j] - c)
                        laplacian[j] = d_xx + ((down_c[j] - c) + (up_c[j] - c))
                        difference[j] = previous[j] - c
                if want_hessian:
                    first, second = buffer[f[6]], buffer[f[7]]
                    for j in range(width):
                        c = mid_c[j]
                        d_xx = (mid_r[j] - c) + (mid_l[j] - c)
                        d_yy = (down_c[j] - c) + (up_c[j] - c)
                        d_xy = quarter * ((down_r[j] - down_l[j]) - (up_r[j] - up_l[j]))
                        mean = half * (d_xx + d_yy)
                        spread = half * (d_xx - d_yy)
                        root = np.sqrt(spread * spread + d_xy * d_xy)
                        first[j] = mean + root
                        second[j] = mean - root
                if t >= 0 and (f[4] < sink or f[5] < sink):
                    jxx = tensors[t, s, 0, i - r0]
                    jxy = tensors[t, s, 1, i - r0]
                    jyy = tensors[t, s, 2, i - r0]
                    first, second = buffer[f[4]], buffer[f[5]]
                    for j in range(width):
                        mean = half * (jxx[j] + jyy[j])
                        spread = half * (jxx[j] - jyy[j])
                        root = np.sqrt(spread * spread + jxy[j] * jxy[j])
                        first[j] = mean + root
                        second[j] = max(mean - root, zero)  # >= 0 in exact arithmetic
        _store_row(buffer, out, i)
