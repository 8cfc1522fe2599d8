"""The main page in a real browser: mouse strokes -> live overlay -> downloaded mask.

One server for the whole run (see conftest.py), a fresh Streamlit session per test. Every wait
is on a condition: the status marker "update #N" (written last in every run) and the canvas
background (painted by the component after the run) — never on a fixed sleep.

Screenshots of the main states go to ``tests/e2e/artifacts/`` (git-ignored). With
``SEG_UPDATE_README_SCREENSHOT=1`` the first test also rewrites ``tests/e2e/readme-screenshot.png``
(committed, shown in the README); CI never sets it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.e2e import helpers as H

pytestmark = pytest.mark.e2e

COINS_SIZE = (384, 303)  # (width, height) of the default sample
# Freehand strokes as (column, row) image pixels: one across the dark gap between two rows of
# coins, three inside coins (the same places the AppTest suite uses).
COINS_BACKGROUND = [(10, 158), (150, 158), (300, 158)]
COINS_COIN = [[(198, 193), (226, 193)], [(195, 123), (215, 123)], [(258, 118), (282, 118)]]


# --------------------------------------------------------------------------- synthetic uploads (H.disks_image)

UPLOAD_CENTRES = [(60, 70), (60, 230), (145, 150)]  # 200 x 300 image
UPLOAD_BACKGROUND = [(15, 103), (150, 103), (285, 103)]  # row 103: between the disks
UPLOAD_DISKS = [[(137, 145), (163, 145)], [(218, 60), (242, 60)]]


# --------------------------------------------------------------------------- page helpers


def assert_strokes_kept(page, ink: int, when: str) -> int:
    """The strokes drawn so far are still on the canvas (a remounted canvas would drop them)."""
    now = H.ink_pixels(page)
    assert now >= ink, (
        f"strokes vanished from the canvas {when}: {ink} stroke pixels before, {now} after. The canvas "
        "was remounted (e.g. an element appeared above it) and the next stroke will drop the old ones."
    )
    return now


def draw_classes(page, image_size, strokes_by_class) -> int:
    """Draw each class's strokes (class 1 first), waiting for each stroke's rerun; returns N.

    Checks after every rerun that no stroke drawn before has vanished from the canvas.
    """
    number = H.update_number(page)
    ink = H.ink_pixels(page)
    for index, strokes in enumerate(strokes_by_class):
        H.pick_class(page, index)
        ink = assert_strokes_kept(page, ink, f"after picking class {index + 1}")
        for points in strokes:
            box = H.canvas_box(page, *image_size)
            number = H.draw_and_wait(page, box, points)
            ink = assert_strokes_kept(page, ink, f"after the rerun of stroke {points}")
    H.wait_until_settled(page)
    assert_strokes_kept(page, ink, "after the last stroke's reruns")
    return number


def overlay_appeared(page, plain_picture: np.ndarray, plain_hash: str) -> None:
    """Wait for the segmentation overlay: the background differs from the plain image almost everywhere."""
    H.wait_for_background_change(page, plain_hash)
    fraction = H.changed_fraction(plain_picture, H.background_picture(page))
    # The segmentation view tints every pixel with its class colour (opacity 0.45).
    assert fraction > 0.5, f"only {fraction:.0%} of the canvas changed: no overlay? status {H.status_text(page)!r}"


def stroke_pixels(points, shape) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the image pixels on the centre line of a polyline of (col, row) points."""
    rows, cols = [], []
    for (c0, r0), (c1, r1) in zip(points, points[1:]):
        n = int(max(abs(c1 - c0), abs(r1 - r0))) + 1
        cols.append(np.linspace(c0, c1, n))
        rows.append(np.linspace(r0, r1, n))
    r = np.clip(np.rint(np.concatenate(rows)).astype(int), 0, shape[0] - 1)
    c = np.clip(np.rint(np.concatenate(cols)).astype(int), 0, shape[1] - 1)
    return r, c


def download_mask(page, tmp_path: Path) -> tuple[Path, np.ndarray]:
    path = H.download(page, "w_dl_mask", tmp_path)
    return path, np.asarray(Image.open(path))


def assert_strokes_predicted(mask: np.ndarray, strokes_by_class) -> None:
    """Most pixels under each stroke carry that stroke's class in the downloaded mask."""
    for label, strokes in enumerate(strokes_by_class, start=1):
        for points in strokes:
            rows, cols = stroke_pixels(points, mask.shape)
            agreement = float((mask[rows, cols] == label).mean())
            assert agreement > 0.8, (
                f"class {label} stroke {points}: only {agreement:.0%} of its pixels predicted {label}"
            )


def assert_no_traceback(page) -> None:
    assert not H.exception_texts(page), H.exception_texts(page)
    assert "Traceback" not in page.locator("body").inner_text()


# --------------------------------------------------------------------------- 1. sample + strokes


def test_strokes_of_two_classes_segment_the_sample_and_the_mask_agrees(
    page, server, artifacts, tmp_path, update_readme_screenshot
):
    H.open_app(page, server.url)
    assert "coins.png" in page.locator('[data-testid="stSidebar"]').inner_text()
    assert not H.error_texts(page)
    H.screenshot(page, artifacts / "01-start.png")
    plain, plain_hash = H.background_picture(page), H.background_hash(page)
    assert plain.shape[:2] == (600, 760)  # the 384x303 sample enlarged twice (at most 760 px)

    strokes = [[COINS_BACKGROUND], COINS_COIN]
    draw_classes(page, COINS_SIZE, strokes)
    overlay_appeared(page, plain, plain_hash)
    assert "ready · update #" in H.status_text(page)
    assert_no_traceback(page)
    page.mouse.move(5, 5)  # away from the canvas: hides its toolbar for the screenshots
    H.screenshot(page, artifacts / "02-strokes-overlay.png")
    if update_readme_screenshot is not None:
        H.screenshot(page, update_readme_screenshot)

    # The uncertainty view repaints the background with a heat map; strokes stay.
    before, seen, ink = H.update_number(page), H.background_hash(page), H.ink_pixels(page)
    H.pick_select(page, "w_view", "Uncertainty (bright = unsure: draw there)")
    H.wait_for_update(page, before + 1)
    H.wait_for_background_change(page, seen)
    assert_strokes_kept(page, ink, "after switching to the uncertainty view")
    H.screenshot(page, artifacts / "03-uncertainty.png")

    path, mask = download_mask(page, tmp_path)
    assert path.name == "coins_mask.png"
    assert mask.shape == (303, 384) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {1, 2}, np.unique(mask)  # every pixel predicted, K = 2
    assert_strokes_predicted(mask, strokes)
    assert 0.15 < (mask == 2).mean() < 0.6  # coins cover about a third of the picture


# --------------------------------------------------------------------------- 2. uploads


def test_uploaded_16bit_tiff_is_segmented_where_drawn(page, server, artifacts, tmp_path):
    image, truth = H.disks_image(200, 300, UPLOAD_CENTRES, dtype=np.uint16)
    source = tmp_path / "disks16.tif"
    tifffile.imwrite(source, image)
    H.open_app(page, server.url)
    before = H.update_number(page)
    H.upload_files(page, "w_image_upload", source)
    H.wait_for_update(page, before + 1)
    H.wait_until_settled(page)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "disks16.tif" in sidebar and "300×200" in sidebar and "uint16" in sidebar
    plain, plain_hash = H.background_picture(page), H.background_hash(page)
    assert plain.shape[:2] == (400, 600)

    strokes = [[UPLOAD_BACKGROUND], UPLOAD_DISKS]
    draw_classes(page, (300, 200), strokes)
    overlay_appeared(page, plain, plain_hash)
    page.mouse.move(5, 5)
    H.screenshot(page, artifacts / "04-upload-16bit.png")

    path, mask = download_mask(page, tmp_path)
    assert path.name == "disks16_mask.png" and mask.shape == (200, 300)
    assert set(np.unique(mask)) <= {1, 2}
    assert_strokes_predicted(mask, strokes)
    assert (mask == truth).mean() > 0.9  # the disks nobody drew on are found too


def test_stack_gets_a_frame_slider_and_strokes_on_two_frames_segment_it(page, server, artifacts, tmp_path):
    centres = [[(50, 60), (110, 140)], [(55, 70), (105, 130)], [(60, 80), (100, 120)]]
    frames = [H.disks_image(160, 200, c, seed=i)[0] for i, c in enumerate(centres)]
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, np.stack(frames), photometric="minisblack")  # 3 grey pages, not RGB
    H.open_app(page, server.url)
    before = H.update_number(page)
    H.upload_files(page, "w_image_upload", source)
    H.wait_for_update(page, before + 1)
    H.wait_until_settled(page)
    H.key_locator(page, "w_frame").wait_for(state="visible")
    slider = H.key_locator(page, "w_frame").locator('input[type="range"]')
    assert slider.get_attribute("max") == "2"
    assert "3 frames" in page.locator('[data-testid="stSidebar"]').inner_text()

    # Frame 0: background between the disks, one disk.
    size = (200, 160)
    plain_hash = H.background_hash(page)
    draw_classes(page, size, [[[(10, 80), (100, 80)]], [[(50, 50), (70, 50)]]])
    H.wait_for_background_change(page, plain_hash)

    # Frame 1: a fresh canvas for that frame; one more stroke of each class there.
    before = H.update_number(page)
    slider.focus()
    page.keyboard.press("ArrowRight")
    H.wait_for_update(page, before + 1)
    H.wait_until_settled(page)
    assert slider.input_value() == "1"
    shown = H.background_hash(page)
    number = draw_classes(page, size, [[[(10, 150), (190, 150)]], [[(120, 105), (140, 105)]]])
    H.wait_for_background_change(page, shown)
    assert number > before
    assert "Strokes on frame(s) 0, 1" in page.locator('[data-testid="stMain"]').inner_text()
    assert_no_traceback(page)
    page.mouse.move(5, 5)
    H.screenshot(page, artifacts / "05-stack-frame-slider.png")

    path, mask = download_mask(page, tmp_path)
    assert path.name == "stack_frame001_mask.png" and mask.shape == (160, 200)
    assert set(np.unique(mask)) <= {1, 2}
    truth = H.disks_image(160, 200, centres[1], seed=1)[1]
    assert (mask == truth).mean() > 0.9


# --------------------------------------------------------------------------- 3. settings


def test_changing_the_feature_preset_retrains_and_repaints_the_overlay(page, server, artifacts):
    H.open_app(page, server.url)
    plain, plain_hash = H.background_picture(page), H.background_hash(page)
    draw_classes(page, COINS_SIZE, [[COINS_BACKGROUND], COINS_COIN[:1]])
    overlay_appeared(page, plain, plain_hash)
    before, shown = H.update_number(page), H.background_hash(page)

    H.key_locator(page, "settings_panel").locator("summary").click()
    H.pick_select(page, "w_preset", "large structures")
    number = H.wait_for_update(page, before + 1)
    H.wait_for_background_change(page, shown)
    assert number > before
    assert "large structures" in page.locator('[data-testid="stMain"]').inner_text()  # the model line
    assert not H.error_texts(page)
    assert_no_traceback(page)


# --------------------------------------------------------------------------- 4. bad upload


def test_a_text_file_named_png_is_refused_clearly_and_the_app_keeps_working(page, server, artifacts):
    H.open_app(page, server.url)
    before = H.update_number(page)
    H.upload_files(
        page,
        "w_image_upload",
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"these are my notes, not a picture\n" * 20},
    )
    error = page.locator('[data-testid="stSidebar"] [data-testid="stAlertContentError"]')
    error.first.wait_for(state="visible")  # under the uploader, in the sidebar
    H.wait_for_update(page, before)
    H.wait_until_settled(page)
    message = error.first.inner_text()
    assert "Cannot read 'notes.png'" in message, message
    assert_no_traceback(page)
    H.screenshot(page, artifacts / "06-bad-upload.png")

    # Still on the sample, and strokes still segment it.
    assert "coins.png" in page.locator('[data-testid="stSidebar"]').inner_text()
    plain, plain_hash = H.background_picture(page), H.background_hash(page)
    draw_classes(page, COINS_SIZE, [[COINS_BACKGROUND], COINS_COIN[:1]])
    overlay_appeared(page, plain, plain_hash)
    assert_no_traceback(page)
