"""seg.batch.blockwise / seg.batch.to_zarr: blockwise prediction on dask.array equals the in-memory
prediction pixel for pixel (every preset, chunk grids that do not divide the image), on threads and
on a real LocalCluster; counts are blockwise; an interrupted run leaves no complete-looking store.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr

from seg.batch import to_zarr
from seg.batch.blockwise import (
    class_counts,
    frame_statistics_blockwise,
    predict_blockwise,
    prediction_chunks,
)
from seg.features import PRESETS
from seg.io import open_lazy_image
from tests.unit.test_batch import synthetic_scene, train_small
from tests.unit.zarr_helpers import write_ome_zarr

SHAPE = (300, 350)  # blocks of 128 and store chunks of 100 x 120 divide neither side
TILE = 128


@pytest.fixture(scope="module")
def scene():
    return synthetic_scene(SHAPE, seed=4)


@pytest.fixture(scope="module")
def models(scene):
    image, truth = scene
    return {preset: train_small(image, truth, preset=preset) for preset in PRESETS}


def _lazy(frame: np.ndarray, chunks=(100, 120)) -> da.Array:
    data = frame[np.newaxis, ..., np.newaxis] if frame.ndim == 2 else frame[np.newaxis]
    return da.from_array(data, chunks=(1, *chunks, data.shape[-1]))


def test_prediction_blocks_are_at_least_one_margin_long():
    assert prediction_chunks(300, 128, 37) == (128, 128, 44)
    assert prediction_chunks(300, 128, 50) == (128, 172)  # a 44-px block would be shorter than 50
    assert prediction_chunks(300, 128, 145) == (145, 155)
    assert prediction_chunks(100, 128, 37) == (100,)
    assert sum(prediction_chunks(20_000, 1024, 73)) == 20_000


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_blockwise_labels_equal_in_memory_prediction_for_every_preset(scene, models, preset):
    image, _ = scene
    model = models[preset]
    labels, proba = predict_blockwise(model, _lazy(image), tile=TILE)
    assert proba is None and labels.dtype == np.uint8
    assert len(labels.chunks[1]) > 1 and len(labels.chunks[2]) > 1  # really blockwise
    np.testing.assert_array_equal(labels.compute()[0], model.predict(image))


def test_blockwise_probabilities_equal_in_memory_for_rgb_frames():
    image, truth = synthetic_scene(SHAPE, seed=6, channels=3)
    model = train_small(image, truth, preset="large structures")  # margin 145 > tile 128
    labels, proba = predict_blockwise(model, _lazy(image, (64, 96)), tile=TILE, probabilities=True)
    np.testing.assert_array_equal(labels.compute()[0], model.predict(image))
    np.testing.assert_array_equal(proba.compute()[0], model.predict_proba(image))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_frame_statistics_gathered_block_by_block_equal_the_whole_frame(dtype):
    from seg.images import Normalization
    from seg.tiling import frame_statistics

    rng = np.random.default_rng(2)
    frame = rng.gamma(2.0, 30.0, size=(1013, 1201, 2))  # > 262 144 pixels: a sampled lattice
    frame[:300] *= 3
    frame = np.clip(frame, 0, 250).astype(dtype)
    lazy = da.from_array(frame, chunks=(170, 333, 2))
    expected = frame_statistics(frame, Normalization())
    np.testing.assert_array_equal(frame_statistics_blockwise(lazy, Normalization()), expected)
    assert frame_statistics_blockwise(lazy, Normalization(mode="dtype")) is None


def test_nan_in_a_float_image_is_a_clear_error(models):
    from seg.errors import ImageError

    image = np.full(SHAPE, 0.5, dtype=np.float32)
    image[200, 300] = np.nan
    labels, _ = predict_blockwise(models["fine detail"], _lazy(image), tile=TILE)
    with pytest.raises(ImageError, match="NaN"):
        labels.compute()


def test_class_counts_are_summed_from_blocks(scene, models):
    image, _ = scene
    model = models["fine detail"]
    labels, _ = predict_blockwise(model, _lazy(image), tile=TILE)
    expected = np.bincount(model.predict(image).ravel(), minlength=3)
    np.testing.assert_array_equal(class_counts(labels, 2).compute(), expected[np.newaxis])


# --------------------------------------------------------------------------- stores


@pytest.fixture(scope="module")
def store_v3(tmp_path_factory, scene):
    image, _ = scene
    folder = tmp_path_factory.mktemp("stores")
    return write_ome_zarr(
        folder / "img.ome.zarr", [image[np.newaxis]], "cyx", version="0.5", chunks=(1, 100, 120), scale0=(1.0, 0.5, 0.5)
    )


def _read_labels(out: Path) -> np.ndarray:
    return zarr.open_array(out / "labels" / "segmentation" / "0", mode="r")[...]


def test_apply_to_store_writes_labels_probabilities_and_areas(tmp_path, scene, models, store_v3):
    image, _ = scene
    model = models["balanced"]
    outcome = to_zarr.apply_to_store(model, store_v3, tmp_path / "out.zarr", tile=TILE, probabilities=True)
    np.testing.assert_array_equal(_read_labels(outcome.out), model.predict(image))
    proba = zarr.open_array(outcome.out / "0", mode="r")[...]  # (c, y, x): class axis first
    np.testing.assert_array_equal(np.moveaxis(proba, 0, -1), model.predict_proba(image))
    expected = np.bincount(model.predict(image).ravel(), minlength=3)
    np.testing.assert_array_equal(outcome.counts[0], expected)
    rows = to_zarr.store_measurement_rows(outcome)
    assert [(r["class"], r["pixels"]) for r in rows] == [("background", expected[1]), ("blob", expected[2])]
    assert rows[0]["area"] == pytest.approx(expected[1] * 0.25)
    assert rows[0]["area_unit"] == "micrometer^2"
    attributes = zarr.open_group(outcome.out / "labels" / "segmentation", mode="r").attrs["ome"]
    assert attributes["image-label"]["properties"][1]["pixels"] == expected[2]


def test_an_interrupted_run_leaves_no_complete_looking_store(tmp_path, models, store_v3, monkeypatch):
    from seg.batch import blockwise

    model = models["fine detail"]
    out = tmp_path / "out.zarr"
    to_zarr.apply_to_store(model, store_v3, out, tile=TILE)
    before = _read_labels(out)
    calls = {"n": 0}
    real = blockwise.predict_window

    def dies_on_the_fourth_block(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # Ctrl-C, or a worker lost mid-run
        return real(*args, **kwargs)

    monkeypatch.setattr(blockwise, "predict_window", dies_on_the_fourth_block)
    with pytest.raises(KeyboardInterrupt):
        to_zarr.apply_to_store(models["balanced"], store_v3, out, tile=TILE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # no .part left
    np.testing.assert_array_equal(_read_labels(out), before)  # the old result is intact
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        to_zarr.apply_to_store(model, store_v3, tmp_path / "new.zarr", tile=TILE)
    assert not (tmp_path / "new.zarr").exists()


@pytest.mark.slow
def test_a_local_cluster_run_equals_the_local_run(tmp_path, scene, models, store_v3):
    from distributed import Client, LocalCluster

    model = models["scikit-image gallery"]
    local = to_zarr.apply_to_store(model, store_v3, tmp_path / "local.zarr", tile=TILE)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    try:
        with Client(cluster) as client:
            remote = to_zarr.apply_to_store(model, store_v3, tmp_path / "cluster.zarr", tile=TILE, scheduler=client)
            assert len(client.scheduler_info()["workers"]) == 2
    finally:
        cluster.close()
    np.testing.assert_array_equal(_read_labels(remote.out), _read_labels(local.out))
    np.testing.assert_array_equal(_read_labels(remote.out), model.predict(scene[0]))
    np.testing.assert_array_equal(remote.counts, local.counts)


def test_a_tiled_compressed_tiff_input_gives_the_in_memory_labels(tmp_path, scene, models):
    import tifffile

    image, _ = scene
    model = models["fine detail"]
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, image, tile=(64, 64), compression="zlib")
    outcome = to_zarr.apply_to_store(model, path, tmp_path / "t.zarr", tile=TILE)
    np.testing.assert_array_equal(_read_labels(outcome.out), model.predict(image))
    assert open_lazy_image(outcome.out / "labels" / "segmentation").version == "0.4"


def test_cli_applies_a_model_to_an_ome_zarr_store(tmp_path, scene, models, store_v3, capsys):
    from seg.cli import main
    from seg.persist import save_model

    image, _ = scene
    model = models["fine detail"]
    save_model(model, tmp_path / "m.segmodel")
    code = main(
        [
            "apply",
            str(tmp_path / "m.segmodel"),
            str(store_v3),
            "--out",
            str(tmp_path / "res.zarr"),
            "--tile",
            str(TILE),
            "-q",
        ]
    )
    assert code == 0
    np.testing.assert_array_equal(_read_labels(tmp_path / "res.zarr"), model.predict(image))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "res_measurements.csv").read_text())))
    expected = np.bincount(model.predict(image).ravel(), minlength=3)
    assert [int(r["pixels"]) for r in rows] == [expected[1], expected[2]]
    assert "blob" in capsys.readouterr().out
    code = main(
        ["apply", str(tmp_path / "m.segmodel"), str(store_v3), "--out", str(tmp_path / "x.zarr"), "--level", "3"]
    )
    assert code == 1 and "levels 0 to 0" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.slow
def test_the_process_scheduler_gives_the_same_labels(tmp_path, scene, models, store_v3):
    model = models["fine detail"]
    outcome = to_zarr.apply_to_store(model, store_v3, tmp_path / "p.zarr", tile=TILE, scheduler="processes")
    np.testing.assert_array_equal(_read_labels(outcome.out), model.predict(scene[0]))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_labels_can_be_written_into_the_image_store_beside_the_image(tmp_path, scene, models, version):
    import json

    from tests.unit.test_zarr_io import _validator

    image, _ = scene
    model = models["fine detail"]
    store = write_ome_zarr(tmp_path / "img.ome.zarr", [image[np.newaxis]], "cyx", version=version, chunks=(1, 100, 120))
    group = zarr.open_group(store, mode="r+")
    group.create_group("labels").create_group("nuclei")  # a label image another tool wrote
    labels_attrs = {"labels": ["nuclei"]}
    group["labels"].attrs.update({"ome": {"version": "0.5", **labels_attrs}} if version == "0.5" else labels_attrs)
    outcome = to_zarr.apply_to_store(model, store, store, tile=TILE)
    assert outcome.out == store / "labels" / "segmentation"
    np.testing.assert_array_equal(_read_labels(store), model.predict(image))
    np.testing.assert_array_equal(open_lazy_image(store).data.compute()[0, ..., 0], image)
    listed = zarr.open_group(store / "labels", mode="r").attrs.asdict()
    listed = listed["ome"] if version == "0.5" else listed
    assert listed["labels"] == ["nuclei", "segmentation"]
    name = "zarr.json" if version == "0.5" else ".zattrs"
    attributes = json.loads((outcome.out / name).read_text())
    attributes = attributes["attributes"] if version == "0.5" else attributes
    _validator(version, "strict_label").validate(attributes)
    label = attributes["ome"]["image-label"] if version == "0.5" else attributes["image-label"]
    assert label["source"] == {"image": "../../"}
    assert not (store / "labels" / "segmentation.part").exists()
