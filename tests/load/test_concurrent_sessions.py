"""Many users on one server: each gets its own, correct segmentation, and nobody waits long.

Real browser sessions (headless Chromium, one context each = one Streamlit session each) on one
``streamlit run`` server bound to 127.0.0.1. Each user uploads its own synthetic image (a
distinct bright shape, see ``tests/load/helpers.py``) and draws 20 strokes. Latency = mouse-up
-> the user's status marker shows the next update (what the user waits for).

On 2 cores Chromium itself needs about as much CPU per stroke as the server (it renders every
user's page), so users draw at a human pace: a stroke every ~5 s each (looking at the result in
between), i.e. 8 users make ~1.6 strokes per second together.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from tests.load import helpers as L

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

USERS = 8
PERIOD_S = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("load") / "server.log"
    with L.serve(log) as server:
        yield server
        print(f"server log tail:\n{server.log(30)}")


@pytest.fixture(scope="module")
def single_user(server) -> L.UserResult:
    """One user alone on the server (it also warms up the server: kernels, imports)."""
    scene = L.scenes(USERS)[-1]

    async def alone():
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await L.launch(playwright)
            try:
                return await L.user_session(browser, server.url, scene)
            finally:
                await browser.close()

    result = L.run(alone())
    assert result.errors == [], result.errors
    assert len(result.latencies_ms) == 15, result.latencies_ms
    return result


def _assert_own_segmentation(result: L.UserResult, everyone: list[L.Scene]) -> None:
    """The user's mask matches its own scene (and clearly no other user's)."""
    scene, mask = result.scene, result.mask
    assert mask is not None and mask.shape == scene.truth.shape, scene.name
    assert set(np.unique(mask)) <= {1, 2}, (scene.name, np.unique(mask))
    own = L.agreement(mask, scene.truth)
    assert own >= 0.9, (scene.name, own)
    for label in (L.BACKGROUND, L.SHAPE):
        under = mask[L.stroke_pixels(scene, label)]
        assert (under == label).mean() >= 0.99, (scene.name, label, (under == label).mean())
    others = [L.agreement(mask, s.truth) for s in everyone if s.name != scene.name]
    assert own >= max(others) + 0.1, (scene.name, own, others)


def test_eight_users_at_once_each_get_their_own_segmentation_quickly(server, single_user):
    everyone = L.scenes(USERS)
    _assert_own_segmentation(single_user, everyone)

    async def together():
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await L.launch(playwright)
            try:
                return await asyncio.gather(
                    *[
                        L.user_session(
                            browser, server.url, scene, period_s=PERIOD_S, seed=i, start_delay_s=PERIOD_S / USERS * i
                        )
                        for i, scene in enumerate(everyone)
                    ]
                )
            finally:
                await browser.close()

    results = L.run(together())
    for result in results:
        assert result.errors == [], (result.scene.name, result.errors)
        assert len(result.latencies_ms) == 15, (result.scene.name, result.latencies_ms)
        _assert_own_segmentation(result, everyone)
    assert L.server_problems(server) == []

    alone = L.summary(single_user.latencies_ms)
    loaded = L.summary([ms for r in results for ms in r.latencies_ms])
    print(f"update latency, 1 user: {alone}; {USERS} users: {loaded}")
    # 1.2x in the last run of bench/load.py, with the 8 Chromium renderers and the server on the
    # same 2 cores. Sessions serialised behind each other (e.g. by a GIL-holding garbage
    # collection after every run, see seg/ui/lifetime.py) measured 2.8-3.3x.
    assert loaded["median_ms"] <= 3 * alone["median_ms"], (alone, loaded)


def test_heavy_work_in_two_sessions_does_not_freeze_a_light_one(server, single_user):
    """One user opens a 4-megapixel image and keeps drawing on it, another keeps segmenting a
    batch of 100 images; meanwhile a third user's strokes still update quickly."""
    result = L.run(L.heavy_neighbours(server.url))
    assert result.errors == [], result.errors
    batch = f"{L.HEAVY_BATCH} of {L.HEAVY_BATCH} images done"
    assert result.batch_summary.startswith(batch), result.batch_summary
    assert "train" in result.big_status and "predict" in result.big_status, result.big_status
    assert result.big_strokes >= 3 and result.batch_runs >= 1, (result.big_strokes, result.batch_runs)
    assert len(result.light.latencies_ms) == 8
    assert result.overlapped >= 6, f"only {result.overlapped} light strokes overlapped the heavy work"
    assert L.server_problems(server) == []

    alone = L.summary(single_user.latencies_ms)
    beside = L.summary(result.light.latencies_ms)
    print(f"update latency, 1 user: {alone}; beside heavy users: {beside}; {result.seconds}")
    assert beside["median_ms"] <= 3 * alone["median_ms"], (alone, beside)  # 1.8x in bench/load.py


# --------------------------------------------------------------------------- the GIL


class _Ticker(threading.Thread):
    """A thread that wakes every 2 ms: the longest gap between wake-ups is how long it was held
    up, e.g. by another thread holding the GIL (Streamlit runs each session in its own thread)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.longest = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        last = time.perf_counter()
        while not self._stop_event.is_set():
            time.sleep(0.002)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.longest


def _held_up(call) -> tuple[float, float]:
    """(seconds ``call`` took, longest a concurrent Python thread was held up meanwhile)."""
    ticker = _Ticker()
    ticker.start()
    start = time.perf_counter()
    call()
    took = time.perf_counter() - start
    return took, ticker.stop()


def test_heavy_engine_calls_let_other_sessions_threads_run():
    """Features, training, prediction and a batch item on a 4-megapixel image release the GIL:
    a concurrent Python thread is never held up for long (one holding the GIL throughout
    would be held up for the whole call)."""
    from seg import batch
    from seg.features import compute_features
    from seg.images import normalize, read_image
    from seg.model import train

    image = L.big_image(2048)
    data = L.png_bytes(image)
    frame = normalize(read_image(data)[0])
    labels = np.zeros(image.shape, np.uint8)
    labels[1900:1930, 100:1900] = 1
    labels[600:630, 500:750] = 2
    features = compute_features(frame[:64, :64])  # compiles/loads the kernels outside the timing
    steps = {}
    steps["features"] = _held_up(lambda: steps.__setitem__("f", compute_features(frame)))
    features = steps.pop("f")
    steps["train"] = _held_up(lambda: steps.__setitem__("m", train(frame, labels, features=[features])))
    model = steps.pop("m")
    steps["predict"] = _held_up(lambda: model.predict_features(features))
    steps["probabilities"] = _held_up(lambda: model.predict_proba_features(features))
    steps["batch item"] = _held_up(lambda: batch.apply_source(model, data, "big"))
    print({name: (round(took, 2), round(held, 3)) for name, (took, held) in steps.items()})
    for name, (took, held) in steps.items():
        assert held < 1.0 and held < 0.5 * max(took, 0.2), (name, took, held)
