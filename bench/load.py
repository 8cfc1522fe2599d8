"""Update latency of the app under load: one user, 8 users at once, one user beside heavy ones.

The scenarios of ``tests/load`` (real headless-Chromium sessions on one ``streamlit run``
server on 127.0.0.1; see ``tests/load/helpers.py``), measured and written down:

1. one user alone uploads a 256 x 256 image and draws 20 strokes;
2. ``--users`` users at once, each with its own image (a distinct shape) and 20 strokes, one
   stroke every ``--period`` seconds each (a person looking at the result in between);
3. one light user draws while one user opens a 4-megapixel image and draws on it and another
   segments a batch of images on the batch page.

Latency = mouse-up -> the user's status marker shows the next update (what the user waits
for, browser included); "server" = the script's own run time from that status line. On this
2-core machine Chromium renders every user's page on the same cores as the server, so the
figures are pessimistic for real deployments, where browsers run elsewhere.

Prints a table and writes ``bench/results/load.json``.

    python bench/load.py [--users 8] [--period 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import format_table, load_average, machine_info, write_json  # noqa: E402
from tests.load import helpers as L  # noqa: E402

RESULTS = REPO / "bench" / "results" / "load.json"


def _row(name: str, users: int, latencies: list[float], runs: list[float]) -> dict:
    user = L.summary(latencies)
    server = L.summary(runs)
    return {
        "scenario": name,
        "users": users,
        "updates": user["n"],
        "median_ms": user["median_ms"],
        "p90_ms": user["p90_ms"],
        "server_median_ms": server["median_ms"],
        "server_p90_ms": server["p90_ms"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8, help="concurrent users (at most 8)")
    parser.add_argument("--period", type=float, default=5.0, help="seconds between a user's strokes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as folder, L.serve(Path(folder) / "server.log") as server:
        together = L.run(L.single_then_concurrent(server.url, users=args.users, period_s=args.period))
        heavy = L.run(L.heavy_neighbours(server.url))
        problems = L.server_problems(server)
    single, concurrent = together["single"], together["concurrent"]
    rows = [
        _row("one user alone", 1, single.latencies_ms, single.run_ms),
        _row(
            f"{args.users} users at once",
            args.users,
            [x for r in concurrent for x in r.latencies_ms],
            [x for r in concurrent for x in r.run_ms],
        ),
        _row("light user beside a 4 MP user and a batch", 3, heavy.light.latencies_ms, heavy.light.run_ms),
    ]
    base = rows[0]["median_ms"]
    for row in rows:
        row["median_vs_alone"] = round(row["median_ms"] / base, 2)
    correct = [round(L.agreement(r.mask, r.scene.truth), 4) for r in concurrent]
    result = {
        "rows": rows,
        "period_s": args.period,
        "own_segmentation_agreement": correct,
        "heavy": {
            "batch": heavy.batch_summary,
            "batch_runs": heavy.batch_runs,
            "big_image_status": heavy.big_status,
            "big_image_strokes": heavy.big_strokes,
            "light_strokes_during_heavy_work": heavy.overlapped,
            "seconds": heavy.seconds,
        },
        "server_log_problems": problems,
        "page_errors": [e for r in [single, *concurrent] for e in r.errors] + heavy.errors,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
    }
    header = ["scenario", "users", "updates", "median ms", "p90 ms", "x alone", "server median ms", "server p90 ms"]
    print(
        format_table(
            header,
            [
                [
                    r["scenario"],
                    r["users"],
                    r["updates"],
                    r["median_ms"],
                    r["p90_ms"],
                    r["median_vs_alone"],
                    r["server_median_ms"],
                    r["server_p90_ms"],
                ]
                for r in rows
            ],
        )
    )
    print(
        f"each user's mask vs its own truth: {correct}; server log problems: {len(problems)}; "
        f"{result['wall_seconds']} s; load average {load_before} -> {result['load_average_after']}"
    )
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
