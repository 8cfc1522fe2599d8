"""Batch throughput (in process vs Dask workers) and peak memory of tiled prediction.

1. Throughput: a model trained on ISBI slice 0 (simulated scribbles) is applied to ``--images``
   ISBI slices (512 x 512) in this process (numba predictor on all cores) and on a
   ``LocalCluster`` of 1 and 2 worker processes (1 thread each; cluster start-up not counted).
2. Memory: a ``--huge`` x ``--huge`` grey synthetic image (uncompressed TIFF, memory-mapped) is
   predicted in tiles of ``--tile`` px in a fresh process, then measured and its mask written
   (the steps of ``python -m seg apply``); the peak RSS of each step (psutil, sampled every
   20 ms) is compared with the size of the untiled feature stack.

Prints a table and writes ``bench/results/batch.json``. The machine is shared: compare ratios.

    python bench/batch.py [--images 16] [--huge 8000] [--tile 1024]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.datasets import isbi_dir, load_isbi, simulate_scribbles  # noqa: E402
from seg import batch  # noqa: E402
from seg.model import train  # noqa: E402
from seg.persist import save_model  # noqa: E402

RESULTS = REPO / "bench" / "results" / "batch.json"

_MEMORY_SCRIPT = """
import json, sys, threading, time
from pathlib import Path
import psutil
from seg import batch
from seg.batch import reading
from seg.persist import load_model

model_path, image_path, out, tile = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
process = psutil.Process()
peak = [process.memory_info().rss]
done = threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.02)

threading.Thread(target=sample, daemon=True).start()
phases = {}

def phase(name):
    peak[0] = max(peak[0], process.memory_info().rss)
    phases[name] = peak[0]
    peak[0] = process.memory_info().rss

model = load_model(model_path)
options = batch.ApplyOptions(tiling="always", tile=tile, max_pixels=10**9)
phase("start (imports, model)")
image = reading.read_input(image_path, options.max_pixels)  # memory-mapped: uncompressed TIFF
phase("open image")
labels, _, _ = batch.predict_image(model, image, options)
phase("tiled prediction")
rows = batch.measurement_rows("huge", labels, model.class_names)
phase("measurements (connected components)")
out.mkdir(exist_ok=True)
for name, data in batch.encode_outputs(model, "huge", image, labels, None, options):
    batch.atomic_write(out / name, data)
phase("encode + write mask")
done.set()
print(json.dumps(phases))
"""


def _train_model():
    image, truth = load_isbi(0)
    return train(image, simulate_scribbles(truth, seed=0), class_names=["membrane", "cell"])


def _throughput(model, paths, out: Path, client=None) -> dict:
    report = batch.run_batch(model, paths, out, client=client)
    assert not report.failed, report.summary()
    return {
        "images": len(paths),
        "megapixels": report.megapixels,
        "seconds": report.seconds,
        "mp_per_s": report.megapixels / report.seconds,
    }


def _cluster_throughput(model, paths, out: Path, workers: int) -> dict:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        startup = time.perf_counter() - start
        batch.run_batch(model, paths[:workers], out / "warm", client=client)  # numba cache, imports
        result = _throughput(model, paths, out / "run", client)
    result["cluster_start_s"] = startup
    return result


def _huge_image(path: Path, side: int) -> None:
    """A smooth random grey field with texture, written as an uncompressed TIFF."""
    import tifffile
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    cells = side // 64 + 2
    coarse = ndi.zoom(rng.normal(size=(cells, cells)), 64, order=1)[:side, :side]
    image = np.clip(128 + 40 * coarse + rng.normal(0, 10, size=(side, side)), 0, 255).astype(np.uint8)
    tifffile.imwrite(path, image)


def _tiled_memory(model_path: Path, side: int, tile: int, work: Path, model) -> dict:
    image_path = work / "huge.tif"
    _huge_image(image_path, side)
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(model_path), str(image_path), str(work / "huge_out"), str(tile)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"tiled run failed: {run.stderr.strip()}")
    phases = json.loads(run.stdout.strip().splitlines()[-1])
    n_features = model.feature_settings.n_features(1)
    margin = model.feature_settings.margin()
    return {
        "side": side,
        "tile": tile,
        "margin": margin,
        "features": n_features,
        "seconds": seconds,
        "mp_per_s": side * side / 1e6 / seconds,
        "peak_rss_bytes": max(phases.values()),
        "peak_rss_bytes_by_phase": phases,
        "untiled_feature_stack_bytes": side * side * n_features * 4,
        "window_feature_stack_bytes": (tile + 2 * margin) ** 2 * n_features * 4,
        "image_bytes": side * side,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="ISBI slices to segment")
    parser.add_argument("--huge", type=int, default=8000, help="side of the huge tiled image")
    parser.add_argument("--tile", type=int, default=1024)
    args = parser.parse_args()

    paths = [isbi_dir() / "image" / f"{i % 30:02d}.png" for i in range(args.images)]
    model = _train_model()
    results: dict = {"machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="seg-bench-") as tmp:
        work = Path(tmp)
        model_path = work / "isbi.segmodel"
        save_model(model, model_path)
        batch.run_batch(model, paths[:1], work / "warm")  # numba compile / cache load
        results["in_process"] = _throughput(model, paths, work / "local")
        results["dask_1_worker"] = _cluster_throughput(model, paths, work / "d1", 1)
        results["dask_2_workers"] = _cluster_throughput(model, paths, work / "d2", 2)
        results["tiled_memory"] = _tiled_memory(model_path, args.huge, args.tile, work, model)

    print(f"{'batch of ' + str(args.images) + ' ISBI slices':<34}{'seconds':>9}{'MP/s':>8}")
    for key, label in [
        ("in_process", "in process (numba, all cores)"),
        ("dask_1_worker", "LocalCluster, 1 worker"),
        ("dask_2_workers", "LocalCluster, 2 workers"),
    ]:
        row = results[key]
        print(f"{label:<34}{row['seconds']:>9.2f}{row['mp_per_s']:>8.2f}")
    mem = results["tiled_memory"]
    gib = 1 << 30
    print(
        f"\ntiled {mem['side']}x{mem['side']} grey, tile {mem['tile']} (+{mem['margin']} px margin), "
        f"{mem['features']} features: {mem['seconds']:.1f} s ({mem['mp_per_s']:.2f} MP/s)"
    )
    for name, value in mem["peak_rss_bytes_by_phase"].items():
        print(f"  peak RSS during {name:<38}{value / gib:6.2f} GiB")
    print(f"  untiled feature stack    {mem['untiled_feature_stack_bytes'] / gib:6.2f} GiB (never allocated)")
    print(f"  one window's features    {mem['window_feature_stack_bytes'] / gib:6.2f} GiB")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
