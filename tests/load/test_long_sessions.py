"""Long sessions and many sessions: memory stays bounded and is given back.

* 500 strokes in one session, one rerun per stroke (strokes injected the way the canvas reports
  them, through Streamlit's AppTest, in a fresh Python process so that its memory is the
  session's): the session's own data stays flat (caches bounded), and dropping the session
  gives the memory back.
* 50 real browser sessions opened and closed on one server: the server's resident memory
  returns to within 10 % of its level before.

Streamlit keeps a closed tab's session (its ``st.session_state``) for
``server.disconnectedSessionTTL`` seconds (default 120) so that a reconnecting tab can resume
it, and drops expired sessions the next time a session disconnects. The browser test sets the
TTL to 2 s to finish quickly; memory is then measured after one more session has been opened
and closed (which is what drops the expired ones). The server is started as a host would start
it, with no allocator variables: the app itself runs one garbage collection after a session
disconnects and tunes glibc's malloc so that freed arrays leave the process
(``seg/ui/lifetime.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from seg.ui import config
from tests.load import helpers as L

pytestmark = pytest.mark.slow

MB = 2**20


def test_five_hundred_strokes_keep_the_session_bounded_and_give_memory_back(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(L.H.REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.load.helpers", "long-session", "500"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    checkpoints = record["checkpoints"]
    print(json.dumps(record, indent=1))
    assert [c["strokes"] for c in checkpoints] == [100, 200, 300, 400, 500]
    for checkpoint in checkpoints:
        assert checkpoint["updates"] == checkpoint["strokes"]  # every stroke was an update
        assert checkpoint["model"]  # ... that retrained the model
        assert checkpoint["backgrounds"] <= config.MAX_CACHED_BACKGROUNDS
        assert checkpoint["features"] == 1  # one image, one frame
    # The session's arrays and bytes do not grow with the strokes: only the strokes themselves.
    growth = checkpoints[-1]["footprint"] - checkpoints[0]["footprint"]
    assert growth < 1 * MB, [c["footprint"] for c in checkpoints]
    # Dropping the session gives the memory back.
    before, after = record["rss_before"], record["rss_after"]
    assert after <= 1.1 * before, (before / MB, after / MB)


def test_fifty_sessions_opened_and_closed_give_their_memory_back(tmp_path):
    ttl = 2
    rng = np.random.default_rng(3)
    # Every fifth session opens its own image: an upload and a second feature stack to free.
    uploads = {
        i: L.png_bytes(np.clip(rng.normal(90, 30, (512, 512)), 0, 255).astype(np.uint8)) for i in range(0, 50, 5)
    }

    async def scenario(url: str, pid: int) -> dict:
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await L.launch(playwright)
            # Tabs of one browser window: each tab is its own Streamlit session; they share the
            # HTTP cache, so 50 page loads cost the CPU of few.
            context = await browser.new_context(viewport=L.VIEWPORT)
            context.set_default_timeout(L.TIMEOUT_MS)

            async def visit(upload: bytes | None = None) -> list[str]:
                page = await context.new_page()
                try:
                    await page.goto(url, timeout=L.TIMEOUT_MS)
                    await L.wait_for_update(page, 1)  # the first run has prepared the features
                    if upload is not None:
                        await L.upload_image(page, "own.png", upload, canvas_side=760)
                    return await L.error_texts(page)
                finally:
                    await page.close()

            async def expire_closed_sessions() -> None:
                for _ in range(2):
                    await asyncio.sleep(ttl + 1)
                    await visit()  # its disconnect drops the sessions whose TTL has passed

            try:
                await visit(uploads[0])
                await visit()
                await expire_closed_sessions()
                before = peak = L.rss_bytes(pid)

                async def watch_peak() -> None:
                    nonlocal peak
                    while True:
                        peak = max(peak, L.rss_bytes(pid))
                        await asyncio.sleep(0.25)

                watcher = asyncio.create_task(watch_peak())
                errors = []
                for start in range(0, 50, 5):
                    batch = await asyncio.gather(*[visit(uploads.get(i)) for i in range(start, start + 5)])
                    errors += [e for page_errors in batch for e in page_errors]
                watcher.cancel()
                await expire_closed_sessions()
                deadline = time.monotonic() + 30
                after = L.rss_bytes(pid)
                while after > 1.1 * before and time.monotonic() < deadline:
                    await asyncio.sleep(1)
                    after = L.rss_bytes(pid)
            finally:
                await browser.close()
        return {"before": before, "peak": peak, "after": after, "errors": errors}

    with L.serve(tmp_path / "server.log", server_disconnectedSessionTTL=ttl) as server:
        result = L.run(scenario(server.url, server.process.pid))
        problems = L.server_problems(server)
    print({k: (v / MB if isinstance(v, int) else v) for k, v in result.items()})
    assert result["errors"] == []
    assert problems == []
    # The sessions did hold memory while they existed (a few at a time: closed ones expire
    # after 2 s) ...
    assert result["peak"] > result["before"] + 30 * MB, (result["before"] / MB, result["peak"] / MB)
    # ... and it was given back once they were closed.
    assert result["after"] <= 1.1 * result["before"], (result["before"] / MB, result["after"] / MB)


def test_closing_a_tab_gives_its_feature_stacks_back_at_once(tmp_path):
    """Streamlit keeps a closed tab's session for ``server.disconnectedSessionTTL`` (120 s, the
    default here) so that a reconnecting tab can resume; the session's feature stacks, prediction
    and pictures (most of its memory) are released the moment it disconnects."""
    scene = L.scenes(1, side=1024)[0]  # 1 megapixel: ~160 MB of features, and more

    async def scenario(url: str, pid: int) -> dict:
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await L.launch(playwright)
            try:
                warm = await browser.new_context(viewport=L.VIEWPORT)  # server warmed up, stays open
                await L.open_app(await warm.new_page(), url)
                before = L.rss_bytes(pid)
                context = await browser.new_context(viewport=L.VIEWPORT)
                context.set_default_timeout(L.TIMEOUT_MS)
                page = await context.new_page()
                await L.open_app(page, url)
                await L.upload_image(page, scene.name, scene.png(), canvas_side=760)
                drawn = await L.draw_scene(page, scene, last=6)  # both classes: trained, predicted
                errors = drawn.errors + await L.error_texts(page)
                held = L.rss_bytes(pid)
                await context.close()
                deadline = time.monotonic() + 20
                after = L.rss_bytes(pid)
                while after > before + 0.2 * (held - before) and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    after = L.rss_bytes(pid)
            finally:
                await browser.close()
        return {"before": before, "held": held, "after": after, "errors": errors}

    with L.serve(tmp_path / "server.log") as server:
        result = L.run(scenario(server.url, server.process.pid))
        problems = L.server_problems(server)
    print({k: (v / MB if isinstance(v, int) else v) for k, v in result.items()})
    assert result["errors"] == [] and problems == []
    assert result["held"] > result["before"] + 150 * MB, (result["before"] / MB, result["held"] / MB)
    # Within seconds of closing, long before the session itself expires: only the image, the
    # strokes and the model are left.
    assert result["after"] <= result["before"] + 0.2 * (result["held"] - result["before"]), (
        result["before"] / MB,
        result["held"] / MB,
        result["after"] / MB,
    )
