"""seg.tiling: tiled prediction equals untiled prediction pixel for pixel, with bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from seg import tiling
from seg.errors import ModelMismatchError, SettingsError
from tests.unit.test_batch import synthetic_scene, train_small

SHAPE = (600, 700)
TILE = 128


def _largest_sigma_preset() -> str:
    from seg.features import PRESETS

    return max(PRESETS, key=lambda name: PRESETS[name].sigma_max)


def _presets() -> list[str]:
    from seg.features import DEFAULT_PRESET

    return sorted({DEFAULT_PRESET, _largest_sigma_preset()})


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("shape, tile, margin", [((600, 700), 128, 40), ((5, 300), 64, 100), ((64, 64), 64, 3)])
def test_tiles_cover_the_frame_exactly_once_with_real_context(shape, tile, margin):
    covered = np.zeros(shape, dtype=int)
    for window in tiling.tile_windows(shape, tile, margin):
        covered[window.write] += 1
        for axis in range(2):
            read, write, inner = window.read[axis], window.write[axis], window.inner[axis]
            assert read.start <= write.start and write.stop <= read.stop
            assert read.start == max(0, write.start - margin)
            assert read.stop == min(shape[axis], write.stop + margin)
            assert (inner.start, inner.stop) == (write.start - read.start, write.stop - read.start)
    assert (covered == 1).all()


@pytest.mark.parametrize("tile", [0, 8, 1.5, True])
def test_tile_size_is_validated(tile):
    with pytest.raises(SettingsError, match="tile size"):
        tiling.tile_windows((100, 100), tile, 4)


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_window_normalisation_uses_whole_frame_statistics(dtype):
    from seg.images import Normalization, normalize

    rng = np.random.default_rng(1)
    frame = rng.gamma(2.0, 30.0, size=(120, 90, 2))
    frame[:40] *= 3  # the top is brighter: per-window percentiles would differ from the frame's
    frame = np.clip(frame, 0, 250).astype(dtype)
    normalization = Normalization()
    whole = normalize(frame, normalization)
    stats = tiling.frame_statistics(frame, normalization)
    part = tiling.normalize_window(frame[50:100, 10:60], normalization, stats)
    np.testing.assert_array_equal(part, whole[50:100, 10:60])


# --------------------------------------------------------------------------- prediction


@pytest.fixture(scope="module", params=["grey", "rgb"])
def scene(request):
    channels = 1 if request.param == "grey" else 3
    return synthetic_scene(SHAPE, seed=11, channels=channels)


@pytest.mark.slow
@pytest.mark.parametrize("preset", _presets())
def test_tiled_prediction_equals_untiled(scene, preset):
    image, truth = scene
    model = train_small(image, truth, preset=preset, trees=6)
    assert max(SHAPE) > 4 * TILE
    assert model.feature_settings.margin() > 0
    untiled = model.predict(image)
    tiled = tiling.predict_tiled(model, image, tile=TILE)
    assert tiled.dtype == untiled.dtype
    np.testing.assert_array_equal(tiled, untiled)


@pytest.mark.slow
def test_tiled_probabilities_equal_untiled(scene):
    image, truth = scene
    model = train_small(image, truth, preset=_largest_sigma_preset(), trees=4)
    labels, proba = tiling.apply_tiled(model, image, tile=TILE, labels=True, proba=True)
    np.testing.assert_array_equal(proba, model.predict_proba(image))
    np.testing.assert_array_equal(labels, model.predict(image))


def test_tiled_reads_a_memmap_lazily_and_matches(tmp_path):
    image, truth = synthetic_scene((300, 260), seed=2)
    model = train_small(image, truth, trees=4)
    mapped = np.lib.format.open_memmap(tmp_path / "frame.npy", mode="w+", dtype=image.dtype, shape=image.shape)
    mapped[:] = image
    mapped.flush()
    readonly = np.load(tmp_path / "frame.npy", mmap_mode="r")
    np.testing.assert_array_equal(tiling.predict_tiled(model, readonly, tile=64), model.predict(image))


def test_peak_memory_is_bounded_by_the_tile_not_the_frame():
    image, truth = synthetic_scene((640, 640), seed=5)
    model = train_small(image, truth, trees=4)
    stack_bytes = 640 * 640 * model.feature_settings.n_features(1) * 4
    tile = 96
    tracemalloc.start()
    try:
        tiling.predict_tiled(model, image, tile=tile)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < stack_bytes / 2
    assert peak < 3 * tiling.window_feature_bytes(model, tile) + 640 * 640 * 8


def test_wrong_channel_count_is_refused():
    image, truth = synthetic_scene((64, 64))
    model = train_small(image, truth, trees=2)
    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    with pytest.raises(ModelMismatchError, match=r"trained on images with 1 channel\(s\) but the image has 3"):
        tiling.predict_tiled(model, rgb, tile=32)
    with pytest.raises(ModelMismatchError, match=r"\(H, W\) or \(H, W, C\), got shape \(2, 64, 64, 1\)"):
        tiling.predict_tiled(model, np.zeros((2, 64, 64, 1), np.uint8), tile=32)
