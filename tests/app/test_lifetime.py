"""What a disconnecting tab gives back (seg/ui/lifetime.py), without a server.

The real-server checks are in tests/load/test_long_sessions.py; these pin the rules that keep
a disconnect from pulling data out from under a script that is still running.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seg.ui.lifetime import SessionItems, release

REPO = Path(__file__).resolve().parents[2]


class _Held:
    def __init__(self) -> None:
        self.released = False

    def release(self) -> None:
        self.released = True


def test_a_disconnect_empties_what_the_last_finished_run_registered():
    features, pictures, prediction = {"key": np.zeros((4, 4, 2))}, {"bg": b"png"}, _Held()
    session = SessionItems()
    session.items = [features, pictures, prediction, None]
    release(session)
    assert features == {} and pictures == {} and prediction.released and session.items == []


def test_a_disconnect_during_a_run_leaves_the_running_script_its_data():
    features, prediction = {"key": np.zeros((4, 4, 2))}, _Held()
    session = SessionItems()
    session.items, session.running = [features, prediction], True
    release(session)
    assert "key" in features and not prediction.released


@pytest.mark.parametrize(("environment", "advised"), [(None, "False"), ("1", "True")])
def test_the_server_stops_numpy_advising_huge_pages_unless_the_host_chose(environment, advised):
    # huge-page advice made first writes to large arrays stall in memory compaction (slow pans)
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if environment is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = environment
    script = (
        "from numpy._core import multiarray\n"
        "from seg.ui.lifetime import tune_allocator\n"
        "assert tune_allocator()\n"
        "print(multiarray._get_madvise_hugepage())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == advised
