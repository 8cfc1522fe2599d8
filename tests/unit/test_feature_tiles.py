"""seg.features.tiles: lazily computed feature tiles equal the whole-frame features."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seg.errors import TrainingError
from seg.features import PRESETS, compute_features
from seg.features.tiles import TileFeatures
from seg.images import Normalization, normalize
from seg.model import train, train_samples
from seg.tiling import predict_tiled

PROPERTY = settings(max_examples=12, deadline=None, derandomize=True, database=None)


def _image(seed: int, shape: tuple[int, ...], dtype=np.uint16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(size=shape), axis=0), axis=1)
    smooth = (smooth - smooth.min()) / (np.ptp(smooth) + 1e-9)
    return (smooth * 0.7 * np.iinfo(dtype).max + rng.integers(0, 2000, size=shape)).astype(dtype)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@PROPERTY
@given(
    height=st.integers(1, 150),
    width=st.integers(1, 150),
    tile=st.integers(16, 96),
    channels=st.sampled_from([1, 3]),
    seed=st.integers(0, 2**16),
)
def test_tiles_equal_whole_frame_features(preset, height, width, tile, channels, seed):
    shape = (height, width) if channels == 1 else (height, width, channels)
    frame = _image(seed, shape)
    normalization = Normalization(mode="percentile")
    feature_settings = PRESETS[preset]
    whole = compute_features(normalize(frame, normalization), feature_settings)
    tiles = TileFeatures(frame, feature_settings, normalization, tile=tile, budget=10**9)
    rng = np.random.default_rng(seed)
    rows = np.unique(rng.integers(0, height, size=min(height, 40)))
    cols = np.unique(rng.integers(0, width, size=min(width, 40)))
    assert np.array_equal(tiles.gather(rows, cols), whole[np.ix_(rows, cols)])
    assert np.array_equal(tiles.gather(np.arange(height), np.arange(width)), whole)


def test_budget_drops_least_recently_used_tiles_and_recomputes_them_equal():
    frame = _image(1, (200, 200), np.uint8)
    feature_settings = PRESETS["fine detail"]
    tiles = TileFeatures(frame, feature_settings, Normalization(), tile=64, budget=3 * 64 * 64 * 40 * 4)
    first = tiles.tile_features(0, 0).copy()
    for key in [(0, 1), (1, 0), (1, 1)]:
        tiles.tile_features(*key)
    assert tiles.cached() == [(0, 1), (1, 0), (1, 1)]
    assert tiles.nbytes <= tiles.budget
    assert np.array_equal(tiles.tile_features(0, 0), first)
    assert tiles.computed == 5
    everything = np.arange(200)
    assert not tiles.fits(everything, everything) and tiles.fits(everything[:120], everything[:60])


def test_labelled_samples_are_the_labelled_rows_and_train_a_model():
    frame = _image(2, (180, 260), np.uint8)
    feature_settings = PRESETS["balanced"]
    normalization = Normalization()
    labels = np.zeros(frame.shape, np.uint8)
    labels[10:14, 20:200] = 1
    labels[150:170, 240:250] = 2
    tiles = TileFeatures(frame, feature_settings, normalization, tile=64, budget=64 * 64 * 40 * 4)
    x, y = tiles.labelled_samples(labels)
    whole = compute_features(normalize(frame, normalization), feature_settings)
    assert sorted(map(tuple, x.tolist())) == sorted(map(tuple, whole[labels > 0].tolist()))
    assert np.bincount(y).tolist() == np.bincount(labels[labels > 0]).tolist()
    computed = tiles.computed
    again_x, _ = tiles.labelled_samples(labels)  # unchanged labels: nothing recomputed
    assert tiles.computed == computed and np.array_equal(again_x, x)
    labels[100, 100] = 1  # one new pixel: only its tile is gathered
    tiles.labelled_samples(labels)
    assert tiles.computed == computed + 1

    model = train_samples(
        x,
        y,
        n_channels=1,
        image_shape=(1, *frame.shape, 1),
        frames=[0],
        settings=feature_settings,
        class_names=["a", "b"],
        normalization=normalization,
    )
    assert model.training["labelled_pixels"] == {"a": int((labels == 1).sum()) - 1, "b": 200}
    reference = train(frame, np.where(labels == 1, 0, labels) + (labels == 1), feature_settings, ["a", "b"])
    assert reference.n_classes == model.n_classes
    # whole-image prediction through the tiled path equals the untiled prediction
    assert np.array_equal(predict_tiled(model, frame, tile=64), model.predict(frame))


def test_train_samples_refuses_one_class_and_bad_shapes():
    with pytest.raises(TrainingError, match="at least two classes"):
        train_samples(
            np.zeros((3, 40), np.float32),
            np.ones(3, np.int64),
            n_channels=1,
            image_shape=(1, 5, 5, 1),
            frames=[0],
            settings=PRESETS["balanced"],
            class_names=["a", "b"],
        )
    with pytest.raises(TrainingError, match=r"\(N, 40\)"):
        train_samples(
            np.zeros((3, 7), np.float32),
            np.ones(3, np.int64),
            n_channels=1,
            image_shape=(1, 5, 5, 1),
            frames=[0],
            settings=PRESETS["balanced"],
            class_names=["a", "b"],
        )


@pytest.mark.parametrize("preset", sorted(PRESETS))
@PROPERTY
@given(
    height=st.integers(1, 150),
    width=st.integers(1, 150),
    tile=st.integers(16, 96),
    zoom=st.sampled_from([0.5, 1.0, 2.0, 3.0]),
    band_rows=st.integers(1, 80),
    seed=st.integers(0, 2**16),
)
def test_a_views_pixels_equal_whole_frame_features_with_and_without_tiles(
    preset, height, width, tile, zoom, band_rows, seed
):
    from seg.viewport import Viewport

    frame = _image(seed, (height, width))
    normalization = Normalization(mode="percentile")
    feature_settings = PRESETS[preset]
    whole = compute_features(normalize(frame, normalization), feature_settings)
    rng = np.random.default_rng(seed)
    view = Viewport.at(height, width, zoom, (rng.uniform(0, width), rng.uniform(0, height)), max_side=60)
    rows, cols = view.display_rows(), view.display_columns()  # repeated pixels when zoomed in
    band_bytes = band_rows * width * feature_settings.n_features(1) * 4
    tiles = TileFeatures(frame, feature_settings, normalization, tile=tile, budget=10**9, band_bytes=band_bytes)
    direct = tiles.direct_cost(rows, cols) < tiles.tiles_cost(rows, cols)
    assert np.array_equal(tiles.gather(rows, cols), whole[np.ix_(rows, cols)])
    assert tiles.computed == (0 if direct else len(tiles.tiles_under(rows, cols)))  # the view's window, no tile
    for key in tiles.tiles_under(rows, cols):
        tiles.tile_features(*key)
    assert tiles.ready(rows, cols) and tiles.tiles_cost(rows, cols) == 0
    assert np.array_equal(tiles.gather(rows, cols), whole[np.ix_(rows, cols)])


def test_a_view_at_one_to_one_is_computed_on_its_own_window_not_its_tiles():
    frame = _image(5, (500, 500), np.uint8)
    tiles = TileFeatures(frame, PRESETS["balanced"], Normalization(), tile=128, budget=10**9)
    rows = cols = np.arange(200, 330)  # a 130-pixel view across 2 x 2 tiles of 128
    margin = PRESETS["balanced"].margin()
    assert tiles.direct_cost(rows, cols) == (130 + 2 * margin) ** 2 < tiles.tiles_cost(rows, cols)
    tiles.gather(rows, cols)
    assert tiles.computed == 0 and tiles.cached() == []
