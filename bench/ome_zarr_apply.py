"""OME-Zarr out of core: a huge compressed OME-Zarr predicted blockwise; dask.array vs tiled path.

1. Huge and throughput: a ``--side`` x ``--side`` grey image (default 20 000², 400 MP) is written as a
   compressed OME-Zarr 0.4 store (1024² chunks, zarr's default codec) from the 30 ISBI 2012
   slices laid out as a mosaic, built chunk by chunk. A model trained on ISBI slice 0 (simulated
   scribbles, default preset) is applied to it with ``seg.batch.to_zarr.apply_to_store`` (what
   ``python -m seg apply MODEL IN.ome.zarr --out OUT.zarr --workers N`` runs) in a fresh process,
   once on a ``LocalCluster`` of ``--huge-workers`` worker processes (1 thread each); a
   ``--throughput-side``² image the same way on each of ``--workers``. Peak RSS is
   that of the whole process tree (client + scheduler + workers), sampled every 50 ms by psutil.
2. Overhead: on a ``--overhead-side``² image (default 8000², 64 MP) held in memory, today's tiled
   path (``seg.tiling.apply_tiled``, windows one after the other, the forest's numba predictor on
   all cores) against the dask.array path (``seg.batch.blockwise.predict_blockwise`` computed
   with dask's synchronous scheduler, i.e. also one block at a time, and with its threaded
   scheduler), same tile; then the whole OME-Zarr path on the same pixels (read the compressed
   store, predict, write the label store with its pyramid, count classes).

Prints a table and writes ``bench/results/zarr.json`` with the machine load. The machine may be
shared: the load average is recorded before and after every run.

    python bench/ome_zarr_apply.py [--side 20000] [--huge-workers 2] [--throughput-side 8000]
                         [--workers 1 2] [--overhead-side 8000] [--tile 1024]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import format_table, load_average, machine_info, write_json  # noqa: E402
from bench.datasets import load_isbi, simulate_scribbles  # noqa: E402

RESULTS = REPO / "bench" / "results" / "zarr.json"
CHUNK = 1024

_CHILD = """
import json, sys, threading, time
import psutil
sys.path.insert(0, sys.argv[1])
from seg.persist import load_model
from seg.batch.to_zarr import apply_to_store

model_path, source, out, tile, workers = sys.argv[2:7]
tree = psutil.Process()
peak = [0]
done = threading.Event()

def tree_rss():
    total = 0
    for process in [tree, *tree.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], tree_rss())
        time.sleep(0.05)

threading.Thread(target=sample, daemon=True).start()
model = load_model(model_path)
from seg.batch import dask_client
with dask_client(None, int(workers) or None) as client:  # 0 workers: threads in this process
    if client is not None:
        client.run(lambda: __import__("seg.batch.blockwise"))  # imports before the clock
    start = time.perf_counter()
    outcome = apply_to_store(model, source, out, tile=int(tile), scheduler=client,
                             max_pixels=10**10)
    seconds = time.perf_counter() - start
done.set()
print(json.dumps({"seconds": seconds, "peak_rss_bytes": max(peak[0], tree_rss()),
                  "levels": outcome.levels, "counts": outcome.counts.tolist()}))
"""


def _train_model():
    from seg.model import train

    image, truth = load_isbi(0)
    return train(image, simulate_scribbles(truth, seed=0), class_names=["membrane", "cell"])


def _mosaic_block(top: int, left: int, height: int, width: int, slices: np.ndarray) -> np.ndarray:
    """Rows top.. and columns left.. of the mosaic of ISBI slices (slice k at tile k mod 30)."""
    side = slices.shape[1]
    rows = np.arange(top, top + height)
    cols = np.arange(left, left + width)
    tiles_per_row = 64
    index = ((rows[:, None] // side) * tiles_per_row + cols[None, :] // side) % len(slices)
    return slices[index, rows[:, None] % side, cols[None, :] % side]


def write_mosaic_store(path: Path, side: int) -> Path:
    """A side x side grey OME-Zarr 0.4 image (axes y, x; 1024² compressed chunks) of ISBI slices."""
    import zarr

    slices = np.stack([load_isbi(k)[0] for k in range(30)])
    group = zarr.open_group(path, mode="w", zarr_format=2)
    array = group.create_array("0", shape=(side, side), chunks=(CHUNK, CHUNK), dtype="uint8")
    for top in range(0, side, CHUNK):
        height = min(CHUNK, side - top)
        array[top : top + height, :] = _mosaic_block(top, 0, height, side, slices)
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "name": "isbi-mosaic",
            "axes": [
                {"name": "y", "type": "space", "unit": "nanometer"},
                {"name": "x", "type": "space", "unit": "nanometer"},
            ],
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [4.0, 4.0]}]}],
        }
    ]
    return path


def _store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def huge_run(model_path: Path, source: Path, out: Path, tile: int, workers: int) -> dict:
    load_before = load_average()
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, str(REPO), str(model_path), str(source), str(out), str(tile), str(workers)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"OME-Zarr run failed: {run.stderr.strip()[-2000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return {**result, "workers": workers, "load_before": load_before, "load_after": load_average()}


def overhead(model, side: int, tile: int, work: Path) -> dict:
    import dask.array as da

    from seg.batch.blockwise import predict_blockwise
    from seg.batch.to_zarr import apply_to_store
    from seg.tiling import apply_tiled

    slices = np.stack([load_isbi(k)[0] for k in range(30)])
    image = _mosaic_block(0, 0, side, side, slices)
    lazy = da.from_array(image[np.newaxis, ..., np.newaxis], chunks=(1, CHUNK, CHUNK, 1))
    store = write_mosaic_store(work / "overhead.ome.zarr", side)
    rows = {}

    def timed(name, run):
        load_before = load_average()
        start = time.perf_counter()
        labels = run()
        rows[name] = {"seconds": time.perf_counter() - start, "load_before": load_before, "load_after": load_average()}
        return labels

    small = image[:1024, :1024]  # warm-up: numba compile / cache load, imports
    apply_tiled(model, small, tile=tile)
    predict_blockwise(model, lazy[:, :1024, :1024], tile=tile)[0].compute(scheduler="sync")
    reference, _ = timed("tiled (seg.tiling.apply_tiled)", lambda: apply_tiled(model, image, tile=tile))
    for scheduler in ("sync", "threads"):
        labels = timed(
            f"dask.array, {scheduler} scheduler",
            lambda s=scheduler: predict_blockwise(model, lazy, tile=tile)[0].compute(scheduler=s),
        )
        assert np.array_equal(labels[0], reference), "blockwise labels differ from the tiled path"
    timed(
        "OME-Zarr store -> label store (threads)",
        lambda: apply_to_store(model, store, work / "overhead_out.zarr", tile=tile, max_pixels=10**10),
    )
    base = rows["tiled (seg.tiling.apply_tiled)"]["seconds"]
    for row in rows.values():
        row["mp_per_s"] = side * side / 1e6 / row["seconds"]
        row["vs_tiled"] = row["seconds"] / base
    return {"side": side, "tile": tile, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20_000, help="side of the huge OME-Zarr image")
    parser.add_argument("--overhead-side", type=int, default=8000, help="side of the overhead image")
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="*",
        default=[1, 2],
        help="LocalCluster sizes for the throughput runs (none: skip them)",
    )
    parser.add_argument(
        "--throughput-side", type=int, default=8000, help="side of the OME-Zarr image of the throughput runs"
    )
    parser.add_argument(
        "--huge-workers",
        type=int,
        default=2,
        help="LocalCluster size of the one huge run (0: dask's threaded scheduler "
        "in one process, as 'seg apply' without --workers)",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["overhead", "throughput", "huge"],
        help="parts not to run; their figures are kept from the existing JSON",
    )
    args = parser.parse_args()

    from bench.common import read_json
    from seg.persist import save_model

    model = _train_model()
    results: dict = (read_json(RESULTS) or {}) if args.skip else {}
    results.update({"machine": machine_info(), "load_start": load_average()})
    with tempfile.TemporaryDirectory(prefix="seg-bench-zarr-") as tmp:
        work = Path(tmp)
        model_path = work / "isbi.segmodel"
        save_model(model, model_path)
        if "overhead" not in args.skip:
            results["overhead"] = overhead(model, args.overhead_side, args.tile, work)
        for key, side, sizes in [
            ("throughput", args.throughput_side, args.workers),
            ("huge", args.side, [args.huge_workers]),
        ]:
            if key in args.skip or not sizes:
                continue
            start = time.perf_counter()
            source = write_mosaic_store(work / f"{key}.ome.zarr", side)
            results[key] = {
                "side": side,
                "store_bytes": _store_bytes(source),
                "write_store_seconds": time.perf_counter() - start,
                "runs": [],
            }
            for workers in sizes:
                run = huge_run(model_path, source, work / f"{key}_out_{workers}.zarr", args.tile, workers)
                run["mp_per_s"] = side**2 / 1e6 / run["seconds"]
                results[key]["runs"].append(run)
                write_json(RESULTS, results)  # a long run: keep what is measured so far
            shutil.rmtree(source)
    results["load_end"] = load_average()

    over = results.get("overhead", {"side": 0, "rows": {}})
    print(f"overhead on {over['side']}² grey ({over['side'] ** 2 / 1e6:.0f} MP), tile {over['tile']}:")
    print(
        format_table(
            ["path", "seconds", "MP/s", "x tiled", "load before/after"],
            [
                [
                    name,
                    f"{r['seconds']:.1f}",
                    f"{r['mp_per_s']:.2f}",
                    f"{r['vs_tiled']:.2f}",
                    f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f}",
                ]
                for name, r in over["rows"].items()
            ],
        )
    )
    for key in ("throughput", "huge"):
        if key not in results:
            continue
        part = results[key]
        print(
            f"\n{key}: {part['side']}² grey ({part['side'] ** 2 / 1e6:.0f} MP) compressed "
            f"OME-Zarr ({part['store_bytes'] / 2**20:.0f} MiB on disk) -> label store:"
        )
        print(
            format_table(
                ["LocalCluster", "seconds", "MP/s", "peak RSS (tree)", "load before/after"],
                [
                    [
                        f"{r['workers']} worker(s)" if r["workers"] else "none (threads)",
                        f"{r['seconds']:.0f}",
                        f"{r['mp_per_s']:.2f}",
                        f"{r['peak_rss_bytes'] / 2**30:.2f} GiB",
                        f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f}",
                    ]
                    for r in part["runs"]
                ],
            )
        )
    write_json(RESULTS, results)
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
