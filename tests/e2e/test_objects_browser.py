"""The objects panel in a real browser: scribble, open Objects, filter by area, click a row,
download the objects CSV and check it against the table.

Every wait is on a condition (the status marker "update #N" written last in every run, or the
panel's own caption), never on a fixed sleep. Screenshots go to ``tests/e2e/artifacts/``; with
``SEG_UPDATE_README_SCREENSHOT=1`` the test also rewrites ``tests/e2e/objects-screenshot.png``
(committed, shown in the README); CI never sets it.
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import numpy as np
import pytest

from tests.e2e import helpers as H
from tests.e2e.test_app_browser import (
    COINS_BACKGROUND,
    COINS_COIN,
    COINS_SIZE,
    assert_no_traceback,
    draw_classes,
)

pytestmark = pytest.mark.e2e

OBJECTS_SCREENSHOT = Path(__file__).resolve().parent / "objects-screenshot.png"
SHOWN = re.compile(r"([\d,]+) of ([\d,]+) objects of coin shown")


def settled_counts(page, condition, *, quiet_s: float = 0.8, timeout_s: float = 60) -> tuple[int, int]:
    """Wait until the script is idle and ``condition(shown, found)`` holds, unchanged for ``quiet_s``.

    Opening the panel, moving the slider and clicking a row rerun the script but train nothing,
    so the status marker's update number does not move: the panel's caption is the condition.
    """
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        H.wait_idle(page)
        text = page.locator('[data-testid="stMain"]').inner_text()
        match = SHOWN.search(text)
        counts = (int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))) if match else None
        if counts != last:
            last, since = counts, time.monotonic()
        elif counts is not None and condition(*counts) and time.monotonic() - since >= quiet_s:
            return counts
        page.wait_for_timeout(100)
    raise H.E2EError(f"objects caption {last} never met the condition; status {H.status_text(page)!r}")


def test_objects_panel_filters_highlights_and_downloads(page, server, artifacts, tmp_path, update_readme_screenshot):
    H.open_app(page, server.url)
    draw_classes(page, COINS_SIZE, [[COINS_BACKGROUND], COINS_COIN])

    panel = page.locator('[data-testid="stExpander"]').filter(has=page.get_by_text("Objects", exact=True))
    panel.locator("summary").click()
    shown, found = settled_counts(page, lambda shown, found: True)
    assert shown == found >= 15  # two dozen coins

    # Filter: raise the lower bound of the area range (keyboard steps of 10 px); specks drop out.
    low = H.key_locator(page, "w_obj_range_area").locator('input[type="range"]').first
    start = float(low.input_value())
    low.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("([el, v]) => Number(el.value) >= v", arg=[low.element_handle(), start + 50])
    shown, found_again = settled_counts(page, lambda shown, found: shown < found)
    assert found_again == found and 0 < shown < found, (shown, found)

    # Click the first row's selection cell: its object is highlighted, in the panel and on the canvas.
    before = H.background_picture(page)
    before_hash = H.background_hash(page)
    grid = H.key_locator(page, "objects_table").locator('[data-testid="stDataFrame"]')
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()  # the row-selection column is the grid's first 30 px; rows are 35 px
    page.mouse.move(box["x"] + 12, box["y"] + 35 + 17)
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)
    page.get_by_text(re.compile(r"Object \d+ highlighted")).wait_for(state="visible")
    H.wait_for_background_change(page, before_hash)
    H.wait_idle(page)
    after = H.background_picture(page)
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=-1) > 40
    assert changed.mean() > 0.001, changed.mean()
    filled = after[changed].astype(int).mean(axis=0)  # blended towards the highlight #ffd400
    assert filled[0] > 150 and filled[1] > 120 and filled[2] < 110, filled
    assert_no_traceback(page)
    page.mouse.move(5, 5)
    H.screenshot(page, artifacts / "10-objects-panel.png")
    if update_readme_screenshot is not None:  # the panel only, for the README
        viewport = page.viewport_size  # tall enough that the whole panel is laid out
        page.set_viewport_size({"width": viewport["width"], "height": 3000})
        page.wait_for_timeout(300)
        panel.screenshot(path=str(OBJECTS_SCREENSHOT))
        page.set_viewport_size(viewport)

    # The CSV holds exactly the shown objects.
    path = H.download(page, "w_dl_objects_csv", tmp_path)
    assert path.name == "coins_coin_objects.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == shown
    assert list(rows[0])[:4] == ["image", "frame", "object", "area"]
    assert {r["image"] for r in rows} == {"coins.png"}
    areas = sorted(int(r["area"]) for r in rows)
    assert areas[0] > 0 and len(set(int(r["object"]) for r in rows)) == shown
