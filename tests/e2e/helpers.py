"""Drive the real Streamlit server in Debian's headless Chromium (Playwright, sync API).

Shared by the browser tests (``tests/e2e``) and ``bench/browser_latency.py``. Nothing here knows
pytest: failures raise :class:`E2EError` (or Playwright's ``TimeoutError``) with enough context
(the server log tail, the status line) to diagnose them from a CI log.

The app's contract with these helpers (see ``seg/ui/page.py``):

* the status marker ``.st-key-status`` is the LAST element of every run and reads
  ``ready · update #N ...``; N grows whenever strokes, model, prediction or picture changed;
* widget keys become CSS classes ``st-key-<key>`` (``w_active``, ``w_preset``, ``w_dl_mask`` ...);
* the canvas lives in an open shadow root (Playwright's CSS engine pierces it):
  ``canvas.upper-canvas`` receives the mouse; the background (image + overlay) is painted on its
  own ``canvas.dc-background-canvas`` after the run has finished; finished strokes are on
  ``canvas.dc-canvas.lower-canvas``;
* the canvas is the image stretched to the canvas size, no offset (``seg.ui.canvas.CanvasGeometry``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}

#: Generous bounds: 2 shared cores, the first stroke of a process compiles numba kernels.
SERVER_START_TIMEOUT_S = 60.0
UPDATE_TIMEOUT_MS = 60_000

STATUS = ".st-key-status"
# The drawing canvas (zoomed in, the overview is a second canvas component above it).
CANVAS = ".st-key-canvas_area canvas.upper-canvas"
CANVAS_BACKGROUND = ".st-key-canvas_area canvas.dc-background-canvas"
CANVAS_STROKES = ".st-key-canvas_area canvas.dc-canvas.lower-canvas"
OVERVIEW = ".st-key-overview canvas.upper-canvas"
UPDATE_RE = re.compile(r"update #(\d+)")


class E2EError(RuntimeError):
    """The server or the browser did not do what a test needs (message says what and why)."""


# --------------------------------------------------------------------------- server


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a log file ("" if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Server:
    """A running ``streamlit run`` process (its own process group) and where to reach it."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page_url(self, page: str = "") -> str:
        """URL of the main page ("") or of an extra page by its URL path (e.g. "Batch_apply")."""
        return f"{self.url}/{page}"

    def log(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the whole process group (streamlit may have children), then kill it."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def start_server(
    log_path: Path, *, app: str = "streamlit_app.py", port: int | None = None, timeout: float = SERVER_START_TIMEOUT_S
) -> Server:
    """Start ``python -m streamlit run app`` from the repo root and wait until it is healthy.

    Output goes to ``log_path`` (a file, not a pipe: a full pipe would block the server).
    Raises E2EError with the log tail if the server exits or is not healthy within ``timeout``.
    """
    port = port or free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        app,
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    server = Server(process, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise E2EError(
                f"streamlit exited with code {process.returncode} before becoming healthy; "
                f"log {log_path}:\n{server.log()}"
            )
        if _healthy(server.url):
            return server
        time.sleep(0.2)
    server.stop()
    raise E2EError(f"streamlit on port {port} was not healthy after {timeout:.0f} s; log {log_path}:\n{server.log()}")


@contextlib.contextmanager
def running_server(log_path: Path, **kwargs) -> Iterator[Server]:
    """:func:`start_server` as a context manager that always stops the process group."""
    server = start_server(log_path, **kwargs)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- browser


def require_chromium() -> str:
    """Path of Debian's chromium, or E2EError telling how to install it (never skipped)."""
    if not CHROMIUM.exists():
        raise E2EError(
            f"{CHROMIUM} not found: the browser tests need Debian's chromium. Run tests/run.sh "
            "(it installs it with apt-get) or `sudo apt-get install -y chromium`; "
            "never `playwright install`."
        )
    return str(CHROMIUM)


def launch_browser(playwright):
    """Headless Debian Chromium (Playwright's own browser download is not used)."""
    return playwright.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)


def new_page(browser, *, viewport: dict | None = None):
    """A fresh context (= fresh Streamlit session) and page that accepts downloads."""
    context = browser.new_context(viewport=viewport or VIEWPORT, accept_downloads=True)
    context.set_default_timeout(30_000)
    return context.new_page()


# --------------------------------------------------------------------------- waiting on the app


def status_text(page) -> str:
    """Current text of the status marker ("" when it is not on the page)."""
    locator = page.locator(STATUS)
    if locator.count() == 0:
        return ""
    return locator.first.inner_text().strip()


def update_number(page) -> int:
    """N of "update #N" in the status marker, -1 if there is none yet."""
    match = UPDATE_RE.search(status_text(page))
    return int(match.group(1)) if match else -1


#: True once the script is idle and the status marker shows "update #N", N >= minimum; "exception"
#: at once if the page shows a traceback (shared with the async helpers of tests/load).
IDLE_JS = """
([selector, minimum]) => {
  // A traceback box ends the wait at once (the caller reports it) instead of timing out.
  if (document.querySelector('[data-testid="stException"]')) return 'exception';
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const status = document.querySelector(selector);
  if (!status) return false;
  const match = /update #(\\d+)/.exec(status.innerText);
  return !!match && Number(match[1]) >= minimum;
}
"""


def wait_idle(page, *, timeout_ms: int = UPDATE_TIMEOUT_MS) -> None:
    """Wait until the script is not running (for pages without a status marker)."""
    page.wait_for_function(
        """() => { const app = document.querySelector('[data-testid="stApp"]');
                   return !!app && app.getAttribute('data-test-script-state') === 'notRunning'; }""",
        timeout=timeout_ms,
        polling=100,
    )


def wait_for_update(page, minimum: int = 0, *, timeout_ms: int = UPDATE_TIMEOUT_MS) -> int:
    """Wait until the script is idle and the marker shows "update #N" with N >= ``minimum``.

    The marker is written last, so when it shows N every element above it is from that run.
    Returns N. Raises E2EError at once if the page shows a traceback, or with the status text
    and the errors shown on timeout.
    """
    try:
        outcome = page.wait_for_function(IDLE_JS, arg=[STATUS, minimum], timeout=timeout_ms, polling=100).json_value()
    except Exception as exc:  # playwright TimeoutError: add what the page showed
        raise E2EError(
            f"no 'update #{minimum}' (or later) within {timeout_ms} ms; status: {status_text(page)!r}; "
            f"errors on the page: {error_texts(page)}"
        ) from exc
    if outcome == "exception":
        raise E2EError(f"the app shows a traceback: {exception_texts(page)}")
    return update_number(page)


def wait_until_settled(page, *, quiet_ms: int = 600, timeout_ms: int = UPDATE_TIMEOUT_MS) -> int:
    """Wait until the app is idle and the update number has not changed for ``quiet_ms``.

    Needed after a page load (the first load runs the script twice: once more when the canvas
    reports its size) and after a widget change whose rerun may be followed by another.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    number = wait_for_update(page, 0, timeout_ms=timeout_ms)
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < quiet_ms / 1000:
        if time.monotonic() > deadline:
            raise E2EError(f"the app kept rerunning for {timeout_ms} ms; status: {status_text(page)!r}")
        page.wait_for_timeout(100)
        current = wait_for_update(page, 0, timeout_ms=timeout_ms)
        if current != number:
            number, stable_since = current, time.monotonic()
    return number


def open_app(page, url: str) -> int:
    """Load the page, wait for the canvas and a settled status marker; returns N."""
    page.goto(url)
    page.locator(CANVAS).first.wait_for(state="visible", timeout=UPDATE_TIMEOUT_MS)
    return wait_until_settled(page)


def error_texts(page) -> list[str]:
    """Texts of the st.error boxes on the page."""
    return [t.strip() for t in page.locator('[data-testid="stAlertContentError"]').all_inner_texts()]


def exception_texts(page) -> list[str]:
    """Texts of Streamlit exception boxes (tracebacks) on the page."""
    return [t.strip() for t in page.locator('[data-testid="stException"]').all_inner_texts()]


# --------------------------------------------------------------------------- the canvas


@dataclass(frozen=True)
class CanvasBox:
    """Where the canvas is on screen and which image it shows: maps image pixels to the screen."""

    x: float
    y: float
    width: float
    height: float
    image_width: int
    image_height: int

    def to_screen(self, col: float, row: float) -> tuple[float, float]:
        """Screen position of image pixel centre (col, row)."""
        return (
            self.x + (col + 0.5) * self.width / self.image_width,
            self.y + (row + 0.5) * self.height / self.image_height,
        )

    def to_image(self, sx: float, sy: float) -> tuple[float, float]:
        """Image (col, row) under screen position (sx, sy)."""
        return ((sx - self.x) * self.image_width / self.width, (sy - self.y) * self.image_height / self.height)

    @property
    def image_per_screen(self) -> float:
        """Image pixels per screen pixel (horizontal)."""
        return self.image_width / self.width


def canvas_box(page, image_width: int, image_height: int) -> CanvasBox:
    """Bounding box of the drawing surface, scrolled into view (mouse events need it on screen).

    The app stretches the whole image onto the canvas, so the box maps image pixels to the screen.
    """
    canvas = page.locator(CANVAS).first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    if box is None:
        raise E2EError("the drawing canvas is not visible")
    return CanvasBox(box["x"], box["y"], box["width"], box["height"], image_width, image_height)


_PICTURE_HASH_JS = """
canvas => {
  // FNV-1a over every pixel: cheap (~10 ms for 760x600) and exact, unlike a screenshot.
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) { h ^= data[i]; h = Math.imul(h, 0x01000193); }
  return (h >>> 0).toString(16) + ':' + canvas.width + 'x' + canvas.height;
}
"""


def _background_canvas(page):
    locator = page.locator(CANVAS_BACKGROUND)
    if locator.count() == 0:
        raise E2EError(
            f"no {CANVAS_BACKGROUND!r} on the page: the canvas component changed its DOM "
            "(streamlit-drawable-canvas 0.13 draws the background on its own canvas)"
        )
    return locator.first


def background_hash(page) -> str:
    """Exact digest of the canvas background (image + overlay, without the strokes)."""
    return _background_canvas(page).evaluate(_PICTURE_HASH_JS)


def background_picture(page):
    """(h, w, 3) uint8 array of the canvas background as shown (image + overlay, no strokes)."""
    import base64

    from PIL import Image

    data_url = _background_canvas(page).evaluate("c => c.toDataURL('image/png')")
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def wait_for_background_change(page, old_hash: str, *, timeout_ms: int = UPDATE_TIMEOUT_MS) -> str:
    """Wait until the canvas background differs from ``old_hash``; returns the new hash.

    The background image is decoded and painted by the component after the script run has
    finished, so a new "update #N" alone does not mean the new overlay is visible yet.
    """
    try:
        page.wait_for_function(
            f"([el, old]) => ({_PICTURE_HASH_JS})(el) !== old",
            arg=[_background_canvas(page).element_handle(), old_hash],
            timeout=timeout_ms,
            polling=100,
        )
    except Exception as exc:  # playwright TimeoutError: say what we waited for
        raise E2EError(
            f"the canvas background did not change within {timeout_ms} ms; "
            f"status: {status_text(page)!r}; errors: {error_texts(page)}"
        ) from exc
    return background_hash(page)


_INK_JS = """
canvas => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return n;
}
"""


def ink_pixels(page) -> int:
    """Number of canvas pixels covered by strokes (the drawing layer, without the background)."""
    locator = page.locator(CANVAS_STROKES)
    if locator.count() == 0:
        raise E2EError(f"no {CANVAS_STROKES!r} on the page: the canvas component changed its DOM")
    return int(locator.first.evaluate(_INK_JS))


def changed_fraction(before, after, *, threshold: int = 12) -> float:
    """Fraction of pixels whose colour changed by more than ``threshold`` (0..255) in any channel."""
    if before.shape != after.shape:
        return 1.0
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=-1)
    return float((diff > threshold).mean())


def draw_stroke(page, box: CanvasBox, points: Sequence[tuple[float, float]], *, steps: int = 8) -> None:
    """Draw one freehand stroke through image pixels ``points`` [(col, row), ...] with the mouse.

    The pointer first hovers the start and waits: the canvas toolbar slides over its top-right
    corner for ~0.2 s after the pointer enters, and a stroke started under it would be lost.
    """
    screen = [box.to_screen(c, r) for c, r in points]
    page.mouse.move(*screen[0])
    page.wait_for_timeout(300)
    page.mouse.down()
    for point in screen[1:]:
        page.mouse.move(*point, steps=steps)
    page.mouse.up()


def draw_and_wait(page, box: CanvasBox, points, *, steps: int = 8, timeout_ms: int = UPDATE_TIMEOUT_MS) -> int:
    """Draw a stroke and wait for the rerun it causes; returns the new update number."""
    before = update_number(page)
    draw_stroke(page, box, points, steps=steps)
    return wait_for_update(page, before + 1, timeout_ms=timeout_ms)


# --------------------------------------------------------------------------- test images

#: Radius in pixels of the disks of :func:`disks_image`.
DISK_RADIUS = 26


def disks_image(height: int, width: int, centres, *, dtype=np.uint8, seed: int = 0):
    """Bright disks on a dark, noisy background, and the truth.

    Parameters
    ----------
    height, width : int
    centres : sequence of (row, column)
        Disk centres; every disk has radius :data:`DISK_RADIUS`.
    dtype : numpy integer dtype
        uint8 or uint16 (the full range of the dtype is used).
    seed : int
        Seed of the noise.

    Returns
    -------
    image : (height, width) ``dtype``
    truth : (height, width) uint8
        1 = background, 2 = disk.
    """
    rows, cols = np.mgrid[:height, :width]
    truth = np.ones((height, width), np.uint8)
    for r, c in centres:
        truth[(rows - r) ** 2 + (cols - c) ** 2 <= DISK_RADIUS**2] = 2
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    image = np.where(truth == 2, 0.7, 0.15) + rng.normal(0, 0.04, truth.shape)
    return (np.clip(image, 0, 1) * top).astype(dtype), truth


# --------------------------------------------------------------------------- widgets


def key_locator(page, key: str):
    """The element container of the widget with key ``key`` (CSS class ``st-key-<key>``)."""
    return page.locator(f".st-key-{key}")


def pick_radio(page, key: str, label: str) -> None:
    """Click the option ``label`` of the radio with key ``key``."""
    key_locator(page, key).locator('[data-testid="stRadioOption"]').filter(
        has=page.get_by_text(label, exact=True)
    ).click()


def pick_class(page, index: int) -> None:
    """Select the ``index``-th class (0-based) of the "Draw with class" radio and wait for its rerun.

    The rerun gives the canvas the class colour: draw only once it has finished.
    """
    option = key_locator(page, "w_active").locator('[data-testid="stRadioOption"]').nth(index)
    if option.locator("input").is_checked():
        return
    option.click()
    page.wait_for_function("el => el.checked", arg=option.locator("input").element_handle())
    wait_until_settled(page)


def pick_select(page, key: str, option: str) -> None:
    """Open the selectbox with key ``key`` and click ``option``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    choice = page.get_by_role("option", name=option, exact=True)
    opener = key_locator(page, key).locator('button[aria-haspopup="listbox"]')
    for _ in range(3):
        # The first click after a download is swallowed (the list does not open): try again.
        opener.click()
        try:
            choice.wait_for(state="visible", timeout=2_000)
            break
        except PlaywrightTimeout:
            continue
    choice.click()


def upload_files(page, key: str, files) -> None:
    """Put ``files`` (paths, or {"name", "mimeType", "buffer"} dicts) into the uploader ``key``."""
    key_locator(page, key).locator('input[type="file"]').set_input_files(files)


def button(page, key: str):
    """The visible button of the widget with key ``key``.

    Streamlit renders a hidden copy of some buttons (to measure them): only the visible one counts.
    """
    return key_locator(page, key).locator("button:visible").first


def download(page, key: str, target_dir: Path) -> Path:
    """Click the download button ``key`` and save the file under its suggested name in ``target_dir``."""
    with page.expect_download(timeout=UPDATE_TIMEOUT_MS) as info:
        button(page, key).click()
    item = info.value
    path = target_dir / item.suggested_filename
    item.save_as(path)
    return path


_CONTENT_HEIGHT_JS = """
() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.scrollingElement;
  const sidebar = document.querySelector('[data-testid="stSidebarContent"]');
  return Math.max(main.scrollHeight, sidebar ? sidebar.scrollHeight : 0);
}
"""


def screenshot(page, path: Path, *, max_height: int = 3000) -> Path:
    """Screenshot of the whole app at ``path`` (parent directories created).

    Streamlit scrolls inside its main container, so a "full page" screenshot would stop at the
    viewport: the viewport is made as tall as the content for the shot, then restored.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size
    height = min(max_height, max(viewport["height"], int(page.evaluate(_CONTENT_HEIGHT_JS))))
    try:
        if height != viewport["height"]:
            page.set_viewport_size({"width": viewport["width"], "height": height})
            page.wait_for_timeout(200)  # let the layout follow
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(viewport)
    return path
