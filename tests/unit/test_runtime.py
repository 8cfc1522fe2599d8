"""seg.runtime: the app's server and the command line stop NumPy's huge-page advice.

With it, the first write to a fresh large array stalled in memory compaction: 8192² pans took
2.1 s instead of 0.36 s and ``seg apply`` 36 s instead of 23 s (bench/README.md, third pass).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ADVICE = "from numpy._core import multiarray; print(multiarray._get_madvise_hugepage())"
SERVER = "from seg.ui.lifetime import tune_allocator\nassert tune_allocator()\n"
CLI = "from seg.cli import main\nassert main(['apply', 'no-such.segmodel', 'x.png', '--out', 'unused']) != 0\n"


def advised(setup: str, environment: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if environment is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = environment
    result = subprocess.run(
        [sys.executable, "-c", setup + ADVICE], env=env, capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("setup", [SERVER, CLI], ids=["app server", "command line"])
def test_the_app_and_the_command_line_stop_the_advice(setup):
    assert advised(setup, None) == "False"


@pytest.mark.parametrize("setup", [SERVER, CLI], ids=["app server", "command line"])
def test_a_hosts_own_setting_wins(setup):
    assert advised(setup, "1") == "True"


def _worker_advice() -> bool:
    from numpy._core import multiarray

    return bool(multiarray._get_madvise_hugepage())


def test_local_dask_workers_start_without_the_advice():
    from seg.batch.dask_runner import dask_client

    with dask_client(workers=1) as client:
        assert list(client.run(_worker_advice).values()) == [False]
