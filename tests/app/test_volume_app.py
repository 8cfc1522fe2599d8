"""Volumes on the main page (AppTest): open, scribble on two slices, see a third, segment all.

The synthetic volume is a bright ellipsoid in a dark, noisy box, stored with a voxel size of
2 x 0.5 x 0.5 µm (so the ellipsoid is a ball in physical space). Strokes are injected per slice.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile

import seg
from seg.images.nifti import nifti_bytes
from tests.app.conftest import (
    class_colors,
    coins_strokes,
    download,
    draw,
    errors,
    new_app,
    status,
    tiff_bytes,
    upload,
)

SHAPE = (16, 64, 64)
SPACING = (2.0, 0.5, 0.5)


def ball_volume(shape=SHAPE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(Z, Y, X) uint8 voxels and the boolean ellipsoid they show."""
    z, y, x = shape
    zz, yy, xx = np.mgrid[:z, :y, :x]
    ball = ((zz - z / 2) * 2 * y / z / 2) ** 2 + (yy - y / 2) ** 2 + (xx - x / 2) ** 2 < (0.35 * y) ** 2
    rng = np.random.default_rng(seed)
    return (40 + 150 * ball + rng.normal(0, 10, ball.shape)).clip(0, 255).astype(np.uint8), ball


def imagej_bytes(data: np.ndarray, spacing=SPACING) -> bytes:
    buffer = io.BytesIO()
    dz, dy, dx = spacing
    metadata = {"axes": "ZYX", "spacing": dz, "unit": "um"}
    tifffile.imwrite(buffer, data, imagej=True, resolution=(1 / dx, 1 / dy), metadata=metadata)
    return buffer.getvalue()


def scribble_two_slices(at) -> None:
    """Background and ball strokes on slices 4 and 11 (image pixels)."""
    background, ball = class_colors(at)[:2]
    at.slider(key="w_frame").set_value(4).run()
    draw(at, [([(2.0, 2.0), (60.0, 2.0)], background), ([(28.0, 32.0), (36.0, 32.0)], ball)], width=3)
    at.slider(key="w_frame").set_value(11).run()
    draw(at, [([(2.0, 60.0), (60.0, 60.0)], background), ([(30.0, 30.0), (34.0, 34.0)], ball)], width=3)


def open_volume(data: bytes, name: str = "ball.tif"):
    at = new_app()
    at.run()
    upload(at, "w_image_upload", name, data)
    assert not errors(at), errors(at)
    return at


@pytest.fixture(scope="module")
def ball():
    return ball_volume()


def test_a_z_stack_opens_as_a_volume_with_its_voxel_size_and_slice_slider(ball):
    at = open_volume(imagej_bytes(ball[0]))
    record = at.session_state["seg.image"]
    assert record.is_volume and record.shape == SHAPE
    assert [s.label for s in at.slider if s.key == "w_frame"] == ["Slice (z)"]
    assert [at.number_input(key=k).value for k in ("w_voxel_z", "w_voxel_y", "w_voxel_x")] == list(SPACING)
    assert any("voxel 2 × 0.5 × 0.5 µm" in c.value.replace("\\", "") for c in at.caption), [c.value for c in at.caption]
    assert at.radio(key="w_volume_features").value == seg.volumes.model.DEFAULT_VOLUME_FEATURES


def test_strokes_on_two_slices_segment_a_third_as_the_volume_model_does(ball):
    data, truth = ball
    source = imagej_bytes(data)
    at = open_volume(source)
    scribble_two_slices(at)
    assert sorted(at.session_state["seg.labels"]) == [4, 11]  # strokes kept per slice
    at.slider(key="w_frame").set_value(8).run()
    model = at.session_state["seg.model"]
    assert model.dims == 3 and model.volume.spacing == SPACING and model.volume.mode == "per_slice"
    prediction = at.session_state["seg.prediction"]
    assert prediction is not None and prediction.frame == 8, (status(at), errors(at))
    expected = model.predict(seg.read_volume(source))
    np.testing.assert_array_equal(prediction.labels, expected[8])
    found = prediction.labels == 2  # the ball's slice is found: IoU 0.86 with the volume defaults
    assert (found & truth[8]).sum() / (found | truth[8]).sum() > 0.8  # (5% samples of 4 short strokes)

    # Whole volume on demand: mask equals Model.predict, measurements in µm³.
    at.session_state["volume_panel"] = True
    at.run()
    at.button(key="w_segment_volume").click().run()
    assert not errors(at) and not at.exception
    name, mask = download(at, "w_dl_volume_mask")
    assert name == "ball_mask.tif"
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(mask)), expected)
    reread = seg.read_volume(mask)
    assert reread.spacing == pytest.approx(SPACING) and reread.unit == "µm"
    _, csv = download(at, "w_dl_volume_csv")
    lines = csv.decode().splitlines()
    assert lines[0].startswith("class,name,voxels,volume,volume_unit")
    ball_row = lines[2].split(",")
    assert int(ball_row[2]) == int((expected == 2).sum())
    assert float(ball_row[3]) == pytest.approx(int(ball_row[2]) * 0.5, rel=1e-6) and ball_row[4] == "µm³"
    _, objects = download(at, "w_dl_volume_objects")
    assert "volume_unit" in objects.decode().splitlines()[0]
    assert "w_dl_volume_nifti" not in [s.key for s in at.session_state["seg.downloads"]]  # TIFF input


def test_the_volume_probabilities_come_from_the_segmenting_pass_not_a_second_prediction(ball, monkeypatch):
    from seg.volumes import model as volume_model

    source = imagej_bytes(ball[0])
    at = open_volume(source)
    scribble_two_slices(at)
    at.session_state["volume_panel"] = True
    at.run()
    passes = []
    for name in ("predict_volume", "predict_volume_with_probabilities"):
        original = getattr(volume_model, name)
        monkeypatch.setattr(
            volume_model,
            name,
            lambda *a, _name=name, _original=original, **k: passes.append(_name) or _original(*a, **k),
        )
    at.button(key="w_segment_volume").click().run()
    assert passes == ["predict_volume_with_probabilities"]
    name, proba = download(at, "w_dl_volume_proba")
    _, mask = download(at, "w_dl_volume_mask")
    at.run()  # a rerun with the panel open predicts nothing either
    assert passes == ["predict_volume_with_probabilities"], "the download encoded what the pass kept"
    monkeypatch.undo()
    assert name == "ball_probabilities.tif"
    model = at.session_state["seg.model"]
    expected = model.predict_proba(seg.read_volume(source))
    probabilities = tifffile.imread(io.BytesIO(proba))  # ImageJ ZCYX, 8-bit
    assert probabilities.dtype == np.uint8 and probabilities.shape == (SHAPE[0], 2, *SHAPE[1:])
    np.testing.assert_allclose(np.moveaxis(probabilities, 1, -1) / 255.0, expected, atol=1 / 510 + 1e-6)
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(mask)), np.argmax(expected, -1) + 1)
    assert seg.read_volume(proba).spacing == pytest.approx(SPACING)


def test_orthogonal_views_show_the_segmentation_across_slices_stretched_by_the_voxel_size(ball):
    data, truth = ball
    source = imagej_bytes(data)
    at = open_volume(source)
    scribble_two_slices(at)
    at.session_state["ortho_panel"] = True
    at.run()
    at.slider(key="w_ortho_row").set_value(32).run()
    assert not errors(at) and not at.exception
    from seg.ui.volume import Cut, ortho_labels, ortho_picture

    model = at.session_state["seg.model"]
    expected = model.predict(seg.read_volume(source))
    record = at.session_state["seg.image"]
    np.testing.assert_array_equal(ortho_labels(at.session_state, record, model, Cut("y", 32)), expected[:, 32])
    assert at.image[0].captions[0].startswith("XZ at row 32")
    shown = next(reversed(at.session_state["seg.backgrounds"]))  # the canvas marks where the plane cuts
    assert ("boxes", 11, ((32, 0, 33, 64),), None) in shown[-1]
    at.radio(key="w_ortho_plane").set_value("x").run()
    at.slider(key="w_ortho_column").set_value(20).run()
    np.testing.assert_array_equal(ortho_labels(at.session_state, record, model, Cut("x", 20)), expected[:, :, 20])
    assert at.image[0].captions[0].startswith("YZ at column 20")

    # 16 slices 2 µm apart over 0.5 µm pixels: 64 rows on screen, each slice 4 rows, no blur.
    plane = expected[:, 32]
    shown = ortho_picture(data[:, 32], plane, ["#000000", "#ff0000"], 1.0, Cut("y", 32).stretch(SPACING), z=8)
    assert shown.shape == (64, 64, 3)
    ball_rows = np.repeat(plane == 2, 4, axis=0)
    unmarked = (np.arange(64) // 4 != 8)[:, None]
    assert (shown[..., 0][ball_rows] == 255).all() and (shown[..., 1][ball_rows & unmarked] == 0).all()


def test_three_d_features_train_a_3d_model_whose_overlay_matches_model_predict(ball):
    data, _ = ball
    source = imagej_bytes(data)
    at = open_volume(source)
    at.radio(key="w_volume_features").set_value("3d").run()
    scribble_two_slices(at)
    at.slider(key="w_frame").set_value(7).run()
    model = at.session_state["seg.model"]
    assert model.volume.mode == "3d" and model.volume.spacing == SPACING
    expected = model.predict(seg.read_volume(source))
    np.testing.assert_array_equal(at.session_state["seg.prediction"].labels, expected[7])


def test_in_3d_the_next_slab_is_computed_ahead_and_used_when_the_slider_reaches_it(ball, monkeypatch):
    from seg.features.volume import VolumeSettings

    data, _ = ball
    source = imagej_bytes(data)
    at = open_volume(source)
    at.radio(key="w_volume_features").set_value("3d").run()
    scribble_two_slices(at)  # ends on slice 11 (slab 8..15)
    slabs = []
    block = VolumeSettings.block
    monkeypatch.setattr(
        VolumeSettings, "block", lambda self, *a: slabs.append((a[2][0].start, a[2][0].stop)) or block(self, *a)
    )
    at.slider(key="w_frame").set_value(3).run()  # back to slab 0..7: computed now, nothing behind it
    assert slabs == [(0, 8)] and "slab_ahead" not in at.session_state["seg.volume_cache"]
    at.slider(key="w_frame").set_value(4).run()  # moving forward: slab 8..15 is made ahead
    at.session_state["seg.volume_cache"]["slab_ahead"][1].result(timeout=120)
    assert slabs == [(0, 8), (8, 16)]
    at.slider(key="w_frame").set_value(8).run()
    assert slabs == [(0, 8), (8, 16)], "the slab made ahead is used, not made again"
    assert not errors(at) and not at.exception
    model = at.session_state["seg.model"]
    expected = model.predict(seg.read_volume(source))
    np.testing.assert_array_equal(at.session_state["seg.prediction"].labels, expected[8])
    cache = at.session_state["seg.volume_cache"]
    assert cache["slab"][0][-1] == 8 and "slab_ahead" not in cache  # one slab kept: no slab beyond 15


def test_large_slices_get_thinner_3d_slabs_within_the_budget_and_the_same_overlay(ball, monkeypatch):
    from seg.ui import volume as volume_ui

    data, _ = ball
    source = imagej_bytes(data)
    at = open_volume(source)
    at.radio(key="w_volume_features").set_value("3d").run()
    scribble_two_slices(at)
    model = at.session_state["seg.model"]
    record = at.session_state["seg.image"]
    one_slice = 64 * 64 * model.n_features * 4
    monkeypatch.setattr(volume_ui, "SLAB_BYTES", 3 * one_slice + 100)
    assert volume_ui.slab_depth(record, model.feature_settings, model.volume) == 3
    at.slider(key="w_frame").set_value(7).run()
    slab_key, slab = at.session_state["seg.volume_cache"]["slab"]
    assert slab_key[-1] == 6 and slab.shape[0] == 3 and slab.nbytes <= volume_ui.SLAB_BYTES
    expected = model.predict(seg.read_volume(source))
    np.testing.assert_array_equal(at.session_state["seg.prediction"].labels, expected[7])
    monkeypatch.setattr(volume_ui, "SLAB_BYTES", one_slice // 2)  # not even one slice fits: one, nothing ahead
    at.slider(key="w_frame").set_value(9).run()
    slab_key, slab = at.session_state["seg.volume_cache"]["slab"]
    assert slab_key[-1] == 9 and slab.shape[0] == 1
    assert "slab_ahead" not in at.session_state["seg.volume_cache"]
    np.testing.assert_array_equal(at.session_state["seg.prediction"].labels, expected[9])


def test_a_zero_voxel_size_is_refused_and_the_previous_one_stays(ball):
    at = open_volume(imagej_bytes(ball[0]))
    at.number_input(key="w_voxel_z").set_value(0.0).run()
    assert any("positive" in e for e in errors(at)), errors(at)
    assert at.session_state["seg.voxel_size"] == (SPACING, "µm")
    at.number_input(key="w_voxel_z").set_value(1.0).run()
    assert not errors(at)
    assert at.session_state["seg.voxel_size"] == ((1.0, 0.5, 0.5), "µm")


def test_a_stack_without_metadata_asks_and_opens_as_a_time_series_until_told(ball):
    at = open_volume(tiff_bytes(ball[0]), name="pages.tif")
    assert at.radio(key="w_stack_kind").value == "time"
    assert not at.session_state["seg.image"].is_volume
    assert [s.label for s in at.slider if s.key == "w_frame"] == ["Frame"]
    at.radio(key="w_stack_kind").set_value("volume").run()
    record = at.session_state["seg.image"]
    assert record.is_volume and record.volume.spacing == (1.0, 1.0, 1.0)
    assert [s.label for s in at.slider if s.key == "w_frame"] == ["Slice (z)"]
    scribble_two_slices(at)
    assert at.session_state["seg.model"].dims == 3


def test_a_nifti_volume_keeps_its_affine_in_the_downloaded_mask(ball):
    import nibabel

    data, _ = ball
    affine = np.array([[-0.5, 0, 0, 10.0], [0, 0.5, 0, -3.0], [0, 0, 2.0, 7.0], [0, 0, 0, 1]])
    source = nifti_bytes(data, affine=affine, spacing=SPACING, unit="mm", compress=True)
    at = open_volume(source, name="ball.nii.gz")
    assert at.session_state["seg.image"].is_volume
    scribble_two_slices(at)
    at.session_state["volume_panel"] = True
    at.run()
    at.button(key="w_segment_volume").click().run()
    name, mask = download(at, "w_dl_volume_nifti")
    assert name == "ball_mask.nii.gz"
    image = nibabel.Nifti1Image.from_bytes(__import__("gzip").decompress(mask))
    np.testing.assert_allclose(image.affine, affine)
    expected = at.session_state["seg.model"].predict(seg.read_volume(source))
    np.testing.assert_array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), expected)
    _, csv = download(at, "w_dl_volume_csv")
    assert "mm³" in csv.decode()


def test_a_volume_model_and_a_2d_model_refuse_each_others_images(ball):
    volume_app = open_volume(imagej_bytes(ball[0]))
    scribble_two_slices(volume_app)
    name, volume_model = download(volume_app, "w_dl_model")
    assert name == "ball.segmodel"
    coins = new_app()
    coins.run()
    draw(coins, coins_strokes(coins))
    _, image_model = download(coins, "w_dl_model")

    upload(coins, "w_model_upload", "ball.segmodel", volume_model)
    refusals = [e.replace("\\", "") for e in errors(coins)]  # messages are shown markdown-escaped
    assert any("volume (3-D) model" in e and "not a volume" in e for e in refusals), refusals
    upload(volume_app, "w_model_upload", "coins.segmodel", image_model)
    assert any("2-D (image) model" in e.replace("\\", "") for e in errors(volume_app)), errors(volume_app)
    assert volume_app.session_state["seg.model"].dims == 3  # the volume's own model stays


def test_the_slice_downloads_name_the_slice(ball):
    at = open_volume(imagej_bytes(ball[0]))
    scribble_two_slices(at)
    name, _ = download(at, "w_dl_mask")
    assert name == "ball_z011_mask.png"


def test_the_measurements_panel_of_a_volume_says_it_measures_one_slice_in_pixels_of_dy_by_dx(ball):
    at = open_volume(imagej_bytes(ball[0]))
    scribble_two_slices(at)
    at.session_state["measure_panel"] = True
    at.run()
    assert not errors(at) and not at.exception
    captions = [c.value.replace("\\", "") for c in at.caption]
    said = [c for c in captions if c.startswith("Slice 11 only, in 2-D")]
    assert said and "0.5 × 0.5 µm (0.25 µm² each)" in said[0] and "Whole volume" in said[0], captions
    labels = at.session_state["seg.prediction"].labels
    assert [int(v) for v in at.dataframe[0].value["pixels"]] == [int((labels == k).sum()) for k in (1, 2)]
    assert any(b.label == "Slice measurements CSV" for b in at.get("download_button"))


def test_a_volume_too_large_for_the_app_is_refused_from_its_header():
    import struct

    small = bytearray(
        nifti_bytes(np.zeros((4, 8, 8), np.uint8), affine=np.eye(4), spacing=(1.0, 1.0, 1.0), unit="mm", compress=False)
    )
    small[40:56] = struct.pack("<8h", 3, 1000, 1000, 200, 1, 1, 1, 1)  # declares 200 million voxels
    at = new_app()
    at.run()
    upload(at, "w_image_upload", "huge.nii", bytes(small))
    refusals = [e.replace("\\", "") for e in errors(at)]
    assert any("'huge.nii' is too large for the app" in e and "python -m seg apply" in e for e in refusals), refusals
    assert "coins" in at.session_state["seg.image"].name  # the previous image stays


def test_a_volume_starts_from_the_engines_volume_defaults_and_an_image_from_the_image_defaults(ball, monkeypatch):
    from seg.features import PRESETS
    from seg.volumes import model as volume_defaults

    monkeypatch.setattr(volume_defaults, "DEFAULT_VOLUME_SETTINGS", PRESETS["fine detail"])
    at = open_volume(imagej_bytes(ball[0]))
    assert at.session_state["w_preset"] == "fine detail"
    scribble_two_slices(at)
    assert at.session_state["seg.model"].feature_settings == PRESETS["fine detail"]
    upload(at, "w_image_upload", "plain.tif", tiff_bytes(ball[0][0]))
    assert at.session_state["w_preset"] == "balanced"  # back to the image defaults


def test_the_feature_default_follows_the_voxel_size_of_each_volume_opened(ball):
    at = open_volume(imagej_bytes(ball[0], spacing=(1.0, 1.0, 1.0)), name="isotropic.tif")
    assert (at.radio(key="w_volume_features").value, at.session_state["w_preset"]) == ("3d", "fine detail")
    scribble_two_slices(at)
    assert at.session_state["seg.model"].volume.mode == "3d"
    upload(at, "w_image_upload", "sections.tif", imagej_bytes(ball[0]))  # 2 x 0.5 x 0.5 µm: 4:1
    assert (at.radio(key="w_volume_features").value, at.session_state["w_preset"]) == ("per_slice", "balanced")


def test_settings_the_person_chose_are_kept_when_a_volume_opens(ball, monkeypatch):
    from seg.features import PRESETS
    from seg.volumes import model as volume_defaults

    monkeypatch.setattr(volume_defaults, "DEFAULT_VOLUME_SETTINGS", PRESETS["fine detail"])
    at = new_app()
    at.run()
    at.selectbox(key="w_preset").set_value("large structures").run()
    upload(at, "w_image_upload", "ball.tif", imagej_bytes(ball[0]))
    assert at.session_state["w_preset"] == "large structures"


def test_a_3d_model_of_other_voxels_is_refused_with_a_message_when_the_whole_volume_is_segmented(ball):
    trained = open_volume(imagej_bytes(ball[0]))
    trained.radio(key="w_volume_features").set_value("3d").run()
    scribble_two_slices(trained)
    _, model_bytes = download(trained, "w_dl_model")
    at = open_volume(imagej_bytes(ball[0], spacing=(1.0, 1.0, 1.0)), name="isotropic.tif")
    upload(at, "w_model_upload", "ball.segmodel", model_bytes)
    at.session_state["volume_panel"] = True
    at.run()
    at.button(key="w_segment_volume").click().run()
    assert not at.exception
    refusals = [e.replace("\\", "") for e in errors(at)]
    assert any("trained on voxels of (2.0, 0.5, 0.5)" in e for e in refusals), refusals
    assert "w_dl_volume_mask" not in [s.key for s in at.session_state["seg.downloads"]]  # nothing half-made
