"""numba's set-up (seg.jit): parallel kernels called from several threads at once, as several
Streamlit sessions do, give the single-thread results on every threading layer."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
THREADS = 4
ROUNDS = 3


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (96, 96) grey image of two textures and scribbles of both."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:96, :96]
    inside = (rows - 48) ** 2 + (cols - 48) ** 2 < 30**2
    image = np.where(inside, 0.7, 0.3) + rng.normal(0, 0.08, (96, 96))
    labels = np.zeros((96, 96), np.uint8)
    labels[44:52, 30:66] = 2
    labels[4:10, 4:90] = 1
    return image.astype(np.float32), labels


def concurrent_results_match() -> str:
    """Run the forest's parallel predictor and the feature kernels from THREADS threads at once;
    raise AssertionError unless every result equals the single-thread one. Returns the layer."""
    import seg
    from seg import jit

    image, labels = _scene()
    model = seg.train(image, labels, class_names=["background", "disc"])
    features = model.features(image)
    expected_proba = model.predict_proba_features(features)
    expected_labels = model.predict_features(features)
    # Distinct images per thread, so that equal results cannot come from one shared buffer.
    images = [np.roll(image, shift, axis=1) for shift in range(THREADS)]
    expected_features = [model.features(im) for im in images]

    start = threading.Barrier(THREADS)
    failures: list[str] = []

    def work(index: int) -> None:
        try:
            start.wait()
            for _ in range(ROUNDS):
                mine = model.features(images[index])
                proba = model.predict_proba_features(features)
                found = model.predict_features(features)
                if not np.array_equal(mine, expected_features[index]):
                    failures.append(f"thread {index}: features differ")
                if not np.array_equal(proba, expected_proba) or not np.array_equal(found, expected_labels):
                    failures.append(f"thread {index}: prediction differs")
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            failures.append(f"thread {index}: {exc!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert failures == []
    return jit.threading_layer()


def test_parallel_kernels_from_several_threads_equal_single_thread_results():
    layer = concurrent_results_match()
    assert layer in {"tbb", "omp", "workqueue"}


def test_workqueue_layer_is_serialised_instead_of_aborting_the_process():
    """The fallback layer of a host without TBB or OpenMP aborts the process on concurrent calls
    unless seg.jit serialises them: run the same check on that layer in a fresh interpreter."""
    code = "from tests.unit.test_jit import concurrent_results_match as check; print(check())"
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "workqueue"
