"""Memory of app sessions, measured in a fresh process (run by ``bench/run.py``).

Builds the state the app keeps per browser session — image, cached features, rasterised labels,
model, last prediction (display and full-resolution labels), display picture and encoded
background — through the app's own functions (``seg.ui.pipeline`` / ``seg.ui.views``, minus
Streamlit), for one RGB image per ``--sizes`` entry, all held at once. Then simulates
``--strokes`` strokes on the first session, one at a time (rasterise all strokes, retrain,
predict the displayed pixels, render the background), recording the resident set size after
each stroke: memory must level off, not grow with the number of strokes.

    python bench/memory_session.py --sizes 1024 2048 --strokes 200 --out memory.json

Peaks are Linux ``VmHWM``, restarted before each build phase (image, features, first stroke,
full-resolution labels) through ``/proc/self/clear_refs``; a session's peak is the highest phase
peak, and its own share ("state peak") that minus the RSS before it was built. Each phase also
records the peak of traced numpy allocations above its start (``tracemalloc``), which shows
where transient copies come from.
Streamlit itself (~100 MB) is not imported: figures are the engine's and the session's share.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import datasets  # noqa: E402

OPACITY = 0.45  # the app's default overlay opacity (seg.ui.page)
STROKE_WIDTH = 5.0  # image pixels
STROKE_POINTS = 30


def _app_defaults():
    """Feature, forest and normalisation settings the app starts with."""
    from seg.features import DEFAULT_PRESET, PRESETS
    from seg.forest import ForestSettings
    from seg.images import Normalization

    return PRESETS[DEFAULT_PRESET], ForestSettings(), Normalization()


def rgb_image(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size, size, 3) uint8 RGB ISBI mosaic and its truth; sizes below 512 are crops."""
    if size >= 512:
        return datasets.an_rgb_image(n=size // 512)
    image, truth = datasets.an_rgb_image(n=1)
    return np.ascontiguousarray(image[:size, :size]), np.ascontiguousarray(truth[:size, :size])


def make_strokes(truth: np.ndarray, count: int, seed: int) -> list:
    """``count`` short wandering freehand strokes, classes taking turns, each starting on a pixel of
    its class (memory, not accuracy, is measured: strokes may wander across a boundary)."""
    from seg.strokes import Stroke

    rng = np.random.default_rng(seed)
    height, width = truth.shape
    classes = np.unique(truth[truth > 0])
    pixels = {int(c): np.argwhere(truth == c) for c in classes}
    strokes = []
    for index in range(count):
        label = int(classes[index % len(classes)])
        row, col = pixels[label][rng.integers(len(pixels[label]))]
        steps = rng.normal(0.0, 3.0, size=(STROKE_POINTS, 2)).cumsum(axis=0)
        points = np.clip((col + 0.5, row + 0.5) + steps, 0, (width - 1, height - 1))
        strokes.append(Stroke("path", label, tuple(map(tuple, points.tolist())), STROKE_WIDTH))
    return strokes


class Session:
    """One browser session's state dict, driven like the app drives it after each stroke."""

    def __init__(self, image: np.ndarray, name: str) -> None:
        from seg.images import as_frames
        from seg.render import PALETTE
        from seg.ui import pipeline as P
        from seg.ui import state as S
        from seg.ui.navigation import fit_view

        self.state: dict = {}
        S.init_state(self.state, default_classes=[("membrane", PALETTE[0]), ("cell", PALETTE[1])])
        frames = as_frames(image)
        # The app digests the uploaded file's bytes; the name stands in for them here.
        self.record = S.ImageRecord(name=name, digest=S.digest_bytes(name.encode()), frames=frames)
        S.set_image(self.state, self.record)
        self.scene = P.Scene(self.record, 0, fit_view(self.record))
        self.settings = P.Settings(*_app_defaults())

    def stroke(self, strokes: list) -> dict:
        """Rasterise, retrain, predict and render for the strokes so far; returns ms per step."""
        from seg.ui import pipeline as P
        from seg.ui import state as S
        from seg.ui import views as V

        state = self.state
        start = time.perf_counter()
        drawn = P.Strokes({0: tuple(strokes)})
        labels = P.label_images(state, self.record, drawn)
        raster_ms = (time.perf_counter() - start) * 1000
        done = P.refresh(state, self.scene, drawn, labels, state[S.CLASSES], self.settings)
        _, _, render_ms = V.background_bytes(
            state, self.scene, state[S.PREDICTION], V.Look(V.SEGMENTATION, OPACITY), state[S.CLASSES]
        )
        return {
            "rasterize": raster_ms,
            "features": done.features_ms,
            "train": done.train_ms,
            "predict": done.predict_ms,
            "render": render_ms,
            "total": (time.perf_counter() - start) * 1000,
        }

    def prepare_features(self) -> None:
        """Compute the features before the first stroke, as the app does after showing a new image."""
        from seg.ui import pipeline as P

        P.features_for(self.state, self.record, [0], self.settings.features, self.settings.normalization)

    def hold_full_prediction(self) -> None:
        """Compute the full-resolution labels too (measurements and downloads keep them)."""
        from seg.ui import state as S

        _ = self.state[S.PREDICTION].labels

    def state_mb(self) -> dict[str, float]:
        """MB of the arrays and bytes the state holds, per part."""
        from seg.ui import state as S

        s = self.state
        prediction = s[S.PREDICTION]
        parts = {
            "image": self.record.frames.nbytes,
            "features": sum(a.nbytes for a in s[S.FEATURES].values()),
            "labels": sum(v[1].nbytes for v in s[S.LABELS].values()),
            "model": sum(a.nbytes for a in s[S.MODEL].forest.to_arrays().values()) if s[S.MODEL] else 0,
            "prediction": 0
            if prediction is None
            else prediction.display_labels.nbytes
            + sum(
                a.nbytes
                for a in prediction._memo.values()
                if isinstance(a, np.ndarray) and a is not prediction.display_labels
            ),
            "display": sum(a.nbytes for a in s[S.DISPLAY].values()),
            "backgrounds": sum(len(b) for b in s[S.BACKGROUNDS].values()),
        }
        parts = {k: v / 2**20 for k, v in parts.items()}
        parts["total"] = sum(parts.values())
        return parts


@contextlib.contextmanager
def _phase(phases: dict, name: str) -> Iterator[None]:
    """Measure one phase of building a session: RSS after it, its RSS peak (absolute, and above
    the RSS at its start) and the peak of traced (numpy + Python) allocations above its start."""
    tracemalloc.reset_peak()
    start_traced, _ = tracemalloc.get_traced_memory()
    start_rss = common.rss_mb()
    common.reset_peak_rss()
    yield
    _, traced_peak = tracemalloc.get_traced_memory()
    peak = common.peak_rss_mb()
    phases[name] = {
        "rss_after_mb": common.rss_mb(),
        "peak_mb": peak,
        "peak_above_start_mb": peak - start_rss,
        "traced_peak_above_start_mb": (traced_peak - start_traced) / 2**20,
    }


def warm_up() -> None:
    """Load every numba kernel (and the libraries) so the baseline holds the code, not the data."""
    image, truth = rgb_image(64)
    session = Session(image, "warm-up")
    session.stroke(make_strokes(truth, 6, seed=99))
    session.hold_full_prediction()


def build_session(size: int, initial_strokes: int) -> tuple[Session, np.ndarray, list, dict]:
    """One session brought to the state after its first stroke; returns its measurements too."""
    image, truth = rgb_image(size)
    strokes = make_strokes(truth, initial_strokes, seed=size)  # the user's doing, not the app's memory
    gc.collect()
    before = common.rss_mb()
    tracemalloc.start()
    phases: dict = {}
    with _phase(phases, "image"):
        session = Session(image, f"rgb-{size}")
    with _phase(phases, "features"):
        session.prepare_features()
    with _phase(phases, "first stroke"):
        steps = session.stroke(strokes)
    with _phase(phases, "full-resolution labels"):
        session.hold_full_prediction()
    tracemalloc.stop()
    del image
    gc.collect()
    after = common.rss_mb()
    peak = max(phase["peak_mb"] for phase in phases.values())
    record = {
        "size": size,
        "channels": 3,
        "megapixels": size * size / 1e6,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "held_mb": after - before,
        "peak_mb": peak,
        # What building and holding this session added to the process at its peak.
        "state_peak_mb": peak - before,
        "state_mb": session.state_mb(),
        "phases": phases,
        "first_stroke_ms": steps,
    }
    return session, truth, strokes, record


def simulate_strokes(session: Session, truth: np.ndarray, strokes: list, count: int, early: int) -> dict:
    """Add ``count`` strokes one by one; RSS after each. Growth = RSS after the last - after ``early``."""
    extra = make_strokes(truth, count, seed=12345)
    trace, per_stroke = [], []
    common.reset_peak_rss()
    for index in range(count):
        strokes = strokes + [extra[index]]
        per_stroke.append(session.stroke(strokes))
        trace.append(common.rss_mb())
    early = min(early, len(trace)) - 1
    return {
        "session_size": session.record.shape[1],
        "strokes": count,
        "early_stroke": early + 1,
        "rss_early_mb": trace[early] if trace else None,
        "rss_last_mb": trace[-1] if trace else None,
        "growth_mb": trace[-1] - trace[early] if trace else None,
        "peak_mb": common.peak_rss_mb(),
        "rss_trace_mb": trace,
        "stroke_ms_median": {k: float(np.median([s[k] for s in per_stroke])) for k in per_stroke[0]}
        if per_stroke
        else {},
        "state_mb_last": session.state_mb(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048], help="RGB image sides")
    parser.add_argument("--strokes", type=int, default=200, help="strokes simulated on the first session")
    parser.add_argument("--early", type=int, default=20, help="stroke after which growth is measured")
    parser.add_argument("--initial-strokes", type=int, default=12, help="strokes each session starts with")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)

    warm_up()
    gc.collect()
    baseline = common.rss_mb()
    result = {"baseline_rss_mb": baseline, "peak_rss_resettable": common.reset_peak_rss(), "sessions": []}
    sessions = []
    for size in args.sizes:
        session, truth, strokes, record = build_session(size, args.initial_strokes)
        # A process holding only this session would peak at about this.
        record["alone_peak_mb"] = baseline + record["state_peak_mb"]
        sessions.append((session, truth, strokes))
        result["sessions"].append(record)
    result["all_sessions_rss_mb"] = common.rss_mb()
    result["all_sessions_peak_mb"] = max(s["peak_mb"] for s in result["sessions"])
    session, truth, strokes = sessions[0]
    result["growth"] = simulate_strokes(session, truth, strokes, args.strokes, args.early)
    if args.out:
        common.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
