"""Feature settings: which features, at which scales, in which order; and the named presets.

:class:`FeatureSettings` is stored inside every model, so it validates everything it is given
(model files are untrusted). It also knows the output layout (names and order of the features)
and the tiling margin, both derived from the scales and kernel radii defined here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from seg.errors import ImageError, SettingsError, check_keys, is_whole_number
from seg.images.frames import MAX_CHANNELS  # the one channel limit, owned by seg.images

FEATURE_SETS: tuple[str, ...] = ("basic", "extended")
CHANNEL_MODES: tuple[str, ...] = ("separate", "luminance")
MIN_SIGMA = 0.1  # below this the Gaussian kernel is a single tap: the image itself
MAX_SIGMA = 64.0  # kernels of 513 taps; beyond that tiles and memory get silly
MAX_NUM_SIGMA = 16

BASIC_TRUNCATE = 4.0  # basic: kernel radius int(4 sigma + 0.5), as scipy and scikit-image
EXTENDED_TRUNCATE = 3.0  # extended: 3 sigma as vigra (ilastik); 25 % fewer taps, same use
_STRUCTURE_RATIO = 0.5  # integration scale of the structure tensor = 0.5 sigma (ilastik)
_STRUCTURE_MIN = 1.0  # ... but at least 1 px, else the tensor is rank one (λ2 == 0)

# Names of the per-scale features, grouped by toggle, in output order.
FEATURE_KINDS = {
    "basic": {
        "intensity": ("gaussian",),
        "edges": ("sobel edges",),
        "texture": ("hessian eigenvalue 1", "hessian eigenvalue 2"),
    },
    "extended": {
        "intensity": ("gaussian",),
        "edges": ("gradient magnitude", "laplacian of gaussian", "difference of gaussians"),
        "texture": (
            "structure tensor eigenvalue 1",
            "structure tensor eigenvalue 2",
            "hessian eigenvalue 1",
            "hessian eigenvalue 2",
        ),
    },
}
FEATURE_GROUPS = ("intensity", "edges", "texture")


@dataclass(frozen=True)
class FeatureInfo:
    """One feature of the stack :func:`compute_features` returns (see :meth:`FeatureSettings.describe_features`).

    Attributes
    ----------
    name : str
        As :meth:`FeatureSettings.feature_names`, e.g. ``"luminance gradient magnitude σ=4.0"``.
    source : str
        ``"ch0"``, ``"ch1"``, ... or ``"luminance"`` (the channel mean).
    group : {"intensity", "edges", "texture"}
        The toggle of :class:`FeatureSettings` that switches the feature on.
    kind : str
        E.g. ``"gaussian"``, ``"hessian eigenvalue 1"``.
    sigma : float
        Gaussian scale in pixels.
    """

    name: str
    source: str
    group: str
    kind: str
    sigma: float


@dataclass(frozen=True)
class FeatureSettings:
    """Which features to compute, at which scales; stored inside every model.

    Parameters
    ----------
    feature_set : {"extended", "basic"}
        ``"basic"`` equals :func:`skimage.feature.multiscale_basic_features`; ``"extended"`` adds
        Laplacian, difference of Gaussians and structure-tensor features (see :mod:`seg.features`).
    intensity, edges, texture : bool
        Feature groups; at least one must be on.
    sigma_min, sigma_max : float
        Smallest and largest Gaussian scale in pixels, ``0.1 <= sigma_min <= sigma_max <= 64``.
    num_sigma : int or None
        Number of scales, log-spaced between the two (1..16). ``None``: one per octave,
        ``int(log2(sigma_max) - log2(sigma_min) + 1)``, as scikit-image.
    channel_mode : {"separate", "luminance"}
        ``"separate"``: every feature for every channel. ``"luminance"``: intensity per channel,
        edges and texture once, on the channel mean (far fewer features for RGB). Identical for
        single-channel images.
    channels : tuple of int or None
        Channels (0-based) that feed the features, e.g. ``(0, 2)``: the others are ignored (the
        model still expects images with all of them). None: every channel.
    """

    feature_set: str = "extended"
    intensity: bool = True
    edges: bool = True
    texture: bool = True
    sigma_min: float = 0.7
    sigma_max: float = 16.0
    num_sigma: int | None = None
    channel_mode: str = "separate"
    channels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        self._check_channels()
        _check_choice("feature_set", self.feature_set, FEATURE_SETS)
        _check_choice("channel_mode", self.channel_mode, CHANNEL_MODES)
        for name in FEATURE_GROUPS:
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise SettingsError(f"FeatureSettings.{name} must be True or False, got {value!r}")
            object.__setattr__(self, name, bool(value))
        if not (self.intensity or self.edges or self.texture):
            raise SettingsError(
                "At least one of intensity, edges or texture must be enabled "
                "(all three are False): switch one of them on."
            )
        sigma_min = _check_number("sigma_min", self.sigma_min)
        sigma_max = _check_number("sigma_max", self.sigma_max)
        if not MIN_SIGMA <= sigma_min <= MAX_SIGMA:
            raise SettingsError(f"sigma_min must be between {MIN_SIGMA} and {MAX_SIGMA} pixels, got {sigma_min}")
        if not sigma_min <= sigma_max <= MAX_SIGMA:
            raise SettingsError(
                f"sigma_max must be between sigma_min ({sigma_min}) and {MAX_SIGMA} pixels, got {sigma_max}"
            )
        object.__setattr__(self, "sigma_min", sigma_min)
        object.__setattr__(self, "sigma_max", sigma_max)
        if self.num_sigma is not None:
            if not is_whole_number(self.num_sigma):
                raise SettingsError(f"num_sigma must be a whole number or None, got {self.num_sigma!r}")
            object.__setattr__(self, "num_sigma", int(self.num_sigma))
        count = self._num_sigma()
        if not 1 <= count <= MAX_NUM_SIGMA:
            raise SettingsError(
                f"num_sigma must be between 1 and {MAX_NUM_SIGMA}, got {count}"
                + (" (derived from sigma_min and sigma_max)" if self.num_sigma is None else "")
            )

    def _check_channels(self) -> None:
        if self.channels is None:
            return
        values = self.channels
        if (
            isinstance(values, (str, bytes))
            or not isinstance(values, (tuple, list))
            or not values
            or len(values) > MAX_CHANNELS
        ):
            raise SettingsError(
                f"FeatureSettings.channels must be None (all channels) or a non-empty list of "
                f"channel numbers, got {values!r:.100}"
            )
        if any(
            isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or not 0 <= c < MAX_CHANNELS
            for c in values
        ) or len(set(values)) != len(values):
            raise SettingsError(
                f"FeatureSettings.channels must be distinct channel numbers 0..{MAX_CHANNELS - 1}, "
                f"got {list(values)!r:.100}"
            )
        object.__setattr__(self, "channels", tuple(sorted(int(c) for c in values)))

    def used_channels(self, n_channels: int) -> tuple[int, ...]:
        """The channels of an ``n_channels`` image that feed the features, ascending.

        Raises
        ------
        ImageError
            If :attr:`channels` names a channel the image does not have.
        """
        if self.channels is None:
            return tuple(range(n_channels))
        if self.channels[-1] >= n_channels:
            raise ImageError(
                f"The feature settings use channel(s) {list(self.channels)} but the image has "
                f"{n_channels} channel(s) (0..{n_channels - 1}): choose channels the image has."
            )
        return self.channels

    # -- scales and layout ---------------------------------------------------------------------

    def _num_sigma(self) -> int:
        if self.num_sigma is not None:
            return self.num_sigma
        return int(np.log2(self.sigma_max) - np.log2(self.sigma_min) + 1)

    def sigmas(self) -> tuple[float, ...]:
        """Gaussian scales in pixels, ascending, computed exactly as scikit-image does."""
        values = np.logspace(
            np.log2(self.sigma_min),
            np.log2(self.sigma_max),
            num=self._num_sigma(),
            base=2,
            endpoint=True,
        )
        return tuple(float(s) for s in values)

    def n_features(self, n_channels: int) -> int:
        """Number of features F computed for an image with ``n_channels`` channels."""
        return len(feature_layout(self, n_channels))

    def feature_names(self, n_channels: int) -> list[str]:
        """Human-readable name of every feature, in output order, e.g. ``"ch0 gaussian σ=1.0"``."""
        return [feature.name for feature in self.describe_features(n_channels)]

    def describe_features(self, n_channels: int) -> list[FeatureInfo]:
        """What every feature is, in output order: name, source, group, kind and scale."""
        sigmas = self.sigmas()
        labels = _sigma_labels(sigmas)
        group_of = {kind: group for group, kinds in FEATURE_KINDS[self.feature_set].items() for kind in kinds}
        layout = []
        for item, _kind, name in feature_layout(self, n_channels):
            source = "luminance" if item.luminance else f"ch{item.channel}"
            sigma = labels[item.sigma]
            if name == "difference of gaussians":
                previous = labels[item.sigma - 1] if item.sigma else "0"
                sigma = f"{previous}−{sigma}"
            layout.append(
                FeatureInfo(
                    name=f"{source} {name} σ={sigma}",
                    source=source,
                    group=group_of[name],
                    kind=name,
                    sigma=sigmas[item.sigma],
                )
            )
        return layout

    def margin(self) -> int:
        """Context pixels a tile needs on each side so its interior equals untiled features.

        Largest Gaussian radius plus the finite-difference stencil (1 px, 2 px for the
        twice-applied ``numpy.gradient`` of ``"basic"``) plus, for extended texture, the radius
        of the structure tensor's integration Gaussian.
        """
        sigma = self.sigmas()[-1]  # every term grows with sigma
        stencil = halo_rows(self, sigma, self.intensity, self.edges, self.texture)
        return gaussian_radius(sigma, truncate_for(self)) + stencil

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain JSON-able dict of every field (round-trips through :meth:`from_dict`)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["channels"] = None if self.channels is None else list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSettings:
        """Rebuild settings from :meth:`to_dict` output, e.g. read from an untrusted model file.

        Raises
        ------
        SettingsError
            If ``data`` is not a mapping, has unknown or missing keys, or any value has the wrong
            type or range.
        """
        names = [f.name for f in fields(cls)]
        # "channels" came later: files written before it use every channel.
        data = check_keys(
            data,
            [name for name in names if name != "channels"],
            ["channels"],
            what="Feature settings",
            hint="The model file may come from a newer or foreign program.",
        )
        return cls(**{name: data[name] for name in names if name in data})


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise SettingsError(f"FeatureSettings.{name} must be one of {list(choices)}, got {value!r}")


def _check_number(name: str, value: object) -> float:
    number = (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, number):
        raise SettingsError(f"FeatureSettings.{name} must be a number of pixels, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise SettingsError(f"FeatureSettings.{name} must be a finite number, got {value}")
    return value


def _sigma_labels(sigmas: tuple[float, ...]) -> list[str]:
    """Short labels: "0.7", "1.53", "16.0"; more digits only if needed to tell scales apart."""
    for digits in (2, 4, 8):
        labels = [f"{sigma:.{digits}f}".rstrip("0") for sigma in sigmas]
        labels = [text + "0" if text.endswith(".") else text for text in labels]
        if len(set(labels)) == len(labels):
            break
    return labels


def gaussian_radius(sigma: float, truncate: float = BASIC_TRUNCATE) -> int:
    """Gaussian kernel radius as scipy.ndimage computes it (and so scikit-image)."""
    return int(truncate * sigma + 0.5)


def truncate_for(settings: FeatureSettings) -> float:
    return BASIC_TRUNCATE if settings.feature_set == "basic" else EXTENDED_TRUNCATE


def structure_sigma(sigma: float) -> float:
    return max(_STRUCTURE_RATIO * sigma, _STRUCTURE_MIN)


def halo_rows(settings: FeatureSettings, sigma: float, intensity: bool, edges: bool, texture: bool) -> int:
    """Rows of the smoothed image needed beyond a pixel to derive its features; -1: none."""
    if texture:
        if settings.feature_set == "basic":
            return 2  # numpy.gradient applied twice
        # gradient, then integration Gaussian
        return 1 + gaussian_radius(structure_sigma(sigma), EXTENDED_TRUNCATE)
    if edges:
        return 1
    return 0 if intensity else -1


@dataclass(frozen=True)
class _Item:
    input: int  # index into the stacked inputs: used channels, then the luminance (if any)
    sigma: int  # index into settings.sigmas()
    luminance: bool
    channel: int = -1  # the image channel (-1: the luminance)


def feature_layout(settings: FeatureSettings, n_channels: int) -> list[tuple[_Item, int, str]]:
    """Every output feature in order as (source and scale, kind index, kind name)."""
    if not is_whole_number(n_channels, 1, MAX_CHANNELS):
        raise ImageError(f"n_channels must be a whole number from 1 to {MAX_CHANNELS}, got {n_channels!r}")
    kinds = FEATURE_KINDS[settings.feature_set]
    all_kinds = [name for group in FEATURE_GROUPS for name in kinds[group]]
    wanted = {group: getattr(settings, group) for group in FEATURE_GROUPS}
    n_sigma = len(settings.sigmas())
    layout: list[tuple[_Item, int, str]] = []

    def add(input_index: int, channel: int, groups: Iterable[str], luminance: bool) -> None:
        for s in range(n_sigma):
            item = _Item(input_index, s, luminance, channel)
            for group in groups:
                if wanted[group]:
                    layout.extend((item, all_kinds.index(name), name) for name in kinds[group])

    used = settings.used_channels(int(n_channels))
    if settings.channel_mode == "luminance" and len(used) > 1:
        for index, c in enumerate(used):
            add(index, c, ["intensity"], False)
        add(len(used), -1, ["edges", "texture"], True)
    else:
        for index, c in enumerate(used):
            add(index, c, FEATURE_GROUPS, False)
    return layout


PRESETS: dict[str, FeatureSettings] = {
    # Membranes, fibres, small spots: finest scale close to single pixels.
    "fine detail": FeatureSettings(sigma_min=0.5, sigma_max=8.0, channel_mode="luminance"),
    # A bit of everything: 0.7 .. 16 px, one scale per octave. 40 features grey, 50 RGB.
    "balanced": FeatureSettings(sigma_min=0.7, sigma_max=16.0, channel_mode="luminance"),
    # Large cells, organs, regions of texture: 2 .. 32 px.
    "large structures": FeatureSettings(sigma_min=2.0, sigma_max=32.0, channel_mode="luminance"),
    # scikit-image's trainable segmentation with multiscale_basic_features, sigma 1 .. 16.
    "scikit-image gallery": FeatureSettings(
        feature_set="basic", sigma_min=1.0, sigma_max=16.0, channel_mode="separate"
    ),
}
DEFAULT_PRESET: str = "balanced"
