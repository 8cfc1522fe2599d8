"""Objects from a pixel classifier: instance F1 at IoU 0.5, split vs not split, and the cost.

Two data sets with ground-truth *instances* (one real, one simulated; nothing in the installed
packages ships touching nuclei with instance masks: scikit-image's ``human_mitosis`` and
``cells3d`` are downloaded on first use, and ``coins`` has no masks):

- **ISBI 2012** (real; ``../shared/data/isbi2012``): the instances are the 4-connected cell
  interiors of the expert labels, the way the challenge defines regions. A model is trained on
  simulated scribbles (``datasets.simulate_scribbles``, 8 strokes per class) and
  ``seg.segment_objects`` is run on its probabilities for the class "cell". EM profiles are
  separated by membranes and are far from convex, which is the case where a distance watershed
  should *not* be used; the "expert pixels" rows apply the same recipe to the expert's own pixel
  labels, so they isolate what splitting does from what the classifier does.
- **Touching nuclei** (simulated proxy, said so): random ellipses (semi-axes 7-15 px, any angle),
  about a third of them overlapping a neighbour, blurred (sigma 1.5) with noise; the ground-truth
  instance of a pixel is the ellipse drawn last there. Same scribbles, model and recipe.

Matching: a predicted object and a true one match when their IoU exceeds 0.5 (then the match is
unique); F1 = 2 TP / (predicted + true). Also reports the count error and the cost of
``segment_objects`` / ``measure_objects`` on a 4-megapixel frame (wall time, tracemalloc peak),
beside the whole-frame reference recipe that the per-component watershed equals.

    python bench/objects.py [--slices 0 5 10 15 20 25] [--quick]

Prints tables and writes ``bench/results/objects.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import format_table, load_average, machine_info, write_json
from bench.datasets import load_isbi, simulate_scribbles
from seg.model import train
from seg.objects import measure_objects, segment_objects

OUT = Path(__file__).resolve().parent / "results" / "objects.json"
STROKES = 8
# (row name, segment_objects keyword arguments)
RECIPES = [
    ("not split", {"split": False}),
    ("split, min_distance 5 (default)", {"split": True, "min_distance": 5}),
    ("split, min_distance 10", {"split": True, "min_distance": 10}),
]


def instance_f1(predicted: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict:
    """F1, TP, counts of two instance label images (0 = background) matched at IoU > threshold."""
    p = predicted.ravel().astype(np.int64)
    t = truth.ravel().astype(np.int64)
    n_true = int(t.max(initial=0)) + 1
    pairs, overlap = np.unique(p * n_true + t, return_counts=True)
    pi, ti = pairs // n_true, pairs % n_true
    area_p = np.bincount(p)
    area_t = np.bincount(t, minlength=n_true)
    both = (pi > 0) & (ti > 0)
    iou = overlap[both] / (area_p[pi[both]] + area_t[ti[both]] - overlap[both])
    tp = int((iou > threshold).sum())
    n_pred = int(np.count_nonzero(area_p[1:]))
    n_truth = int(np.count_nonzero(area_t[1:]))
    f1 = 2 * tp / (n_pred + n_truth) if n_pred + n_truth else 1.0
    return {"f1": f1, "tp": tp, "predicted": n_pred, "true": n_truth}


def touching_nuclei(seed: int, size: int = 512, count: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8, true instances int32) of overlapping ellipses; see the module notes."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    instances = np.zeros((size, size), np.int32)
    brightness = np.zeros((size, size))
    for label in range(1, count + 1):
        cy, cx = rng.uniform(15, size - 15, 2)
        a, b = rng.uniform(7, 15), rng.uniform(7, 15)
        angle = rng.uniform(0, np.pi)
        dy, dx = rows - cy, cols - cx
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        inside = (u / a) ** 2 + (v / b) ** 2 <= 1
        instances[inside] = label
        brightness[inside] = rng.uniform(0.6, 1.0)
    image = ndi.gaussian_filter(40 + 150 * brightness, 1.5) + rng.normal(0, 10, brightness.shape)
    instances = _relabel_visible(instances)
    return np.clip(image, 0, 255).astype(np.uint8), instances


def _relabel_visible(instances: np.ndarray) -> np.ndarray:
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(instances)[0].astype(np.int32)


def _model_proba(image: np.ndarray, classes: np.ndarray, seed: int) -> np.ndarray:
    scribbles = simulate_scribbles(classes, strokes_per_class=STROKES, seed=seed)
    model = train(image, scribbles, class_names=["other", "object"] if classes.max() == 2 else None)
    return model.predict_proba(image)


def evaluate(name: str, cases: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]) -> list[dict]:
    """Rows of F1 per recipe over ``cases`` = [(image, classes 1/2, true instances, seed)], with
    the same recipes on the true pixel classes ("expert pixels")."""
    rows = []
    predicted = [(_model_proba(image, classes, seed), classes, truth) for image, classes, truth, seed in cases]
    for source in ("classifier", "expert pixels"):
        for recipe, kwargs in RECIPES:
            scores = []
            for proba, classes, truth in predicted:
                data = proba if source == "classifier" else classes
                scores.append(instance_f1(segment_objects(data, 2, **kwargs), truth))
            rows.append(
                {
                    "data": name,
                    "pixels from": source,
                    "recipe": recipe,
                    "f1": float(np.mean([s["f1"] for s in scores])),
                    "f1_min": float(np.min([s["f1"] for s in scores])),
                    "f1_max": float(np.max([s["f1"] for s in scores])),
                    "predicted": int(np.sum([s["predicted"] for s in scores])),
                    "true": int(np.sum([s["true"] for s in scores])),
                    "images": len(scores),
                }
            )
    return rows


def isbi_cases(slices: list[int]) -> list:
    cases = []
    for index in slices:
        image, classes = load_isbi(index)
        truth, _ = ndi.label(classes == 2)  # 4-connected cell interiors
        cases.append((image, classes, truth.astype(np.int32), 100 * index))
    return cases


def nuclei_cases(seeds: list[int]) -> list:
    cases = []
    for seed in seeds:
        image, truth = touching_nuclei(seed)
        cases.append((image, np.where(truth > 0, 2, 1).astype(np.uint8), truth, seed))
    return cases


def _reference(mask: np.ndarray, min_distance: int) -> np.ndarray:
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    components, _ = ndi.label(mask, structure=np.ones((3, 3)))
    distance = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(distance, min_distance=min_distance, labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=mask, connectivity=2)


def _cost(function) -> tuple[float, float]:
    tracemalloc.start()
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


def cost_rows(side: int) -> list[dict]:
    """Time and peak memory on a side x side mosaic of simulated nuclei frames."""
    tiles = [touching_nuclei(seed)[1] for seed in range(4)]
    n = side // 512
    truth = np.block([[tiles[(i + j) % 4] + 0 for j in range(n)] for i in range(n)])
    labels = np.where(truth > 0, 2, 1).astype(np.uint8)
    image = (labels * 80).astype(np.uint8)
    pixels = labels.size
    rows = []
    instances = segment_objects(labels, 2)
    measure_objects(instances[:8, :8])  # imports (pandas, regionprops) are not the step's memory
    for name, function in [
        ("segment_objects (per component)", lambda: segment_objects(labels, 2, min_size=0, fill_holes=False)),
        ("whole-frame reference recipe", lambda: _reference(labels == 2, 5)),
        ("segment_objects, defaults", lambda: segment_objects(labels, 2)),
        ("measure_objects (with image)", lambda: measure_objects(instances, image=image)),
    ]:
        seconds, peak = _cost(function)
        rows.append(
            {
                "step": name,
                "megapixels": pixels / 1e6,
                "objects": int(instances.max()),
                "seconds": seconds,
                "peak_bytes_per_pixel": peak / pixels,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, nargs="+", default=[0, 5, 10, 15, 20, 25])
    parser.add_argument("--nuclei", type=int, default=6, help="simulated images")
    parser.add_argument("--side", type=int, default=2048, help="side of the cost mosaic (multiple of 512)")
    parser.add_argument("--quick", action="store_true", help="2 slices, 2 simulated images, 1024 px mosaic")
    args = parser.parse_args(argv)
    if args.quick:
        args.slices, args.nuclei, args.side = args.slices[:2], 2, 1024
    load_before = load_average()
    rows = evaluate("ISBI 2012 (real)", isbi_cases(args.slices))
    rows += evaluate("touching nuclei (simulated)", nuclei_cases(list(range(1000, 1000 + args.nuclei))))
    header = ["data", "pixels from", "recipe", "F1 @ IoU 0.5 (mean)", "min–max", "objects found / true"]
    print(
        format_table(
            header,
            [
                [
                    r["data"],
                    r["pixels from"],
                    r["recipe"],
                    f"{r['f1']:.3f}",
                    f"{r['f1_min']:.2f}–{r['f1_max']:.2f}",
                    f"{r['predicted']} / {r['true']}",
                ]
                for r in rows
            ],
            align="lllrrr",
        )
    )
    costs = cost_rows(args.side)
    print()
    print(
        format_table(
            ["step", "MP", "objects", "seconds", "peak bytes / pixel"],
            [
                [
                    c["step"],
                    f"{c['megapixels']:.1f}",
                    c["objects"],
                    f"{c['seconds']:.2f}",
                    f"{c['peak_bytes_per_pixel']:.1f}",
                ]
                for c in costs
            ],
            align="lrrrr",
        )
    )
    load_after = load_average()
    print(f"\nload average before {load_before}, after {load_after}")
    write_json(
        OUT,
        {
            "machine": machine_info(),
            "load_before": load_before,
            "load_after": load_after,
            "args": vars(args),
            "f1": rows,
            "cost": costs,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
