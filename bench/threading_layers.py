"""What the lock of seg.jit costs: concurrent predictions on each numba threading layer.

N sessions (threads) each predict the class probabilities of a 1024² grey image's features at
the same moment, as N Streamlit users stroking at once would. On the OpenMP/TBB layers the
kernels run concurrently; on the workqueue layer (a host without either library) seg.jit runs
them one at a time, since concurrent calls would abort the process. Each layer runs in its own
interpreter (the layer is chosen once per process).

    python bench/threading_layers.py [--sessions 1 4] [--repeats 5]

Prints a table and writes bench/results/threading_layers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402

CHILD = r"""
import json, statistics, sys, threading, time
import numpy as np
sys.path.insert(0, {repo!r})
import seg
from seg import jit
from bench.datasets import load_isbi, simulate_scribbles, tile_image

pairs = [load_isbi(i) for i in range(4)]
image = tile_image([p[0] for p in pairs], 2)
truth = tile_image([p[1] for p in pairs], 2)
model = seg.train(image, simulate_scribbles(truth, seed=0))
features = model.features(image)
model.predict_proba_features(features)  # warm-up
result = {{"layer": jit.threading_layer()}}
for sessions in {sessions!r}:
    walls = []
    for _ in range({repeats}):
        barrier = threading.Barrier(sessions + 1)
        def work():
            barrier.wait()
            model.predict_proba_features(features)
        threads = [threading.Thread(target=work) for _ in range(sessions)]
        for t in threads:
            t.start()
        start = time.perf_counter()
        barrier.wait()
        for t in threads:
            t.join()
        walls.append(time.perf_counter() - start)
    result[str(sessions)] = statistics.median(walls)
print(json.dumps(result))
"""


def run_layer(layer: str, sessions: list[int], repeats: int) -> dict:
    code = CHILD.format(repo=str(REPO), sessions=sessions, repeats=repeats)
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load_before = common.load_average()
    results = {}
    for layer in ("omp", "workqueue"):
        try:
            results[layer] = run_layer(layer, args.sessions, args.repeats)
        except subprocess.CalledProcessError as error:  # e.g. no OpenMP on this host
            print(f"{layer}: not available ({error.stderr.strip().splitlines()[-1:]})")
    header = ["layer", *(f"{n} session(s) s" for n in args.sessions)]
    rows = [[layer, *(f"{r[str(n)]:.3f}" for n in args.sessions)] for layer, r in results.items()]
    print(common.format_table(header, rows))
    print(f"load average before/after: {load_before} / {common.load_average()}")
    common.write_json(
        REPO / "bench" / "results" / "threading_layers.json",
        {
            "machine": common.machine_info(),
            "load_before": load_before,
            "results": results,
            "what": "median wall seconds until every session's predict_proba of 1024² grey features "
            "(balanced preset, default forest) is done",
        },
    )


if __name__ == "__main__":
    main()
