"""seg.batch on a real dask.distributed LocalCluster: same files as the in-process run.

One cluster (2 worker processes, 1 thread each, loopback only, no dashboard) serves the module
and is always closed.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import distributed  # a hard dependency of the cluster path: a broken install fails here, never skips
import numpy as np
import pytest
import tifffile
from PIL import Image

from seg import batch
from seg.batch import ApplyOptions
from tests.unit.test_batch import synthetic_scene, train_small, write_png

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        with distributed.Client(cluster) as dask_client:
            yield dask_client
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def model():
    image, truth = synthetic_scene(seed=0)
    return train_small(image, truth)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("dask_inputs")
    paths = [write_png(folder / f"img{seed}.png", synthetic_scene(seed=seed)[0]) for seed in range(1, 7)]
    stack = folder / "stack.tif"
    tifffile.imwrite(stack, np.stack([synthetic_scene(seed=s)[0] for s in (7, 8)]), photometric="minisblack")
    bad = folder / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    return [*paths, stack, bad]


def _files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def _decoded(folder: Path, name: str) -> np.ndarray:
    path = folder / name
    return tifffile.imread(path) if path.suffix == ".tif" else np.asarray(Image.open(path))


def test_cluster_run_writes_the_same_files_as_a_local_run(client, model, inputs, tmp_path):
    options = ApplyOptions(probabilities=True, objects=2)
    local = batch.run_batch(model, inputs, tmp_path / "local", options)
    remote = batch.run_batch(model, inputs, tmp_path / "dask", options, client=client)
    assert [o.name for o in remote.outcomes] == [o.name for o in local.outcomes]
    assert [o.source for o in remote.failed] == ["broken.png"]
    assert remote.summary().startswith("7 of 8 images done")
    local_files, remote_files = _files(tmp_path / "local"), _files(tmp_path / "dask")
    assert sorted(remote_files) == sorted(local_files)
    for name in local_files:
        if name.endswith((".png", ".tif")):
            np.testing.assert_array_equal(_decoded(tmp_path / "dask", name), _decoded(tmp_path / "local", name))
    assert remote_files["measurements.csv"] == local_files["measurements.csv"]
    assert "img1_objects.tif" in remote_files
    assert remote_files["objects.csv"].count(b"\n") > 7  # objects of several images
    assert remote_files["objects.csv"] == local_files["objects.csv"]


def test_tiles_of_a_huge_image_run_on_the_workers_and_match(client, model, tmp_path):
    image, _ = synthetic_scene((230, 260), seed=4)
    path = write_png(tmp_path / "big.png", image)
    options = ApplyOptions(tiling="always", tile=64, probabilities=True)
    report = batch.run_batch(model, [path], tmp_path / "out", options, client=client)
    assert report.outcomes[0].ok and report.outcomes[0].tiled
    np.testing.assert_array_equal(_decoded(tmp_path / "out", "big_mask.png"), model.predict(image))
    proba = tifffile.imread(tmp_path / "out" / "big_probabilities.tif")
    np.testing.assert_array_equal(np.moveaxis(proba, 0, -1), model.predict_proba(image))
    # the windows were predicted on the workers, each of which deserialised the model once
    cached = client.run(_cached_models)
    assert any(cached.values()) and all(len(digests) <= 1 for digests in cached.values())


def _cached_models() -> list[str]:
    from seg.batch import dask_runner

    return list(dask_runner.WORKER_MODELS)


def test_a_worker_dying_mid_batch_loses_nothing(client, model, inputs, tmp_path):
    # Last test of the module: it kills a worker of the shared cluster (its nanny restarts it).
    # images big enough that work is still queued when the first result comes back
    good = [write_png(tmp_path / f"slow{seed}.png", synthetic_scene((384, 384), seed=seed)[0]) for seed in range(6)]
    expected_dir = tmp_path / "expected"
    batch.run_batch(model, good, expected_dir)
    worker_pids = client.run(os.getpid)
    killed = []

    def kill_one_worker(done, total, outcome):
        # SIGKILL, as the kernel's OOM killer would: no clean-up code runs on the worker
        if not killed:
            victim = sorted(worker_pids)[0]
            killed.append(victim)
            os.kill(worker_pids[victim], signal.SIGKILL)

    report = batch.run_batch(model, good, tmp_path / "out", client=client, progress=kill_one_worker)
    assert killed and report.outcomes[0].ok
    assert not report.failed, report.summary()
    assert worker_pids[killed[0]] not in client.run(os.getpid).values()
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.listdir(expected_dir))
    for name in os.listdir(expected_dir):
        if name.endswith((".png", ".tif")):
            np.testing.assert_array_equal(_decoded(tmp_path / "out", name), _decoded(expected_dir, name))
