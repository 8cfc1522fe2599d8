"""The "How good is it?" panel in a real browser: scribble, estimate the accuracy, see where to
label next, go there, and see the estimate marked stale after another stroke.

Waits are on conditions (the status marker, the panel's own texts), never on fixed sleeps.
With ``SEG_UPDATE_README_SCREENSHOT=1`` the test also rewrites ``tests/e2e/accuracy-screenshot.png``
(committed, shown in the README); CI never sets it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.e2e import helpers as H
from tests.e2e.test_app_browser import COINS_BACKGROUND, COINS_COIN, COINS_SIZE, assert_no_traceback, draw_classes

pytestmark = pytest.mark.e2e

ACCURACY_SCREENSHOT = Path(__file__).resolve().parent / "accuracy-screenshot.png"
# Two more background strokes (the top and bottom margins of the coins): three per class.
MORE_BACKGROUND = [[(10, 8), (150, 8), (300, 8)], [(10, 295), (150, 295), (300, 295)]]
PERCENT = re.compile(r"^(\d+(?:\.\d)?)%$")


def _picture_with_yellow(page, timeout_s: float = 20.0):
    """The canvas background once the zoomed canvas is mounted and shows the selected (yellow) box."""
    import time

    page.locator(H.CANVAS_BACKGROUND).first.wait_for(state="attached", timeout=H.UPDATE_TIMEOUT_MS)
    deadline = time.monotonic() + timeout_s
    while True:
        picture = H.background_picture(page).astype(int)
        yellow = (picture[..., 0] > 200) & (picture[..., 1] > 170) & (picture[..., 2] < 100)
        if yellow.sum() > 100 or time.monotonic() > deadline:
            assert yellow.sum() > 100, "no yellow box on the canvas"
            return picture
        page.wait_for_timeout(100)


def metric(panel, label: str) -> str:
    box = panel.locator('[data-testid="stMetric"]').filter(has_text=label)
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_accuracy_panel_estimates_suggests_where_to_label_and_goes_stale(
    page, server, artifacts, update_readme_screenshot
):
    H.open_app(page, server.url)
    draw_classes(page, COINS_SIZE, [[COINS_BACKGROUND, *MORE_BACKGROUND], COINS_COIN])

    panel = page.locator('[data-testid="stExpander"]').filter(has=page.get_by_text("How good is it?", exact=True))
    panel.locator("summary").click()
    H.button(page, "w_estimate_accuracy").wait_for(state="visible", timeout=H.UPDATE_TIMEOUT_MS)
    H.wait_idle(page)
    H.button(page, "w_estimate_accuracy").click()
    panel.get_by_text("Estimated accuracy").wait_for(state="visible", timeout=H.UPDATE_TIMEOUT_MS)
    H.wait_idle(page)
    assert_no_traceback(page)

    accuracy = PERCENT.match(metric(panel, "Estimated accuracy"))
    assert accuracy and 60.0 <= float(accuracy.group(1)) <= 100.0, metric(panel, "Estimated accuracy")
    assert metric(panel, "Strokes") == "6"
    assert "–" in metric(panel, "90 % interval")
    assert panel.get_by_text("Plain held-out strokes").is_visible()
    regions = H.key_locator(page, "w_next_region").locator('[data-testid="stRadioOption"]')
    assert regions.count() >= 1
    assert "uncertain" in regions.first.inner_text() or "misclassified" in regions.first.inner_text()
    assert panel.get_by_text("What the model looks at").is_visible()

    page.mouse.move(5, 5)
    H.screenshot(page, artifacts / "11-accuracy-panel.png")
    if update_readme_screenshot is not None:  # the panel only, for the README
        viewport = page.viewport_size
        page.set_viewport_size({"width": viewport["width"], "height": 3000})
        page.wait_for_timeout(300)
        panel.screenshot(path=str(ACCURACY_SCREENSHOT))
        page.set_viewport_size(viewport)

    # Another stroke: the estimate is marked stale until refreshed.
    H.pick_class(page, 0)
    H.draw_and_wait(page, H.canvas_box(page, *COINS_SIZE), [(20, 60), (60, 60), (100, 60)])
    panel.get_by_text(re.compile("^Stale")).wait_for(state="visible", timeout=H.UPDATE_TIMEOUT_MS)
    H.button(page, "w_estimate_accuracy").click()
    panel.get_by_text(re.compile("^Stale")).wait_for(state="hidden", timeout=H.UPDATE_TIMEOUT_MS)
    H.wait_idle(page)
    assert metric(panel, "Strokes") == "7"

    # Go there: the canvas zooms onto the selected box (the navigation bar shows a window of the
    # image and the pan buttons appear).
    navigation = H.key_locator(page, "navigation")
    assert "x 0–384, y 0–303 of 384×303" in navigation.inner_text()
    H.button(page, "w_go_to_region").click()
    H.key_locator(page, "w_pan_left").wait_for(state="visible", timeout=H.UPDATE_TIMEOUT_MS)
    H.wait_idle(page)
    window = re.search(r"x (\d+)–(\d+), y (\d+)–(\d+) of 384×303", navigation.inner_text())
    assert window, navigation.inner_text()
    left, right, top, bottom = (int(v) for v in window.groups())
    assert right - left < 384 and bottom - top < 303

    # The boxes are drawn on the canvas itself: switching them off changes only their pixels,
    # which were the boxes' white and yellow.
    with_boxes = _picture_with_yellow(page)
    shown = H.background_hash(page)
    H.key_locator(page, "w_next_on_canvas").locator("label").first.click()
    H.wait_for_background_change(page, shown)
    H.wait_idle(page)
    without = H.background_picture(page)
    difference = np.abs(with_boxes.astype(int) - without.astype(int)).max(axis=-1)
    assert 0.002 < (difference > 12).mean() < 0.2, (difference > 12).mean()  # thin lines (JPEG blurs them)
    box_pixels = with_boxes[difference > 80].astype(int)
    assert len(box_pixels) > 500
    assert ((box_pixels[:, 0] > 200) & (box_pixels[:, 1] > 170)).mean() > 0.8  # white or yellow
    assert_no_traceback(page)
