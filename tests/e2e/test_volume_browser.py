"""A volume in a real browser: open a z-stack, scribble on two slices, see a third segmented,
look across slices (XZ view), segment the whole volume and download its mask.

Every wait is on a condition (the status marker "update #N" written last in every run, the
canvas background, the volume panel's caption), never on a fixed sleep. Screenshots go to
``tests/e2e/artifacts/``; with ``SEG_UPDATE_README_SCREENSHOT=1`` the test also rewrites
``tests/e2e/volume-screenshot.png`` (committed, shown in the README); CI never sets it.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import seg
from seg.render import PALETTE
from tests.e2e import helpers as H
from tests.e2e.test_app_browser import assert_no_traceback, draw_classes

pytestmark = pytest.mark.e2e

VOLUME_SCREENSHOT = Path(__file__).resolve().parent / "volume-screenshot.png"
SHAPE = (64, 128, 128)
SPACING = (2.0, 0.5, 0.5)  # µm: slices 4x further apart than pixels
# Balls (z, y, x centre in voxels), 10 µm radius: 5 slices in z, 20 pixels in y and x.
CENTRES = [(12, 40, 40), (12, 90, 95), (32, 64, 64), (52, 40, 90), (52, 95, 35)]
RADIUS_UM = 10.0


def balls_volume() -> tuple[np.ndarray, np.ndarray]:
    """(Z, Y, X) uint8 voxels of bright balls in a dark, noisy box, and the balls (bool)."""
    zz, yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    balls = np.zeros(SHAPE, bool)
    for z, y, x in CENTRES:
        distance = ((zz - z) * SPACING[0]) ** 2 + ((yy - y) * SPACING[1]) ** 2 + ((xx - x) * SPACING[2]) ** 2
        balls |= distance < RADIUS_UM**2
    rng = np.random.default_rng(3)
    return (50 + 140 * balls + rng.normal(0, 12, SHAPE)).clip(0, 255).astype(np.uint8), balls


def write_volume(path: Path, data: np.ndarray) -> None:
    dz, dy, dx = SPACING
    metadata = {"axes": "ZYX", "spacing": dz, "unit": "um"}
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / dx, 1 / dy), metadata=metadata)


def go_to_slice(page, z: int) -> None:
    """Move the "Slice (z)" slider to ``z`` and wait for the page to settle.

    The value is set next to ``z`` and one arrow key makes the last step: Streamlit sends a
    slider's value when a key or the mouse is released, not on every change of the input.
    """
    slider = H.key_locator(page, "w_frame").locator('input[type="range"]')
    before = H.update_number(page)
    slider.fill(str(z - 1))
    slider.focus()
    page.keyboard.press("ArrowRight")
    H.wait_for_update(page, before + 1)
    H.wait_until_settled(page)
    assert slider.input_value() == str(z)


def tint_classes(overlay: np.ndarray, plain: np.ndarray, colors: list[str], opacity: float) -> np.ndarray:
    """Which class colour (1..K) tints each pixel of ``overlay`` = (1 - a) plain + a colour."""
    tint = (overlay.astype(np.float64) - (1 - opacity) * plain.astype(np.float64)) / opacity
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colors], np.float64)
    distance = ((tint[..., None, :] - rgb) ** 2).sum(axis=-1)
    return distance.argmin(axis=-1) + 1


def wait_for_caption(page, locator, text: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in locator.inner_text():
        if time.monotonic() > deadline:
            raise H.E2EError(f"{text!r} did not appear; errors: {H.error_texts(page)}")
        page.wait_for_timeout(100)
    H.wait_until_settled(page)


def test_volume_scribble_two_slices_overlay_on_a_third_and_download_the_mask(
    page, server, artifacts, tmp_path, update_readme_screenshot
):
    data, balls = balls_volume()
    source = tmp_path / "balls.tif"
    write_volume(source, data)
    H.open_app(page, server.url)
    before = H.update_number(page)
    H.upload_files(page, "w_image_upload", source)
    H.wait_for_update(page, before + 1)
    H.wait_until_settled(page)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "64 slices" in sidebar and "voxel 2 × 0.5 × 0.5 µm" in sidebar, sidebar
    assert "Slice (z)" in page.locator('[data-testid="stMain"]').inner_text()

    size = (SHAPE[2], SHAPE[1])  # (width, height) of a slice
    # Slice 12: background along the top rows, inside the first ball. Slice 52: the same there.
    go_to_slice(page, 12)
    draw_classes(page, size, [[[(5, 4), (60, 4), (120, 4)]], [[(32, 40), (48, 40)]]])
    go_to_slice(page, 52)
    shown = H.background_hash(page)
    draw_classes(page, size, [[[(5, 124), (60, 124), (120, 124)]], [[(82, 40), (98, 40)]]])
    H.wait_for_background_change(page, shown)
    assert "Strokes on slice(s) 12, 52" in page.locator('[data-testid="stMain"]').inner_text()

    # Slice 32 was never scribbled: its ball is segmented, as the overlay on the canvas shows.
    go_to_slice(page, 32)
    overlay = H.background_picture(page)
    H.pick_select(page, "w_view", "Image only")
    H.wait_until_settled(page)
    plain = H.background_picture(page)
    H.pick_select(page, "w_view", "Segmentation")
    H.wait_until_settled(page)
    height, width = overlay.shape[:2]
    truth = balls[32][np.arange(height) * SHAPE[1] // height][:, np.arange(width) * SHAPE[2] // width]
    colors = list(PALETTE[:2])
    painted = tint_classes(overlay, plain, colors, 0.45)
    assert (painted == np.where(truth, 2, 1)).mean() > 0.95

    # The XZ view across all slices, then the whole volume with a progress bar.
    H.key_locator(page, "ortho_panel").locator("summary").click()
    wait_for_caption(page, H.key_locator(page, "ortho_panel"), "XZ at row")
    H.key_locator(page, "volume_panel").locator("summary").click()
    H.button(page, "w_segment_volume").click()
    wait_for_caption(page, H.key_locator(page, "volume_panel"), "slices segmented in")
    assert_no_traceback(page)
    page.mouse.move(5, 5)
    H.screenshot(page, artifacts / "20-volume.png")
    if update_readme_screenshot is not None:
        H.screenshot(page, VOLUME_SCREENSHOT)

    mask_path = H.download(page, "w_dl_volume_mask", tmp_path)
    assert mask_path.name == "balls_mask.tif"
    mask = tifffile.imread(mask_path)
    assert mask.shape == SHAPE and set(np.unique(mask)) <= {1, 2}
    assert ((mask == 2) == balls).mean() > 0.98
    model = seg.load_model(H.download(page, "w_dl_model", tmp_path).read_bytes())
    assert model.dims == 3 and model.volume.spacing == SPACING
    np.testing.assert_array_equal(mask, model.predict(seg.read_volume(source)))
    slice_mask = np.asarray(Image.open(io.BytesIO(H.download(page, "w_dl_mask", tmp_path).read_bytes())))
    np.testing.assert_array_equal(slice_mask, mask[32])  # the overlay's slice is the volume's
