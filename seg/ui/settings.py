"""Feature and forest settings widgets.

The widgets hold the editable fields; fields without a widget (e.g. ``num_sigma`` of a loaded
model) come from a *base* settings object kept in session state, so loading a model reproduces its
settings exactly. Changing any of them changes the training key: features are computed once for
the new settings and the model retrains from the same strokes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from seg.errors import SettingsError
from seg.ui import state as keys

CUSTOM = "custom"

SIGMA_LIMITS = (0.3, 64.0)
#: Scales offered on the σ slider: roughly logarithmic, so small scales are as easy to pick as
#: large ones (a loaded model's own values are added to the list).
SIGMA_STEPS = (0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0)
TREE_LIMITS = (1, 500)
DEPTH_CHOICES = (None, 4, 6, 8, 10, 12, 16, 20, 30)


def _presets() -> dict:
    from seg.features import PRESETS

    return PRESETS


def _default_preset() -> str:
    from seg.features import DEFAULT_PRESET

    return DEFAULT_PRESET


def default_forest():
    """The engine's forest defaults (tuned for one retrain per stroke, see bench/)."""
    from seg.forest import ForestSettings

    return ForestSettings()


def _write_feature_widgets(state, settings) -> None:
    state[keys.W_FEATURE_SET] = settings.feature_set
    state[keys.W_INTENSITY] = bool(settings.intensity)
    state[keys.W_EDGES] = bool(settings.edges)
    state[keys.W_TEXTURE] = bool(settings.texture)
    low = min(max(float(settings.sigma_min), SIGMA_LIMITS[0]), SIGMA_LIMITS[1])
    high = min(max(float(settings.sigma_max), low), SIGMA_LIMITS[1])
    state[keys.W_SIGMA_MIN] = low
    state[keys.W_SIGMA_MAX] = high
    state[keys.W_CHANNEL_MODE] = settings.channel_mode
    state[keys.W_CHANNELS] = [] if settings.channels is None else list(settings.channels)  # [] = all


def _write_forest_widgets(state, forest) -> None:
    state[keys.W_TREES] = int(min(max(forest.n_estimators, TREE_LIMITS[0]), TREE_LIMITS[1]))
    state[keys.W_DEPTH] = forest.max_depth


def init_settings(state) -> None:
    """Create the settings keys (every run: a widget that was not shown loses its key)."""
    if keys.FEATURE_BASE not in state:
        state[keys.FEATURE_BASE] = _presets()[_default_preset()]
        state[keys.W_PRESET] = _default_preset()
    if keys.FOREST_BASE not in state:
        state[keys.FOREST_BASE] = default_forest()
    if keys.NORMALIZATION not in state:
        from seg.images import Normalization

        state[keys.NORMALIZATION] = Normalization()
    state.setdefault(keys.W_PRESET, CUSTOM)
    missing_features: dict[str, Any] = {}
    _write_feature_widgets(missing_features, state[keys.FEATURE_BASE])
    missing_forest: dict[str, Any] = {}
    _write_forest_widgets(missing_forest, state[keys.FOREST_BASE])
    for key, value in {**missing_features, **missing_forest}.items():
        state.setdefault(key, value)


def adopt_model_settings(state, model) -> None:
    """Make a loaded model's feature/forest/normalisation settings the current ones (callbacks only)."""
    adopt_settings(state, model.feature_settings, model.forest_settings)
    state[keys.NORMALIZATION] = model.normalization


def adopt_settings(state, feature_settings, forest_settings) -> None:
    """Make these feature and forest settings the current ones (callbacks only)."""
    state[keys.FEATURE_BASE] = feature_settings
    state[keys.W_PRESET] = preset_of(feature_settings)
    _write_feature_widgets(state, feature_settings)
    state[keys.FOREST_BASE] = forest_settings
    _write_forest_widgets(state, forest_settings)


def preset_of(settings) -> str:
    """Name of the preset ``settings`` are, whichever channels they use; else "custom"."""
    general = dataclasses.replace(settings, channels=None)
    return next((n for n, s in _presets().items() if s == general), CUSTOM)


def _on_preset() -> None:
    # A preset sets the features, not which channels feed them: the channel choice stays.
    name = st.session_state[keys.W_PRESET]
    if name in _presets():
        channels = tuple(st.session_state.get(keys.W_CHANNELS) or ()) or None
        preset = dataclasses.replace(_presets()[name], channels=channels)
        st.session_state[keys.FEATURE_BASE] = preset
        _write_feature_widgets(st.session_state, preset)


def _on_detail() -> None:
    # Editing a field makes the settings custom unless they happen to equal a preset. Invalid
    # combinations are reported by settings_panel in the run that follows.
    try:
        current = feature_settings_from_widgets(st.session_state)
    except SettingsError:
        current = None
    st.session_state[keys.W_PRESET] = CUSTOM if current is None else preset_of(current)


def feature_settings_from_widgets(state):
    """The :class:`seg.features.FeatureSettings` the widgets describe (SettingsError if invalid)."""
    low, high = state[keys.W_SIGMA_MIN], state[keys.W_SIGMA_MAX]
    base = state[keys.FEATURE_BASE]
    changes = dict(
        feature_set=state[keys.W_FEATURE_SET],
        intensity=bool(state[keys.W_INTENSITY]),
        edges=bool(state[keys.W_EDGES]),
        texture=bool(state[keys.W_TEXTURE]),
        sigma_min=float(low),
        sigma_max=float(high),
        channel_mode=state[keys.W_CHANNEL_MODE],
        channels=tuple(state.get(keys.W_CHANNELS) or ()) or None,
    )
    if (float(low), float(high)) != (float(base.sigma_min), float(base.sigma_max)):
        changes["num_sigma"] = None  # a new range: let the engine pick the number of scales
    return dataclasses.replace(base, **changes)


def forest_settings_from_widgets(state):
    """The :class:`seg.model.ForestSettings` the widgets describe."""
    return dataclasses.replace(
        state[keys.FOREST_BASE], n_estimators=int(state[keys.W_TREES]), max_depth=state[keys.W_DEPTH]
    )


def settings_panel(n_channels: int):
    """Sidebar expander with presets, feature groups, scales and forest size.

    Returns :class:`seg.ui.pipeline.Settings`. Invalid combinations (e.g. every feature group
    switched off) raise :class:`seg.errors.SettingsError` for the caller to show.
    """
    presets = _presets()
    options = [*presets, CUSTOM]
    with st.expander("Features & classifier", expanded=False, key="settings_panel"):
        st.selectbox(
            "Feature preset",
            options,
            key=keys.W_PRESET,
            on_change=_on_preset,
            help="Scales of the features: small for fine texture and thin edges, large for blobs.",
        )
        st.radio(
            "Feature set",
            ["basic", "extended"],
            key=keys.W_FEATURE_SET,
            on_change=_on_detail,
            horizontal=True,
            help="basic = scikit-image's multiscale_basic_features; extended adds more texture features.",
        )
        with st.container(horizontal=True):
            st.checkbox("Intensity", key=keys.W_INTENSITY, on_change=_on_detail)
            st.checkbox("Edges", key=keys.W_EDGES, on_change=_on_detail)
            st.checkbox("Texture", key=keys.W_TEXTURE, on_change=_on_detail)
        state = st.session_state
        sigmas = sorted({*SIGMA_STEPS, float(state[keys.W_SIGMA_MIN]), float(state[keys.W_SIGMA_MAX])})
        with st.container(horizontal=True):
            st.selectbox(
                "Smallest σ",
                sigmas,
                key=keys.W_SIGMA_MIN,
                on_change=_on_detail,
                format_func=lambda v: f"{v:g}",
                help="Finest Gaussian scale of the features, in pixels.",
            )
            st.selectbox(
                "Largest σ",
                sigmas,
                key=keys.W_SIGMA_MAX,
                on_change=_on_detail,
                format_func=lambda v: f"{v:g}",
                help="Coarsest scale: about the size of the structures that matter.",
            )
        if n_channels > 1:
            st.radio(
                "Colour channels",
                ["separate", "luminance"],
                key=keys.W_CHANNEL_MODE,
                on_change=_on_detail,
                horizontal=True,
                help="luminance: edges and texture on the channel mean (faster).",
            )
            # Channels another image had are dropped before the widget is drawn.
            state[keys.W_CHANNELS] = [c for c in state.get(keys.W_CHANNELS) or [] if c < n_channels]
            st.multiselect(
                "Channels used",
                list(range(n_channels)),
                key=keys.W_CHANNELS,
                on_change=_on_detail,
                format_func=lambda c: f"channel {c}",
                placeholder="all channels",
                help="Only these channels feed the features (empty: all). Saved in the model.",
            )
        else:
            state[keys.W_CHANNELS] = []
        st.number_input(
            "Trees",
            TREE_LIMITS[0],
            TREE_LIMITS[1],
            key=keys.W_TREES,
            step=1,
            help="More trees: smoother probabilities, slower training and prediction.",
        )
        depths = sorted({*DEPTH_CHOICES, st.session_state[keys.W_DEPTH]} - {None})
        st.selectbox(
            "Maximum tree depth",
            [None, *depths],
            key=keys.W_DEPTH,
            format_func=lambda d: "unlimited" if d is None else str(d),
            help="Deeper trees fit the scribbles more closely (and may over-fit them).",
        )
    from seg.ui.pipeline import Settings

    return Settings(
        feature_settings_from_widgets(st.session_state),
        forest_settings_from_widgets(st.session_state),
        st.session_state[keys.NORMALIZATION],
    )
