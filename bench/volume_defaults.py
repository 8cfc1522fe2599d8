"""How the volume defaults were chosen: a small grid on two real volumes, several scribble seeds.

For each volume of ``bench/volumes.py`` (ISBI 2012 EM stack, 4 x 4 x 50 nm; MNI152 T1 brain,
1 mm) the same 3 slices are scribbled (``simulate_scribbles`` with seed ``z + 1000 * s`` for
scribble seed ``s``; seed 0 is ``bench/volumes.py``'s scribbles) and every other slice is held
out. Features of the whole volume are computed once per (mode, scale range) and reused for every
forest setting and seed; the reference is the scikit-image gallery recipe slice by slice on the
same scribbles (``bench/volumes.py``'s ``_skimage_per_slice``, its features also computed once).
Reported: held-out mean IoU (over classes, averaged over slices) per seed and its mean.

    python bench/volume_defaults.py [--seeds 3] [--volumes isbi brain]

Writes bench/results/volume_defaults.json (with the load average before and after).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import format_table, load_average, machine_info, mean_iou, write_json  # noqa: E402
from bench.volumes import _STROKES, _brain, _isbi  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "volume_defaults.json"

# (mode, sigma_min, sigma_max) of the extended set, luminance (grey volumes: one channel).
FEATURES = [
    ("per_slice", 0.7, 16.0),
    ("per_slice", 0.5, 8.0),
    ("per_slice", 1.0, 16.0),
    ("per_slice", 2.0, 32.0),
    ("3d", 0.7, 16.0),
    ("3d", 0.5, 8.0),
    ("3d", 1.0, 16.0),
    ("3d", 2.0, 32.0),
]
# name -> ForestSettings keyword arguments (the rest are the 2-D defaults).
FORESTS = {
    "default (balanced)": {},
    "class_weight=None": {"class_weight": None},
    "64 trees, depth 8": {"n_estimators": 64, "max_depth": 8},
    "64 trees, depth 8, class_weight=None": {"n_estimators": 64, "max_depth": 8, "class_weight": None},
    "class_weight=None, min_samples_leaf=5": {"class_weight": None, "min_samples_leaf": 5},
    "class_weight=None, max_samples=0.1": {"class_weight": None, "max_samples": 0.1},
    "max_samples=0.1": {"max_samples": 0.1},
    "min_samples_leaf=5": {"min_samples_leaf": 5},
    "64 trees, depth 10, max_samples=0.05, class_weight=None, min_samples_leaf=5": {
        "n_estimators": 64,
        "max_depth": 10,
        "max_samples": 0.05,
        "class_weight": None,
        "min_samples_leaf": 5,
    },
    "64 trees, depth 8, min_samples_leaf=5": {"n_estimators": 64, "max_depth": 8, "min_samples_leaf": 5},
    "64 trees, depth 8, class_weight=None, min_samples_leaf=5": {
        "n_estimators": 64,
        "max_depth": 8,
        "class_weight": None,
        "min_samples_leaf": 5,
    },
    "64 trees, depth 10, max_samples=0.05, class_weight=None": {
        "n_estimators": 64,
        "max_depth": 10,
        "max_samples": 0.05,
        "class_weight": None,
    },
}


def _scribbles(truth: np.ndarray, slices: list[int], kind: str, seed: int) -> np.ndarray:
    from bench.datasets import simulate_scribbles

    labels = np.zeros(truth.shape, np.uint8)
    for z in slices:
        labels[z] = simulate_scribbles(truth[z], seed=z + 1000 * seed, **_STROKES[kind])
    return labels


def _score(predicted: np.ndarray, truth: np.ndarray, held_out: list[int]) -> float:
    """Mean IoU over classes of ``predicted`` (one slice per held-out slice) against ``truth``, averaged."""
    classes = sorted(int(c) for c in np.unique(truth))
    return float(np.mean([mean_iou(predicted[i], truth[z], classes) for i, z in enumerate(held_out)]))


def _seg_rows(name, kind, image, truth, spacing, slices, held_out, labels_by_seed) -> list[dict]:
    from seg.features import FeatureSettings
    from seg.features.volume import VolumeSettings
    from seg.forest import ForestSettings
    from seg.images import Normalization
    from seg.model import train_samples
    from seg.volumes.model import normalize_volume

    rows = []
    normalised = normalize_volume(image[..., None], Normalization())
    for mode, low, high in FEATURES:
        settings = FeatureSettings(sigma_min=low, sigma_max=high, channel_mode="luminance")
        volume = VolumeSettings(spacing=spacing, mode=mode)
        start = time.process_time()
        features = volume.compute(normalised, settings)
        feature_cpu = time.process_time() - start
        for forest_name, keywords in FORESTS.items():
            scores = []
            for labels in labels_by_seed:
                chosen = labels > 0
                model = train_samples(
                    features[chosen],
                    labels[chosen].astype(np.int64),
                    n_channels=1,
                    image_shape=normalised.shape,
                    frames=slices,
                    settings=settings,
                    class_names=[f"class {c}" for c in range(1, int(truth.max()) + 1)],
                    forest=ForestSettings(**keywords),
                    volume=volume,
                )
                scores.append(_score(model.forest.predict(features[held_out]), truth, held_out))
            rows.append(
                {
                    "volume": name,
                    "mode": mode,
                    "sigmas": f"{low:g}..{high:g}",
                    "forest": forest_name,
                    "iou_per_seed": [round(s, 4) for s in scores],
                    "mean_iou": round(float(np.mean(scores)), 4),
                    "feature_cpu_s": round(feature_cpu, 1),
                }
            )
            print(
                f"  {name} {mode} σ {low:g}..{high:g} / {forest_name}: {rows[-1]['mean_iou']:.3f} {scores}", flush=True
            )
        del features
    return rows


def _reference_rows(name, image, truth, slices, held_out, labels_by_seed) -> list[dict]:
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    def features(z: int) -> np.ndarray:
        plane = image[z].astype(np.float32)
        plane = (plane - plane.min()) / max(float(np.ptp(plane)), 1e-6)
        return multiscale_basic_features(plane, sigma_min=1, sigma_max=16)

    stack = np.stack([features(z) for z in range(image.shape[0])])
    scores = []
    for labels in labels_by_seed:
        chosen = labels > 0
        forest = RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05, n_jobs=-1, random_state=0)
        forest.fit(stack[chosen], labels[chosen])
        held = stack[held_out]
        predicted = forest.predict(held.reshape(-1, held.shape[-1])).reshape(held.shape[:3])
        scores.append(_score(predicted, truth, held_out))
    print(f"  {name} scikit-image gallery: {np.mean(scores):.3f} {scores}", flush=True)
    return [
        {
            "volume": name,
            "mode": "per_slice",
            "sigmas": "1..16",
            "forest": "scikit-image gallery (50 trees, depth 10, max_samples 0.05)",
            "iou_per_seed": [round(s, 4) for s in scores],
            "mean_iou": round(float(np.mean(scores)), 4),
            "feature_cpu_s": None,
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--volumes", nargs="*", default=["isbi", "brain"])
    parser.add_argument("--features", nargs="*", type=int, help="indices into FEATURES (default: all)")
    parser.add_argument("--forests", nargs="*", help="names of FORESTS (default: all)")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    global FEATURES, FORESTS
    FEATURES = FEATURES if args.features is None else [FEATURES[i] for i in args.features]
    FORESTS = FORESTS if args.forests is None else {name: FORESTS[name] for name in args.forests}
    loaders = {"isbi": ("ISBI 2012 EM", _isbi), "brain": ("MNI152 T1 brain", _brain)}
    results = {"machine": machine_info(), "load_before": load_average(), "seeds": args.seeds, "rows": []}
    for kind in args.volumes:
        name, loader = loaders[kind]
        loaded = loader()
        if loaded is None:
            print(f"  {name}: skipped (pip install --no-deps nilearn for the template)")
            continue
        image, truth, spacing, slices = loaded
        held_out = [z for z in range(image.shape[0]) if z not in slices]
        labels_by_seed = [_scribbles(truth, slices, kind, seed) for seed in range(args.seeds)]
        if not args.no_reference:
            results["rows"] += _reference_rows(name, image, truth, slices, held_out, labels_by_seed)
        results["rows"] += _seg_rows(name, kind, image, truth, spacing, slices, held_out, labels_by_seed)
        results[f"{kind}_slices"] = {"scribbled": slices, "held_out": len(held_out)}
        results["load_after"] = load_average()
        write_json(Path(args.out), results)
    print(
        format_table(
            ["volume", "mode", "σ", "forest", "mean IoU", "per seed"],
            [
                [r["volume"], r["mode"], r["sigmas"], r["forest"], r["mean_iou"], r["iou_per_seed"]]
                for r in results["rows"]
            ],
        )
    )


if __name__ == "__main__":
    main()
