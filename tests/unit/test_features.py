"""seg.features: scikit-image equality, meaning of each feature, presets, settings, tiling."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image
from skimage import data
from skimage.feature import multiscale_basic_features

from seg.errors import ImageError, SegError, SettingsError
from seg.features import DEFAULT_PRESET, PRESETS, FeatureSettings, compute_features

# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    """Non-square grey crop with real edges and texture, float32 in [0, 1]."""
    return np.ascontiguousarray(data.camera()[100:260, 150:340], dtype=np.float32) / 255


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """Non-square RGB crop, float32 in [0, 1]."""
    return np.ascontiguousarray(data.astronaut()[20:140, 160:330], dtype=np.float32) / 255


def _blob(size: int = 65, width: float = 4.0, bright: bool = True) -> np.ndarray:
    """A Gaussian blob of standard deviation ``width`` centred in a square image."""
    y, x = np.mgrid[:size, :size] - size // 2
    blob = np.exp(-(x**2 + y**2) / (2 * width**2)).astype(np.float32)
    return blob if bright else 1 - blob


def _feature(features: np.ndarray, settings: FeatureSettings, n_channels: int, name: str) -> np.ndarray:
    return features[..., settings.feature_names(n_channels).index(name)]


def _assert_close_per_feature(got: np.ndarray, expected: np.ndarray, relative: float) -> None:
    """Equal within ``relative`` times each feature's range (float32 rounding is relative to it)."""
    assert got.shape == expected.shape
    span = expected.max(axis=(0, 1)) - expected.min(axis=(0, 1))
    scale = np.maximum(span, np.abs(expected).max(axis=(0, 1)) * 1e-3) + 1e-12
    np.testing.assert_array_less(np.abs(got - expected).max(axis=(0, 1)), relative * scale + 1e-9)


# -- "basic" is scikit-image's multiscale_basic_features ------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(sigma_min=1.0, sigma_max=16.0),  # the gallery settings
        dict(sigma_min=0.3, sigma_max=2.0, num_sigma=3),  # small sigmas
        dict(sigma_min=0.5, sigma_max=6.0, num_sigma=1),
        dict(sigma_min=0.7, sigma_max=5.0, num_sigma=4),
        dict(sigma_min=1.0, sigma_max=8.0, intensity=False),
        dict(sigma_min=1.0, sigma_max=8.0, edges=False),
        dict(sigma_min=1.0, sigma_max=8.0, texture=False),
        dict(sigma_min=1.0, sigma_max=8.0, intensity=False, edges=False),
        dict(sigma_min=2.0, sigma_max=4.0, edges=False, texture=False),
    ],
)
def test_basic_equals_scikit_image_grey(camera, kwargs):
    settings = FeatureSettings(feature_set="basic", channel_mode="separate", **kwargs)
    expected = multiscale_basic_features(camera, **kwargs)
    got = compute_features(camera, settings)
    assert got.shape == expected.shape == camera.shape + (settings.n_features(1),)
    _assert_close_per_feature(got, expected, 1e-5)


@pytest.mark.parametrize(
    "kwargs", [dict(sigma_min=1.0, sigma_max=16.0), dict(sigma_min=0.4, sigma_max=3.0, num_sigma=2, edges=False)]
)
def test_basic_equals_scikit_image_rgb(astronaut, kwargs):
    settings = FeatureSettings(feature_set="basic", channel_mode="separate", **kwargs)
    expected = multiscale_basic_features(astronaut, channel_axis=-1, **kwargs)
    got = compute_features(astronaut, settings)
    assert got.shape[-1] == settings.n_features(3) == expected.shape[-1]
    _assert_close_per_feature(got, expected, 1e-5)


@pytest.mark.parametrize("shape", [(5, 7), (2, 40), (33, 3), (9, 9, 2)])
def test_basic_equals_scikit_image_on_images_smaller_than_the_kernel(shape):
    image = np.random.default_rng(1).random(shape, dtype=np.float32)
    settings = FeatureSettings(feature_set="basic", sigma_min=1.0, sigma_max=8.0)
    axis = -1 if len(shape) == 3 else None
    expected = multiscale_basic_features(image, sigma_min=1.0, sigma_max=8.0, channel_axis=axis)
    _assert_close_per_feature(compute_features(image, settings), expected, 1e-5)


def test_gallery_preset_is_the_scikit_image_gallery_call(astronaut):
    settings = PRESETS["scikit-image gallery"]
    expected = multiscale_basic_features(
        astronaut, intensity=True, edges=True, texture=True, sigma_min=1, sigma_max=16, channel_axis=-1
    )
    _assert_close_per_feature(compute_features(astronaut, settings), expected, 1e-5)


# -- "extended": layout and names -------------------------------------------------------------


def test_extended_layout_and_names():
    settings = FeatureSettings(sigma_min=1.0, sigma_max=2.0)
    assert settings.sigmas() == (1.0, 2.0)
    names = settings.feature_names(1)
    assert names[:8] == [
        "ch0 gaussian σ=1.0",
        "ch0 gradient magnitude σ=1.0",
        "ch0 laplacian of gaussian σ=1.0",
        "ch0 difference of gaussians σ=0−1.0",
        "ch0 structure tensor eigenvalue 1 σ=1.0",
        "ch0 structure tensor eigenvalue 2 σ=1.0",
        "ch0 hessian eigenvalue 1 σ=1.0",
        "ch0 hessian eigenvalue 2 σ=1.0",
    ]
    assert names[11] == "ch0 difference of gaussians σ=1.0−2.0"
    assert len(names) == len(set(names)) == settings.n_features(1) == 16
    features = compute_features(np.zeros((20, 30), np.float32), settings)
    assert features.shape == (20, 30, 16)


@pytest.mark.parametrize(
    "groups, per_sigma",
    [((True, False, False), 1), ((False, True, False), 3), ((False, False, True), 4), ((True, True, True), 8)],
)
def test_extended_toggles_select_groups(camera, groups, per_sigma):
    intensity, edges, texture = groups
    settings = FeatureSettings(intensity=intensity, edges=edges, texture=texture, sigma_min=1.0, sigma_max=4.0)
    full = FeatureSettings(sigma_min=1.0, sigma_max=4.0)
    got = compute_features(camera, settings)
    assert got.shape[-1] == settings.n_features(1) == 3 * per_sigma
    # a toggled-off group removes features without changing the others
    reference = compute_features(camera, full)
    columns = [full.feature_names(1).index(n) for n in settings.feature_names(1)]
    np.testing.assert_array_equal(got, reference[..., columns])


def test_features_are_float32_c_contiguous_for_any_float_layout(astronaut):
    view = np.asfortranarray(astronaut.astype(np.float64))[::-1]  # float64, strided
    features = compute_features(view, PRESETS[DEFAULT_PRESET])
    assert features.dtype == np.float32 and features.flags.c_contiguous
    np.testing.assert_allclose(features, compute_features(np.ascontiguousarray(astronaut[::-1])), rtol=0, atol=1e-6)


def test_single_threaded_result_is_identical(camera):
    settings = PRESETS["fine detail"]
    np.testing.assert_array_equal(
        compute_features(camera, settings, workers=1), compute_features(camera, settings, workers=2)
    )


# -- "extended": each feature means what its name says ------------------------------------


def test_gaussian_is_scipy_gaussian_truncated_at_3_sigma_with_reflect_boundaries(camera):
    settings = FeatureSettings(sigma_min=0.3, sigma_max=8.0, num_sigma=4)
    features = compute_features(camera, settings)
    for sigma in settings.sigmas():
        name = f"ch0 gaussian σ={sigma:.2f}".rstrip("0").rstrip(".")
        expected = ndi.gaussian_filter(camera.astype(np.float64), sigma, mode="reflect", truncate=3.0)
        got = features[..., [n.startswith(name) for n in settings.feature_names(1)].index(True)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_constant_image_gives_constant_intensity_and_zero_derivatives(preset):
    settings = PRESETS[preset]
    features = compute_features(np.full((40, 50, 3), 0.25, np.float32), settings)
    assert np.isfinite(features).all()
    for index, name in enumerate(settings.feature_names(3)):
        expected = 0.25 if "gaussian σ" in name and "of gaussian" not in name else 0.0
        np.testing.assert_allclose(features[..., index], expected, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2, 3)])
def test_tiny_images_give_finite_features(shape):
    frame = np.random.default_rng(0).random(shape, dtype=np.float32)
    for settings in PRESETS.values():
        features = compute_features(frame, settings)
        n_channels = 1 if len(shape) == 2 else shape[2]
        assert features.shape == shape[:2] + (settings.n_features(n_channels),)
        assert np.isfinite(features).all()


def test_gradient_magnitude_peaks_on_an_edge():
    image = np.zeros((40, 60), np.float32)
    image[:, 30:] = 1.0  # vertical step between columns 29 and 30
    settings = FeatureSettings(sigma_min=1.0, sigma_max=4.0)
    features = compute_features(image, settings)
    for sigma in ("1.0", "2.0", "4.0"):
        magnitude = _feature(features, settings, 1, f"ch0 gradient magnitude σ={sigma}")
        assert set(np.argmax(magnitude, axis=1)) <= {29, 30}
        assert magnitude[:, :10].max() < 1e-3 < magnitude[:, 29].min()


def test_hessian_eigenvalues_have_the_sign_of_a_blob():
    settings = FeatureSettings(sigma_min=1.0, sigma_max=4.0, edges=False, intensity=False)
    centre = (32, 32)
    bright = compute_features(_blob(bright=True), settings)[centre]
    dark = compute_features(_blob(bright=False), settings)[centre]
    names = settings.feature_names(1)
    for index, name in enumerate(names):
        if "hessian" in name:
            assert bright[index] < 0 < dark[index], name
    first = [i for i, n in enumerate(names) if "hessian eigenvalue 1" in n]
    second = [i for i, n in enumerate(names) if "hessian eigenvalue 2" in n]
    assert (bright[first] >= bright[second]).all()


@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.0])
def test_laplacian_of_gaussian_at_a_blob_centre_matches_theory(sigma):
    # Gaussian blob of width s smoothed at sigma is a Gaussian of variance s² + sigma², whose
    # Laplacian at the centre is -2 s² / (s² + sigma²)²: weaker and wider as sigma grows.
    width = 4.0
    settings = FeatureSettings(sigma_min=sigma, sigma_max=sigma, num_sigma=1)
    features = compute_features(_blob(width=width), settings)
    log = _feature(features, settings, 1, f"ch0 laplacian of gaussian σ={sigma:.1f}")
    expected = -2 * width**2 / (width**2 + sigma**2) ** 2
    assert log[32, 32] == pytest.approx(expected, rel=0.05)
    assert log[32, 32] == log.min()


def test_difference_of_gaussians_is_a_band_pass_between_scales(camera):
    settings = FeatureSettings(sigma_min=1.0, sigma_max=4.0, num_sigma=3)
    features = compute_features(camera, settings)
    names = settings.feature_names(1)
    g1, g2 = (features[..., names.index(f"ch0 gaussian σ={s}")] for s in ("1.0", "2.0"))
    dog_first = features[..., names.index("ch0 difference of gaussians σ=0−1.0")]
    dog_second = features[..., names.index("ch0 difference of gaussians σ=1.0−2.0")]
    np.testing.assert_allclose(dog_first, camera - g1, atol=1e-6)
    np.testing.assert_allclose(dog_second, g1 - g2, atol=1e-6)


def test_structure_tensor_sees_orientation_coherence():
    rng = np.random.default_rng(3)
    stripes = np.tile(np.sin(np.arange(64) / 2.0), (48, 1)).astype(np.float32)  # 1-D pattern
    noise = rng.random((48, 64), dtype=np.float32)
    settings = FeatureSettings(sigma_min=1.0, sigma_max=2.0, intensity=False, edges=False)
    names = settings.feature_names(1)
    first = names.index("ch0 structure tensor eigenvalue 1 σ=1.0")
    second = names.index("ch0 structure tensor eigenvalue 2 σ=1.0")
    inner = (slice(8, -8), slice(8, -8))
    striped = compute_features(stripes, settings)[inner]
    noisy = compute_features(noise, settings)[inner]
    # stripes: all gradients parallel, so the second eigenvalue vanishes; noise: both large
    assert striped[..., second].max() < 1e-6 < striped[..., first].mean()
    assert noisy[..., second].mean() > 0.1 * noisy[..., first].mean()
    for features in (striped, noisy):
        assert (features[..., first] >= features[..., second]).all()
        assert (features[..., second] >= 0).all()


def test_small_sigmas_are_well_formed(camera):
    settings = FeatureSettings(sigma_min=0.3, sigma_max=0.7, num_sigma=2)
    features = compute_features(camera, settings)
    assert np.isfinite(features).all()
    gaussian = _feature(features, settings, 1, "ch0 gaussian σ=0.3")
    # a 0.3 px Gaussian barely changes the image, but does smooth it
    assert 0 < np.abs(gaussian - camera).max() < 0.05
    assert np.abs(gaussian.mean() - camera.mean()) < 1e-4


def test_membranes_and_cells_differ_in_ridge_features(isbi_dir):
    image = np.asarray(Image.open(isbi_dir / "image" / "00.png"), np.float32) / 255
    labels = np.asarray(Image.open(isbi_dir / "label" / "00.png"))
    settings = PRESETS[DEFAULT_PRESET]
    features = compute_features(image, settings)
    assert features.shape == (512, 512, settings.n_features(1)) and np.isfinite(features).all()
    ridge = _feature(features, settings, 1, "ch0 hessian eigenvalue 1 σ=1.53")
    membrane, cell = labels == 0, labels == 255
    # membranes are thin dark lines: strongly positive curvature across them
    assert np.median(ridge[membrane]) > 2 * max(np.median(ridge[cell]), 1e-4)


# -- channel modes -----------------------------------------------------------------------------


def test_luminance_mode_counts_and_meaning(astronaut):
    separate = FeatureSettings(channel_mode="separate")
    luminance = FeatureSettings(channel_mode="luminance")
    assert separate.n_features(3) == 3 * separate.n_features(1) == 120
    assert luminance.n_features(3) == 3 * 5 + 5 * 7 == 50
    names = luminance.feature_names(3)
    assert names[0] == "ch0 gaussian σ=0.7" and names[15] == "luminance gradient magnitude σ=0.7"
    features = compute_features(astronaut, luminance)
    # intensity per channel, edges and texture of the channel mean
    grey = compute_features(astronaut.mean(axis=2), separate)
    grey_names = separate.feature_names(1)
    for index, name in enumerate(names):
        if name.startswith("luminance"):
            expected = grey[..., grey_names.index(name.replace("luminance", "ch0"))]
            np.testing.assert_allclose(features[..., index], expected, atol=1e-6, err_msg=name)
    per_channel = compute_features(astronaut[..., 2], separate)
    np.testing.assert_array_equal(
        features[..., names.index("ch2 gaussian σ=3.35")], per_channel[..., grey_names.index("ch0 gaussian σ=3.35")]
    )


def test_luminance_equals_separate_for_one_channel(camera):
    separate, luminance = FeatureSettings(), FeatureSettings(channel_mode="luminance")
    assert separate.feature_names(1) == luminance.feature_names(1)
    np.testing.assert_array_equal(compute_features(camera, separate), compute_features(camera[..., None], luminance))


# -- presets -----------------------------------------------------------------------------------


def test_presets_are_plain_named_and_valid():
    assert set(PRESETS) == {"fine detail", "balanced", "large structures", "scikit-image gallery"}
    assert DEFAULT_PRESET == "balanced" and DEFAULT_PRESET in PRESETS
    for name, settings in PRESETS.items():
        assert name == name.lower() and "_" not in name
        assert isinstance(settings, FeatureSettings)
        assert FeatureSettings.from_dict(settings.to_dict()) == settings


def test_gallery_preset_is_exactly_the_seed_demo():
    assert PRESETS["scikit-image gallery"] == FeatureSettings(
        feature_set="basic",
        intensity=True,
        edges=True,
        texture=True,
        sigma_min=1.0,
        sigma_max=16.0,
        num_sigma=None,
        channel_mode="separate",
    )
    assert PRESETS["scikit-image gallery"].n_features(1) == 20
    assert PRESETS["scikit-image gallery"].n_features(3) == 60


@pytest.mark.parametrize("name", ["fine detail", "balanced", "large structures"])
def test_extended_presets_keep_feature_counts_modest(name):
    settings = PRESETS[name]
    assert settings.feature_set == "extended"
    assert settings.n_features(1) <= 40
    assert settings.n_features(3) <= 50


# -- settings validation and persistence --------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(intensity=False, edges=False, texture=False), "At least one of intensity, edges or texture"),
        (dict(feature_set="fancy"), "feature_set"),
        (dict(channel_mode="rgb"), "channel_mode"),
        (dict(sigma_min=0), "sigma_min"),
        (dict(sigma_min=-1.0), "sigma_min"),
        (dict(sigma_min=0.05), "sigma_min"),
        (dict(sigma_min=4.0, sigma_max=2.0), "sigma_max"),
        (dict(sigma_max=100.0), "sigma_max"),
        (dict(sigma_max=float("inf")), "sigma_max"),
        (dict(sigma_min=float("nan")), "sigma_min"),
        (dict(sigma_min="1"), "sigma_min"),
        (dict(sigma_min=True), "sigma_min"),
        (dict(num_sigma=0), "num_sigma"),
        (dict(num_sigma=17), "num_sigma"),
        (dict(num_sigma=2.0), "num_sigma"),
        (dict(num_sigma=True), "num_sigma"),
        (dict(intensity=1), "intensity"),
        (dict(texture="yes"), "texture"),
    ],
)
def test_invalid_settings_raise_settings_error_naming_the_field(kwargs, words):
    with pytest.raises(SettingsError, match=words):
        FeatureSettings(**kwargs)


def test_settings_are_frozen_and_normalised():
    settings = FeatureSettings(sigma_min=1, sigma_max=np.float32(8), num_sigma=np.int64(3))
    assert settings.sigma_min == 1.0 and isinstance(settings.sigma_min, float)
    assert isinstance(settings.num_sigma, int)
    json.dumps(settings.to_dict())
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.sigma_min = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "settings", [FeatureSettings(), *PRESETS.values(), FeatureSettings(num_sigma=3, sigma_min=0.3, edges=False)]
)
def test_to_dict_from_dict_round_trip_through_json(settings):
    restored = FeatureSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert restored == settings
    assert restored.feature_names(3) == settings.feature_names(3)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(evil="__import__('os')"),
        lambda d: d.update(__class__="FeatureSettings"),
        lambda d: d.pop("sigma_max"),
        lambda d: d.update(sigma_min="0.7"),
        lambda d: d.update(sigma_max=[16]),
        lambda d: d.update(sigma_max=1e308),
        lambda d: d.update(num_sigma=1e9),
        lambda d: d.update(num_sigma=10**12),
        lambda d: d.update(feature_set={"name": "basic"}),
        lambda d: d.update(edges=None),
        lambda d: d.update(channel_mode=0),
    ],
)
def test_from_dict_rejects_hostile_dicts(mutate):
    data = FeatureSettings().to_dict()
    mutate(data)
    with pytest.raises(SettingsError):
        FeatureSettings.from_dict(data)


@pytest.mark.parametrize("value", [None, [], "sigma_min=1", 3, [("sigma_min", 1.0)]])
def test_from_dict_rejects_non_mappings(value):
    with pytest.raises(SettingsError, match="JSON object"):
        FeatureSettings.from_dict(value)


# -- bad frames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((4, 5), np.uint8),
        np.zeros((2, 4, 5, 1), np.float32),
        np.zeros((5,), np.float32),
        np.zeros((0, 5), np.float32),
        np.zeros((4, 5, 65), np.float32),
        np.array([[0.0, np.nan]], np.float32),
        np.array([[0.0, np.inf]], np.float64),
        [[0.0, 1.0]],
    ],
)
def test_unusable_frames_raise_image_error(frame):
    with pytest.raises(ImageError):
        compute_features(frame)


def test_wrong_settings_type_raises_settings_error(camera):
    with pytest.raises(SettingsError):
        compute_features(camera, {"feature_set": "basic"})  # type: ignore[arg-type]
    with pytest.raises(SegError):
        compute_features(camera, workers=0)


# -- tiling with margin() ------------------------------------------------------------------


def test_margin_covers_the_largest_kernel():
    assert PRESETS["scikit-image gallery"].margin() == 64 + 2  # 4 sigma + gradient twice
    assert PRESETS["balanced"].margin() == 48 + 1 + 24  # 3 sigma + structure 3 * 8
    small = FeatureSettings(sigma_min=1.0, sigma_max=2.0, texture=False)
    assert small.margin() == 6 + 1
    assert FeatureSettings(edges=False, texture=False, sigma_max=2.0).margin() == 6


@pytest.mark.parametrize(
    "settings",
    [
        FeatureSettings(sigma_min=0.5, sigma_max=4.0),
        FeatureSettings(sigma_min=1.0, sigma_max=3.0, num_sigma=2, channel_mode="luminance"),
        FeatureSettings(feature_set="basic", sigma_min=0.5, sigma_max=4.0),
        FeatureSettings(feature_set="basic", sigma_min=1.0, sigma_max=3.0, texture=False),
    ],
    ids=["extended", "extended-luminance", "basic", "basic-no-texture"],
)
def test_tiles_padded_by_margin_equal_untiled_features(astronaut, settings):
    image = astronaut[:100, :130]
    full = compute_features(image, settings)
    margin = settings.margin()
    height, width = image.shape[:2]
    for y0, y1, x0, x1 in [(0, 37, 0, 45), (37, 70, 45, 90), (70, 100, 90, 130), (20, 60, 0, 130)]:
        top, left = max(0, y0 - margin), max(0, x0 - margin)
        crop = image[top : min(height, y1 + margin), left : min(width, x1 + margin)]
        tile = compute_features(crop, settings)
        interior = tile[y0 - top : y1 - top, x0 - left : x1 - left]
        # same arithmetic for every pixel, wherever the tile starts: bit-identical
        np.testing.assert_array_equal(interior, full[y0:y1, x0:x1])


def test_a_smaller_margin_would_not_be_enough(camera):
    # guards the test above: one pixel less context changes the interior
    settings = FeatureSettings(sigma_min=1.0, sigma_max=2.0)
    margin = settings.margin() - 1
    full = compute_features(camera, settings)
    crop = camera[40 - margin : 80 + margin, 40 - margin : 80 + margin]
    interior = compute_features(crop, settings)[margin:-margin, margin:-margin]
    assert not np.array_equal(interior, full[40:80, 40:80])


def test_feature_names_stay_unique_for_close_sigmas():
    settings = FeatureSettings(sigma_min=1.0, sigma_max=1.01, num_sigma=3)
    names = settings.feature_names(2)
    assert len(set(names)) == len(names) == settings.n_features(2)


def test_images_features_and_model_files_share_one_channel_limit():
    from seg import persist
    from seg.features.settings import feature_layout
    from seg.images import MAX_CHANNELS, as_frames

    assert persist.MAX_CHANNELS == MAX_CHANNELS
    assert as_frames(np.zeros((4, 4, MAX_CHANNELS), np.uint8)).shape[-1] == MAX_CHANNELS
    assert len(feature_layout(FeatureSettings(), MAX_CHANNELS)) > 0
    compute_features(np.zeros((4, 4, MAX_CHANNELS), np.float32), FeatureSettings(sigma_max=1.0))
    with pytest.raises(ImageError, match=f"limit of {MAX_CHANNELS}"):
        as_frames(np.zeros((4, 4, MAX_CHANNELS + 1), np.uint8))
    with pytest.raises(ImageError, match=f"1 to {MAX_CHANNELS}"):
        feature_layout(FeatureSettings(), MAX_CHANNELS + 1)
    with pytest.raises(ImageError, match=f"1..{MAX_CHANNELS} channels"):
        compute_features(np.zeros((4, 4, MAX_CHANNELS + 1), np.float32), FeatureSettings(sigma_max=1.0))
