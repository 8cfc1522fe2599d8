"""The benchmark's building blocks, its one command on tiny crops, and the fast-path guard.

The guard: labels from our stroke-update path (seg.model.train on cached features, then the
compiled forest's labels-only predictor) must equal the straightforward path — plain
scikit-learn ``RandomForestClassifier`` fit and predict on the same pixels with the same forest
settings. A speed-up that changes the segmentation would be worthless.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import run  # noqa: E402

# --------------------------------------------------------------------------------- fast-path guard


def _plain_sklearn_labels(features: np.ndarray, labels: np.ndarray, settings) -> np.ndarray:
    """Straightforward path, written out: the documented meaning of every ForestSettings field."""
    from sklearn.ensemble import RandomForestClassifier

    index = np.flatnonzero(labels)
    per_tree = settings.tree_samples(len(index))
    classifier = RandomForestClassifier(
        n_estimators=settings.n_estimators,
        max_depth=settings.max_depth,
        max_samples=None if per_tree >= len(index) else per_tree,
        min_samples_leaf=settings.min_samples_leaf,
        class_weight=settings.class_weight,
        random_state=settings.random_state,
        bootstrap=True,
        n_jobs=1,
    )
    x = features.reshape(-1, features.shape[-1])
    classifier.fit(x[index], labels.reshape(-1)[index])
    return classifier.predict(x).reshape(labels.shape)


@pytest.mark.parametrize("channels", [1, 3])
def test_stroke_update_labels_equal_plain_sklearn(channels):
    image, truth = run.grey_isbi(160) if channels == 1 else run.rgb_isbi(160)
    scribbles = run.one_more_stroke(truth, run.simulate(truth))
    features = run.our_features(image)

    model, labels = run.our_fit_predict(image, scribbles, features, common.Stopwatch())

    expected = _plain_sklearn_labels(features, scribbles, model.forest_settings)
    assert labels.shape == truth.shape
    assert set(np.unique(labels)) <= {1, 2}
    np.testing.assert_array_equal(labels, expected)
    # The helper run.py uses for its "labels == sklearn" column agrees as well.
    np.testing.assert_array_equal(run.sklearn_labels(scribbles, features, model.forest_settings), expected)


# --------------------------------------------------------------------------------- data helpers


def test_one_more_stroke_adds_a_few_membrane_pixels_only():
    _, truth = run.grey_isbi(256)
    scribbles = run.simulate(truth)
    plus = run.one_more_stroke(truth, scribbles)

    added = plus != scribbles
    assert added.any()
    assert np.all(scribbles[added] == 0)  # never overwrites a scribble
    assert np.all(plus[added] == truth[added])  # follows the ground truth
    assert np.count_nonzero(plus) / plus.size < 0.02  # still well under 2 % of the pixels
    np.testing.assert_array_equal(plus, run.one_more_stroke(truth, scribbles))  # deterministic


def test_reference_overlay_is_a_png_data_uri_of_full_size():
    import base64
    import io

    from PIL import Image

    labels = np.ones((40, 60), np.uint8)
    labels[:, 30:] = 2
    uri = run.reference_overlay_uri(labels)
    assert uri.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert picture.size == (60, 40) and picture.mode == "RGBA"


# --------------------------------------------------------------------------------- common


def test_measure_stops_on_budget_but_keeps_min_repeats():
    calls = []

    def slow(watch):
        with watch("step"):
            calls.append(1)
        return len(calls)

    timing, result = common.measure(slow, repeats=5, budget_s=0.0, min_repeats=2)
    assert timing.repeats == 2 and result == 2
    assert list(timing.step_medians()) == ["step"]
    timing, _ = common.measure(slow, repeats=3)
    assert timing.repeats == 3 and timing.median >= 0 and timing.cpu >= 0


def test_measure_pair_alternates_ours_and_reference():
    order = []
    ours, ours_result, ref, ref_result = common.measure_pair(
        lambda w: order.append("ours") or "o", lambda w: order.append("ref") or "r", repeats=3
    )
    assert order == ["ours", "ref"] * 3
    assert (ours.repeats, ref.repeats, ours_result, ref_result) == (3, 3, "o", "r")


def test_iou_and_f1_on_a_known_case():
    truth = np.array([[1, 1, 2, 2]])
    predicted = np.array([[1, 2, 2, 2]])
    # class 1: IoU 1/2; class 2: IoU 2/3
    assert common.mean_iou(predicted, truth, (1, 2)) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert common.f1_score(predicted, truth, 1) == pytest.approx(2 * 1 / (1 + 2))


def test_json_round_trip_of_numpy_values(tmp_path):
    path = tmp_path / "sub" / "x.json"
    common.write_json(path, {"a": np.float32(1.5), "b": np.arange(3), "c": (1, np.int64(2)), "d": float("nan")})
    assert common.read_json(path) == {"a": 1.5, "b": [0, 1, 2], "c": [1, 2], "d": None}
    assert common.read_json(tmp_path / "missing.json") is None


def test_table_has_header_rule_and_rows():
    text = common.format_table(["row", "s"], [["stroke", "0.100"], ["cold", "1.0"]])
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| row") and set(lines[1]) <= set("|-:")
    assert "stroke" in lines[2] and "0.100" in lines[2]


def test_memory_readings_are_plausible():
    assert 10 < common.rss_mb() <= common.peak_rss_mb() + 1
    assert common.machine_info()["cores"] >= 1


# --------------------------------------------------------------------------------- targets


def _speed(row, channels, ours, speedup):
    return {"row": row, "size": 1024, "channels": channels, "ours": {"median_s": ours}, "speedup": speedup}


def test_targets_pass_miss_and_not_available():
    results = {
        "speed": [
            _speed("stroke update", 1, 0.15, 6.0),
            _speed("stroke update", 3, 0.5, 9.0),
            _speed("displayed update", 1, 0.25, 4.0),
            _speed("cold start", 1, 1.0, 2.0),
            _speed("cold start, public API", 1, 0.4, 3.2),
        ],
        "accuracy": {"summary": {"ours": {"unseen_mean_iou": 0.70}, "reference": {"unseen_mean_iou": 0.702}}},
        "memory": {"sessions": [{"size": 1024, "megapixels": 1.05, "state_peak_mb": 550.0, "alone_peak_mb": 870.0}]},
        "browser": {"status": "not run", "median_s": None},
    }
    status = {t["target"]: t["status"] for t in run.evaluate_targets(results)}
    assert status["stroke update 1024² grey <= 0.2 s"] == "PASS"
    assert status["stroke update 1024² grey >= 5x faster than reference"] == "PASS"
    assert status["stroke update 1024² RGB <= 0.35 s"] == "MISS"
    assert status["displayed update 1024² grey <= 0.3 s"] == "PASS"
    assert status["displayed update 1024² RGB <= 0.3 s"] == "n/a"
    assert status["cold start 1024² grey >= 3x faster than reference"] == "MISS"
    assert status["cold start, public API 1024² grey >= 3x faster than reference"] == "PASS"
    assert status["cold start, public API 1024² RGB >= 3x faster than reference"] == "n/a"
    assert status["browser mouse-up to overlay (1 MP) <= 1.0 s"] == "n/a"
    assert status["accuracy unseen ISBI: our mean IoU >= reference - 0.005 (aim +0.03)"] == "PASS"
    assert status["memory 1 MP RGB session state <= 600 MB (peak RSS rise)"] == "PASS"


def test_browser_median_is_found_in_any_layout():
    assert run._find_median({"median_s": 0.4}) == 0.4
    assert run._find_median({"runs": [{"x": 1}], "summary": {"median_ms": 420}}) == pytest.approx(0.42)
    assert run._find_median({"nothing": 1}) is None


# --------------------------------------------------------------------------------- the one command


@pytest.mark.slow
def test_run_tiny_writes_every_row(tmp_path):
    out = tmp_path / "tiny.json"
    completed = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--tiny", "--no-browser", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "### Targets" in completed.stdout
    data = json.loads(out.read_text())

    rows = {(r["row"], r["channels"]) for r in data["speed"]}
    names = ("cold start", "cold start, public API", "stroke update", "displayed update")
    assert rows == {(name, c) for name in names for c in (1, 3)}
    for row in data["speed"]:
        assert row["ours"]["median_s"] > 0 and row["reference"]["median_s"] > 0
        assert row["speedup"] == pytest.approx(row["reference"]["median_s"] / row["ours"]["median_s"])
        if row["row"] == "stroke update":
            assert row["labels_equal_sklearn"] is True
    summary = data["accuracy"]["summary"]
    for who in ("ours", "reference"):
        assert 0 < summary[who]["unseen_mean_iou"] <= 1 and 0 < summary[who]["training_membrane_f1"] <= 1
    memory = data["memory"]
    assert [s["size"] for s in memory["sessions"]] == [128, 256]
    assert memory["sessions"][1]["state_mb"]["features"] > 0
    assert len(memory["growth"]["rss_trace_mb"]) == 6
    # Not run here; figures of an earlier bench/browser_latency.py run are shown if its JSON exists.
    assert data["browser"]["status"] == "not run"
    assert data["load_average"]["start"] and data["targets"]
    assert data["report_markdown"].startswith("## Benchmark (tiny mode)")
