"""Objects from the command line and batch (``--objects``): files, CSV, and tiled == untiled."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import tifffile

from seg.cli import main
from tests.unit.test_objects import TILE, crossing_seams, seam_disks_scene


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The seam-disks scene as disks.png, a 2-frame stack.tif and the model as disks.segmodel."""
    from PIL import Image

    from seg.persist import save_model

    folder = tmp_path_factory.mktemp("objects_cli")
    image, model, _ = seam_disks_scene()
    save_model(model, folder / "disks.segmodel")
    Image.fromarray(image).save(folder / "disks.png")
    tifffile.imwrite(folder / "stack.tif", np.stack([image, image[::-1]]))
    return folder, model, image


def _read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.mark.slow
def test_objects_are_the_same_whether_frames_are_tiled_or_not(workspace, capsys):
    folder = workspace[0]
    whole, tiled = folder / "whole", folder / "tiled"
    base = ["apply", str(folder / "disks.segmodel"), str(folder / "disks.png"), "--objects", "disk", "-q"]
    assert main([*base, "--out", str(whole), "--tiling", "never"]) == 0
    assert main([*base, "--out", str(tiled), "--tiling", "always", "--tile", str(TILE)]) == 0

    objects = tifffile.imread(whole / "disks_objects.tif")
    np.testing.assert_array_equal(tifffile.imread(tiled / "disks_objects.tif"), objects)
    assert (tiled / "objects.csv").read_bytes() == (whole / "objects.csv").read_bytes()
    rows = _read_csv(whole / "objects.csv")
    assert objects.dtype == np.uint16 and len(rows) == objects.max() >= 20
    # Objects that straddle a seam are one object each in the tiled run (not cut in two).
    boxes = [[int(r[f"bbox_{side}"]) for r in rows] for side in ("top", "left", "bottom", "right")]
    assert crossing_seams(*boxes) >= 8
    # and the rows describe the label image
    first = rows[0]
    assert (first["image"], first["frame"], first["object"]) == ("disks", "0", "1")
    assert int(first["area"]) == int((objects == 1).sum())
    assert list(rows[0])[:5] == ["image", "frame", "object", "area", "centroid_y"]


def test_objects_by_class_number_on_a_stack_and_no_objects_csv_without_the_option(workspace):
    folder = workspace[0]
    out = folder / "stack_out"
    assert (
        main(
            [
                "apply",
                str(folder / "disks.segmodel"),
                str(folder / "stack.tif"),
                "--out",
                str(out),
                "--objects",
                "2",
                "--probabilities",
                "-q",
            ]
        )
        == 0
    )
    pages = tifffile.imread(out / "stack_objects.tif")
    assert pages.shape == (2, 256, 256)
    rows = _read_csv(out / "objects.csv")
    assert {r["frame"] for r in rows} == {"0", "1"}
    assert sum(r["frame"] == "1" for r in rows) == pages[1].max()
    assert all(0.5 <= float(r["probability_mean"]) <= 1 for r in rows)  # argmax pixels of the class
    plain = folder / "plain_out"
    assert main(["apply", str(folder / "disks.segmodel"), str(folder / "disks.png"), "--out", str(plain), "-q"]) == 0
    assert not (plain / "objects.csv").exists() and not (plain / "disks_objects.tif").exists()


def test_an_unknown_objects_class_is_refused_before_anything_is_written(workspace, capsys):
    folder, _, _ = workspace
    out = folder / "never"
    for bad in ("nucleus", "3", "0"):
        assert (
            main(
                [
                    "apply",
                    str(folder / "disks.segmodel"),
                    str(folder / "disks.png"),
                    "--out",
                    str(out),
                    "--objects",
                    bad,
                ]
            )
            == 1
        )
        error = capsys.readouterr().err
        assert error.startswith("error: --objects") and "1 = 'background', 2 = 'disk'" in error
        assert "Traceback" not in error
    assert not out.exists()


def test_objects_are_refused_on_the_zarr_path_instead_of_ignored(workspace, capsys):
    folder = workspace[0]
    out = folder / "labels.zarr"
    assert (
        main(
            ["apply", str(folder / "disks.segmodel"), str(folder / "disks.png"), "--out", str(out), "--objects", "disk"]
        )
        == 1
    )
    assert capsys.readouterr().err.startswith("error: --objects works on images read whole")
    assert not out.exists()


def test_objects_are_refused_for_a_volume_model(tmp_path, capsys):
    import seg
    from seg.persist import save_model

    rng = np.random.default_rng(0)
    volume = rng.normal(100, 10, (6, 24, 24)).astype(np.float32)
    volume[:, 8:16, 8:16] += 80
    labels = np.zeros(volume.shape, np.uint8)
    labels[:, 1:3, 1:20] = 1
    labels[:, 10:14, 10:14] = 2
    save_model(seg.train(volume, labels, dims=3), tmp_path / "volume.segmodel")
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    out = tmp_path / "out"
    assert (
        main(
            [
                "apply",
                str(tmp_path / "volume.segmodel"),
                str(tmp_path / "stack.tif"),
                "--out",
                str(out),
                "--objects",
                "2",
            ]
        )
        == 1
    )
    assert capsys.readouterr().err.startswith("error: --objects is for 2-D models")
    assert not out.exists()


def test_batch_refuses_an_objects_class_beyond_the_model(workspace, tmp_path):
    from seg import batch

    folder, model, _ = workspace
    with pytest.raises(batch.BatchError, match="objects class 3 does not exist"):
        batch.run_batch(model, [folder / "disks.png"], tmp_path / "out", batch.ApplyOptions(objects=3))
    with pytest.raises(batch.BatchError, match="class number"):
        batch.ApplyOptions(objects=0)


def test_objects_csv_has_its_header_when_no_image_has_objects(workspace, tmp_path):
    from PIL import Image

    from seg import batch

    model = workspace[1]
    Image.fromarray(np.full((64, 64), 40, np.uint8)).save(tmp_path / "dark.png")
    report = batch.run_batch(model, [tmp_path / "dark.png"], tmp_path / "out", batch.ApplyOptions(objects=2))
    assert report.done
    header = (tmp_path / "out" / "objects.csv").read_text().splitlines()
    assert len(header) == 1 and header[0].startswith("image,frame,object,area,")
    assert tifffile.imread(tmp_path / "out" / "dark_objects.tif").max() == 0
