"""3-D features: basic == scikit-image on the 3-D array, extended == a plain reference,
physical (anisotropic) sigmas, and blocks with their margin == the whole volume."""

from __future__ import annotations

from itertools import combinations_with_replacement

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from skimage.feature import multiscale_basic_features

from seg.errors import ImageError, SettingsError, VoxelSizeError
from seg.features import PRESETS, FeatureSettings, compute_features
from seg.features.settings import structure_sigma
from seg.features.volume import (
    axis_sigmas,
    block_features,
    compute_volume_features,
    n_volume_features,
    volume_feature_names,
    volume_margin,
)


def _volume(shape=(14, 22, 18), channels=None, seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    full = shape if channels is None else (*shape, channels)
    return ndi.gaussian_filter(rng.random(full), 1.0).astype(np.float32) * 3 - 1


def _close(ours: np.ndarray, reference: np.ndarray, names: list[str] | None = None) -> None:
    """Equal to float32 precision, feature by feature, relative to each feature's range; the three
    eigenvalues of one matrix share the largest one's range (the smallest cancels to ~eps of it)."""
    assert ours.shape == reference.shape
    scale = np.maximum(np.abs(reference).max(axis=(0, 1, 2)), 1e-6)
    if names is not None:
        for i, name in enumerate(names):
            if "eigenvalue" in name:
                matrix = (name.split(" eigenvalue")[0], name.split("σ=")[1])
                group = [
                    j
                    for j, other in enumerate(names)
                    if (other.split(" eigenvalue")[0], other.split("σ=")[-1]) == matrix
                ]
                scale[i] = scale[group].max()
    error = np.abs(ours - reference).max(axis=(0, 1, 2)) / scale
    assert error.max() < 2e-5, f"largest relative error {error.max():.2e} at feature {error.argmax()}"


@pytest.mark.parametrize(
    "groups", [(True, True, True), (True, False, False), (False, True, True), (False, False, True)]
)
@pytest.mark.parametrize("sigmas", [(1.0, 8.0, None), (0.5, 4.0, 3)])
def test_basic_3d_equals_multiscale_basic_features(groups, sigmas):
    volume = _volume()
    intensity, edges, texture = groups
    low, high, num = sigmas
    settings = FeatureSettings(
        feature_set="basic",
        intensity=intensity,
        edges=edges,
        texture=texture,
        sigma_min=low,
        sigma_max=high,
        num_sigma=num,
        channel_mode="separate",
    )
    reference = multiscale_basic_features(
        volume, intensity=intensity, edges=edges, texture=texture, sigma_min=low, sigma_max=high, num_sigma=num
    )
    ours = compute_volume_features(volume, settings)
    _close(ours, reference)
    assert ours.dtype == np.float32
    assert len(volume_feature_names(settings, 1)) == ours.shape[-1] == n_volume_features(settings, 1)


def test_basic_3d_equals_scikit_image_with_channels():
    volume = _volume(channels=2)
    settings = FeatureSettings(feature_set="basic", sigma_min=1.0, sigma_max=4.0, channel_mode="separate")
    reference = multiscale_basic_features(volume, sigma_min=1.0, sigma_max=4.0, channel_axis=-1)
    _close(compute_volume_features(volume, settings), reference)


def _reference_extended(volume: np.ndarray, settings: FeatureSettings, ratios=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Plain reference: Gaussian, central differences on a symmetric-padded array, eigvalsh."""

    def derivative(a, axis, ratio):
        padded = np.pad(a, [(1, 1) if i == axis else (0, 0) for i in range(3)], mode="symmetric")
        ahead = np.take(padded, range(2, a.shape[axis] + 2), axis=axis)
        behind = np.take(padded, range(0, a.shape[axis]), axis=axis)
        return (ahead - behind) / 2 / ratio

    def second(a, axis, ratio):
        padded = np.pad(a, [(1, 1) if i == axis else (0, 0) for i in range(3)], mode="symmetric")
        ahead = np.take(padded, range(2, a.shape[axis] + 2), axis=axis)
        behind = np.take(padded, range(0, a.shape[axis]), axis=axis)
        return (ahead - 2 * a + behind) / ratio**2

    def eigen(elements):
        matrix = np.empty((*volume.shape, 3, 3), np.float64)
        for (a, b), element in zip(combinations_with_replacement(range(3), 2), elements):
            matrix[..., a, b] = matrix[..., b, a] = element
        return np.linalg.eigvalsh(matrix)[..., ::-1]

    # The smoothed volume is float32 as in the engine (the structure tensor's smallest eigenvalues
    # cancel: float64 smoothing would differ by ~1e-3 of their range); everything after in float64.
    features, previous = [], volume.astype(np.float64)
    for sigma in settings.sigmas():
        smooth = ndi.gaussian_filter(volume, [sigma / r for r in ratios], mode="reflect", truncate=3.0)
        smooth = smooth.astype(np.float64)
        first = [derivative(smooth, a, ratios[a]) for a in range(3)]
        features.append(smooth)
        features.append(np.sqrt(sum(g**2 for g in first)))
        features.append(sum(second(smooth, a, ratios[a]) for a in range(3)))
        features.append(previous - smooth)
        integration = [structure_sigma(sigma) / r for r in ratios]
        tensor = [
            ndi.gaussian_filter(first[a] * first[b], integration, mode="reflect", truncate=3.0)
            for a, b in combinations_with_replacement(range(3), 2)
        ]
        features.extend(np.moveaxis(eigen(tensor), -1, 0))
        hessian = [
            second(smooth, a, ratios[a]) if a == b else derivative(first[a], b, ratios[b])
            for a, b in combinations_with_replacement(range(3), 2)
        ]
        features.extend(np.moveaxis(eigen(hessian), -1, 0))
        previous = smooth
    return np.stack(features, axis=-1)


@pytest.mark.parametrize(
    "spacing, ratios",
    [(None, (1.0, 1.0, 1.0)), ((50.0, 4.0, 4.0), (12.5, 1.0, 1.0)), ((1.5, 1.0, 0.5), (3.0, 2.0, 1.0))],
)
def test_extended_3d_equals_the_plain_reference(spacing, ratios):
    volume = _volume()
    settings = FeatureSettings(sigma_min=0.7, sigma_max=3.0)
    ours = compute_volume_features(volume, settings, spacing=spacing)
    _close(ours, _reference_extended(volume, settings, ratios), volume_feature_names(settings, 1))
    assert ours.shape[-1] == 10 * len(settings.sigmas())


def test_sigmas_are_physical_lengths_in_units_of_the_finest_voxel_side():
    assert axis_sigmas(2.0, (50, 4, 4)) == pytest.approx((0.16, 2.0, 2.0))
    volume = _volume()
    settings = FeatureSettings(sigma_min=1.0, sigma_max=4.0)
    # a uniformly scaled voxel size is the isotropic case
    np.testing.assert_array_equal(
        compute_volume_features(volume, settings, spacing=(2, 2, 2)), compute_volume_features(volume, settings)
    )
    anisotropic = compute_volume_features(volume, settings, spacing=(5, 1, 1))
    expected = ndi.gaussian_filter(volume, (4.0 / 5, 4.0, 4.0), mode="reflect", truncate=3.0)
    np.testing.assert_allclose(
        anisotropic[..., volume_feature_names(settings, 1).index("ch0 gaussian σ=4 (3d)")], expected, atol=1e-6
    )
    # z context shrinks with thicker sections: the block margin follows the kernels
    assert volume_margin(settings, (5, 1, 1))[0] < volume_margin(settings)[0]


def test_per_slice_mode_is_the_2d_features_of_every_slice():
    volume = _volume()
    settings = PRESETS["balanced"]
    ours = compute_volume_features(volume, settings, mode="per_slice")
    for z in (0, 7, 13):
        np.testing.assert_array_equal(ours[z], compute_features(volume[z], settings))
    assert n_volume_features(settings, 1, "per_slice") == settings.n_features(1) == ours.shape[-1]


_SETTINGS = [
    PRESETS["balanced"],
    PRESETS["scikit-image gallery"],
    PRESETS["fine detail"],
    FeatureSettings(sigma_min=1.0, sigma_max=2.0, texture=False, channel_mode="luminance"),
]


@hsettings(max_examples=25, deadline=None, derandomize=True)
@given(
    which=st.integers(0, len(_SETTINGS) - 1),
    spacing=st.sampled_from([None, (50.0, 4.0, 4.0), (1.0, 1.0, 2.0)]),
    mode=st.sampled_from(["3d", "per_slice"]),
    corner=st.tuples(st.integers(0, 12), st.integers(0, 20), st.integers(0, 16)),
    size=st.tuples(st.integers(1, 8), st.integers(1, 12), st.integers(1, 12)),
)
def test_block_features_equal_whole_volume_features(which, spacing, mode, corner, size):
    volume = _volume(channels=2)
    settings = _SETTINGS[which]
    key = (which, spacing, mode)
    if key not in _WHOLE:
        _WHOLE[key] = compute_volume_features(volume, settings, spacing=spacing, mode=mode)
    whole = _WHOLE[key]
    block = tuple(slice(c, min(c + s, n)) for c, s, n in zip(corner, size, volume.shape[:3]))
    np.testing.assert_array_equal(block_features(volume, settings, block, spacing=spacing, mode=mode), whole[block])


_WHOLE: dict = {}


def test_bad_input_is_refused_with_seg_errors():
    settings = PRESETS["balanced"]
    with pytest.raises(ImageError, match="normalised floating point"):
        compute_volume_features(np.zeros((4, 8, 8), np.uint8), settings)
    with pytest.raises(ImageError, match="NaN"):
        compute_volume_features(np.full((4, 8, 8), np.nan, np.float32), settings)
    with pytest.raises(ImageError, match="shape"):
        compute_volume_features(np.zeros((8, 8), np.float32), settings)
    with pytest.raises(VoxelSizeError):
        compute_volume_features(np.zeros((4, 8, 8), np.float32), settings, spacing=(0, 1, 1))
    with pytest.raises(SettingsError, match="mode"):
        compute_volume_features(np.zeros((4, 8, 8), np.float32), settings, mode="4d")


@pytest.mark.parametrize(
    "groups", [(True, False, False), (False, True, False), (False, False, True), (True, False, True)]
)
def test_extended_3d_groups_are_the_reference_columns(groups):
    """Each group switched on alone (the fused kernel skips the others) gives the reference's columns."""
    volume = _volume()
    intensity, edges, texture = groups
    full = FeatureSettings(sigma_min=0.7, sigma_max=3.0)
    some = FeatureSettings(sigma_min=0.7, sigma_max=3.0, intensity=intensity, edges=edges, texture=texture)
    names = volume_feature_names(full, 1)
    wanted = [names.index(name) for name in volume_feature_names(some, 1)]
    reference = _reference_extended(volume, full, (3.0, 2.0, 1.0))[..., wanted]
    ours = compute_volume_features(volume, some, spacing=(1.5, 1.0, 0.5))
    _close(ours, reference, volume_feature_names(some, 1))


@pytest.mark.parametrize("settings", [PRESETS["balanced"], PRESETS["scikit-image gallery"]])
def test_features_do_not_depend_on_the_number_of_threads(settings, monkeypatch):
    """Gaussian passes and kernels run in slabs on the thread pool: any split gives the same bits."""
    import seg.features.volume as volume_module

    volume = _volume(shape=(40, 36, 30))
    monkeypatch.setattr(volume_module, "_SLAB_VOXELS", 1)
    monkeypatch.setattr(volume_module, "worker_count", lambda workers: 1)
    serial = compute_volume_features(volume, settings, spacing=(2.0, 1.0, 1.0))
    monkeypatch.setattr(volume_module, "worker_count", lambda workers: 3)
    np.testing.assert_array_equal(compute_volume_features(volume, settings, spacing=(2.0, 1.0, 1.0)), serial)


def test_closed_form_eigenvalues_equal_eigvalsh_also_for_repeated_eigenvalues():
    """The kernels' eigenvalues (trigonometric solution without trigonometric calls) against LAPACK,
    on random matrices and on the edge cases r = ±1 (two equal eigenvalues) and p = 0 (three)."""
    from seg.features.volume_kernels import symmetric_eigenvalues

    rng = np.random.default_rng(7)
    matrices = list(rng.standard_normal((20000, 3, 3)))
    rotation = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    for diagonal in [(1, 1, 2), (2, 2, 1), (3, 3, 3), (1, 1 + 1e-7, 5), (0, 0, 0), (-1, 2, 2)]:
        matrices.append(rotation @ np.diag(diagonal) @ rotation.T)
        matrices.append(np.diag(diagonal).astype(float))
    stack = np.array(matrices)
    stack = (stack + np.swapaxes(stack, 1, 2)) / 2
    upper = [np.ascontiguousarray(stack[:, a, b], np.float32) for a, b in combinations_with_replacement(range(3), 2)]
    exact = np.linalg.eigvalsh(np.array(upper)[[0, 1, 2, 1, 3, 4, 2, 4, 5]].T.reshape(-1, 3, 3).astype(np.float64))
    out = np.zeros((len(stack), 4), np.float32)
    symmetric_eigenvalues(*upper, out, 1, 0, len(stack))
    scale = np.maximum(np.abs(exact).max(axis=1), 1e-12)
    error = np.abs(out[:, 1:] - exact[:, ::-1]).max(axis=1) / scale
    assert error.max() < 1e-6, f"largest relative error {error.max():.1e} at matrix {error.argmax()}"
    assert (out[:, 0] == 0).all()
