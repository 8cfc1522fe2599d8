"""Are the settings ``seg.suggest_settings`` picks at least as accurate as the defaults, beyond EM?

Images with known truth (``bench/datasets.py``): a mosaic of scikit-image's brick, grass and
gravel textures (3 classes, exact truth), fluorescence-like noisy blobs from ``binary_blobs``
(exact truth), and scikit-image's coins (truth: the gallery's watershed segmentation). Scribbles:
``simulate_scribbles`` with 4 and 8 strokes per class, 3 seeds. For every case the model with the
default settings and the model with the top suggestion are trained on the same scribbles and
scored on the unlabelled pixels. The default settings' own estimate is checked against the truth
too (calibration beyond ISBI).

    python bench/suggest_settings.py [--quick]

Prints a table and writes ``bench/results/suggest_settings.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import format_table, load_average, machine_info, write_json  # noqa: E402
from bench.datasets import coins_with_truth, noisy_blobs, simulate_scribbles, texture_mosaic  # noqa: E402
from seg.evaluate.suggest import forest_name, preset_name, suggest_settings, worth_switching  # noqa: E402
from seg.features import DEFAULT_PRESET, PRESETS  # noqa: E402
from seg.forest import ForestSettings  # noqa: E402
from seg.model import train  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "suggest_settings.json"
IMAGES = {
    "textures (brick/grass/gravel)": lambda: texture_mosaic(seed=0),
    "textures, other layout": lambda: texture_mosaic(seed=1),
    "noisy blobs": lambda: noisy_blobs(seed=0),
    "noisy blobs, other draw": lambda: noisy_blobs(seed=1),
    "coins": coins_with_truth,
}


def true_accuracy(image, truth, labels, settings, forest) -> float:
    model = train(image, labels, settings, forest=forest)
    unlabelled = labels == 0
    return float(np.mean(model.predict(image)[unlabelled] == truth[unlabelled]))


def one_case(name, image, truth, n_strokes, seed) -> dict:
    labels = simulate_scribbles(truth, strokes_per_class=n_strokes, seed=seed)
    start = time.perf_counter()
    ranked = suggest_settings(image, labels)
    seconds = time.perf_counter() - start
    best_settings, best = ranked[0]
    default_settings, default_forest = PRESETS[DEFAULT_PRESET], ForestSettings()
    default = next(r for s, r in ranked if s == default_settings and r.forest == default_forest)
    top_settings, top = ranked[0]
    if top.accuracy is None:  # too few strokes to compare: the app offers nothing, defaults stay
        top_settings, top = default_settings, default
    change = worth_switching(ranked, default_settings, default_forest)
    best_settings, best = change if change is not None else (default_settings, default)
    true_default = true_accuracy(image, truth, labels, default_settings, default_forest)
    same = best_settings == default_settings and best.forest == default_forest
    true_best = true_default if same else true_accuracy(image, truth, labels, best_settings, best.forest)
    top_same = (top_settings, top.forest) == (default_settings, default_forest)
    top_is_best = (top_settings, top.forest) == (best_settings, best.forest)
    true_top = (
        true_default
        if top_same
        else true_best
        if top_is_best
        else true_accuracy(image, truth, labels, top_settings, top.forest)
    )
    low, high = default.interval or (None, None)
    return {
        "image": name,
        "strokes_per_class": n_strokes,
        "seed": seed,
        "suggested": f"{preset_name(best_settings)}; {forest_name(best.forest)}",
        "top": f"{preset_name(top_settings)}; {forest_name(top.forest)}",
        "true_default": true_default,
        "true_suggested": true_best,
        "true_top": true_top,
        "estimate_default": default.accuracy,
        "estimate_suggested": best.accuracy,
        "default_low": low,
        "default_high": high,
        "default_inside": None if low is None else bool(low <= true_default <= high),
        "seconds": seconds,
    }


def _row(name: str, cases: list[dict]) -> list:
    """Mean true accuracy of the defaults, of the suggestion (switching only for a gain >= MIN_GAIN)
    and of the plain top estimate, with the gains and how many cases got worse / better."""
    default = np.array([c["true_default"] for c in cases])
    row = [name, len(cases), f"{default.mean():.3f}"]
    for key in ("true_suggested", "true_top"):
        values = np.array([c[key] for c in cases])
        gain = values - default
        row += [f"{values.mean():.3f}", f"{gain.mean():+.3f}", f"{np.sum(gain < -1e-9)} / {np.sum(gain > 1e-9)}"]
    return row + [_coverage(cases)]


def _coverage(cases: list[dict]) -> str:
    known = [c["default_inside"] for c in cases if c["default_inside"] is not None]
    return f"{np.mean(known):.0%} of {len(known)}" if known else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one image, one seed")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    images = dict(list(IMAGES.items())[:1]) if args.quick else IMAGES
    seeds = (0,) if args.quick else (0, 1, 2)
    load_before = load_average()
    cases = []
    for name, make in images.items():
        image, truth = make()
        for n_strokes in (4, 8):
            for seed in seeds:
                case = one_case(name, image, truth, n_strokes, 500 + seed)
                cases.append(case)
                print(
                    f"{name}, {n_strokes} strokes, seed {seed}: default {case['true_default']:.3f}, "
                    f"suggested ({case['suggested']}) {case['true_suggested']:.3f}  [{case['seconds']:.1f} s]",
                    flush=True,
                )
    rows = []
    for name in images:
        group = [c for c in cases if c["image"] == name]
        rows.append(_row(name, group))
    rows.append(_row("all", cases))
    gain = np.array([c["true_suggested"] - c["true_default"] for c in cases])
    print()
    print(
        format_table(
            [
                "image",
                "cases",
                "defaults",
                "suggested (gain ≥ 0.01)",
                "gain",
                "worse / better",
                "top estimate",
                "gain",
                "worse / better",
                "defaults' truth in 90 % interval",
            ],
            rows,
        )
    )
    load_after = load_average()
    print(
        f"median suggest time {np.median([c['seconds'] for c in cases]):.1f} s; "
        f"load average: before {load_before}, after {load_after}"
    )
    write_json(
        args.out,
        {
            "machine": machine_info(),
            "load_before": load_before,
            "load_after": load_after,
            "cases": cases,
            "mean_gain": float(gain.mean()),
            "mean_gain_top": float(np.mean([c["true_top"] - c["true_default"] for c in cases])),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
