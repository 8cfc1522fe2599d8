"""seg.batch: names, inputs, atomic outputs, one bad file among good ones, zip and CSV contents.

The small synthetic scene and model defined here are reused by the tiling, CLI and Dask tests.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from seg import batch
from seg.batch import ApplyOptions, BatchError, reading
from seg.errors import ImageError

# --------------------------------------------------------------------------- shared fixtures


def synthetic_scene(shape=(96, 128), *, seed: int = 0, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Bright blobs on a dark, noisy background.

    Returns
    -------
    image : (H, W) uint8, or (H, W, C) uint8 when channels > 1
    truth : (H, W) uint8, 1 = background, 2 = blob
    """
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=shape), 6)
    truth = np.where(field > field.std() * 0.6, 2, 1).astype(np.uint8)
    grey = 60 + 120 * (truth == 2) + rng.normal(0, 12, size=shape)
    grey = np.clip(grey, 0, 255).astype(np.uint8)
    if channels == 1:
        return grey, truth
    tints = np.linspace(0.6, 1.0, channels)
    return np.clip(grey[..., None] * tints, 0, 255).astype(np.uint8), truth


def scribbles(truth: np.ndarray, *, seed: int = 0, fraction: float = 0.03) -> np.ndarray:
    """Sparse labels: a random few per cent of the pixels of each class (0 elsewhere)."""
    rng = np.random.default_rng(seed)
    keep = rng.random(truth.shape) < fraction
    return np.where(keep, truth, 0).astype(np.uint8)


def train_small(image: np.ndarray, truth: np.ndarray, *, preset: str | None = None, trees: int = 8):
    """A quick model: few trees, few labels, named classes."""
    import dataclasses

    from seg.features import PRESETS
    from seg.forest import ForestSettings
    from seg.model import train

    forest = dataclasses.replace(ForestSettings(), n_estimators=trees, random_state=0)
    settings = PRESETS[preset] if preset is not None else None
    return train(image, scribbles(truth), settings, ["background", "blob"], forest=forest)


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="module")
def grey_model():
    image, truth = synthetic_scene()
    return train_small(image, truth)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name, stem",
    [
        ("cells.png", "cells"),
        ("../../etc/passwd.png", "passwd"),
        ("C:\\Users\\me\\plate 1.tif", "plate_1"),
        ("a\x1b[31mred\nline.png", "a_31mredline"),
        ("..png", "png"),
        (".hidden.tif", "hidden"),
        ("", "image"),
        ("///", "image"),
        ("con.png", "_con"),
        ("zelle_α.tiff", "zelle_α"),
        ("x" * 300 + ".png", "x" * 100),
        ("archive.tar.gz", "archive.tar"),
        ("brain.NII.gz", "brain"),
    ],
)
def test_safe_stem_is_one_harmless_path_component(name, stem):
    assert batch.safe_stem(name) == stem
    assert "/" not in batch.safe_stem(name) and "\\" not in batch.safe_stem(name)


def test_unique_stems_disambiguate_same_names_from_different_folders():
    assert batch.unique_stems(["a/img.png", "b/img.png", "IMG.tif", "other.png"]) == [
        "img",
        "img_2",
        "IMG_3",
        "other",
    ]


def test_display_name_drops_folders_and_control_characters():
    assert batch.display_name("/tmp/x/evil\r\nname\x07.png") == "evilname.png"


# --------------------------------------------------------------------------- inputs and outputs


def test_collect_inputs_expands_folders_globs_and_files(tmp_path):
    for name in ["b.png", "a.png", "c.tif", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.png").write_bytes(b"x")
    found = batch.collect_inputs([tmp_path, str(tmp_path / "sub" / "*.png"), tmp_path / "a.png"])
    assert [p.name for p in found] == ["a.png", "b.png", "c.tif", "d.png"]


def test_a_folder_gives_every_readable_image_and_no_unreadable_one(tmp_path):
    """The folder filter is seg.images' one list: every file it picks is read, GIF/WebP are not picked."""
    from PIL import Image

    from seg.images import IMAGE_SUFFIXES, read_image

    picture = Image.fromarray(np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8))
    for suffix in (*IMAGE_SUFFIXES, ".gif", ".webp", ".PNG"):
        picture.save(tmp_path / f"x{suffix.lstrip('.')}{suffix}")
    found = batch.collect_inputs([tmp_path])
    assert sorted(p.suffix.lower() for p in found) == sorted([*IMAGE_SUFFIXES, ".png"])
    for path in found:
        assert read_image(path).shape == (1, 48, 64, 1), path.name
    for refused in (".gif", ".webp"):
        with pytest.raises(ImageError):
            read_image(tmp_path / f"x{refused[1:]}{refused}")


@pytest.mark.parametrize("case", ["missing", "empty folder", "no glob match", "nothing"])
def test_collect_inputs_refuses_with_a_clear_message(tmp_path, case):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    inputs = {
        "missing": [tmp_path / "nope.png"],
        "empty folder": [tmp_path / "empty"],
        "no glob match": [str(tmp_path / "*.tif")],
        "nothing": [],
    }[case]
    with pytest.raises(BatchError) as info:
        batch.collect_inputs(inputs)
    assert str(info.value)


def test_check_output_dir_refuses_a_path_below_a_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("in the way")
    with pytest.raises(BatchError, match="cannot write to the output folder"):
        batch.check_output_dir(blocker / "out")
    assert batch.check_output_dir(tmp_path / "new" / "out").is_dir()


# --------------------------------------------------------------------------- one image, many images


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_apply_source_matches_model_predict_and_measures(grey_model):
    image, _ = synthetic_scene(seed=3)
    result = batch.apply_source(grey_model, _png_bytes(image), "new", ApplyOptions(overlays=True))
    assert result.outcome.ok, result.outcome.error
    np.testing.assert_array_equal(result.labels[0], grey_model.predict(image))
    assert list(result.outputs) == ["new_mask.png", "new_overlay.png"]
    mask = np.asarray(Image.open(io.BytesIO(result.outputs["new_mask.png"])))
    np.testing.assert_array_equal(mask, result.labels[0])
    assert [row["class"] for row in result.outcome.rows] == ["background", "blob"]
    assert sum(row["area_fraction"] for row in result.outcome.rows) == pytest.approx(1.0)


def test_apply_source_reports_a_corrupt_file_instead_of_raising(grey_model):
    result = batch.apply_source(grey_model, b"\x89PNG\r\n\x1a\n garbage", "bad", source_name="dir/bad.png")
    assert not result.outcome.ok
    assert result.outcome.source == "bad.png"
    assert result.outputs == {} and result.labels is None
    assert "\n" not in result.outcome.error


def test_apply_source_reports_a_channel_mismatch(grey_model):
    rgb, _ = synthetic_scene(channels=3)
    result = batch.apply_source(grey_model, _png_bytes(rgb), "rgb")
    assert not result.outcome.ok
    # the same message as model.predict's: one channel check for the model, the tiles and the batch
    assert "trained on images with 1 channel(s) but the image has 3" in result.outcome.error


def test_stack_gives_one_mask_page_and_measurement_rows_per_frame(grey_model, tmp_path):
    frames = np.stack([synthetic_scene(seed=s)[0] for s in (4, 5, 6)])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, frames, photometric="minisblack")
    out = batch.check_output_dir(tmp_path / "out")
    outcome = batch.apply_file(grey_model, path, "stack", out)
    assert outcome.ok, outcome.error
    assert outcome.files == ["stack_mask.tif"]
    masks = tifffile.imread(tmp_path / "out" / "stack_mask.tif")
    assert masks.shape == (3, 96, 128)
    for t in range(3):
        np.testing.assert_array_equal(masks[t], grey_model.predict(frames[t]))
    assert [(row["frame"], row["class"]) for row in outcome.rows] == [
        (t, c) for t in range(3) for c in ("background", "blob")
    ]


def test_run_batch_skips_a_bad_file_and_finishes_the_others(grey_model, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for seed in (1, 2):
        write_png(inputs / f"good{seed}.png", synthetic_scene(seed=seed)[0])
    (inputs / "bad.png").write_bytes(b"not an image at all")
    seen = []
    report = batch.run_batch(
        grey_model,
        batch.collect_inputs([inputs]),
        tmp_path / "out",
        ApplyOptions(probabilities=True),
        progress=lambda done, total, outcome: seen.append((done, total, outcome.source)),
    )
    assert [o.source for o in report.failed] == ["bad.png"]
    assert len(report.done) == 2
    assert seen == [(1, 3, "bad.png"), (2, 3, "good1.png"), (3, 3, "good2.png")]
    assert report.summary().startswith("2 of 3 images done")
    assert "1 failed: bad.png: " in report.summary()
    out = sorted(os.listdir(tmp_path / "out"))
    assert out == [
        "good1_mask.png",
        "good1_probabilities.tif",
        "good2_mask.png",
        "good2_probabilities.tif",
        "measurements.csv",
    ]
    proba = tifffile.imread(tmp_path / "out" / "good1_probabilities.tif")
    assert proba.dtype == np.float32 and proba.shape == (2, 96, 128)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "measurements.csv").read_text())))
    assert [(r["image"], r["class"]) for r in rows] == [
        ("good1", "background"),
        ("good1", "blob"),
        ("good2", "background"),
        ("good2", "blob"),
    ]


def test_results_zip_holds_sanitised_names_and_the_csv(grey_model):
    image, _ = synthetic_scene(seed=7)
    names = ["../../evil name.png", "sub\\evil name.png", "ok.png"]
    stems = batch.unique_stems(names)
    results = [
        batch.apply_source(grey_model, _png_bytes(image), stem, source_name=name) for name, stem in zip(names, stems)
    ]
    results.append(batch.apply_source(grey_model, b"junk", "junk", source_name="junk.png"))
    archive = zipfile.ZipFile(io.BytesIO(batch.results_zip(results)))
    assert sorted(archive.namelist()) == [
        "evil_name_2_mask.png",
        "evil_name_mask.png",
        "measurements.csv",
        "ok_mask.png",
    ]
    rows = list(csv.DictReader(io.StringIO(archive.read("measurements.csv").decode())))
    assert len(rows) == 3 * 2
    assert {r["image"] for r in rows} == {"evil_name", "evil_name_2", "ok"}


def test_measurements_csv_has_one_header_with_rows_and_without(grey_model):
    from seg.measure import BATCH_COLUMNS

    image, _ = synthetic_scene(seed=7)
    broken = batch.ImageOutcome("x", "x.png", "broken")
    done = batch.apply_source(grey_model, _png_bytes(image), "ok", source_name="ok.png").outcome
    empty = batch.measurements_csv([broken])
    full = batch.measurements_csv([broken, done])
    assert empty == ",".join(BATCH_COLUMNS) + "\n"
    assert full.splitlines()[0] == empty.rstrip("\n")
    assert len(BATCH_COLUMNS) == 10 and list(csv.DictReader(io.StringIO(full)))[0]["image"] == "ok"


def test_overlay_thumbnail_is_small(grey_model):
    image, truth = synthetic_scene()
    thumb = batch.overlay_thumbnail(grey_model, image[..., None], truth, max_side=40)
    assert thumb.dtype == np.uint8 and thumb.shape[2] == 3 and max(thumb.shape[:2]) == 40


def test_options_refuse_unknown_tiling():
    with pytest.raises(BatchError, match="tiling"):
        ApplyOptions(tiling="sometimes")


def test_big_uncompressed_tiffs_are_memory_mapped_and_give_the_same_masks(grey_model, tmp_path, monkeypatch):
    image = synthetic_scene((200, 150), seed=12)[0]
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, image)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.stack([image, image[::-1]]), photometric="minisblack")
    squeezed = tmp_path / "squeezed.tif"
    tifffile.imwrite(squeezed, image, compression="zlib")
    monkeypatch.setattr(reading, "MEMMAP_ABOVE_BYTES", 0)  # where open_lazily reads it
    for path, shape in [(plain, (1, 200, 150, 1)), (stack, (2, 200, 150, 1))]:
        lazy = reading.open_lazily(path, max_pixels=10**6)
        assert lazy.shape == shape
        assert isinstance(lazy, np.memmap) or isinstance(lazy.base, np.memmap)
    assert reading.open_lazily(squeezed, max_pixels=10**6) is None  # compressed: read normally
    with pytest.raises(ImageError, match="--max-pixels"):
        reading.open_lazily(plain, max_pixels=1000)
    options = ApplyOptions(tiling="always", tile=64)
    for path in (plain, squeezed, stack):
        outcome = batch.apply_file(grey_model, path, path.stem, tmp_path, options)
        assert outcome.ok, outcome.error
    for path in (plain, squeezed):
        mask = np.asarray(Image.open(tmp_path / f"{path.stem}_mask.png"))
        np.testing.assert_array_equal(mask, grey_model.predict(image))
    masks = tifffile.imread(tmp_path / "stack_mask.tif")
    np.testing.assert_array_equal(masks[1], grey_model.predict(image[::-1]))


def test_an_image_over_the_size_limit_says_how_to_raise_it(grey_model, tmp_path):
    path = write_png(tmp_path / "wide.png", synthetic_scene((40, 60), seed=1)[0])
    outcome = batch.apply_file(grey_model, path, "wide", tmp_path, ApplyOptions(max_pixels=1000))
    assert not outcome.ok and outcome.error.endswith("(command line: --max-pixels 2400)")
