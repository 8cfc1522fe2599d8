""":func:`describe_model`: a small JSON-friendly summary of a model for a "model info" panel."""

from __future__ import annotations

from seg.features import PRESETS
from seg.model import Model


def describe_model(model: Model) -> dict:
    """A small JSON-friendly summary of a model for a "model info" panel.

    Returns
    -------
    dict
        ``classes`` (list of {"name", "color"}), ``n_channels``, ``feature_preset`` (a name from
        ``seg.features.PRESETS`` or ``"custom"``), ``feature_settings`` (dict), ``n_features``,
        ``trees``, ``depth`` (of the deepest tree) and ``nodes`` of the forest the bundle really
        holds (loading refuses more than its settings allow), ``created`` (ISO string or None)
        and ``versions``; ``dims`` (2 or 3) and ``volume`` (voxel size and feature mode of a
        volume model, else None).
    """
    preset = next((name for name, s in PRESETS.items() if s == model.feature_settings), "custom")
    created = model.training.get("created") if isinstance(model.training, dict) else None
    return {
        "classes": [{"name": n, "color": c} for n, c in zip(model.class_names, model.class_colors)],
        "n_channels": int(model.n_channels),
        "feature_preset": preset,
        "feature_settings": model.feature_settings.to_dict(),
        "n_features": int(model.forest.n_features),
        "trees": model.forest.n_trees,
        "depth": model.forest.depth,
        "nodes": model.forest.n_nodes,
        "created": created if isinstance(created, str) else None,
        "versions": dict(model.versions),
        "dims": model.dims,
        "volume": None if model.volume is None else model.volume.to_dict(),
    }
