"""``python -m seg train --dims 3`` and ``apply`` with a volume model: 3-D blocks locally and on a
LocalCluster give the unblocked result; NIfTI inputs get a NIfTI mask with their affine; volumes
measured in physical units."""

from __future__ import annotations

import csv
import dataclasses
import io

import nibabel
import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

import seg
from seg.cli import main
from seg.images.volume import read_volume, volume_tiff_bytes
from seg.strokes import Annotations, Stroke
from seg.volumes.model import DEFAULT_VOLUME_FOREST

SPACING = (0.5, 0.25, 0.25)  # µm


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("volumes")
    rng = np.random.default_rng(8)
    truth = ndi.gaussian_filter(rng.random((18, 40, 44)), (1.5, 3, 3)) > 0.5
    volume = ((truth * 0.5 + rng.random(truth.shape) * 0.5) * 255).astype(np.uint8)
    (root / "vol.tif").write_bytes(volume_tiff_bytes(volume, SPACING, "µm"))
    strokes = []
    for z in (4, 12):  # strokes on two slices: along rows, label from the truth
        for y in range(2, 40, 6):
            row = truth[z, y]
            for label in (1, 2):
                xs = np.flatnonzero(row == (label == 2))
                if len(xs) > 3:
                    strokes.append(
                        Stroke("line", label, ((float(xs[0]), float(y)), (float(xs[0] + 2), float(y))), 1.0, frame=z)
                    )
    annotations = Annotations(["background", "blob"], ["#1f77b4", "#ff7f0e"], volume.shape, strokes)
    (root / "ann.json").write_text(annotations.to_json())
    labels = np.zeros(volume.shape, np.uint8)
    labels[4, ::3, ::3] = truth[4, ::3, ::3] + 1
    labels[12, ::3, ::3] = truth[12, ::3, ::3] + 1
    (root / "labels.tif").write_bytes(volume_tiff_bytes(labels, SPACING, "µm"))
    affine = np.array([[0.25, 0, 0, -5.0], [0, 0.25, 0, 3.0], [0, 0, 0.5, 1.0], [0, 0, 0, 1]])
    nifti = nibabel.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine)
    nifti.header.set_xyzt_units("mm")
    nibabel.save(nifti, root / "vol.nii.gz")
    return root, volume, truth


def _train(root, tmp_path, *extra):
    out = tmp_path / "vol.segmodel"
    assert (
        main(
            [
                "train",
                str(root / "vol.tif"),
                *extra,
                "--out",
                str(out),
                "--dims",
                "3",
                "--preset",
                "fine detail",
                "--trees",
                "20",
                "--volume-features",
                "3d",
            ]
        )
        == 0
    )
    return out


def test_train_from_per_slice_strokes_and_from_a_label_volume(workspace, tmp_path):
    root, volume, truth = workspace
    model = seg.load_model(_train(root, tmp_path, str(root / "ann.json")))
    assert model.dims == 3 and model.volume.spacing == pytest.approx(SPACING)
    assert model.training["frames"] == [4, 12]
    # --trees replaces only the tree count of the volume default forest
    assert model.forest_settings == dataclasses.replace(DEFAULT_VOLUME_FOREST, n_estimators=20)
    held_out = [z for z in range(volume.shape[0]) if z not in (4, 12)]
    assert (model.predict(volume)[held_out] == truth[held_out] + 1).mean() > 0.85
    other = tmp_path / "labels"
    other.mkdir()
    from_labels = seg.load_model(_train(root, other, str(root / "labels.tif"), "--class-names", "bg,blob"))
    assert from_labels.class_names == ("bg", "blob")


def test_train_without_a_feature_choice_follows_the_voxel_size(workspace, tmp_path):
    from seg.volumes.model import DEFAULT_VOLUME_SETTINGS, ISOTROPIC_VOLUME_SETTINGS

    root, volume, _ = workspace
    isotropic = tmp_path / "iso.tif"  # vol.tif's own voxels (0.5 x 0.25 x 0.25 µm) are 2:1, near-isotropic
    sections = tmp_path / "sections.tif"  # 10:1, EM-like sections
    isotropic.write_bytes(volume_tiff_bytes(volume, (0.5, 0.25, 0.25), "µm"))
    sections.write_bytes(volume_tiff_bytes(volume, (2.5, 0.25, 0.25), "µm"))
    chosen = {}
    for path in (isotropic, sections):
        out = tmp_path / f"{path.stem}.segmodel"
        assert (
            main(["train", str(path), str(root / "labels.tif"), "--out", str(out), "--dims", "3", "--trees", "4"]) == 0
        )
        model = seg.load_model(out)
        chosen[path.stem] = (model.volume.mode, model.feature_settings)
    assert chosen == {"iso": ("3d", ISOTROPIC_VOLUME_SETTINGS), "sections": ("per_slice", DEFAULT_VOLUME_SETTINGS)}


@pytest.mark.slow
def test_apply_in_blocks_locally_and_on_a_local_cluster_equals_unblocked(workspace, tmp_path):
    root, volume, _ = workspace
    model_path = _train(root, tmp_path, str(root / "labels.tif"))
    model = seg.load_model(model_path)
    expected = model.predict(read_volume(root / "vol.tif"))  # one block
    args = ["apply", str(model_path), str(root / "vol.tif"), "--quiet", "--block-mb", "1", "--probabilities"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--out", str(tmp_path / "dask"), "--workers", "2"]) == 0
    for where in ("local", "dask"):
        mask = read_volume(tmp_path / where / "vol_mask.tif")
        np.testing.assert_array_equal(mask.data[..., 0], expected)
        assert mask.spacing == pytest.approx(SPACING) and mask.unit == "µm"
        proba = tifffile.imread(tmp_path / where / "vol_probabilities.tif")  # ImageJ ZCYX
        np.testing.assert_array_equal(np.argmax(proba, axis=1) + 1, expected)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "local" / "volume_measurements.csv").read_text())))
    blob = next(row for row in rows if row["name"] == "class 2")
    voxels = int((expected == 2).sum())
    assert int(blob["voxels"]) == voxels
    assert float(blob["volume"]) == pytest.approx(voxels * 0.5 * 0.25 * 0.25)
    assert blob["volume_unit"] == "µm³"
    objects = list(csv.DictReader(io.StringIO((tmp_path / "local" / "volume_objects.csv").read_text())))
    blob_objects = [row for row in objects if row["class"] == "2"]
    assert len(blob_objects) == int(blob["objects"]) == ndi.label(expected == 2, np.ones((3, 3, 3)))[1]
    assert sum(int(row["voxels"]) for row in blob_objects) == voxels


def test_nifti_input_gets_a_nifti_mask_with_its_affine(workspace, tmp_path):
    root, _, _ = workspace
    model_path = _train(root, tmp_path, str(root / "labels.tif"))
    # the NIfTI holds the same voxels with the same voxel size (in mm: the ratios match)
    assert main(["apply", str(model_path), str(root / "vol.nii.gz"), "--quiet", "--out", str(tmp_path / "o")]) == 0
    written = nibabel.load(tmp_path / "o" / "vol_mask.nii.gz")
    source = nibabel.load(root / "vol.nii.gz")
    np.testing.assert_allclose(written.affine, source.affine)
    tiff_mask = read_volume(tmp_path / "o" / "vol_mask.tif").data[..., 0]
    np.testing.assert_array_equal(np.asarray(written.dataobj).transpose(2, 1, 0), tiff_mask)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "o" / "volume_measurements.csv").read_text())))
    assert {row["volume_unit"] for row in rows} == {"mm³"}


def test_volume_model_refuses_images_and_time_flags(workspace, tmp_path, capsys):
    root, volume, _ = workspace
    model_path = _train(root, tmp_path, str(root / "labels.tif"))
    png = tmp_path / "slice.png"
    from PIL import Image

    Image.fromarray(volume[0]).save(png)
    assert main(["apply", str(model_path), str(png), "--quiet", "--out", str(tmp_path / "o")]) == 1
    assert "neither a TIFF stack nor a NIfTI" in capsys.readouterr().err
    assert (
        main(
            [
                "apply",
                str(model_path),
                str(root / "vol.tif"),
                "--quiet",
                "--stack",
                "time",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "volume model" in capsys.readouterr().err
    assert (
        main(
            [
                "apply",
                str(model_path),
                str(root / "vol.tif"),
                "--quiet",
                "--spacing",
                "4",
                "1",
                "1",
                "--unit",
                "um",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "trained on voxels" in capsys.readouterr().err
