"""The drawing tools in a real browser: choose line, rectangle and eraser in the sidebar, draw
with the mouse, and check the label image the app built from them.

The label image is read back the way a user keeps it: the "Annotations JSON" download, parsed
and rasterised by :mod:`seg.strokes` (the same code the app trains on). Tools are chosen
through their widget (key ``w_tool``, by label), never by canvas internals, so the test holds
whatever else the sidebar or the canvas toolbar grows.
"""

from __future__ import annotations

import numpy as np
import pytest

from seg.strokes import Annotations
from tests.e2e import helpers as H

pytestmark = pytest.mark.e2e

COINS_SIZE = (384, 303)  # (width, height) of the default sample
LINE = [(10, 158), (300, 158)]  # background: the dark gap between two rows of coins
# coin: a box inside the big coin at (348, 186) (radius ~31). The component makes a rectangle at
# least twice the stroke width on each side (this one is bigger, so it is what was dragged), and
# its border (12 px) lies beyond the dragged box on the right and below (Fabric's origin is the
# border's outer corner): shown, and labelled, is [330, 368] x [168, 206].
RECTANGLE = [(330, 168), (356, 194)]
FREEHAND = [(195, 123), (215, 123)]  # coin: along the coin at (205, 123)
ERASER = [(140, 158), (170, 158)]  # across the middle of the line


def pick_tool(page, label: str) -> None:
    """Choose the drawing tool ``label`` (Freehand, Line, Rectangle, Eraser) and wait for its rerun."""
    before = H.update_number(page)
    option = H.key_locator(page, "w_tool").get_by_role("radio", name=label, exact=True)  # a segmented control
    option.click()
    page.wait_for_function(
        "el => el.getAttribute('aria-checked') === 'true'", arg=option.element_handle(), timeout=H.UPDATE_TIMEOUT_MS
    )
    H.wait_for_update(page, before)
    H.wait_until_settled(page)


def drag(page, points) -> int:
    """Press at the first image point, move through the others, release; wait for the rerun."""
    H.wait_until_settled(page)
    box = H.canvas_box(page, *COINS_SIZE)
    return H.draw_and_wait(page, box, points, steps=12)


def test_line_rectangle_freehand_and_eraser_build_the_label_image(page, server, artifacts, tmp_path):
    H.open_app(page, server.url)
    plain_hash = H.background_hash(page)

    H.pick_class(page, 0)
    pick_tool(page, "Line")
    drag(page, LINE)
    H.pick_class(page, 1)
    pick_tool(page, "Rectangle")
    drag(page, RECTANGLE)
    pick_tool(page, "Freehand")
    drag(page, FREEHAND)
    H.wait_for_background_change(page, plain_hash)  # two classes: the overlay is shown
    pick_tool(page, "Eraser")
    drag(page, ERASER)
    H.wait_until_settled(page)
    assert not H.exception_texts(page) and not H.error_texts(page), H.error_texts(page)
    page.mouse.move(5, 5)
    H.screenshot(page, artifacts / "tools-line-rect-eraser.png")

    annotations = Annotations.from_json(H.download(page, "w_dl_annotations", tmp_path).read_text())
    assert [(s.kind, s.label) for s in annotations.strokes] == [("line", 1), ("rect", 2), ("path", 2), ("path", 0)]
    line, rect = annotations.strokes[0], annotations.strokes[1]
    # Mouse positions land within a pixel of where they were aimed (canvas ~2x the image).
    np.testing.assert_allclose(line.points, LINE, atol=1.0)
    assert line.width == pytest.approx(12, abs=0.1)  # the width slider, in image pixels
    low, high = np.min(rect.points, axis=0), np.max(rect.points, axis=0)
    np.testing.assert_allclose(low, RECTANGLE[0], atol=1.0)
    np.testing.assert_allclose(high, np.array(RECTANGLE[1]) + rect.width, atol=1.0)

    labels = annotations.labels(0)
    assert labels.shape == (303, 384)
    row = labels[158]
    # The line, 12 px wide, labels its row from end to end ... except where the eraser went.
    assert (row[12:130] == 1).all() and (row[180:298] == 1).all()
    assert (row[146:165] == 0).all()
    assert (labels[153:164, 20:120] == 1).all() and (labels[140:146, 20:120] == 0).all()
    # The rectangle labels its whole area (not only its outline).
    inside = labels[int(low[1]) + 1 : int(high[1]) - 1, int(low[0]) + 1 : int(high[0]) - 1]
    assert inside.size >= 34 * 34 and (inside == 2).all()
    # The freehand stroke labels the pixels under it.
    assert (labels[123, 198:213] == 2).all()

    # The segmentation (downloaded mask) follows: the rectangle's coin is a coin, the gap background.
    mask_path = H.download(page, "w_dl_mask", tmp_path)
    from PIL import Image

    mask = np.asarray(Image.open(mask_path))
    assert (mask[170:204, 332:366] == 2).mean() > 0.95
    assert (mask[158, 20:120] == 1).mean() > 0.9
