"""Choosing the channels that feed the features, in the settings panel (AppTest)."""

from __future__ import annotations

import numpy as np

from tests.app.conftest import class_colors, draw, png_bytes, upload


def a_colour_image() -> np.ndarray:
    """(96, 96, 3) uint8: noise in red and blue, a bright square only in green."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (96, 96, 3)).astype(np.uint8)
    image[..., 1] = 40
    image[30:70, 30:70, 1] = 220
    return image


def test_chosen_channels_train_the_model_and_keep_the_preset(app):
    upload(app, "w_image_upload", "stain.png", png_bytes(a_colour_image()), "image/png")
    assert app.multiselect(key="w_channels").value == []  # empty = all channels
    app.multiselect(key="w_channels").set_value([1]).run()
    assert not app.exception
    assert app.session_state["w_preset"] == "balanced"  # a preset, whichever channels
    back, fore = class_colors(app)[:2]
    draw(
        app,
        [
            ([(5.0, 10.0), (90.0, 10.0)], back),
            ([(5.0, 85.0), (90.0, 85.0)], back),
            ([(40.0, 50.0), (60.0, 50.0)], fore),
            ([(50.0, 35.0), (50.0, 65.0)], fore),
        ],
        width=4.0,
    )
    model = app.session_state["seg.model"]
    assert model.feature_settings.channels == (1,)
    assert model.n_channels == 3
    assert {name.split()[0] for name in model.feature_settings.feature_names(3)} == {"ch1"}
    mask = app.session_state["seg.prediction"].labels
    assert np.mean(mask[35:65, 35:65] == 2) > 0.9 and np.mean(mask[:20] == 1) > 0.9

    app.selectbox(key="w_preset").set_value("fine detail").run()  # the channel choice survives
    assert app.session_state["seg.model"].feature_settings.channels == (1,)
