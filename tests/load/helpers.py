"""Drive many real browser sessions of the app at once, and measure the server.

Shared by ``tests/load`` and ``bench/load.py``. It builds on ``tests/e2e/helpers.py`` (server
start, Chromium launch, selectors) and adds what concurrency needs: Playwright's *async* API, so
that one Chromium with one context per user (= one Streamlit session each) is driven by one
event loop, every user drawing while the others draw. On 2 cores this is far lighter and more
reliable than one Playwright (one driver, one browser) per thread.

Each user gets a :class:`Scene`: a 256 x 256 grey image with a distinct bright shape, its truth
(1 = background, 2 = shape) and strokes well inside each class. A user whose downloaded mask
matches its own truth (and not another user's) got its own segmentation: no cross-talk.

Latency of an update = mouse-up of a stroke -> the status marker shows the next "update #N" in
that user's page (the marker is written last in every run, see ``seg/ui/page.py``): what a user
waits for, including the round trip and the browser's rendering.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tests.e2e import helpers as H

#: Side of the synthetic images (small: 8 users share 2 cores with the browser).
SIDE = 256
#: The app shows a 256 px image at 2x: 512 screen pixels.
CANVAS_SIDE = 512
#: Generous: 8 users and Chromium share 2 cores.
TIMEOUT_MS = 120_000
POLL_MS = 50
#: Browser window of each user.
VIEWPORT = dict(H.VIEWPORT)

#: Classes of the app's default sample: class 1 is painted with the first radio option.
BACKGROUND, SHAPE = 1, 2


# --------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Scene:
    """A synthetic image whose correct segmentation is known, and strokes on each class.

    Attributes
    ----------
    name : str
        Upload file name.
    image : (SIDE, SIDE) uint8
    truth : (SIDE, SIDE) uint8, 1 = background, 2 = shape
    strokes : tuple of (label, ((col, row), ...))
        Straight strokes in image pixels, at least ``margin`` pixels inside their class.
    """

    name: str
    image: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)
    strokes: tuple = field(repr=False)

    def png(self) -> bytes:
        return png_bytes(self.image)


def _shape_masks(side: int) -> list[tuple[str, np.ndarray]]:
    """Eight different bright shapes (pairwise very different masks)."""
    rows, cols = np.mgrid[:side, :side]
    c = side / 2
    return [
        ("disk", (rows - c) ** 2 + (cols - c) ** 2 <= (0.28 * side) ** 2),
        ("top_left_square", (rows >= 0.12 * side) & (rows < 0.5 * side) & (cols >= 0.12 * side) & (cols < 0.5 * side)),
        ("bottom_band", (rows >= 0.6 * side) & (rows < 0.86 * side)),
        ("left_column", (cols >= 0.15 * side) & (cols < 0.43 * side)),
        (
            "bottom_right_square",
            (rows >= 0.52 * side) & (rows < 0.9 * side) & (cols >= 0.52 * side) & (cols < 0.9 * side),
        ),
        ("right_column", cols >= 0.62 * side),
        ("cross", (np.abs(rows - c) <= 0.08 * side) | (np.abs(cols - c) <= 0.08 * side)),
        ("lower_triangle", rows > cols + 0.12 * side),
    ]


def _inside(mask: np.ndarray, margin: int) -> np.ndarray:
    """Pixels of ``mask`` at least ``margin`` pixels from its edge and from the image border."""
    from scipy import ndimage

    padded = np.pad(mask, 1, constant_values=False)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1] >= margin


def _strokes_in(region: np.ndarray, count: int, length: float, rng: np.random.Generator) -> list:
    """``count`` straight strokes of about ``length`` pixels lying entirely in ``region``."""
    rows, cols = np.nonzero(region)
    strokes = []
    for _ in range(200 * count):
        if len(strokes) == count:
            break
        i = rng.integers(len(rows))
        angle = rng.uniform(0, np.pi)
        start = np.array([cols[i], rows[i]], float)
        end = start + length * np.array([np.cos(angle), np.sin(angle)])
        points = [start + t * (end - start) for t in np.linspace(0, 1, 6)]  # all checked inside
        r = np.round([p[1] for p in points]).astype(int)
        c = np.round([p[0] for p in points]).astype(int)
        if (
            r.min() < 0
            or c.min() < 0
            or r.max() >= region.shape[0]
            or c.max() >= region.shape[1]
            or not region[r, c].all()
        ):
            continue
        strokes.append((tuple(map(float, start)), tuple(map(float, (start + end) / 2)), tuple(map(float, end))))
    if len(strokes) < count:
        raise RuntimeError(f"could not place {count} strokes of length {length} in the region")
    return strokes


def scenes(count: int = 8, *, side: int = SIDE, strokes: int = 20, margin: int = 9, seed: int = 0) -> list[Scene]:
    """``count`` (<= 8) scenes with distinct shapes; strokes alternate background / shape in
    blocks of 5 (fewer class switches, both classes present from the 6th stroke on)."""
    shapes = _shape_masks(side)
    if count > len(shapes):
        raise ValueError(f"at most {len(shapes)} distinct scenes, asked for {count}")
    out = []
    for index, (name, mask) in enumerate(shapes[:count]):
        rng = np.random.default_rng(seed + index)
        truth = np.where(mask, SHAPE, BACKGROUND).astype(np.uint8)
        image = np.where(mask, 190.0, 55.0) + rng.normal(0, 12, mask.shape)
        image = np.clip(image, 0, 255).astype(np.uint8)
        half = strokes // 2
        bg = _strokes_in(_inside(~mask, margin), half, 0.12 * side, rng)
        fg = _strokes_in(_inside(mask, margin), strokes - half, 0.12 * side, rng)
        plan = []
        for block in range(0, max(half, strokes - half), 5):
            plan += [(BACKGROUND, s) for s in bg[block : block + 5]]
            plan += [(SHAPE, s) for s in fg[block : block + 5]]
        out.append(Scene(f"{index}_{name}.png", image, truth, tuple(plan)))
    return out


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def agreement(mask: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of pixels where ``mask`` equals ``truth``."""
    return float((np.asarray(mask) == truth).mean())


def stroke_pixels(scene: Scene, label: int, radius: float = 2.0) -> np.ndarray:
    """Boolean mask of the pixels within ``radius`` of the centre lines of ``label``'s strokes."""
    rows, cols = np.mgrid[: scene.truth.shape[0], : scene.truth.shape[1]]
    out = np.zeros(scene.truth.shape, bool)
    for stroke_label, points in scene.strokes:
        if stroke_label != label:
            continue
        (x0, y0), (x1, y1) = points[0], points[-1]
        d = np.array([x1 - x0, y1 - y0])
        t = np.clip(((cols - x0) * d[0] + (rows - y0) * d[1]) / max(d @ d, 1e-9), 0, 1)
        out |= (cols - (x0 + t * d[0])) ** 2 + (rows - (y0 + t * d[1])) ** 2 <= radius**2
    return out


# --------------------------------------------------------------------------- server


@contextlib.contextmanager
def serve(log_path: Path, *, env: dict[str, str] | None = None, **config: object) -> Iterator[H.Server]:
    """The app on a free loopback port, with Streamlit options set through the environment.

    ``config`` maps option names with underscores for dots, e.g.
    ``server_disconnectedSessionTTL=5`` -> ``STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL=5``;
    ``env`` adds other variables. The server runs as a host would start it: no allocator
    variables (the app tunes glibc's malloc itself, see ``seg/ui/lifetime.py``).
    """
    from streamlit.string_util import to_snake_case  # Streamlit's own option -> variable naming

    extra = dict(env or {})
    for name, value in config.items():
        extra[f"STREAMLIT_{to_snake_case(name).upper()}"] = str(value)
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)  # H.start_server passes os.environ to the server process
    try:
        server = H.start_server(log_path)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield server
    finally:
        server.stop()


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` and its children (bytes)."""
    import psutil

    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return int(total)


def server_problems(server: H.Server) -> list[str]:
    """Lines of the server log that show a traceback or an exception."""
    text = server.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if "Traceback" in line or "Exception" in line]


# --------------------------------------------------------------------------- async browser


def run(coroutine):
    """``asyncio.run(coroutine)`` in a fresh thread; its result (or its exception).

    The calling thread may already have an event loop running, e.g. when a synchronous
    Playwright of other browser tests is alive in this process; a new thread has none.
    """
    import threading

    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="load-test-browser")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


async def launch(playwright):
    """Headless Debian Chromium through the async API (same binary and flags as tests/e2e)."""
    return await playwright.chromium.launch(executable_path=H.require_chromium(), args=H.CHROMIUM_ARGS)


async def update_number(page) -> int:
    """N of "update #N" in the status marker, -1 if there is none yet."""
    match = H.UPDATE_RE.search(await status_text(page))
    return int(match.group(1)) if match else -1


async def status_text(page) -> str:
    locator = page.locator(H.STATUS)
    return (await locator.first.inner_text()).strip() if await locator.count() else ""


async def wait_for_update(page, minimum: int, *, timeout_ms: int = TIMEOUT_MS) -> int:
    """Wait until the script is idle and the marker shows "update #N", N >= ``minimum``.

    Raises E2EError at once if the page shows a traceback, or with the status on timeout.
    """
    try:
        outcome = await (
            await page.wait_for_function(H.IDLE_JS, arg=[H.STATUS, minimum], timeout=timeout_ms, polling=POLL_MS)
        ).json_value()
    except Exception as exc:  # playwright TimeoutError: say what the page showed
        raise H.E2EError(
            f"no 'update #{minimum}' within {timeout_ms} ms; status {await status_text(page)!r}; "
            f"errors {await error_texts(page)}"
        ) from exc
    if outcome == "exception":
        raise H.E2EError(f"the app shows a traceback: {await error_texts(page)}")
    return await update_number(page)


async def wait_until_settled(page, *, quiet_ms: int = 600, timeout_ms: int = TIMEOUT_MS) -> int:
    """Idle, and the update number unchanged for ``quiet_ms`` (the first load runs twice)."""
    deadline = time.monotonic() + timeout_ms / 1000
    number = await wait_for_update(page, 0, timeout_ms=timeout_ms)
    since = time.monotonic()
    while time.monotonic() - since < quiet_ms / 1000:
        if time.monotonic() > deadline:
            raise H.E2EError(f"the app kept rerunning; status {await status_text(page)!r}")
        await asyncio.sleep(0.1)
        current = await wait_for_update(page, 0, timeout_ms=timeout_ms)
        if current != number:
            number, since = current, time.monotonic()
    return number


async def error_texts(page) -> list[str]:
    errors = await page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    exceptions = await page.locator('[data-testid="stException"]').all_inner_texts()
    return [t.strip() for t in errors + exceptions]


async def open_app(page, url: str) -> int:
    await page.goto(url, timeout=TIMEOUT_MS)
    await page.locator(H.CANVAS).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    return await wait_until_settled(page)


async def canvas_box(page, width: int, height: int) -> H.CanvasBox:
    canvas = page.locator(H.CANVAS).first
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    if box is None:
        raise H.E2EError("the drawing canvas is not visible")
    return H.CanvasBox(box["x"], box["y"], box["width"], box["height"], width, height)


async def upload_image(page, name: str, data: bytes, *, canvas_side: int = CANVAS_SIDE) -> int:
    """Upload an image into the main page's uploader; wait for its canvas (``canvas_side`` px)."""
    uploader = page.locator(".st-key-w_image_upload input[type='file']")
    await uploader.set_input_files({"name": name, "mimeType": "image/png", "buffer": data})
    # The canvas lives in a shadow root (document.querySelector cannot see it): poll its box.
    canvas = page.locator(H.CANVAS).first
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        box = await canvas.bounding_box() if await page.locator(H.CANVAS).count() else None
        if box is not None and abs(box["width"] - canvas_side) < 2:
            break
        if time.monotonic() > deadline:
            raise H.E2EError(
                f"the canvas of {name!r} did not appear ({canvas_side} px wide); box {box}; "
                f"errors {await error_texts(page)}"
            )
        await asyncio.sleep(0.1)
    return await wait_until_settled(page)


async def pick_class(page, index: int) -> None:
    """Select the ``index``-th class (0-based) and wait for the rerun that gives the pen its colour."""
    option = page.locator(".st-key-w_active [data-testid='stRadioOption']").nth(index)
    if await option.locator("input").is_checked():
        return
    await option.click()
    await page.wait_for_function(
        "el => el.checked", arg=await option.locator("input").element_handle(), timeout=TIMEOUT_MS
    )
    await wait_until_settled(page)


async def draw_stroke(
    page, box: H.CanvasBox, points: Sequence[tuple[float, float]], *, steps: int = 4, hover_ms: int = 300
) -> None:
    """A freehand stroke through image pixels ``points``; returns right after mouse-up.

    Hovers ``hover_ms`` first when the pointer comes from outside the canvas: the canvas toolbar
    slides over its top-right corner for ~0.2 s when the pointer enters.
    """
    screen = [box.to_screen(c, r) for c, r in points]
    await page.mouse.move(*screen[0])
    if hover_ms:
        await page.wait_for_timeout(hover_ms)
    await page.mouse.down()
    for point in screen[1:]:
        await page.mouse.move(*point, steps=steps)
    await page.mouse.up()


async def download(page, key: str, *, attempts: int = 3) -> bytes:
    """Click the download button ``key`` once the app has settled; the downloaded bytes.

    A deferred download is cancelled when a rerun replaces the button while the file is being
    made; that is retried (the file is still the same).
    """
    from playwright.async_api import Error as PlaywrightError

    for attempt in range(attempts):
        await wait_until_settled(page)
        try:
            async with page.expect_download(timeout=TIMEOUT_MS) as info:
                await page.locator(f".st-key-{key} button:visible").first.click()
            item = await info.value
            path = await item.path()
            return Path(path).read_bytes()
        except PlaywrightError as exc:
            if "canceled" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- one user


@dataclass
class UserResult:
    """What one simulated user saw."""

    scene: Scene
    latencies_ms: list[float] = field(default_factory=list)  # strokes drawn with both classes present
    run_ms: list[float] = field(default_factory=list)  # the server's own "run N ms" of those
    mask: np.ndarray | None = None
    errors: list[str] = field(default_factory=list)


def _run_ms(status: str) -> float | None:
    import re

    match = re.search(r"run (\d+) ms", status)
    return float(match.group(1)) if match else None


async def draw_scene(
    page,
    scene: Scene,
    *,
    period_s: float = 0.0,
    rng: np.random.Generator | None = None,
    first: int = 0,
    last: int | None = None,
    result: UserResult | None = None,
    on_stroke=None,
) -> UserResult:
    """Draw strokes ``first..last`` of the scene (switching classes as needed), timing every update.

    A new stroke starts every ``period_s`` seconds (x 0.7..1.3 at random, like a person who
    looks at the result before the next stroke), or as soon as the last update arrived when
    that took longer: the offered load does not depend on how fast the server answers.
    Only updates made with both classes present are timed (those retrain and predict).
    ``on_stroke`` (an async callable) runs right after each mouse-up (e.g. to sample neighbours).
    """
    result = result or UserResult(scene)
    height, width = scene.image.shape
    seen = {label for label, _ in scene.strokes[:first]}
    active = None
    for label, points in scene.strokes[first:last]:
        started = time.perf_counter()
        switched = label != active
        if switched:
            await pick_class(page, label - 1)
            active = label
        seen.add(label)
        box = await canvas_box(page, width, height)
        before = await update_number(page)
        await draw_stroke(page, box, points, hover_ms=300 if switched else 0)
        start = time.perf_counter()
        if on_stroke is not None:
            await on_stroke()
        await wait_for_update(page, before + 1)
        elapsed = (time.perf_counter() - start) * 1000
        if len(seen) == 2:  # both classes: every stroke retrains and predicts
            result.latencies_ms.append(elapsed)
            run = _run_ms(await status_text(page))
            if run is not None:
                result.run_ms.append(run)
        if period_s:
            jitter = rng.uniform(0.7, 1.3) if rng is not None else 1.0
            await asyncio.sleep(max(0.0, started + period_s * jitter - time.perf_counter()))
    return result


async def user_session(
    browser,
    url: str,
    scene: Scene,
    *,
    period_s: float = 0.0,
    seed: int = 0,
    start_delay_s: float = 0.0,
    viewport: dict | None = None,
) -> UserResult:
    """One user: open the app, upload the scene, draw its strokes, download the mask."""
    await asyncio.sleep(start_delay_s)
    context = await browser.new_context(viewport=viewport or VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    result = UserResult(scene)
    try:
        await open_app(page, url)
        await upload_image(page, scene.name, scene.png())
        await draw_scene(page, scene, period_s=period_s, rng=np.random.default_rng(seed), result=result)
        data = await download(page, "w_dl_mask")
        result.mask = np.asarray(Image.open(io.BytesIO(data)))
        result.errors = await error_texts(page)
    finally:
        await context.close()
    return result


def summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """Median, 90th percentile and count of latencies (ms)."""
    values = sorted(latencies_ms)
    if not values:
        return {"n": 0, "median_ms": float("nan"), "p90_ms": float("nan")}
    p90 = float(np.percentile(values, 90))
    return {"n": len(values), "median_ms": round(statistics.median(values), 1), "p90_ms": round(p90, 1)}


# --------------------------------------------------------------------------- scenarios


async def single_then_concurrent(url: str, *, users: int = 8, period_s: float = 2.5) -> dict:
    """The load scenario: one user alone, then ``users`` users at once, on the same server.

    Returns {"single": UserResult, "concurrent": [UserResult, ...], "wall_s": {...}}.
    """
    from playwright.async_api import async_playwright

    all_scenes = scenes(users)
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            start = time.perf_counter()
            # The lone user draws the last scene, so nothing it leaves behind matches user 0's truth.
            single = await user_session(browser, url, all_scenes[-1], seed=100)
            single_s = time.perf_counter() - start
            start = time.perf_counter()
            results = await asyncio.gather(
                *[
                    user_session(browser, url, scene, period_s=period_s, seed=i, start_delay_s=0.4 * i)
                    for i, scene in enumerate(all_scenes)
                ]
            )
            concurrent_s = time.perf_counter() - start
        finally:
            await browser.close()
    return {
        "single": single,
        "concurrent": list(results),
        "wall_s": {"single": round(single_s, 1), "concurrent": round(concurrent_s, 1)},
    }


# --------------------------------------------------------------------------- heavy neighbours


def big_image(side: int = 2000) -> np.ndarray:
    """(side, side) uint8: bright disks on a dark gradient (compresses well: quick to upload)."""
    rows, cols = np.mgrid[:side, :side]
    image = 40 + 30 * cols / side
    for r, c in ((0.3, 0.3), (0.3, 0.7), (0.7, 0.5)):
        image = np.where((rows - r * side) ** 2 + (cols - c * side) ** 2 < (0.15 * side) ** 2, 200, image)
    return image.astype(np.uint8)


def model_bundle(scene: Scene) -> bytes:
    """A .segmodel trained on ``scene`` with the app's default feature preset."""
    from seg.model import train
    from seg.persist import model_to_bytes

    labels = np.zeros_like(scene.truth)
    for label in (BACKGROUND, SHAPE):
        labels[stroke_pixels(scene, label, radius=3)] = label
    return model_to_bytes(train(scene.image, labels, class_names=["background", "shape"]))


async def _is_running(page) -> bool:
    return await page.evaluate(
        """() => { const a = document.querySelector('[data-testid="stApp"]');
                   return !!a && a.getAttribute('data-test-script-state') === 'running'; }"""
    )


async def wait_idle(page, *, timeout_ms: int = TIMEOUT_MS) -> None:
    await page.wait_for_function(
        """() => { const a = document.querySelector('[data-testid="stApp"]');
                   return !!a && a.getAttribute('data-test-script-state') === 'notRunning'; }""",
        timeout=timeout_ms,
        polling=100,
    )


@dataclass
class HeavyResult:
    """What the light user saw while two others worked hard, and what the heavy ones got."""

    light: UserResult
    overlapped: int = 0  # light strokes during which a heavy session was running
    big_status: str = ""  # status line of the 4-megapixel session at the end
    big_strokes: int = 0  # strokes the 4-megapixel user drew meanwhile
    batch_summary: str = ""  # summary line of the batch session
    batch_runs: int = 0  # batches segmented meanwhile
    errors: list[str] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)


async def _start_big_session(browser, url: str, image: np.ndarray):
    """A user who opens a 4-megapixel image (its features are computed right after upload)."""
    context = await browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await open_app(page, url)
    await page.locator(".st-key-w_image_upload input[type='file']").set_input_files(
        {"name": "big.png", "mimeType": "image/png", "buffer": png_bytes(image)}
    )
    return context, page


async def _big_strokes(page, image: np.ndarray, count: int, stop: asyncio.Event) -> tuple[str, int]:
    """Once the big image is shown, draw strokes on it (each retrains on the 4 MP image) until
    ``stop`` is set, at least ``count``; returns the last status line and the strokes drawn."""
    side = image.shape[0]
    canvas = page.locator(H.CANVAS).first
    while True:  # the canvas of the big image is 760 px wide (the app's display limit)
        box = await canvas.bounding_box() if await page.locator(H.CANVAS).count() else None
        if box is not None and abs(box["width"] - 760) < 2:
            break
        await asyncio.sleep(0.2)
    await wait_until_settled(page)
    lines = {BACKGROUND: [(0.05, 0.9), (0.95, 0.9)], SHAPE: [(0.22, 0.3), (0.38, 0.3)]}
    index = 0
    while index < count or not stop.is_set():
        label = (BACKGROUND, SHAPE)[index % 2]
        await pick_class(page, label - 1)
        box = await canvas_box(page, side, side)
        before = await update_number(page)
        (x0, y0), (x1, y1) = lines[label]
        shift = 0.015 * (index // 2 % 8)
        await draw_stroke(page, box, [(x0 * side, (y0 + shift) * side), (x1 * side, (y1 + shift) * side)])
        await wait_for_update(page, before + 1)
        index += 1
    return await status_text(page), index


async def _start_batch_session(browser, url: str, bundle: bytes, files: list[tuple[str, bytes]]):
    """A user who segments a batch of images with an uploaded model on the batch page."""
    context = await browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(f"{url}/Batch_apply", timeout=TIMEOUT_MS)
    await page.locator(".st-key-w_batch_model_upload input[type='file']").set_input_files(
        {"name": "scene.segmodel", "mimeType": "application/octet-stream", "buffer": bundle}
    )
    await page.locator(".st-key-w_batch_images input[type='file']").first.wait_for(state="attached")
    await page.locator(".st-key-w_batch_images input[type='file']").set_input_files(
        [{"name": name, "mimeType": "image/png", "buffer": data} for name, data in files]
    )
    run = page.locator(".st-key-w_batch_run button:visible").first
    await page.wait_for_function("el => !el.disabled", arg=await run.element_handle(), timeout=TIMEOUT_MS)
    await wait_idle(page)
    await run.click()
    return context, page


async def _batch_runs(page, count: int, stop: asyncio.Event) -> tuple[str, int]:
    """Run the batch again and again until ``stop`` is set; the last summary and the runs made."""
    runs = 0
    while True:
        text = page.get_by_text(f"{count} of {count} images done")
        await text.first.wait_for(timeout=10 * TIMEOUT_MS)
        await wait_idle(page)
        runs += 1
        if stop.is_set():
            return (await text.first.inner_text()).strip(), runs
        await page.locator(".st-key-w_batch_run button:visible").first.click()
        try:  # the rerun starts a moment after the click
            await page.wait_for_function(
                """() => document.querySelector('[data-testid="stApp"]')
                          ?.getAttribute('data-test-script-state') === 'running'""",
                timeout=5_000,
                polling=20,
            )
        except Exception:  # noqa: BLE001 - a run shorter than the polling interval is fine
            pass


#: The heavy neighbours' work: a 2000 x 2000 (4 MP) image, and a batch of 100 images of 256 x 256.
HEAVY_SIDE, HEAVY_BATCH, HEAVY_BATCH_SIDE = 2000, 100, 256


async def heavy_neighbours(
    url: str,
    *,
    big_side: int = HEAVY_SIDE,
    batch: int = HEAVY_BATCH,
    batch_side: int = HEAVY_BATCH_SIDE,
    big_strokes: int = 3,
    light_first: int = 6,
    light_strokes: int = 8,
    period_s: float = 2.0,
) -> HeavyResult:
    """A light user draws while one user opens a ``big_side``² image and another runs a batch.

    The light user uploads its scene and draws its first ``light_first`` strokes before the
    others start (untimed), then ``light_strokes`` timed strokes while they work: the big user
    keeps drawing (each stroke retrains on the big image) and the batch user keeps re-running
    the batch until the light user is done, however fast the machine is.
    """
    from playwright.async_api import async_playwright

    scene = scenes(1)[0]
    bundle = model_bundle(scene)
    rng = np.random.default_rng(7)
    files = [
        (
            f"tile_{i:03d}.png",
            png_bytes(
                np.clip(
                    rng.normal(60, 12, (batch_side, batch_side)) + 130 * (rng.random((batch_side, batch_side)) > 0.995),
                    0,
                    255,
                ).astype(np.uint8)
            ),
        )
        for i in range(batch)
    ]
    image = big_image(big_side)
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            light_context = await browser.new_context(viewport=VIEWPORT, accept_downloads=True)
            light_context.set_default_timeout(TIMEOUT_MS)
            light = await light_context.new_page()
            await open_app(light, url)
            await upload_image(light, scene.name, scene.png())
            result = HeavyResult(UserResult(scene))
            await draw_scene(light, scene, last=light_first, result=result.light)
            result.light.latencies_ms.clear()
            result.light.run_ms.clear()

            start = time.perf_counter()
            big_context, big = await _start_big_session(browser, url, image)
            batch_context, batch_page = await _start_batch_session(browser, url, bundle, files)
            stop = asyncio.Event()
            big_task = asyncio.create_task(_big_strokes(big, image, big_strokes, stop))
            batch_task = asyncio.create_task(_batch_runs(batch_page, batch, stop))
            heavy_pages = (big, batch_page)

            async def sample() -> None:
                if any([await _is_running(p) for p in heavy_pages]):
                    result.overlapped += 1

            await draw_scene(
                light,
                scene,
                period_s=period_s,
                rng=rng,
                first=light_first,
                last=light_first + light_strokes,
                result=result.light,
                on_stroke=sample,
            )
            result.seconds["light"] = round(time.perf_counter() - start, 1)
            stop.set()
            result.batch_summary, result.batch_runs = await batch_task
            result.big_status, result.big_strokes = await big_task
            result.seconds["heavy"] = round(time.perf_counter() - start, 1)
            for page in (light, big, batch_page):
                result.errors += await error_texts(page)
            for context in (light_context, big_context, batch_context):
                await context.close()
        finally:
            await browser.close()
    return result


# --------------------------------------------------------------------------- long sessions


def footprint(value, _seen: set | None = None) -> int:
    """Bytes of the numpy arrays and byte strings reachable from ``value`` (each counted once).

    Walks dicts, sequences, sets, dataclasses and plain objects: what a session keeps alive.
    """
    import dataclasses

    seen = set() if _seen is None else _seen
    stack, total = [value], 0
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None or isinstance(item, (int, float, str, bool, type)):
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            base = item
            while isinstance(base.base, np.ndarray):
                base = base.base
            if id(base) not in seen or base is item:
                seen.add(id(base))
                total += base.nbytes
        elif isinstance(item, (bytes, bytearray)):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif dataclasses.is_dataclass(item):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif hasattr(item, "__dict__") and not callable(item):
            stack.append(vars(item))
        elif callable(item) and getattr(item, "__closure__", None):
            stack.extend(c.cell_contents for c in item.__closure__ if c.cell_contents is not None)
    return total


def long_session(strokes: int = 500, side: int = 64, checkpoints: int = 5) -> dict:
    """One AppTest session drawing ``strokes`` strokes one rerun at a time (as the canvas does).

    Run in a fresh process (see ``python -m tests.load.helpers``): returns the process RSS before
    the session, at checkpoints, and after the session was dropped, plus the session's own
    footprint (:func:`footprint`) and cache sizes at each checkpoint.
    """
    import gc

    import psutil

    from tests.app.conftest import canvas_report, class_colors, new_app, to_canvas, upload
    from tests.fabric import fabric_path

    process = psutil.Process()
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(60, 10, (side, side)), 0, 255).astype(np.uint8)
    image[:, side // 2 :] += 120

    def session(count: int, record: dict | None = None):
        at = new_app()
        at.run()
        upload(at, "w_image_upload", "long.png", png_bytes(image), "image/png")
        background, foreground = class_colors(at)[:2]
        key, fit = at.session_state["seg.canvas"].key, at.session_state["seg.canvas"].fit_dict()
        objects = []
        first_update = None
        for index in range(count):
            row = float(rng.uniform(3, side - 3))
            left = float(rng.uniform(2, side / 2 - 12) if index % 2 == 0 else rng.uniform(side / 2 + 2, side - 12))
            color = background if index % 2 == 0 else foreground
            objects.append(fabric_path(to_canvas(at, [(left, row), (left + 8, row)]), color, 4))
            # A new list each time, like the JSON the browser sends after every stroke.
            at.session_state[key] = canvas_report(objects, fit)
            at.run()
            if at.exception:
                raise AssertionError([e.message for e in at.exception])
            if first_update is None:
                first_update = at.session_state["seg.update"] - 1
            if record is not None and (index + 1) % max(1, count // checkpoints) == 0:
                state = {k: at.session_state[k] for k in at.session_state if str(k).startswith("seg.")}
                record.setdefault("checkpoints", []).append(
                    {
                        "strokes": index + 1,
                        "rss": process.memory_info().rss,
                        "footprint": footprint(state),
                        "backgrounds": len(at.session_state["seg.backgrounds"]),
                        "features": len(at.session_state["seg.features"]),
                        "updates": int(at.session_state["seg.update"] - first_update),
                        "model": at.session_state["seg.model"] is not None,
                    }
                )
        return at

    warm = session(5)  # imports, kernels, caches of the process: not the session's memory
    del warm
    gc.collect()
    record = {"rss_before": process.memory_info().rss}
    at = session(strokes, record)
    del at
    gc.collect()
    record["rss_after"] = process.memory_info().rss
    return record


if __name__ == "__main__":  # python -m tests.load.helpers long-session STROKES
    import json
    import sys

    if sys.argv[1:2] != ["long-session"]:
        raise SystemExit("usage: python -m tests.load.helpers long-session [STROKES]")
    print(json.dumps(long_session(int(sys.argv[2]) if len(sys.argv) > 2 else 500)))
