"""The batch page in a real browser: upload a model bundle and two images, run, download the zip.

The bundle is made with the engine (``seg.train`` on a synthetic image, ``seg.persist.save_model``),
exactly as a user would download it from the main page.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.e2e import helpers as H

pytestmark = pytest.mark.e2e

BATCH_PAGE = "Batch_apply"  # URL path of pages/1_Batch_apply.py


def make_bundle(path) -> None:
    """A small two-class model (background, disk) trained on sparse scribbles of a synthetic image."""
    from seg.forest import ForestSettings
    from seg.model import train
    from seg.persist import save_model

    image, truth = H.disks_image(160, 200, [(50, 60), (110, 140)], seed=7)
    labels = np.zeros_like(truth)
    labels[::9, ::9] = truth[::9, ::9]  # a sparse grid of labelled pixels, like many short scribbles
    model = train(
        image,
        labels,
        None,
        ["background", "disk"],
        forest=ForestSettings(n_estimators=20, max_depth=10, random_state=0),
    )
    save_model(model, path)


def test_batch_page_segments_two_uploads_and_the_zip_holds_their_masks(page, server, artifacts, tmp_path):
    bundle = tmp_path / "disks.segmodel"
    make_bundle(bundle)
    first, first_truth = H.disks_image(150, 180, [(40, 50), (100, 120)], seed=11)
    second, second_truth = H.disks_image(120, 160, [(60, 80)], dtype=np.uint16, seed=12)
    Image.fromarray(first).save(tmp_path / "first.png")
    tifffile.imwrite(tmp_path / "second.tif", second)

    page.goto(server.page_url(BATCH_PAGE))
    H.key_locator(page, "w_batch_model_upload").wait_for(state="visible", timeout=H.UPDATE_TIMEOUT_MS)
    H.wait_idle(page)
    H.upload_files(page, "w_batch_model_upload", bundle)
    page.get_by_text("Classes: background, disk").wait_for(timeout=H.UPDATE_TIMEOUT_MS)
    H.upload_files(page, "w_batch_images", [tmp_path / "first.png", tmp_path / "second.tif"])
    run = H.button(page, "w_batch_run")
    page.wait_for_function(
        "b => !b.disabled && b.innerText.includes('Segment 2 images')",
        arg=run.element_handle(),
        timeout=H.UPDATE_TIMEOUT_MS,
    )
    H.wait_idle(page)
    run.click()
    zip_button = H.button(page, "w_batch_zip")
    zip_button.wait_for(state="visible", timeout=H.UPDATE_TIMEOUT_MS)
    H.wait_idle(page)
    assert not H.error_texts(page) and not H.exception_texts(page)
    assert "Traceback" not in page.locator("body").inner_text()
    H.screenshot(page, artifacts / "07-batch-results.png")

    path = H.download(page, "w_batch_zip", tmp_path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {"first_mask.png", "second_mask.png"} <= names, names
        assert len([n for n in names if "_mask." in n]) == 2, names
        masks = {n: np.asarray(Image.open(io.BytesIO(archive.read(n)))) for n in ("first_mask.png", "second_mask.png")}
    for name, truth in (("first_mask.png", first_truth), ("second_mask.png", second_truth)):
        mask = masks[name]
        assert mask.shape == truth.shape, (name, mask.shape)
        assert set(np.unique(mask)) <= {1, 2}, (name, np.unique(mask))
        assert (mask == truth).mean() > 0.9, name  # the model finds the disks in both files


def test_the_sidebar_names_both_pages_and_leads_to_the_batch_page(page, server):
    page.goto(server.page_url(""))
    nav = page.locator('[data-testid="stSidebarNav"] a')
    nav.first.wait_for(state="visible", timeout=H.UPDATE_TIMEOUT_MS)
    H.wait_idle(page)  # before the first run the menu lists the pages/ files by their file names
    labels = [t.strip().splitlines()[-1] for t in nav.all_inner_texts()]  # after the icon's name
    assert labels == ["Segment", "Batch apply"]
    nav.filter(has_text="Batch apply").click()
    H.key_locator(page, "w_batch_model_choice").wait_for(state="visible", timeout=H.UPDATE_TIMEOUT_MS)
    # The address bar follows the page content a moment later: wait for it (fails if it never does).
    page.wait_for_url(f"**/{BATCH_PAGE}", timeout=H.UPDATE_TIMEOUT_MS)
    assert page.get_by_role("heading", name="Apply a model to many images").is_visible()
