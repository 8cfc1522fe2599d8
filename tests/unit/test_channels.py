"""Choosing which channels of a multichannel image feed the features (FeatureSettings.channels)."""

from __future__ import annotations

import numpy as np
import pytest

import seg
from seg.errors import ImageError, ModelMismatchError, SettingsError
from seg.features import FeatureSettings, compute_features

SETTINGS = FeatureSettings(sigma_min=1.0, sigma_max=4.0)


def a_frame(channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((40, 50, channels)).astype(np.float32)


@pytest.mark.parametrize("mode", ["separate", "luminance"])
def test_chosen_channels_give_the_features_of_those_channels_alone(mode):
    frame = a_frame(4)
    chosen = FeatureSettings(sigma_min=1.0, sigma_max=4.0, channel_mode=mode, channels=(2, 0))
    plain = FeatureSettings(sigma_min=1.0, sigma_max=4.0, channel_mode=mode)
    np.testing.assert_array_equal(compute_features(frame, chosen), compute_features(frame[..., [0, 2]], plain))
    assert chosen.channels == (0, 2)
    assert chosen.n_features(4) == plain.n_features(2)


def test_feature_names_keep_the_image_channel_numbers():
    names = FeatureSettings(sigma_min=1.0, sigma_max=2.0, channels=(1, 3)).feature_names(4)
    assert {name.split()[0] for name in names} == {"ch1", "ch3"}


def test_a_model_with_chosen_channels_applies_itself_after_saving(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (60, 60, 3)).astype(np.uint8)
    image[20:40, 20:40, 1] = 250  # only channel 1 shows the square
    labels = np.zeros((60, 60), np.uint8)
    labels[28:32, 25:35] = 2
    labels[5:8, 5:50] = 1
    settings = FeatureSettings(sigma_min=1.0, sigma_max=2.0, channels=(1,))
    model = seg.train(image, labels, settings)
    one_channel = FeatureSettings(sigma_min=1.0, sigma_max=2.0).n_features(1)
    assert model.forest.n_features == settings.n_features(3) == one_channel
    seg.save_model(model, tmp_path / "m.segmodel")
    again = seg.load_model(tmp_path / "m.segmodel")
    assert again.feature_settings.channels == (1,)
    np.testing.assert_array_equal(again.predict(image), model.predict(image))
    truth = np.ones((60, 60), np.uint8)
    truth[20:40, 20:40] = 2
    noise_only = seg.train(image, labels, FeatureSettings(sigma_min=1.0, sigma_max=2.0, channels=(0,)))
    assert np.mean(model.predict(image) == truth) > np.mean(noise_only.predict(image) == truth) + 0.1
    with pytest.raises(ModelMismatchError):
        again.predict(image[..., :2])


def test_bad_channel_choices_are_refused():
    for bad in ((), (0, 0), (-1,), (64,), ("0",), (True,), "0"):
        with pytest.raises(SettingsError, match="channels"):
            FeatureSettings(channels=bad)
    with pytest.raises(ImageError, match="channel"):
        compute_features(a_frame(2), FeatureSettings(channels=(2,)))


def test_settings_round_trip_and_older_files_use_every_channel():
    settings = FeatureSettings(channels=(0, 2))
    data = settings.to_dict()
    assert data["channels"] == [0, 2]
    assert FeatureSettings.from_dict(data) == settings
    del data["channels"]
    assert FeatureSettings.from_dict(data).channels is None


@pytest.mark.parametrize("mode", ["separate", "luminance"])
def test_volume_features_use_the_chosen_channels_too(mode):
    from seg.features.volume import compute_volume_features, volume_feature_names

    volume = np.random.default_rng(2).random((6, 20, 24, 3)).astype(np.float32)
    chosen = FeatureSettings(sigma_min=1.0, sigma_max=2.0, channel_mode=mode, channels=(0, 2))
    plain = FeatureSettings(sigma_min=1.0, sigma_max=2.0, channel_mode=mode)
    np.testing.assert_array_equal(
        compute_volume_features(volume, chosen), compute_volume_features(volume[..., [0, 2]], plain)
    )
    assert {n.split()[0] for n in volume_feature_names(chosen, 3)} <= {"ch0", "ch2", "luminance"}
