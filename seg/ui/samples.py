"""Sample images bundled with scikit-image's wheel (no download at run time)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from seg.ui.state import ImageRecord, digest_bytes


@dataclass(frozen=True)
class Sample:
    """A bundled image and the classes a user would paint on it."""

    title: str
    loader: str  # function name in skimage.data
    classes: tuple[str, ...]
    file_name: str


SAMPLES: dict[str, Sample] = {
    "coins": Sample("Coins (grey, 303×384)", "coins", ("background", "coin"), "coins.png"),
    "immunohistochemistry": Sample(
        "Immunohistochemistry (RGB nuclei, 512×512)",
        "immunohistochemistry",
        ("background", "nucleus"),
        "immunohistochemistry.png",
    ),
    "hubble_deep_field": Sample(
        "Hubble deep field (RGB, 0.9 MP)",
        "hubble_deep_field",
        ("sky", "galaxy"),
        "hubble_deep_field.png",
    ),
    "retina": Sample("Retina (RGB, 2 MP)", "retina", ("background", "vessel"), "retina.png"),
    "camera": Sample("Camera man (grey, 512×512)", "camera", ("background", "foreground"), "camera.png"),
}
DEFAULT_SAMPLE = "coins"


@st.cache_data(max_entries=3, show_spinner=False)
def _load_sample_array(loader: str) -> np.ndarray:
    # A pure function of a fixed name: safe to share between sessions (st.cache_data copies it).
    import skimage.data

    from seg.images import as_frames

    return np.ascontiguousarray(as_frames(getattr(skimage.data, loader)()))


def load_sample(name: str) -> ImageRecord:
    """The bundled sample ``name`` (a key of :data:`SAMPLES`) as an :class:`ImageRecord`."""
    sample = SAMPLES[name]
    frames = _load_sample_array(sample.loader)
    return ImageRecord(name=sample.file_name, digest=digest_bytes(f"sample:{name}".encode()), frames=frames)
