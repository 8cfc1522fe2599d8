"""Stroke-update time: retrain on the scribbles + label the whole image, features already cached.

Compares seg's defaults with the scikit-image gallery recipe (``RandomForestClassifier(
n_estimators=50, max_depth=10, max_samples=0.05, n_jobs=-1)`` through ``fit_segmenter`` /
``predict_segmenter`` on ``multiscale_basic_features`` sigma 1..16) on a 1024² ISBI mosaic, grey
and tinted RGB, with simulated scribbles covering ~1 % of the pixels. Also prints the mean IoU
of each on a held-out mosaic, so that speed is never bought with accuracy.

    python bench/forest_speed.py [--repeats 7] [--size 2] [--trees 12 16 24]

Timings are wall-clock medians after one warm-up run (numba compilation excluded); "cpu s" is
the CPU time of fit + predict over all threads, which on a busy machine divided by the core count
estimates the wall time on an idle one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import an_rgb_image, load_isbi, simulate_scribbles, tile_image  # noqa: E402
from seg.features import PRESETS, compute_features  # noqa: E402
from seg.forest import ForestSettings, warm_up  # noqa: E402
from seg.images import Normalization, normalize  # noqa: E402
from seg.model import train  # noqa: E402

GALLERY = PRESETS["scikit-image gallery"]
BALANCED = PRESETS["balanced"]


def mosaic(first: int, n: int, rgb: bool) -> tuple[np.ndarray, np.ndarray]:
    if rgb:
        return an_rgb_image(n, first)
    pairs = [load_isbi(first + i) for i in range(n * n)]
    return tile_image([p[0] for p in pairs], n), tile_image([p[1] for p in pairs], n)


def features_of(image: np.ndarray, settings, normalization: Normalization = Normalization()) -> np.ndarray:
    return compute_features(normalize(image, normalization), settings)


def mean_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    ious = [np.sum((pred == c) & (truth == c)) / np.sum((pred == c) | (truth == c)) for c in (1, 2)]
    return float(np.mean(ious))


def median_times(step, repeats: int) -> tuple[float, float, float, object]:
    """Median fit and predict wall times and CPU time of both (all threads) over ``repeats`` runs."""
    step()  # warm-up: thread pools, numba kernels, caches
    fits, predicts, cpus = [], [], []
    for _ in range(repeats):
        cpu = time.process_time()
        fit_s, predict_s, result = step()
        cpus.append(time.process_time() - cpu)
        fits.append(fit_s)
        predicts.append(predict_s)
    return statistics.median(fits), statistics.median(predicts), statistics.median(cpus), result


def ours(image, labels, feats, forest: ForestSettings, settings):
    def step():
        start = time.perf_counter()
        model = train(image, labels, settings, ["membrane", "cell"], forest=forest, features=[feats])
        middle = time.perf_counter()
        model.predict_features(feats)
        return middle - start, time.perf_counter() - middle, model

    return step


def reference(labels, feats):
    from skimage.future import fit_segmenter, predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    def step():
        # Seeded (the gallery's is not) so that the accuracy column is reproducible.
        clf = RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05, n_jobs=-1, random_state=0)
        start = time.perf_counter()
        fit_segmenter(labels, feats, clf)
        middle = time.perf_counter()
        predict_segmenter(feats, clf)
        return middle - start, time.perf_counter() - middle, clf

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=2, help="tiles per side: 2 -> 1024², 4 -> 2048²")
    parser.add_argument("--trees", type=int, nargs="*", default=[], help="extra n_estimators to compare")
    args = parser.parse_args()
    warm_up()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of {args.repeats}")
    print(
        f"{'image':10s} {'method':34s} {'fit s':>7s} {'predict s':>9s} {'total s':>8s} {'speed-up':>8s} "
        f"{'cpu s':>6s} {'mIoU':>6s}"
    )
    for rgb in (False, True):
        image, truth = mosaic(0, args.size, rgb)
        held_out, held_truth = mosaic(10, args.size, rgb)
        labels = simulate_scribbles(truth, strokes_per_class=8 * args.size**2, length=80, seed=0)
        name = f"{'RGB' if rgb else 'grey'} {image.shape[0]}²"
        # The gallery recipe scales the raw image by its dtype (img_as_float).
        raw = Normalization(mode="dtype")
        basic, basic_test = features_of(image, GALLERY, raw), features_of(held_out, GALLERY, raw)
        fit_s, predict_s, cpu_s, clf = median_times(reference(labels, basic), args.repeats)
        ref_total = fit_s + predict_s
        iou = mean_iou(clf.predict(basic_test.reshape(-1, basic_test.shape[-1])).reshape(held_truth.shape), held_truth)
        print(
            f"{name:10s} {'scikit-image gallery (reference)':34s} {fit_s:7.3f} {predict_s:9.3f} {ref_total:8.3f} "
            f"{1.0:8.1f} {cpu_s:6.3f} {iou:6.3f}"
        )
        feats, feats_test = features_of(image, BALANCED), features_of(held_out, BALANCED)
        variants = [("seg defaults", ForestSettings())]
        variants += [(f"seg, {n} trees", dataclasses.replace(ForestSettings(), n_estimators=n)) for n in args.trees]
        for label, forest in variants:
            fit_s, predict_s, cpu_s, model = median_times(ours(image, labels, feats, forest, BALANCED), args.repeats)
            iou = mean_iou(model.predict_features(feats_test), held_truth)
            print(
                f"{name:10s} {label:34s} {fit_s:7.3f} {predict_s:9.3f} {fit_s + predict_s:8.3f} "
                f"{ref_total / (fit_s + predict_s):8.1f} {cpu_s:6.3f} {iou:6.3f}"
            )
        print(
            f"{'':10s} scribbled {np.count_nonzero(labels) / labels.size:.2%} of the pixels; "
            f"{basic.shape[-1]} basic / {feats.shape[-1]} balanced features"
        )


if __name__ == "__main__":
    main()
