"""How well does ``seg.estimate_accuracy`` predict the accuracy on the pixels nobody labelled?

For ISBI 2012 slices, simulated scribbles (``datasets.simulate_scribbles``: 4 or 8 strokes per
class, several seeds), the default model is trained on all scribbles and its *true* accuracy on
the unlabelled pixels is compared with:

- ``estimate``: ``seg.estimate_accuracy`` (stroke-held-out CV reweighted to the unlabelled
  pixels' predicted class and confidence), with its 90 % interval;
- ``LOSO``: plain leave-one-stroke-out CV, the pooled accuracy of the held-out stroke pixels;
- ``pixel CV``: 5-fold cross-validation over randomly drawn labelled pixels.

The estimator's two constants (``SHRINKAGE``, ``DOUBT`` in ``seg/evaluate/accuracy.py``) were
chosen on slices 0, 5, ..., 25 with scribble seeds ``100 * slice + 0..2``; this benchmark uses
other slices and seeds by default, so the calibration figures are out of sample.

    python bench/accuracy_estimate.py [--slices 2 7 12 17 22 27] [--seeds 3] [--quick]

Prints a table per stroke count and writes ``bench/results/accuracy_estimate.json``. Also times
one estimate as the app runs it (features and the model's probabilities cached) on a 1 MP mosaic.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import format_table, load_average, machine_info, write_json
from bench.datasets import load_isbi, simulate_scribbles, tile_image
from seg.evaluate import estimate_accuracy, stroke_groups
from seg.features import PRESETS, compute_features
from seg.forest import Forest, ForestSettings
from seg.images import Normalization, normalize

OUT = Path(__file__).resolve().parent / "results" / "accuracy_estimate.json"
SEED_OFFSET = 7000  # scribble seeds 7000 + 100 * slice + i: never used while tuning


def _features(image: np.ndarray) -> np.ndarray:
    return compute_features(normalize(image, Normalization()), PRESETS["balanced"])


def _leave_one_stroke_out(x, y, group, n_groups, settings) -> float:
    right = 0
    for g in range(n_groups):
        test = group == g
        train = ~test
        if len(np.unique(y[train])) < 2:
            continue
        right += int(np.sum(Forest.fit(x[train], y[train], 2, settings).predict(x[test]) == y[test]))
    return right / len(y)


def _pixel_cv(x, y, settings, folds: int = 5) -> float:
    fold = np.random.default_rng(0).integers(0, folds, len(y))
    right = 0
    for k in range(folds):
        model = Forest.fit(x[fold != k], y[fold != k], 2, settings)
        right += int(np.sum(model.predict(x[fold == k]) == y[fold == k]))
    return right / len(y)


def one_case(image, truth, features, n_strokes: int, seed: int) -> dict:
    settings = ForestSettings()
    labels = simulate_scribbles(truth, strokes_per_class=n_strokes, seed=seed)
    groups, group_class = stroke_groups(labels)
    mask = labels > 0
    x, y, group = features[mask], labels[mask].astype(np.int64), groups[mask].astype(np.int64) - 1
    full = Forest.fit(x, y, 2, settings)
    proba = full.predict_proba(features)
    unlabelled = ~mask
    true = float(np.mean((np.argmax(proba, axis=-1) + 1)[unlabelled] == truth[unlabelled]))
    start = time.perf_counter()
    report = estimate_accuracy(image, labels, features=[features], proba=[proba])
    seconds = time.perf_counter() - start
    low, high = report.interval
    return {
        "strokes_per_class": n_strokes,
        "seed": seed,
        "strokes": len(group_class),
        "true": true,
        "estimate": report.accuracy,
        "low": low,
        "high": high,
        "inside": bool(low <= true <= high),
        "width": high - low,
        "held_out": report.held_out_accuracy,
        "loso": _leave_one_stroke_out(x, y, group, len(group_class), settings),
        "pixel_cv": _pixel_cv(x, y, settings),
        "seconds": seconds,
    }


def summarise(cases: list[dict]) -> dict:
    true = np.array([c["true"] for c in cases])
    out = {
        "cases": len(cases),
        "coverage": float(np.mean([c["inside"] for c in cases])),
        "median_width": float(np.median([c["width"] for c in cases])),
    }
    for name in ("estimate", "loso", "pixel_cv", "held_out"):
        error = np.array([c[name] for c in cases]) - true
        out[name] = {
            "bias": float(error.mean()),
            "mae": float(np.abs(error).mean()),
            "min_error": float(error.min()),
            "max_error": float(error.max()),
        }
    return out


def time_app_path(repeats: int = 5) -> dict:
    """One estimate at 1 MP as the app runs it: features and the model's probabilities cached."""
    pairs = [load_isbi(i) for i in range(4)]
    image = tile_image([p[0] for p in pairs], 2)
    truth = tile_image([p[1] for p in pairs], 2)
    labels = simulate_scribbles(truth, strokes_per_class=8, seed=11)
    features = _features(image)
    mask = labels > 0
    proba = Forest.fit(features[mask], labels[mask].astype(np.int64), 2, ForestSettings()).predict_proba(features)
    estimate_accuracy(image, labels, features=[features], proba=[proba])  # warm-up
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        estimate_accuracy(image, labels, features=[features], proba=[proba])
        walls.append(time.perf_counter() - start)
    return {
        "pixels": int(image.size),
        "strokes": len(stroke_groups(labels)[1]),
        "median_seconds": float(np.median(walls)),
        "walls": walls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, nargs="+", default=[2, 7, 12, 17, 22, 27])
    parser.add_argument("--seeds", type=int, default=3, help="scribble seeds per slice and stroke count")
    parser.add_argument("--strokes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--quick", action="store_true", help="two slices, one seed, no timing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.slices, args.seeds = args.slices[:2], 1
    load_before = load_average()
    cases = []
    for index in args.slices:
        image, truth = load_isbi(index)
        features = _features(image)
        for n_strokes in args.strokes:
            for i in range(args.seeds):
                case = one_case(image, truth, features, n_strokes, SEED_OFFSET + 100 * index + i)
                cases.append({"slice": index, **case})
                print(
                    f"slice {index:2d} strokes {n_strokes} seed {case['seed']}: true {case['true']:.3f} "
                    f"estimate {case['estimate']:.3f} [{case['low']:.3f}, {case['high']:.3f}] "
                    f"LOSO {case['loso']:.3f} pixel CV {case['pixel_cv']:.3f}",
                    flush=True,
                )
    summaries = {str(n): summarise([c for c in cases if c["strokes_per_class"] == n]) for n in args.strokes}
    summaries["all"] = summarise(cases)
    rows = []
    for key, s in summaries.items():
        for name, label in (
            ("estimate", "seg.estimate_accuracy"),
            ("loso", "leave-one-stroke-out CV"),
            ("pixel_cv", "pixel-wise 5-fold CV"),
        ):
            e = s[name]
            inside = f"{s['coverage']:.0%}" if name == "estimate" else ""
            width = f"{s['median_width']:.3f}" if name == "estimate" else ""
            rows.append(
                [
                    key,
                    label,
                    s["cases"],
                    f"{e['bias']:+.3f}",
                    f"{e['mae']:.3f}",
                    f"{e['min_error']:+.3f} … {e['max_error']:+.3f}",
                    inside,
                    width,
                ]
            )
    print()
    print(
        format_table(
            ["strokes/class", "method", "cases", "bias", "MAE", "error range", "true in 90 % interval", "median width"],
            rows,
            align="llrrrrrr",
        )
    )
    timing = None if args.quick else time_app_path()
    if timing:
        print(
            f"\nApp path at 1 MP ({timing['strokes']} strokes, features and probabilities cached): "
            f"{timing['median_seconds']:.2f} s median"
        )
    load_after = load_average()
    print(f"load average: before {load_before}, after {load_after}")
    write_json(
        args.out,
        {
            "machine": machine_info(),
            "load_before": load_before,
            "load_after": load_after,
            "summary": summaries,
            "cases": cases,
            "timing": timing,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
