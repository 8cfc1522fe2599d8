"""Volumes: 3-D feature speed and memory against scikit-image, and accuracy on real volumes.

speed
    Features of a SIZE³ grey volume (smoothed noise), each variant in its own process so that
    peak memory (VmHWM) is its own: scikit-image's ``multiscale_basic_features`` on the 3-D
    array (sigma 0.7..16, the default preset's scales), seg's ``basic`` set with the same
    settings (same numbers), and seg's default preset (``balanced``: extended set, 50 features).
accuracy
    Scribbles on 3 slices, mean IoU over classes on every other slice (held out), for
    - seg per-slice 2-D features with the volume defaults' scales and forest,
    - seg 3-D features with the same and the voxel size (one of the two is the volume default),
    - the scikit-image gallery recipe slice by slice (``multiscale_basic_features`` sigma 1..16,
      ``RandomForestClassifier(50 trees, depth 10, max_samples 0.05)``, seeded).
    Volumes: the 30-slice ISBI 2012 EM stack (voxel 4 x 4 x 50 nm, ../shared/data/isbi2012),
    membrane vs cell; and the MNI ICBM152 2009 T1 brain template (1 mm isotropic) with its
    grey/white-matter maps (> 0.5) as truth: other / grey / white matter. The template's files
    ship inside the nilearn wheel: ``pip install --no-deps nilearn`` (only its data files are
    read; nilearn itself is never imported).

    python bench/volumes.py [speed] [accuracy] [--size 256] [--repeats 3]

Writes bench/results/volumes.json (with the machine's load average before and after).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import format_table, load_average, machine_info, mean_iou, peak_rss_mb, write_json  # noqa: E402
from bench.datasets import load_isbi, simulate_scribbles  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "volumes.json"
SCALES = dict(sigma_min=0.7, sigma_max=16.0)


# ------------------------------------------------------------------------------------ speed


def _test_volume(size: int) -> np.ndarray:
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    volume = ndi.gaussian_filter(rng.random((size, size, size), dtype=np.float32), 2.0)
    volume -= volume.min()
    volume /= volume.max()
    return volume


def _one(variant: str, size: int) -> None:
    """Run one variant in this (fresh) process; print wall, CPU seconds and peak RSS as JSON."""
    volume = _test_volume(size)
    base = peak_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    if variant == "seg slice update":
        _slice_update(volume, base)
        return
    if variant == "skimage":
        from skimage.feature import multiscale_basic_features

        features = multiscale_basic_features(volume, **SCALES)
    else:
        from seg.features import PRESETS, FeatureSettings
        from seg.features.volume import compute_volume_features

        settings = (
            PRESETS["balanced"]
            if variant == "seg default"
            else FeatureSettings(feature_set="basic", channel_mode="separate", **SCALES)
        )
        compute_volume_features(volume[:16, :16, :16], settings)  # numba compile (cached), not timed
        base = max(base, peak_rss_mb())
        wall, cpu = time.perf_counter(), time.process_time()
        features = compute_volume_features(volume, settings)
    print(
        json.dumps(
            {
                "variant": variant,
                "seconds": time.perf_counter() - wall,
                "cpu_seconds": time.process_time() - cpu,
                "features": int(features.shape[-1]),
                "output_mb": features.nbytes / 2**20,
                "peak_mb": peak_rss_mb() - base,
            }
        )
    )


def _slice_update(volume: np.ndarray, base: float) -> None:
    """What the app would do after a stroke: retrain on the scribbles of two slices (features of
    those slices only) and label the displayed slice (one block of one slice with its margin)."""
    import seg
    from seg.features.volume import block_context
    from seg.volumes.model import normalize_volume, predict_block

    size = volume.shape[0]
    truth = (volume > np.median(volume)).astype(np.uint8) + 1
    labels = np.zeros(volume.shape, np.uint8)
    for z in (size // 4, 3 * size // 4):
        labels[z, ::16, ::16] = truth[z, ::16, ::16]
    seg.train(volume[:24, :24, :24], truth[:24, :24, :24], dims=3, volume_features="3d")  # compile, untimed
    wall, cpu = time.perf_counter(), time.process_time()
    model = seg.train(volume, labels, dims=3, volume_features="3d")
    trained = time.perf_counter() - wall
    normalised = normalize_volume(volume[..., None], model.normalization)
    z = size // 2
    context, inner = block_context(
        volume.shape, (slice(z, z + 1), slice(None), slice(None)), model.volume.margin(model.feature_settings)
    )
    start = time.perf_counter()
    predict_block(model, normalised[context], inner)
    print(
        json.dumps(
            {
                "variant": "seg slice update",
                "seconds": time.perf_counter() - wall,
                "cpu_seconds": time.process_time() - cpu,
                "train_seconds": trained,
                "slice_seconds": time.perf_counter() - start,
                "features": model.n_features,
                "output_mb": 0.0,
                "peak_mb": peak_rss_mb() - base,
            }
        )
    )


def speed(size: int, reference: bool = True, repeats: int = 1) -> list[dict]:
    """One row per variant: the fastest of ``repeats`` fresh processes (wall and CPU seconds are
    each the minimum; every run's wall seconds and load average are kept)."""
    rows = []
    for variant in ("skimage", "seg basic", "seg default", "seg slice update")[0 if reference else 1 :]:
        runs = []
        for _ in range(repeats):
            load = (load_average() or [None])[0]
            done = subprocess.run(
                [sys.executable, __file__, "_one", variant, str(size)], capture_output=True, text=True, check=True
            )
            runs.append({**json.loads(done.stdout.strip().splitlines()[-1]), "load": load})
            print(
                f"  {variant}: {runs[-1]['seconds']:.1f} s, peak {runs[-1]['peak_mb']:.0f} MB, load {load}", flush=True
            )
        best = min(runs, key=lambda r: r["seconds"])
        rows.append(
            {
                **best,
                "cpu_seconds": min(r["cpu_seconds"] for r in runs),
                "peak_mb": max(r["peak_mb"] for r in runs),
                "runs_seconds": [round(r["seconds"], 1) for r in runs],
                "runs_load": [r["load"] for r in runs],
            }
        )
    return rows


# ------------------------------------------------------------------------------------ accuracy


def _isbi() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], list[int]]:
    images, truths = zip(*(load_isbi(i) for i in range(30)))
    return np.stack(images), np.stack(truths), (50.0, 4.0, 4.0), [5, 15, 25]


def _brain() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], list[int]] | None:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    from seg.images.volume import read_volume

    name = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
    t1 = read_volume(data / name.format("t1"))
    grey, white = (read_volume(data / name.format(kind)).data[..., 0] for kind in ("gm", "wm"))
    truth = np.ones(grey.shape, np.uint8)
    truth[grey > 0.5] = 2
    truth[white > 0.5] = 3
    brain = np.argwhere(grey + white > 0.1)
    box = tuple(slice(max(lo - 4, 0), hi + 5) for lo, hi in zip(brain.min(0), brain.max(0)))
    image, truth = t1.data[box][..., 0], truth[box]
    z = image.shape[0]
    return image, truth, t1.spacing, [int(z * 0.35), int(z * 0.5), int(z * 0.65)]


def _scribbles(truth: np.ndarray, slices: list[int], strokes: dict) -> np.ndarray:
    labels = np.zeros(truth.shape, np.uint8)
    for z in slices:
        labels[z] = simulate_scribbles(truth[z], seed=z, **strokes)
    return labels


# Strokes per class, length and width in pixels: ~1 % of a scribbled slice, as a person draws.
_STROKES = {
    "isbi": dict(strokes_per_class=6, length=60, width=3),
    "brain": dict(strokes_per_class=4, length=25, width=1),
}


def _skimage_per_slice(image: np.ndarray, labels: np.ndarray, slices: list[int]) -> np.ndarray:
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    def features(z: int) -> np.ndarray:
        plane = image[z].astype(np.float32)
        plane = (plane - plane.min()) / max(float(np.ptp(plane)), 1e-6)
        return multiscale_basic_features(plane, sigma_min=1, sigma_max=16)

    x = np.concatenate([features(z)[labels[z] > 0] for z in slices])
    y = np.concatenate([labels[z][labels[z] > 0] for z in slices])
    forest = RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05, n_jobs=-1, random_state=0)
    forest.fit(x, y)
    out = np.zeros(image.shape, np.uint8)
    for z in range(image.shape[0]):
        f = features(z)
        out[z] = forest.predict(f.reshape(-1, f.shape[-1])).reshape(f.shape[:2])
    return out


METHODS = (
    "seg per-slice 2-D (volume defaults)",
    "seg 3-D (volume defaults, voxel size)",
    "scikit-image gallery, slice by slice",
)


def _predict(method: str, image: np.ndarray, labels: np.ndarray, spacing, slices: list[int]) -> np.ndarray:
    import seg

    if method == METHODS[0]:
        return seg.train(image, labels, dims=3, spacing=spacing, volume_features="per_slice").predict(image)
    if method == METHODS[1]:
        return seg.train(image, labels, dims=3, spacing=spacing, volume_features="3d").predict(image)
    return _skimage_per_slice(image, labels, slices)


def accuracy() -> list[dict]:
    """Both feature modes with the volume defaults' scales and forest
    (seg.volumes.model.default_volume_settings / DEFAULT_VOLUME_FOREST), and the reference."""
    from seg.volumes.model import default_volume_settings

    rows = []
    volumes = (
        ("ISBI 2012 EM (30 x 512 x 512, 4 x 4 x 50 nm)", "isbi", _isbi()),
        ("MNI152 T1 brain (1 mm)", "brain", _brain()),
    )
    for name, kind, loaded in volumes:
        if loaded is None:
            print(f"  {name}: skipped (pip install --no-deps nilearn for the template)")
            continue
        image, truth, spacing, slices = loaded
        labels = _scribbles(truth, slices, _STROKES[kind])
        held_out = [z for z in range(image.shape[0]) if z not in slices]
        classes = sorted(int(c) for c in np.unique(truth))
        for method in METHODS:
            start = time.perf_counter()
            predicted = _predict(method, image, labels, spacing, slices)
            seconds = time.perf_counter() - start
            scores = [mean_iou(predicted[z], truth[z], classes) for z in held_out]
            rows.append(
                {
                    "volume": name,
                    "shape": list(image.shape),
                    "method": method,
                    "is_the_default": method == METHODS[0 if default_volume_settings(spacing)[0] == "per_slice" else 1],
                    "held_out_mean_iou": round(float(np.mean(scores)), 4),
                    "seconds_train_and_predict": round(seconds, 1),
                }
            )
            print(f"  {name} / {method}: IoU {rows[-1]['held_out_mean_iou']:.3f} in {seconds:.0f} s", flush=True)
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        _one(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["speed", "accuracy"], help="speed and/or accuracy")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per variant; the fastest counts")
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="seg only (scikit-image needs ~4 GB per 100³ voxels... see bench/README)",
    )
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = machine_info()
    load_before = load_average()
    if "speed" in args.parts:
        print(f"3-D features of a {args.size}³ grey volume:")
        key = f"speed_{args.size}"
        results[key] = {
            "size": args.size,
            "rows": speed(args.size, not args.no_reference, args.repeats),
            "load_before": load_before,
            "load_after": load_average(),
        }
        print(
            format_table(
                ["variant", "features", "wall s (best)", "CPU s (best)", "peak MB", "output MB", "wall s per run"],
                [
                    [
                        r["variant"],
                        r["features"],
                        f"{r['seconds']:.1f}",
                        f"{r['cpu_seconds']:.1f}",
                        f"{r['peak_mb']:.0f}",
                        f"{r['output_mb']:.0f}",
                        r["runs_seconds"],
                    ]
                    for r in results[key]["rows"]
                ],
            )
        )
    if "accuracy" in args.parts:
        load_before = load_average()
        results["accuracy"] = {"rows": accuracy(), "load_before": load_before, "load_after": load_average()}
        print(
            format_table(
                ["volume", "method", "held-out mean IoU", "s"],
                [
                    [r["volume"], r["method"], r["held_out_mean_iou"], r["seconds_train_and_predict"]]
                    for r in results["accuracy"]["rows"]
                ],
            )
        )
    write_json(RESULTS, results)


if __name__ == "__main__":
    main()
