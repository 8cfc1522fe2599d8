"""``python -m seg``: the whole workflow from a shell, and every way a user can get it wrong.

The command runs in a subprocess (cwd = repository root), as a user would run it; the tiling and
``--workers`` tests call ``seg.cli.main`` in process so they can observe which path ran.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.unit.test_batch import synthetic_scene, train_small, write_png

REPO = Path(__file__).resolve().parents[2]
ISBI = REPO.parent / "shared" / "data" / "isbi2012"


def run_seg(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "seg", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_clean_failure(result: subprocess.CompletedProcess, *words: str) -> str:
    """Non-zero exit, no traceback, one ``error:`` line naming the problem; returns that line."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def no_partial_files(folder: Path) -> bool:
    return not any(name.endswith(".part") for name in os.listdir(folder)) if folder.exists() else True


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A saved grey model, a folder of 2 images, 2 more for a glob, a 3-frame stack, an RGB image."""
    from seg.persist import save_model

    root = tmp_path_factory.mktemp("cli")
    image, truth = synthetic_scene(seed=0)
    model = train_small(image, truth)
    save_model(model, root / "blobs.segmodel")
    (root / "folder").mkdir()
    (root / "globbed").mkdir()
    for seed in (1, 2):
        write_png(root / "folder" / f"img{seed}.png", synthetic_scene(seed=seed)[0])
    for seed in (3, 4):
        write_png(root / "globbed" / f"plate_{seed}.png", synthetic_scene(seed=seed)[0])
    write_png(root / "globbed" / "other.png", synthetic_scene(seed=9)[0])
    tifffile.imwrite(
        root / "stack.tif", np.stack([synthetic_scene(seed=s)[0] for s in (5, 6, 7)]), photometric="minisblack"
    )
    write_png(root / "colour.png", synthetic_scene(seed=8, channels=3)[0])
    return root, model


def read_mask(path: Path) -> np.ndarray:
    return tifffile.imread(path) if path.suffix == ".tif" else np.asarray(Image.open(path))


def test_help_documents_both_commands_with_examples():
    result = run_seg("--help")
    assert result.returncode == 0 and "apply" in result.stdout and "train" in result.stdout
    apply_help = run_seg("apply", "--help").stdout
    for text in [
        "--out",
        "--probabilities",
        "--overlays",
        "--workers",
        "--scheduler",
        "--tile",
        "--max-pixels",
        "examples:",
        "measurements.csv",
        "replaced",
    ]:
        assert text in apply_help
    from seg.images import IMAGE_SUFFIXES  # the inputs it names are the ones the reader reads

    assert "/".join(IMAGE_SUFFIXES) in apply_help and ".gif" not in apply_help and ".webp" not in apply_help
    train_help = run_seg("train", "--help").stdout
    for text in ["--preset", "--trees", "--depth", "examples:"]:
        assert text in train_help


@pytest.mark.slow
def test_apply_to_a_folder_a_glob_and_a_stack(workspace, tmp_path):
    root, model = workspace
    out = tmp_path / "out"
    result = run_seg(
        "apply",
        root / "blobs.segmodel",
        root / "folder",
        root / "globbed" / "plate_*.png",
        root / "stack.tif",
        "--out",
        out,
        "--overlays",
        "--probabilities",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "5 of 5 images done" in result.stdout and "MP/s" in result.stdout
    assert "5/5 images" in result.stderr  # the progress bar
    expected = {
        "img1": root / "folder" / "img1.png",
        "img2": root / "folder" / "img2.png",
        "plate_3": root / "globbed" / "plate_3.png",
        "plate_4": root / "globbed" / "plate_4.png",
    }
    for stem, source in expected.items():
        mask = read_mask(out / f"{stem}_mask.png")
        np.testing.assert_array_equal(mask, model.predict(np.asarray(Image.open(source))))
        assert (out / f"{stem}_overlay.png").is_file()
        proba = tifffile.imread(out / f"{stem}_probabilities.tif")
        assert proba.shape == (2, 96, 128) and proba.dtype == np.float32
    stack = tifffile.imread(root / "stack.tif")
    masks = read_mask(out / "stack_mask.tif")
    assert masks.shape == (3, 96, 128)
    for t in range(3):
        np.testing.assert_array_equal(masks[t], model.predict(stack[t]))
    assert {f"stack_overlay_t00{t}.png" for t in range(3)} <= set(os.listdir(out))
    assert not (out / "other_mask.png").exists()
    rows = list(csv.DictReader(io.StringIO((out / "measurements.csv").read_text())))
    keys = [(r["image"], r["frame"], r["class"]) for r in rows]
    assert len(keys) == len(set(keys)) == (4 + 3) * 2
    assert {k[0] for k in keys} == {*expected, "stack"}
    assert [k[1] for k in keys if k[0] == "stack"] == ["0", "0", "1", "1", "2", "2"]
    img1 = [r for r in rows if r["image"] == "img1"]
    assert sum(float(r["area_fraction"]) for r in img1) == pytest.approx(1.0)
    assert no_partial_files(out)


@pytest.mark.slow
def test_a_corrupt_image_is_skipped_and_reported_by_name(workspace, tmp_path):
    root, _ = workspace
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.png", "c.png"):
        (inputs / name).write_bytes((root / "folder" / "img1.png").read_bytes())
    (inputs / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    out = tmp_path / "out"
    result = run_seg("apply", root / "blobs.segmodel", inputs, "--out", out)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("2 of 3 images done") and "1 failed: bad.png: " in summary
    assert sorted(os.listdir(out)) == ["a_mask.png", "c_mask.png", "measurements.csv"]


@pytest.mark.slow
def test_a_model_for_grey_images_refuses_colour_images(workspace, tmp_path):
    root, _ = workspace
    result = run_seg("apply", root / "blobs.segmodel", root / "colour.png", "--out", tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("0 of 1 image done") and "colour.png" in summary and "channel" in summary
    assert os.listdir(tmp_path / "out") == ["measurements.csv"]


def _bad_model_files(root: Path, tmp_path: Path) -> dict[str, Path]:
    pickled = tmp_path / "model.segmodel"
    pickled.write_bytes(pickle.dumps({"forest": "definitely a model"}))
    truncated = tmp_path / "truncated.segmodel"
    truncated.write_bytes((root / "blobs.segmodel").read_bytes()[:300])
    return {"missing": tmp_path / "nope.segmodel", "pickle": pickled, "truncated": truncated, "folder": root / "folder"}


@pytest.mark.parametrize("case", ["missing", "pickle", "truncated", "folder"])
def test_an_unusable_model_is_refused_in_one_line(workspace, tmp_path, case):
    root, _ = workspace
    model = _bad_model_files(root, tmp_path)[case]
    out = tmp_path / "out"
    result = run_seg("apply", model, root / "folder", "--out", out)
    assert_clean_failure(result)
    assert not out.exists()


@pytest.mark.parametrize("case", ["empty folder", "no match", "missing input"])
def test_no_inputs_are_refused_in_one_line(workspace, tmp_path, case):
    root, _ = workspace
    (tmp_path / "empty").mkdir()
    given = {
        "empty folder": tmp_path / "empty",
        "no match": root / "folder" / "*.tif",
        "missing input": tmp_path / "gone.png",
    }[case]
    result = run_seg("apply", root / "blobs.segmodel", given, "--out", tmp_path / "out")
    line = assert_clean_failure(result)
    expected = {
        "empty folder": f"folder {str(given)!r} contains no image files",
        "no match": f"no files match the pattern {str(given)!r}",
        "missing input": f"input {str(given)!r} does not exist",
    }[case]
    assert expected in line, line


def test_an_unwritable_output_folder_is_refused_in_one_line(workspace, tmp_path):
    root, _ = workspace
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file where the folder should go")
    result = run_seg("apply", root / "blobs.segmodel", root / "folder", "--out", blocker / "out")
    assert_clean_failure(result, "cannot write to the output folder")


def test_an_unusable_scheduler_address_is_refused_in_one_line(workspace, tmp_path):
    root, _ = workspace
    result = run_seg(
        "apply",
        root / "blobs.segmodel",
        root / "folder",
        "--out",
        tmp_path / "out",
        "--scheduler",
        "nonsense://scheduler",
    )
    assert_clean_failure(result, "cannot connect to the Dask scheduler", "nonsense://scheduler")
    assert "images" not in result.stderr  # no progress bar was started


def test_usage_errors_exit_2_without_traceback(workspace):
    root, _ = workspace
    result = run_seg("apply", root / "blobs.segmodel", root / "folder")  # no --out
    assert result.returncode == 2 and "--out" in result.stderr and "Traceback" not in result.stderr
    result = run_seg(
        "apply",
        root / "blobs.segmodel",
        root / "folder",
        "--out",
        "x",
        "--workers",
        "2",
        "--scheduler",
        "tcp://127.0.0.1:8786",
    )
    assert result.returncode == 2 and "not allowed with" in result.stderr


# --------------------------------------------------------------------------- train


def _annotations_json(labels: np.ndarray, names=("background", "blob")) -> str:
    """Annotations whose strokes redraw ``labels`` (H, W): one horizontal stroke per run of pixels."""
    from seg.strokes import Annotations, Stroke

    strokes = []
    for row in range(labels.shape[0]):
        values = labels[row]
        edges = np.flatnonzero(np.diff(values.astype(int))) + 1
        for start, stop in zip(np.r_[0, edges], np.r_[edges, values.size]):
            if values[start]:
                points = ((start + 0.5, row + 0.5), (stop - 0.5, row + 0.5))
                strokes.append(Stroke("path", int(values[start]), points, 1.0))
    colors = ["#e69f00", "#56b4e9", "#009e73"][: len(names)]
    return Annotations(list(names), colors, (1, *labels.shape), strokes).to_json()


@pytest.mark.slow
def test_train_then_apply_without_a_browser(tmp_path):
    from tests.unit.test_batch import scribbles

    image, truth = synthetic_scene(seed=0)
    write_png(tmp_path / "train.png", image)
    labels = scribbles(truth, fraction=0.02)
    (tmp_path / "ann.json").write_text(_annotations_json(labels))
    from seg.strokes import Annotations

    assert (Annotations.from_json((tmp_path / "ann.json").read_text()).labels(0) == labels).all()
    result = run_seg(
        "train",
        tmp_path / "train.png",
        tmp_path / "ann.json",
        "--out",
        tmp_path / "m.segmodel",
        "--preset",
        "fine detail",
        "--trees",
        10,
        "--depth",
        12,
    )
    assert result.returncode == 0, result.stderr
    from seg.persist import load_model

    model = load_model(tmp_path / "m.segmodel")
    assert model.class_names == ("background", "blob")
    assert model.forest_settings.n_estimators == 10 and model.forest_settings.max_depth == 12
    new, new_truth = synthetic_scene(seed=21)
    write_png(tmp_path / "new.png", new)
    result = run_seg("apply", tmp_path / "m.segmodel", tmp_path / "new.png", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    mask = read_mask(tmp_path / "out" / "new_mask.png")
    assert (mask == new_truth).mean() > 0.9


@pytest.mark.parametrize("case", ["missing annotations", "not json", "wrong shape", "bad preset"])
def test_train_refuses_bad_input_in_one_line(tmp_path, case):
    image, truth = synthetic_scene(seed=0)
    write_png(tmp_path / "train.png", image)
    from tests.unit.test_batch import scribbles

    (tmp_path / "ann.json").write_text(_annotations_json(scribbles(truth)))
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "small.json").write_text(_annotations_json(scribbles(truth)[:50]))
    extra: list[object] = []
    annotations = {
        "missing annotations": "gone.json",
        "not json": "junk.json",
        "wrong shape": "small.json",
        "bad preset": "ann.json",
    }[case]
    if case == "bad preset":
        extra = ["--preset", "nonsense"]
    result = run_seg("train", tmp_path / "train.png", tmp_path / annotations, "--out", tmp_path / "m.segmodel", *extra)
    assert_clean_failure(result)
    assert not (tmp_path / "m.segmodel").exists()


# --------------------------------------------------------------------------- real data


def _membrane_f1(mask: np.ndarray, truth: np.ndarray) -> float:
    predicted, actual = mask == 1, truth == 1
    tp = np.count_nonzero(predicted & actual)
    return 2 * tp / (np.count_nonzero(predicted) + np.count_nonzero(actual))


@pytest.mark.slow
def test_isbi_train_and_apply_from_the_shell(tmp_path):
    if not ISBI.is_dir():  # pragma: no cover - CI has ../shared beside the clone
        pytest.fail(f"ISBI data not found at {ISBI}")
    sys.path.insert(0, str(REPO))
    from bench.datasets import load_isbi, simulate_scribbles

    _, truth = load_isbi(0)
    labels = simulate_scribbles(truth, seed=0)
    (tmp_path / "ann.json").write_text(_annotations_json(labels, names=("membrane", "cell")))
    result = run_seg(
        "train", ISBI / "image" / "00.png", tmp_path / "ann.json", "--out", tmp_path / "em.segmodel", "--trees", 30
    )
    assert result.returncode == 0, result.stderr
    inputs = [ISBI / "image" / f"{i:02d}.png" for i in (10, 20, 29)]
    result = run_seg("apply", tmp_path / "em.segmodel", *inputs, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    scores = []
    for i in (10, 20, 29):
        mask = read_mask(tmp_path / "out" / f"{i:02d}_mask.png")
        scores.append(_membrane_f1(mask, load_isbi(i)[1]))
    assert min(scores) > 0.6, scores


# ----------------------------------------------------- tiling and workers (in process, to observe them)


@pytest.fixture
def tiled_calls(monkeypatch):
    """Tile sizes of every frame the batch predicted tile by tile (seg.tiling.apply_tiled calls)."""
    import seg.batch.apply

    calls: list[int] = []
    real = seg.batch.apply.apply_tiled

    def spy(*args, **kwargs):
        calls.append(kwargs["tile"])
        return real(*args, **kwargs)

    monkeypatch.setattr(seg.batch.apply, "apply_tiled", spy)
    return calls


@pytest.mark.slow
def test_apply_tiles_a_large_image_by_itself_and_stays_within_memory(workspace, tmp_path, tiled_calls):
    """Default settings: a frame whose feature stack exceeds 1024 MB is tiled, a small one is not."""
    import tracemalloc

    from seg.cli import main

    root, model = workspace
    n_features = model.feature_settings.n_features(model.n_channels)
    side = int(np.ceil(np.sqrt((1024 << 20) / (4 * n_features)))) + 8  # just over the default threshold
    big, truth = synthetic_scene((side, side), seed=11)
    write_png(tmp_path / "big.png", big)
    del big

    assert (
        main(
            [
                "apply",
                str(root / "blobs.segmodel"),
                str(root / "folder" / "img1.png"),
                "--out",
                str(tmp_path / "small"),
                "--quiet",
            ]
        )
        == 0
    )
    assert tiled_calls == []

    tracemalloc.start()
    try:
        assert (
            main(
                [
                    "apply",
                    str(root / "blobs.segmodel"),
                    str(tmp_path / "big.png"),
                    "--out",
                    str(tmp_path / "out"),
                    "--quiet",
                ]
            )
            == 0
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tiled_calls == [1024]  # one frame, default --tile
    assert peak < 512 << 20, peak / 2**20  # the whole feature stack alone is > 1024 MB
    mask = np.asarray(Image.open(tmp_path / "out" / "big_mask.png"))
    assert mask.shape == truth.shape and (mask == truth).mean() > 0.97


def test_tile_above_mb_and_tiling_options_decide_tiling(workspace, tmp_path, tiled_calls):
    from seg.cli import main

    root, model = workspace
    image = root / "folder" / "img1.png"
    # 96 x 128 pixels x F features x 4 bytes is over 1 MB: tiled at --tile-above-mb 1, with --tile 48.
    assert (
        main(
            [
                "apply",
                str(root / "blobs.segmodel"),
                str(image),
                "--out",
                str(tmp_path / "a"),
                "--quiet",
                "--tile-above-mb",
                "1",
                "--tile",
                "48",
            ]
        )
        == 0
    )
    assert tiled_calls == [48]
    assert (
        main(
            [
                "apply",
                str(root / "blobs.segmodel"),
                str(image),
                "--out",
                str(tmp_path / "b"),
                "--quiet",
                "--tiling",
                "never",
                "--tile-above-mb",
                "1",
            ]
        )
        == 0
    )
    assert tiled_calls == [48]
    tiled, whole = (read_mask(tmp_path / d / "img1_mask.png") for d in ("a", "b"))
    np.testing.assert_array_equal(tiled, whole)
    np.testing.assert_array_equal(whole, model.predict(np.asarray(Image.open(image))))


@pytest.mark.slow
def test_workers_runs_the_batch_on_a_local_cluster_of_that_size(workspace, tmp_path, monkeypatch):
    import seg.batch.run
    from seg.cli import main

    root, _ = workspace
    clients = []
    real = seg.batch.run.run_on_dask

    def spy(client, *args, **kwargs):
        clients.append((client, len(client.scheduler_info()["workers"])))
        return real(client, *args, **kwargs)

    monkeypatch.setattr(seg.batch.run, "run_on_dask", spy)
    inputs = [str(root / "folder"), str(root / "stack.tif")]
    assert main(["apply", str(root / "blobs.segmodel"), *inputs, "--out", str(tmp_path / "local"), "--quiet"]) == 0
    assert clients == []
    assert (
        main(
            [
                "apply",
                str(root / "blobs.segmodel"),
                *inputs,
                "--out",
                str(tmp_path / "dask"),
                "--quiet",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    [(client, workers)] = clients
    assert workers == 2
    assert client.status == "closed"  # the cluster it started is gone
    local, remote = (sorted(os.listdir(tmp_path / d)) for d in ("local", "dask"))
    assert local == remote == ["img1_mask.png", "img2_mask.png", "measurements.csv", "stack_mask.tif"]
    for name in local:
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
