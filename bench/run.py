"""The benchmark: our engine and app path against the scikit-image gallery recipe, side by side.

    python bench/run.py            # everything (< 10 min on 2 quiet cores); bench/results/latest.json
    python bench/run.py --quick    # 512² only, 1 repetition, small memory run; bench/results/quick.json

Every figure is measured in the same run as the REFERENCE it is compared with: the recipe of the
scikit-image gallery that the seed Dash demo used —
``multiscale_basic_features(float32 image, intensity=True, edges=True, texture=True,
sigma_min=1, sigma_max=16)``, ``RandomForestClassifier(n_estimators=50, max_depth=10,
max_samples=0.05, n_jobs=-1)`` (plus ``random_state=0`` so runs repeat), ``fit_segmenter`` /
``predict_segmenter`` — and, for the displayed update, a full-resolution RGBA label overlay
encoded as a PNG data URI through PIL as the demo sent it. Ours uses the app's defaults
(``seg.features`` "balanced" preset, ``seg.model.ForestSettings()``, percentile normalisation).

Rows (see bench/README.md): stroke update, displayed update, cold start (512², 1024², 2048²,
grey and RGB), accuracy on ISBI 2012, memory of app sessions (subprocess, bench/memory_session.py)
and the browser's mouse-up-to-overlay time (bench/browser_latency.py, when Chromium is there).
Wall-clock medians are reported; the load average is recorded because timings on a shared
machine are noisy.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import pstats
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The reference's max_samples=0.05 of a few thousand scribbled pixels is what the demo used;
# scikit-learn's advice about it is noise in the benchmark output.
warnings.filterwarnings("ignore", message="Using the fractional value max_samples", category=UserWarning)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import datasets  # noqa: E402

RESULTS = HERE / "results"
BROWSER_SCRIPT = HERE / "browser_latency.py"
BROWSER_JSON = RESULTS / "browser.json"
CHROMIUM = Path("/usr/bin/chromium")

MEMBRANE, CELL = 1, 2
OPACITY = 0.45  # the app's default overlay opacity (seg.ui.page)


@dataclass(frozen=True)
class Mode:
    """How much to run: sizes, repetitions, accuracy slices, memory sessions."""

    name: str
    sizes: tuple[int, ...]
    repeats: int
    budget_s: float  # per side and row: no new repetition after this
    train_slices: tuple[int, ...]  # ISBI slices to train on for the accuracy rows
    unseen_per_slice: int  # following slices to test each model on
    accuracy_crop: int | None  # crop slices to this side (tiny mode)
    memory_sizes: tuple[int, ...]
    memory_strokes: int
    memory_early: int
    browser: bool


MODES = {
    "full": Mode("full", (512, 1024, 2048), 5, 20.0, (0, 10, 20), 5, None, (1024, 2048), 200, 20, True),
    "quick": Mode("quick", (512,), 1, 0.0, (0,), 2, None, (512, 1024), 40, 10, False),
    # For the smoke test: tiny crops, every code path, seconds.
    "tiny": Mode("tiny", (128,), 1, 0.0, (0,), 1, 128, (128, 256), 6, 3, False),
}


# --------------------------------------------------------------------------------- data


@dataclass
class Case:
    """One benchmark image: pixels, truth, simulated scribbles and the scribbles plus one stroke."""

    size: int
    channels: int
    image: np.ndarray = field(repr=False)  # (H, W) or (H, W, 3) uint8
    truth: np.ndarray = field(repr=False)  # (H, W) uint8, 1 membrane, 2 cell
    scribbles: np.ndarray = field(repr=False)  # (H, W) uint8, 0 unlabelled
    plus_one: np.ndarray = field(repr=False)  # scribbles + one more membrane stroke

    @property
    def name(self) -> str:
        return f"{self.size}² {'grey' if self.channels == 1 else 'RGB'}"


def scribble_parameters(side: int) -> dict[str, int]:
    """Stroke count/length for :func:`datasets.simulate_scribbles`: its defaults from 512² up,
    fewer and shorter strokes on the tiny crops so they stay under 2 % of the pixels."""
    if side >= 512:
        return {}
    return {"strokes_per_class": 2, "length": max(8, side // 10)}


def simulate(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    return datasets.simulate_scribbles(truth, seed=seed, **scribble_parameters(min(truth.shape)))


def one_more_stroke(truth: np.ndarray, scribbles: np.ndarray, seed: int = 1000) -> np.ndarray:
    """``scribbles`` plus one more membrane stroke (a simulated stroke from another seed)."""
    params = {**scribble_parameters(min(truth.shape)), "strokes_per_class": 1}
    extra = datasets.simulate_scribbles(truth, seed=seed, **params)
    added = (extra == MEMBRANE) & (scribbles == 0)
    if not added.any():
        added = (extra > 0) & (scribbles == 0)
    out = scribbles.copy()
    out[added] = extra[added]
    return out


def grey_isbi(side: int, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(side, side) grey ISBI image and truth: a crop below 512, a mosaic of slices above."""
    if side <= 512:
        image, truth = datasets.load_isbi(first)
        return np.ascontiguousarray(image[:side, :side]), np.ascontiguousarray(truth[:side, :side])
    n = side // 512
    pairs = [datasets.load_isbi((first + i) % datasets.N_SLICES) for i in range(n * n)]
    return datasets.tile_image([p[0] for p in pairs], n), datasets.tile_image([p[1] for p in pairs], n)


def rgb_isbi(side: int) -> tuple[np.ndarray, np.ndarray]:
    """(side, side, 3) RGB image with known truth (:func:`datasets.an_rgb_image`)."""
    if side >= 512:
        return datasets.an_rgb_image(n=side // 512)
    image, truth = datasets.an_rgb_image(n=1)
    return np.ascontiguousarray(image[:side, :side]), np.ascontiguousarray(truth[:side, :side])


def make_case(side: int, channels: int) -> Case:
    image, truth = grey_isbi(side) if channels == 1 else rgb_isbi(side)
    scribbles = simulate(truth)
    return Case(side, channels, image, truth, scribbles, one_more_stroke(truth, scribbles))


# --------------------------------------------------------------------------------- reference


def reference_features(image: np.ndarray) -> np.ndarray:
    """The gallery's features of a uint8 image, computed in float32 as the seed demo did."""
    from skimage import img_as_float32
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(
        img_as_float32(image),
        intensity=True,
        edges=True,
        texture=True,
        sigma_min=1,
        sigma_max=16,
        channel_axis=-1 if image.ndim == 3 else None,
    )


def reference_classifier():
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=50, max_depth=10, max_samples=0.05, n_jobs=-1, random_state=0)


def reference_fit_predict(labels: np.ndarray, features: np.ndarray, watch: common.Stopwatch) -> np.ndarray:
    from skimage.future import fit_segmenter, predict_segmenter

    with watch("fit"):
        classifier = fit_segmenter(labels, features, reference_classifier())
    with watch("predict"):
        return predict_segmenter(features, classifier)


# The demo's class colours (RGBA, alpha 0.45 as the overlay opacity) for labels 1 and 2.
_DEMO_COLORS = np.array([[0, 0, 0, 0], [230, 159, 0, 115], [86, 180, 233, 115]], np.uint8)


def reference_overlay_uri(labels: np.ndarray) -> str:
    """The Dash demo's overlay: full-resolution RGBA label colours, PNG via PIL, base64 data URI."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_DEMO_COLORS[labels]).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------- ours


def our_features(image: np.ndarray) -> np.ndarray:
    """Normalised default-preset features (H, W, F) float32 of one uint8 frame."""
    from seg.features import DEFAULT_PRESET, PRESETS, compute_features
    from seg.images import Normalization, as_frames, normalize

    return compute_features(normalize(as_frames(image)[0], Normalization()), PRESETS[DEFAULT_PRESET])


def our_fit_predict(image: np.ndarray, labels: np.ndarray, features: np.ndarray, watch: common.Stopwatch):
    """Train with every default on cached features, then full-resolution labels."""
    from seg.model import train

    with watch("fit"):
        model = train(image, labels, features=[features])
    with watch("predict"):
        return model, model.predict_features(features)


def sklearn_labels(labels: np.ndarray, features: np.ndarray, forest_settings) -> np.ndarray:
    """The straightforward path: plain scikit-learn fit + predict with our forest settings on the
    same pixels in the same order as :func:`seg.model.train` uses them.

    Predicts with ``n_jobs=1``: with several threads scikit-learn adds the trees' probabilities
    in whatever order the threads finish, so pixels where the classes tie exactly (thousands at
    1 MP with 16 trees) flip between its own runs. One thread adds them in tree order, the
    order our predictor reproduces.
    """
    from seg.forest import make_estimator

    index = np.flatnonzero(labels)
    x = features.reshape(-1, features.shape[-1])
    estimator = make_estimator(forest_settings, n_samples=len(index))
    estimator.fit(x[index], labels.reshape(-1)[index].astype(np.int64))
    estimator.set_params(n_jobs=1)
    return estimator.predict(x).reshape(labels.shape).astype(np.uint8)


class AppSession:
    """The app's per-stroke path (seg.ui.pipeline.refresh + seg.ui.views.background_bytes) on a
    session-state dict, features already cached, fed label images directly."""

    def __init__(self, case: Case) -> None:
        from seg.features import DEFAULT_PRESET, PRESETS
        from seg.forest import ForestSettings
        from seg.images import Normalization, as_frames
        from seg.render import PALETTE
        from seg.ui import pipeline as P
        from seg.ui import state as S
        from seg.ui.navigation import fit_view

        self.state: dict = {}
        S.init_state(self.state, default_classes=[("membrane", PALETTE[0]), ("cell", PALETTE[1])])
        frames = as_frames(case.image)
        self.record = S.ImageRecord(name=case.name, digest=S.digest_bytes(frames.tobytes()), frames=frames)
        S.set_image(self.state, self.record)
        self.scene = P.Scene(self.record, 0, fit_view(self.record))
        self.settings = P.Settings(PRESETS[DEFAULT_PRESET], ForestSettings(), Normalization())
        P.features_for(self.state, self.record, [0], self.settings.features, self.settings.normalization)
        self.count = 0

    def stroke(self, labels: np.ndarray, watch: common.Stopwatch) -> bytes:
        """One more stroke: retrain, predict the displayed pixels, render the encoded background."""
        from seg.strokes import Stroke
        from seg.ui import pipeline as P
        from seg.ui import state as S
        from seg.ui import views as V

        self.count += 1
        # A stroke object unique to this call changes the training key, as a new stroke does;
        # the label image itself is passed in (the simulated scribbles).
        strokes = P.Strokes({0: (Stroke("path", MEMBRANE, ((float(self.count), 0.5),), 1.0),)})
        done = P.refresh(self.state, self.scene, strokes, {0: labels}, self.state[S.CLASSES], self.settings)
        if not done.trained or not done.predicted:
            raise RuntimeError(f"the app pipeline did not retrain and predict: {done}")
        watch.steps["train"] = done.train_ms / 1000
        watch.steps["predict"] = done.predict_ms / 1000
        with watch("render+encode"):
            data, _, _ = V.background_bytes(
                self.state, self.scene, self.state[S.PREDICTION], V.Look(V.SEGMENTATION, OPACITY), self.state[S.CLASSES]
            )
        return data


# --------------------------------------------------------------------------------- speed rows


def speed_rows(case: Case, mode: Mode, guard: bool) -> list[dict[str, Any]]:
    """Cold start, stroke update and displayed update of one case, ours next to the reference."""
    from seg.images import Normalization, as_frames, normalize

    rows = []
    settings = dict(repeats=mode.repeats, budget_s=mode.budget_s)

    def ours_cold(watch):
        from seg.features import DEFAULT_PRESET, PRESETS, compute_features

        with watch("normalise"):
            frame = normalize(as_frames(case.image)[0], Normalization())
        with watch("features"):
            features = compute_features(frame, PRESETS[DEFAULT_PRESET])
        _, labels = our_fit_predict(case.image, case.scribbles, features, watch)
        return features, labels

    def reference_cold(watch):
        with watch("features"):
            features = reference_features(case.image)
        return features, reference_fit_predict(case.scribbles, features, watch)

    ours, (features, _), ref, (ref_features, _) = common.measure_pair(ours_cold, reference_cold, **settings)
    rows.append(_row("cold start", case, ours, ref))

    def ours_public_cold(watch):
        # The README's two lines, nothing cached before: train computes the features and
        # predict reuses them (seg.features.recent).
        import seg
        from seg.features.recent import RECENT_FEATURES

        RECENT_FEATURES.clear()
        with watch("train"):
            model = seg.train(case.image, case.scribbles)
        with watch("predict"):
            return model.predict(case.image)

    ours, _, ref, _ = common.measure_pair(ours_public_cold, reference_cold, **settings)
    rows.append(_row("cold start, public API", case, ours, ref))

    ours, (model, labels), ref, ref_labels = common.measure_pair(
        lambda w: our_fit_predict(case.image, case.plus_one, features, w),
        lambda w: reference_fit_predict(case.plus_one, ref_features, w),
        **settings,
    )
    row = _row("stroke update", case, ours, ref)
    row["labelled_pixels"] = int(np.count_nonzero(case.plus_one))
    row["labelled_fraction"] = float(np.count_nonzero(case.plus_one) / case.plus_one.size)
    if guard:
        row["labels_equal_sklearn"] = bool(
            np.array_equal(labels, sklearn_labels(case.plus_one, features, model.forest_settings))
        )
    rows.append(row)
    del ref_labels

    session = AppSession(case)

    def reference_displayed(watch):
        labels = reference_fit_predict(case.plus_one, ref_features, watch)
        with watch("encode"):
            return reference_overlay_uri(labels)

    ours, data, ref, uri = common.measure_pair(
        lambda w: session.stroke(case.plus_one, w), reference_displayed, **settings
    )
    row = _row("displayed update", case, ours, ref)
    row["display_size"] = list(session.scene.viewport.canvas_size)
    row["ours_bytes"] = len(data)
    row["reference_bytes"] = len(uri)
    rows.append(row)
    return rows


def _row(name: str, case: Case, ours: common.Timing, ref: common.Timing) -> dict[str, Any]:
    return {
        "row": name,
        "size": case.size,
        "channels": case.channels,
        "image": case.name,
        "ours": ours.to_dict(),
        "reference": ref.to_dict(),
        "speedup": ref.median / ours.median,
    }


# --------------------------------------------------------------------------------- accuracy


def accuracy_rows(mode: Mode) -> dict[str, Any]:
    """Mean IoU and membrane F1 of ours and the reference, on the training slice and unseen slices."""
    from skimage.future import fit_segmenter, predict_segmenter

    from seg.model import train

    side = mode.accuracy_crop or 512
    per_model = []
    for first in mode.train_slices:
        image, truth = grey_isbi(side, first)
        scribbles = simulate(truth, seed=first)
        model = train(image, scribbles)
        classifier = fit_segmenter(scribbles, reference_features(image), reference_classifier())
        scores = {"ours": {}, "reference": {}}
        tests = [first] + [(first + k) % datasets.N_SLICES for k in range(1, mode.unseen_per_slice + 1)]
        for index in tests:
            test_image, test_truth = grey_isbi(side, index)
            predictions = {
                "ours": model.predict(test_image),
                "reference": predict_segmenter(reference_features(test_image), classifier),
            }
            for who, predicted in predictions.items():
                scores[who][index] = {
                    "mean_iou": common.mean_iou(predicted, test_truth, (MEMBRANE, CELL)),
                    "membrane_f1": common.f1_score(predicted, test_truth, MEMBRANE),
                }
        per_model.append(
            {
                "train_slice": first,
                "scribbled_fraction": float(np.count_nonzero(scribbles) / scribbles.size),
                "scores": scores,
            }
        )

    def average(who: str, seen: bool, metric: str) -> float:
        values = [s for m in per_model for i, s in m["scores"][who].items() if (i == m["train_slice"]) == seen]
        return float(np.mean([v[metric] for v in values]))

    summary = {}
    for who in ("ours", "reference"):
        summary[who] = {
            f"{part}_{metric}": average(who, part == "training", metric)
            for part in ("training", "unseen")
            for metric in ("mean_iou", "membrane_f1")
        }
    return {
        "side": side,
        "train_slices": list(mode.train_slices),
        "unseen_per_slice": mode.unseen_per_slice,
        "summary": summary,
        "per_model": per_model,
    }


# --------------------------------------------------------------------------------- memory, browser


def memory_rows(mode: Mode) -> dict[str, Any] | None:
    """Run bench/memory_session.py in a fresh process and return its JSON."""
    with tempfile.TemporaryDirectory(prefix="seg-bench-memory-") as tmp:
        out = Path(tmp) / "memory.json"
        command = [
            sys.executable,
            str(HERE / "memory_session.py"),
            "--sizes",
            *map(str, mode.memory_sizes),
            "--strokes",
            str(mode.memory_strokes),
            "--early",
            str(mode.memory_early),
            "--out",
            str(out),
        ]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=1200)
        if completed.returncode != 0:
            print(f"memory session failed (exit {completed.returncode}):\n{completed.stderr[-2000:]}", file=sys.stderr)
            return None
        return common.read_json(out)


def browser_rows(run_it: bool) -> dict[str, Any] | None:
    """Figures of bench/browser_latency.py: run it first when asked and possible, then read its JSON."""
    status = "not run"
    if run_it and BROWSER_SCRIPT.exists() and CHROMIUM.exists():
        try:
            completed = subprocess.run(
                [sys.executable, str(BROWSER_SCRIPT)], capture_output=True, text=True, timeout=600, cwd=REPO
            )
            status = "ran" if completed.returncode == 0 else f"failed (exit {completed.returncode})"
            if completed.returncode != 0:
                print(f"browser latency failed:\n{completed.stderr[-2000:]}", file=sys.stderr)
        except subprocess.TimeoutExpired:
            status = "timed out"
    elif run_it:
        status = (
            "unavailable (" + ("no bench/browser_latency.py" if not BROWSER_SCRIPT.exists() else f"no {CHROMIUM}") + ")"
        )
    data = common.read_json(BROWSER_JSON) if status in ("ran", "not run") else None
    if data is None:
        return {"status": status, "median_s": None}
    return {
        "status": status,
        "median_s": _find_median(data),
        "file": str(BROWSER_JSON.relative_to(REPO)),
        "file_time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(BROWSER_JSON.stat().st_mtime)),
        "data": data,
    }


def _find_median(data: Any) -> float | None:
    """The mouse-up-to-overlay median in seconds from browser.json, whatever its exact layout:
    the first number under a key containing "median" (milliseconds if the key says ms)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if "median" in str(key).lower() and isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value) / (1000.0 if "ms" in str(key).lower() else 1.0)
        for value in data.values():
            found = _find_median(value)
            if found is not None:
                return found
    if isinstance(data, list):
        for value in data:
            found = _find_median(value)
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------------- targets


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the product issue with the measured value and PASS / MISS / n/a."""
    rows = {(r["row"], r["size"], r["channels"]): r for r in results["speed"]}
    targets = []

    def add(name: str, value: float | None, shown: str, ok: bool | None) -> None:
        status = "n/a" if ok is None else ("PASS" if ok else "MISS")
        targets.append({"target": name, "value": value, "measured": shown, "status": status})

    def speed(row: str, channels: int) -> dict | None:
        return rows.get((row, 1024, channels))

    grey = speed("stroke update", 1)
    add(
        "stroke update 1024² grey <= 0.2 s",
        grey and grey["ours"]["median_s"],
        f"{grey['ours']['median_s']:.3f} s" if grey else "not measured",
        grey and grey["ours"]["median_s"] <= 0.2,
    )
    add(
        "stroke update 1024² grey >= 5x faster than reference",
        grey and grey["speedup"],
        f"{grey['speedup']:.1f}x" if grey else "not measured",
        grey and grey["speedup"] >= 5,
    )
    rgb = speed("stroke update", 3)
    add(
        "stroke update 1024² RGB <= 0.35 s",
        rgb and rgb["ours"]["median_s"],
        f"{rgb['ours']['median_s']:.3f} s" if rgb else "not measured",
        rgb and rgb["ours"]["median_s"] <= 0.35,
    )
    for channels, label in ((1, "grey"), (3, "RGB")):
        row = speed("displayed update", channels)
        add(
            f"displayed update 1024² {label} <= 0.3 s",
            row and row["ours"]["median_s"],
            f"{row['ours']['median_s']:.3f} s" if row else "not measured",
            row and row["ours"]["median_s"] <= 0.3,
        )
    browser = results.get("browser") or {}
    median = browser.get("median_s")
    add(
        "browser mouse-up to overlay (1 MP) <= 1.0 s",
        median,
        f"{median:.3f} s" if median is not None else "n/a",
        None if median is None else median <= 1.0,
    )
    for name in ("cold start", "cold start, public API"):
        for channels, label in ((1, "grey"), (3, "RGB")):
            row = speed(name, channels)
            add(
                f"{name} 1024² {label} >= 3x faster than reference",
                row and row["speedup"],
                f"{row['speedup']:.1f}x" if row else "not measured",
                row and row["speedup"] >= 3,
            )
    accuracy = results.get("accuracy")
    if accuracy:
        ours = accuracy["summary"]["ours"]["unseen_mean_iou"]
        ref = accuracy["summary"]["reference"]["unseen_mean_iou"]
        add(
            "accuracy unseen ISBI: our mean IoU >= reference - 0.005 (aim +0.03)",
            ours - ref,
            f"{ours:.3f} vs {ref:.3f} ({ours - ref:+.3f})",
            ours >= ref - 0.005,
        )
    memory = results.get("memory")
    limits = {1024: 600.0, 2048: 1200.0}
    for session in (memory or {}).get("sessions", []):
        if session["size"] in limits:
            limit = limits[session["size"]]
            mp = round(session["megapixels"])
            add(
                f"memory {mp} MP RGB session state <= {limit:.0f} MB (peak RSS rise)",
                session["state_peak_mb"],
                f"{session['state_peak_mb']:.0f} MB (process {session['alone_peak_mb']:.0f} MB)",
                session["state_peak_mb"] <= limit,
            )
    growth = (memory or {}).get("growth")
    if growth and growth["strokes"] >= 100:
        add(
            f"memory growth strokes {growth['early_stroke']}..{growth['strokes']} bounded (< 50 MB)",
            growth["growth_mb"],
            f"{growth['growth_mb']:+.1f} MB",
            growth["growth_mb"] < 50,
        )
    return targets


# --------------------------------------------------------------------------------- profile


def profile_stroke(case: Case, top: int = 25) -> dict[str, Any]:
    """cProfile of our stroke update and displayed update on ``case`` (functions by cumulative time)."""
    features = our_features(case.image)
    session = AppSession(case)
    out = {}
    for name, function in (
        ("stroke update", lambda w: our_fit_predict(case.image, case.plus_one, features, w)),
        ("displayed update", lambda w: session.stroke(case.plus_one, w)),
    ):
        profiler = cProfile.Profile()
        profiler.runcall(function, common.Stopwatch())
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
        out[name] = stream.getvalue()
    return out


# --------------------------------------------------------------------------------- printing


def _s(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _steps(timing: dict) -> str:
    return ", ".join(f"{k} {_s(v)}" for k, v in timing["steps_s"].items())


def render_report(results: dict[str, Any]) -> str:
    """The tables printed at the end and pasted into bench/README.md."""
    machine = results["machine"]
    lines = [
        f"## Benchmark ({results['mode']} mode), {results['started']}",
        "",
        f"Machine: {machine['cpu']}, {machine['usable_cores']} cores, {machine['memory_gb']} GB, "
        f"Python {machine['python']}, numpy {machine['versions']['numpy']}, scikit-learn "
        f"{machine['versions']['scikit-learn']}, scikit-image {machine['versions']['scikit-image']}, "
        f"numba {machine['versions']['numba']}.",
        f"Load average (1/5/15 min) at start {results['load_average']['start']}, "
        f"at end {results['load_average']['end']}; wall time {results['elapsed_s']:.0f} s.",
        "",
        "### Speed (median wall seconds; reference = scikit-image gallery recipe, same run)",
        "",
    ]
    header = [
        "row",
        "image",
        "ours s",
        "reference s",
        "speed-up",
        "CPU speed-up",
        "reps",
        "our steps (s)",
        "reference steps (s)",
    ]
    table = []
    for r in results["speed"]:
        extra = ""
        if "labels_equal_sklearn" in r:
            extra = " (labels == sklearn)" if r["labels_equal_sklearn"] else " (LABELS DIFFER FROM SKLEARN)"
        table.append(
            [
                r["row"] + extra,
                r["image"],
                _s(r["ours"]["median_s"]),
                _s(r["reference"]["median_s"]),
                f"{r['speedup']:.1f}x",
                f"{r['reference']['cpu_s'] / r['ours']['cpu_s']:.1f}x",
                f"{r['ours']['repeats']}/{r['reference']['repeats']}",
                _steps(r["ours"]),
                _steps(r["reference"]),
            ]
        )
    lines += [
        common.format_table(header, table, align="llrrrrrll"),
        "",
        "Speed-up = reference / ours median wall time; CPU speed-up = the same for process CPU time "
        "(all threads), steadier on a shared machine. reps = repetitions ours/reference.",
        "",
    ]

    accuracy = results.get("accuracy")
    if accuracy:
        a = accuracy["summary"]
        lines += [
            f"### Accuracy (ISBI 2012 {accuracy['side']}², trained on slices {accuracy['train_slices']}, "
            f"tested on each and the {accuracy['unseen_per_slice']} following slices)",
            "",
        ]
        table = [
            [
                who,
                f"{a[who]['training_mean_iou']:.3f}",
                f"{a[who]['training_membrane_f1']:.3f}",
                f"{a[who]['unseen_mean_iou']:.3f}",
                f"{a[who]['unseen_membrane_f1']:.3f}",
            ]
            for who in ("ours", "reference")
        ]
        lines += [
            common.format_table(["model", "train IoU", "train membrane F1", "unseen IoU", "unseen membrane F1"], table),
            "",
        ]

    memory = results.get("memory")
    if memory:
        lines += [
            "### Memory (RGB app sessions in one fresh process; MB = 2^20 bytes)",
            "",
            f"Baseline after imports and warm-up: {memory['baseline_rss_mb']:.0f} MB RSS.",
            "",
        ]
        table = [
            [
                f"{s['size']}² RGB ({s['megapixels']:.1f} MP)",
                f"{s['state_peak_mb']:.0f}",
                f"{s['held_mb']:.0f}",
                f"{s['state_mb']['total']:.0f}",
                f"{s['state_mb']['features']:.0f}",
                ", ".join(f"{k} {v['traced_peak_above_start_mb']:.0f}" for k, v in s.get("phases", {}).items()),
                f"{s['alone_peak_mb']:.0f}",
                f"{s['peak_mb']:.0f}",
            ]
            for s in memory["sessions"]
        ]
        lines += [
            common.format_table(
                [
                    "session",
                    "state peak",
                    "RSS held",
                    "state arrays",
                    "of which features",
                    "traced transient peak per phase",
                    "process alone",
                    "process peak",
                ],
                table,
                align="lrrrrlrr",
            ),
            "",
        ]
        g = memory.get("growth")
        if g:
            steps = ", ".join(f"{k} {v:.0f}" for k, v in g["stroke_ms_median"].items())
            lines += [
                f"Growth over {g['strokes']} strokes on the {g['session_size']}² session: RSS "
                f"{g['rss_early_mb']:.0f} MB after stroke {g['early_stroke']}, {g['rss_last_mb']:.0f} MB after "
                f"stroke {g['strokes']} ({g['growth_mb']:+.1f} MB). Median ms per stroke: {steps}.",
                "",
            ]

    browser = results.get("browser") or {}
    median = browser.get("median_s")
    lines += [
        "### Browser",
        "",
        f"Mouse-up to overlay visible, headless Chromium, 1 MP sample: "
        f"{'n/a' if median is None else f'{median:.3f} s'} ({browser.get('status', 'not run')}"
        f"{', file of ' + browser['file_time'] if browser.get('file_time') else ''}).",
        "",
    ]

    lines += ["### Targets", ""]
    table = [[t["target"], t["measured"], t["status"]] for t in results["targets"]]
    lines += [common.format_table(["target", "measured", "status"], table, align="lrl")]
    return "\n".join(lines)


# --------------------------------------------------------------------------------- main


def warm_up() -> None:
    """Load numba kernels, thread pools and lazily imported modules before anything is timed."""
    from seg.forest import warm_up as forest_warm_up

    forest_warm_up()
    case = make_case(128, 1)
    features = our_features(case.image)
    our_fit_predict(case.image, case.scribbles, features, common.Stopwatch())
    reference_fit_predict(case.scribbles, reference_features(case.image), common.Stopwatch())
    AppSession(case).stroke(case.plus_one, common.Stopwatch())
    reference_overlay_uri(case.truth)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Benchmark against the scikit-image gallery recipe.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="512² only, 1 repetition (for debugging)")
    group.add_argument("--tiny", action="store_true", help="128² crops, every code path in seconds (smoke test)")
    parser.add_argument("--repeats", type=int, help="most repetitions per row (default 5; quick 1)")
    parser.add_argument("--sizes", type=int, nargs="+", help="image sides to time (default 512 1024 2048)")
    parser.add_argument(
        "--browser",
        dest="browser",
        action="store_true",
        default=None,
        help="run bench/browser_latency.py (default: yes in full mode)",
    )
    parser.add_argument("--no-browser", dest="browser", action="store_false", help="skip the browser run")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocess")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy rows")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile our stroke update at 1024² (or the largest size run) and store it in the JSON",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="JSON output (default bench/results/latest.json; quick.json / tiny.json for --quick / --tiny)",
    )
    args = parser.parse_args(argv)

    mode = MODES["tiny" if args.tiny else "quick" if args.quick else "full"]
    sizes = tuple(args.sizes) if args.sizes else mode.sizes
    repeats = args.repeats or mode.repeats
    mode = Mode(**{**mode.__dict__, "sizes": sizes, "repeats": repeats})
    run_browser = mode.browser if args.browser is None else args.browser
    out = args.out or RESULTS / ("latest.json" if mode.name == "full" else f"{mode.name}.json")

    started = time.perf_counter()
    results: dict[str, Any] = {
        "mode": mode.name,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": common.machine_info(),
        "load_average": {"start": common.load_average()},
        "settings": {"sizes": list(sizes), "repeats": repeats, "budget_s": mode.budget_s},
        "speed": [],
    }
    print(f"benchmark ({mode.name}): load average {results['load_average']['start']}", flush=True)
    warm_up()
    for size in sizes:
        for channels in (1, 3):
            case = make_case(size, channels)
            for row in speed_rows(case, mode, guard=size <= 1024):
                results["speed"].append(row)
                print(
                    f"  {row['row']:<17} {row['image']:<11} ours {_s(row['ours']['median_s']):>7} s   reference "
                    f"{_s(row['reference']['median_s']):>7} s   {row['speedup']:5.1f}x   "
                    f"[{_steps(row['ours'])}]",
                    flush=True,
                )
            del case
    if not args.no_accuracy:
        print("  accuracy ...", flush=True)
        results["accuracy"] = accuracy_rows(mode)
    if not args.no_memory:
        print("  memory (subprocess) ...", flush=True)
        results["memory"] = memory_rows(mode)
    results["browser"] = browser_rows(run_browser)
    if args.profile:
        side = 1024 if 1024 in sizes else max(sizes)
        results["profile"] = {"case": f"{side}² grey", **profile_stroke(make_case(side, 1))}
    results["load_average"]["end"] = common.load_average()
    results["elapsed_s"] = time.perf_counter() - started
    results["targets"] = evaluate_targets(results)
    report = render_report(results)
    results["report_markdown"] = report
    common.write_json(out, results)
    print()
    print(report)
    if args.profile:
        for name in ("stroke update", "displayed update"):
            print(f"\n### cProfile: {name}, {results['profile']['case']}\n")
            print(results["profile"][name])
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
