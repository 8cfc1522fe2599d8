"""The app's "Segment whole volume" pass at 256³: labels alone vs labels with 8-bit probabilities.

    python bench/volume_whole_pass.py                 # per-slice features (the volume default)
    python bench/volume_whole_pass.py --modes per_slice 3d

On the synthetic 256 x 256 x 256 volume of ``bench/volume_browser_latency.py`` (blobs, voxel
1 x 0.5 x 0.5 µm), a volume model is trained on scribbles (a sparse grid of true labels) on three
slices, then timed, one after the other in this process, in rounds (even rounds in reverse
order, so that neither order nor a changing load favours one pass; each after a warm-up on a 24 x 64 x 64
crop, so that no pass pays the kernels' loading):

* ``labels``: :func:`seg.volumes.model.predict_volume` (what the button did before),
* ``probabilities``: ``predict_volume(proba=True)`` (what the probabilities download did again
  on click before),
* ``both``: :func:`seg.volumes.model.predict_volume_with_probabilities` (what the button does
  now: labels and uint8 probabilities in one pass).

Wall and CPU seconds and the peak RSS growth are reported with the load average, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import volume_browser_latency as browser  # noqa: E402

RESULTS = HERE / "results" / "volume_whole_pass.json"
SCRIBBLED = (40, 128, 200)


def timed(call) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS growth MB) of ``call()``."""
    common.reset_peak_rss()
    before = common.rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu, common.peak_rss_mb() - before


def run(modes: list[str], rounds: int) -> dict:
    import seg
    from seg.volumes.model import predict_volume, predict_volume_with_probabilities

    with tempfile.TemporaryDirectory(prefix="seg-volume-pass-") as tmp:
        path = Path(tmp) / "blobs_256.tif"
        truth = browser.blobs_volume(path)
        volume = seg.read_volume(path)
    labels = np.zeros(truth.shape, np.uint8)
    for z in SCRIBBLED:
        labels[z, ::8, ::8] = truth[z, ::8, ::8] + 1
    crop = seg.Volume(volume.data[:24, :64, :64], volume.spacing, volume.unit)
    rows = []
    for mode in modes:
        model = seg.train(volume, labels, dims=3, volume_features=mode)
        passes = (
            ("labels", lambda m, v: predict_volume(m, v)),
            ("probabilities", lambda m, v: predict_volume(m, v, proba=True)),
            ("both", lambda m, v: predict_volume_with_probabilities(m, v)),
        )
        for round_ in range(1, rounds + 1):
            for name, call in passes if round_ % 2 else passes[::-1]:
                call(model, crop)  # compiles and loads what the pass needs, outside the timing
                wall, cpu, peak = timed(lambda: call(model, volume))  # noqa: B023 (called at once)
                rows.append(
                    {
                        "mode": mode,
                        "round": round_,
                        "pass": name,
                        "wall_s": round(wall, 1),
                        "cpu_s": round(cpu, 1),
                        "peak_mb": round(peak),
                    }
                )
                print(rows[-1], flush=True)
    return {
        "volume": f"{browser.SHAPE} uint8, voxel {browser.SPACING} µm, synthetic blobs",
        "rows": rows,
        "load_average": common.load_average(),
        "machine": common.machine_info(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def report(results: dict) -> str:
    table = [
        [
            browser.MODE_TITLES[r["mode"]],
            r["round"],
            r["pass"],
            f"{r['wall_s']:.1f}",
            f"{r['cpu_s']:.1f}",
            f"{r['peak_mb']:.0f}",
        ]
        for r in results["rows"]
    ]
    return "\n".join(
        [
            f"Whole-volume pass, {results['volume']}, load average {results['load_average']}",
            common.format_table(
                ["features", "round", "pass", "wall s", "CPU s", "peak RSS + MB"], table, align="lrlrrr"
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", choices=list(browser.MODE_TITLES), default=["per_slice"])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the 3 passes (even rounds in reverse order)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file to write")
    args = parser.parse_args(argv)
    results = run(args.modes, args.rounds)
    common.write_json(args.output, results)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
